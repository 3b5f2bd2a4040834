//! Step 3 (the other account): the foreign bucket's policy — the destination's (the tutorial's
//! write statements) or, when the destination account runs the copy, the source's (read-only
//! statements). Ferry's two statements are shared by every transfer using the bucket: each adds
//! only its DataSync role and creating identity as principals, so 100 transfers fit S3's 20 KB.
//! Every other statement is kept exactly; the policy is read fresh and written under the
//! bucket's lock, and only when the result differs. In External mode nothing is called: the
//! statements are published in the status for the other account's administrator.

use super::transfer::Transfer;
use crate::api::ForeignBucketStatus;
use crate::aws::{Account, Failure, classify};
use crate::desired::{DesiredBucket, Side};
use crate::error::{Error, Result};
use crate::policy::{
    BUCKET_OWNER_ENFORCED, CREATE_LOCATION_SID, Grant, MAX_BUCKET_POLICY_BYTES, PolicyChange, grant, policy_size,
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

/// Records what Ferry asks of the foreign bucket in the status (`required`: the policy the
/// other account's administrator must apply, External mode).
fn record(t: &mut Transfer<'_>, want: &DesiredBucket, required: Option<String>) {
    let dest = t
        .status
        .foreign_mut(want.side == Side::Source)
        .get_or_insert_with(ForeignBucketStatus::default);
    dest.bucket = Some(want.bucket.clone());
    dest.region = Some(want.region.clone());
    dest.creator_arn = Some(want.creator_arn.clone());
    dest.policy_statement_ids = want.sids.clone();
    dest.required_bucket_policy = required;
}

/// Publishes Ferry's statements for the other account's administrator (Ferry never calls it).
pub fn publish(t: &mut Transfer<'_>) {
    let want = t.desired.foreign_bucket.clone();
    record(t, &want, Some(want.required_policy()));
    let (field, ownership) = match want.side {
        Side::Destination => ("destination", " and set its Object Ownership to BucketOwnerEnforced"),
        Side::Source => ("source", ""),
    };
    let location = match want.side {
        Side::Destination => &t.status.destination_location_arn,
        Side::Source => &t.status.source_location_arn,
    };
    if location.is_none() {
        t.condition(
            want.side.ready_condition(),
            false,
            "AwaitingBucketPolicy",
            format!(
                "External mode: {} must add the principals in status.{field}.requiredBucketPolicy to the policy of bucket {}{ownership} (`ferry policy -f <manifest> --existing <current-policy.json>` prints the merged policy); Ferry checks again every {}s",
                want.side.owner(&want.account_id),
                want.bucket,
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
            && t.role_used_by_others(arn, |o| o.spec.foreign_bucket() == bucket)
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
    if !shared_principals(back.as_deref(), want.side.reach()).is_ok_and(|(roles, _)| roles.contains(&want.role_arn)) {
        return Err(Error::ConcurrentWrite {
            action: "s3:PutBucketPolicy".into(),
            resource: resource.to_string(),
            message: "the policy read back after the write lacks this transfer's role".into(),
        });
    }
    Ok(())
}

/// Ensures this transfer's principals are in Ferry's shared statements of the foreign bucket's
/// policy, with the other account's credentials.
pub async fn ensure(t: &mut Transfer<'_>, account: &Account) -> Result<()> {
    let want = t.desired.foreign_bucket.clone();
    let (bucket, region, account_b) = (want.bucket.clone(), want.region.clone(), want.account_id.clone());

    let resource = want.bucket_arn.clone();
    // One writer per bucket in this operator: the policy is read fresh under the lock.
    let _turn = t.ctx.locks.lock(&bucket).await;
    let current = read(account, &region, &bucket)
        .await
        .map_err(|f| t.aws_error(&f, &account_b, "s3:GetBucketPolicy", &resource))?;
    if want.side == Side::Destination && requires_sse_c(current.as_deref()) {
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
        .foreign(want.side == Side::Source)
        .filter(|d| d.bucket.as_deref() == Some(bucket.as_str()))
        .and_then(|d| d.previous_ownership.clone())
        .filter(|o| o != BUCKET_OWNER_ENFORCED);
    let additions = Grant {
        reach: want.side.reach(),
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
                "added the DataSync role {} to Ferry's statements {} and {CREATE_LOCATION_SID} of the policy of bucket {bucket} (account {account_b}); other statements kept",
                want.role_arn,
                want.side.reach().access_sid()
            ),
        )
        .await;
    }
    record(t, &want, None);
    let message = match want.side {
        Side::Destination => {
            format!("bucket {bucket} (account {account_b}) has ACLs disabled and grants DataSync access in its policy")
        }
        Side::Source => format!("bucket {bucket} (account {account_b}) grants DataSync read access in its policy"),
    };
    t.condition(want.side.ready_condition(), true, "BucketConfigured", message);
    Ok(())
}
