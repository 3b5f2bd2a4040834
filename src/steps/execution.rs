//! Step 7 (Account A, destination region): the task execution. Started according to
//! `spec.run` (once per spec generation, or per new `ferry.dev/run` annotation value), followed
//! while it runs (also when DataSync's schedule started it), and written to the status. At
//! most one execution runs at a time. Every execution Ferry starts is tagged with the run
//! request it answers, so a crash between start and status write never starts it twice.

use aws_sdk_datasync::operation::describe_task_execution::DescribeTaskExecutionOutput;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::transfer::Transfer;
use aws_sdk_datasync::types::{ManifestAction, ManifestConfig, ManifestFormat, S3ManifestConfig, SourceManifestConfig};

use crate::api::{
    CrossAccountTransferSpec, CrossAccountTransferStatus, DeletedFilesMode, ExecutionStatus, ExecutionSummary,
    FailedOnlyRun, RUN_ANNOTATION, ReportSummary, RunPolicy, RunRequest, condition, is_running_status,
};
use crate::aws::datasync::{create, list_executions, sent_once, tag_entries, tags};
use crate::aws::report::ReportPlace;
use crate::aws::{FailureKind, classify};
use crate::error::{Error, Result};
use crate::naming::{TAG_FAILED_ONLY, TAG_RUN, TransferId, arn_resource_id};
use crate::summary;

/// The create intent of an execution Ferry starts (see `Transfer::creating`).
const EXECUTION_INTENT: &str = "execution";

/// How many finished executions the status keeps.
pub const HISTORY_LEN: usize = 5;

/// How to deal with an execution DataSync lists that the status does not know yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follow {
    /// Ferry started it for the pending run request right before a crash: it answers the request.
    Adopt,
    /// It runs without Ferry having started it (DataSync's schedule did): follow it.
    Discover,
}

/// Whether to follow an unknown execution, from its listed status and whether it carries the
/// pending run request's tag (pure).
pub fn follow(listed_status: &str, answers_request: bool) -> Option<Follow> {
    if answers_request {
        Some(Follow::Adopt)
    } else if is_running_status(listed_status) {
        Some(Follow::Discover)
    } else {
        None
    }
}

/// Whether DataSync would start an execution of a task in this status (pure); `None` (just
/// created, not read back) is tried: DataSync refuses if it is not ready, and the next reconcile
/// tries again.
pub fn can_start(task_status: Option<&str>) -> bool {
    !matches!(task_status, Some("CREATING" | "UNAVAILABLE"))
}

/// How many unknown executions are looked at (and, with a pending run, their tags read).
pub const UNKNOWN_LOOKED_AT: usize = 10;

/// The listed executions the status does not know yet, running ones first, at most
/// [`UNKNOWN_LOOKED_AT`] (pure). DataSync documents no order for `ListTaskExecutions`, so
/// nothing here depends on it.
pub fn unknown_executions(listed: &[(String, String)], status: &CrossAccountTransferStatus) -> Vec<(String, String)> {
    let known = |arn: &str| {
        status.execution.as_ref().is_some_and(|e| e.arn == arn)
            || status.history.iter().any(|h| h.arn == arn)
            || status.last_run.as_ref().and_then(|l| l.execution_arn.as_deref()) == Some(arn)
    };
    let mut unknown: Vec<(String, String)> = listed.iter().filter(|(arn, _)| !known(arn)).cloned().collect();
    // A stable sort keeps DataSync's order within each group.
    unknown.sort_by_key(|(_, st)| !is_running_status(st));
    unknown.truncate(UNKNOWN_LOOKED_AT);
    unknown
}

/// The `ExecutionSucceeded` condition for the tracked execution (pure): status, reason, message.
pub fn execution_condition(e: Option<&ExecutionStatus>, run: RunPolicy) -> (&'static str, &'static str, String) {
    let Some(e) = e else {
        let message = if run == RunPolicy::Manual {
            "no execution yet: set the annotation ferry.dev/run to a new value to start one"
        } else {
            "no execution yet"
        };
        return ("Unknown", "NoExecution", message.to_string());
    };
    let (status, reason) = if e.succeeded() && e.files_failed > 0 {
        ("True", "SucceededWithFailures")
    } else if e.succeeded() {
        ("True", "Succeeded")
    } else if e.is_running() {
        ("False", "Running")
    } else {
        ("False", "Failed")
    };
    let see = if e.succeeded() && e.files_failed > 0 {
        "; see the task report or CloudWatch logs"
    } else {
        ""
    };
    (status, reason, format!("{}{see}", e.summary()))
}

