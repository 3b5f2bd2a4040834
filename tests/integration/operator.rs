//! The real `ferry run` against the real API server and the AWS emulator: the whole
//! cross-account recipe, updates, runs, deletion, Account B modes and error handling.

use crate::common;

use std::time::Duration;

use common::aws::{calls, fault};
use common::scenario::Scenario;
use common::wait_for;
use ferry::api::{CrossAccountTransfer, Phase};
use serde_json::{Value, json};

const CONVERGE: Duration = Duration::from_secs(120);

fn status(obj: &CrossAccountTransfer) -> ferry::api::CrossAccountTransferStatus {
    obj.status.clone().expect("status")
}

fn condition<'a>(
    s: &'a ferry::api::CrossAccountTransferStatus,
    type_: &str,
) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    s.conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {:?}", s.conditions))
}

fn parse(policy: &str) -> Value {
    serde_json::from_str(policy).expect("policy JSON")
}

#[tokio::test]
async fn same_region_transfer_succeeds_and_counts_match() {
    let s = Scenario::new("same", "us-east-1", "us-east-1").await;
    let _op = s.operator(&[]);
    s.apply(&s.manifest("copy", json!({}))).await;
    let obj = s.wait_phase("copy", Phase::Succeeded, CONVERGE).await;
    let keys = s.destination_keys().await;
    let expected: Vec<(String, i64)> = vec![("archive/a.jpg".into(), 4), ("archive/b/c.png".into(), 6)];
    assert_eq!(keys.into_iter().collect::<Vec<_>>(), expected);
    let st = status(&obj);
    let exec = st.execution.clone().expect("execution");
    assert_eq!(exec.status, "SUCCESS");
    assert_eq!(exec.files_transferred, 2);
    assert_eq!(exec.bytes_transferred, 10);
    assert_eq!(exec.percent_done, 100);
    assert_eq!(st.progress.as_deref(), Some("100%"));
    assert_eq!(st.history.len(), 1);
    for c in [
        "RoleReady",
        "DestinationReady",
        "LocationsReady",
        "TaskReady",
        "ExecutionSucceeded",
        "Ready",
    ] {
        assert_eq!(condition(&st, c).status, "True", "{c}: {:?}", condition(&st, c));
    }
    assert_eq!(condition(&st, "Stalled").status, "False");
    assert_eq!(condition(&st, "Reconciling").status, "False");
    let role = st.role.expect("role");
    assert!(role.managed);
    // The namespace's first shared role, with this transfer's own inline policy on it.
    assert!(
        role.arn.ends_with(&format!("role/{}", s.pool().role_name(0))),
        "{}",
        role.arn
    );
    // Statement two names the operator's identity, mapped from its session to the role with its path.
    assert_eq!(
        st.destination.expect("destination").creator_arn.as_deref(),
        Some(s.a.role_arn.as_str())
    );
    assert!(s.a.role_arn.contains(":role/platform/ferry-operator"));
    assert_eq!(s.b.ownership(&s.dst_region, &s.dst).await, "BucketOwnerEnforced");
    // Every AWS change is an event.
    let reasons: Vec<String> = s.events("copy").await.into_iter().map(|e| e.1).collect();
    for r in [
        "RoleCreated",
        "RoleJoined",
        "AclsDisabled",
        "BucketPolicyUpdated",
        "LocationCreated",
        "TaskCreated",
        "ExecutionStarted",
        "ExecutionSucceeded",
    ] {
        assert!(reasons.iter().any(|x| x == r), "missing event {r} in {reasons:?}");
    }
}

#[tokio::test]
async fn cross_region_transfer_runs_the_task_in_the_destination_region() {
    let s = Scenario::new("xreg", "us-east-1", "eu-west-1").await;
    let _op = s.operator(&[]);
    s.apply(&s.manifest("copy", json!({}))).await;
    let obj = s.wait_phase("copy", Phase::Succeeded, CONVERGE).await;
    let st = status(&obj);
    assert!(st.task_arn.as_deref().unwrap_or_default().contains(":eu-west-1:"));
    assert!(
        st.source_location_arn
            .as_deref()
            .unwrap_or_default()
            .contains(":us-east-1:")
    );
    assert!(
        st.destination_location_arn
            .as_deref()
            .unwrap_or_default()
            .contains(":eu-west-1:")
    );
    let keys: Vec<String> = s.destination_keys().await.into_keys().collect();
    assert_eq!(keys, vec!["archive/a.jpg", "archive/b/c.png"]);
    assert_eq!(st.execution.expect("execution").files_transferred, 2);
}

