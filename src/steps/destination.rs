//! What Account B needs, in one place: the destination bucket's default encryption read,
//! Object Ownership with ACLs disabled (step 2), Ferry's statements in the bucket policy (step
//! 3), the destination key's policy statement, the destination location's wait for them, and
//! taking all of it back. Two ways to get it, after `spec.destination.access.mode`:
//!
//! - [`Destination::Managed`] (AssumeRole): Ferry assumes Account B's role and applies them;
//! - [`Destination::Published`] (External): Ferry never calls Account B; it publishes them in
//!   the status and waits until Account B's administrator applied them.
//!
//! The pipeline, the cleanup and the release of a previous destination all go through here, and
//! the access mode is read nowhere else: another way to reach a destination (the destination
//! account running the copy) is one more variant.

use super::ownership::{Restore, restore_action};
use super::transfer::{Progress, Transfer};
use super::{bucket_policy, encryption, location, ownership};
use crate::api::{AccessMode, DestinationStatus, condition};
use crate::aws::Account;
use crate::error::{Error, Result};
use crate::naming::bucket_arn;
use crate::policy::revoke;

/// How Ferry reaches the destination bucket's account.
pub enum Destination {
    /// AssumeRole: Ferry configures Account B itself with these credentials.
    Managed(Box<Account>),
    /// External: Ferry publishes what Account B's administrator must apply.
    Published,
}

impl Destination {
    /// The way the spec asks for; in AssumeRole mode with Account B's credentials (assumed
    /// when first used).
    pub async fn connect(t: &Transfer<'_>) -> Destination {
        match (&t.spec.destination.access.mode, &t.spec.destination.access.role_arn) {
            (AccessMode::AssumeRole, Some(role)) => {
                Destination::Managed(Box::new(t.ctx.aws.account_b(&t.account_a, role).await))
            }
            // `validate` refuses AssumeRole without a role before the pipeline runs.
            _ => Destination::Published,
        }
    }

    /// Account B's credentials, when Ferry may call Account B.
    fn account(&self) -> Option<&Account> {
        match self {
            Destination::Managed(b) => Some(b),
            Destination::Published => None,
        }
    }

    /// Step 0 for both buckets: the destination's default encryption read in Account B, or,
    /// published, the key the spec names.
    pub async fn observe_encryption(&self, t: &mut Transfer<'_>) -> Result<()> {
        encryption::observe(t, self.account()).await
    }

    /// Steps 2 and 3: ACLs disabled, Ferry's bucket-policy statements, the destination key's
    /// statement — applied, or published for Account B's administrator. A destination bucket
    /// the spec moved away from is given back first.
    pub async fn prepare(&self, t: &mut Transfer<'_>) -> Result<()> {
        if let Destination::Managed(b) = self {
            release_previous(t, b).await;
            ownership::ensure(t, b).await?;
            bucket_policy::ensure(t, b).await?;
        } else {
            bucket_policy::publish(t);
        }
        encryption::ensure_key_policy(t, self.account()).await
    }

    /// Step 5's destination location. Published, an access refusal means Account B has not
    /// applied the policy yet: the pipeline waits instead of failing.
    pub async fn locate(&self, t: &mut Transfer<'_>) -> Result<Progress> {
        let published = matches!(self, Destination::Published);
        match location::ensure_destination(t).await {
            Ok(()) => {}
            Err(Error::AccessDenied { message, .. } | Error::IamPropagation { message, .. }) if published => {
                t.condition(
                    condition::LOCATIONS_READY,
                    false,
                    "AwaitingDestination",
                    format!(
                        "the destination location cannot be created yet: Account B has not granted access to bucket {} ({message})",
                        t.spec.destination.bucket
                    ),
                );
                return Ok(Progress::AwaitingDestination);
            }
            Err(e) => return Err(e),
        }
        if published {
            t.condition(
                condition::DESTINATION_READY,
                true,
                "BucketPolicyApplied",
                format!(
                    "External mode: Account B has applied the bucket policy; DataSync can reach bucket {}",
                    t.spec.destination.bucket
                ),
            );
        }
        location::report(t);
        Ok(Progress::Provisioned)
    }

    /// Deletion: this transfer's principals out of Ferry's statements of the bucket and key
    /// policies, and the bucket's Object Ownership back when it was the last one. Published:
    /// nothing (Account B's administrator applied it; Ferry never calls Account B).
    pub async fn release(&self, t: &mut Transfer<'_>) -> Result<()> {
        let Destination::Managed(b) = self else {
            return Ok(());
        };
        let destination = t.status.destination.clone().unwrap_or_else(|| DestinationStatus {
            bucket: Some(t.spec.destination.bucket.clone()),
            region: Some(t.spec.destination.region.clone()),
            ..DestinationStatus::default()
        });
        release_bucket(t, b, &destination).await?;
        if let Some(key) = destination.key_arn.as_deref() {
            encryption::release_key(t, b, key).await?;
        }
        Ok(())
    }
}

