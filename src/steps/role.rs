//! Step 1 (Account A): the IAM role DataSync assumes. Trusted by `datasync.amazonaws.com`
//! with the confused-deputy conditions; its inline policy is the tutorial's two destination
//! statements plus read access to the source. Drift in either document is put back. A role
//! given by ARN is used as it is and never modified.

use serde_json::Value;

use super::transfer::Transfer;
use crate::api::{RoleStatus, condition};
use crate::aws::classify;
use crate::desired::ManagedRole;
use crate::error::{Error, Result};
use crate::naming::{INLINE_POLICY_NAME, arn_account, role_name_from_arn};
use crate::policy::{decode_iam_document, same_document};

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
    let ManagedRole {
        name,
        description,
        trust,
        inline,
        inline_name,
    } = managed;
    let region = t.spec.source.region.clone();
    let account = t.account_a_id().to_string();
    let iam = t.account_a.iam(&region);
    let boundary = t.ctx.config.role_permissions_boundary.clone();

    // A role this transfer never recorded is most likely new: create it straight away and read
    // it only if it exists (a crash after the create, or someone else's role of that name).
    let mut observed = if t.status.role.is_some() {
        observe(t, &iam, &name, &account).await?
    } else {
        None
    };
    let mut arn = observed.as_ref().map(|r| r.arn.clone()).unwrap_or_default();
    let mut created = false;
    if observed.is_none() {
        match create(t, &iam, &name, description, &trust, boundary.as_deref()).await? {
            Created::New(new) => {
                arn = new;
                created = true;
            }
            Created::Existing(found) => {
                observed = found;
                arn = observed.as_ref().map(|r| r.arn.clone()).unwrap_or_default();
            }
        }
    }
    if let Some(role) = &observed
        && !role.owned
    {
        return Err(Error::NotOwned {
            what: "IAM role".into(),
            name: role.arn.clone(),
            hint: "set spec.dataSyncRole.name to another name, or spec.dataSyncRole.arn to use this role unchanged"
                .into(),
        });
    }
    let changes = if created {
        diff(None, &trust, &inline, boundary.as_deref())
    } else {
        diff(observed.as_ref(), &trust, &inline, boundary.as_deref())
    };

    restore(
        t,
        &iam,
        &name,
        &arn,
        &changes,
        &trust,
        &inline,
        inline_name,
        boundary.as_deref(),
    )
    .await?;
    record(t, &arn, true);
    t.condition(
        condition::ROLE_READY,
        true,
        "RoleInPlace",
        format!("IAM role {arn} trusts DataSync and grants the transfer's S3 access"),
    );
    Ok(())
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
) -> Result<Created> {
    let account = t.account_a_id().to_string();
    let resource = format!("role/{name}");
    let tags = t
        .id()
        .tags()
        .into_iter()
        .filter_map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build().ok())
        .collect::<Vec<_>>();
    let sent = iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust.to_string())
        .description(description)
        .set_permissions_boundary(boundary.map(str::to_string))
        .set_tags(Some(tags))
        .send()
        .await;
    match sent {
        Ok(out) => {
            let arn = out.role().map(|r| r.arn().to_string()).unwrap_or_default();
            record(t, &arn, true);
            t.permissions_changed();
            t.persist().await?;
            t.changed("RoleCreated", format!("created IAM role {arn} for DataSync"))
                .await;
            Ok(Created::New(arn))
        }
        Err(e) if classify(&e).code == "EntityAlreadyExists" => {
            Ok(Created::Existing(observe(t, iam, name, &account).await?))
        }
        Err(e) if classify(&e).code == "LimitExceeded" && classify(&e).message.contains("RolesPerAccount") => {
            Err(crate::Error::RoleQuotaReached {
                account,
                role: name.to_string(),
                message: classify(&e).message,
            })
        }
        Err(e) => Err(t.sdk_error(&e, &account, "iam:CreateRole", &resource)),
    }
}

/// Puts back, on an existing role, what differs from the spec: the boundary, the trust policy,
/// the inline policy.
#[allow(clippy::too_many_arguments)]
async fn restore(
    t: &mut Transfer<'_>,
    iam: &aws_sdk_iam::Client,
    name: &str,
    arn: &str,
    changes: &RoleChanges,
    trust: &serde_json::Value,
    inline: &serde_json::Value,
    inline_name: &str,
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
    if changes.put_inline {
        iam.put_role_policy()
            .role_name(name)
            .policy_name(inline_name)
            .policy_document(inline.to_string())
            .send()
            .await
            .map_err(|e| t.sdk_error(&e, &account, "iam:PutRolePolicy", &resource))?;
        t.permissions_changed();
        if !changes.create {
            t.changed(
                "RolePolicyRestored",
                format!("put back the inline policy {inline_name} of {arn}"),
            )
            .await;
        }
    }
    Ok(())
}

/// Reads the role and its inline policy; `None` when the role does not exist.
async fn observe(
    t: &Transfer<'_>,
    iam: &aws_sdk_iam::Client,
    name: &str,
    account: &str,
) -> Result<Option<ObservedRole>> {
    let resource = format!("role/{name}");
    let role = match iam.get_role().role_name(name).send().await {
        Ok(out) => match out.role {
            Some(role) => role,
            None => return Ok(None),
        },
        Err(e) if classify(&e).is_not_found() => return Ok(None),
        Err(e) => return Err(t.sdk_error(&e, account, "iam:GetRole", &resource)),
    };
    let inline = match iam
        .get_role_policy()
        .role_name(name)
        .policy_name(INLINE_POLICY_NAME)
        .send()
        .await
    {
        Ok(out) => Some(decode_iam_document(out.policy_document())),
        Err(e) if classify(&e).is_not_found() => None,
        Err(e) => return Err(t.sdk_error(&e, account, "iam:GetRolePolicy", &resource)),
    };
    Ok(Some(ObservedRole {
        arn: role.arn().to_string(),
        trust: role.assume_role_policy_document().map(decode_iam_document),
        inline,
        owned: t.id().owns(role.tags().iter().map(|tag| (tag.key(), tag.value()))),
        boundary: role
            .permissions_boundary()
            .and_then(|b| b.permissions_boundary_arn())
            .map(str::to_string),
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
