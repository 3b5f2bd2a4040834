//! Step 1 (Account A): the IAM role DataSync assumes. Trusted by `datasync.amazonaws.com`
//! with the confused-deputy conditions; its inline policy is the tutorial's two destination
//! statements plus read access to the source. Drift in either document is put back. A role
//! given by ARN is used as it is and never modified.

use serde_json::Value;

use super::transfer::Transfer;
use crate::api::{RoleStatus, condition};
use crate::aws::iam::{Creation, NewRole};
use crate::aws::{self, classify};
use crate::desired::{ManagedRole, RoleSlot};
use crate::error::{Error, Result};
use crate::naming::{INLINE_POLICY_NAME, RolePool, arn_account, role_name_from_arn};
use crate::policy::same_document;

/// The role as IAM has it.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedRole {
    /// Its ARN.
    pub arn: String,
    /// Trust policy, decoded.
    pub trust: Option<String>,
    /// Ferry's inline policy, decoded, if present.
    pub inline: Option<String>,
    /// Carries this transfer's uid tag.
    pub owned: bool,
    /// The ARN of its permissions boundary, if it has one.
    pub boundary: Option<String>,
}

/// What must be done to the role.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RoleChanges {
    /// Create it.
    pub create: bool,
    /// Put the trust policy back.
    pub update_trust: bool,
    /// Put the inline policy (back).
    pub put_inline: bool,
    /// Put the permissions boundary (back) on a role that exists.
    pub put_boundary: bool,
}

/// The pure difference between the role found and the documents wanted. A boundary Ferry is
/// not asked for is left as it is: removing one would widen what the role may do.
pub fn diff(observed: Option<&ObservedRole>, trust: &Value, inline: &Value, boundary: Option<&str>) -> RoleChanges {
    match observed {
        None => RoleChanges {
            create: true,
            update_trust: false,
            put_inline: true,
            put_boundary: false,
        },
        Some(role) => RoleChanges {
            create: false,
            update_trust: !role.trust.as_deref().is_some_and(|t| same_document(t, trust)),
            put_inline: !role.inline.as_deref().is_some_and(|p| same_document(p, inline)),
            put_boundary: boundary.is_some() && role.boundary.as_deref() != boundary,
        },
    }
}

/// Ensures the role and records its ARN in the status.
pub async fn ensure(t: &mut Transfer<'_>) -> Result<()> {
    let Some(managed) = t.desired.role.managed.clone() else {
        let arn = t.desired.role.arn.clone();
        return use_existing(t, &arn).await;
    };
    match managed.pool.clone() {
        None => ensure_own(t, managed).await,
        Some((pool, shard)) => ensure_shared(t, managed, &pool, shard).await,
    }
}

/// Who a role of a given name must belong to before Ferry changes it.
#[derive(Clone, Copy)]
enum Owner<'p> {
    /// The transfer's own role: its uid tag.
    Transfer,
    /// A shared role: its pool's tag.
    Pool(&'p RolePool),
}

impl Owner<'_> {
    fn tags(self, t: &Transfer<'_>) -> Vec<(String, String)> {
        match self {
            Owner::Transfer => t.id().tags(),
            Owner::Pool(pool) => pool.tags(),
        }
    }

    fn owns(self, t: &Transfer<'_>, tags: &[(String, String)]) -> bool {
        let pairs = tags.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        match self {
            Owner::Transfer => t.id().owns(pairs),
            Owner::Pool(pool) => pool.owns(pairs),
        }
    }

    fn hint(self) -> &'static str {
        match self {
            Owner::Transfer => {
                "set spec.dataSyncRole.name to another name, or spec.dataSyncRole.arn to use this role unchanged"
            }
            Owner::Pool(_) => {
                "the role's name is the one Ferry gives the namespace's shared DataSync roles: rename or delete that role, or set spec.dataSyncRole.name so the transfer gets a role of its own"
            }
        }
    }
}

/// What putting the transfer's policy on one role came to.
struct Placed {
    /// The role's ARN.
    arn: String,
    /// IAM took the policy (or it was in place); `false`: no room left on the role.
    fits: bool,
}

