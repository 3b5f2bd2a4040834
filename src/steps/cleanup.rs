//! Deletion (`deletionPolicy: Delete`): the pipeline backwards. The task, the locations,
//! Ferry's own bucket-policy statements (only those), the role Ferry created, and the bucket's
//! Object Ownership put back as it was found. Whatever is already gone counts as deleted;
//! whatever does not carry this transfer's tag is left alone.

use super::bucket_policy;
use super::encryption;
use super::ownership::{self, Restore, restore_action};
use super::retired::{Kind, delete_location, delete_role, delete_task, kind};
use super::transfer::Transfer;
use crate::api::{AccessMode, DestinationStatus};
use crate::aws::Account;
use crate::aws::datasync::{list_locations, list_tasks};
use crate::error::Result;
use crate::naming::bucket_arn;
use crate::policy::revoke;

fn push_unique(list: &mut Vec<String>, arn: Option<&str>) {
    if let Some(arn) = arn.filter(|a| !a.is_empty())
        && !list.iter().any(|a| a == arn)
    {
        list.push(arn.to_string());
    }
}

/// Removes everything Ferry created for the transfer.
pub async fn run(t: &mut Transfer<'_>) -> Result<()> {
    let account = t.account_a_id().to_string();
    let spec = t.spec;

    // Tasks: recorded, retired, and any of ours by name (a crash may have left one unrecorded).
    let mut tasks = Vec::new();
    push_unique(&mut tasks, t.status.task_arn.as_deref());
    for arn in t.status.retired.iter().filter(|a| kind(a) == Some(Kind::Task)) {
        push_unique(&mut tasks, Some(arn));
    }
    let dst_client = t.account_a.datasync(&spec.destination.region);
    let named = list_tasks(&dst_client)
        .await
        .map_err(|f| t.aws_error(&f, &account, "datasync:ListTasks", &t.id().task_name()))?;
    for (arn, name) in &named {
        if *name == t.id().task_name() {
            push_unique(&mut tasks, Some(arn));
        }
    }
    for arn in &tasks {
        if delete_task(&t.account_a, arn, t.id())
            .await
            .map_err(|f| t.aws_error(&f, &account, "datasync:DeleteTask", arn))?
        {
            t.ctx.task_queue.freed_task(arn);
            t.changed("TaskDeleted", format!("deleted DataSync task {arn}")).await;
        }
    }
    t.status.task_arn = None;

    // Locations: recorded, retired, and any of ours with the spec's URIs.
    let mut locations = Vec::new();
    push_unique(&mut locations, t.status.source_location_arn.as_deref());
    push_unique(&mut locations, t.status.destination_location_arn.as_deref());
    for arn in t.status.retired.iter().filter(|a| kind(a) == Some(Kind::Location)) {
        push_unique(&mut locations, Some(arn));
    }
    for want in [&t.desired.source, &t.desired.destination] {
        let (region, uri) = (&want.region, &want.uri);
        let found = list_locations(&t.account_a.datasync(region), Some(uri))
            .await
            .map_err(|f| t.aws_error(&f, &account, "datasync:ListLocations", uri))?;
        for (arn, _) in &found {
            push_unique(&mut locations, Some(arn));
        }
    }
    for arn in &locations {
        if delete_location(&t.account_a, arn, t.id())
            .await
            .map_err(|f| t.aws_error(&f, &account, "datasync:DeleteLocation", arn))?
        {
            t.changed("LocationDeleted", format!("deleted DataSync location {arn}"))
                .await;
        }
    }
    t.status.source_location_arn = None;
    t.status.destination_location_arn = None;

    // Account B: Ferry's statements out of the policy, then (below) the ownership put back.
    let destination = t.status.destination.clone().unwrap_or_else(|| DestinationStatus {
        bucket: Some(spec.destination.bucket.clone()),
        region: Some(spec.destination.region.clone()),
        ..DestinationStatus::default()
    });
    let account_b = match (&spec.destination.access.mode, t.account_b().cloned()) {
        (AccessMode::AssumeRole, Some(b)) => Some(b),
        _ => None,
    };
    if let Some(b) = &account_b {
        release_bucket(t, b, &destination).await?;
        if let Some(key) = destination.key_arn.as_deref() {
            encryption::release_key(t, b, key).await?;
        }
    }

    // Roles: the managed one, retired ones, and the default-named one if it is ours.
    let mut roles = Vec::new();
    if let Some(role) = t.status.role.as_ref().filter(|r| r.managed) {
        push_unique(&mut roles, Some(&role.arn));
    }
    for arn in t.status.retired.iter().filter(|a| kind(a) == Some(Kind::Role)) {
        push_unique(&mut roles, Some(arn));
    }
    if t.desired.role.managed.is_some() {
        push_unique(&mut roles, Some(&t.desired.role.arn));
    }
    for arn in &roles {
        if delete_role(&t.account_a, &spec.source.region, arn, t.id())
            .await
            .map_err(|f| t.aws_error(&f, &account, "iam:DeleteRole", arn))?
        {
            t.changed("RoleDeleted", format!("deleted IAM role {arn}")).await;
        }
    }
    t.status.role = None;
    t.status.retired.clear();
    Ok(())
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
    let _turn = t.ctx.buckets.lock(bucket).await;
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
pub async fn release_previous_destination(t: &mut Transfer<'_>) {
    let Some(dest) = t.status.destination.clone() else {
        return;
    };
    let (Some(bucket), Some(b)) = (dest.bucket.clone(), t.account_b().cloned()) else {
        return;
    };
    if bucket == t.spec.destination.bucket {
        return;
    }
    let result = release_bucket(t, &b, &dest).await;
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
