//! The `CrossAccountTransfer` API (`ferry.dev/v1alpha1`): the spec users write, the
//! status Ferry reports, and the CRD generated from both.
//!
//! Validation lives in the schema wherever the API server can enforce it (patterns,
//! enums, CEL rules with messages that name the field), so a bad manifest is refused
//! at admission. [`CrossAccountTransferSpec::validate`] checks, at reconcile time, the
//! little that a schema cannot express.

mod rules;
mod status;
mod tenancy;

pub use rules::{PARTITIONS, RULES, Rule, Scope, broken_rules, cel_rules, partition, partition_names};
pub use status::*;
pub use tenancy::*;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Finalizer that guards the AWS resources Ferry created for a transfer.
pub const FINALIZER: &str = "ferry.dev/cleanup";
/// Server-side-apply field manager of the controller.
pub const FIELD_MANAGER: &str = "ferry.dev/controller";
/// Annotation that asks for a manual run: set it to any new value.
pub const RUN_ANNOTATION: &str = "ferry.dev/run";

/// S3 bucket naming rules (lowercase letters, digits, dots and hyphens; 3–63 chars).
const BUCKET_PATTERN: &str = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$";
/// AWS region names such as `us-east-1`, `eu-central-2`, `us-gov-west-1`, `eusc-de-east-1`.
const REGION_PATTERN: &str = r"^([a-z]{2}(-gov|-iso[a-z]?)?|eusc-[a-z]{2})-[a-z]+-[0-9]{1,2}$";
/// An S3 key prefix: folders separated by single slashes, no leading slash, only the characters
/// DataSync's `Subdirectory` takes (`[a-zA-Z0-9_\-\+\./\(\)\p{Zs}]`, ASCII space only here).
const PREFIX_PATTERN: &str = r"^[A-Za-z0-9_+.() -]+(/[A-Za-z0-9_+.() -]+)*/?$";
/// An IAM role ARN in any partition.
const ROLE_ARN_PATTERN: &str = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$";
/// A 12-digit AWS account id.
const ACCOUNT_ID_PATTERN: &str = r"^[0-9]{12}$";
/// An IAM role name.
const ROLE_NAME_PATTERN: &str = r"^[A-Za-z0-9+=,.@_-]{1,64}$";
/// A CloudWatch Logs log group ARN, as DataSync accepts it.
const LOG_GROUP_ARN_PATTERN: &str = r"^arn:aws[a-z-]*:logs:[a-z0-9-]+:[0-9]{12}:log-group:[^:*]{1,512}(:\*)?$";
/// A DataSync schedule expression: EventBridge's `rate(...)` (singular unit for 1, plural
/// otherwise) or six-field `cron(...)`, at most once an hour (DataSync's minimum): minutes of 60
/// or more, and a cron with one minute value.
const SCHEDULE_PATTERN: &str = r"^(rate\((1 (hour|day)|([2-9]|[1-9][0-9]+) (hours|days)|([6-9][0-9]|[1-9][0-9]{2,}) minutes)\)|cron\([0-5]?[0-9]( [0-9A-Za-z*?,/#-]+){5}\))$";
/// A DataSync filter pattern (one pattern; Ferry joins them with `|`).
const FILTER_PATTERN: &str = r"^[^|\x00]+$";
/// The longest filter pattern: 100 of them joined with `|` stay within DataSync's 102,400
/// characters.
pub const MAX_FILTER_PATTERN: usize = 1023;

/// Regions a DataSync task cannot copy from or to another Region (opt-in Regions).
pub const OPT_IN_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-south-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-west-1",
    "eu-central-2",
    "eu-south-1",
    "eu-south-2",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
];

/// A KMS key's full ARN (not an alias or a bare key id): what DataSync's role policy and the
/// key policy need.
pub fn kms_key_arn_pattern() -> String {
    format!(
        "^arn:({}):kms:[a-z0-9-]+:[0-9]{{12}}:key/[A-Za-z0-9-]+$",
        partition_names().join("|")
    )
}
/// The message for a `kmsKeyArn` that is not a key ARN.
pub const MSG_KMS_KEY_ARN: &str = "kmsKeyArn must be the key's full ARN, arn:aws:kms:<region>:<account>:key/<key-id>, not an alias or a key id: DataSync's role and the key policy name keys by ARN (aws kms describe-key --key-id alias/<name> prints it)";

fn kms_key_rules() -> serde_json::Value {
    serde_json::json!([{"rule": format!("self.matches('{}')", kms_key_arn_pattern()), "message": MSG_KMS_KEY_ARN}])
}

