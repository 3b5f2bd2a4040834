//! The status Ferry writes onto a `CrossAccountTransfer`: phase, conditions, the ARNs of
//! what it created, the destination facts it must remember, and the execution's progress.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Observed state of a CrossAccountTransfer, written by the controller.
#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CrossAccountTransferStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// The `ferry.dev/run` annotation value this status describes, as `observedGeneration` is
    /// for the spec: until it equals the annotation, the phase is about the previous request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_run_token: Option<String>,

    /// Summary for humans and printer columns: Pending, Provisioning, AwaitingDestination, Ready,
    /// Transferring, Succeeded, Failed or Suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,

    /// Progress of the current or last execution, e.g. `42%`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,

    /// One condition per pipeline step (RoleReady, DestinationReady, LocationsReady, TaskReady,
    /// ExecutionSucceeded) plus Ready, Reconciling and Stalled (kstatus semantics).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// The DataSync IAM role in Account A.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<RoleStatus>,

    /// What Ferry knows and did in Account B (`initiator: Source`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<ForeignBucketStatus>,

    /// What Ferry knows and did in the source bucket's account (`initiator: Destination`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ForeignBucketStatus>,

    /// ARN of the DataSync location of the source bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_location_arn: Option<String>,

    /// ARN of the DataSync location of the destination bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_location_arn: Option<String>,

    /// ARN of the DataSync task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_arn: Option<String>,

    /// ARNs of resources Ferry created that the current spec no longer uses (a replaced task or
    /// location, a renamed role); Ferry deletes them once nothing depends on them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub retired: Vec<String>,

    /// When Ferry deleted the task and its locations after the run succeeded
    /// (`spec.task.release: AfterSuccess`); the next run request creates them again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<Time>,

    /// Creates Ferry started and has not recorded the result of yet (`location:source`,
    /// `location:destination`, `task`, `execution`): DataSync has no idempotency token, so after
    /// a crash only these are searched for before creating again, and a healthy reconcile
    /// searches nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub creating: Vec<String>,

    /// When Ferry last changed an IAM role or bucket policy: access errors shortly after are
    /// IAM propagation and retried rather than reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_changed_at: Option<Time>,

    /// What asked for the last execution Ferry started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<RunRequest>,

    /// The current or most recent execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionStatus>,

    /// The default encryption of both buckets and the KMS keys the DataSync role may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionStatus>,

    /// The DataSync schedule as Ferry last saw it, when the spec has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleState>,

    /// The last finished executions, newest first (at most five).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub history: Vec<ExecutionSummary>,
}

/// Where a transfer is, for humans and printer columns.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, JsonSchema, PartialEq, Eq)]
pub enum Phase {
    /// Waiting in line for a DataSync task slot (the account's task quota in the Region is
    /// reached): nothing happens until its turn comes.
    Pending,
    /// Ferry is creating or updating AWS resources.
    Provisioning,
    /// External mode: waiting for Account B's administrator to apply the bucket policy.
    AwaitingDestination,
    /// External mode, `initiator: Destination`: waiting for the source account's administrator
    /// to apply the bucket policy.
    AwaitingSource,
    /// Everything exists; no execution asked for yet.
    Ready,
    /// A DataSync execution is running.
    Transferring,
    /// The last execution succeeded.
    Succeeded,
    /// The last execution failed, or the transfer is stuck on an error retrying cannot fix.
    Failed,
    /// `spec.suspend` is true.
    Suspended,
}

impl Phase {
    /// The phase as written in the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Provisioning => "Provisioning",
            Phase::AwaitingDestination => "AwaitingDestination",
            Phase::AwaitingSource => "AwaitingSource",
            Phase::Ready => "Ready",
            Phase::Transferring => "Transferring",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
            Phase::Suspended => "Suspended",
        }
    }
}

/// The DataSync role as Ferry found or made it.
#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RoleStatus {
    /// ARN of the role DataSync uses.
    pub arn: String,
    /// True when Ferry created the role (and so deletes it); false for `dataSyncRole.arn`.
    pub managed: bool,
}

/// Facts about the bucket of the other account: the destination in Account B (push), or the
/// source (`initiator: Destination`).
#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ForeignBucketStatus {
    /// The bucket these facts are about (the bucket of the other account Ferry last configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,

    /// The region of that bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,

    /// The bucket's Object Ownership setting before Ferry changed it (`BucketOwnerPreferred`,
    /// `ObjectWriter`, `BucketOwnerEnforced`, or `Unset`), put back on deletion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_ownership: Option<String>,

    /// Ferry's identity that creates the location of this bucket (statement two of the bucket
    /// policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator_arn: Option<String>,

    /// The Sids of Ferry's statements in the bucket policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub policy_statement_ids: Vec<String>,

    /// External mode: the bucket policy statements the bucket account's administrator must add
    /// to the bucket's policy, as a JSON policy document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_bucket_policy: Option<String>,

    /// The KMS key whose key policy Ferry added the DataSync role to (AssumeRole mode, a key of
    /// the bucket's account); the role is taken out again on deletion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_arn: Option<String>,

    /// The key-policy statement the bucket account's administrator must add to the bucket's KMS
    /// key (External mode, or a key Ferry cannot edit), as a JSON policy document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_key_policy: Option<String>,
}

