//! The spec's cross-field rules, each written once: [`RULES`] gives the CRD its CEL rules
//! (through [`cel_rules`], where each rule's [`Scope`] says) and
//! [`CrossAccountTransferSpec::validate`] its checks, with the same message. The admission
//! test submits every rule's [`Rule::example`] to the real API server and checks that both
//! refuse it; a unit test checks that the CRD has no CEL rule outside this table but the
//! per-field ones. Also the one table of AWS partitions.

use super::{
    AccessMode, CrossAccountTransferSpec, DeletedFilesMode, Initiator, LogLevel, OPT_IN_REGIONS, StorageClass,
    TaskMode, TaskRelease, TransferMode, VerifyMode,
};

/// AWS partitions by the prefix of their Region names; a Region matching none is in `aws`.
pub const PARTITIONS: &[(&str, &str)] = &[
    ("cn-", "aws-cn"),
    ("us-gov-", "aws-us-gov"),
    ("us-isob-", "aws-iso-b"),
    ("us-iso-", "aws-iso"),
    ("eusc-", "aws-eusc"),
];

/// The AWS partition of a Region (`aws`, `aws-cn`, `aws-us-gov`, ...).
pub fn partition(region: &str) -> &'static str {
    PARTITIONS
        .iter()
        .find(|(prefix, _)| region.starts_with(prefix))
        .map_or("aws", |(_, p)| p)
}

/// Every partition's name, `aws` first.
pub fn partition_names() -> Vec<&'static str> {
    std::iter::once("aws")
        .chain(PARTITIONS.iter().map(|(_, p)| *p))
        .collect()
}

/// Where in the schema a rule's CEL expression sits (`self` is that object).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `spec`.
    Spec,
    /// `spec.source`.
    Source,
    /// `spec.source.access`.
    SourceAccess,
    /// `spec.destination`.
    Destination,
    /// `spec.destination.access`.
    Access,
    /// `spec.dataSyncRole`.
    DataSyncRole,
    /// `spec.task`.
    Task,
    /// `spec.schedule` (a string).
    Schedule,
}

/// One cross-field rule.
pub struct Rule {
    /// Where its CEL expression sits.
    pub scope: Scope,
    /// The CEL expression (true when the rule holds); `OPT_IN` and `PARTITIONS` stand for the
    /// CEL lists of the opt-in Regions and of the partitions.
    pub cel: &'static str,
    /// What the API server and `validate` say when it is broken.
    pub message: &'static str,
    /// Whether the spec breaks it (the Rust twin of `cel`).
    pub broken: fn(&CrossAccountTransferSpec) -> bool,
    /// A JSON merge over a valid spec that breaks only this rule (the tests' example).
    pub example: &'static str,
}

/// Message of the rule that AssumeRole needs a role.
const MSG_ROLE_ARN_REQUIRED: &str = "spec.destination.access.roleArn is required when spec.destination.access.mode is AssumeRole (or use mode: External)";

/// A CEL list literal of strings.
fn cel_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = items.into_iter().map(|i| format!("'{i}'")).collect();
    format!("[{}]", quoted.join(", "))
}

fn is_enhanced(s: &CrossAccountTransferSpec) -> bool {
    s.task.mode == TaskMode::Enhanced
}

/// The CEL test of `initiator: Destination` on `spec`.
macro_rules! pulls_cel {
    () => {
        "(has(self.initiator) && self.initiator == 'Destination')"
    };
}

fn pulls(s: &CrossAccountTransferSpec) -> bool {
    s.initiator == Initiator::Destination
}

/// Whether `arn` is a role of `account` in some partition.
fn role_of(arn: &str, account: &str) -> bool {
    partition_names()
        .iter()
        .any(|p| arn.starts_with(&format!("arn:{p}:iam::{account}:role/")))
}