/// Whether `arn` is a KMS key's full ARN ([`kms_key_arn_pattern`] without a regex engine).
pub fn is_kms_key_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [arn_, partition, service, region, account, resource] = parts.as_slice() else {
        return false;
    };
    let key = resource.strip_prefix("key/").unwrap_or_default();
    *arn_ == "arn"
        && partition_names().contains(partition)
        && *service == "kms"
        && !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// S3's naming rules for general purpose buckets that a pattern cannot express
/// (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html>), as CEL
/// rules on a bucket name.
fn bucket_rules() -> serde_json::Value {
    serde_json::json!([
        {"rule": "!self.contains('..')", "message": "S3 bucket names must not contain two adjacent periods"},
        {"rule": "!self.matches('^[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+$')", "message": "S3 bucket names must not be formatted as an IP address"},
        {"rule": "!(self.startsWith('xn--') || self.startsWith('sthree-') || self.startsWith('amzn-s3-demo-'))",
         "message": "S3 bucket names must not start with xn--, sthree- or amzn-s3-demo- (reserved by S3)"},
        {"rule": "!(self.endsWith('-s3alias') || self.endsWith('--ol-s3') || self.endsWith('.mrap') || self.endsWith('--x-s3') || self.endsWith('--table-s3'))",
         "message": "S3 bucket names must not end with -s3alias, --ol-s3, .mrap, --x-s3 or --table-s3 (reserved by S3 for aliases and other bucket types)"}
    ])
}

/// The problem with a bucket name under S3's naming rules that a pattern cannot express
/// (the same rules as the CRD's CEL rules, for [`CrossAccountTransferSpec::validate`]).
pub fn bucket_name_problem(name: &str) -> Option<&'static str> {
    let ip = name.split('.').count() == 4
        && name
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if name.contains("..") {
        Some("S3 bucket names must not contain two adjacent periods")
    } else if ip {
        Some("S3 bucket names must not be formatted as an IP address")
    } else if ["xn--", "sthree-", "amzn-s3-demo-"].iter().any(|p| name.starts_with(p)) {
        Some("S3 bucket names must not start with xn--, sthree- or amzn-s3-demo- (reserved by S3)")
    } else if ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"]
        .iter()
        .any(|s| name.ends_with(s))
    {
        Some(
            "S3 bucket names must not end with -s3alias, --ol-s3, .mrap, --x-s3 or --table-s3 (reserved by S3 for aliases and other bucket types)",
        )
    } else {
        None
    }
}

/// Copy an S3 bucket (Account A) into a bucket of another AWS account (Account B) with AWS DataSync.
///
/// Ferry creates and keeps in shape the DataSync IAM role, the destination bucket's
/// object-ownership setting and policy, both DataSync locations and the task, starts
/// the transfer and reports its progress here.
// clippy mistakes the repeated `type_` of the printcolumn entries for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq)]
#[kube(
    group = "ferry.dev",
    version = "v1alpha1",
    kind = "CrossAccountTransfer",
    plural = "crossaccounttransfers",
    shortname = "xat",
    category = "ferry",
    namespaced,
    status = "CrossAccountTransferStatus",
    derive = "PartialEq",
    doc = "CrossAccountTransfer copies an S3 bucket of the account Ferry runs in (Account A) into a bucket of another AWS account (Account B) with AWS DataSync, and reports the transfer's progress in its status.",
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Where the transfer is: Provisioning, Transferring, Succeeded, Failed, ..."
    ),
    printcolumn(
        name = "Source",
        type_ = "string",
        json_path = ".spec.source.bucket",
        description = "Source bucket (Account A)"
    ),
    printcolumn(
        name = "Destination",
        type_ = "string",
        json_path = ".spec.destination.bucket",
        description = "Destination bucket (Account B)"
    ),
    printcolumn(
        name = "Progress",
        type_ = "string",
        json_path = ".status.progress",
        description = "Progress of the current or last execution"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = cel_rules(Scope::Spec)))]
pub struct CrossAccountTransferSpec {
    /// The bucket to copy from, in Account A: the account whose credentials the operator runs with
    /// (its pod identity, or `roleArn` assumed from it).
    pub source: SourceSpec,

    /// The bucket to copy into, in Account B, and how Ferry may configure it.
    pub destination: DestinationSpec,

