//! The desired state of one transfer, in AWS's vocabulary: built once from the spec, the
//! transfer's id and the identities Ferry runs as, by pure functions. Every step compares what
//! it observes in AWS with its part of this value, and `ferry plan` renders the same value, so
//! the controller and the plan cannot drift apart (the "build" of validate → build → apply).

use serde_json::Value;

use crate::api::{AccessMode, CrossAccountTransferSpec, LogLevel, RoleStatus};
use crate::naming::{
    INLINE_POLICY_NAME, RolePool, TransferId, bucket_arn, location_uri, partition, role_name_from_arn, subdirectory,
};
use crate::policy::{
    CREATE_LOCATION_SID, Reach, RoleInputs, key_statement, role_inline_policy, shared_statements, standalone_policy,
    trust_policy,
};

/// Who Ferry is in Account A: the inputs of the desired state that only AWS can tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identities {
    /// Account A's id.
    pub account_a: String,
    /// The principal that creates the locations (statement two of the bucket policy): Ferry's
    /// identity in Account A, an assumed-role session mapped back to its role ARN.
    pub creator_arn: String,
}

/// Everything a transfer should be in AWS.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    /// Names, tags and Sids derive from this.
    pub id: TransferId,
    /// Step 1: the DataSync role.
    pub role: DesiredRole,
    /// Steps 2 and 3: Ferry's part of the other account's bucket: the destination in Account B,
    /// or the source when the destination account runs the copy.
    pub foreign_bucket: DesiredBucket,
    /// Step 4: the source location.
    pub source: DesiredLocation,
    /// Step 5: the destination location.
    pub destination: DesiredLocation,
    /// Step 6: the task, without its location ARNs (known once the locations exist).
    pub task: TaskSettings,
    /// The KMS keys the DataSync role is granted.
    pub keys: Keys,
}

/// The customer managed KMS keys of a transfer's buckets (full ARNs): the spec's `kmsKeyArn`s
/// and, once Ferry read them, the buckets' default encryption keys.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Keys {
    /// Keys of the source objects (the role may decrypt).
    pub source: Vec<String>,
    /// The destination bucket's key (the role may encrypt with it; its key policy must name
    /// the role).
    pub destination: Option<String>,
}

impl Keys {
    /// The keys a spec names.
    pub fn from_spec(spec: &CrossAccountTransferSpec) -> Keys {
        Keys {
            source: spec.source.kms_key_arn.iter().cloned().collect(),
            destination: spec.destination.kms_key_arn.clone(),
        }
    }

    /// The key of the other account's bucket whose policy must name the DataSync role: the
    /// destination's key, or (the destination account runs the copy) the first source key of
    /// an account other than the destination's. A key of the account that runs the copy needs
    /// only the role's own policy.
    pub fn foreign<'k>(&'k self, spec: &CrossAccountTransferSpec) -> Option<&'k str> {
        if spec.pulls() {
            let home = Some(spec.destination.account_id.as_str());
            self.source
                .iter()
                .find(|k| crate::naming::arn_account(k) != home)
                .map(String::as_str)
        } else {
            self.destination.as_deref()
        }
    }

    /// The foreign key's policy statement naming this transfer's role, as a standalone document
    /// (what the key's account adds when Ferry cannot: External mode or a key of a third
    /// account).
    pub fn required_key_policy(&self, spec: &CrossAccountTransferSpec, role_arn: &str) -> Option<String> {
        self.foreign(spec)
            .map(|_| standalone_policy(&[key_statement(Side::foreign(spec).reach(), &[role_arn.to_string()])]))
    }
}

/// The DataSync role.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredRole {
    /// Its ARN (the spec's `dataSyncRole.arn`, or the role Ferry manages at IAM's root path).
    pub arn: String,
    /// Ferry creates, keeps in shape and deletes it; `None` for `dataSyncRole.arn`, used as it is.
    pub managed: Option<ManagedRole>,
    /// Where the role of a transfer without `dataSyncRole` is.
    pub slot: RoleSlot,
}

