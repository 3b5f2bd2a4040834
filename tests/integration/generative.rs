//! One invariant, tested generatively: every manifest the real API server admits leads only to
//! AWS requests that satisfy AWS's published API model and documented limits.
//!
//! Manifests are generated from the CRD's own patterns, with names and namespaces up to their
//! maximum lengths, every prefix character the CRD allows, maximum filter counts and lengths,
//! every enum, both access modes and regions of every kind. For each, the values Ferry sends
//! (built by `Desired::build`, the same function the controller uses) are checked against
//! `tests/fixtures/aws-constraints.json`, which `tests/emulator/constraints.py` extracts from the
//! botocore models the emulator enforces. A sample is sent to the real API server to show it is
//! admitted, and one transfer with a 253-character name and the widest prefix runs end to end
//! against the strict emulator.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use ferry::api::{CrossAccountTransferSpec, MAX_FILTER_PATTERN, OPT_IN_REGIONS, Phase};
use ferry::aws::datasync::filterable;
use ferry::desired::{Desired, Identities};
use ferry::naming::TransferId;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

use crate::common::scenario::Scenario;
use crate::common::{env, repo};

/// The constraints of one request member, from botocore's model.
struct Rule {
    min: Option<usize>,
    max: Option<usize>,
    pattern: Option<regex::Regex>,
    allowed: Option<Vec<String>>,
}

struct Constraints {
    members: HashMap<String, Rule>,
    max_bytes: HashMap<String, usize>,
}

fn constraints() -> &'static Constraints {
    static LOADED: OnceLock<Constraints> = OnceLock::new();
    LOADED.get_or_init(|| {
        let text = std::fs::read_to_string(repo().join("tests/fixtures/aws-constraints.json")).expect("fixture");
        let doc: Value = serde_json::from_str(&text).expect("fixture JSON");
        let mut members = HashMap::new();
        for (path, rule) in doc["members"].as_object().expect("members") {
            let size = |k: &str| rule[k].as_u64().map(|n| n as usize);
            // AWS matches the whole value (Java's `matches`); the models' patterns are Java
            // regexes that Rust's engine reads the same way for these members.
            let pattern = rule["pattern"].as_str().map(|p| {
                // Java accepts an escaped space, Rust's engine only escaped punctuation.
                let p = p.replace("\\ ", " ");
                regex::Regex::new(&format!("^(?:{p})$")).unwrap_or_else(|e| panic!("{path}: {e}"))
            });
            let allowed = rule["enum"]
                .as_array()
                .map(|values| values.iter().filter_map(|v| v.as_str().map(str::to_string)).collect());
            members.insert(
                path.clone(),
                Rule {
                    min: size("min"),
                    max: size("max"),
                    pattern,
                    allowed,
                },
            );
        }
        let max_bytes = doc["documented"]
            .as_object()
            .expect("documented")
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v["maxBytes"].as_u64()? as usize)))
            .collect();
        Constraints { members, max_bytes }
    })
}

/// Checks one value Ferry sends for a member (`service.Operation.Member.Path`).
fn check(member: &str, value: &str, problems: &mut Vec<String>) {
    let c = constraints();
    let rule = c.members.get(member);
    assert!(
        rule.is_some() || c.max_bytes.contains_key(member),
        "{member} is not in the fixture: add its operation to tests/emulator/constraints.py"
    );
    if let Some(rule) = rule {
        let chars = value.chars().count();
        if rule.min.is_some_and(|min| chars < min) || rule.max.is_some_and(|max| chars > max) {
            problems.push(format!(
                "{member}: length {chars} outside {:?}..{:?}",
                rule.min, rule.max
            ));
        }
        if let Some(pattern) = &rule.pattern
            && !pattern.is_match(value)
        {
            problems.push(format!("{member}: {value:?} does not match {}", pattern.as_str()));
        }
        if let Some(allowed) = &rule.allowed
            && !allowed.iter().any(|a| a == value)
        {
            problems.push(format!("{member}: {value:?} is not one of {allowed:?}"));
        }
    }
    if let Some(max) = c.max_bytes.get(member)
        && value.len() > *max
    {
        problems.push(format!("{member}: {} bytes, AWS allows {max}", value.len()));
    }
}

