//! Step 6 (Account A, destination region): the DataSync task. Options, filters, schedule,
//! logging and report are updated in place; a change DataSync cannot make to a task (its
//! locations, its mode) replaces the task. Before creating, Ferry looks for its own task by
//! name and tag (crash safety).

use aws_sdk_datasync::types::{
    FilterRule, FilterType, LogLevel, ObjectTags, Options, OverwriteMode, PreserveDeletedFiles, ReportDestination,
    ReportDestinationS3, ReportLevel, ReportOutputType, ScheduleStatus, TaskMode, TaskReportConfig, TaskSchedule,
    TransferMode, VerifyMode,
};

use kube::runtime::events::EventType;

use super::transfer::Transfer;
use crate::api::{RUN_ANNOTATION, ScheduleState, condition};
use crate::aws::datasync::{create, list_tasks, sent_once, tag_entries};
use crate::aws::{self, FailureKind, classify};
use crate::context::{SlotKey, Waiter};
use crate::desired::{ReportSettings, TaskOptions, TaskSettings};
use crate::error::Result;

/// What must happen to the task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskChange {
    /// In sync.
    Nothing,
    /// UpdateTask can make these settings right: it sends only the parts that differ.
    Update(TaskUpdate),
    /// DataSync cannot change this on a task: a new task is needed.
    Replace(String),
}

/// Which parts of a task an UpdateTask must send (the rest is left as it is).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TaskUpdate {
    /// The name.
    pub name: bool,
    /// The options (sent whole).
    pub options: bool,
    /// The include filter (an empty list removes it).
    pub includes: bool,
    /// The exclude filter (an empty list removes it).
    pub excludes: bool,
    /// The schedule (an empty expression removes it).
    pub schedule: bool,
    /// The log group. DataSync cannot take one away: `CloudWatchLogGroupArn` must be an ARN
    /// (its pattern refuses an empty string), so a spec without a log group sets LogLevel OFF
    /// and leaves the old ARN on the task, where it does nothing.
    pub log_group: bool,
    /// The task report (an empty configuration removes it).
    pub report: bool,
}

impl TaskUpdate {
    /// The parts of `observed` that differ from `desired` (pure).
    pub fn between(observed: &TaskSettings, desired: &TaskSettings) -> TaskUpdate {
        TaskUpdate {
            name: observed.name != desired.name,
            options: observed.options != desired.options,
            includes: observed.includes != desired.includes,
            excludes: observed.excludes != desired.excludes,
            schedule: observed.schedule != desired.schedule,
            log_group: desired.log_group_arn.is_some() && observed.log_group_arn != desired.log_group_arn,
            report: observed.report != desired.report,
        }
    }

    /// Nothing to send.
    pub fn is_empty(&self) -> bool {
        *self == TaskUpdate::default()
    }
}

/// The pure difference between the task found and the one wanted.
pub fn diff(observed: &TaskSettings, desired: &TaskSettings) -> TaskChange {
    if observed.source_location_arn != desired.source_location_arn
        || observed.destination_location_arn != desired.destination_location_arn
    {
        return TaskChange::Replace("its locations changed".into());
    }
    if observed.mode != desired.mode {
        return TaskChange::Replace(format!(
            "its task mode is {} instead of {}",
            observed.mode, desired.mode
        ));
    }
    let update = TaskUpdate::between(observed, desired);
    if update.is_empty() {
        TaskChange::Nothing
    } else {
        TaskChange::Update(update)
    }
}