/// The tag value that marks the execution started for a run request.
pub fn run_key(id: &TransferId, request: &RunRequest) -> String {
    let token = request
        .token
        .as_deref()
        .map(|t| TransferId::new("", "", t).hash())
        .unwrap_or_default();
    format!(
        "g{}-{token}-{}",
        request.generation.unwrap_or_default(),
        &id.hash()[..6]
    )
}

/// Percent done of an execution (pure): by bytes when DataSync estimated them, else by objects.
pub fn percent_done(e: &ExecutionStatus) -> i32 {
    match e.status.as_str() {
        "SUCCESS" => 100,
        "QUEUED" | "LAUNCHING" | "PREPARING" => 0,
        _ => {
            let ratio = match (e.estimated_bytes, e.estimated_files) {
                (Some(total), _) if total > 0 => e.bytes_transferred as f64 / total as f64,
                (_, Some(total)) if total > 0 => e.files_transferred as f64 / total as f64,
                _ if e.status == "VERIFYING" => 1.0,
                _ => 0.0,
            };
            // 100% is reserved for a finished, verified execution.
            ((ratio * 100.0).floor() as i32).clamp(0, 99)
        }
    }
}

fn time(dt: Option<&aws_smithy_types::DateTime>) -> Option<Time> {
    let dt = dt?;
    jiff::Timestamp::new(dt.secs(), dt.subsec_nanos() as i32).ok().map(Time)
}

/// An execution's description in the status's shape (pure).
pub fn from_describe(arn: &str, out: &DescribeTaskExecutionOutput) -> ExecutionStatus {
    // Enhanced mode also reports folders that failed; a failed folder is a failed item.
    let failed = out
        .files_failed()
        .map(|f| f.prepare + f.transfer + f.verify + f.delete)
        .unwrap_or_default()
        + out
            .folders_failed()
            .map(|f| f.list + f.prepare + f.transfer + f.verify + f.delete)
            .unwrap_or_default();
    let estimated = |v: i64| (v > 0).then_some(v);
    let enhanced = out.task_mode().is_some_and(|m| m.as_str() == "ENHANCED");
    let mut e = ExecutionStatus {
        arn: arn.to_string(),
        status: out
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "QUEUED".into()),
        start_time: time(out.start_time()),
        end_time: time(out.end_time()),
        estimated_bytes: estimated(out.estimated_bytes_to_transfer),
        estimated_files: estimated(out.estimated_files_to_transfer),
        bytes_transferred: out.bytes_transferred,
        bytes_written: out.bytes_written,
        files_transferred: out.files_transferred,
        files_verified: out.files_verified,
        files_deleted: out.files_deleted,
        files_skipped: out.files_skipped,
        files_failed: failed,
        percent_done: 0,
        error_code: out
            .result()
            .and_then(|r| r.error_code())
            .filter(|c| !c.is_empty())
            .map(str::to_string),
        error_detail: out
            .result()
            .and_then(|r| r.error_detail())
            .filter(|d| !d.is_empty())
            .map(str::to_string),
        // Enhanced mode's counters (Basic mode leaves them empty).
        files_listed: enhanced.then(|| out.files_listed().map(|l| l.at_source).unwrap_or_default()),
        files_prepared: enhanced.then_some(out.files_prepared),
        report: None,
    };
    e.percent_done = percent_done(&e);
    e
}

/// The next reading of an execution that never goes backwards (pure): Enhanced mode lists and
/// prepares while it transfers, so its estimates grow and a percentage computed from them can
/// drop; what was shown stays the floor for the same running execution.
pub fn steady(previous: &ExecutionStatus, mut next: ExecutionStatus) -> ExecutionStatus {
    if previous.arn != next.arn {
        return next;
    }
    if next.is_running() {
        next.percent_done = next.percent_done.max(previous.percent_done);
    }
    // Counters only grow within one execution (a describe answered by a lagging replica must
    // not make listed, prepared or failed objects go down).
    let floor = |now: Option<i64>, before: Option<i64>| match (now, before) {
        (Some(n), Some(b)) => Some(n.max(b)),
        (n, b) => n.or(b),
    };
    next.files_listed = floor(next.files_listed, previous.files_listed);
    next.files_prepared = floor(next.files_prepared, previous.files_prepared);
    next.files_failed = next.files_failed.max(previous.files_failed);
    next.files_transferred = next.files_transferred.max(previous.files_transferred);
    if next.report.is_none() {
        next.report = previous.report.clone();
    }
    next
}