    /// Which account runs the copy, i.e. owns the DataSync role and task. `Source` (default, the
    /// tutorial's push): the account Ferry runs in is the source's, and Ferry configures the
    /// destination bucket (`spec.destination.access`). `Destination` (pull): the account Ferry
    /// runs in is the destination's (`spec.destination.accountId`), and Ferry configures the
    /// source bucket of `spec.source.accountId` (`spec.source.access`). Immutable.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self == oldSelf", "message": "spec.initiator is immutable: the DataSync role and task live in the initiating account; create a new CrossAccountTransfer to change it"}
    ]))]
    pub initiator: Initiator,

    /// The IAM role DataSync uses to read the source and write the destination. Empty (the
    /// default): Ferry creates and manages `ferry-<namespace>-<name>`. `name`: Ferry creates and
    /// manages a role of that name. `arn`: an existing role that Ferry uses but never changes.
    #[serde(default)]
    pub data_sync_role: DataSyncRoleSpec,

    /// The DataSync task's settings.
    #[serde(default)]
    pub task: TaskSpec,

    /// Optional DataSync schedule, e.g. `cron(0 2 * * ? *)` or `rate(12 hours)` (at most once an
    /// hour). DataSync then starts executions on its own; Ferry follows them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = SCHEDULE_PATTERN), length(max = 256))]
    #[schemars(extend("x-kubernetes-validations" = cel_rules(Scope::Schedule)))]
    pub schedule: Option<String>,

    /// When Ferry starts an execution. `OnChange` (default): once for every new spec generation.
    /// `Manual`: only when the annotation `ferry.dev/run` is set to a new value.
    #[serde(default)]
    pub run: RunPolicy,

    /// What happens in AWS when this resource is deleted. `Delete` (default): Ferry removes what it
    /// created (task, locations, its bucket-policy statements, its role) and puts the destination's
    /// object-ownership setting back. `Retain`: everything is left in AWS.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Stop starting executions and disable the DataSync schedule. A running execution finishes.
    #[serde(default)]
    pub suspend: bool,
}

/// The source bucket (Account A).
#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = cel_rules(Scope::Source)))]
pub struct SourceSpec {
    /// Name of the source S3 bucket, e.g. `account-a-bucket`.
    #[schemars(regex(pattern = BUCKET_PATTERN), length(min = 3, max = 63))]
    #[schemars(extend("x-kubernetes-validations" = bucket_rules()))]
    pub bucket: String,

    /// AWS region of the source bucket, e.g. `us-east-1`. The source location is created there.
    #[schemars(regex(pattern = REGION_PATTERN), length(max = 32))]
    pub region: String,

    /// Optional key prefix (folder) to copy, e.g. `media/`. Empty: the whole bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = PREFIX_PATTERN), length(max = 1024))]
    pub prefix: Option<String>,

    /// Optional IAM role in Account A to assume instead of using the operator's own identity
    /// (`initiator: Source` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = ROLE_ARN_PATTERN), length(max = 2048))]
    pub role_arn: Option<String>,

    /// The 12-digit id of the source bucket's account, quoted in YAML (`initiator: Destination`
    /// only, where it is required): the DataSync role may read buckets of this account only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = ACCOUNT_ID_PATTERN))]
    pub account_id: Option<String>,

    /// How Ferry gets the source bucket's account ready when the destination account runs the
    /// copy (`initiator: Destination` only, where it is required): `mode: AssumeRole` with
    /// `roleArn` (a role of `accountId`), or `mode: External`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<SourceAccess>,

    /// Optional customer managed KMS key (full key ARN) that encrypts the source objects. Ferry
    /// reads the bucket's default encryption and grants the DataSync role its key on its own;
    /// name a key here when objects are encrypted with a key other than the bucket default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[schemars(extend("x-kubernetes-validations" = kms_key_rules()))]
    pub kms_key_arn: Option<String>,
}

/// The destination bucket (Account B).
#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = cel_rules(Scope::Destination)))]
pub struct DestinationSpec {
    /// Name of the destination S3 bucket in Account B, e.g. `account-b-bucket`.
    #[schemars(regex(pattern = BUCKET_PATTERN), length(min = 3, max = 63))]
    #[schemars(extend("x-kubernetes-validations" = bucket_rules()))]
    pub bucket: String,

    /// AWS region of the destination bucket. It may differ from the source region; the DataSync
    /// task runs in this region.
    #[schemars(regex(pattern = REGION_PATTERN), length(max = 32))]
    pub region: String,

    /// The 12-digit id of Account B, quoted in YAML, e.g. `"222222222222"`.
    #[schemars(regex(pattern = ACCOUNT_ID_PATTERN))]
    pub account_id: String,