/// Which role a transfer without `dataSyncRole` uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleSlot {
    /// Role `n` of its namespace's pool of shared roles (its own inline policy on it).
    Shared(u32),
    /// Its own role at the default name, made before roles were shared: kept while a run of
    /// it is going on, then the transfer moves to the pool.
    Own,
}

impl Default for RoleSlot {
    fn default() -> Self {
        Self::Shared(0)
    }
}

/// Where the role of a transfer without `dataSyncRole` is, from the role its status records
/// (pure): a shared role stays where it is; the transfer's own role from before roles were
/// shared stays while a run goes on (a location's role changes only between runs); anything
/// else goes to the pool's first role that may have room.
pub fn role_slot(
    spec: &CrossAccountTransferSpec,
    id: &TransferId,
    account_a: &str,
    recorded: Option<&RoleStatus>,
    running: bool,
    first_open: impl FnOnce(&RolePool) -> u32,
) -> RoleSlot {
    let pool = role_pool(spec, id, account_a);
    if let Some(role) = recorded.filter(|r| r.managed) {
        if let Some(shard) = pool.shard_of(&role.arn) {
            return RoleSlot::Shared(shard);
        }
        if running && role_name_from_arn(&role.arn) == Some(id.default_role_name().as_str()) {
            return RoleSlot::Own;
        }
    }
    RoleSlot::Shared(first_open(&pool))
}

/// The pool of shared roles a transfer's role comes from.
pub fn role_pool(spec: &CrossAccountTransferSpec, id: &TransferId, account_a: &str) -> RolePool {
    RolePool::new(
        account_a,
        &id.namespace,
        &[spec.destination.region.as_str(), spec.source.region.as_str()],
    )
}

/// A role Ferry manages.
#[derive(Clone, Debug, PartialEq)]
pub struct ManagedRole {
    /// The role name.
    pub name: String,
    /// The role's description.
    pub description: String,
    /// The trust policy: only DataSync, with the confused-deputy conditions.
    pub trust: Value,
    /// Name of the inline policy: Ferry's on a transfer's own role, the transfer's own on a
    /// shared role.
    pub inline_name: String,
    /// The inline policy: the tutorial's destination statements plus source read and report write.
    pub inline: Value,
    /// The pool and shard of a shared role; `None` for a transfer's own role.
    pub pool: Option<(RolePool, u32)>,
}

/// Ferry's part of the other account's bucket: the destination in Account B, or the source
/// when the destination account runs the copy.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredBucket {
    /// Which side of the transfer the bucket is.
    pub side: Side,
    /// Bucket name.
    pub bucket: String,
    /// Its region.
    pub region: String,
    /// Its account's id.
    pub account_id: String,
    /// AssumeRole: Ferry writes the settings. External: the bucket account's administrator does.
    pub access: AccessMode,
    /// `arn:aws:s3:::bucket`.
    pub bucket_arn: String,
    /// The principal this transfer adds to Ferry's access statement: its DataSync role.
    pub role_arn: String,
    /// The principal this transfer adds to Ferry's create-location statement.
    pub creator_arn: String,
    /// The Sids of Ferry's shared statements.
    pub sids: Vec<String>,
    /// The Sids of this transfer's statements as older Ferry versions wrote them (one pair per
    /// transfer); they are taken out when the shared statements are written.
    pub legacy_sids: Vec<String>,
    /// Ferry's statements with this transfer's principals only (what External mode publishes).
    pub statements: Vec<Value>,
}

impl DesiredBucket {
    /// Ferry's statements as a standalone policy document (what External mode publishes).
    pub fn required_policy(&self) -> String {
        standalone_policy(&self.statements)
    }
}

/// Which of the two locations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Account A's bucket.
    Source,
    /// Account B's bucket.
    Destination,
}

impl Side {
    /// The side whose bucket is in the other account: the destination, or the source when the
    /// destination account runs the copy.
    pub fn foreign(spec: &CrossAccountTransferSpec) -> Side {
        if spec.pulls() { Side::Source } else { Side::Destination }
    }

    /// The side whose bucket is in the account Ferry runs in.
    pub fn home(spec: &CrossAccountTransferSpec) -> Side {
        if spec.pulls() { Side::Destination } else { Side::Source }
    }