/// Adds a finished execution to the front of the history (pure).
pub fn remember(history: &mut Vec<ExecutionSummary>, e: &ExecutionStatus) {
    history.retain(|h| h.arn != e.arn);
    history.insert(0, summary(e));
    history.truncate(HISTORY_LEN);
}

/// An execution's summary (pure).
pub fn summary(e: &ExecutionStatus) -> ExecutionSummary {
    ExecutionSummary {
        arn: e.arn.clone(),
        status: e.status.clone(),
        start_time: e.start_time.clone(),
        end_time: e.end_time.clone(),
        bytes_transferred: e.bytes_transferred,
        files_transferred: e.files_transferred,
        error_code: e.error_code.clone(),
    }
}

/// Keeps `status.schedule.lastRun` up to date with the tracked execution when the schedule
/// started it (pure).
pub fn note_scheduled_run(status: &mut CrossAccountTransferStatus, started_by_schedule: bool) {
    let (Some(schedule), Some(e)) = (status.schedule.as_mut(), status.execution.as_ref()) else {
        return;
    };
    let same = schedule.last_run.as_ref().is_some_and(|r| r.arn == e.arn);
    if started_by_schedule || same {
        schedule.last_run = Some(summary(e));
    }
}

/// Follows and starts executions.
pub async fn ensure(t: &mut Transfer<'_>) -> Result<()> {
    let Some(task_arn) = t.status.task_arn.clone() else {
        return Ok(());
    };
    let client = t.account_a.datasync(&t.spec.destination.region);

    // 1. Bring the tracked execution up to date.
    refresh(t, &client).await?;

    // 2. Executions Ferry does not know yet: one started by the schedule, or one Ferry started
    //    right before a crash (recognised by its run tag). Neither can exist without a schedule
    //    or a pending run, so a settled transfer skips the listing.
    let token = t.obj.run_token().map(str::to_string);
    let mut wanted = t
        .spec
        .pending_run(t.generation, token.as_deref(), t.status.last_run.as_ref());
    find_unknown(t, &client, &task_arn, &mut wanted).await?;

    // 3. Start the run the spec asks for, once nothing runs and the task can run: DataSync
    //    starts executions of AVAILABLE (or already running) tasks only, not of a task it is
    //    still CREATING or finds UNAVAILABLE
    //    (<https://docs.aws.amazon.com/datasync/latest/userguide/API_DescribeTask.html#DataSync-DescribeTask-response-Status>).
    let running = t.status.execution.as_ref().is_some_and(ExecutionStatus::is_running);
    if wanted.is_some() && !running && !can_start(t.task_status.as_deref()) {
        t.condition(
            condition::EXECUTION_SUCCEEDED,
            false,
            "WaitingForTask",
            format!(
                "DataSync reports task {task_arn} as {}; the run starts once it is AVAILABLE",
                t.task_status.as_deref().unwrap_or("unknown")
            ),
        );
        return Ok(());
    }
    if let Some(request) = wanted
        && !running
    {
        start(t, &client, &task_arn, request).await?;
    }

    note_scheduled_run(&mut t.status, false);
    report(t);
    Ok(())
}

/// Executions Ferry does not know yet: one started by the schedule, or one Ferry started right
/// before a crash (recognised by its run tag, which answers `wanted`: then taken). Listed only
/// after a start that was not recorded, or when a schedule may have started one.
async fn find_unknown(
    t: &mut Transfer<'_>,
    client: &aws_sdk_datasync::Client,
    task_arn: &str,
    wanted: &mut Option<RunRequest>,
) -> Result<()> {
    let account = t.account_a_id().to_string();
    let listed = if t.maybe_created(EXECUTION_INTENT) || t.spec.schedule.is_some() {
        list_executions(client, task_arn)
            .await
            .map_err(|f| t.aws_error(&f, &account, "datasync:ListTaskExecutions", task_arn))?
    } else {
        Vec::new()
    };
    for (arn, listed_status) in unknown_executions(&listed, &t.status) {
        let found = match wanted {
            Some(_) => tags(client, &arn)
                .await
                .map_err(|f| t.aws_error(&f, &account, "datasync:ListTagsForResource", &arn))?,
            None => Vec::new(),
        };
        let answers_request = wanted.as_ref().is_some_and(|request| {
            let key = run_key(t.id(), request);
            found.iter().any(|(k, v)| k == TAG_RUN && *v == key)
        });
        match follow(&listed_status, answers_request) {
            Some(Follow::Adopt) => {
                let mut request = wanted.take().unwrap_or_default();
                request.execution_arn = Some(arn.clone());
                request.failed_only = found
                    .iter()
                    .find(|(k, _)| k == TAG_FAILED_ONLY)
                    .and_then(|(_, v)| failed_only_from_tag(t.spec, task_arn, v));
                t.status.last_run = Some(request);
                track(t, &arn);
                refresh(t, client).await?;
                t.created(EXECUTION_INTENT);
                t.persist().await?;
                t.changed(
                    "ExecutionAdopted",
                    format!("found execution {arn} started before a restart and follows it"),
                )
                .await;
                break;
            }
            Some(Follow::Discover) => {
                track(t, &arn);
                refresh(t, client).await?;
                note_scheduled_run(&mut t.status, true);
                t.changed(
                    "ExecutionDiscovered",
                    format!("following execution {arn} (started by the DataSync schedule)"),
                )
                .await;
                break;
            }
            None => {}
        }
    }

    Ok(())
}