/// Reads DataSync's description of a task into [`TaskSettings`].
fn observed(out: &aws_sdk_datasync::operation::describe_task::DescribeTaskOutput) -> TaskSettings {
    let joined = |rules: &[FilterRule]| {
        let values: Vec<&str> = rules
            .iter()
            .filter_map(|r| r.value())
            .filter(|v| !v.is_empty())
            .collect();
        (!values.is_empty()).then(|| values.join("|"))
    };
    TaskSettings {
        name: out.name().unwrap_or_default().to_string(),
        mode: out.task_mode().map(|m| m.as_str()).unwrap_or("BASIC").to_string(),
        source_location_arn: out.source_location_arn().unwrap_or_default().to_string(),
        destination_location_arn: out.destination_location_arn().unwrap_or_default().to_string(),
        options: observed_options(out.options()),
        includes: joined(out.includes()),
        excludes: joined(out.excludes()),
        schedule: out.schedule().filter(|s| !s.schedule_expression().is_empty()).map(|s| {
            (
                s.schedule_expression().to_string(),
                s.status().is_none_or(|st| *st == ScheduleStatus::Enabled),
            )
        }),
        log_group_arn: out
            .cloud_watch_log_group_arn()
            .filter(|a| !a.is_empty())
            .map(str::to_string),
        report: out.task_report_config().and_then(|c| {
            let s3 = c.destination()?.s3()?;
            Some(ReportSettings {
                bucket_arn: s3.s3_bucket_arn().to_string(),
                subdirectory: s3.subdirectory().unwrap_or("/").to_string(),
                role_arn: s3.bucket_access_role_arn().to_string(),
                output: c.output_type().map(|o| o.as_str()).unwrap_or("STANDARD").to_string(),
                level: c
                    .report_level()
                    .map(|l| l.as_str())
                    .unwrap_or("ERRORS_ONLY")
                    .to_string(),
            })
        }),
    }
}

/// DataSync's options of a task as [`TaskOptions`] (a struct literal: every option is read).
fn observed_options(options: Option<&Options>) -> TaskOptions {
    let opt = |f: fn(&Options) -> Option<&str>| options.and_then(f).unwrap_or_default().to_string();
    TaskOptions {
        verify: opt(|o| o.verify_mode().map(|v| v.as_str())),
        overwrite: opt(|o| o.overwrite_mode().map(|v| v.as_str())),
        transfer: opt(|o| o.transfer_mode().map(|v| v.as_str())),
        preserve_deleted: opt(|o| o.preserve_deleted_files().map(|v| v.as_str())),
        object_tags: opt(|o| o.object_tags().map(|v| v.as_str())),
        log_level: opt(|o| o.log_level().map(|v| v.as_str())),
        bytes_per_second: options.and_then(|o| o.bytes_per_second()).unwrap_or(-1),
    }
}

/// The request's options (a struct pattern: every option is sent).
fn options(want: &TaskSettings) -> Options {
    let TaskOptions {
        verify,
        overwrite,
        transfer,
        preserve_deleted,
        object_tags,
        log_level,
        bytes_per_second,
    } = &want.options;
    Options::builder()
        .verify_mode(VerifyMode::from(verify.as_str()))
        .overwrite_mode(OverwriteMode::from(overwrite.as_str()))
        .transfer_mode(TransferMode::from(transfer.as_str()))
        .preserve_deleted_files(PreserveDeletedFiles::from(preserve_deleted.as_str()))
        .object_tags(ObjectTags::from(object_tags.as_str()))
        .log_level(LogLevel::from(log_level.as_str()))
        .bytes_per_second(*bytes_per_second)
        .build()
}

fn filters(joined: &Option<String>) -> Vec<FilterRule> {
    joined
        .iter()
        .map(|v| {
            FilterRule::builder()
                .filter_type(FilterType::SimplePattern)
                .value(v)
                .build()
        })
        .collect()
}

fn schedule(want: &TaskSettings) -> Result<TaskSchedule> {
    let (expr, enabled) = want.schedule.clone().unwrap_or_default();
    // An empty expression removes a schedule in UpdateTask.
    Ok(TaskSchedule::builder()
        .schedule_expression(expr)
        .status(if enabled {
            ScheduleStatus::Enabled
        } else {
            ScheduleStatus::Disabled
        })
        .build()?)
}