#[tokio::test]
async fn other_bucket_policy_statements_survive_create_update_and_delete() {
    let s = Scenario::new("keep", "us-east-1", "us-east-1").await;
    let original = json!({
        "Version": "2012-10-17",
        "Id": "owned-by-account-b",
        "Statement": [
            {"Sid": "DenyOtherAccount", "Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
             "Action": "s3:DeleteBucket", "Resource": format!("arn:aws:s3:::{}", s.dst)},
            {"Sid": "AuditRead", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::888888888888:role/audit"},
             "Action": ["s3:GetObject", "s3:ListBucket"],
             "Resource": [format!("arn:aws:s3:::{}", s.dst), format!("arn:aws:s3:::{}/reports/*", s.dst)],
             "Condition": {"Bool": {"aws:SecureTransport": "true"}}}
        ]
    });
    s.b.put_bucket_policy(&s.dst_region, &s.dst, &original.to_string())
        .await;
    s.b.set_ownership(&s.dst_region, &s.dst, "ObjectWriter").await;
    let _op = s.operator(&[]);
    s.apply(&s.manifest("keep", json!({}))).await;
    s.wait_phase("keep", Phase::Succeeded, CONVERGE).await;

    let merged = parse(&s.b.bucket_policy(&s.dst_region, &s.dst).await.expect("policy"));
    let statements = merged["Statement"].as_array().expect("statements");
    assert_eq!(statements.len(), 4);
    assert_eq!(statements[0], original["Statement"][0], "the Deny is kept exactly");
    assert_eq!(
        statements[1], original["Statement"][1],
        "the other Allow is kept exactly"
    );
    assert_eq!(merged["Id"], original["Id"]);

    // Update: a new role name changes Ferry's statement; the others stay exactly.
    s.patch_spec("keep", json!({"dataSyncRole": {"name": format!("renamed-{}", s.ns)}}))
        .await;
    let obj = s.wait_phase("keep", Phase::Succeeded, CONVERGE).await;
    let role_arn = status(&obj).role.expect("role").arn;
    assert!(role_arn.ends_with(&format!("role/renamed-{}", s.ns)));
    let updated = parse(&s.b.bucket_policy(&s.dst_region, &s.dst).await.expect("policy"));
    let statements = updated["Statement"].as_array().expect("statements");
    assert_eq!(statements.len(), 4);
    assert_eq!(statements[0], original["Statement"][0]);
    assert_eq!(statements[1], original["Statement"][1]);
    assert_eq!(
        statements[2]["Principal"]["AWS"],
        json!([role_arn]),
        "the new role replaced the old one"
    );
    // The old role was Ferry's and is gone once nothing uses it.
    let roles = s.a.roles().await;
    assert!(!roles.contains(&s.pool().role_name(0)), "old role left: {roles:?}");

    // Delete: back to the original policy and ownership.
    s.delete_and_wait("keep", CONVERGE).await;
    let after = parse(&s.b.bucket_policy(&s.dst_region, &s.dst).await.expect("policy"));
    assert_eq!(after, original);
    assert_eq!(s.b.ownership(&s.dst_region, &s.dst).await, "ObjectWriter");
}

#[tokio::test]
async fn external_mode_waits_for_account_b_and_never_calls_it() {
    let s = Scenario::new("ext", "us-east-1", "us-east-1").await;
    s.b.set_ownership(&s.dst_region, &s.dst, "ObjectWriter").await;
    let _op = s.operator(&[]);
    let manifest = s.manifest(
        "ext",
        json!({"destination": {"access": {"mode": "External", "roleArn": null}}}),
    );
    s.apply(&manifest).await;
    let obj = s.wait_phase("ext", Phase::AwaitingDestination, CONVERGE).await;
    let st = status(&obj);
    let required = st
        .destination
        .clone()
        .and_then(|d| d.required_bucket_policy)
        .expect("the required policy is published");
    let ready = condition(&st, "DestinationReady");
    assert_eq!(ready.status, "False");
    assert!(
        ready.message.contains(&s.b.id) && ready.message.contains(&s.dst),
        "{}",
        ready.message
    );
    assert_eq!(condition(&st, "Stalled").status, "False", "waiting is not a failure");

    // Account B's administrator applies exactly what Ferry published.
    s.b.put_bucket_policy(&s.dst_region, &s.dst, &required).await;
    s.b.set_ownership(&s.dst_region, &s.dst, "BucketOwnerEnforced").await;
    let obj = s.wait_phase("ext", Phase::Succeeded, CONVERGE).await;
    assert_eq!(condition(&status(&obj), "DestinationReady").status, "True");
    assert_eq!(s.destination_keys().await.len(), 2);

    // Ferry made no call on Account B's bucket and assumed no role.
    let on_bucket = calls(s.env, &format!("account={}&bucket={}", s.a.id, s.dst));
    assert!(on_bucket.is_empty(), "Ferry called Account B's bucket: {on_bucket:?}");
    let assumed = calls(s.env, &format!("account={}&operation=AssumeRole", s.a.id));
    assert!(assumed.is_empty(), "Ferry assumed a role: {assumed:?}");

    // Deleting in External mode leaves Account B's bucket to its administrator.
    s.delete_and_wait("ext", CONVERGE).await;
    assert_eq!(
        s.b.bucket_policy(&s.dst_region, &s.dst).await.as_deref(),
        Some(required.as_str())
    );
}