    /// What the DataSync role does in this side's bucket when it is the other account's: writes
    /// into a destination, reads a source.
    pub fn reach(self) -> Reach {
        match self {
            Side::Destination => Reach::Write,
            Side::Source => Reach::Read,
        }
    }

    /// The phase while the other account has not applied the policy of this side's bucket
    /// (External mode).
    pub fn awaiting(self) -> crate::api::Phase {
        match self {
            Side::Destination => crate::api::Phase::AwaitingDestination,
            Side::Source => crate::api::Phase::AwaitingSource,
        }
    }

    /// The condition that says whether the bucket of this side, in the other account, is ready.
    pub fn ready_condition(self) -> &'static str {
        match self {
            Side::Destination => crate::api::condition::DESTINATION_READY,
            Side::Source => crate::api::condition::SOURCE_READY,
        }
    }

    /// The account of this side's bucket, in messages: `Account B (222222222222)` or `the
    /// source account (111111111111)`.
    pub fn owner(self, account: &str) -> String {
        match self {
            Side::Destination => format!("Account B ({account})"),
            Side::Source => format!("the source account ({account})"),
        }
    }

    /// `source` or `destination`, for messages.
    pub fn label(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Destination => "destination",
        }
    }
}

/// A DataSync S3 location as the spec wants it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredLocation {
    /// Which side it is.
    pub side: Side,
    /// Region it lives in.
    pub region: String,
    /// `arn:aws:s3:::bucket`.
    pub bucket_arn: String,
    /// DataSync subdirectory, e.g. `/media/`.
    pub subdirectory: String,
    /// `s3://bucket/prefix/`.
    pub uri: String,
    /// The DataSync role.
    pub role_arn: String,
    /// Storage class (destination only).
    pub storage_class: Option<String>,
}

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

/// The `Options` Ferry sets on a task, in DataSync's vocabulary: declared once here; the task
/// step reads and writes them field by field with struct patterns, so an option added here
/// cannot be left out of the request, the observed view or the difference.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TaskOptions {
    /// `VerifyMode`.
    pub verify: String,
    /// `OverwriteMode`.
    pub overwrite: String,
    /// `TransferMode`.
    pub transfer: String,
    /// `PreserveDeletedFiles`.
    pub preserve_deleted: String,
    /// `ObjectTags`.
    pub object_tags: String,
    /// `LogLevel`.
    pub log_level: String,
    /// `BytesPerSecond` (-1: unlimited).
    pub bytes_per_second: i64,
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
    /// The task's `Options`, sent whole when any of them differs.
    pub options: TaskOptions,
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

impl TaskSettings {
    /// These settings for a task between two existing locations.
    pub fn between(&self, source_location_arn: &str, destination_location_arn: &str) -> TaskSettings {
        TaskSettings {
            source_location_arn: source_location_arn.to_string(),
            destination_location_arn: destination_location_arn.to_string(),
            ..self.clone()
        }
    }
}

impl Desired {
    /// The desired state of a transfer whose role, if shared, is the pool's first (pure).
    pub fn build(spec: &CrossAccountTransferSpec, id: &TransferId, who: &Identities) -> Desired {
        Self::placed(spec, id, who, RoleSlot::default())
    }

    /// The desired state of a transfer with its role in `slot` (pure).
    pub fn placed(spec: &CrossAccountTransferSpec, id: &TransferId, who: &Identities, slot: RoleSlot) -> Desired {
        Self::with_keys(spec, id, who, Keys::from_spec(spec), slot)
    }

    /// The desired state with the KMS keys Ferry found (pure).
    pub fn with_keys(
        spec: &CrossAccountTransferSpec,
        id: &TransferId,
        who: &Identities,
        keys: Keys,
        slot: RoleSlot,
    ) -> Desired {
        let role = desired_role(spec, id, &who.account_a, &keys, slot);
        Desired {
            id: id.clone(),
            source: location(spec, Side::Source, &role.arn),
            destination: location(spec, Side::Destination, &role.arn),
            task: task(spec, &id.task_name(), &role.arn),
            foreign_bucket: foreign_bucket(spec, id, who, &role.arn),
            role,
            keys,
        }
    }

