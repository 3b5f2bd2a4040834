//! Step 3 (Account B): the destination bucket policy. Ferry's two statements (the tutorial's)
//! are put in by Sid; every other statement is kept exactly; the policy is written only when
//! the result differs. In External mode nothing is called: the exact statements are published
//! in the status for Account B's administrator.

use super::transfer::Transfer;
use crate::api::{AccessMode, DestinationStatus, condition};
use crate::aws::{Account, Failure, classify};
use crate::error::{Error, Result};
use crate::policy::{PolicyChange, merge_statements};

/// Reads a bucket policy (`None` when the bucket has none).
pub async fn read(account: &Account, region: &str, bucket: &str) -> std::result::Result<Option<String>, Failure> {
    match account.s3(region).get_bucket_policy().bucket(bucket).send().await {
        Ok(out) => Ok(out.policy().map(str::to_string)),
        Err(e) => {
            let failure = classify(&e);
            if failure.code == "NoSuchBucketPolicy" {
                Ok(None)
            } else {
                Err(failure)
            }
        }
    }
}

/// Applies a computed change to a bucket policy.
pub async fn apply(
    account: &Account,
    region: &str,
    bucket: &str,
    change: &PolicyChange,
) -> std::result::Result<(), Failure> {
    let s3 = account.s3(region);
    match change {
        PolicyChange::Unchanged => {}
        PolicyChange::Put(doc) => {
            s3.put_bucket_policy().bucket(bucket).policy(doc).send().await?;
        }
        PolicyChange::Delete => {
            s3.delete_bucket_policy().bucket(bucket).send().await?;
        }
    }
    Ok(())
}

/// Ensures Ferry's statements are in the destination bucket policy (or published, External mode).
pub async fn ensure(t: &mut Transfer<'_>) -> Result<()> {
    let want = t.desired.destination_bucket.clone();
    let (sids, ours) = (want.sids.clone(), want.statements.clone());
    let (bucket, region, account_b) = (want.bucket.clone(), want.region.clone(), want.account_id.clone());
    let creator = want.creator_arn.clone();

    if want.access == AccessMode::External {
        let required = want.required_policy();
        let dest = t.status.destination.get_or_insert_with(DestinationStatus::default);
        dest.bucket = Some(bucket.clone());
        dest.region = Some(region.clone());
        dest.creator_arn = Some(creator);
        dest.policy_statement_ids = sids;
        dest.required_bucket_policy = Some(required);
        if t.status.destination_location_arn.is_none() {
            t.condition(
                condition::DESTINATION_READY,
                false,
                "AwaitingBucketPolicy",
                format!(
                    "External mode: Account B ({account_b}) must add the statements in status.destination.requiredBucketPolicy to the policy of bucket {bucket} and set its Object Ownership to BucketOwnerEnforced (`ferry policy -f <manifest> --existing <current-policy.json>` prints the merged policy); Ferry checks again every {}s",
                    t.ctx.config.external_retry.as_secs()
                ),
            );
        }
        return Ok(());
    }

    let account = t.assumed_account_b()?;
    let resource = crate::naming::bucket_arn(&region, &bucket);
    let current = read(&account, &region, &bucket)
        .await
        .map_err(|f| t.aws_error(&f, &account_b, "s3:GetBucketPolicy", &resource))?;
    let change = merge_statements(current.as_deref(), &sids, &ours).map_err(|source| Error::MalformedBucketPolicy {
        bucket: bucket.clone(),
        source,
    })?;
    if change != PolicyChange::Unchanged {
        apply(&account, &region, &bucket, &change)
            .await
            .map_err(|f| t.aws_error(&f, &account_b, "s3:PutBucketPolicy", &resource))?;
        t.permissions_changed();
        t.changed(
            "BucketPolicyUpdated",
            format!("put Ferry's statements {} into the policy of bucket {bucket} (account {account_b}); other statements kept", sids.join(", ")),
        )
        .await;
    }
    let dest = t.status.destination.get_or_insert_with(DestinationStatus::default);
    dest.bucket = Some(bucket.clone());
    dest.region = Some(region.clone());
    dest.creator_arn = Some(creator);
    dest.policy_statement_ids = sids;
    dest.required_bucket_policy = None;
    t.condition(
        condition::DESTINATION_READY,
        true,
        "BucketConfigured",
        format!("bucket {bucket} (account {account_b}) has ACLs disabled and grants DataSync access in its policy"),
    );
    Ok(())
}