    /// Optional IAM role of the destination account to assume instead of using the operator's
    /// own identity (`initiator: Destination` only, as `source.roleArn` is for a push): the
    /// DataSync role and the task are made with it, so one operator can run pulls for several
    /// destination accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = ROLE_ARN_PATTERN), length(max = 2048))]
    pub role_arn: Option<String>,

    /// Optional key prefix (folder) the objects are copied under, e.g. `archive/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = PREFIX_PATTERN), length(max = 1024))]
    pub prefix: Option<String>,

    /// S3 storage class of the copied objects.
    #[serde(default)]
    pub storage_class: StorageClass,

    /// Optional customer managed KMS key (full key ARN) the destination bucket encrypts with.
    /// In AssumeRole mode Ferry reads the bucket's default encryption itself; in External mode
    /// (Ferry never calls Account B) name the key here so the DataSync role may use it and
    /// Ferry publishes the key-policy statement Account B must add.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    #[schemars(extend("x-kubernetes-validations" = kms_key_rules()))]
    pub kms_key_arn: Option<String>,

    /// How Ferry gets Account B's bucket ready (object ownership and bucket policy): `mode:
    /// AssumeRole` with `roleArn`, or `mode: External`. Required with `initiator: Source`;
    /// not set with `initiator: Destination` (the account Ferry runs in owns the bucket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<DestinationAccess>,
}

/// How Ferry configures the destination bucket in Account B.
#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = cel_rules(Scope::Access)))]
pub struct DestinationAccess {
    /// `AssumeRole` (default): Ferry assumes `roleArn` in Account B to disable ACLs and merge its
    /// statements into the bucket policy. `External`: Ferry never calls Account B; it publishes the
    /// exact bucket policy in `status.destination.requiredBucketPolicy` and waits until Account B's
    /// administrator has applied it.
    #[serde(default)]
    pub mode: AccessMode,

    /// IAM role in Account B that Ferry assumes (AssumeRole mode). It needs
    /// `s3:GetBucketPolicy`, `s3:PutBucketPolicy`, `s3:DeleteBucketPolicy`,
    /// `s3:GetBucketOwnershipControls` and `s3:PutBucketOwnershipControls` on the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = ROLE_ARN_PATTERN), length(max = 2048))]
    pub role_arn: Option<String>,
}

/// How Ferry configures the source bucket's account when the destination account runs the copy.
#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = cel_rules(Scope::SourceAccess)))]
pub struct SourceAccess {
    /// `AssumeRole` (default): Ferry assumes `roleArn` in the source account to merge its
    /// read-only statements into the source bucket's policy (and the source key's policy).
    /// `External`: Ferry never calls the source account; it publishes the exact bucket policy in
    /// `status.source.requiredBucketPolicy` and waits until its administrator applied it.
    #[serde(default)]
    pub mode: AccessMode,

    /// IAM role in the source account that Ferry assumes (AssumeRole mode). It needs
    /// `s3:GetBucketPolicy`, `s3:PutBucketPolicy`, `s3:DeleteBucketPolicy` and
    /// `s3:GetEncryptionConfiguration` on the bucket (and `kms:GetKeyPolicy`,
    /// `kms:PutKeyPolicy`, `kms:DescribeKey` on an SSE-KMS bucket's key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = ROLE_ARN_PATTERN), length(max = 2048))]
    pub role_arn: Option<String>,
}

/// Which IAM role DataSync uses.
#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = cel_rules(Scope::DataSyncRole)))]
pub struct DataSyncRoleSpec {
    /// Name of the role Ferry creates and manages in Account A. Default: `ferry-<namespace>-<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = ROLE_NAME_PATTERN))]
    pub name: Option<String>,

    /// ARN of an existing role in Account A. Ferry uses it as it is and never modifies or deletes
    /// it; it must trust `datasync.amazonaws.com` and allow the S3 actions of the tutorial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = ROLE_ARN_PATTERN), length(max = 2048))]
    pub arn: Option<String>,
}