/// Starts the run `request` asks for (sent once; the intent recorded first, so a crash
/// before the ARN is written is found again by [`find_unknown`]).
async fn start(
    t: &mut Transfer<'_>,
    client: &aws_sdk_datasync::Client,
    task_arn: &str,
    mut request: RunRequest,
) -> Result<()> {
    let account = t.account_a_id().to_string();
    let key = run_key(t.id(), &request);
    let (mut manifest, mut failed_tag) = (None, None);
    if request.asks_failed_only() {
        match failed_only(t).await? {
            FailedOnly::Nothing(run) => return nothing_failed(t, request, run).await,
            FailedOnly::Run(run, config) => {
                failed_tag = Some(failed_only_tag(&run));
                request.failed_only = Some(run);
                manifest = Some(config);
            }
        }
    }
    t.creating(EXECUTION_INTENT).await?;
    let mut tags = vec![(TAG_RUN, key.as_str())];
    tags.extend(failed_tag.as_deref().map(|v| (TAG_FAILED_ONLY, v)));
    let mut start = client
        .start_task_execution()
        .task_arn(task_arn)
        .set_tags(Some(tag_entries(t.id(), &tags)));
    if let Some(config) = manifest {
        start = start.manifest_config(config);
        if t.spec.task.deleted == DeletedFilesMode::Remove {
            // A manifest never deletes; DataSync refuses it together with REMOVE.
            start = start.override_options(
                aws_sdk_datasync::types::Options::builder()
                    .preserve_deleted_files(aws_sdk_datasync::types::PreserveDeletedFiles::Preserve)
                    .build(),
            );
        }
    }
    let out = create(|| start.clone().customize().config_override(sent_once()).send())
        .await
        .map_err(|e| t.sdk_error(&e, &account, "datasync:StartTaskExecution", task_arn))?;
    let arn = out.task_execution_arn().unwrap_or_default().to_string();
    let started = match &request.failed_only {
        Some(run) => format!(
            "started DataSync execution {arn} for the {} objects execution {} failed (manifest {})",
            run.objects,
            run.of_execution,
            run.manifest.as_deref().unwrap_or_default()
        ),
        None => format!("started DataSync execution {arn}"),
    };
    request.execution_arn = Some(arn.clone());
    t.status.last_run = Some(request);
    track(t, &arn);
    t.created(EXECUTION_INTENT);
    t.persist().await?;
    t.changed("ExecutionStarted", started).await;
    Ok(())
}

/// What a failed-only run request comes to.
enum FailedOnly {
    /// The last run's report lists no failed object: nothing to start.
    Nothing(FailedOnlyRun),
    /// A run over the manifest Ferry wrote.
    Run(FailedOnlyRun, ManifestConfig),
}