#[tokio::test]
async fn editing_filters_updates_the_task_in_place_and_runs_again() {
    let s = Scenario::new("filt", "us-east-1", "us-east-1").await;
    let _op = s.operator(&[]);
    s.apply(&s.manifest("f", json!({}))).await;
    let first = s.wait_phase("f", Phase::Succeeded, CONVERGE).await;
    let task = status(&first).task_arn.expect("task");
    assert!(!s.destination_keys().await.contains_key("archive/skip.tmp"));

    s.patch_spec("f", json!({"task": {"excludes": ["*.png"]}})).await;
    let second = s.wait_phase("f", Phase::Succeeded, CONVERGE).await;
    let st = status(&second);
    assert_eq!(
        st.task_arn.as_deref(),
        Some(task.as_str()),
        "updated in place, not replaced"
    );
    assert_eq!(st.history.len(), 2, "a second execution ran: {:?}", st.history);
    assert!(
        s.destination_keys().await.contains_key("archive/skip.tmp"),
        "the new filters were used"
    );
    let described =
        s.a.datasync(&s.dst_region)
            .describe_task()
            .task_arn(&task)
            .send()
            .await
            .expect("task");
    assert_eq!(described.excludes()[0].value(), Some("*.png"));
    let reasons: Vec<String> = s.events("f").await.into_iter().map(|e| e.1).collect();
    assert!(reasons.iter().any(|r| r == "TaskUpdated"), "{reasons:?}");
}

#[tokio::test]
async fn changing_a_location_replaces_the_task_and_deletes_the_old_one() {
    let s = Scenario::new("move", "us-east-1", "us-east-1").await;
    let _op = s.operator(&[]);
    s.apply(&s.manifest("m", json!({}))).await;
    let first = status(&s.wait_phase("m", Phase::Succeeded, CONVERGE).await);
    s.patch_spec("m", json!({"destination": {"prefix": "moved/"}})).await;
    let second = status(&s.wait_phase("m", Phase::Succeeded, CONVERGE).await);
    assert_ne!(first.task_arn, second.task_arn, "a new task");
    assert_ne!(
        first.destination_location_arn, second.destination_location_arn,
        "a new destination location"
    );
    assert_eq!(
        first.source_location_arn, second.source_location_arn,
        "the source location is kept"
    );
    assert!(
        second.retired.is_empty(),
        "nothing left to retire: {:?}",
        second.retired
    );
    let tasks = s.a.tasks(&s.dst_region).await;
    assert_eq!(tasks, vec![second.task_arn.clone().expect("task")]);
    let locations = s.a.locations(&s.dst_region).await;
    assert_eq!(locations.len(), 2, "source and the new destination: {locations:?}");
    assert!(s.destination_keys().await.contains_key("moved/a.jpg"));
}

