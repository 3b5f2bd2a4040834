//! What the other account needs, in one place. That account is the destination's (Account B,
//! the tutorial's push) or, with `initiator: Destination`, the source's: the account Ferry
//! runs in then owns the DataSync role, the task and the destination bucket, and pulls.
//!
//! - push: the destination bucket's default encryption read, Object Ownership with ACLs
//!   disabled (step 2), Ferry's write statements in the bucket policy (step 3), the destination
//!   key's policy statement;
//! - pull: the source bucket's default encryption read, Ferry's read-only statements in the
//!   source bucket policy and the source key's policy statement. Object Ownership is left
//!   alone: the objects' writer is the bucket owner's own role, and S3 makes the bucket owner
//!   own objects its own account writes whatever the setting
//!   (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/about-object-ownership.html>);
//!
//! and for both the foreign location's wait for them, and taking all of it back. Two ways to
//! get there, after the foreign side's `access.mode`:
//!
//! - [`Foreign::Managed`] (AssumeRole): Ferry assumes the other account's role and applies them;
//! - [`Foreign::Published`] (External): Ferry never calls the other account; it publishes them
//!   in the status and waits until that account's administrator applied them.
//!
//! The pipeline, the cleanup and the release of a previous bucket all go through here, and
//! the access mode and direction are read nowhere else in the steps.

use super::ownership::{Restore, restore_action};
use super::transfer::{Progress, Transfer};
use super::{bucket_policy, encryption, location, ownership};
use crate::api::{AccessMode, ForeignBucketStatus, condition};
use crate::aws::Account;
use crate::desired::Side;
use crate::error::{Error, Result};
use crate::naming::bucket_arn;
use crate::policy::revoke;

/// How Ferry reaches the other account.
pub enum Foreign {
    /// AssumeRole: Ferry configures the other account itself with these credentials.
    Managed(Box<Account>),
    /// External: Ferry publishes what the other account's administrator must apply.
    Published,
}

impl Foreign {
    /// The way the spec asks for; in AssumeRole mode with the other account's credentials
    /// (assumed when first used).
    pub async fn connect(t: &Transfer<'_>) -> Foreign {
        match t.spec.foreign_access() {
            (AccessMode::AssumeRole, Some(role)) => {
                Foreign::Managed(Box::new(t.ctx.aws.account_b(&t.account_a, role).await))
            }
            // `validate` refuses AssumeRole without a role before the pipeline runs.
            _ => Foreign::Published,
        }
    }

    /// The other account's credentials, when Ferry may call it.
    fn account(&self) -> Option<&Account> {
        match self {
            Foreign::Managed(b) => Some(b),
            Foreign::Published => None,
        }
    }

    /// Step 0 for both buckets: the foreign bucket's default encryption read in its account,
    /// or, published, the key the spec names.
    pub async fn observe_encryption(&self, t: &mut Transfer<'_>) -> Result<()> {
        encryption::observe(t, self.account()).await
    }

    /// Steps 2 and 3: ACLs disabled (push only), Ferry's bucket-policy statements, the foreign
    /// key's statement — applied, or published for the other account's administrator. A
    /// foreign bucket the spec moved away from is given back first.
    pub async fn prepare(&self, t: &mut Transfer<'_>) -> Result<()> {
        if let Foreign::Managed(b) = self {
            release_previous(t, b).await;
            if t.desired.foreign_bucket.side == Side::Destination {
                ownership::ensure(t, b).await?;
            }
            bucket_policy::ensure(t, b).await?;
        } else {
            bucket_policy::publish(t);
        }
        encryption::ensure_key_policy(t, self.account()).await
    }

