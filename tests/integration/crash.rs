//! Crash safety: the operator is aborted right after each AWS create (the process dies
//! before it can write the new ARN to the status), then restarted. Nothing may be created
//! twice: exactly one role, one location per side, one task and one execution, and the
//! transfer converges.

use crate::common;

use std::time::Duration;

use common::scenario::Scenario;
use ferry::api::Phase;
use serde_json::json;

async fn crash_after(operation: &str) {
    let s = Scenario::new("crash", "us-east-1", "us-west-2").await;
    s.apply(&s.manifest("c", json!({}))).await;

    let mut crashing = s.operator(&[("FERRY_TEST_ABORT_AFTER", operation)]);
    let exit = crashing.wait_exit(Duration::from_secs(90));
    assert!(
        !exit.success(),
        "the operator was meant to abort after {operation}: {exit:?}"
    );
    assert!(
        crashing.log_text().contains("aborting right after"),
        "it aborted for another reason: {}",
        crashing.log_text()
    );

    let _restarted = s.operator(&[]);
    let obj = s.wait_phase("c", Phase::Succeeded, Duration::from_secs(120)).await;
    let status = obj.status.expect("status");

    let ferry_roles: Vec<String> =
        s.a.roles()
            .await
            .into_iter()
            .filter(|r| r != "ferry-operator")
            .collect();
    assert_eq!(
        ferry_roles,
        vec![format!("ferry-{}-c", s.ns)],
        "exactly one DataSync role"
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
    let executions =
        s.a.datasync(&s.dst_region)
            .list_task_executions()
            .task_arn(&task)
            .send()
            .await
            .expect("executions");
    assert_eq!(executions.task_executions().len(), 1, "exactly one execution");
    let policy: serde_json::Value =
        serde_json::from_str(&s.b.bucket_policy(&s.dst_region, &s.dst).await.expect("policy")).expect("json");
    assert_eq!(
        policy["Statement"].as_array().map(Vec::len),
        Some(2),
        "Ferry's two statements, once"
    );
    assert_eq!(s.destination_keys().await.len(), 2);
}

macro_rules! crash_tests {
    ($($name:ident => $operation:literal),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                crash_after($operation).await;
            }
        )+
    };
}

crash_tests! {
    after_create_role => "CreateRole",
    after_put_role_policy => "PutRolePolicy",
    after_disabling_acls => "PutBucketOwnershipControls",
    after_put_bucket_policy => "PutBucketPolicy",
    after_create_source_location => "CreateLocationS3#1",
    after_create_destination_location => "CreateLocationS3#2",
    after_create_task => "CreateTask",
    after_start_execution => "StartTaskExecution",
}