fn report(want: &TaskSettings) -> Result<Option<TaskReportConfig>> {
    let Some(r) = &want.report else {
        return Ok(None);
    };
    let s3 = ReportDestinationS3::builder()
        .s3_bucket_arn(&r.bucket_arn)
        .subdirectory(&r.subdirectory)
        .bucket_access_role_arn(&r.role_arn)
        .build()?;
    Ok(Some(
        TaskReportConfig::builder()
            .destination(ReportDestination::builder().s3(s3).build())
            .output_type(ReportOutputType::from(r.output.as_str()))
            .report_level(ReportLevel::from(r.level.as_str()))
            .build(),
    ))
}

/// The create intent of the task (see `Transfer::creating`).
const TASK_INTENT: &str = "task";

/// DataSync's `DisabledBy` when DataSync itself disabled a schedule.
pub const DISABLED_BY_SERVICE: &str = "SERVICE";

/// The schedule as DataSync reports it, and who disabled it and why.
fn schedule_state(out: &aws_sdk_datasync::operation::describe_task::DescribeTaskOutput) -> Option<ScheduleState> {
    let schedule = out.schedule().filter(|s| !s.schedule_expression().is_empty())?;
    let details = out.schedule_details();
    Some(ScheduleState {
        expression: schedule.schedule_expression().to_string(),
        enabled: schedule.status().is_none_or(|st| *st == ScheduleStatus::Enabled),
        disabled_by: details.and_then(|d| d.disabled_by()).map(|b| b.as_str().to_string()),
        disabled_reason: details.and_then(|d| d.disabled_reason()).map(str::to_string),
        ..ScheduleState::default()
    })
}

/// What Ferry does about a schedule DataSync disabled after repeated failures (pure): keep it
/// disabled until the spec's generation or the `ferry.dev/run` value differs from when Ferry
/// first saw it so. Returns the schedule state to record and whether to keep it disabled.
pub fn service_disabled_schedule(
    found: Option<ScheduleState>,
    recorded: Option<&ScheduleState>,
    generation: i64,
    token: Option<&str>,
) -> (Option<ScheduleState>, bool) {
    let Some(mut found) = found else {
        return (None, false);
    };
    let by_service = !found.enabled && found.disabled_by.as_deref() == Some(DISABLED_BY_SERVICE);
    if !by_service {
        return (Some(found), false);
    }
    let seen = recorded.filter(|r| r.disabled_at_generation.is_some());
    match seen {
        // First sight: remember when, and keep it disabled.
        None => {
            found.disabled_at_generation = Some(generation);
            found.disabled_at_token = token.map(str::to_string);
            (Some(found), true)
        }
        Some(r) if r.disabled_at_generation == Some(generation) && r.disabled_at_token.as_deref() == token => {
            found.disabled_at_generation = r.disabled_at_generation;
            found.disabled_at_token = r.disabled_at_token.clone();
            (Some(found), true)
        }
        // The spec changed or a run was asked for: enable it again.
        Some(_) => (Some(found), false),
    }
}

/// Ensures the task and records its ARN: the recorded one updated in place (or replaced), else
/// one of this transfer's own adopted after a crash, else a new one.
pub async fn ensure(t: &mut Transfer<'_>) -> Result<()> {
    let region = t.spec.destination.region.clone();
    let client = t.account_a.datasync(&region);
    let mut want = t.desired.task.between(
        t.status.source_location_arn.as_deref().unwrap_or_default(),
        t.status.destination_location_arn.as_deref().unwrap_or_default(),
    );
    if let Some(arn) = t.status.task_arn.clone()
        && update_recorded(t, &client, &arn, &mut want).await?
    {
        return ready(t, &arn);
    }
    let arn = match adopt_unrecorded(t, &client, &want).await? {
        Some(arn) => arn,
        None => create_task(t, &client, &want).await?,
    };
    ready(t, &arn)
}