/// The cross-field rules of the spec.
pub const RULES: &[Rule] = &[
    Rule {
        scope: Scope::Spec,
        cel: "self.source.bucket != self.destination.bucket",
        message: "spec.destination.bucket must differ from spec.source.bucket: Ferry copies between two buckets",
        broken: |s| s.source.bucket == s.destination.bucket,
        example: r#"{"source": {"bucket": "same-bucket"}, "destination": {"bucket": "same-bucket"}}"#,
    },
    Rule {
        scope: Scope::Spec,
        cel: "!has(self.task.report) || self.task.report.bucket != self.source.bucket",
        message: "spec.task.report.bucket must not be the source bucket: DataSync would copy its own reports",
        broken: |s| s.task.report.as_ref().is_some_and(|r| r.bucket == s.source.bucket),
        example: r#"{"source": {"bucket": "reports-here"}, "task": {"report": {"bucket": "reports-here"}}}"#,
    },
    Rule {
        scope: Scope::Spec,
        cel: "!(self.task.verify == 'PointInTimeConsistent' && self.destination.storageClass in ['GLACIER', 'DEEP_ARCHIVE'])",
        message: "spec.task.verify: DataSync cannot verify PointInTimeConsistent into the GLACIER or DEEP_ARCHIVE storage class (spec.destination.storageClass); use OnlyFilesTransferred",
        broken: |s| {
            s.task.verify == VerifyMode::PointInTimeConsistent
                && matches!(
                    s.destination.storage_class,
                    StorageClass::Glacier | StorageClass::DeepArchive
                )
        },
        example: r#"{"task": {"mode": "Basic", "verify": "PointInTimeConsistent"}, "destination": {"storageClass": "GLACIER"}}"#,
    },
    Rule {
        scope: Scope::Spec,
        cel: "PREFIXES.all(p, self.source.region.startsWith(p) == self.destination.region.startsWith(p))",
        message: "spec.source.region and spec.destination.region must be in one AWS partition (aws, aws-cn, aws-us-gov, ...): DataSync cannot copy across partitions",
        broken: |s| partition(&s.source.region) != partition(&s.destination.region),
        example: r#"{"source": {"region": "cn-north-1"}, "destination": {"region": "us-east-1"}}"#,
    },
    Rule {
        scope: Scope::Spec,
        cel: "self.source.region == self.destination.region || !(self.source.region in OPT_IN || self.destination.region in OPT_IN)",
        message: "spec.source.region and spec.destination.region: DataSync does not copy between Regions when one of them is an opt-in Region (af-south-1, ap-east-1, eu-south-1, me-south-1, ...); use one Region",
        broken: |s| {
            s.source.region != s.destination.region
                && [&s.source.region, &s.destination.region]
                    .iter()
                    .any(|r| OPT_IN_REGIONS.contains(&r.as_str()))
        },
        example: r#"{"source": {"region": "af-south-1"}, "destination": {"region": "eu-west-1"}}"#,
    },
    Rule {
        scope: Scope::Spec,
        cel: "!has(self.schedule) || !has(self.task.release) || self.task.release != 'AfterSuccess'",
        message: "spec.task.release: AfterSuccess deletes the task after a run, and a DataSync schedule lives on the task; remove spec.schedule or use release: Keep",
        broken: |s| s.schedule.is_some() && s.task.release == TaskRelease::AfterSuccess,
        example: r#"{"schedule": "rate(12 hours)", "task": {"release": "AfterSuccess"}}"#,
    },
    Rule {
        scope: Scope::Spec,
        cel: concat!(
            "!",
            pulls_cel!(),
            " || (has(self.source.accountId) && has(self.source.access))"
        ),
        message: "spec.initiator Destination needs spec.source.accountId and spec.source.access: the source bucket's account and how Ferry reaches it (mode: AssumeRole with roleArn, or mode: External)",
        broken: |s| pulls(s) && (s.source.account_id.is_none() || s.source.access.is_none()),
        example: r#"{"initiator": "Destination", "destination": {"access": null}}"#,
    },
    Rule {
        scope: Scope::Spec,
        cel: concat!(pulls_cel!(), " || has(self.destination.access)"),
        message: "spec.destination.access is required when spec.initiator is Source (the default): how Ferry configures the destination bucket (mode: AssumeRole with roleArn, or mode: External)",
        broken: |s| !pulls(s) && s.destination.access.is_none(),
        example: r#"{"destination": {"access": null}}"#,
    },
    Rule {
        scope: Scope::Spec,
        cel: concat!("!", pulls_cel!(), " || !has(self.destination.access)"),
        message: "spec.destination.access must be empty when spec.initiator is Destination: the destination bucket is in the account Ferry runs in; spec.source.access says how Ferry reaches the source",
        broken: |s| pulls(s) && s.destination.access.is_some(),
        example: r#"{"initiator": "Destination", "source": {"accountId": "111111111111", "access": {"mode": "External"}}}"#,
    },
    Rule {
        scope: Scope::Spec,
        cel: concat!(
            pulls_cel!(),
            " || !(has(self.source.accountId) || has(self.source.access))"
        ),
        message: "spec.source.accountId and spec.source.access are for spec.initiator: Destination only; with initiator Source the source bucket is in the account Ferry runs in",
        broken: |s| !pulls(s) && (s.source.account_id.is_some() || s.source.access.is_some()),
        example: r#"{"source": {"accountId": "111111111111"}}"#,
    },
    Rule {
        scope: Scope::Spec,
        cel: concat!("!", pulls_cel!(), " || !has(self.source.roleArn)"),
        message: "spec.source.roleArn is for spec.initiator: Source only: with initiator Destination Ferry runs as its own identity in the destination account and reaches the source through spec.source.access",
        broken: |s| pulls(s) && s.source.role_arn.is_some(),
        example: r#"{"initiator": "Destination", "destination": {"access": null}, "source": {"accountId": "111111111111", "access": {"mode": "External"}, "roleArn": "arn:aws:iam::222222222222:role/ops"}}"#,
    },
    Rule {
        scope: Scope::Spec,
        cel: concat!(
            "!",
            pulls_cel!(),
            " || !has(self.source.accountId) || self.source.accountId != self.destination.accountId"
        ),
        message: "spec.source.accountId must differ from spec.destination.accountId: Ferry copies between two accounts",
        broken: |s| pulls(s) && s.source.account_id.as_deref() == Some(s.destination.account_id.as_str()),
        example: r#"{"initiator": "Destination", "destination": {"access": null}, "source": {"accountId": "222222222222", "access": {"mode": "External"}}}"#,
    },
    Rule {
        scope: Scope::Spec,
        cel: concat!(pulls_cel!(), " || !has(self.destination.roleArn)"),
        message: "spec.destination.roleArn is for spec.initiator: Destination only (a role of the destination account that runs the copy); with initiator Source, spec.source.roleArn is the role Ferry runs as",
        broken: |s| !pulls(s) && s.destination.role_arn.is_some(),
        example: r#"{"destination": {"roleArn": "arn:aws:iam::222222222222:role/ops"}}"#,
    },
    Rule {
        scope: Scope::Destination,
        cel: "!has(self.roleArn) || PARTITIONS.exists(p, self.roleArn.startsWith('arn:' + p + ':iam::' + self.accountId + ':role/'))",
        message: "spec.destination.roleArn must be a role of the destination account spec.destination.accountId: with initiator Destination the copy runs there",
        broken: |s| {
            s.destination
                .role_arn
                .as_deref()
                .is_some_and(|arn| !role_of(arn, &s.destination.account_id))
        },
        example: r#"{"initiator": "Destination", "destination": {"access": null, "roleArn": "arn:aws:iam::333333333333:role/ops"}, "source": {"accountId": "111111111111", "access": {"mode": "External"}}}"#,
    },
    Rule {
        scope: Scope::Source,
        cel: "!has(self.access) || !has(self.access.roleArn) || !has(self.accountId) || PARTITIONS.exists(p, self.access.roleArn.startsWith('arn:' + p + ':iam::' + self.accountId + ':role/'))",
        message: "spec.source.access.roleArn must be a role of the source account spec.source.accountId",
        broken: |s| {
            let role = s.source.access.as_ref().and_then(|a| a.role_arn.as_deref());
            matches!((role, &s.source.account_id), (Some(arn), Some(account)) if !role_of(arn, account))
        },
        example: r#"{"initiator": "Destination", "destination": {"access": null}, "source": {"accountId": "111111111111", "access": {"mode": "AssumeRole", "roleArn": "arn:aws:iam::333333333333:role/elsewhere"}}}"#,
    },
    Rule {
        scope: Scope::SourceAccess,
        cel: "self.mode != 'AssumeRole' || has(self.roleArn)",
        message: "spec.source.access.roleArn is required when spec.source.access.mode is AssumeRole (or use mode: External)",
        broken: |s| {
            s.source
                .access
                .as_ref()
                .is_some_and(|a| a.mode == AccessMode::AssumeRole && a.role_arn.is_none())
        },
        example: r#"{"initiator": "Destination", "destination": {"access": null}, "source": {"accountId": "111111111111", "access": {"mode": "AssumeRole"}}}"#,
    },
    Rule {
        scope: Scope::SourceAccess,
        cel: "self.mode != 'External' || !has(self.roleArn)",
        message: "spec.source.access.roleArn must be empty when spec.source.access.mode is External: Ferry never calls the source account then",
        broken: |s| {
            s.source
                .access
                .as_ref()
                .is_some_and(|a| a.mode == AccessMode::External && a.role_arn.is_some())
        },
        example: r#"{"initiator": "Destination", "destination": {"access": null}, "source": {"accountId": "111111111111", "access": {"mode": "External", "roleArn": "arn:aws:iam::111111111111:role/admin"}}}"#,
    },
    Rule {
        scope: Scope::Destination,
        cel: "!has(self.access) || !has(self.access.roleArn) || PARTITIONS.exists(p, self.access.roleArn.startsWith('arn:' + p + ':iam::' + self.accountId + ':role/'))",
        message: "spec.destination.access.roleArn must be a role of the destination account spec.destination.accountId",
        broken: |s| {
            let role = s.destination.access.as_ref().and_then(|a| a.role_arn.as_deref());
            role.is_some_and(|arn| !role_of(arn, &s.destination.account_id))
        },
        example: r#"{"destination": {"access": {"roleArn": "arn:aws:iam::333333333333:role/elsewhere"}}}"#,
    },
    Rule {
        scope: Scope::Access,
        cel: "self.mode != 'AssumeRole' || has(self.roleArn)",
        message: MSG_ROLE_ARN_REQUIRED,
        broken: |s| {
            s.destination
                .access
                .as_ref()
                .is_some_and(|a| a.mode == AccessMode::AssumeRole && a.role_arn.is_none())
        },
        example: r#"{"destination": {"access": {"mode": "AssumeRole", "roleArn": null}}}"#,
    },
    Rule {
        scope: Scope::Access,
        cel: "self.mode != 'External' || !has(self.roleArn)",
        message: "spec.destination.access.roleArn must be empty when spec.destination.access.mode is External: Ferry never calls Account B then",
        broken: |s| {
            s.destination
                .access
                .as_ref()
                .is_some_and(|a| a.mode == AccessMode::External && a.role_arn.is_some())
        },
        example: r#"{"destination": {"access": {"mode": "External"}}}"#,
    },
    Rule {
        scope: Scope::DataSyncRole,
        cel: "!(has(self.name) && has(self.arn))",
        message: "spec.dataSyncRole: set name (a role Ferry manages) or arn (an existing role Ferry uses unchanged), not both",
        broken: |s| s.data_sync_role.name.is_some() && s.data_sync_role.arn.is_some(),
        example: r#"{"dataSyncRole": {"name": "mine", "arn": "arn:aws:iam::111111111111:role/theirs"}}"#,
    },
    Rule {
        scope: Scope::Task,
        cel: "self.mode != 'Enhanced' || self.verify == 'OnlyFilesTransferred'",
        message: "spec.task.verify: Enhanced mode verifies only transferred files (OnlyFilesTransferred); use mode: Basic for PointInTimeConsistent or None",
        broken: |s| is_enhanced(s) && s.task.verify != VerifyMode::OnlyFilesTransferred,
        example: r#"{"task": {"mode": "Enhanced", "verify": "None"}}"#,
    },
    Rule {
        scope: Scope::Task,
        cel: "self.mode != 'Enhanced' || !has(self.bytesPerSecond)",
        message: "spec.task.bytesPerSecond: bandwidth limits are a Basic-mode option; remove it or use mode: Basic",
        broken: |s| is_enhanced(s) && s.task.bytes_per_second.is_some(),
        example: r#"{"task": {"mode": "Enhanced", "bytesPerSecond": 1000000}}"#,
    },
    Rule {
        scope: Scope::Task,
        cel: "!(self.deleted == 'Remove' && self.transfer == 'All')",
        message: "spec.task.deleted: Remove needs transfer: Changed (DataSync refuses PreserveDeletedFiles REMOVE with TransferMode ALL)",
        broken: |s| s.task.deleted == DeletedFilesMode::Remove && s.task.transfer == TransferMode::All,
        example: r#"{"task": {"deleted": "Remove", "transfer": "All"}}"#,
    },
    Rule {
        scope: Scope::Task,
        cel: "!has(self.logLevel) || self.logLevel == 'Off' || has(self.logGroupArn)",
        message: "spec.task.logGroupArn is required when spec.task.logLevel is Basic or Transfer",
        broken: |s| s.task.log_level.is_some_and(|l| l != LogLevel::Off) && s.task.log_group_arn.is_none(),
        example: r#"{"task": {"logLevel": "Transfer"}}"#,
    },
    Rule {
        scope: Scope::Task,
        cel: "self.mode != 'Enhanced' || !has(self.logGroupArn) || self.logGroupArn.matches(':log-group:/aws/datasync(:[*])?$')",
        message: "spec.task.logGroupArn: Enhanced mode tasks log only to the log group /aws/datasync (arn:aws:logs:<region>:<account>:log-group:/aws/datasync)",
        broken: |s| {
            is_enhanced(s)
                && s.task.log_group_arn.as_deref().is_some_and(|arn| {
                    !(arn.ends_with(":log-group:/aws/datasync") || arn.ends_with(":log-group:/aws/datasync:*"))
                })
        },
        example: r#"{"task": {"mode": "Enhanced", "logGroupArn": "arn:aws:logs:us-east-1:111111111111:log-group:/ferry/tasks"}}"#,
    },
    Rule {
        scope: Scope::Schedule,
        cel: "!self.startsWith('cron(') || ((self.split(' ')[2] == '?') != (self.split(' ')[4] == '?'))",
        message: "spec.schedule: a cron expression needs ? in exactly one of day-of-month and day-of-week (EventBridge), e.g. cron(0 2 * * ? *)",
        broken: |s| {
            s.schedule.as_deref().is_some_and(|expr| {
                let fields: Vec<&str> = expr.split(' ').collect();
                expr.starts_with("cron(") && fields.len() == 6 && (fields[2] == "?") == (fields[4] == "?")
            })
        },
        example: r#"{"schedule": "cron(0 2 * * * *)"}"#,
    },
];