/// Settings of the DataSync task.
#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = cel_rules(Scope::Task)))]
pub struct TaskSpec {
    /// DataSync task mode. `Enhanced` (default): parallel listing and transfer, no object-count
    /// limit. `Basic`: the classic mode (25 million objects per task). Immutable.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self == oldSelf", "message": "spec.task.mode is immutable: create a new CrossAccountTransfer to change the task mode"}
    ]))]
    pub mode: TaskMode,

    /// How DataSync verifies the copy. `OnlyFilesTransferred` (default, the only choice in
    /// Enhanced mode), `PointInTimeConsistent` or `None` (Basic mode).
    #[serde(default)]
    pub verify: VerifyMode,

    /// Whether objects already in the destination are overwritten: `Always` (default) or `Never`.
    #[serde(default)]
    pub overwrite: OverwriteMode,

    /// `Changed` (default): copy only what differs from the destination. `All`: copy everything.
    #[serde(default)]
    pub transfer: TransferMode,

    /// Objects in the destination that are gone from the source: `Preserve` (default) keeps them,
    /// `Remove` deletes them (needs `transfer: Changed`).
    #[serde(default)]
    pub deleted: DeletedFilesMode,

    /// Whether object tags are copied: `Preserve` (default) or `None`.
    #[serde(default)]
    pub object_tags: ObjectTagsMode,

    /// Only objects matching one of these DataSync patterns are copied, e.g. `/photos/2024*`.
    /// Paths are relative to the source prefix and start with `/`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(regex(pattern = FILTER_PATTERN), length(max = MAX_FILTER_PATTERN)))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub includes: Vec<String>,

    /// Objects matching one of these DataSync patterns are skipped, e.g. `*.tmp`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(regex(pattern = FILTER_PATTERN), length(max = MAX_FILTER_PATTERN)))]
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub excludes: Vec<String>,

    /// Bandwidth limit in bytes per second (Basic mode only). Empty: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub bytes_per_second: Option<i64>,

    /// What DataSync logs to `logGroupArn`: `Off`, `Basic` or `Transfer`. Default: `Basic` when a
    /// log group is set, else `Off`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<LogLevel>,

    /// Optional CloudWatch Logs log group for the task's logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = LOG_GROUP_ARN_PATTERN), length(max = 562))]
    pub log_group_arn: Option<String>,

    /// Optional DataSync task report, written to an S3 bucket of the account that runs the copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<TaskReportSpec>,

    /// `Keep` (default): the task and its locations stay for the next run. `AfterSuccess`: once
    /// a run succeeded, Ferry deletes them (status, history and report stay) and creates them
    /// again for the next run request: one-off transfers then hold one of DataSync's task slots
    /// (100 per account and Region by default) only while they run. Not with `spec.schedule`.
    #[serde(default)]
    pub release: TaskRelease,
}

/// Where DataSync writes its task report.
#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TaskReportSpec {
    /// Bucket that receives the reports, in the account that runs the copy and in its bucket's
    /// Region: Account A and the source Region, or, with `initiator: Destination`, the
    /// destination's account and Region. Ferry grants the DataSync role write access.
    #[schemars(regex(pattern = BUCKET_PATTERN), length(min = 3, max = 63))]
    #[schemars(extend("x-kubernetes-validations" = bucket_rules()))]
    pub bucket: String,

    /// Optional key prefix of the reports, e.g. `reports/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = PREFIX_PATTERN), length(max = 1024))]
    pub prefix: Option<String>,

    /// `ErrorsOnly` (default) or `SuccessesAndErrors`.
    #[serde(default)]
    pub level: ReportLevel,

    /// `Standard` (default): a full report. `Summary`: only a summary.
    #[serde(default)]
    pub output: ReportOutput,
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Deserialize, Serialize, Clone, Copy, Debug, JsonSchema, PartialEq, Eq, Hash, Default)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// The value as written in the manifest.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => stringify!($variant),)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// How Ferry reaches the destination bucket's account.
    AccessMode {
        #[default]
        AssumeRole,
        External
    }
);

string_enum!(
    /// Which account runs the copy (owns the DataSync role and task).
    Initiator {
        #[default]
        Source,
        Destination
    }
);

string_enum!(
    /// DataSync task mode.
    TaskMode {
        #[default]
        Enhanced,
        Basic
    }
);

string_enum!(
    /// DataSync data verification.
    VerifyMode {
        #[default]
        OnlyFilesTransferred,
        PointInTimeConsistent,
        None
    }
);

string_enum!(
    /// Whether DataSync overwrites objects in the destination.
    OverwriteMode {
        #[default]
        Always,
        Never
    }
);

string_enum!(
    /// Whether DataSync copies only changes or everything.
    TransferMode {
        #[default]
        Changed,
        All
    }
);

string_enum!(
    /// What DataSync does with destination objects that are gone from the source.
    DeletedFilesMode {
        #[default]
        Preserve,
        Remove
    }
);

string_enum!(
    /// Whether DataSync copies object tags.
    ObjectTagsMode {
        #[default]
        Preserve,
        None
    }
);

