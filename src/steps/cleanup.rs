//! Deletion (`deletionPolicy: Delete`): the pipeline backwards. The task, the locations,
//! Ferry's own bucket-policy statements (only those), the role Ferry created, and the bucket's
//! Object Ownership put back as it was found. Whatever is already gone counts as deleted;
//! whatever does not carry this transfer's tag is left alone.

use super::foreign::Foreign;
use super::retired::{Kind, RoleRelease, delete_location, delete_role, delete_task, kind};
use super::transfer::Transfer;
use crate::aws::datasync::{list_locations, list_tasks};
use crate::error::Result;

fn push_unique(list: &mut Vec<String>, arn: Option<&str>) {
    if let Some(arn) = arn.filter(|a| !a.is_empty())
        && !list.iter().any(|a| a == arn)
    {
        list.push(arn.to_string());
    }
}

/// Removes everything Ferry created for the transfer.
pub async fn run(t: &mut Transfer<'_>) -> Result<()> {
    delete_tasks(t).await?;
    delete_locations(t).await?;
    // Account B: Ferry's statements out of the policies, the ownership put back.
    Foreign::connect(t).await.release(t).await?;
    delete_roles(t).await?;
    t.status.retired.clear();
    Ok(())
}

/// Tasks: recorded, retired, and any of ours by name (a crash may have left one unrecorded).
async fn delete_tasks(t: &mut Transfer<'_>) -> Result<()> {
    let account = t.account_a_id().to_string();
    let spec = t.spec;
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
    Ok(())
}

/// Locations: recorded, retired, and any of ours with the spec's URIs.
async fn delete_locations(t: &mut Transfer<'_>) -> Result<()> {
    let account = t.account_a_id().to_string();
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
    Ok(())
}

/// Roles: the managed one, retired ones, and the default-named one if it is ours (a shared
/// role: only this transfer's policy on it, the role once no policy is left).
async fn delete_roles(t: &mut Transfer<'_>) -> Result<()> {
    let account = t.account_a_id().to_string();
    let spec = t.spec;
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
        match delete_role(t.ctx, &t.account_a, &spec.source.region, arn, t.id())
            .await
            .map_err(|f| t.aws_error(&f, &account, "iam:DeleteRole", arn))?
        {
            RoleRelease::Deleted => t.changed("RoleDeleted", format!("deleted IAM role {arn}")).await,
            RoleRelease::Left => {
                let policy = t.id().member_policy_name();
                t.changed(
                    "RoleLeft",
                    format!("deleted this transfer's inline policy {policy} from the shared IAM role {arn}, which other transfers still use"),
                )
                .await;
            }
            RoleRelease::NotOurs => {}
        }
    }
    t.status.role = None;
    Ok(())
}