/// Every value Ferry sends to AWS for a transfer, member by member, checked.
fn problems_of(spec: &CrossAccountTransferSpec, id: &TransferId) -> Vec<String> {
    let who = Identities {
        account_a: "111111111111".into(),
        creator_arn: "arn:aws:iam::111111111111:role/platform/ferry-operator".into(),
    };
    let d = Desired::build(spec, id, &who);
    let mut p = Vec::new();
    let tags = id.tags();
    let run_tag = ("ferry.dev/run".to_string(), "g12345-0123456789-abcdef".to_string());

    if let Some(role) = &d.role.managed {
        check("iam.CreateRole.RoleName", &role.name, &mut p);
        check("iam.CreateRole.Description", &role.description, &mut p);
        check(
            "iam.CreateRole.AssumeRolePolicyDocument",
            &role.trust.to_string(),
            &mut p,
        );
        check(
            "iam.UpdateAssumeRolePolicy.PolicyDocument",
            &role.trust.to_string(),
            &mut p,
        );
        check("iam.PutRolePolicy.RoleName", &role.name, &mut p);
        check("iam.PutRolePolicy.PolicyName", &role.inline_name, &mut p);
        check("iam.PutRolePolicy.PolicyDocument", &role.inline.to_string(), &mut p);
        for (k, v) in &tags {
            check("iam.CreateRole.Tags[].Key", k, &mut p);
            check("iam.CreateRole.Tags[].Value", v, &mut p);
        }
    }
    let bucket_policy = json!({"Version": "2012-10-17", "Statement": d.foreign_bucket.statements}).to_string();
    check("s3.PutBucketPolicy.Policy", &bucket_policy, &mut p);

    for loc in [&d.source, &d.destination] {
        check("datasync.CreateLocationS3.Subdirectory", &loc.subdirectory, &mut p);
        check("datasync.CreateLocationS3.S3BucketArn", &loc.bucket_arn, &mut p);
        check(
            "datasync.CreateLocationS3.S3Config.BucketAccessRoleArn",
            &loc.role_arn,
            &mut p,
        );
        if let Some(class) = &loc.storage_class {
            check("datasync.CreateLocationS3.S3StorageClass", class, &mut p);
        }
        for (k, v) in &tags {
            check("datasync.CreateLocationS3.Tags[].Key", k, &mut p);
            check("datasync.CreateLocationS3.Tags[].Value", v, &mut p);
        }
        // Ferry searches with a filter only when the URI can be one.
        if filterable(&loc.uri) {
            check("datasync.ListLocations.Filters[].Values[]", &loc.uri, &mut p);
        }
    }

    let t = &d.task;
    for op in ["CreateTask", "UpdateTask"] {
        check(&format!("datasync.{op}.Name"), &t.name, &mut p);
        for (member, value) in [
            ("Options.VerifyMode", &t.options.verify),
            ("Options.OverwriteMode", &t.options.overwrite),
            ("Options.TransferMode", &t.options.transfer),
            ("Options.PreserveDeletedFiles", &t.options.preserve_deleted),
            ("Options.ObjectTags", &t.options.object_tags),
            ("Options.LogLevel", &t.options.log_level),
        ] {
            check(&format!("datasync.{op}.{member}"), value, &mut p);
        }
        for (member, value) in [("Includes[].Value", &t.includes), ("Excludes[].Value", &t.excludes)] {
            if let Some(v) = value {
                check(&format!("datasync.{op}.{member}"), v, &mut p);
            }
        }
        if let Some((expr, _)) = &t.schedule {
            check(&format!("datasync.{op}.Schedule.ScheduleExpression"), expr, &mut p);
        }
        if let Some(group) = &t.log_group_arn {
            check(&format!("datasync.{op}.CloudWatchLogGroupArn"), group, &mut p);
        }
        if let Some(r) = &t.report {
            let s3 = format!("datasync.{op}.TaskReportConfig.Destination.S3");
            check(&format!("{s3}.Subdirectory"), &r.subdirectory, &mut p);
            check(&format!("{s3}.S3BucketArn"), &r.bucket_arn, &mut p);
            check(&format!("{s3}.BucketAccessRoleArn"), &r.role_arn, &mut p);
            check(&format!("datasync.{op}.TaskReportConfig.OutputType"), &r.output, &mut p);
            check(&format!("datasync.{op}.TaskReportConfig.ReportLevel"), &r.level, &mut p);
        }
    }
    check("datasync.CreateTask.TaskMode", &t.mode, &mut p);
    for (k, v) in tags.iter().chain([&run_tag]) {
        check("datasync.CreateTask.Tags[].Key", k, &mut p);
        check("datasync.StartTaskExecution.Tags[].Key", k, &mut p);
        check("datasync.StartTaskExecution.Tags[].Value", v, &mut p);
        check("datasync.CreateTask.Tags[].Value", v, &mut p);
    }
    p
}