/// One role: read it (and the transfer's policy when `read` is set), create it when it is not
/// there, refuse someone else's, put back its boundary and trust, and put the transfer's
/// inline policy when it differs (or, `join`, is not on it yet).
#[allow(clippy::too_many_arguments)]
async fn place(
    t: &mut Transfer<'_>,
    iam: &aws_sdk_iam::Client,
    name: &str,
    managed: &ManagedRole,
    owner: Owner<'_>,
    observe_first: bool,
    read: bool,
    join: bool,
) -> Result<Placed> {
    let (account, boundary) = (
        t.account_a_id().to_string(),
        t.ctx.config.role_permissions_boundary.clone(),
    );
    let (trust, inline, inline_name) = (&managed.trust, &managed.inline, managed.inline_name.as_str());
    let policy = read.then_some(inline_name);
    let mut observed = if observe_first {
        observe(t, iam, name, &account, policy, owner).await?
    } else {
        None
    };
    let mut created = None;
    if observed.is_none() {
        let description = managed.description.clone();
        match create(t, iam, name, description, trust, boundary.as_deref(), owner).await? {
            Created::New(arn) => created = Some(arn),
            Created::Existing(found) => observed = found,
        }
    }
    let role = observed.as_ref();
    owned(role, owner)?;
    let mut changes = diff(
        if created.is_some() { None } else { role },
        trust,
        inline,
        boundary.as_deref(),
    );
    changes.put_inline |= join;
    let arn = created
        .or_else(|| role.map(|r| r.arn.clone()))
        .unwrap_or_else(|| shard_arn(&t.desired.role.arn, name));
    restore(t, iam, name, &arn, &changes, trust, boundary.as_deref()).await?;
    let restored = !join && !changes.create;
    let fits = !changes.put_inline || put_inline(t, iam, name, &arn, inline_name, inline, restored).await?;
    Ok(Placed { arn, fits })
}

/// The transfer's own role (`dataSyncRole.name`, or the role it had before roles were shared).
async fn ensure_own(t: &mut Transfer<'_>, managed: ManagedRole) -> Result<()> {
    let iam = t.account_a.iam(&t.spec.source.region);
    // A role this transfer never recorded is most likely new: create it straight away and read
    // it only if it exists (a crash after the create, or someone else's role of that name).
    let recorded = t.status.role.is_some();
    let Placed { arn, fits } = place(t, &iam, &managed.name, &managed, Owner::Transfer, recorded, true, false).await?;
    if !fits {
        return Err(Error::InvalidSpec(format!(
            "the inline policy of IAM role {arn} is longer than IAM allows a role's inline policies (10,240 characters); name fewer KMS keys or use spec.dataSyncRole.arn"
        )));
    }
    record(t, &arn, true);
    t.condition(
        condition::ROLE_READY,
        true,
        "RoleInPlace",
        format!("IAM role {arn} trusts DataSync and grants the transfer's S3 access"),
    );
    Ok(())
}

/// A shared role of the namespace's pool: the transfer's own inline policy on the first role
/// of the pool IAM finds room on (its 10,240 characters of inline policies per role), so a
/// role grants exactly the buckets and keys of the transfers that use it. The pool's roles
/// are created as needed.
async fn ensure_shared(t: &mut Transfer<'_>, managed: ManagedRole, pool: &RolePool, first: u32) -> Result<()> {
    let iam = t.account_a.iam(&t.spec.source.region);
    let recorded = t.status.role.as_ref().map(|r| r.arn.clone());
    let lock = RolePool::lock_key(&pool.hash);

    // A member checks its own policy on its role without the pool's lock (every drift check of
    // a namespace's transfers would otherwise take turns); joining, or moving on because a
    // role is full, is done under it. A new member starts at the first role with room as
    // known once its turn came (other members may have filled roles while it waited).
    let member_of_pool = recorded.as_deref().and_then(|arn| pool.shard_of(arn)).is_some();
    let mut turn = if member_of_pool {
        None
    } else {
        Some(t.ctx.locks.lock(&lock).await)
    };
    let mut shard = if member_of_pool {
        first
    } else {
        first.max(t.ctx.role_pools.first_open(&pool.hash))
    };
    let (name, arn) = loop {
        let name = pool.role_name(shard);
        // A member's own policy is read to find drift; a new member only puts it.
        let member = recorded.as_deref().and_then(role_name_from_arn) == Some(name.as_str());
        let placed = place(t, &iam, &name, &managed, Owner::Pool(pool), true, member, !member).await?;
        if placed.fits {
            break (name, placed.arn);
        }
        if turn.is_none() {
            turn = Some(t.ctx.locks.lock(&lock).await);
        }
        t.ctx.role_pools.full(&pool.hash, shard);
        shard += 1;
    };
    if shard != first {
        let keys = t.desired.keys.clone();
        t.rebuild_desired(keys, RoleSlot::Shared(shard));
    }
    let inline_name = &managed.inline_name;
    let joined = recorded.as_deref() != Some(arn.as_str());
    record(t, &arn, true);
    if joined {
        t.permissions_changed();
        t.persist().await?;
        t.changed(
            "RoleJoined",
            format!("DataSync uses the shared IAM role {arn} for this transfer: its access is the role's inline policy {inline_name}"),
        )
        .await;
    }
    t.condition(
        condition::ROLE_READY,
        true,
        "SharedRoleInPlace",
        format!(
            "shared IAM role {arn} ({name}) trusts DataSync; its inline policy {inline_name} grants this transfer's S3 access and nothing else"
        ),
    );
    Ok(())
}