/// The recorded task, brought in line with the spec in place where DataSync can: true when it
/// is in place now; false when it is gone or must be replaced (retired) and a new one is needed.
async fn update_recorded(
    t: &mut Transfer<'_>,
    client: &aws_sdk_datasync::Client,
    arn: &str,
    want: &mut TaskSettings,
) -> Result<bool> {
    let account = t.account_a_id().to_string();
    let arn = arn.to_string();
    match client.describe_task().task_arn(&arn).send().await {
        Ok(out) => {
            t.task_status = out.status().map(|s| s.as_str().to_string());
            let wanted_now = keep_service_decision(t, &out, want).await;
            match diff(&observed(&out), &wanted_now) {
                TaskChange::Nothing => return Ok(true),
                TaskChange::Update(update) => {
                    let mut request = client.update_task().task_arn(&arn);
                    if update.name {
                        request = request.name(&want.name);
                    }
                    if update.options {
                        request = request.options(options(want));
                    }
                    if update.includes {
                        request = request.set_includes(Some(filters(&want.includes)));
                    }
                    if update.excludes {
                        request = request.set_excludes(Some(filters(&want.excludes)));
                    }
                    if update.schedule {
                        request = request.schedule(schedule(want)?);
                    }
                    if update.log_group {
                        request = request.set_cloud_watch_log_group_arn(want.log_group_arn.clone());
                    }
                    if update.report {
                        // An empty report configuration removes a report the spec no longer has.
                        request = request
                            .task_report_config(report(want)?.unwrap_or_else(|| TaskReportConfig::builder().build()));
                    }
                    request
                        .send()
                        .await
                        .map_err(|e| t.sdk_error(&e, &account, "datasync:UpdateTask", &arn))?;
                    t.changed(
                        "TaskUpdated",
                        format!("updated the settings of DataSync task {arn} in place"),
                    )
                    .await;
                    return Ok(true);
                }
                TaskChange::Replace(why) => {
                    t.retire(&arn);
                    t.status.task_arn = None;
                    t.persist().await?;
                    t.changed("TaskReplaced", format!("DataSync task {arn} is replaced: {why}"))
                        .await;
                }
            }
        }
        Err(e) if classify(&e).kind == FailureKind::NotFound => {
            t.status.task_arn = None;
        }
        Err(e) => return Err(t.sdk_error(&e, &account, "datasync:DescribeTask", &arn)),
    }

    Ok(false)
}

/// A task of this transfer's own that a crash left unrecorded (searched only when a create was
/// started and not recorded): adopted when it fits the spec; its ARN.
async fn adopt_unrecorded(
    t: &mut Transfer<'_>,
    client: &aws_sdk_datasync::Client,
    want: &TaskSettings,
) -> Result<Option<String>> {
    let account = t.account_a_id().to_string();
    // A task of ours left by a crash between create and status write (only searched when a
    // create was started and not recorded).
    let tasks = if t.maybe_created(TASK_INTENT) {
        aws::datasync::owned_tasks_named(client, &want.name, t.id(), &t.status.retired)
            .await
            .map_err(|refused| t.refused(&refused, &account, &want.name))?
    } else {
        Vec::new()
    };
    for arn in tasks {
        let out = describe(t, client, &arn).await?;
        if matches!(diff(&observed(&out), want), TaskChange::Nothing | TaskChange::Update(_)) {
            t.status.task_arn = Some(arn.clone());
            t.created(TASK_INTENT);
            t.persist().await?;
            t.changed(
                "TaskAdopted",
                format!("found DataSync task {arn} created earlier by Ferry and adopted it"),
            )
            .await;
            // The next reconcile brings its settings in line if needed.
            return Ok(Some(arn));
        }
    }
    Ok(None)
}