impl CrossAccountTransferStatus {
    /// What Ferry knows of the other account's bucket: `source` when the destination account
    /// runs the copy (`pulls`), else `destination`.
    pub fn foreign(&self, pulls: bool) -> Option<&ForeignBucketStatus> {
        if pulls {
            self.source.as_ref()
        } else {
            self.destination.as_ref()
        }
    }

    /// [`foreign`](Self::foreign), to change.
    pub fn foreign_mut(&mut self, pulls: bool) -> &mut Option<ForeignBucketStatus> {
        if pulls { &mut self.source } else { &mut self.destination }
    }
}

impl ReportSummary {
    /// Where the report is and which objects failed, to append to a message (pure).
    pub fn note(&self) -> String {
        let mut note = format!("; report {}: {} failed", self.location, self.failed);
        if !self.failed_objects.is_empty() {
            note.push_str(&format!(" (e.g. {})", self.failed_objects.join("; ")));
        }
        note
    }
}

/// How a bucket encrypts new objects, as S3 reports its default encryption.
#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct BucketEncryption {
    /// `AES256` (SSE-S3), `aws:kms` (SSE-KMS) or `aws:kms:dsse` (DSSE-KMS).
    pub algorithm: String,
    /// The customer managed key's full ARN the DataSync role is granted (SSE-KMS with a
    /// customer managed key, or the spec's `kmsKeyArn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_arn: Option<String>,
}

/// The encryption of both buckets, as Ferry found it.
#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionStatus {
    /// The source bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<BucketEncryption>,
    /// The destination bucket (`None` in External mode without `destination.kmsKeyArn`: Ferry
    /// does not call Account B then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<BucketEncryption>,
}

/// What the DataSync task report of an execution says.
#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ReportSummary {
    /// Where the report is: `s3://bucket/key` of its summary.
    pub location: String,
    /// Objects transferred, as the report counts them.
    pub transferred: i64,
    /// Objects verified.
    pub verified: i64,
    /// Objects that failed (to transfer, verify, delete or be listed).
    pub failed: i64,
    /// A few of the failed objects' keys (at most five), with DataSync's error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub failed_objects: Vec<String>,
}

/// The start of a `ferry.dev/run` value that asks for a run of only the objects the last run's
/// task report lists as failed.
pub const FAILED_ONLY_PREFIX: &str = "failed:";

impl RunRequest {
    /// It asks for the failed objects of the last run only.
    pub fn asks_failed_only(&self) -> bool {
        self.token.as_deref().is_some_and(|t| t.starts_with(FAILED_ONLY_PREFIX))
    }
}

/// What asked for an execution.
#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RunRequest {
    /// The spec generation the execution was started for (run: OnChange).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// The value of the `ferry.dev/run` annotation it was started for (run: Manual).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// ARN of the execution started for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
    /// Set for a failed-only run (a `ferry.dev/run` value starting with `failed:`): what it
    /// copied again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_only: Option<FailedOnlyRun>,
}

/// A run of only the objects an earlier run's task report lists as failed.
#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct FailedOnlyRun {
    /// The execution whose task report listed the failed objects.
    pub of_execution: String,
    /// How many objects the run covers (0: nothing had failed, so no execution was started).
    pub objects: i64,
    /// The DataSync manifest Ferry wrote for it, `s3://bucket/key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
}

/// Progress of a DataSync task execution.
#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionStatus {
    /// ARN of the execution.
    pub arn: String,
    /// DataSync status: QUEUED, LAUNCHING, PREPARING, TRANSFERRING, VERIFYING, SUCCESS, ERROR, CANCELLING.
    pub status: String,
    /// When the execution started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When Ferry saw it finish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Time>,
    /// Bytes DataSync expects to transfer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_bytes: Option<i64>,
    /// Objects DataSync expects to transfer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_files: Option<i64>,
    /// Bytes transferred so far.
    #[serde(default)]
    pub bytes_transferred: i64,
    /// Bytes written to the destination so far.
    #[serde(default)]
    pub bytes_written: i64,
    /// Objects transferred so far.
    #[serde(default)]
    pub files_transferred: i64,
    /// Objects verified.
    #[serde(default)]
    pub files_verified: i64,
    /// Objects deleted in the destination (deleted: Remove).
    #[serde(default)]
    pub files_deleted: i64,
    /// Objects skipped (already up to date).
    #[serde(default)]
    pub files_skipped: i64,
    /// Objects that failed to transfer or verify.
    #[serde(default)]
    pub files_failed: i64,
    /// Percent done, 0–100.
    #[serde(default)]
    pub percent_done: i32,
    /// DataSync's error code when the execution failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// DataSync's error detail when the execution failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_detail: Option<String>,
    /// Enhanced mode: objects DataSync listed at the source so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_listed: Option<i64>,
    /// Enhanced mode: objects DataSync prepared (compared) so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_prepared: Option<i64>,
    /// The task report of this execution, once DataSync wrote it and Ferry read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ReportSummary>,
}

