//! Step 6 (Account A, destination region): the DataSync task. Options, filters, schedule,
//! logging and report are updated in place; a change DataSync cannot make to a task (its
//! locations, its mode) replaces the task. Before creating, Ferry looks for its own task by
//! name and tag (crash safety).

use aws_sdk_datasync::types::{
    FilterRule, FilterType, LogLevel, ObjectTags, Options, OverwriteMode, PreserveDeletedFiles, ReportDestination,
    ReportDestinationS3, ReportLevel, ReportOutputType, ScheduleStatus, TaskMode, TaskReportConfig, TaskSchedule,
    TransferMode, VerifyMode,
};

use super::Transfer;
use crate::api::{self, CrossAccountTransferSpec, condition};
use crate::aws::datasync::{list_tasks, tag_entries};
use crate::aws::{FailureKind, classify};
use crate::error::Result;
use crate::naming::{bucket_arn, subdirectory};

/// The task report destination and format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportSettings {
    /// Report bucket ARN.
    pub bucket_arn: String,
    /// Subdirectory in it.
    pub subdirectory: String,
    /// Role DataSync writes with.
    pub role_arn: String,
    /// `STANDARD` or `SUMMARY_ONLY`.
    pub output: String,
    /// `ERRORS_ONLY` or `SUCCESSES_AND_ERRORS`.
    pub level: String,
}

/// Everything Ferry sets on a task, in DataSync's vocabulary (pure data, compared as a whole).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TaskSettings {
    /// Task name.
    pub name: String,
    /// `ENHANCED` or `BASIC`.
    pub mode: String,
    /// Source location ARN.
    pub source_location_arn: String,
    /// Destination location ARN.
    pub destination_location_arn: String,
    /// `Options.VerifyMode`.
    pub verify: String,
    /// `Options.OverwriteMode`.
    pub overwrite: String,
    /// `Options.TransferMode`.
    pub transfer: String,
    /// `Options.PreserveDeletedFiles`.
    pub preserve_deleted: String,
    /// `Options.ObjectTags`.
    pub object_tags: String,
    /// `Options.LogLevel`.
    pub log_level: String,
    /// `Options.BytesPerSecond` (-1: unlimited).
    pub bytes_per_second: i64,
    /// Include patterns joined with `|`.
    pub includes: Option<String>,
    /// Exclude patterns joined with `|`.
    pub excludes: Option<String>,
    /// Schedule expression and whether it is enabled.
    pub schedule: Option<(String, bool)>,
    /// CloudWatch log group.
    pub log_group_arn: Option<String>,
    /// Task report.
    pub report: Option<ReportSettings>,
}

/// What must happen to the task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskChange {
    /// In sync.
    Nothing,
    /// UpdateTask can make these settings right.
    Update,
    /// DataSync cannot change this on a task: a new task is needed.
    Replace(String),
}

fn join(patterns: &[String]) -> Option<String> {
    (!patterns.is_empty()).then(|| patterns.join("|"))
}