string_enum!(
    /// What DataSync logs to CloudWatch.
    LogLevel {
        #[default]
        Off,
        Basic,
        Transfer
    }
);

string_enum!(
    /// What a task report lists.
    ReportLevel {
        #[default]
        ErrorsOnly,
        SuccessesAndErrors
    }
);

string_enum!(
    /// How detailed a task report is.
    ReportOutput {
        #[default]
        Standard,
        Summary
    }
);

string_enum!(
    /// Whether the task stays after a successful run.
    TaskRelease {
        #[default]
        Keep,
        AfterSuccess
    }
);

string_enum!(
    /// When Ferry starts executions.
    RunPolicy {
        #[default]
        OnChange,
        Manual
    }
);

string_enum!(
    /// What happens in AWS when the resource is deleted.
    DeletionPolicy {
        #[default]
        Delete,
        Retain
    }
);

string_enum!(
    /// S3 storage class of the copied objects.
    StorageClass {
        #[default]
        #[serde(rename = "STANDARD")]
        Standard,
        #[serde(rename = "STANDARD_IA")]
        StandardIa,
        #[serde(rename = "ONEZONE_IA")]
        OnezoneIa,
        #[serde(rename = "INTELLIGENT_TIERING")]
        IntelligentTiering,
        #[serde(rename = "GLACIER_INSTANT_RETRIEVAL")]
        GlacierInstantRetrieval,
        #[serde(rename = "GLACIER")]
        Glacier,
        #[serde(rename = "DEEP_ARCHIVE")]
        DeepArchive
    }
);

/// Gives enums that DataSync or S3 also know their AWS spelling, so the code that builds AWS
/// requests needs no `match` of its own.
macro_rules! aws_names {
    ($($name:ident { $($variant:ident => $aws:literal),+ $(,)? })+) => {
        $(
            impl $name {
                /// The value as AWS spells it in requests and answers.
                pub fn aws_name(self) -> &'static str {
                    match self {
                        $(Self::$variant => $aws,)+
                    }
                }
            }
        )+
    };
}

aws_names! {
    TaskMode { Enhanced => "ENHANCED", Basic => "BASIC" }
    VerifyMode {
        OnlyFilesTransferred => "ONLY_FILES_TRANSFERRED",
        PointInTimeConsistent => "POINT_IN_TIME_CONSISTENT",
        None => "NONE",
    }
    OverwriteMode { Always => "ALWAYS", Never => "NEVER" }
    TransferMode { Changed => "CHANGED", All => "ALL" }
    DeletedFilesMode { Preserve => "PRESERVE", Remove => "REMOVE" }
    ObjectTagsMode { Preserve => "PRESERVE", None => "NONE" }
    LogLevel { Off => "OFF", Basic => "BASIC", Transfer => "TRANSFER" }
    ReportLevel { ErrorsOnly => "ERRORS_ONLY", SuccessesAndErrors => "SUCCESSES_AND_ERRORS" }
    ReportOutput { Standard => "STANDARD", Summary => "SUMMARY_ONLY" }
    StorageClass {
        Standard => "STANDARD",
        StandardIa => "STANDARD_IA",
        OnezoneIa => "ONEZONE_IA",
        IntelligentTiering => "INTELLIGENT_TIERING",
        GlacierInstantRetrieval => "GLACIER_INSTANT_RETRIEVAL",
        Glacier => "GLACIER",
        DeepArchive => "DEEP_ARCHIVE",
    }
}

impl CrossAccountTransfer {
    /// The `ferry.dev/run` annotation's value.
    pub fn run_token(&self) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(RUN_ANNOTATION))
            .map(String::as_str)
    }

    /// Whether the status describes this object as it is now (pure): its spec generation and
    /// its run request (the `ferry.dev/run` value) were both observed. Until then a `Succeeded`
    /// phase is the previous run's.
    pub fn status_is_current(&self) -> bool {
        self.status.as_ref().is_some_and(|s| {
            s.observed_generation == self.metadata.generation && s.observed_run_token.as_deref() == self.run_token()
        })
    }
}

impl CrossAccountTransferSpec {
    /// Whether the destination account runs the copy (`initiator: Destination`, pull).
    pub fn pulls(&self) -> bool {
        self.initiator == Initiator::Destination
    }

