//! Deleting what Ferry created and no longer uses: a task replaced because its locations or
//! mode changed, a location replaced because its bucket, prefix, role or storage class
//! changed, a managed role renamed. Tasks go first (they hold the locations), then
//! locations, then roles. Only resources carrying this transfer's uid tag are deleted.

use super::transfer::Transfer;
use crate::api::TaskRelease;
use crate::aws::datasync::{list_executions, owned};
use crate::aws::{Account, Failure, FailureKind, classify};
use crate::context::Context;
use crate::error::Result;
use crate::naming::{
    INLINE_POLICY_NAME, RolePool, TAG_ROLE_POOL, TransferId, arn_region, is_pool_role, role_name_from_arn,
};

/// The kind of resource behind an ARN Ferry created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A DataSync task.
    Task,
    /// A DataSync location.
    Location,
    /// An IAM role.
    Role,
}

/// The kind of an ARN, in the order resources must be deleted (pure).
pub fn kind(arn: &str) -> Option<Kind> {
    if arn.contains(":datasync:") && arn.contains(":task/") && !arn.contains("/execution/") {
        Some(Kind::Task)
    } else if arn.contains(":datasync:") && arn.contains(":location/") {
        Some(Kind::Location)
    } else if arn.contains(":iam::") && arn.contains(":role/") {
        Some(Kind::Role)
    } else {
        None
    }
}

/// A delete that found nothing to delete succeeded.
fn gone_is_done<T, E: Into<Failure>>(result: std::result::Result<T, E>) -> std::result::Result<(), Failure> {
    match result.map_err(Into::into) {
        Err(f) if f.kind == FailureKind::NotFound => Ok(()),
        Err(f) => Err(f),
        Ok(_) => Ok(()),
    }
}

/// A DataSync client for the resource's region, when the resource is this transfer's.
async fn owned_datasync(
    account: &Account,
    arn: &str,
    id: &TransferId,
) -> std::result::Result<Option<aws_sdk_datasync::Client>, Failure> {
    let client = account.datasync(arn_region(arn).unwrap_or("us-east-1"));
    Ok(owned(&client, arn, id).await?.then_some(client))
}

/// Cancels the task's running executions and deletes it, if it is this transfer's.
pub async fn delete_task(account: &Account, arn: &str, id: &TransferId) -> std::result::Result<bool, Failure> {
    let Some(client) = owned_datasync(account, arn, id).await? else {
        return Ok(false);
    };
    match list_executions(&client, arn).await {
        Ok(executions) => {
            for (exec, status) in executions {
                if crate::api::is_running_status(&status) && status != "CANCELLING" {
                    gone_is_done(client.cancel_task_execution().task_execution_arn(&exec).send().await)?;
                }
            }
        }
        Err(f) if f.kind == FailureKind::NotFound => return Ok(true),
        Err(f) => return Err(f),
    }
    gone_is_done(client.delete_task().task_arn(arn).send().await)?;
    Ok(true)
}

/// Deletes a location, if it is this transfer's.
pub async fn delete_location(account: &Account, arn: &str, id: &TransferId) -> std::result::Result<bool, Failure> {
    let Some(client) = owned_datasync(account, arn, id).await? else {
        return Ok(false);
    };
    gone_is_done(client.delete_location().location_arn(arn).send().await)?;
    Ok(true)
}

/// What releasing a role did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleRelease {
    /// Not Ferry's for this transfer (or not there): nothing was done.
    NotOurs,
    /// The transfer's own role, or a shared role this transfer was the last member of, is
    /// deleted.
    Deleted,
    /// The transfer's inline policy is off a shared role that other transfers still use.
    Left,
}

/// A role that is not there is as good as deleted.
fn already_gone(f: Failure) -> std::result::Result<RoleRelease, Failure> {
    if f.is_not_found() {
        Ok(RoleRelease::Deleted)
    } else {
        Err(f)
    }
}