#[tokio::test]
async fn a_manual_run_runs_exactly_once_per_annotation_value() {
    let s = Scenario::new("man", "us-east-1", "us-east-1").await;
    let _op = s.operator(&[]);
    s.apply(&s.manifest("m", json!({"run": "Manual"}))).await;
    let obj = s.wait_phase("m", Phase::Ready, CONVERGE).await;
    let task = status(&obj).task_arn.expect("task");
    let ds = s.a.datasync(&s.dst_region);
    let executions = |ds: aws_sdk_datasync::Client, task: String| async move {
        ds.list_task_executions()
            .task_arn(task)
            .send()
            .await
            .expect("list")
            .task_executions()
            .len()
    };
    assert_eq!(
        executions(ds.clone(), task.clone()).await,
        0,
        "Manual starts nothing by itself"
    );

    s.annotate("m", "ferry.dev/run", "first").await;
    s.wait_phase("m", Phase::Succeeded, CONVERGE).await;
    // Several more reconciles (poll interval 1s) must not start it again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(executions(ds.clone(), task.clone()).await, 1);

    s.annotate("m", "ferry.dev/run", "second").await;
    wait_for("a second execution", CONVERGE, || {
        let (ds, task) = (ds.clone(), task.clone());
        async move {
            let n = executions(ds, task).await;
            if n == 2 { Ok(()) } else { Err(format!("{n} executions")) }
        }
    })
    .await;
    let obj = s.wait_phase("m", Phase::Succeeded, CONVERGE).await;
    assert_eq!(status(&obj).last_run.and_then(|r| r.token).as_deref(), Some("second"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(executions(ds, task).await, 2);
}

#[tokio::test]
async fn delete_removes_everything_ferry_created_in_both_accounts() {
    let s = Scenario::new("del", "us-east-1", "us-west-2").await;
    let _op = s.operator(&[]);
    s.apply(&s.manifest("d", json!({}))).await;
    s.wait_phase("d", Phase::Succeeded, CONVERGE).await;
    s.delete_and_wait("d", CONVERGE).await;
    assert_eq!(
        s.a.roles().await,
        vec!["ferry-operator".to_string()],
        "only the operator's own role is left"
    );
    assert!(s.a.locations(&s.src_region).await.is_empty());
    assert!(s.a.locations(&s.dst_region).await.is_empty());
    assert!(s.a.tasks(&s.dst_region).await.is_empty());
    assert_eq!(
        s.b.bucket_policy(&s.dst_region, &s.dst).await,
        None,
        "Ferry's statements were the whole policy"
    );
    assert_eq!(
        s.b.ownership(&s.dst_region, &s.dst).await,
        "Unset",
        "ownership put back as found"
    );
    // The copied data is Account B's and stays.
    assert_eq!(s.destination_keys().await.len(), 2);
}

#[tokio::test]
async fn retain_leaves_everything_in_aws() {
    let s = Scenario::new("ret", "us-east-1", "us-east-1").await;
    let _op = s.operator(&[]);
    s.apply(&s.manifest("r", json!({"deletionPolicy": "Retain"}))).await;
    let obj = s.wait_phase("r", Phase::Succeeded, CONVERGE).await;
    let st = status(&obj);
    s.delete_and_wait("r", CONVERGE).await;
    assert!(s.a.roles().await.contains(&s.pool().role_name(0)));
    assert_eq!(s.a.locations(&s.src_region).await.len(), 2);
    assert_eq!(s.a.tasks(&s.dst_region).await, vec![st.task_arn.expect("task")]);
    let policy = parse(&s.b.bucket_policy(&s.dst_region, &s.dst).await.expect("policy"));
    assert_eq!(policy["Statement"].as_array().map(Vec::len), Some(2));
    assert_eq!(s.b.ownership(&s.dst_region, &s.dst).await, "BucketOwnerEnforced");
    let reasons: Vec<String> = s.events("r").await.into_iter().map(|e| e.1).collect();
    assert!(reasons.iter().any(|r| r == "Retained"), "{reasons:?}");
}

#[tokio::test]
async fn lasting_access_denied_stalls_with_account_action_and_resource_then_recovers() {
    let s = Scenario::new("deny", "us-east-1", "us-east-1").await;
    let denied = fault(
        s.env,
        json!({"service": "s3", "operation": "PutBucketPolicy", "kind": "denied", "account": s.b.id,
               "bucket": s.dst, "probability": 1.0}),
    );
    let _op = s.operator(&[("FERRY_PROPAGATION_WINDOW", "0s"), ("FERRY_STALLED_RETRY", "2s")]);
    s.apply(&s.manifest("d", json!({}))).await;
    let obj = s.wait_phase("d", Phase::Failed, CONVERGE).await;
    let st = status(&obj);
    let stalled = condition(&st, "Stalled");
    assert_eq!(stalled.status, "True");
    assert_eq!(stalled.reason, "AccessDenied");
    for needle in [
        s.b.id.as_str(),
        "s3:PutBucketPolicy",
        &format!("arn:aws:s3:::{}", s.dst),
    ] {
        assert!(stalled.message.contains(needle), "{needle} not in {}", stalled.message);
    }
    let warnings: Vec<_> = s.events("d").await.into_iter().filter(|e| e.0 == "Warning").collect();
    assert!(warnings.iter().any(|e| e.1 == "AccessDenied"), "{warnings:?}");

    drop(denied);
    s.wait_recovery("d", Phase::Succeeded, CONVERGE).await;
}

#[tokio::test]
async fn access_errors_right_after_a_permission_change_are_retried_quietly() {
    let s = Scenario::new("prop", "us-east-1", "us-east-1").await;
    let denied = fault(
        s.env,
        json!({"service": "s3", "operation": "PutBucketPolicy", "kind": "denied", "account": s.b.id,
               "bucket": s.dst, "count": 2}),
    );
    let _op = s.operator(&[]);
    s.apply(&s.manifest("p", json!({}))).await;
    s.wait_phase("p", Phase::Succeeded, CONVERGE).await;
    assert_eq!(denied.fired(), 0, "both denials were used up");
    let events = s.events("p").await;
    assert!(
        !events.iter().any(|e| e.0 == "Warning"),
        "propagation is not a failure: {events:?}"
    );
}

#[tokio::test]
async fn throttling_is_retried_and_counted() {
    let s = Scenario::new("thr", "us-east-1", "us-east-1").await;
    // Three throttles outlast Ferry's three sends of a create once (a throttled create was
    // refused, so it is sent again; creates are never retried by the SDK): the reconcile backs
    // off and tries again.
    let _throttle = fault(
        s.env,
        json!({"service": "datasync", "operation": "CreateTask", "kind": "throttle", "account": s.a.id, "count": 3}),
    );
    let op = s.operator(&[]);
    s.apply(&s.manifest("t", json!({}))).await;
    s.wait_phase("t", Phase::Succeeded, CONVERGE).await;
    let metrics = op.http("/metrics").expect("metrics");
    assert!(
        metrics
            .contains("ferry_aws_calls_total{service=\"DataSync\",operation=\"CreateTask\",outcome=\"throttled\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ferry_reconcile_errors_total{reason=\"AwsUnavailable\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ferry_transfer_progress_percent{namespace="),
        "{metrics}"
    );
    assert_eq!(
        s.a.tasks(&s.dst_region).await.len(),
        1,
        "no duplicate task from the retries"
    );
}

#[tokio::test]
async fn an_invalid_spec_stalls_until_it_is_fixed() {
    let s = Scenario::new("inv", "us-east-1", "us-east-1").await;
    let _op = s.operator(&[]);
    // Admission cannot know Account A's id: a role of another account passes the schema.
    let foreign = "arn:aws:iam::999999999999:role/not-in-account-a";
    s.apply(&s.manifest("i", json!({"dataSyncRole": {"arn": foreign}})))
        .await;
    let obj = s.wait_phase("i", Phase::Failed, CONVERGE).await;
    let stalled = condition(&status(&obj), "Stalled").clone();
    assert_eq!(stalled.reason, "InvalidSpec");
    assert!(
        stalled.message.contains("spec.dataSyncRole.arn") && stalled.message.contains(&s.a.id),
        "{}",
        stalled.message
    );
    assert!(
        s.a.locations(&s.src_region).await.is_empty(),
        "nothing created for an invalid spec"
    );
    s.patch_spec("i", json!({"dataSyncRole": {"arn": null}})).await;
    s.wait_phase("i", Phase::Succeeded, CONVERGE).await;
}

#[tokio::test]
async fn a_role_ferry_does_not_own_is_never_touched() {
    let s = Scenario::new("own", "us-east-1", "us-east-1").await;
    let name = s.pool().role_name(0);
    let foreign_policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    s.a.iam()
        .create_role()
        .role_name(&name)
        .assume_role_policy_document(foreign_policy.to_string())
        .send()
        .await
        .expect("someone else's role");
    let _op = s.operator(&[]);
    s.apply(&s.manifest("o", json!({}))).await;
    let obj = s.wait_phase("o", Phase::Failed, CONVERGE).await;
    let stalled = condition(&status(&obj), "Stalled").clone();
    assert_eq!(stalled.reason, "NotOwned");
    assert!(stalled.message.contains("spec.dataSyncRole"), "{}", stalled.message);
    let role =
        s.a.iam()
            .get_role()
            .role_name(&name)
            .send()
            .await
            .expect("role")
            .role
            .expect("role");
    let trust = percent_encoding::percent_decode_str(role.assume_role_policy_document().unwrap_or_default())
        .decode_utf8()
        .expect("utf8")
        .to_string();
    assert_eq!(parse(&trust), foreign_policy, "the trust policy was not changed");
    s.delete_and_wait("o", CONVERGE).await;
    assert!(
        s.a.roles().await.contains(&name),
        "a role Ferry does not own is never deleted"
    );
}

#[tokio::test]
async fn drift_is_put_back() {
    let s = Scenario::new("drift", "us-east-1", "us-east-1").await;
    let _op = s.operator(&[("FERRY_RESYNC_INTERVAL", "2s")]);
    s.apply(&s.manifest("d", json!({}))).await;
    let obj = s.wait_phase("d", Phase::Succeeded, CONVERGE).await;
    let role_name = status(&obj)
        .role
        .expect("role")
        .arn
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let policy = Scenario::member_policy(&obj);
    // Someone trims the inline policy, re-enables ACLs and removes Ferry's statements.
    s.a.iam()
        .put_role_policy()
        .role_name(&role_name)
        .policy_name(&policy)
        .policy_document(json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}).to_string())
        .send()
        .await
        .expect("drift the inline policy");
    s.b.set_ownership(&s.dst_region, &s.dst, "ObjectWriter").await;
    s.b.put_bucket_policy(&s.dst_region, &s.dst, &json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "Theirs", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket", "Resource": format!("arn:aws:s3:::{}", s.dst)}]}).to_string()).await;
    let (a, b) = (s.a.clone(), s.b.clone());
    let (role, region, dst) = (role_name.clone(), s.dst_region.clone(), s.dst.clone());
    wait_for("Ferry to put everything back", CONVERGE, || {
        let (a, b, role, region, dst) = (a.clone(), b.clone(), role.clone(), region.clone(), dst.clone());
        let policy = policy.clone();
        async move {
            let inline = a
                .iam()
                .get_role_policy()
                .role_name(&role)
                .policy_name(&policy)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let doc = percent_encoding::percent_decode_str(inline.policy_document())
                .decode_utf8()
                .map_err(|e| e.to_string())?
                .to_string();
            let statements = parse(&doc)["Statement"].as_array().map(Vec::len).unwrap_or(0);
            let ownership = b.ownership(&region, &dst).await;
            let policy = parse(&b.bucket_policy(&region, &dst).await.unwrap_or_else(|| "{}".into()));
            let sids: Vec<String> = policy["Statement"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["Sid"].as_str().map(str::to_string))
                .collect();
            if statements == 4 && ownership == "BucketOwnerEnforced" && sids.len() == 3 && sids[0] == "Theirs" {
                Ok(())
            } else {
                Err(format!(
                    "inline statements {statements}, ownership {ownership}, sids {sids:?}"
                ))
            }
        }
    })
    .await;
    let reasons: Vec<String> = s.events("d").await.into_iter().map(|e| e.1).collect();
    assert!(reasons.iter().any(|r| r == "RolePolicyRestored"), "{reasons:?}");
}

#[tokio::test]
async fn a_failed_execution_is_reported_with_datasync_error() {
    let s = Scenario::new("fail", "us-east-1", "us-east-1").await;
    // An existing role DataSync can assume and that may list the buckets (so AWS creates the
    // locations) but may not read objects: the execution fails as AWS's would.
    let arn = list_only_role(&s, "list-only").await;
    let _op = s.operator(&[]);
    s.apply(&s.manifest("f", json!({"dataSyncRole": {"arn": arn}}))).await;
    let obj = s.wait_phase("f", Phase::Failed, CONVERGE).await;
    let st = status(&obj);
    let exec = st.execution.clone().expect("execution");
    assert_eq!(exec.status, "ERROR");
    assert!(exec.error_code.is_some() && exec.error_detail.is_some(), "{exec:?}");
    let stalled = condition(&st, "Stalled");
    assert_eq!(stalled.reason, "ExecutionFailed");
    assert!(stalled.message.contains(exec.error_code.as_deref().unwrap_or("?")));
    assert_eq!(condition(&st, "ExecutionSucceeded").status, "False");
    let warnings: Vec<_> = s.events("f").await.into_iter().filter(|e| e.0 == "Warning").collect();
    assert!(warnings.iter().any(|e| e.1 == "ExecutionFailed"), "{warnings:?}");
}

#[tokio::test]
async fn schedule_and_suspend_reach_the_task() {
    let s = Scenario::new("sched", "us-east-1", "us-east-1").await;
    let _op = s.operator(&[]);
    s.apply(&s.manifest("s", json!({"schedule": "rate(12 hours)", "run": "Manual"})))
        .await;
    let obj = s.wait_phase("s", Phase::Ready, CONVERGE).await;
    let task = status(&obj).task_arn.expect("task");
    let ds = s.a.datasync(&s.dst_region);
    let described = ds.describe_task().task_arn(&task).send().await.expect("task");
    let schedule = described.schedule().expect("schedule");
    assert_eq!(schedule.schedule_expression(), "rate(12 hours)");
    assert_eq!(schedule.status().map(|s| s.as_str()), Some("ENABLED"));

    s.patch_spec("s", json!({"suspend": true})).await;
    s.wait_phase("s", Phase::Suspended, CONVERGE).await;
    let described = ds.describe_task().task_arn(&task).send().await.expect("task");
    assert_eq!(
        described.schedule().and_then(|s| s.status()).map(|s| s.as_str()),
        Some("DISABLED")
    );
}

#[tokio::test]
async fn source_role_arn_is_assumed_and_assumed_credentials_are_cached() {
    let s = Scenario::new("srcrole", "us-east-1", "us-east-1").await;
    // The operator runs as a platform account and reaches Account A through source.roleArn.
    let platform = common::aws::account(s.env, &common::aws::random_account_id(), "/", "ferry-platform").await;
    let _op = s
        .env
        .operator(&s.ns, &platform.creds, &[("FERRY_RESYNC_INTERVAL", "1s")]);
    s.apply(&s.manifest("r", json!({"source": {"roleArn": s.a.role_arn}})))
        .await;
    let obj = s.wait_phase("r", Phase::Succeeded, CONVERGE).await;
    let st = status(&obj);
    assert!(
        st.role.expect("role").arn.contains(&format!(":{}:", s.a.id)),
        "the role is in Account A"
    );
    assert!(
        platform
            .roles()
            .await
            .iter()
            .all(|r| !r.starts_with("ferry-") || r == "ferry-platform")
    );
    assert_eq!(
        st.destination.and_then(|d| d.creator_arn).as_deref(),
        Some(s.a.role_arn.as_str())
    );
    assert_eq!(s.a.tasks(&s.dst_region).await.len(), 1, "the task is Account A's");

    // Many reconciles later (drift checks every second), each role was assumed once.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let by_platform = calls(s.env, &format!("account={}&operation=AssumeRole", platform.id));
    assert_eq!(by_platform.len(), 1, "source.roleArn assumed once: {by_platform:?}");
    let by_a = calls(s.env, &format!("account={}&operation=AssumeRole", s.a.id));
    assert_eq!(by_a.len(), 1, "Account B's role assumed once: {by_a:?}");
}

#[tokio::test]
async fn deleting_during_a_transfer_cancels_it_and_cleans_up() {
    let s = Scenario::new("mid", "us-east-1", "us-east-1").await;
    let _op = s.operator(&[]);
    s.apply(&s.manifest("m", json!({}))).await;
    let api = s.api();
    // Delete as soon as DataSync is working (the execution lasts about two seconds here).
    wait_for("an execution to start", CONVERGE, || {
        let api = api.clone();
        async move {
            let obj = api.get("m").await.map_err(|e| e.to_string())?;
            match obj.status.and_then(|st| st.execution) {
                Some(e) => Ok(e),
                None => Err("no execution yet".into()),
            }
        }
    })
    .await;
    s.delete_and_wait("m", CONVERGE).await;
    assert!(s.a.tasks(&s.dst_region).await.is_empty());
    assert!(s.a.locations(&s.src_region).await.is_empty());
    assert_eq!(s.a.roles().await, vec!["ferry-operator".to_string()]);
    assert_eq!(s.b.bucket_policy(&s.dst_region, &s.dst).await, None);
}

#[tokio::test]
async fn moving_to_another_destination_bucket_releases_the_old_one() {
    let s = Scenario::new("moveb", "us-east-1", "us-east-1").await;
    s.b.set_ownership(&s.dst_region, &s.dst, "ObjectWriter").await;
    let second = format!("{}-2", s.dst);
    s.b.bucket(&s.dst_region, &second).await;
    let theirs = json!({"Version": "2012-10-17", "Statement": [{"Sid": "Theirs", "Effect": "Deny",
        "Principal": "*", "Action": "s3:DeleteBucket", "Resource": format!("arn:aws:s3:::{second}")}]});
    s.b.put_bucket_policy(&s.dst_region, &second, &theirs.to_string()).await;
    let _op = s.operator(&[]);
    s.apply(&s.manifest("mv", json!({}))).await;
    s.wait_phase("mv", Phase::Succeeded, CONVERGE).await;

    s.patch_spec("mv", json!({"destination": {"bucket": second}})).await;
    let obj = s.wait_phase("mv", Phase::Succeeded, CONVERGE).await;
    // The old bucket is as Ferry found it; the new one has its own statement and Ferry's.
    assert_eq!(s.b.bucket_policy(&s.dst_region, &s.dst).await, None);
    assert_eq!(s.b.ownership(&s.dst_region, &s.dst).await, "ObjectWriter");
    let policy = parse(&s.b.bucket_policy(&s.dst_region, &second).await.expect("policy"));
    let statements = policy["Statement"].as_array().expect("statements");
    assert_eq!(statements.len(), 3);
    assert_eq!(statements[0], theirs["Statement"][0]);
    let st = status(&obj);
    assert_eq!(st.destination.and_then(|d| d.bucket).as_deref(), Some(second.as_str()));
    assert!(st.retired.is_empty(), "{:?}", st.retired);
    assert_eq!(
        s.a.locations(&s.dst_region).await.len(),
        2,
        "source and the new destination"
    );
    assert_eq!(s.b.keys(&s.dst_region, &second, "archive/").await.len(), 2);
}

/// A role DataSync can assume and that may list the buckets but not read objects: AWS creates
/// the locations, every copy fails.
async fn list_only_role(s: &Scenario, name: &str) -> String {
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "datasync.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let arn =
        s.a.iam()
            .create_role()
            .role_name(name)
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .expect("role")
            .role
            .expect("role")
            .arn;
    let list_only = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": ["s3:ListBucket", "s3:GetBucketLocation"], "Resource": "*"}]});
    s.a.iam()
        .put_role_policy()
        .role_name(name)
        .policy_name("list")
        .policy_document(list_only.to_string())
        .send()
        .await
        .expect("role policy");
    arn
}

#[tokio::test]
async fn a_schedule_datasync_disabled_stays_disabled_until_a_run_is_asked_for() {
    let s = Scenario::new("sdis", "us-east-1", "us-east-1").await;
    let arn = list_only_role(&s, "sched-list-only").await;
    let _op = s.operator(&[]);
    s.apply(&s.manifest(
        "d",
        json!({"dataSyncRole": {"arn": arn}, "schedule": "rate(1 day)", "run": "Manual"}),
    ))
    .await;
    let obj = s.wait_phase("d", Phase::Ready, CONVERGE).await;
    let task = status(&obj).task_arn.expect("task");
    let ds = s.a.datasync(&s.dst_region);
    let schedule_status = |ds: aws_sdk_datasync::Client, task: String| async move {
        let out = ds.describe_task().task_arn(task).send().await.expect("task");
        let by = out
            .schedule_details()
            .and_then(|d| d.disabled_by())
            .map(|b| b.as_str().to_string());
        let status = out.schedule().and_then(|s| s.status()).map(|s| s.as_str().to_string());
        (status, by)
    };

    // Three failed runs in a row with the same error: DataSync disables the schedule itself
    // (the emulator's scheduleDisableAfterFailures is 3).
    for run in ["1", "2", "3"] {
        s.annotate("d", "ferry.dev/run", run).await;
        wait_for(&format!("run {run} to fail"), CONVERGE, || {
            let s = &s;
            async move {
                let st = s.status("d").await?;
                let done = st.last_run.as_ref().and_then(|l| l.token.as_deref()) == Some(run)
                    && st.execution.as_ref().is_some_and(|e| e.status == "ERROR");
                if done {
                    Ok(())
                } else {
                    Err(format!("{:?}", st.execution.map(|e| e.status)))
                }
            }
        })
        .await;
    }
    let kept = wait_for("Ferry to report the schedule DataSync disabled", CONVERGE, || {
        let s = &s;
        async move {
            let st = s.status("d").await?;
            let sched = st.schedule.clone().ok_or("no schedule in the status")?;
            if sched.disabled_by.as_deref() == Some("SERVICE") {
                Ok(st)
            } else {
                Err(format!("{sched:?}"))
            }
        }
    })
    .await;
    assert_eq!(condition(&kept, "TaskReady").reason, "ScheduleDisabledByDataSync");
    assert!(kept.schedule.as_ref().and_then(|s| s.disabled_reason.clone()).is_some());
    let warnings: Vec<_> = s.events("d").await.into_iter().filter(|e| e.0 == "Warning").collect();
    assert!(
        warnings.iter().any(|e| e.1 == "ScheduleDisabledByDataSync"),
        "{warnings:?}"
    );

    // A reconcile that changes nothing (an unrelated annotation) leaves it disabled.
    s.annotate("d", "example.com/touch", "1").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        schedule_status(ds.clone(), task.clone()).await,
        (Some("DISABLED".into()), Some("SERVICE".into())),
        "the drift check must not undo DataSync's decision"
    );

    // Asking for a run enables it again.
    s.annotate("d", "ferry.dev/run", "4").await;
    wait_for("the schedule to be enabled again", CONVERGE, || {
        let (ds, task) = (ds.clone(), task.clone());
        async move {
            let (status, _) = schedule_status(ds, task).await;
            if status.as_deref() == Some("ENABLED") {
                Ok(())
            } else {
                Err(format!("{status:?}"))
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_permissions_boundary_caps_every_role_ferry_creates() {
    let s = Scenario::new("bnd", "us-east-1", "us-east-1").await;
    let iam = s.a.iam();
    let allow = |buckets: &[&str]| {
        let resources: Vec<String> = buckets
            .iter()
            .flat_map(|b| [format!("arn:aws:s3:::{b}"), format!("arn:aws:s3:::{b}/*")])
            .collect();
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": resources}]})
            .to_string()
    };
    // The platform team's boundary first allows the source bucket only.
    let boundary = iam
        .create_policy()
        .policy_name("ferry-datasync-boundary")
        .policy_document(allow(&[&s.src]))
        .send()
        .await
        .expect("boundary policy")
        .policy
        .and_then(|p| p.arn)
        .expect("policy ARN");
    let _op = s.operator(&[
        ("FERRY_ROLE_PERMISSIONS_BOUNDARY", boundary.as_str()),
        ("FERRY_PROPAGATION_WINDOW", "0s"),
        ("FERRY_STALLED_RETRY", "2s"),
        ("FERRY_RESYNC_INTERVAL", "3s"),
    ]);
    s.apply(&s.manifest("b", json!({}))).await;

    // Refused: the inline policy grants the destination, the boundary does not.
    let obj = s.wait_phase("b", Phase::Failed, CONVERGE).await;
    let stalled = condition(&status(&obj), "Stalled").clone();
    assert_eq!(stalled.reason, "AccessDenied", "{stalled:?}");
    assert!(stalled.message.contains(&s.dst), "{}", stalled.message);
    let role_name = s.pool().role_name(0);
    let boundary_of_role = || async {
        let role = iam.get_role().role_name(&role_name).send().await.expect("role").role;
        role.and_then(|r| r.permissions_boundary)
            .and_then(|b| b.permissions_boundary_arn)
    };
    assert_eq!(
        boundary_of_role().await,
        Some(boundary.clone()),
        "created with the boundary"
    );
    assert!(s.destination_keys().await.is_empty(), "nothing reached the destination");

    // Accepted: once the boundary allows the destination too, the same role copies.
    iam.create_policy_version()
        .policy_arn(&boundary)
        .policy_document(allow(&[&s.src, &s.dst]))
        .set_as_default(true)
        .send()
        .await
        .expect("boundary widened");
    s.wait_recovery("b", Phase::Succeeded, CONVERGE).await;
    assert_eq!(s.destination_keys().await.len(), 2);

    // A boundary taken off the role is put back at the next drift check.
    iam.delete_role_permissions_boundary()
        .role_name(&role_name)
        .send()
        .await
        .expect("boundary removed");
    // The event is published once the boundary is back (an earlier look at the role may find it
    // back before the event exists).
    wait_for("the boundary to be put back", CONVERGE, || async {
        let reasons: Vec<String> = s.events("b").await.into_iter().map(|e| e.1).collect();
        if reasons.iter().any(|r| r == "RoleBoundaryRestored") {
            Ok(())
        } else {
            Err(format!("{reasons:?}"))
        }
    })
    .await;
    assert_eq!(boundary_of_role().await, Some(boundary.clone()), "put back");
}