    /// The location of one side.
    pub fn location(&self, side: Side) -> &DesiredLocation {
        match side {
            Side::Source => &self.source,
            Side::Destination => &self.destination,
        }
    }
}

/// A bucket of the spec: its name, Region and the spec's `kmsKeyArn`.
pub fn bucket_of(spec: &CrossAccountTransferSpec, side: Side) -> (&str, &str, Option<&str>) {
    match side {
        Side::Source => (
            &spec.source.bucket,
            &spec.source.region,
            spec.source.kms_key_arn.as_deref(),
        ),
        Side::Destination => (
            &spec.destination.bucket,
            &spec.destination.region,
            spec.destination.kms_key_arn.as_deref(),
        ),
    }
}

fn foreign_bucket(spec: &CrossAccountTransferSpec, id: &TransferId, who: &Identities, role_arn: &str) -> DesiredBucket {
    let side = Side::foreign(spec);
    let (bucket, region, _) = bucket_of(spec, side);
    let reach = side.reach();
    let bucket_arn = bucket_arn(region, bucket);
    let statements = shared_statements(
        &bucket_arn,
        reach,
        &[role_arn.to_string()],
        std::slice::from_ref(&who.creator_arn),
    );
    // Older Ferry versions wrote one pair of statements per transfer, into destinations only.
    let legacy_sids = match side {
        Side::Destination => vec![id.access_sid(), id.create_location_sid()],
        Side::Source => Vec::new(),
    };
    DesiredBucket {
        side,
        bucket: bucket.to_string(),
        region: region.to_string(),
        account_id: spec.foreign_account().to_string(),
        access: spec.foreign_access().0,
        bucket_arn,
        role_arn: role_arn.to_string(),
        creator_arn: who.creator_arn.clone(),
        sids: vec![reach.access_sid().to_string(), CREATE_LOCATION_SID.to_string()],
        legacy_sids,
        statements,
    }
}

fn desired_role(
    spec: &CrossAccountTransferSpec,
    id: &TransferId,
    account_a: &str,
    keys: &Keys,
    slot: RoleSlot,
) -> DesiredRole {
    if let Some(arn) = &spec.data_sync_role.arn {
        return DesiredRole {
            arn: arn.clone(),
            managed: None,
            slot,
        };
    }
    // `dataSyncRole.name`: the transfer's own role of that name. Otherwise a shared role of the
    // namespace's pool, or (while its run goes on) the own role it had before roles were shared.
    let (name, pool, inline_name, description) = match (&spec.data_sync_role.name, slot) {
        (Some(name), _) => (name.clone(), None, INLINE_POLICY_NAME.to_string(), None),
        (None, RoleSlot::Own) => (id.default_role_name(), None, INLINE_POLICY_NAME.to_string(), None),
        (None, RoleSlot::Shared(shard)) => {
            let pool = role_pool(spec, id, account_a);
            let description = format!(
                "Ferry: AWS DataSync access shared by transfers of namespace {} (one inline policy each)",
                id.namespace
            );
            (
                pool.role_name(shard),
                Some((pool, shard)),
                id.member_policy_name(),
                Some(description),
            )
        }
    };
    let inputs = RoleInputs {
        account_id: account_a,
        regions: vec![spec.destination.region.as_str(), spec.source.region.as_str()],
        source_bucket: &spec.source.bucket,
        source_prefix: spec.source.prefix.as_deref(),
        destination_bucket: &spec.destination.bucket,
        destination_account: &spec.destination.account_id,
        source_account: if spec.pulls() {
            spec.foreign_account()
        } else {
            account_a
        },
        source_keys: keys.source.clone(),
        destination_key: keys.destination.clone(),
        report: spec
            .task
            .report
            .as_ref()
            .map(|r| (r.bucket.as_str(), r.prefix.as_deref())),
    };
    DesiredRole {
        arn: format!("arn:{}:iam::{account_a}:role/{name}", partition(&spec.source.region)),
        managed: Some(ManagedRole {
            description: description.unwrap_or_else(|| format!("Ferry: AWS DataSync access for {}", id.resource())),
            trust: trust_policy(&inputs),
            inline_name,
            inline: role_inline_policy(&inputs, &spec.destination.region, &spec.source.region),
            name,
            pool,
        }),
        slot,
    }
}