/// Releases a role Ferry made for this transfer: its own role (carrying its uid tag) is
/// deleted, its inline policy first; on a shared role (the pool's tag) only its own inline
/// policy is deleted, and the role too once no transfer's policy is left on it. IAM refuses to
/// delete a role that still has inline policies (`DeleteConflict`), so a member that joined in
/// the meantime keeps it.
pub async fn delete_role(
    ctx: &Context,
    account: &Account,
    region: &str,
    arn: &str,
    id: &TransferId,
) -> std::result::Result<RoleRelease, Failure> {
    let Some(name) = role_name_from_arn(arn) else {
        return Ok(RoleRelease::NotOurs);
    };
    let iam = account.iam(region);
    let role = match iam.get_role().role_name(name).send().await {
        Ok(out) => out.role,
        Err(e) => return already_gone(classify(&e)),
    };
    let Some(role) = role else {
        return Ok(RoleRelease::Deleted);
    };
    let tags = || role.tags().iter().map(|t| (t.key(), t.value()));
    if is_pool_role(tags()) {
        let pool = tags()
            .find(|(k, _)| *k == TAG_ROLE_POOL)
            .and_then(|(_, v)| v.rsplit_once('/'))
            .map(|(_, hash)| hash.to_string())
            .unwrap_or_default();
        let _turn = ctx.locks.lock(&RolePool::lock_key(&pool)).await;
        let member = match iam
            .delete_role_policy()
            .role_name(name)
            .policy_name(id.member_policy_name())
            .send()
            .await
        {
            Ok(_) => true,
            Err(e) if classify(&e).is_not_found() => false,
            Err(e) => return Err(classify(&e)),
        };
        if member && let Some(shard) = name.rsplit_once('-').and_then(|(_, n)| n.parse().ok()) {
            ctx.role_pools.freed(&pool, shard);
        }
        let left = match iam.list_role_policies().role_name(name).send().await {
            Ok(out) => out.policy_names.len(),
            Err(e) => return already_gone(classify(&e)),
        };
        if left > 0 {
            return Ok(if member {
                RoleRelease::Left
            } else {
                RoleRelease::NotOurs
            });
        }
        return match iam.delete_role().role_name(name).send().await {
            Ok(_) => Ok(RoleRelease::Deleted),
            Err(e) if classify(&e).code == "DeleteConflict" => Ok(RoleRelease::Left),
            Err(e) => gone_is_done(Err::<(), _>(e)).map(|()| RoleRelease::Deleted),
        };
    }
    if !id.owns(tags()) {
        return Ok(RoleRelease::NotOurs);
    }
    gone_is_done(
        iam.delete_role_policy()
            .role_name(name)
            .policy_name(INLINE_POLICY_NAME)
            .send()
            .await,
    )?;
    gone_is_done(iam.delete_role().role_name(name).send().await)?;
    Ok(RoleRelease::Deleted)
}

/// Deletes retired resources, tasks first. A location still held by a task stays for later.
pub async fn collect(t: &mut Transfer<'_>) -> Result<()> {
    if t.status.retired.is_empty() {
        return Ok(());
    }
    let mut arns = t.status.retired.clone();
    arns.sort_by_key(|a| kind(a));
    let account = t.account_a_id().to_string();
    let region = t.spec.source.region.clone();
    let mut changed = false;
    for arn in arns {
        let (result, action) = match kind(&arn) {
            Some(Kind::Task) => (delete_task(&t.account_a, &arn, t.id()).await, "datasync:DeleteTask"),
            Some(Kind::Location) => (
                delete_location(&t.account_a, &arn, t.id()).await,
                "datasync:DeleteLocation",
            ),
            Some(Kind::Role) => (
                delete_role(t.ctx, &t.account_a, &region, &arn, t.id())
                    .await
                    .map(|r| r != RoleRelease::NotOurs),
                "iam:DeleteRole",
            ),
            None => (Ok(false), "none"),
        };
        match result {
            Ok(deleted) => {
                if deleted && kind(&arn) == Some(Kind::Task) {
                    t.ctx.task_queue.freed_task(&arn);
                }
                if deleted {
                    t.changed(
                        "RetiredDeleted",
                        format!("deleted {arn}, which the current spec no longer uses"),
                    )
                    .await;
                }
                t.status.retired.retain(|a| a != &arn);
                changed = true;
            }
            Err(f) if f.kind == FailureKind::Other => {
                // Typically a location still used by a task being deleted: try again next time.
                tracing::info!(arn, code = %f.code, "retired resource not deleted yet: {}", f.message);
            }
            Err(f) => return Err(t.aws_error(&f, &account, action, &arn)),
        }
    }
    if changed {
        t.persist().await?;
    }
    Ok(())
}