/// The last run's failed objects, from its task report, written as a DataSync manifest into
/// the report bucket (under the report prefix, which the DataSync role may read). Needs a task
/// report and a task without filters (DataSync does not combine a manifest with filters:
/// <https://docs.aws.amazon.com/datasync/latest/userguide/transferring-with-manifest.html>).
async fn failed_only(t: &Transfer<'_>) -> Result<FailedOnly> {
    let token = t.obj.run_token().unwrap_or_default();
    let refuse = |why: &str| {
        Error::InvalidSpec(format!(
            "{RUN_ANNOTATION}={token} asks for a run of only the failed objects, but {why}"
        ))
    };
    if let Some(why) = t.spec.failed_only_blocker() {
        return Err(refuse(why));
    }
    let Some(previous) = t.status.execution.as_ref().filter(|e| !e.is_running()) else {
        return Err(refuse(
            "no run of this transfer has ended yet: wait for one, or run in full",
        ));
    };
    let of_execution = previous.arn.clone();
    // The execution's ARN names the task that ran it (a replaced task's report stays where it was).
    let (Some(read), Some(place)) = (previous.report.as_ref(), report_place(t.spec, &previous.arn)) else {
        return Err(refuse(&format!(
            "the task report of execution {of_execution} was not read (DataSync wrote none, or Ferry may not read it: status.execution.report is empty): run in full"
        )));
    };
    let account = t.account_a_id();
    let paths = if read.failed == 0 {
        Vec::new()
    } else {
        crate::aws::report::failed_paths(&t.account_a, &place)
            .await
            .map_err(|f| t.aws_error(&f, account, "s3:GetObject", &format!("s3://{}/", place.bucket)))?
    };
    if paths.is_empty() {
        return Ok(FailedOnly::Nothing(FailedOnlyRun {
            of_execution,
            objects: 0,
            manifest: None,
        }));
    }
    let key = place.manifest_key();
    crate::aws::report::put_manifest(&t.account_a, &place, &key, crate::aws::report::manifest_csv(&paths))
        .await
        .map_err(|f| t.aws_error(&f, account, "s3:PutObject", &place.manifest_uri()))?;
    let s3 = S3ManifestConfig::builder()
        .manifest_object_path(&key)
        .bucket_access_role_arn(&t.desired.role.arn)
        .s3_bucket_arn(crate::naming::bucket_arn(place.region, place.bucket))
        .build()?;
    let config = ManifestConfig::builder()
        .action(ManifestAction::Transfer)
        .format(ManifestFormat::Csv)
        .source(SourceManifestConfig::builder().s3(s3).build())
        .build();
    Ok(FailedOnly::Run(
        FailedOnlyRun {
            of_execution,
            objects: paths.len() as i64,
            manifest: Some(place.manifest_uri()),
        },
        config,
    ))
}

/// A failed-only request whose last run had no failed object: answered without an execution.
async fn nothing_failed(t: &mut Transfer<'_>, mut request: RunRequest, run: FailedOnlyRun) -> Result<()> {
    let message = format!(
        "the task report of execution {} lists no failed object: nothing to run again",
        run.of_execution
    );
    request.failed_only = Some(run);
    t.status.last_run = Some(request);
    t.persist().await?;
    t.changed("NothingToRunAgain", message).await;
    Ok(())
}

/// The tag of a failed-only run's execution: `<execution id>:<objects>`.
fn failed_only_tag(run: &FailedOnlyRun) -> String {
    format!("{}:{}", arn_resource_id(&run.of_execution), run.objects)
}

/// A failed-only run's tag read back after a crash ([`failed_only_tag`]).
fn failed_only_from_tag(spec: &CrossAccountTransferSpec, task_arn: &str, value: &str) -> Option<FailedOnlyRun> {
    let (execution_id, objects) = value.split_once(':')?;
    let of_execution = format!("{task_arn}/execution/{execution_id}");
    let manifest = report_place(spec, &of_execution)?.manifest_uri();
    Some(FailedOnlyRun {
        of_execution,
        objects: objects.parse().ok()?,
        manifest: Some(manifest),
    })
}

/// Polls the tracked execution: one `DescribeTaskExecution`, nothing else (the drift check and
/// starting runs are the full reconcile's).
pub async fn poll(t: &mut Transfer<'_>) -> Result<()> {
    let client = t.account_a.datasync(&t.spec.destination.region);
    refresh(t, &client).await?;
    note_scheduled_run(&mut t.status, false);
    report(t);
    Ok(())
}

/// Makes `arn` the tracked execution; a finished one that was tracked goes to the history.
fn track(t: &mut Transfer<'_>, arn: &str) {
    if let Some(previous) = t.status.execution.take() {
        if previous.arn == arn {
            t.status.execution = Some(previous);
            return;
        }
        remember(&mut t.status.history, &previous);
    }
    t.status.execution = Some(ExecutionStatus {
        arn: arn.to_string(),
        status: "QUEUED".into(),
        ..ExecutionStatus::default()
    });
}