/// The ARN of role `name` in the account and partition of `like` (pure).
fn shard_arn(like: &str, name: &str) -> String {
    match like.split_once(":role/") {
        Some((head, _)) => format!("{head}:role/{name}"),
        None => name.to_string(),
    }
}

/// A role of the right name that is someone else's is never changed.
fn owned(role: Option<&ObservedRole>, owner: Owner<'_>) -> Result<()> {
    match role {
        Some(role) if !role.owned => Err(Error::NotOwned {
            what: "IAM role".into(),
            name: role.arn.clone(),
            hint: owner.hint().into(),
        }),
        _ => Ok(()),
    }
}

/// What a `CreateRole` found.
enum Created {
    /// The role is new: its ARN.
    New(String),
    /// A role of that name exists (Ferry's after a crash, or someone else's): as read.
    Existing(Option<ObservedRole>),
}

/// Creates the managed role with its trust policy, tags and boundary.
async fn create(
    t: &mut Transfer<'_>,
    iam: &aws_sdk_iam::Client,
    name: &str,
    description: String,
    trust: &serde_json::Value,
    boundary: Option<&str>,
    owner: Owner<'_>,
) -> Result<Created> {
    let account = t.account_a_id().to_string();
    let role = NewRole {
        name,
        trust,
        description,
        boundary,
        tags: owner.tags(t),
    };
    match aws::iam::create_role(iam, &role).await {
        Ok(Creation::Created(arn)) => {
            if matches!(owner, Owner::Transfer) {
                record(t, &arn, true);
            }
            t.permissions_changed();
            t.persist().await?;
            t.changed("RoleCreated", format!("created IAM role {arn} for DataSync"))
                .await;
            Ok(Created::New(arn))
        }
        Ok(Creation::Exists) => {
            let inline = match owner {
                Owner::Transfer => Some(INLINE_POLICY_NAME),
                Owner::Pool(_) => None,
            };
            Ok(Created::Existing(observe(t, iam, name, &account, inline, owner).await?))
        }
        Ok(Creation::AtRoleQuota(message)) => Err(crate::Error::RoleQuotaReached {
            account,
            role: name.to_string(),
            message,
        }),
        Err(refused) => Err(t.refused(&refused, &account, &format!("role/{name}"))),
    }
}

/// Puts back, on an existing role, what differs from the spec: the boundary, the trust policy.
async fn restore(
    t: &mut Transfer<'_>,
    iam: &aws_sdk_iam::Client,
    name: &str,
    arn: &str,
    changes: &RoleChanges,
    trust: &serde_json::Value,
    boundary: Option<&str>,
) -> Result<()> {
    let account = t.account_a_id().to_string();
    let resource = format!("role/{name}");
    if changes.put_boundary
        && let Some(boundary) = boundary
    {
        iam.put_role_permissions_boundary()
            .role_name(name)
            .permissions_boundary(boundary)
            .send()
            .await
            .map_err(|e| t.sdk_error(&e, &account, "iam:PutRolePermissionsBoundary", &resource))?;
        t.permissions_changed();
        t.changed(
            "RoleBoundaryRestored",
            format!("put the permissions boundary {boundary} (back) on {arn}"),
        )
        .await;
    }

    if changes.update_trust {
        iam.update_assume_role_policy()
            .role_name(name)
            .policy_document(trust.to_string())
            .send()
            .await
            .map_err(|e| t.sdk_error(&e, &account, "iam:UpdateAssumeRolePolicy", &resource))?;
        t.permissions_changed();
        t.changed(
            "RoleTrustRestored",
            format!("put back the DataSync trust policy of {arn}"),
        )
        .await;
    }
    Ok(())
}

/// Puts the transfer's inline policy on the role; `false` when IAM refuses it because the
/// role's inline policies would pass their 10,240 characters (`LimitExceeded`, "Maximum policy
/// size ... exceeded", [`aws::iam::put_role_policy`]).
async fn put_inline(
    t: &mut Transfer<'_>,
    iam: &aws_sdk_iam::Client,
    name: &str,
    arn: &str,
    inline_name: &str,
    inline: &serde_json::Value,
    restored: bool,
) -> Result<bool> {
    let account = t.account_a_id().to_string();
    match aws::iam::put_role_policy(iam, name, inline_name, inline).await {
        Ok(true) => {}
        Ok(false) => return Ok(false),
        Err(refused) => return Err(t.refused(&refused, &account, &format!("role/{name}"))),
    }
    t.permissions_changed();
    if restored {
        t.changed(
            "RolePolicyRestored",
            format!("put back the inline policy {inline_name} of {arn}"),
        )
        .await;
    }
    Ok(true)
}

