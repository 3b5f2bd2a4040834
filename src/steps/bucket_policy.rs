//! Step 3 (Account B): the destination bucket policy. Ferry's two statements (the tutorial's)
//! are shared by every transfer into the bucket: each adds only its DataSync role and creating
//! identity as principals, so 100 transfers fit S3's 20 KB. Every other statement is kept
//! exactly; the policy is read fresh and written under the bucket's lock, and only when the
//! result differs. In External mode nothing is called: the statements are published in the
//! status for Account B's administrator.

use super::transfer::Transfer;
use crate::api::{DestinationStatus, condition};
use crate::aws::{Account, Failure, classify};
use crate::desired::DesiredBucket;
use crate::error::{Error, Result};
use crate::policy::{
    ACCESS_SID, BUCKET_OWNER_ENFORCED, CREATE_LOCATION_SID, Grant, MAX_BUCKET_POLICY_BYTES, PolicyChange, grant,
    policy_size,
};
use crate::policy::{requires_sse_c, shared_principals};

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

/// Publishes Ferry's statements for Account B's administrator (Ferry never calls Account B).
pub fn publish(t: &mut Transfer<'_>) {
    let want = t.desired.destination_bucket.clone();
    let (bucket, region, account_b) = (want.bucket.clone(), want.region.clone(), want.account_id.clone());
    let required = want.required_policy();
    let dest = t.status.destination.get_or_insert_with(DestinationStatus::default);
    dest.bucket = Some(bucket.clone());
    dest.region = Some(region.clone());
    dest.creator_arn = Some(want.creator_arn.clone());
    dest.policy_statement_ids = want.sids.clone();
    dest.required_bucket_policy = Some(required);
    if t.status.destination_location_arn.is_none() {
        t.condition(
            condition::DESTINATION_READY,
            false,
            "AwaitingBucketPolicy",
            format!(
                "External mode: Account B ({account_b}) must add the principals in status.destination.requiredBucketPolicy to the policy of bucket {bucket} and set its Object Ownership to BucketOwnerEnforced (`ferry policy -f <manifest> --existing <current-policy.json>` prints the merged policy); Ferry checks again every {}s",
                t.ctx.config.external_retry.as_secs()
            ),
        );
    }
}

/// Roles this transfer used before (another name): no longer principals of `bucket`, unless
/// the role is a shared one that another transfer into the bucket still uses.
async fn stale_roles(t: &Transfer<'_>, bucket: &str, role_arn: &str) -> Result<Vec<String>> {
    let mut stale = Vec::new();
    for arn in t
        .status
        .retired
        .iter()
        .filter(|a| a.contains(":role/") && *a != role_arn)
    {
        if t.is_shared_role(arn)
            && t.role_used_by_others(arn, |o| o.spec.destination.bucket == bucket)
                .await?
        {
            continue;
        }
        stale.push(arn.clone());
    }
    Ok(stale)
}

/// Writes the policy, then reads it back once: S3 has no conditional write, so another
/// writer (another operator, a person) may have replaced the policy between the read and the
/// write.
async fn put_checked(t: &Transfer<'_>, account: &Account, want: &DesiredBucket, change: &PolicyChange) -> Result<()> {
    let (bucket, region, account_b, resource) = (&want.bucket, &want.region, &want.account_id, &want.bucket_arn);
    apply(account, region, bucket, change)
        .await
        .map_err(|f| t.aws_error(&f, account_b, "s3:PutBucketPolicy", resource))?;
    let back = read(account, region, bucket)
        .await
        .map_err(|f| t.aws_error(&f, account_b, "s3:GetBucketPolicy", resource))?;
    if !shared_principals(back.as_deref()).is_ok_and(|(roles, _)| roles.contains(&want.role_arn)) {
        return Err(Error::ConcurrentWrite {
            action: "s3:PutBucketPolicy".into(),
            resource: resource.to_string(),
            message: "the policy read back after the write lacks this transfer's role".into(),
        });
    }
    Ok(())
}

/// Ensures this transfer's principals are in Ferry's shared statements of the destination
/// bucket policy, with Account B's credentials.
pub async fn ensure(t: &mut Transfer<'_>, account: &Account) -> Result<()> {
    let want = t.desired.destination_bucket.clone();
    let (bucket, region, account_b) = (want.bucket.clone(), want.region.clone(), want.account_id.clone());

    let resource = want.bucket_arn.clone();
    // One writer per bucket in this operator: the policy is read fresh under the lock.
    let _turn = t.ctx.locks.lock(&bucket).await;
    let current = read(account, &region, &bucket)
        .await
        .map_err(|f| t.aws_error(&f, &account_b, "s3:GetBucketPolicy", &resource))?;
    if requires_sse_c(current.as_deref()) {
        return Err(Error::EncryptionNotSupported {
            bucket: bucket.clone(),
            message: format!(
                "the policy of bucket {bucket} requires uploads encrypted with customer-provided keys (SSE-C), which DataSync cannot write (https://docs.aws.amazon.com/datasync/latest/userguide/create-s3-location.html); use a bucket with SSE-S3 or SSE-KMS encryption"
            ),
        });
    }
    let stale = stale_roles(t, &bucket, &want.role_arn).await?;
    // When this transfer changed the bucket's Object Ownership, the shared statement records
    // what it found, for whichever transfer leaves the bucket last.
    let origin = t
        .status
        .destination
        .as_ref()
        .filter(|d| d.bucket.as_deref() == Some(bucket.as_str()))
        .and_then(|d| d.previous_ownership.clone())
        .filter(|o| o != BUCKET_OWNER_ENFORCED);
    let additions = Grant {
        roles: std::slice::from_ref(&want.role_arn),
        creators: std::slice::from_ref(&want.creator_arn),
        stale_roles: &stale,
        origin: origin.as_deref(),
        legacy_sids: &want.legacy_sids,
    };
    let change =
        grant(current.as_deref(), &want.bucket_arn, additions).map_err(|source| Error::MalformedBucketPolicy {
            bucket: bucket.clone(),
            source,
        })?;
    if let PolicyChange::Put(doc) = &change {
        let size = policy_size(doc);
        if size > MAX_BUCKET_POLICY_BYTES {
            return Err(Error::BucketPolicyFull {
                bucket: bucket.clone(),
                size,
            });
        }
    }
    if change != PolicyChange::Unchanged {
        put_checked(t, account, &want, &change).await?;
        t.permissions_changed();
        t.changed(
            "BucketPolicyUpdated",
            format!(
                "added the DataSync role {} to Ferry's statements {ACCESS_SID} and {CREATE_LOCATION_SID} of the policy of bucket {bucket} (account {account_b}); other statements kept",
                want.role_arn
            ),
        )
        .await;
    }
    let dest = t.status.destination.get_or_insert_with(DestinationStatus::default);
    dest.bucket = Some(bucket.clone());
    dest.region = Some(region.clone());
    dest.creator_arn = Some(want.creator_arn.clone());
    dest.policy_statement_ids = want.sids.clone();
    dest.required_bucket_policy = None;
    t.condition(
        condition::DESTINATION_READY,
        true,
        "BucketConfigured",
        format!("bucket {bucket} (account {account_b}) has ACLs disabled and grants DataSync access in its policy"),
    );
    Ok(())
}