/// Whether the task was released after a successful run and no run is asked for: the
/// locations, task and execution steps have nothing to do (no AWS call); the next run request
/// creates them again.
pub fn released_and_idle(t: &mut Transfer<'_>) -> bool {
    if t.status.released_at.is_none() {
        return false;
    }
    let token = t.obj.run_token();
    if t.spec
        .pending_run(t.generation, token, t.status.last_run.as_ref())
        .is_some()
        || t.spec.task.release != TaskRelease::AfterSuccess
    {
        t.status.released_at = None;
        return false;
    }
    t.condition(
        "LocationsReady",
        true,
        "Released",
        "the locations were deleted after the run succeeded (spec.task.release: AfterSuccess); the next run request creates them again",
    );
    t.condition(
        "TaskReady",
        true,
        "Released",
        "the task was deleted after the run succeeded (spec.task.release: AfterSuccess); the next run request creates it again",
    );
    true
}

/// With `spec.task.release: AfterSuccess`, deletes the task and both locations once the run
/// asked for succeeded (status, history and report stay), and frees the task's slot for a
/// transfer waiting at DataSync's task quota.
pub async fn release_after_success(t: &mut Transfer<'_>) -> Result<()> {
    let done = t.status.execution.as_ref().is_some_and(|e| e.succeeded())
        && t.status.last_run.as_ref().and_then(|r| r.execution_arn.as_deref())
            == t.status.execution.as_ref().map(|e| e.arn.as_str());
    let pending = t
        .spec
        .pending_run(t.generation, t.obj.run_token(), t.status.last_run.as_ref())
        .is_some();
    if t.spec.task.release != TaskRelease::AfterSuccess || !done || pending {
        return Ok(());
    }
    let Some(task) = t.status.task_arn.clone() else {
        return Ok(());
    };
    let account = t.account_a_id().to_string();
    if delete_task(&t.account_a, &task, t.id())
        .await
        .map_err(|f| t.aws_error(&f, &account, "datasync:DeleteTask", &task))?
    {
        t.ctx.task_queue.freed_task(&task);
    }
    t.status.task_arn = None;
    for arn in [
        t.status.source_location_arn.take(),
        t.status.destination_location_arn.take(),
    ]
    .into_iter()
    .flatten()
    {
        delete_location(&t.account_a, &arn, t.id())
            .await
            .map_err(|f| t.aws_error(&f, &account, "datasync:DeleteLocation", &arn))?;
    }
    t.status.released_at = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        jiff::Timestamp::now(),
    ));
    t.changed(
        "TaskReleased",
        format!("the run succeeded: deleted DataSync task {task} and its locations (spec.task.release: AfterSuccess); the next run request creates them again"),
    )
    .await;
    released_and_idle(t);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_sort_tasks_locations_roles() {
        let mut arns = [
            "arn:aws:iam::1:role/ferry-x".to_string(),
            "arn:aws:datasync:us-east-1:1:location/loc-1".to_string(),
            "arn:aws:datasync:us-west-1:1:task/task-1".to_string(),
        ];
        arns.sort_by_key(|a| kind(a));
        assert_eq!(kind(&arns[0]), Some(Kind::Task));
        assert_eq!(kind(&arns[1]), Some(Kind::Location));
        assert_eq!(kind(&arns[2]), Some(Kind::Role));
        assert_eq!(kind("arn:aws:datasync:us-west-1:1:task/task-1/execution/exec-1"), None);
    }
}