/// The CEL rules of one place in the schema, as `x-kubernetes-validations` (for the CRD).
pub fn cel_rules(scope: Scope) -> serde_json::Value {
    let prefixes = cel_list(PARTITIONS.iter().map(|(prefix, _)| *prefix));
    let opt_in = cel_list(OPT_IN_REGIONS.iter().copied());
    let partitions = cel_list(partition_names());
    let rules: Vec<serde_json::Value> = RULES
        .iter()
        .filter(|r| r.scope == scope)
        .map(|r| {
            let cel = r
                .cel
                .replace("PREFIXES", &prefixes)
                .replace("OPT_IN", &opt_in)
                .replace("PARTITIONS", &partitions);
            serde_json::json!({"rule": cel, "message": r.message})
        })
        .collect();
    serde_json::Value::Array(rules)
}

/// The messages of the rules `spec` breaks (pure).
pub fn broken_rules(spec: &CrossAccountTransferSpec) -> impl Iterator<Item = &'static str> + '_ {
    RULES.iter().filter(|r| (r.broken)(spec)).map(|r| r.message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    /// A valid spec with `change` merged in (`null` removes a field).
    fn spec(change: serde_json::Value) -> CrossAccountTransferSpec {
        fn merge(target: &mut serde_json::Value, change: &serde_json::Value) {
            match (target, change) {
                (serde_json::Value::Object(t), serde_json::Value::Object(c)) => {
                    for (k, v) in c {
                        if v.is_null() {
                            t.remove(k);
                        } else {
                            merge(t.entry(k.clone()).or_insert(serde_json::Value::Null), v);
                        }
                    }
                }
                (t, c) => *t = c.clone(),
            }
        }
        let mut base = serde_json::json!({
            "source": {"bucket": "src", "region": "us-east-1"},
            "destination": {"bucket": "dst", "region": "us-west-1", "accountId": "222222222222",
                            "access": {"mode": "AssumeRole", "roleArn": "arn:aws:iam::222222222222:role/admin"}}
        });
        merge(&mut base, &change);
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn partitions_cover_every_region_family() {
        assert_eq!(partition("us-east-1"), "aws");
        assert_eq!(partition("cn-north-1"), "aws-cn");
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition("us-iso-east-1"), "aws-iso");
        assert_eq!(partition("us-isob-east-1"), "aws-iso-b");
        assert_eq!(partition("eusc-de-east-1"), "aws-eusc");
    }

    #[test]
    fn every_rule_breaks_on_its_example_and_only_there() {
        assert!(broken_rules(&spec(serde_json::json!({}))).next().is_none());
        for rule in RULES {
            let example: serde_json::Value = serde_json::from_str(rule.example).unwrap();
            let spec = spec(example);
            let broken: Vec<&str> = broken_rules(&spec).collect();
            assert_eq!(broken, [rule.message], "{}", rule.example);
        }
    }

    /// The CRD's CEL rules are this table's, plus the per-field rules with their own Rust twins
    /// (`bucket_name_problem`, `is_kms_key_arn`) and the task mode's transition rule.
    #[test]
    fn the_crd_has_no_cel_rule_outside_the_table() {
        let crd = serde_json::to_value(super::super::CrossAccountTransfer::crd()).unwrap();
        let mut found = Vec::new();
        fn walk(node: &serde_json::Value, out: &mut Vec<String>) {
            match node {
                serde_json::Value::Object(map) => {
                    if let Some(rules) = map.get("x-kubernetes-validations").and_then(|r| r.as_array()) {
                        out.extend(rules.iter().filter_map(|r| r["message"].as_str().map(str::to_string)));
                    }
                    map.values().for_each(|v| walk(v, out));
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        walk(&crd, &mut found);
        let per_field = |m: &str| {
            m.starts_with("S3 bucket names must not")
                || m == super::super::MSG_KMS_KEY_ARN
                || m.starts_with("spec.task.mode is immutable")
                || m.starts_with("spec.initiator is immutable")
        };
        let outside: Vec<&String> = found
            .iter()
            .filter(|m| !per_field(m) && !RULES.iter().any(|r| r.message == m.as_str()))
            .collect();
        assert!(
            outside.is_empty(),
            "CEL rules without a Rust twin in RULES: {outside:?}"
        );
        for rule in RULES {
            assert!(
                found.iter().any(|m| m == rule.message),
                "not in the CRD: {}",
                rule.message
            );
        }
    }
}
