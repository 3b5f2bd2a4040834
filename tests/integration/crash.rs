//! Crash safety: the operator is aborted right after each AWS create (the process dies
//! before it can write the new ARN to the status), then restarted; and each DataSync create is
//! answered only after the operator's call timed out, though AWS did the work. Nothing may be
//! created twice: exactly one role, one location per side, one task and one execution, and the
//! transfer converges.

use crate::common;

use std::time::Duration;

use common::aws::{calls, fault};
use common::scenario::Scenario;
use ferry::api::{CrossAccountTransferStatus, Phase};
use serde_json::json;

async fn crash_after(operation: &str) {
    let s = Scenario::new("crash", "us-east-1", "us-west-2").await;
    s.apply(&s.manifest("c", json!({}))).await;

    let _restarted = s.crash_and_restart(&s.a.creds, operation);
    let obj = s.wait_phase("c", Phase::Succeeded, Duration::from_secs(120)).await;
    exactly_once(&s, "c", &obj.status.expect("status")).await;
}

/// The first `operation` call is answered 4 s after it came, when the operator (2 s read
/// timeout) has given up on it; AWS made the resource or started the run all the same. Before
/// Ferry sent its DataSync creates once, the SDK's retry made a second one. `sent`: how many
/// `operation` calls a transfer makes when each is sent once.
async fn answered_late(operation: &str, sent: usize) {
    let s = Scenario::new("late", "us-east-1", "us-west-2").await;
    let late = fault(
        s.env,
        json!({"service": "datasync", "operation": operation, "kind": "slow", "delaySeconds": 4,
               "account": s.a.id, "count": 1}),
    );
    let _op = s.operator(&[("FERRY_AWS_READ_TIMEOUT", "2s")]);
    s.apply(&s.manifest("l", json!({}))).await;
    let obj = s.wait_phase("l", Phase::Succeeded, Duration::from_secs(120)).await;
    // A rule with a count is gone once used up: the late answer was given.
    assert_eq!(late.fired(), 0, "the late answer was given");
    assert_eq!(
        calls(s.env, &format!("account={}&operation={operation}", s.a.id)).len(),
        sent,
        "each {operation} sent once: the one answered late was found, not sent again"
    );
    exactly_once(&s, "l", &obj.status.expect("status")).await;
}

/// Exactly one of everything Ferry makes for transfer `name`, and the copy done.
async fn exactly_once(s: &Scenario, name: &str, status: &CrossAccountTransferStatus) {
    let ferry_roles: Vec<String> =
        s.a.roles()
            .await
            .into_iter()
            .filter(|r| r != "ferry-operator")
            .collect();
    assert_eq!(ferry_roles, vec![s.pool().role_name(0)], "exactly one DataSync role");
    let obj = s.api().get(name).await.expect("the transfer");
    let policies =
        s.a.iam()
            .list_role_policies()
            .role_name(s.pool().role_name(0))
            .send()
            .await
            .expect("the role's policies")
            .policy_names;
    assert_eq!(
        policies,
        vec![Scenario::member_policy(&obj)],
        "exactly one inline policy, the transfer's"
    );
    assert_eq!(
        s.a.locations(&s.src_region).await,
        vec![status.source_location_arn.clone().expect("source")],
        "exactly one source location"
    );
    assert_eq!(
        s.a.locations(&s.dst_region).await,
        vec![status.destination_location_arn.clone().expect("destination")],
        "exactly one destination location"
    );
    let task = status.task_arn.clone().expect("task");
    assert_eq!(s.a.tasks(&s.dst_region).await, vec![task.clone()], "exactly one task");
    assert_eq!(s.a.executions(&s.dst_region, &task).await, 1, "exactly one execution");
    let policy: serde_json::Value =
        serde_json::from_str(&s.b.bucket_policy(&s.dst_region, &s.dst).await.expect("policy")).expect("json");
    assert_eq!(
        policy["Statement"].as_array().map(Vec::len),
        Some(2),
        "Ferry's two statements, once"
    );
    assert_eq!(s.destination_keys().await.len(), 2);
}

crash_tests! {
    crash_after:
    after_create_role => "CreateRole",
    after_put_role_policy => "PutRolePolicy",
    after_disabling_acls => "PutBucketOwnershipControls",
    after_put_bucket_policy => "PutBucketPolicy",
    after_create_source_location => "CreateLocationS3#1",
    after_create_destination_location => "CreateLocationS3#2",
    after_create_task => "CreateTask",
    after_start_execution => "StartTaskExecution",
}

macro_rules! late_answer_tests {
    ($($name:ident => $operation:literal, $sent:literal);+ $(;)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                answered_late($operation, $sent).await;
            }
        )+
    };
}

late_answer_tests! {
    a_late_answer_to_create_location_creates_no_second_location => "CreateLocationS3", 2;
    a_late_answer_to_create_task_creates_no_second_task => "CreateTask", 1;
    a_late_answer_to_start_execution_starts_no_second_execution => "StartTaskExecution", 1;
}