/// Creates the task (sent once), unless DataSync's task quota makes this transfer wait in line.
async fn create_task(t: &mut Transfer<'_>, client: &aws_sdk_datasync::Client, want: &TaskSettings) -> Result<String> {
    let account = t.account_a_id().to_string();
    let region = t.spec.destination.region.clone();
    let key = wait_in_line(t)?;
    let waiter = waiter(t);
    t.creating(TASK_INTENT).await?;
    let mut request = client
        .create_task()
        .name(&want.name)
        .source_location_arn(&want.source_location_arn)
        .destination_location_arn(&want.destination_location_arn)
        .task_mode(TaskMode::from(want.mode.as_str()))
        .options(options(want))
        .set_includes(want.includes.is_some().then(|| filters(&want.includes)))
        .set_excludes(want.excludes.is_some().then(|| filters(&want.excludes)))
        .set_cloud_watch_log_group_arn(want.log_group_arn.clone())
        .set_task_report_config(report(want)?)
        .set_tags(Some(tag_entries(t.id(), &[])));
    if want.schedule.is_some() {
        request = request.schedule(schedule(want)?);
    }
    let out = match create(|| request.clone().customize().config_override(sent_once()).send()).await {
        Ok(out) => out,
        Err(e) => {
            let failure = classify(&e);
            if let Some(tasks) = at_task_quota(t, client, &failure).await? {
                // A refused create made nothing: no search for it next time.
                t.created(TASK_INTENT);
                let (place, waiting) = t.ctx.task_queue.join(&key, waiter);
                return Err(quota_reached(t, &key, Some(tasks), place, waiting, failure.message));
            }
            return Err(t.aws_error(&failure, &account, "datasync:CreateTask", &want.name));
        }
    };
    // Out of the queue; the next one tries too (a slot may still be free: a raised quota).
    t.ctx.task_queue.leave(&waiter.uid);
    let arn = out.task_arn().unwrap_or_default().to_string();
    t.status.task_arn = Some(arn.clone());
    t.created(TASK_INTENT);
    t.persist().await?;
    t.changed(
        "TaskCreated",
        format!("created DataSync task {arn} ({} mode) in {region}", want.mode),
    )
    .await;
    Ok(arn)
}

/// At DataSync's task quota, transfers wait in line: a transfer without a task behind another
/// one asks nothing of AWS, and is stopped before its locations too (a transfer in line holds
/// nothing in DataSync until its turn). The queue's key otherwise.
pub fn wait_in_line(t: &Transfer<'_>) -> Result<SlotKey> {
    let key: SlotKey = (t.account_a_id().to_string(), t.spec.destination.region.clone());
    let waiter = waiter(t);
    if t.status.task_arn.is_none() && t.ctx.task_queue.ahead(&key, &waiter) > 0 {
        let (place, waiting) = t.ctx.task_queue.join(&key, waiter);
        return Err(quota_reached(
            t,
            &key,
            None,
            place,
            waiting,
            "not asked: another transfer waits before this one".into(),
        ));
    }
    Ok(key)
}

/// This transfer's place in a task queue: by creation time (first come, first served).
fn waiter(t: &Transfer<'_>) -> Waiter {
    Waiter {
        created: t
            .obj
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(0, |ts| ts.0.as_second()),
        uid: t.id().uid.clone(),
        object: (t.id().namespace.clone(), t.id().name.clone()),
    }
}

/// Whether a refused `CreateTask` was DataSync's task quota: AWS does not publish the answer it
/// gives then (unconfirmed: an `InvalidRequestException`), so Ferry counts the tasks in the
/// Region (one ListTasks) and compares with the quota it knows, or reads the message. The
/// number of tasks when it was.
async fn at_task_quota(
    t: &Transfer<'_>,
    client: &aws_sdk_datasync::Client,
    failure: &crate::aws::Failure,
) -> Result<Option<usize>> {
    if failure.code != "InvalidRequestException" {
        return Ok(None);
    }
    let account = t.account_a_id().to_string();
    let tasks = list_tasks(client)
        .await
        .map_err(|f| t.aws_error(&f, &account, "datasync:ListTasks", "tasks"))?
        .len();
    let message = failure.message.to_lowercase();
    let says_so = message.contains("quota") || message.contains("limit");
    let quota = usize::try_from(t.ctx.config.datasync_task_quota).unwrap_or(usize::MAX);
    Ok((says_so || tasks >= quota).then_some(tasks))
}