// --- admitted manifests -------------------------------------------------------------------

const REGIONS: &[&str] = &[
    "us-east-1",
    "us-west-2",
    "eu-central-1",
    "ap-southeast-2",
    "us-gov-west-1",
    "us-gov-east-1",
    "cn-north-1",
    "cn-northwest-1",
    "af-south-1",
    "me-south-1",
];

fn partition(region: &str) -> &'static str {
    ferry::naming::partition(region)
}

/// A bucket name the CRD admits (pattern and S3's other naming rules).
fn bucket() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9][a-z0-9-]{1,20}[a-z0-9]",
        "[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]",
        Just("a".repeat(63)),
    ]
    .prop_filter("S3 naming rules", |b| ferry::api::bucket_name_problem(b).is_none())
}

/// A prefix the CRD admits: every character it allows, up to 1024 characters.
fn prefix() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        "[A-Za-z0-9_+.() -]{1,30}(/[A-Za-z0-9_+.() -]{1,30}){0,4}/?".prop_map(Some),
        Just(Some(format!("{}/", "(a+b) c_d.e-f".repeat(73)))),
    ]
    .prop_filter("at most 1024 characters", |p| {
        p.as_ref().is_none_or(|p| p.len() <= 1024)
    })
}

fn filters() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        prop::collection::vec("[^|\\x00]{1,40}", 0..5),
        Just(vec!["x".repeat(MAX_FILTER_PATTERN); 100]),
        Just(vec![format!("/{}*", "é".repeat(300))]),
    ]
}

fn schedule() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("rate(1 hour)".to_string())),
        (2u32..1000).prop_map(|n| Some(format!("rate({n} days)"))),
        (60u32..5000).prop_map(|n| Some(format!("rate({n} minutes)"))),
        (0u32..60, 0u32..24).prop_map(|(m, h)| Some(format!("cron({m} {h} ? * MON-FRI *)"))),
        (0u32..60).prop_map(|m| Some(format!("cron({m} */6 1,15 * ? 2026-2030)"))),
    ]
}

/// A namespace (DNS label, up to 63) and a name (up to 253).
fn names() -> impl Strategy<Value = (String, String)> {
    let ns = prop_oneof!["[a-z][a-z0-9-]{0,10}[a-z0-9]", Just("n".repeat(63))];
    let name = prop_oneof![
        "[a-z][a-z0-9-]{0,20}[a-z0-9]",
        "[a-z][a-z0-9.-]{200,251}[a-z0-9]",
        Just(format!("{}.x", "a".repeat(251))),
    ]
    .prop_filter("DNS subdomain", |n| {
        !n.contains("..") && !n.contains(".-") && !n.contains("-.")
    });
    (ns, name)
}