/// Takes this transfer out of a destination bucket, under the bucket's lock: its principals out
/// of Ferry's shared statements (every other statement kept exactly), and — when no other
/// transfer's role is left in them — the bucket's Object Ownership back as Ferry first found it.
async fn release_bucket(t: &Transfer<'_>, b: &Account, dest: &DestinationStatus) -> Result<()> {
    let (Some(bucket), Some(region)) = (dest.bucket.as_deref(), dest.region.as_deref()) else {
        return Ok(());
    };
    let account_b = t.spec.destination.account_id.as_str();
    let resource = bucket_arn(region, bucket);
    let _turn = t.ctx.locks.lock(bucket).await;
    let current = match bucket_policy::read(b, region, bucket).await {
        Ok(current) => current,
        Err(f) if f.kind == crate::aws::FailureKind::NotFound => return Ok(()),
        Err(f) => return Err(t.aws_error(&f, account_b, "s3:GetBucketPolicy", &resource)),
    };
    let role_arn = t.role_arn_in_use();
    let creator = dest
        .creator_arn
        .clone()
        .unwrap_or_else(|| t.desired.destination_bucket.creator_arn.clone());
    let keep_role = t.role_shared(|o| o.spec.destination.bucket == bucket).await?;
    let revoked = revoke(
        current.as_deref(),
        &resource,
        &role_arn,
        &creator,
        keep_role,
        &t.desired.destination_bucket.legacy_sids,
    )
    .map_err(|source| crate::Error::MalformedBucketPolicy {
        bucket: bucket.to_string(),
        source,
    })?;
    if revoked.change != crate::policy::PolicyChange::Unchanged {
        bucket_policy::apply(b, region, bucket, &revoked.change)
            .await
            .map_err(|f| t.aws_error(&f, account_b, "s3:PutBucketPolicy", &resource))?;
        t.changed(
            "BucketPolicyReleased",
            format!("removed this transfer's principals from Ferry's statements in the policy of bucket {bucket}; other statements kept"),
        )
        .await;
    }
    if revoked.others_remain {
        tracing::info!(
            bucket,
            "other transfers still use the bucket: its Object Ownership stays"
        );
        return Ok(());
    }
    // The value the first transfer into the bucket found, recorded in Ferry's statement; this
    // transfer's own record when the statement had none (written by an older Ferry).
    let original = revoked.origin.or_else(|| dest.previous_ownership.clone());
    release_ownership(t, b, bucket, region, original.as_deref()).await
}

/// Puts the bucket's Object Ownership back as Ferry found it.
async fn release_ownership(
    t: &Transfer<'_>,
    b: &Account,
    bucket: &str,
    region: &str,
    original: Option<&str>,
) -> Result<()> {
    let account_b = t.spec.destination.account_id.as_str();
    let resource = bucket_arn(region, bucket);
    let result = match restore_action(original) {
        Restore::Nothing => return Ok(()),
        Restore::Put(value) => ownership::put(b, region, bucket, &value).await.map(|_| value),
        Restore::Delete => b
            .s3(region)
            .delete_bucket_ownership_controls()
            .bucket(bucket)
            .send()
            .await
            .map(|_| ownership::UNSET.to_string())
            .map_err(|e| crate::aws::classify(&e)),
    };
    match result {
        Ok(value) => {
            t.changed(
                "OwnershipRestored",
                format!("put the Object Ownership of bucket {bucket} back to {value}"),
            )
            .await;
            Ok(())
        }
        Err(f) if f.kind == crate::aws::FailureKind::NotFound => Ok(()),
        Err(f) => Err(t.aws_error(&f, account_b, "s3:PutBucketOwnershipControls", &resource)),
    }
}

/// When the spec moved to another destination bucket, the old one gets its policy and
/// ownership back (best effort: a failure is reported as a Warning event, not retried forever).
async fn release_previous(t: &mut Transfer<'_>, b: &Account) {
    let Some(dest) = t.status.destination.clone() else {
        return;
    };
    let Some(bucket) = dest.bucket.clone() else {
        return;
    };
    if bucket == t.spec.destination.bucket {
        return;
    }
    let result = release_bucket(t, b, &dest).await;
    if let Err(e) = result {
        t.ctx
            .publish(
                t.obj,
                kube::runtime::events::EventType::Warning,
                "PreviousDestinationNotReleased",
                format!("could not remove Ferry's statements from the previous destination bucket {bucket}: {e}"),
            )
            .await;
    }
    t.status.destination = None;
}