/// The task's schedule, as DataSync reports it.
#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleState {
    /// The schedule expression.
    pub expression: String,
    /// Whether DataSync runs it.
    pub enabled: bool,
    /// Who disabled it: `SERVICE` (DataSync, after repeated failures) or `USER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_by: Option<String>,
    /// Why DataSync disabled it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// The spec generation when Ferry found the schedule disabled by DataSync: Ferry keeps it
    /// disabled until the spec changes or a new `ferry.dev/run` value asks for a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at_generation: Option<i64>,
    /// The `ferry.dev/run` value at that time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at_token: Option<String>,
    /// The last execution the schedule started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<ExecutionSummary>,
}

/// True for the DataSync status of an execution that has not finished, read as the SDK's
/// `TaskExecutionStatus` (a status this SDK does not know counts as finished).
pub fn is_running_status(status: &str) -> bool {
    use aws_sdk_datasync::types::TaskExecutionStatus as S;
    matches!(
        S::from(status),
        S::Queued | S::Cancelling | S::Launching | S::Preparing | S::Transferring | S::Verifying
    )
}

impl ExecutionStatus {
    /// The execution has not finished.
    pub fn is_running(&self) -> bool {
        is_running_status(&self.status)
    }

    /// The execution finished successfully.
    pub fn succeeded(&self) -> bool {
        aws_sdk_datasync::types::TaskExecutionStatus::from(self.status.as_str())
            == aws_sdk_datasync::types::TaskExecutionStatus::Success
    }

    /// The execution finished without success.
    pub fn failed(&self) -> bool {
        !self.is_running() && !self.succeeded()
    }

    /// Where the execution is, in one sentence (the one text of the condition and the events).
    pub fn summary(&self) -> String {
        let arn = &self.arn;
        if self.succeeded() && self.files_failed > 0 {
            format!(
                "execution {arn} succeeded but {} items failed to transfer or verify ({} objects, {} bytes copied)",
                self.files_failed, self.files_transferred, self.bytes_transferred
            )
        } else if self.succeeded() {
            format!(
                "execution {arn} copied {} objects ({} bytes)",
                self.files_transferred, self.bytes_transferred
            )
        } else if self.is_running() {
            format!("execution {arn} is {}: {}% done", self.status, self.percent_done)
        } else {
            format!(
                "execution {arn} ended {}: {}: {}",
                self.status,
                self.error_code.as_deref().unwrap_or("no error code"),
                self.error_detail.as_deref().unwrap_or("no detail")
            )
        }
    }
}

/// A finished execution, for the history.
#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionSummary {
    /// ARN of the execution.
    pub arn: String,
    /// Final DataSync status (SUCCESS or ERROR).
    pub status: String,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When Ferry saw it finish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Time>,
    /// Bytes transferred.
    #[serde(default)]
    pub bytes_transferred: i64,
    /// Objects transferred.
    #[serde(default)]
    pub files_transferred: i64,
    /// DataSync's error code, if it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

/// Condition types Ferry sets.
pub mod condition {
    /// The DataSync role exists with the right trust and permissions.
    pub const ROLE_READY: &str = "RoleReady";
    /// The destination bucket's ownership and policy are in place (or, External mode, applied by Account B).
    pub const DESTINATION_READY: &str = "DestinationReady";
    /// `initiator: Destination`: the source bucket's policy grants the DataSync role (or, External
    /// mode, the source account applied it).
    pub const SOURCE_READY: &str = "SourceReady";
    /// Both DataSync locations exist.
    pub const LOCATIONS_READY: &str = "LocationsReady";
    /// The DataSync task exists with the spec's settings.
    pub const TASK_READY: &str = "TaskReady";
    /// The last execution succeeded.
    pub const EXECUTION_SUCCEEDED: &str = "ExecutionSucceeded";
    /// The whole transfer is done for the current spec (kstatus, Argo CD).
    pub const READY: &str = "Ready";
    /// Ferry is working towards the spec (kstatus: InProgress).
    pub const RECONCILING: &str = "Reconciling";
    /// Ferry is stuck on something retrying cannot fix (kstatus: Failed).
    pub const STALLED: &str = "Stalled";
}
