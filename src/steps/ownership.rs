//! Step 2 (Account B): ACLs disabled on the destination bucket (Object Ownership
//! `BucketOwnerEnforced`), so every copied object belongs to Account B. The setting found
//! first is kept in the status before anything changes, and put back on deletion.

use super::transfer::Transfer;
use crate::api::ForeignBucketStatus;
use crate::aws::{Account, Failure, classify};
use crate::error::Result;
use aws_sdk_s3::types::{ObjectOwnership, OwnershipControls, OwnershipControlsRule};

/// The setting Ferry wants.
pub const ENFORCED: &str = crate::policy::BUCKET_OWNER_ENFORCED;
/// Recorded when the bucket had no ownership controls at all.
pub const UNSET: &str = "Unset";

/// What deletion does to the ownership setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Restore {
    /// Nothing was changed (or nothing is known): leave it.
    Nothing,
    /// Put this setting back.
    Put(String),
    /// The bucket had no ownership controls: delete them.
    Delete,
}

/// Whether the observed setting must change (pure).
pub fn needs_change(observed: &str) -> bool {
    observed != ENFORCED
}

/// What to put back, given the setting found first (pure).
pub fn restore_action(previous: Option<&str>) -> Restore {
    match previous {
        None | Some(ENFORCED) => Restore::Nothing,
        Some(UNSET) => Restore::Delete,
        Some(other) => Restore::Put(other.to_string()),
    }
}

/// Reads the bucket's Object Ownership (`Unset` when it has no ownership controls).
pub async fn observe(account: &Account, region: &str, bucket: &str) -> std::result::Result<String, Failure> {
    match account
        .s3(region)
        .get_bucket_ownership_controls()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => Ok(out
            .ownership_controls()
            .and_then(|c| c.rules().first())
            .map(|r| r.object_ownership().as_str().to_string())
            .unwrap_or_else(|| UNSET.to_string())),
        Err(e) => {
            let failure = classify(&e);
            if failure.code == "OwnershipControlsNotFoundError" {
                Ok(UNSET.to_string())
            } else {
                Err(failure)
            }
        }
    }
}

/// Writes an Object Ownership setting.
pub async fn put(
    account: &Account,
    region: &str,
    bucket: &str,
    value: &str,
) -> std::result::Result<(), crate::aws::Failure> {
    let rule = OwnershipControlsRule::builder()
        .object_ownership(ObjectOwnership::from(value))
        .build()?;
    let controls = OwnershipControls::builder().rules(rule).build()?;
    account
        .s3(region)
        .put_bucket_ownership_controls()
        .bucket(bucket)
        .ownership_controls(controls)
        .send()
        .await?;
    Ok(())
}

/// Ensures ACLs are disabled on the destination bucket, with Account B's credentials.
pub async fn ensure(t: &mut Transfer<'_>, account: &Account) -> Result<()> {
    let bucket = t.spec.destination.bucket.clone();
    let region = t.spec.destination.region.clone();
    let account_b = t.spec.destination.account_id.clone();
    let resource = crate::naming::bucket_arn(&region, &bucket);
    let _turn = t.ctx.locks.lock(&bucket).await;
    let observed = observe(account, &region, &bucket)
        .await
        .map_err(|f| t.aws_error(&f, &account_b, "s3:GetBucketOwnershipControls", &resource))?;

    let recorded_now = {
        let dest = t.status.destination.get_or_insert_with(ForeignBucketStatus::default);
        if dest.bucket.as_deref() != Some(bucket.as_str()) {
            // A new destination bucket: its own facts start now (the old bucket was released
            // by `cleanup::release_previous_destination` above).
            *dest = ForeignBucketStatus {
                bucket: Some(bucket.clone()),
                region: Some(region.clone()),
                ..ForeignBucketStatus::default()
            };
        }
        let first_look = dest.previous_ownership.is_none();
        if first_look {
            dest.previous_ownership = Some(observed.clone());
        }
        first_look
    };
    if recorded_now && needs_change(&observed) {
        // Remember the original before changing it, so a crash cannot lose it.
        t.persist().await?;
    }
    if needs_change(&observed) {
        put(account, &region, &bucket, ENFORCED)
            .await
            .map_err(|f| t.aws_error(&f, &account_b, "s3:PutBucketOwnershipControls", &resource))?;
        t.changed(
            "AclsDisabled",
            format!("set Object Ownership of bucket {bucket} (account {account_b}) to {ENFORCED}; it was {observed}"),
        )
        .await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_enforced_is_left_alone() {
        assert!(!needs_change(ENFORCED));
        assert!(needs_change("ObjectWriter"));
        assert!(needs_change(UNSET));
    }

    #[test]
    fn restore_puts_back_what_was_found() {
        assert_eq!(restore_action(None), Restore::Nothing);
        assert_eq!(restore_action(Some(ENFORCED)), Restore::Nothing);
        assert_eq!(restore_action(Some(UNSET)), Restore::Delete);
        assert_eq!(
            restore_action(Some("ObjectWriter")),
            Restore::Put("ObjectWriter".into())
        );
    }
}