/// Reads the role and, when `inline` names one, that inline policy; `None` when the role does
/// not exist.
async fn observe(
    t: &Transfer<'_>,
    iam: &aws_sdk_iam::Client,
    name: &str,
    account: &str,
    inline: Option<&str>,
    owner: Owner<'_>,
) -> Result<Option<ObservedRole>> {
    let Some(role) = aws::iam::read_role(iam, name, inline)
        .await
        .map_err(|refused| t.refused(&refused, account, &format!("role/{name}")))?
    else {
        return Ok(None);
    };
    let owned = owner.owns(t, &role.tags);
    Ok(Some(ObservedRole {
        arn: role.arn,
        trust: role.trust,
        inline: role.inline,
        owned,
        boundary: role.boundary,
    }))
}

/// `dataSyncRole.arn`: check the role exists in Account A and use it unchanged.
async fn use_existing(t: &mut Transfer<'_>, arn: &str) -> Result<()> {
    let account = t.account_a_id().to_string();
    if arn_account(arn) != Some(account.as_str()) {
        return Err(Error::InvalidSpec(format!(
            "spec.dataSyncRole.arn {arn} is not in Account A ({account}), the account Ferry creates the DataSync resources in; use a role of that account"
        )));
    }
    let name = role_name_from_arn(arn).unwrap_or_default();
    let iam = t.account_a.iam(&t.spec.source.region);
    match iam.get_role().role_name(name).send().await {
        Ok(_) => {}
        Err(e) if classify(&e).is_not_found() => {
            return Err(Error::AwsFailed {
                action: "iam:GetRole".into(),
                resource: arn.to_string(),
                code: "NoSuchEntity".into(),
                message: "the role in spec.dataSyncRole.arn does not exist; create it or remove spec.dataSyncRole.arn so Ferry manages one".into(),
            });
        }
        Err(e) => return Err(t.sdk_error(&e, &account, "iam:GetRole", arn)),
    }
    record(t, arn, false);
    t.condition(
        condition::ROLE_READY,
        true,
        "ExistingRole",
        format!("using the existing role {arn} as it is; Ferry does not change it"),
    );
    Ok(())
}

/// Records the role in the status; a managed role of an earlier spec (another name) is retired,
/// to be deleted once nothing uses it.
fn record(t: &mut Transfer<'_>, arn: &str, managed: bool) {
    if let Some(old) = t.status.role.clone()
        && old.managed
        && old.arn != arn
    {
        t.retire(&old.arn);
    }
    t.status.role = Some(RoleStatus {
        arn: arn.to_string(),
        managed,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn missing_role_is_created_with_its_policy() {
        let c = diff(None, &json!({}), &json!({}), Some("arn:aws:iam::1:policy/b"));
        assert_eq!(
            c,
            RoleChanges {
                create: true,
                update_trust: false,
                put_inline: true,
                put_boundary: false,
            },
            "a new role gets its boundary with CreateRole"
        );
    }

    #[test]
    fn drift_is_put_back_and_equal_documents_are_left_alone() {
        let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow"}]});
        let inline = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject"}]});
        let same = ObservedRole {
            arn: "arn:aws:iam::1:role/r".into(),
            trust: Some(trust.to_string()),
            inline: Some(serde_json::to_string_pretty(&inline).unwrap()),
            owned: true,
            boundary: None,
        };
        assert_eq!(diff(Some(&same), &trust, &inline, None), RoleChanges::default());
        let drifted = ObservedRole {
            trust: Some(json!({"Version": "2012-10-17", "Statement": []}).to_string()),
            inline: None,
            ..same
        };
        assert_eq!(
            diff(Some(&drifted), &trust, &inline, None),
            RoleChanges {
                create: false,
                update_trust: true,
                put_inline: true,
                put_boundary: false,
            }
        );
    }

    #[test]
    fn the_boundary_is_put_back_but_never_taken_away() {
        let doc = json!({"Version": "2012-10-17", "Statement": []});
        let role = |boundary: Option<&str>| ObservedRole {
            arn: "arn:aws:iam::1:role/r".into(),
            trust: Some(doc.to_string()),
            inline: Some(doc.to_string()),
            owned: true,
            boundary: boundary.map(str::to_string),
        };
        let wanted = Some("arn:aws:iam::1:policy/b");
        assert!(diff(Some(&role(None)), &doc, &doc, wanted).put_boundary, "missing");
        assert!(
            diff(Some(&role(Some("arn:aws:iam::1:policy/other"))), &doc, &doc, wanted).put_boundary,
            "changed"
        );
        assert!(!diff(Some(&role(wanted)), &doc, &doc, wanted).put_boundary, "in place");
        assert!(
            !diff(Some(&role(Some("arn:aws:iam::1:policy/other"))), &doc, &doc, None).put_boundary,
            "without --role-permissions-boundary a boundary stays"
        );
    }
}