/// A spec the CRD admits, as JSON.
fn admitted_spec() -> impl Strategy<Value = Value> {
    let task = (
        prop_oneof![Just("Enhanced"), Just("Basic")],
        prop_oneof![
            Just("OnlyFilesTransferred"),
            Just("PointInTimeConsistent"),
            Just("None")
        ],
        prop_oneof![Just("Always"), Just("Never")],
        prop_oneof![Just("Changed"), Just("All")],
        prop_oneof![Just("Preserve"), Just("Remove")],
        prop_oneof![Just("Preserve"), Just("None")],
        filters(),
        filters(),
        prop::option::of(prop_oneof![Just("Off"), Just("Basic"), Just("Transfer")]),
        prop::option::of((bucket(), prefix(), any::<bool>(), any::<bool>())),
        any::<bool>(),
    );
    let storage = prop_oneof![
        Just("STANDARD"),
        Just("STANDARD_IA"),
        Just("ONEZONE_IA"),
        Just("INTELLIGENT_TIERING"),
        Just("GLACIER_INSTANT_RETRIEVAL"),
        Just("GLACIER"),
        Just("DEEP_ARCHIVE"),
    ];
    (
        (bucket(), bucket(), prefix(), prefix()),
        (prop::sample::select(REGIONS), prop::sample::select(REGIONS), storage),
        (any::<bool>(), prop::option::of("[A-Za-z0-9+=,.@_-]{1,64}"), schedule()),
        task,
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(
                (src, dst, src_prefix, dst_prefix),
                (src_region, dst_region, storage),
                (assume, role_name, schedule),
                (mode, verify, overwrite, transfer, deleted, tags, includes, excludes, log_level, report, log),
                (manual, retain, suspend, kms),
            )| {
                let (src_region, dst_region) = if partition(src_region) == partition(dst_region) {
                    (src_region, dst_region)
                } else {
                    (src_region, src_region)
                };
                let dst_region = if src_region != dst_region
                    && (OPT_IN_REGIONS.contains(&src_region) || OPT_IN_REGIONS.contains(&dst_region))
                {
                    src_region
                } else {
                    dst_region
                };
                let dst = if dst == src {
                    let first = if src.starts_with('b') { 'c' } else { 'b' };
                    format!("{first}{}", &src[1..])
                } else {
                    dst
                };
                let p = partition(src_region);
                let access = if assume {
                    json!({"mode": "AssumeRole", "roleArn": format!("arn:{p}:iam::222222222222:role/ferry-bucket-admin")})
                } else {
                    json!({"mode": "External"})
                };
                let verify = if mode == "Enhanced" { "OnlyFilesTransferred" } else { verify };
                let verify = if verify == "PointInTimeConsistent" && (storage == "GLACIER" || storage == "DEEP_ARCHIVE") {
                    "OnlyFilesTransferred"
                } else {
                    verify
                };
                let transfer = if deleted == "Remove" { "Changed" } else { transfer };
                let log_group = if mode == "Enhanced" { "/aws/datasync:*" } else { "ferry/transfers" };
                let mut task = json!({"mode": mode, "verify": verify, "overwrite": overwrite, "transfer": transfer,
                                      "deleted": deleted, "objectTags": tags, "includes": includes, "excludes": excludes});
                if log || log_level.is_some_and(|l| l != "Off") {
                    task["logGroupArn"] = json!(format!("arn:{p}:logs:{dst_region}:111111111111:log-group:{log_group}"));
                }
                if let Some(level) = log_level {
                    task["logLevel"] = json!(level);
                }
                if let Some((report_bucket, report_prefix, detailed, everything)) = report
                    && report_bucket != src
                {
                    task["report"] = json!({"bucket": report_bucket, "prefix": report_prefix,
                        "output": if detailed { "Standard" } else { "Summary" },
                        "level": if everything { "SuccessesAndErrors" } else { "ErrorsOnly" }});
                }
                let mut spec = json!({
                    "source": {"bucket": src, "region": src_region, "prefix": src_prefix},
                    "destination": {"bucket": dst, "region": dst_region, "accountId": "222222222222",
                                    "prefix": dst_prefix, "storageClass": storage, "access": access},
                    "task": task,
                    "run": if manual { "Manual" } else { "OnChange" },
                    "deletionPolicy": if retain { "Retain" } else { "Delete" },
                    "suspend": suspend,
                });
                if let Some(s) = schedule {
                    spec["schedule"] = json!(s);
                }
                if let Some(name) = role_name {
                    spec["dataSyncRole"] = json!({"name": name});
                }
                if kms {
                    // Multi-Region key ids are the longest KMS makes (mrk- and 32 hex digits).
                    let key = |account: &str, region: &str| {
                        format!("arn:{p}:kms:{region}:{account}:key/mrk-{}", "0123456789abcdef".repeat(2))
                    };
                    spec["source"]["kmsKeyArn"] = json!(key("111111111111", src_region));
                    spec["destination"]["kmsKeyArn"] = json!(key("222222222222", dst_region));
                }
                strip_nulls(&mut spec);
                spec
            },
        )
}