    /// How Ferry reaches the other account's bucket (the destination's, or the source's when it
    /// pulls): the access mode and the role to assume. A spec without it (refused by
    /// validation) reads as External, which calls nothing.
    pub fn foreign_access(&self) -> (AccessMode, Option<&str>) {
        let access = if self.pulls() {
            self.source.access.as_ref().map(|a| (a.mode, a.role_arn.as_deref()))
        } else {
            self.destination
                .access
                .as_ref()
                .map(|a| (a.mode, a.role_arn.as_deref()))
        };
        access.unwrap_or((AccessMode::External, None))
    }

    /// The role of the account that runs the copy that Ferry assumes, if any: `source.roleArn`,
    /// or `destination.roleArn` when it pulls.
    pub fn home_role_arn(&self) -> Option<&str> {
        if self.pulls() {
            self.destination.role_arn.as_deref()
        } else {
            self.source.role_arn.as_deref()
        }
    }

    /// The Region of the bucket in the account that runs the copy: the source's, or the
    /// destination's when it pulls. The task report bucket is read and written there.
    pub fn home_region(&self) -> &str {
        if self.pulls() {
            &self.destination.region
        } else {
            &self.source.region
        }
    }

    /// The other account's bucket: the destination, or the source when it pulls.
    pub fn foreign_bucket(&self) -> &str {
        if self.pulls() {
            &self.source.bucket
        } else {
            &self.destination.bucket
        }
    }

    /// The id of the other account: the destination's, or the source's when it pulls.
    pub fn foreign_account(&self) -> &str {
        if self.pulls() {
            self.source.account_id.as_deref().unwrap_or_default()
        } else {
            &self.destination.account_id
        }
    }

    /// The run this spec and the `ferry.dev/run` annotation ask for that has not been started
    /// yet (pure). `OnChange`: one run per spec generation. Both policies: a new annotation value
    /// asks for one more run. A suspended transfer asks for nothing.
    pub fn pending_run(&self, generation: i64, token: Option<&str>, last: Option<&RunRequest>) -> Option<RunRequest> {
        if self.suspend {
            return None;
        }
        let new_token = token.is_some_and(|t| last.and_then(|l| l.token.as_deref()) != Some(t));
        let new_generation = self.run == RunPolicy::OnChange && last.and_then(|l| l.generation) != Some(generation);
        (new_token || new_generation).then(|| RunRequest {
            generation: Some(generation),
            token: token.map(str::to_string),
            execution_arn: None,
            failed_only: None,
        })
    }