/// Describes the tracked execution while it runs; records its end.
async fn refresh(t: &mut Transfer<'_>, client: &aws_sdk_datasync::Client) -> Result<()> {
    let Some(current) = t.status.execution.clone() else {
        return Ok(());
    };
    if !current.is_running() && current.end_time.is_some() {
        return Ok(());
    }
    let account = t.account_a_id().to_string();
    let mut next = match client
        .describe_task_execution()
        .task_execution_arn(&current.arn)
        .send()
        .await
    {
        Ok(out) => steady(&current, from_describe(&current.arn, &out)),
        Err(e) if classify(&e).kind == FailureKind::NotFound => ExecutionStatus {
            status: "ERROR".into(),
            error_code: Some("ExecutionGone".into()),
            error_detail: Some("DataSync no longer knows this execution (its task was replaced or deleted)".into()),
            ..current.clone()
        },
        Err(e) => return Err(t.sdk_error(&e, &account, "datasync:DescribeTaskExecution", &current.arn)),
    };
    if !next.is_running() {
        next.end_time = next.end_time.or_else(|| Some(Time(jiff::Timestamp::now())));
        next.report = read_report(t, &next.arn).await;
        remember(&mut t.status.history, &next);
        let failed = next.files_failed.max(next.report.as_ref().map_or(0, |r| r.failed));
        next.files_failed = failed;
        let note = next.report.as_ref().map(ReportSummary::note).unwrap_or_default();
        let message = format!("{}{note}", next.summary());
        if next.succeeded() && failed > 0 {
            warn(t, "ObjectsFailed", message).await;
        } else if next.succeeded() {
            t.changed("ExecutionSucceeded", message).await;
        } else {
            warn(t, "ExecutionFailed", message).await;
        }
    }
    t.status.execution = Some(next);
    Ok(())
}

/// Logs and publishes a Warning event about the transfer.
async fn warn(t: &Transfer<'_>, reason: &str, message: String) {
    tracing::warn!(reason, "{message}");
    t.ctx
        .publish(t.obj, kube::runtime::events::EventType::Warning, reason, message)
        .await;
}

/// Where the task report of `execution_arn` is, when the spec asks for reports.
fn report_place<'a>(spec: &'a CrossAccountTransferSpec, execution_arn: &'a str) -> Option<ReportPlace<'a>> {
    let report = spec.task.report.as_ref()?;
    Some(ReportPlace {
        bucket: &report.bucket,
        region: spec.home_region(),
        prefix: report.prefix.as_deref(),
        execution_arn,
    })
}

/// The task report of a finished execution, when the spec asks for one. A report DataSync has
/// not written, or Ferry may not read, is left out: the execution's own counters still tell
/// the outcome.
async fn read_report(t: &Transfer<'_>, execution_arn: &str) -> Option<ReportSummary> {
    let place = report_place(t.spec, execution_arn)?;
    match crate::aws::report::read(&t.account_a, &place).await {
        Ok(found) => found,
        Err(f) => {
            tracing::warn!(
                code = f.code,
                "could not read the task report of {execution_arn}: {}",
                f.message
            );
            None
        }
    }
}