fn strip_nulls(v: &mut Value) {
    if let Value::Object(map) = v {
        map.retain(|_, x| !x.is_null());
        map.values_mut().for_each(strip_nulls);
    }
}

fn transfer_case() -> impl Strategy<Value = (String, String, String, Value)> {
    (
        names(),
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        admitted_spec(),
    )
        .prop_map(|((ns, name), uid, spec)| (ns, name, uid, spec))
}

#[test]
fn every_admitted_manifest_leads_only_to_requests_aws_accepts() {
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&transfer_case(), |(ns, name, uid, spec)| {
        let parsed: CrossAccountTransferSpec = serde_json::from_value(spec.clone()).expect("spec");
        prop_assert!(
            parsed.validate().is_empty(),
            "the generator made a spec Ferry refuses: {:?}",
            parsed.validate()
        );
        let problems = problems_of(&parsed, &TransferId::new(ns, name, uid));
        let shown: String = spec.to_string().chars().take(600).collect();
        prop_assert!(problems.is_empty(), "{shown}...\n{}", problems.join("\n"));
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[tokio::test]
async fn generated_manifests_are_admitted_by_the_api_server() {
    let env = env();
    let client = env.client().await;
    let ns = env.namespace(&client, "gen").await;
    let resource = ApiResource::erase::<ferry::api::CrossAccountTransfer>(&());
    let raw: Api<DynamicObject> = Api::namespaced_with(client, &ns, &resource);
    let mut runner = TestRunner::deterministic();
    let strategy = admitted_spec();
    let mut refused = Vec::new();
    for i in 0..40 {
        let spec = strategy.new_tree(&mut runner).expect("value").current();
        let manifest = json!({"apiVersion": "ferry.dev/v1alpha1", "kind": "CrossAccountTransfer",
                              "metadata": {"name": format!("gen-{i}")}, "spec": spec});
        let obj: DynamicObject = serde_json::from_value(manifest.clone()).expect("object");
        let dry = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        if let Err(e) = raw.create(&dry, &obj).await {
            let shown: String = manifest.to_string().chars().take(400).collect();
            refused.push(format!("{shown}...\n  {e}"));
        }
    }
    assert!(
        refused.is_empty(),
        "generated manifests the API server refuses:\n{}",
        refused.join("\n")
    );
}

#[tokio::test]
async fn a_transfer_with_the_longest_name_and_widest_prefix_succeeds_and_is_deleted() {
    let s = Scenario::new("long", "us-east-1", "us-west-2").await;
    let name = format!("{}.x", "a".repeat(251));
    let _op = s.operator(&[]);
    s.apply(&s.manifest(
        &name,
        json!({"destination": {"prefix": "archive/(2024) a+b c/"},
               "task": {"excludes": ["*.tmp", "/b/*"]}}),
    ))
    .await;
    let obj = s.wait_phase(&name, Phase::Succeeded, Duration::from_secs(120)).await;
    let status = obj.status.expect("status");
    assert_eq!(
        status.execution.map(|e| e.files_transferred),
        Some(1),
        "media/a.jpg only"
    );
    let keys = s.destination_keys().await;
    assert!(
        keys.iter().all(|(k, _)| k.starts_with("archive/(2024) a+b c/")),
        "{keys:?}"
    );
    s.delete_and_wait(&name, Duration::from_secs(120)).await;
    assert!(s.a.tasks(&s.dst_region).await.is_empty(), "the task is gone");
    assert!(
        s.a.locations(&s.dst_region).await.is_empty(),
        "no search AWS cannot express blocked the deletion"
    );
}