    /// The foreign side's location (step 4 or 5). Published, an access refusal means the other
    /// account has not applied the policy yet: the pipeline waits instead of failing.
    pub async fn locate(&self, t: &mut Transfer<'_>) -> Result<Progress> {
        let published = matches!(self, Foreign::Published);
        let want = t.desired.foreign_bucket.clone();
        let who = want.side.owner(&want.account_id);
        match location::ensure(t, want.side).await {
            Ok(()) => {}
            Err(Error::AccessDenied { message, .. } | Error::IamPropagation { message, .. }) if published => {
                t.condition(
                    condition::LOCATIONS_READY,
                    false,
                    want.side.awaiting().as_str(),
                    format!(
                        "the {} location cannot be created yet: {who} has not granted access to bucket {} ({message})",
                        want.side.label(),
                        want.bucket
                    ),
                );
                return Ok(Progress::Awaiting(want.side));
            }
            Err(e) => return Err(e),
        }
        if published {
            t.condition(
                want.side.ready_condition(),
                true,
                "BucketPolicyApplied",
                format!(
                    "External mode: {who} has applied the bucket policy; DataSync can reach bucket {}",
                    want.bucket
                ),
            );
        }
        location::report(t);
        Ok(Progress::Provisioned)
    }

    /// Deletion: this transfer's principals out of Ferry's statements of the bucket and key
    /// policies, and a destination bucket's Object Ownership back when it was the last one.
    /// Published: nothing (the other account's administrator applied it; Ferry never calls it).
    pub async fn release(&self, t: &mut Transfer<'_>) -> Result<()> {
        let Foreign::Managed(b) = self else {
            return Ok(());
        };
        let want = &t.desired.foreign_bucket;
        let recorded = t.status.foreign(t.spec.pulls()).cloned();
        let foreign = recorded.unwrap_or_else(|| ForeignBucketStatus {
            bucket: Some(want.bucket.clone()),
            region: Some(want.region.clone()),
            ..ForeignBucketStatus::default()
        });
        release_bucket(t, b, &foreign).await?;
        if let Some(key) = foreign.key_arn.as_deref() {
            encryption::release_key(t, b, key).await?;
        }
        Ok(())
    }
}

/// Takes this transfer out of the other account's bucket, under the bucket's lock: its
/// principals out of Ferry's shared statements (every other statement kept exactly), and — for
/// a destination no other transfer's role is left in — the bucket's Object Ownership back as
/// Ferry first found it.
async fn release_bucket(t: &Transfer<'_>, b: &Account, dest: &ForeignBucketStatus) -> Result<()> {
    let (Some(bucket), Some(region)) = (dest.bucket.as_deref(), dest.region.as_deref()) else {
        return Ok(());
    };
    let want = &t.desired.foreign_bucket;
    let account_b = want.account_id.as_str();
    let resource = bucket_arn(region, bucket);
    let _turn = t.ctx.locks.lock(bucket).await;
    let current = match bucket_policy::read(b, region, bucket).await {
        Ok(current) => current,
        Err(f) if f.kind == crate::aws::FailureKind::NotFound => return Ok(()),
        Err(f) => return Err(t.aws_error(&f, account_b, "s3:GetBucketPolicy", &resource)),
    };
    let role_arn = t.role_arn_in_use();
    let creator = dest.creator_arn.clone().unwrap_or_else(|| want.creator_arn.clone());
    let keep_role = t.role_shared(|o| o.spec.foreign_bucket() == bucket).await?;
    let revoked = revoke(
        current.as_deref(),
        &resource,
        want.side.reach(),
        &role_arn,
        &creator,
        keep_role,
        &want.legacy_sids,
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
    if want.side == Side::Source {
        return Ok(());
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

/// When the spec moved to another foreign bucket, the old one gets its policy (and a
/// destination its ownership) back (best effort: a failure is reported as a Warning event, not
/// retried forever).
async fn release_previous(t: &mut Transfer<'_>, b: &Account) {
    let pulls = t.spec.pulls();
    let Some(dest) = t.status.foreign(pulls).cloned() else {
        return;
    };
    let Some(bucket) = dest.bucket.clone() else {
        return;
    };
    if bucket == t.desired.foreign_bucket.bucket {
        return;
    }
    let result = release_bucket(t, b, &dest).await;
    if let Err(e) = result {
        t.ctx
            .publish(
                t.obj,
                kube::runtime::events::EventType::Warning,
                "PreviousDestinationNotReleased",
                format!(
                    "could not remove Ferry's statements from the previous {} bucket {bucket}: {e}",
                    t.desired.foreign_bucket.side.label()
                ),
            )
            .await;
    }
    *t.status.foreign_mut(pulls) = None;
}