fn quota_reached(
    t: &Transfer<'_>,
    key: &SlotKey,
    tasks: Option<usize>,
    place: usize,
    waiting: usize,
    message: String,
) -> crate::Error {
    let quota = t.ctx.config.datasync_task_quota;
    crate::Error::TaskQuotaReached {
        account: key.0.clone(),
        region: key.1.clone(),
        tasks: tasks.unwrap_or(quota as usize),
        quota,
        place,
        waiting,
        message,
    }
}

/// Applies [`service_disabled_schedule`] to the wanted settings, records the schedule in the
/// status and tells the user, on the transition, what DataSync did.
async fn keep_service_decision(
    t: &mut Transfer<'_>,
    out: &aws_sdk_datasync::operation::describe_task::DescribeTaskOutput,
    want: &mut TaskSettings,
) -> TaskSettings {
    let token = t.obj.run_token().map(str::to_string);
    let recorded = t.status.schedule.clone();
    let (mut state, keep) =
        service_disabled_schedule(schedule_state(out), recorded.as_ref(), t.generation, token.as_deref());
    let was_kept = recorded.as_ref().is_some_and(|r| r.disabled_at_generation.is_some());
    if keep {
        if let Some((_, enabled)) = want.schedule.as_mut() {
            *enabled = false;
        }
        if !was_kept {
            let reason = state
                .as_ref()
                .and_then(|s| s.disabled_reason.clone())
                .unwrap_or_default();
            t.ctx
                .publish(
                    t.obj,
                    EventType::Warning,
                    "ScheduleDisabledByDataSync",
                    format!("DataSync disabled the schedule of the task after repeated failures: {reason}; Ferry keeps it disabled until the spec changes or the annotation {RUN_ANNOTATION} gets a new value"),
                )
                .await;
        }
    } else if was_kept && want.schedule.is_some() {
        t.changed(
            "ScheduleEnabled",
            "enabled the schedule DataSync had disabled: the spec changed or a run was asked for".into(),
        )
        .await;
    }
    if let Some(s) = state.as_mut() {
        s.last_run = recorded.and_then(|r| r.last_run);
    }
    t.status.schedule = if t.spec.schedule.is_some() { state } else { None };
    want.clone()
}

/// DescribeTask of a task that must exist.
async fn describe(
    t: &Transfer<'_>,
    client: &aws_sdk_datasync::Client,
    arn: &str,
) -> Result<aws_sdk_datasync::operation::describe_task::DescribeTaskOutput> {
    client
        .describe_task()
        .task_arn(arn)
        .send()
        .await
        .map_err(|e| t.sdk_error(&e, t.account_a_id(), "datasync:DescribeTask", arn))
}

/// Reads the task's schedule once (after a run ended) and records what DataSync did to it; the
/// full reconcile enables it again when the spec or a run request asks.
pub async fn observe_schedule(t: &mut Transfer<'_>) -> Result<()> {
    let Some(arn) = t.status.task_arn.clone() else {
        return Ok(());
    };
    let client = t.account_a.datasync(&t.spec.destination.region);
    let out = describe(t, &client, &arn).await?;
    let mut want = t.desired.task.clone();
    keep_service_decision(t, &out, &mut want).await;
    ready(t, &arn)
}