/// The task settings a spec leads to (pure).
pub fn desired(
    spec: &CrossAccountTransferSpec,
    name: &str,
    source_location_arn: &str,
    destination_location_arn: &str,
    role_arn: &str,
) -> TaskSettings {
    let task = &spec.task;
    let log_level = match (task.log_level, &task.log_group_arn) {
        (Some(level), Some(_)) => level,
        (None, Some(_)) => api::LogLevel::Basic,
        (_, None) => api::LogLevel::Off,
    };
    TaskSettings {
        name: name.to_string(),
        mode: match task.mode {
            api::TaskMode::Enhanced => "ENHANCED",
            api::TaskMode::Basic => "BASIC",
        }
        .into(),
        source_location_arn: source_location_arn.to_string(),
        destination_location_arn: destination_location_arn.to_string(),
        verify: match task.verify {
            api::VerifyMode::OnlyFilesTransferred => "ONLY_FILES_TRANSFERRED",
            api::VerifyMode::PointInTimeConsistent => "POINT_IN_TIME_CONSISTENT",
            api::VerifyMode::None => "NONE",
        }
        .into(),
        overwrite: match task.overwrite {
            api::OverwriteMode::Always => "ALWAYS",
            api::OverwriteMode::Never => "NEVER",
        }
        .into(),
        transfer: match task.transfer {
            api::TransferMode::Changed => "CHANGED",
            api::TransferMode::All => "ALL",
        }
        .into(),
        preserve_deleted: match task.deleted {
            api::DeletedFilesMode::Preserve => "PRESERVE",
            api::DeletedFilesMode::Remove => "REMOVE",
        }
        .into(),
        object_tags: match task.object_tags {
            api::ObjectTagsMode::Preserve => "PRESERVE",
            api::ObjectTagsMode::None => "NONE",
        }
        .into(),
        log_level: match log_level {
            api::LogLevel::Off => "OFF",
            api::LogLevel::Basic => "BASIC",
            api::LogLevel::Transfer => "TRANSFER",
        }
        .into(),
        bytes_per_second: task.bytes_per_second.unwrap_or(-1),
        includes: join(&task.includes),
        excludes: join(&task.excludes),
        schedule: spec.schedule.clone().map(|expr| (expr, !spec.suspend)),
        log_group_arn: task.log_group_arn.clone(),
        report: task.report.as_ref().map(|r| ReportSettings {
            bucket_arn: bucket_arn(&spec.source.region, &r.bucket),
            subdirectory: subdirectory(r.prefix.as_deref()),
            role_arn: role_arn.to_string(),
            output: match r.output {
                api::ReportOutput::Standard => "STANDARD",
                api::ReportOutput::Summary => "SUMMARY_ONLY",
            }
            .into(),
            level: match r.level {
                api::ReportLevel::ErrorsOnly => "ERRORS_ONLY",
                api::ReportLevel::SuccessesAndErrors => "SUCCESSES_AND_ERRORS",
            }
            .into(),
        }),
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
    if observed == desired {
        TaskChange::Nothing
    } else {
        TaskChange::Update
    }
}

/// Reads DataSync's description of a task into [`TaskSettings`].
fn observed(out: &aws_sdk_datasync::operation::describe_task::DescribeTaskOutput) -> TaskSettings {
    let options = out.options();
    let opt = |f: fn(&Options) -> Option<&str>| options.and_then(f).unwrap_or_default().to_string();
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
        verify: opt(|o| o.verify_mode().map(|v| v.as_str())),
        overwrite: opt(|o| o.overwrite_mode().map(|v| v.as_str())),
        transfer: opt(|o| o.transfer_mode().map(|v| v.as_str())),
        preserve_deleted: opt(|o| o.preserve_deleted_files().map(|v| v.as_str())),
        object_tags: opt(|o| o.object_tags().map(|v| v.as_str())),
        log_level: opt(|o| o.log_level().map(|v| v.as_str())),
        bytes_per_second: options.and_then(|o| o.bytes_per_second()).unwrap_or(-1),
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

fn options(want: &TaskSettings) -> Options {
    Options::builder()
        .verify_mode(VerifyMode::from(want.verify.as_str()))
        .overwrite_mode(OverwriteMode::from(want.overwrite.as_str()))
        .transfer_mode(TransferMode::from(want.transfer.as_str()))
        .preserve_deleted_files(PreserveDeletedFiles::from(want.preserve_deleted.as_str()))
        .object_tags(ObjectTags::from(want.object_tags.as_str()))
        .log_level(LogLevel::from(want.log_level.as_str()))
        .bytes_per_second(want.bytes_per_second)
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

/// Ensures the task and records its ARN.
pub async fn ensure(t: &mut Transfer<'_>) -> Result<()> {
    let region = t.spec.destination.region.clone();
    let client = t.account_a.datasync(&region);
    let account = t.account_a_id().to_string();
    let role_arn = t.status.role.as_ref().map(|r| r.arn.clone()).unwrap_or_default();
    let want = desired(
        t.spec,
        &t.id.task_name(),
        t.status.source_location_arn.as_deref().unwrap_or_default(),
        t.status.destination_location_arn.as_deref().unwrap_or_default(),
        &role_arn,
    );

    if let Some(arn) = t.status.task_arn.clone() {
        match client.describe_task().task_arn(&arn).send().await {
            Ok(out) => match diff(&observed(&out), &want) {
                TaskChange::Nothing => return ready(t, &arn),
                TaskChange::Update => {
                    client
                        .update_task()
                        .task_arn(&arn)
                        .name(&want.name)
                        .options(options(&want))
                        .set_includes(Some(filters(&want.includes)))
                        .set_excludes(Some(filters(&want.excludes)))
                        .schedule(schedule(&want)?)
                        .cloud_watch_log_group_arn(want.log_group_arn.clone().unwrap_or_default())
                        // An empty report configuration removes a report the spec no longer has.
                        .task_report_config(report(&want)?.unwrap_or_else(|| TaskReportConfig::builder().build()))
                        .send()
                        .await
                        .map_err(|e| t.sdk_error(&e, &account, "datasync:UpdateTask", &arn))?;
                    t.changed(
                        "TaskUpdated",
                        format!("updated the settings of DataSync task {arn} in place"),
                    )
                    .await;
                    return ready(t, &arn);
                }
                TaskChange::Replace(why) => {
                    t.retire(&arn);
                    t.status.task_arn = None;
                    t.persist().await?;
                    t.changed("TaskReplaced", format!("DataSync task {arn} is replaced: {why}"))
                        .await;
                }
            },
            Err(e) if classify(&e).kind == FailureKind::NotFound => {
                t.status.task_arn = None;
            }
            Err(e) => return Err(t.sdk_error(&e, &account, "datasync:DescribeTask", &arn)),
        }
    }

    // A task of ours left by a crash between create and status write.
    let tasks = list_tasks(&client)
        .await
        .map_err(|f| t.aws_error(&f, &account, "datasync:ListTasks", &want.name))?;
    for (arn, name) in tasks {
        if name != want.name || !t.adoptable(&client, &arn).await? {
            continue;
        }
        let out = client
            .describe_task()
            .task_arn(&arn)
            .send()
            .await
            .map_err(|e| t.sdk_error(&e, &account, "datasync:DescribeTask", &arn))?;
        if matches!(diff(&observed(&out), &want), TaskChange::Nothing | TaskChange::Update) {
            t.status.task_arn = Some(arn.clone());
            t.persist().await?;
            t.changed(
                "TaskAdopted",
                format!("found DataSync task {arn} created earlier by Ferry and adopted it"),
            )
            .await;
            // The next reconcile brings its settings in line if needed.
            return ready(t, &arn);
        }
    }

    let mut request = client
        .create_task()
        .name(&want.name)
        .source_location_arn(&want.source_location_arn)
        .destination_location_arn(&want.destination_location_arn)
        .task_mode(TaskMode::from(want.mode.as_str()))
        .options(options(&want))
        .set_includes(want.includes.is_some().then(|| filters(&want.includes)))
        .set_excludes(want.excludes.is_some().then(|| filters(&want.excludes)))
        .set_cloud_watch_log_group_arn(want.log_group_arn.clone())
        .set_task_report_config(report(&want)?)
        .set_tags(Some(tag_entries(&t.id, &[])));
    if want.schedule.is_some() {
        request = request.schedule(schedule(&want)?);
    }
    let out = request
        .send()
        .await
        .map_err(|e| t.sdk_error(&e, &account, "datasync:CreateTask", &want.name))?;
    let arn = out.task_arn().unwrap_or_default().to_string();
    t.status.task_arn = Some(arn.clone());
    t.persist().await?;
    t.changed(
        "TaskCreated",
        format!("created DataSync task {arn} ({} mode) in {region}", want.mode),
    )
    .await;
    ready(t, &arn)
}

fn ready(t: &mut Transfer<'_>, arn: &str) -> Result<()> {
    t.status.task_arn = Some(arn.to_string());
    t.condition(
        condition::TASK_READY,
        true,
        "TaskInPlace",
        format!("DataSync task {arn} has the spec's settings"),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: serde_json::Value) -> CrossAccountTransferSpec {
        let mut base = serde_json::json!({
            "source": {"bucket": "src", "region": "us-east-1", "prefix": "media"},
            "destination": {"bucket": "dst", "region": "us-west-1", "accountId": "222222222222",
                            "access": {"roleArn": "arn:aws:iam::222222222222:role/admin"}}
        });
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn spec_maps_to_datasync_options() {
        let s = spec(serde_json::json!({
            "task": {"mode": "Basic", "verify": "PointInTimeConsistent", "overwrite": "Never", "transfer": "All",
                     "objectTags": "None", "includes": ["/a*", "/b*"], "excludes": ["*.tmp"], "bytesPerSecond": 1048576,
                     "logGroupArn": "arn:aws:logs:us-west-1:111111111111:log-group:ferry",
                     "report": {"bucket": "reports", "prefix": "ferry", "level": "SuccessesAndErrors", "output": "Summary"}},
            "schedule": "rate(12 hours)"
        }));
        let d = desired(&s, "ferry-ns-x", "src-loc", "dst-loc", "arn:aws:iam::1:role/r");
        assert_eq!(d.mode, "BASIC");
        assert_eq!(d.verify, "POINT_IN_TIME_CONSISTENT");
        assert_eq!(d.overwrite, "NEVER");
        assert_eq!(d.transfer, "ALL");
        assert_eq!(d.preserve_deleted, "PRESERVE");
        assert_eq!(d.object_tags, "NONE");
        assert_eq!(d.log_level, "BASIC", "a log group without a level logs BASIC");
        assert_eq!(d.bytes_per_second, 1_048_576);
        assert_eq!(d.includes.as_deref(), Some("/a*|/b*"));
        assert_eq!(d.excludes.as_deref(), Some("*.tmp"));
        assert_eq!(d.schedule, Some(("rate(12 hours)".into(), true)));
        let r = d.report.unwrap();
        assert_eq!(r.bucket_arn, "arn:aws:s3:::reports");
        assert_eq!(r.subdirectory, "/ferry/");
        assert_eq!(r.output, "SUMMARY_ONLY");
        assert_eq!(r.level, "SUCCESSES_AND_ERRORS");
    }

    #[test]
    fn defaults_map_to_enhanced_without_logging() {
        let d = desired(&spec(serde_json::json!({})), "n", "s", "d", "r");
        assert_eq!(d.mode, "ENHANCED");
        assert_eq!(d.verify, "ONLY_FILES_TRANSFERRED");
        assert_eq!(d.transfer, "CHANGED");
        assert_eq!(d.log_level, "OFF");
        assert_eq!(d.bytes_per_second, -1);
        assert_eq!(d.includes, None);
        assert_eq!(d.schedule, None);
    }

    #[test]
    fn suspend_disables_the_schedule() {
        let d = desired(
            &spec(serde_json::json!({"schedule": "rate(1 day)", "suspend": true})),
            "n",
            "s",
            "d",
            "r",
        );
        assert_eq!(d.schedule, Some(("rate(1 day)".into(), false)));
    }

    #[test]
    fn filters_update_in_place_but_locations_and_mode_replace() {
        let base = desired(&spec(serde_json::json!({})), "n", "s", "d", "r");
        assert_eq!(diff(&base, &base), TaskChange::Nothing);
        let mut filtered = base.clone();
        filtered.excludes = Some("*.tmp".into());
        assert_eq!(diff(&base, &filtered), TaskChange::Update);
        let mut moved = base.clone();
        moved.destination_location_arn = "d2".into();
        assert!(matches!(diff(&base, &moved), TaskChange::Replace(_)));
        let mut basic = base.clone();
        basic.mode = "BASIC".into();
        assert!(matches!(diff(&base, &basic), TaskChange::Replace(_)));
    }
}