    /// Why this spec cannot run only a run's failed objects (pure), `None` when it can: they are
    /// read from the task report's detailed lists, and DataSync takes no manifest together with
    /// filters (<https://docs.aws.amazon.com/datasync/latest/userguide/transferring-with-manifest.html>).
    /// The report prefix's characters are all allowed in a manifest's `ManifestObjectPath`.
    pub fn failed_only_blocker(&self) -> Option<&'static str> {
        match &self.task.report {
            None => Some(
                "Ferry reads the failed objects from the last run's task report and spec.task.report is not set: set it (the next run writes a report), or use a value without the `failed:` prefix for a full run",
            ),
            Some(report) if report.output == ReportOutput::Summary => Some(
                "spec.task.report.output is Summary, whose report lists no object: set it to Standard (the next run's report lists the failed objects), or run in full",
            ),
            Some(_) if !self.task.includes.is_empty() || !self.task.excludes.is_empty() => Some(
                "DataSync does not combine a manifest with filters (https://docs.aws.amazon.com/datasync/latest/userguide/transferring-with-manifest.html) and the task has spec.task.includes or excludes: remove them, or run in full",
            ),
            Some(_) => None,
        }
    }

    /// Checks the spec without an API server: the CRD's cross-field rules (same messages), for
    /// `ferry plan` and for a controller running against an outdated CRD, plus the length of the
    /// joined filters, which no schema can express. One message per problem, naming the field;
    /// an empty list means the spec is usable.
    pub fn validate(&self) -> Vec<String> {
        let task = &self.task;
        let mut problems: Vec<String> = broken_rules(self).map(str::to_string).collect();
        let buckets = [
            ("spec.source.bucket", Some(&self.source.bucket)),
            ("spec.destination.bucket", Some(&self.destination.bucket)),
            ("spec.task.report.bucket", task.report.as_ref().map(|r| &r.bucket)),
        ];
        let keys = [
            ("spec.source.kmsKeyArn", &self.source.kms_key_arn),
            ("spec.destination.kmsKeyArn", &self.destination.kms_key_arn),
        ];
        for (field, key) in keys {
            if key.as_deref().is_some_and(|k| !is_kms_key_arn(k)) {
                problems.push(format!("{field}: {MSG_KMS_KEY_ARN}"));
            }
        }
        for (field, bucket) in buckets {
            if let Some(problem) = bucket.and_then(|b| bucket_name_problem(b)) {
                problems.push(format!("{field}: {problem}"));
            }
        }
        for (field, list) in [("includes", &task.includes), ("excludes", &task.excludes)] {
            if list.iter().any(|f| f.contains('|')) {
                problems.push(format!(
                    "spec.task.{field}: write one pattern per list item; `|` is not allowed inside a pattern"
                ));
            }
            if list.join("|").len() > 102_400 {
                problems.push(format!(
                    "spec.task.{field}: the patterns joined with `|` exceed DataSync's 102400 characters; use fewer or shorter patterns"
                ));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    #[test]
    fn crd_generates_with_expected_names() {
        let crd = CrossAccountTransfer::crd();
        assert_eq!(crd.spec.group, "ferry.dev");
        assert_eq!(crd.spec.names.plural, "crossaccounttransfers");
        assert_eq!(crd.spec.names.short_names.as_deref(), Some(&["xat".to_string()][..]));
        assert_eq!(crd.spec.names.categories.as_deref(), Some(&["ferry".to_string()][..]));
        let version = &crd.spec.versions[0];
        assert!(version.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some());
    }

    #[test]
    fn every_spec_field_has_a_description() {
        let crd = serde_json::to_value(CrossAccountTransfer::crd()).unwrap();
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        fn walk(path: &str, schema: &serde_json::Value, missing: &mut Vec<String>) {
            if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
                for (name, sub) in props {
                    let p = format!("{path}.{name}");
                    if sub.get("description").is_none() {
                        missing.push(p.clone());
                    }
                    walk(&p, sub, missing);
                }
            }
        }
        let mut missing = Vec::new();
        walk("spec", spec, &mut missing);
        assert!(missing.is_empty(), "fields without description: {missing:?}");
    }

    #[test]
    fn the_crds_use_only_formats_the_api_server_knows() {
        // schemars writes uint8/uint32/uint64 for unsigned fields; kube-apiserver does not know
        // them and warns `unrecognized format` on every apply of the CRD.
        fn walk(path: &str, value: &serde_json::Value, unknown: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    if let Some(format) = map.get("format").and_then(|f| f.as_str())
                        && !["int32", "int64", "date-time"].contains(&format)
                    {
                        unknown.push(format!("{path}: {format}"));
                    }
                    for (key, sub) in map {
                        walk(&format!("{path}.{key}"), sub, unknown);
                    }
                }
                serde_json::Value::Array(items) => items.iter().for_each(|i| walk(path, i, unknown)),
                _ => {}
            }
        }
        let mut unknown = Vec::new();
        walk(
            "crossaccounttransfers",
            &serde_json::to_value(CrossAccountTransfer::crd()).unwrap(),
            &mut unknown,
        );
        walk(
            "transferpolicies",
            &serde_json::to_value(TransferPolicy::crd()).unwrap(),
            &mut unknown,
        );
        assert!(unknown.is_empty(), "formats the API server does not know: {unknown:?}");
    }

    #[test]
    fn defaults_fill_an_empty_task() {
        let spec: CrossAccountTransferSpec = serde_json::from_value(serde_json::json!({
            "source": {"bucket": "src-bucket", "region": "us-east-1"},
            "destination": {"bucket": "dst-bucket", "region": "us-west-1", "accountId": "222222222222",
                            "access": {"roleArn": "arn:aws:iam::222222222222:role/admin"}}
        }))
        .unwrap();
        assert_eq!(spec.task.mode, TaskMode::Enhanced);
        assert_eq!(spec.run, RunPolicy::OnChange);
        assert_eq!(spec.deletion_policy, DeletionPolicy::Delete);
        assert_eq!(spec.destination.storage_class, StorageClass::Standard);
        assert!(spec.validate().is_empty());
    }

    #[test]
    fn validate_names_the_field() {
        let mut spec: CrossAccountTransferSpec = serde_json::from_value(serde_json::json!({
            "source": {"bucket": "src-bucket", "region": "us-east-1"},
            "destination": {"bucket": "dst-bucket", "region": "us-west-1", "accountId": "222222222222",
                            "access": {"mode": "AssumeRole"}}
        }))
        .unwrap();
        spec.task.includes.push("/a|/b".into());
        let problems = spec.validate();
        assert!(problems.iter().any(|p| p.contains("spec.destination.access.roleArn")));
        assert!(problems.iter().any(|p| p.contains("spec.task.includes")));
    }
}