fn location(spec: &CrossAccountTransferSpec, side: Side, role_arn: &str) -> DesiredLocation {
    let (bucket, region, prefix, storage_class) = match side {
        Side::Source => (&spec.source.bucket, &spec.source.region, &spec.source.prefix, None),
        Side::Destination => (
            &spec.destination.bucket,
            &spec.destination.region,
            &spec.destination.prefix,
            Some(spec.destination.storage_class.aws_name().to_string()),
        ),
    };
    DesiredLocation {
        side,
        region: region.clone(),
        bucket_arn: bucket_arn(region, bucket),
        subdirectory: subdirectory(prefix.as_deref()),
        uri: location_uri(bucket, prefix.as_deref()),
        role_arn: role_arn.to_string(),
        storage_class,
    }
}

fn join(patterns: &[String]) -> Option<String> {
    (!patterns.is_empty()).then(|| patterns.join("|"))
}

fn task(spec: &CrossAccountTransferSpec, name: &str, role_arn: &str) -> TaskSettings {
    let task = &spec.task;
    let log_level = match (task.log_level, &task.log_group_arn) {
        (Some(level), Some(_)) => level,
        (None, Some(_)) => LogLevel::Basic,
        (_, None) => LogLevel::Off,
    };
    TaskSettings {
        name: name.to_string(),
        mode: task.mode.aws_name().into(),
        source_location_arn: String::new(),
        destination_location_arn: String::new(),
        options: TaskOptions {
            verify: task.verify.aws_name().into(),
            overwrite: task.overwrite.aws_name().into(),
            transfer: task.transfer.aws_name().into(),
            preserve_deleted: task.deleted.aws_name().into(),
            object_tags: task.object_tags.aws_name().into(),
            log_level: log_level.aws_name().into(),
            bytes_per_second: task.bytes_per_second.unwrap_or(-1),
        },
        includes: join(&task.includes),
        excludes: join(&task.excludes),
        schedule: spec.schedule.clone().map(|expr| (expr, !spec.suspend)),
        log_group_arn: task.log_group_arn.clone(),
        report: task.report.as_ref().map(|r| ReportSettings {
            bucket_arn: bucket_arn(&spec.source.region, &r.bucket),
            subdirectory: subdirectory(r.prefix.as_deref()),
            role_arn: role_arn.to_string(),
            output: r.output.aws_name().into(),
            level: r.level.aws_name().into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::policy::Reach;
    use serde_json::json;

    fn who() -> Identities {
        Identities {
            account_a: "111111111111".into(),
            creator_arn: "arn:aws:iam::111111111111:role/ops/ferry".into(),
        }
    }

    fn build(overrides: Value) -> Desired {
        Desired::build(&fixtures::spec(overrides), &fixtures::id(), &who())
    }

    #[test]
    fn spec_maps_to_datasync_options() {
        let d = build(json!({
            "task": {"mode": "Basic", "verify": "PointInTimeConsistent", "overwrite": "Never", "transfer": "All",
                     "objectTags": "None", "includes": ["/a*", "/b*"], "excludes": ["*.tmp"], "bytesPerSecond": 1048576,
                     "logGroupArn": "arn:aws:logs:us-west-1:111111111111:log-group:ferry",
                     "report": {"bucket": "reports", "prefix": "ferry", "level": "SuccessesAndErrors", "output": "Summary"}},
            "schedule": "rate(12 hours)"
        }))
        .task;
        assert_eq!(d.mode, "BASIC");
        assert_eq!(d.options.verify, "POINT_IN_TIME_CONSISTENT");
        assert_eq!(d.options.overwrite, "NEVER");
        assert_eq!(d.options.transfer, "ALL");
        assert_eq!(d.options.preserve_deleted, "PRESERVE");
        assert_eq!(d.options.object_tags, "NONE");
        assert_eq!(d.options.log_level, "BASIC", "a log group without a level logs BASIC");
        assert_eq!(d.options.bytes_per_second, 1_048_576);
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
        let d = build(json!({})).task;
        assert_eq!(d.mode, "ENHANCED");
        assert_eq!(d.options.verify, "ONLY_FILES_TRANSFERRED");
        assert_eq!(d.options.transfer, "CHANGED");
        assert_eq!(d.options.log_level, "OFF");
        assert_eq!(d.options.bytes_per_second, -1);
        assert_eq!(d.includes, None);
        assert_eq!(d.schedule, None);
    }

    #[test]
    fn suspend_disables_the_schedule() {
        let d = build(json!({"schedule": "rate(1 day)", "suspend": true})).task;
        assert_eq!(d.schedule, Some(("rate(1 day)".into(), false)));
    }

    #[test]
    fn one_role_arn_serves_every_step() {
        let d = build(json!({}));
        let pool = role_pool(&fixtures::spec(json!({})), &fixtures::id(), "111111111111");
        assert_eq!(
            d.role.arn,
            format!("arn:aws:iam::111111111111:role/{}", pool.role_name(0))
        );
        assert_eq!(d.source.role_arn, d.role.arn);
        assert_eq!(d.destination.role_arn, d.role.arn);
        assert_eq!(d.foreign_bucket.statements[0]["Principal"]["AWS"], json!([d.role.arn]));
        assert_eq!(
            d.foreign_bucket.statements[1]["Principal"]["AWS"],
            json!(["arn:aws:iam::111111111111:role/ops/ferry"])
        );
        assert_eq!(d.destination.storage_class.as_deref(), Some("STANDARD"));
        assert_eq!(d.source.storage_class, None);
        assert_eq!(d.source.uri, "s3://src/");

        let existing = build(json!({"dataSyncRole": {"arn": "arn:aws:iam::111111111111:role/mine"}}));
        assert_eq!(existing.role.arn, "arn:aws:iam::111111111111:role/mine");
        assert!(existing.role.managed.is_none());
        let named = build(json!({"dataSyncRole": {"name": "custom"}}));
        assert_eq!(named.role.managed.map(|m| m.name).as_deref(), Some("custom"));
    }

    #[test]
    fn a_transfer_without_a_role_gets_its_own_policy_on_a_shared_role() {
        let spec = fixtures::spec(json!({}));
        let shared = Desired::placed(&spec, &fixtures::id(), &who(), RoleSlot::Shared(2));
        let managed = shared.role.managed.clone().unwrap();
        let (pool, shard) = managed.pool.clone().unwrap();
        assert_eq!(shard, 2);
        assert_eq!(managed.name, pool.role_name(2));
        assert_eq!(managed.inline_name, fixtures::id().member_policy_name());
        assert_eq!(
            shared.destination.role_arn, shared.role.arn,
            "the locations use the shared role"
        );
        let own = Desired::placed(&spec, &fixtures::id(), &who(), RoleSlot::Own).role;
        assert_eq!(own.arn, "arn:aws:iam::111111111111:role/ferry-data-media");
        let own = own.managed.unwrap();
        assert_eq!((own.inline_name.as_str(), own.pool), (INLINE_POLICY_NAME, None));
        let named = fixtures::spec(json!({"dataSyncRole": {"name": "custom"}}));
        let named = Desired::placed(&named, &fixtures::id(), &who(), RoleSlot::Shared(2)).role;
        assert_eq!(named.managed.map(|m| (m.name, m.pool)), Some(("custom".into(), None)));
        // Where the role is: recorded shared roles stay, an own role stays only while it runs.
        let pool = role_pool(&spec, &fixtures::id(), "111111111111");
        let recorded = |arn: String| RoleStatus { arn, managed: true };
        let own_arn = "arn:aws:iam::111111111111:role/ferry-data-media".to_string();
        let shared_arn = format!("arn:aws:iam::111111111111:role/{}", pool.role_name(4));
        let slot =
            |r: Option<&RoleStatus>, running| role_slot(&spec, &fixtures::id(), "111111111111", r, running, |_| 7);
        assert_eq!(slot(None, false), RoleSlot::Shared(7), "new: the first with room");
        assert_eq!(slot(Some(&recorded(shared_arn)), false), RoleSlot::Shared(4));
        assert_eq!(slot(Some(&recorded(own_arn.clone())), true), RoleSlot::Own, "running");
        assert_eq!(
            slot(Some(&recorded(own_arn)), false),
            RoleSlot::Shared(7),
            "moves when idle"
        );
        // Another namespace, another pool: one tenant's transfers never share another's role.
        let other = TransferId::new("other", "media", "5678");
        assert_ne!(
            Desired::placed(&spec, &other, &who(), RoleSlot::Shared(0)).role.arn,
            Desired::placed(&spec, &fixtures::id(), &who(), RoleSlot::Shared(0))
                .role
                .arn
        );
    }

    #[test]
    fn a_pull_grants_read_only_in_the_source_bucket_and_keeps_the_role_to_its_accounts() {
        let who = Identities {
            account_a: "222222222222".into(),
            creator_arn: "arn:aws:iam::222222222222:role/ferry".into(),
        };
        let spec = fixtures::spec(fixtures::pull());
        let d = Desired::build(&spec, &fixtures::id(), &who);
        let b = &d.foreign_bucket;
        assert_eq!(
            (b.side, b.side.reach(), b.bucket.as_str()),
            (Side::Source, Reach::Read, "src")
        );
        assert_eq!(
            (b.account_id.as_str(), b.access),
            ("111111111111", AccessMode::AssumeRole)
        );
        assert!(b.legacy_sids.is_empty(), "no older Ferry wrote into a source bucket");
        assert_eq!(b.statements[0]["Sid"], "FerryDataSyncRead");
        let actions: Vec<&str> = b.statements[0]["Action"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(actions.contains(&"s3:GetObject") && actions.contains(&"s3:ListBucket"));
        for write in [
            "s3:PutObject",
            "s3:DeleteObject",
            "s3:AbortMultipartUpload",
            "s3:PutObjectTagging",
        ] {
            assert!(!actions.contains(&write), "{write} granted on the source");
        }
        assert_eq!(b.statements[1]["Principal"]["AWS"], json!([who.creator_arn]));
        // The role lives in the destination account and reads buckets of the source account only.
        assert!(
            d.role.arn.starts_with("arn:aws:iam::222222222222:role/"),
            "{}",
            d.role.arn
        );
        let managed = d.role.managed.unwrap();
        let owner = |sid: &str| {
            managed.inline["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .find(|st| st["Sid"] == sid)
                .map(|st| st["Condition"]["StringEquals"]["s3:ResourceAccount"].clone())
        };
        assert_eq!(owner("SourceObjects"), Some(json!("111111111111")));
        assert_eq!(owner("DestinationObjects"), Some(json!("222222222222")));
        assert_eq!(
            managed.trust["Statement"][0]["Condition"]["StringEquals"]["aws:SourceAccount"],
            "222222222222"
        );
        // A source key of the source account gets the read statement; the destination's own key
        // needs only the role's policy.
        let keyed = fixtures::spec(json!({"initiator": "Destination",
            "source": {"accountId": "111111111111", "access": {"mode": "External"},
                       "kmsKeyArn": "arn:aws:kms:us-east-1:111111111111:key/src"},
            "destination": {"access": null, "kmsKeyArn": "arn:aws:kms:us-west-1:222222222222:key/dst"}}));
        let keys = Keys::from_spec(&keyed);
        assert_eq!(keys.foreign(&keyed), Some("arn:aws:kms:us-east-1:111111111111:key/src"));
        let doc: Value = serde_json::from_str(&keys.required_key_policy(&keyed, "r").unwrap()).unwrap();
        assert_eq!(doc["Statement"][0]["Sid"], "FerryDataSyncKeyRead");
        assert_eq!(doc["Statement"][0]["Action"], json!(["kms:Decrypt"]));
    }

    #[test]
    fn task_settings_take_their_locations() {
        let d = build(json!({})).task.between("src-loc", "dst-loc");
        assert_eq!(d.source_location_arn, "src-loc");
        assert_eq!(d.destination_location_arn, "dst-loc");
        assert_eq!(d.name, "ferry-data-media");
    }
}