/// Writes the execution condition, progress column and metrics.
fn report(t: &mut Transfer<'_>) {
    let (status, reason, message) = execution_condition(t.status.execution.as_ref(), t.spec.run);
    summary::set_condition(
        &mut t.status.conditions,
        condition::EXECUTION_SUCCEEDED,
        status,
        reason,
        &message,
        t.generation,
    );
    let Some(e) = t.status.execution.clone() else {
        t.status.progress = None;
        return;
    };
    t.status.progress = Some(format!("{}%", e.percent_done));
    let id = t.id().clone();
    t.ctx.metrics.transfer_progress(
        &id.namespace,
        &id.name,
        e.bytes_transferred,
        e.files_transferred,
        e.percent_done,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use serde_json::json;

    fn spec(run: &str, suspend: bool) -> crate::api::CrossAccountTransferSpec {
        fixtures::spec(json!({"run": run, "suspend": suspend}))
    }

    fn wanted_run(
        s: &crate::api::CrossAccountTransferSpec,
        generation: i64,
        token: Option<&str>,
        last: Option<&RunRequest>,
    ) -> Option<RunRequest> {
        s.pending_run(generation, token, last)
    }

    fn done(generation: i64, token: Option<&str>) -> RunRequest {
        RunRequest {
            generation: Some(generation),
            token: token.map(str::to_string),
            execution_arn: Some("arn:exec".into()),
            failed_only: None,
        }
    }

    #[test]
    fn a_failed_only_runs_tag_reads_back_what_it_covers() {
        let spec = fixtures::spec(json!({"task": {"report": {"bucket": "reports", "prefix": "r/"}, "excludes": []}}));
        let task = "arn:aws:datasync:us-east-1:111111111111:task/task-0123456789abcdef0";
        let run = FailedOnlyRun {
            of_execution: format!("{task}/execution/exec-0123456789abcdef0"),
            objects: 3,
            manifest: Some("s3://reports/r/ferry-manifests/task-0123456789abcdef0/exec-0123456789abcdef0.csv".into()),
        };
        let tag = failed_only_tag(&run);
        assert_eq!(tag, "exec-0123456789abcdef0:3");
        assert_eq!(failed_only_from_tag(&spec, task, &tag), Some(run));
        assert_eq!(failed_only_from_tag(&spec, task, "garbled"), None);
    }

    #[test]
    fn failed_only_runs_need_a_detailed_report_and_no_filters() {
        let report = json!({"bucket": "reports"});
        let ok = fixtures::spec(json!({"task": {"report": report, "excludes": []}}));
        assert_eq!(ok.failed_only_blocker(), None);
        let none = fixtures::spec(json!({"task": {"excludes": []}}));
        assert!(
            none.failed_only_blocker()
                .unwrap()
                .contains("spec.task.report is not set")
        );
        let summary =
            fixtures::spec(json!({"task": {"report": {"bucket": "reports", "output": "Summary"}, "excludes": []}}));
        assert!(summary.failed_only_blocker().unwrap().contains("Summary"));
        let filtered = fixtures::spec(json!({"task": {"report": report, "includes": ["/a/*"]}}));
        assert!(filtered.failed_only_blocker().unwrap().contains("filters"));
        let request = |token: &str| RunRequest {
            token: Some(token.into()),
            ..Default::default()
        };
        assert!(request("failed:2").asks_failed_only());
        assert!(!request("2026-12-03").asks_failed_only());
    }

    #[test]
    fn on_change_runs_once_per_generation() {
        let s = spec("OnChange", false);
        assert!(wanted_run(&s, 1, None, None).is_some());
        assert!(wanted_run(&s, 1, None, Some(&done(1, None))).is_none());
        assert_eq!(
            wanted_run(&s, 2, None, Some(&done(1, None))).unwrap().generation,
            Some(2)
        );
    }

    #[test]
    fn manual_runs_only_for_a_new_annotation_value() {
        let s = spec("Manual", false);
        assert!(wanted_run(&s, 1, None, None).is_none());
        assert!(wanted_run(&s, 3, None, Some(&done(1, Some("a")))).is_none());
        assert_eq!(wanted_run(&s, 1, Some("a"), None).unwrap().token.as_deref(), Some("a"));
        assert!(wanted_run(&s, 1, Some("a"), Some(&done(1, Some("a")))).is_none());
        assert!(wanted_run(&s, 1, Some("b"), Some(&done(1, Some("a")))).is_some());
    }

    #[test]
    fn the_annotation_also_reruns_on_change_transfers_and_suspend_stops_all() {
        assert!(wanted_run(&spec("OnChange", false), 1, Some("retry"), Some(&done(1, None))).is_some());
        assert!(wanted_run(&spec("OnChange", true), 5, Some("x"), None).is_none());
    }

    #[test]
    fn run_keys_are_valid_tag_values_and_distinct() {
        let id = TransferId::new("ns", "n", "uid-1");
        let a = run_key(&id, &done(1, None));
        let b = run_key(&id, &done(1, Some("tok en/€")));
        assert_ne!(a, b);
        for k in [a, b] {
            assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "{k}");
        }
    }

    #[test]
    fn percent_done_follows_bytes_then_files() {
        let mut e = ExecutionStatus {
            status: "TRANSFERRING".into(),
            estimated_bytes: Some(200),
            bytes_transferred: 50,
            ..ExecutionStatus::default()
        };
        assert_eq!(percent_done(&e), 25);
        e.estimated_bytes = None;
        e.estimated_files = Some(4);
        e.files_transferred = 3;
        assert_eq!(percent_done(&e), 75);
        e.files_transferred = 4;
        assert_eq!(percent_done(&e), 99, "only SUCCESS is 100%");
        e.status = "SUCCESS".into();
        assert_eq!(percent_done(&e), 100);
        e.status = "PREPARING".into();
        assert_eq!(percent_done(&e), 0);
    }

    #[test]
    fn progress_never_goes_backwards_and_failed_items_are_not_a_clean_success() {
        let before = ExecutionStatus {
            arn: "e".into(),
            status: "TRANSFERRING".into(),
            percent_done: 60,
            ..ExecutionStatus::default()
        };
        let listed_more = ExecutionStatus {
            percent_done: 30,
            ..before.clone()
        };
        assert_eq!(steady(&before, listed_more).percent_done, 60);
        // Enhanced mode's counters only grow within one execution.
        let counted = ExecutionStatus {
            files_listed: Some(40),
            files_prepared: Some(30),
            files_failed: 2,
            ..before.clone()
        };
        let lagging = ExecutionStatus {
            files_listed: Some(35),
            files_prepared: None,
            files_failed: 1,
            ..before.clone()
        };
        let next = steady(&counted, lagging);
        assert_eq!(
            (next.files_listed, next.files_prepared, next.files_failed),
            (Some(40), Some(30), 2)
        );
        let other = ExecutionStatus {
            arn: "f".into(),
            percent_done: 10,
            ..before.clone()
        };
        assert_eq!(
            steady(&before, other).percent_done,
            10,
            "another execution starts from its own"
        );
        let done = ExecutionStatus {
            status: "SUCCESS".into(),
            files_failed: 2,
            ..before
        };
        let (status, reason, message) = execution_condition(Some(&done), RunPolicy::OnChange);
        assert_eq!((status, reason), ("True", "SucceededWithFailures"));
        assert!(message.contains("2 items failed"));
    }

    #[test]
    fn history_keeps_the_newest_five_once_each() {
        let mut h = Vec::new();
        for i in 0..7 {
            let e = ExecutionStatus {
                arn: format!("e{i}"),
                status: "SUCCESS".into(),
                ..ExecutionStatus::default()
            };
            remember(&mut h, &e);
            remember(&mut h, &e);
        }
        assert_eq!(h.len(), HISTORY_LEN);
        assert_eq!(h[0].arn, "e6");
        assert_eq!(h[4].arn, "e2");
    }

    fn listed(entries: &[(&str, &str)]) -> Vec<(String, String)> {
        entries.iter().map(|(a, s)| (a.to_string(), s.to_string())).collect()
    }

    #[test]
    fn a_schedule_started_execution_is_discovered_and_a_crash_left_one_adopted() {
        assert_eq!(follow("TRANSFERRING", false), Some(Follow::Discover));
        assert_eq!(follow("QUEUED", false), Some(Follow::Discover));
        assert_eq!(
            follow("SUCCESS", false),
            None,
            "a finished run nobody asked about is left alone"
        );
        assert_eq!(
            follow("SUCCESS", true),
            Some(Follow::Adopt),
            "Ferry's own run, finished already"
        );
        assert_eq!(follow("LAUNCHING", true), Some(Follow::Adopt));
    }

    #[test]
    fn unknown_executions_skip_known_ones_and_put_running_first_whatever_the_order() {
        let status = CrossAccountTransferStatus {
            execution: Some(ExecutionStatus {
                arn: "e1".into(),
                status: "SUCCESS".into(),
                ..ExecutionStatus::default()
            }),
            history: vec![ExecutionSummary {
                arn: "e0".into(),
                ..ExecutionSummary::default()
            }],
            ..CrossAccountTransferStatus::default()
        };
        let oldest_first = listed(&[
            ("e0", "SUCCESS"),
            ("e1", "SUCCESS"),
            ("e2", "ERROR"),
            ("e3", "TRANSFERRING"),
        ]);
        let mut newest_first = oldest_first.clone();
        newest_first.reverse();
        for order in [oldest_first, newest_first] {
            let unknown = unknown_executions(&order, &status);
            assert_eq!(unknown.len(), 2);
            assert_eq!(unknown[0].0, "e3", "the running one comes first");
            assert_eq!(unknown[1].0, "e2");
        }
        let many: Vec<(String, String)> = (0..30).map(|i| (format!("x{i}"), "SUCCESS".to_string())).collect();
        assert_eq!(unknown_executions(&many, &status).len(), UNKNOWN_LOOKED_AT);
    }

    #[test]
    fn the_execution_condition_tells_what_happened() {
        assert_eq!(execution_condition(None, RunPolicy::OnChange).0, "Unknown");
        assert!(execution_condition(None, RunPolicy::Manual).2.contains("ferry.dev/run"));
        let mut e = ExecutionStatus {
            arn: "e".into(),
            status: "TRANSFERRING".into(),
            percent_done: 40,
            ..ExecutionStatus::default()
        };
        let (status, reason, message) = execution_condition(Some(&e), RunPolicy::OnChange);
        assert_eq!((status, reason), ("False", "Running"));
        assert!(message.contains("40%"));
        e.status = "SUCCESS".into();
        assert_eq!(execution_condition(Some(&e), RunPolicy::OnChange).1, "Succeeded");
        e.status = "ERROR".into();
        e.error_code = Some("AccessDenied".into());
        let (status, reason, message) = execution_condition(Some(&e), RunPolicy::OnChange);
        assert_eq!((status, reason), ("False", "Failed"));
        assert!(message.contains("AccessDenied"));
    }
}