fn ready(t: &mut Transfer<'_>, arn: &str) -> Result<()> {
    t.status.task_arn = Some(arn.to_string());
    let kept = t
        .status
        .schedule
        .as_ref()
        .filter(|s| s.disabled_at_generation.is_some() && !s.enabled);
    let (reason, message) = match kept {
        Some(s) => (
            "ScheduleDisabledByDataSync",
            format!(
                "DataSync task {arn} is in place, but DataSync disabled its schedule after repeated failures ({}); Ferry keeps it disabled until the spec changes or the annotation {RUN_ANNOTATION} gets a new value",
                s.disabled_reason.as_deref().unwrap_or("no reason given")
            ),
        ),
        None => ("TaskInPlace", format!("DataSync task {arn} has the spec's settings")),
    };
    t.condition(condition::TASK_READY, true, reason, message);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{Desired, Identities};
    use crate::fixtures;

    #[test]
    fn filters_update_in_place_but_locations_and_mode_replace() {
        let who = Identities {
            account_a: "111111111111".into(),
            creator_arn: "arn:aws:iam::111111111111:role/ferry".into(),
        };
        let desired = Desired::build(&fixtures::spec(serde_json::json!({})), &fixtures::id(), &who);
        let base = desired.task.between("s", "d");
        assert_eq!(diff(&base, &base), TaskChange::Nothing);
        let mut filtered = base.clone();
        filtered.excludes = Some("*.tmp".into());
        let only_excludes = TaskUpdate {
            excludes: true,
            ..TaskUpdate::default()
        };
        assert_eq!(diff(&base, &filtered), TaskChange::Update(only_excludes));
        let mut logged = base.clone();
        logged.log_group_arn = Some("arn:aws:logs:us-west-1:111111111111:log-group:/aws/datasync".into());
        logged.options.log_level = "BASIC".into();
        let TaskChange::Update(update) = diff(&base, &logged) else {
            panic!("a new log group is an update");
        };
        assert!(update.log_group && update.options && !update.schedule);
        // The other way round DataSync cannot remove the ARN: logging goes OFF, the ARN stays.
        let TaskChange::Update(update) = diff(&logged, &base) else {
            panic!("dropping the log group is an update");
        };
        assert!(!update.log_group && update.options);
        let mut leftover = base.clone();
        leftover.log_group_arn = logged.log_group_arn.clone();
        assert_eq!(
            diff(&leftover, &base),
            TaskChange::Nothing,
            "a leftover ARN with logging off is in sync"
        );
        let mut moved = base.clone();
        moved.destination_location_arn = "d2".into();
        assert!(matches!(diff(&base, &moved), TaskChange::Replace(_)));
        let mut basic = base.clone();
        basic.mode = "BASIC".into();
        assert!(matches!(diff(&base, &basic), TaskChange::Replace(_)));
    }

    fn disabled_by_service() -> ScheduleState {
        ScheduleState {
            expression: "rate(1 hour)".into(),
            enabled: false,
            disabled_by: Some(DISABLED_BY_SERVICE.into()),
            disabled_reason: Some("S3 access denied".into()),
            ..ScheduleState::default()
        }
    }

    #[test]
    fn a_schedule_datasync_disabled_stays_disabled_until_the_spec_or_a_run_asks() {
        // First sight: kept disabled, generation and token remembered.
        let (state, keep) = service_disabled_schedule(Some(disabled_by_service()), None, 3, Some("t1"));
        assert!(keep);
        let state = state.unwrap();
        assert_eq!(state.disabled_at_generation, Some(3));
        assert_eq!(state.disabled_at_token.as_deref(), Some("t1"));
        // Same spec, same token: still kept.
        let (_, keep) = service_disabled_schedule(Some(disabled_by_service()), Some(&state), 3, Some("t1"));
        assert!(keep);
        // A new generation or a new token: enabled again.
        assert!(!service_disabled_schedule(Some(disabled_by_service()), Some(&state), 4, Some("t1")).1);
        assert!(!service_disabled_schedule(Some(disabled_by_service()), Some(&state), 3, Some("t2")).1);
        // Disabled by a user, or enabled: nothing to keep.
        let mut by_user = disabled_by_service();
        by_user.disabled_by = Some("USER".into());
        assert!(!service_disabled_schedule(Some(by_user), None, 3, None).1);
        assert!(!service_disabled_schedule(None, Some(&state), 3, None).1);
    }
}
