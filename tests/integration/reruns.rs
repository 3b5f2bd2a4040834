//! Failed-only runs (`ferry.dev/run: failed:<anything>`): the objects the last run's task report
//! lists as failed, and only those, copied again through a DataSync manifest Ferry writes into
//! the report bucket — against the emulator's manifest rules (the role's read of the manifest,
//! no filters with a manifest, only listed objects transferred and counted).

use crate::common;

use std::time::Duration;

use common::scenario::Scenario;
use ferry::api::{CrossAccountTransfer, CrossAccountTransferStatus, Phase};
use serde_json::json;

const CONVERGE: Duration = Duration::from_secs(120);

fn status(obj: &CrossAccountTransfer) -> CrossAccountTransferStatus {
    obj.status.clone().expect("status")
}

/// A report bucket of Account A for the scenario; its name.
async fn report_bucket(s: &Scenario) -> String {
    let reports = format!("{}-reports", s.src);
    s.a.bucket(&s.src_region, &reports).await;
    reports
}

/// A source object the DataSync role may not read (encrypted with a key the transfer does not
/// name), so a run fails that object alone.
async fn locked_object(s: &Scenario, key: &str) {
    let other_key = s.a.kms_key(&s.src_region).await;
    put(s, key, b"secret", Some(&other_key)).await;
}

async fn put(s: &Scenario, key: &str, body: &'static [u8], kms_key: Option<&str>) {
    s.a.s3(&s.src_region)
        .put_object()
        .bucket(&s.src)
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(body))
        .set_server_side_encryption(kms_key.map(|_| aws_sdk_s3::types::ServerSideEncryption::AwsKms))
        .set_ssekms_key_id(kms_key.map(str::to_string))
        .send()
        .await
        .expect("put a source object");
}

#[tokio::test]
async fn a_failed_only_run_copies_exactly_the_objects_the_report_listed_as_failed() {
    let s = Scenario::new("rerun", "us-east-1", "us-east-1").await;
    let reports = report_bucket(&s).await;
    // A key with what a CSV field must quote (a comma, quotes) and more than ASCII.
    const LOCKED: &str = "media/dir one/locked, \"q\" \u{e9}.bin";
    locked_object(&s, LOCKED).await;
    let _op = s.operator(&[]);
    s.apply(&s.manifest(
        "r",
        json!({"task": {"excludes": [], "report": {"bucket": reports, "prefix": "reports/"}}}),
    ))
    .await;
    let obj = s.wait_phase("r", Phase::Failed, CONVERGE).await;
    let first = status(&obj).execution.expect("the first execution");
    assert_eq!(first.report.as_ref().map(|r| r.failed), Some(1), "{first:?}");
    let task = status(&obj).task_arn.expect("task");
    let copied_before = s.destination_keys().await;
    assert!(copied_before.contains_key("archive/a.jpg"), "{copied_before:?}");
    assert!(!copied_before.contains_key(&LOCKED.replacen("media/", "archive/", 1)));

    // Fixed at the source (written again without that key), and a new object the failed run
    // never saw: a failed-only run copies the first and not the second.
    put(&s, LOCKED, b"secret", None).await;
    put(&s, "media/new.txt", b"new", None).await;
    s.annotate("r", "ferry.dev/run", "failed:1").await;
    let obj = s.wait_recovery("r", Phase::Succeeded, CONVERGE).await;
    let st = status(&obj);
    let run = st
        .last_run
        .clone()
        .and_then(|r| r.failed_only)
        .expect("status.lastRun.failedOnly");
    assert_eq!(run.of_execution, first.arn);
    assert_eq!(run.objects, 1, "{run:?}");
    let manifest = run.manifest.clone().expect("the manifest");
    let key = manifest
        .strip_prefix(&format!("s3://{reports}/"))
        .expect("the manifest is in the report bucket");
    assert!(key.starts_with("reports/ferry-manifests/"), "{key}");
    let body =
        s.a.s3(&s.src_region)
            .get_object()
            .bucket(&reports)
            .key(key)
            .send()
            .await
            .expect("read the manifest")
            .body
            .collect()
            .await
            .expect("manifest body")
            .into_bytes();
    assert_eq!(
        String::from_utf8_lossy(&body),
        "\"dir one/locked, \"\"q\"\" \u{e9}.bin\"\n"
    );

    let second = st.execution.expect("the failed-only execution");
    assert_ne!(second.arn, first.arn);
    assert_eq!(
        (second.estimated_files, second.files_transferred),
        (Some(1), 1),
        "{second:?}"
    );
    assert_eq!(second.report.as_ref().map(|r| (r.transferred, r.failed)), Some((1, 0)));
    let copied = s.destination_keys().await;
    assert!(
        copied.contains_key(&LOCKED.replacen("media/", "archive/", 1)),
        "{copied:?}"
    );
    assert!(
        !copied.contains_key("archive/new.txt"),
        "a failed-only run copies only the listed objects"
    );
    assert_eq!(
        s.a.executions(&s.dst_region, &task).await,
        2,
        "one execution per run request"
    );
    let started: Vec<_> = s
        .events("r")
        .await
        .into_iter()
        .filter(|e| e.1 == "ExecutionStarted" && e.2.contains("for the 1 objects"))
        .collect();
    assert_eq!(started.len(), 1, "{started:?}");

    // A full run afterwards copies the rest.
    s.annotate("r", "ferry.dev/run", "full-1").await;
    s.wait_recovery("r", Phase::Succeeded, CONVERGE).await;
    assert!(s.destination_keys().await.contains_key("archive/new.txt"));
    s.delete_and_wait("r", CONVERGE).await;
}

/// The operator dies right after DataSync started the failed-only execution, before the status
/// recorded it: the restarted one adopts that execution by its run tag (no second start) and
/// reads back from its `ferry.dev/failed-only` tag what it covers.
#[tokio::test]
async fn a_failed_only_run_started_just_before_a_crash_is_adopted_with_what_it_covers() {
    let s = Scenario::new("rercrash", "us-east-1", "us-east-1").await;
    let reports = report_bucket(&s).await;
    locked_object(&s, "media/locked.bin").await;
    let first_operator = s.operator(&[]);
    s.apply(&s.manifest("c", json!({"task": {"excludes": [], "report": {"bucket": reports}}})))
        .await;
    let obj = s.wait_phase("c", Phase::Failed, CONVERGE).await;
    let first = status(&obj).execution.expect("the first execution").arn;
    let task = status(&obj).task_arn.expect("task");
    drop(first_operator);

    put(&s, "media/locked.bin", b"secret", None).await;
    s.annotate("c", "ferry.dev/run", "failed:1").await;
    let _restarted = s.crash_and_restart(&s.a.creds, "StartTaskExecution");
    let obj = s.wait_recovery("c", Phase::Succeeded, CONVERGE).await;
    let st = status(&obj);
    let run = st
        .last_run
        .and_then(|r| r.failed_only)
        .expect("failedOnly after adoption");
    assert_eq!((run.of_execution, run.objects), (first, 1));
    assert!(
        run.manifest
            .is_some_and(|m| m.starts_with(&format!("s3://{reports}/ferry-manifests/")))
    );
    assert_eq!(
        s.a.executions(&s.dst_region, &task).await,
        2,
        "the failed-only run was started once"
    );
    assert!(s.events("c").await.iter().any(|e| e.1 == "ExecutionAdopted"));
    assert!(s.destination_keys().await.contains_key("archive/locked.bin"));
}

#[tokio::test]
async fn a_failed_only_request_after_a_clean_run_starts_nothing() {
    let s = Scenario::new("rernone", "us-east-1", "us-east-1").await;
    let reports = report_bucket(&s).await;
    let _op = s.operator(&[]);
    s.apply(&s.manifest("n", json!({"task": {"excludes": [], "report": {"bucket": reports}}})))
        .await;
    let obj = s.wait_phase("n", Phase::Succeeded, CONVERGE).await;
    let first = status(&obj).execution.expect("execution").arn;
    let task = status(&obj).task_arn.expect("task");
    s.annotate("n", "ferry.dev/run", "failed:again").await;
    let obj = s.wait_phase("n", Phase::Succeeded, CONVERGE).await;
    let st = status(&obj);
    let run = st.last_run.and_then(|r| r.failed_only).expect("failedOnly");
    assert_eq!((run.objects, run.manifest, run.of_execution), (0, None, first.clone()));
    assert_eq!(st.execution.map(|e| e.arn), Some(first));
    assert_eq!(s.a.executions(&s.dst_region, &task).await, 1);
    assert!(s.events("n").await.iter().any(|e| e.1 == "NothingToRunAgain"));
}

#[tokio::test]
async fn a_failed_only_request_without_a_report_is_refused_with_the_fix() {
    let s = Scenario::new("rernorep", "us-east-1", "us-east-1").await;
    let _op = s.operator(&[]);
    s.apply(&s.manifest("f", json!({}))).await;
    let obj = s.wait_phase("f", Phase::Succeeded, CONVERGE).await;
    let task = status(&obj).task_arn.expect("task");
    s.annotate("f", "ferry.dev/run", "failed:1").await;
    let obj = s.wait_phase("f", Phase::Failed, CONVERGE).await;
    let stalled = status(&obj)
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Stalled")
        .expect("Stalled");
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "InvalidSpec")
    );
    assert!(
        stalled.message.contains("spec.task.report") && stalled.message.contains("failed:"),
        "{}",
        stalled.message
    );
    assert_eq!(s.a.executions(&s.dst_region, &task).await, 1);
    // A full run request still works.
    s.annotate("f", "ferry.dev/run", "full").await;
    s.wait_recovery("f", Phase::Succeeded, CONVERGE).await;
    assert_eq!(s.a.executions(&s.dst_region, &task).await, 2);
}

/// A pull's failed-only run: the report and the manifest are in the destination account (the
/// one that runs the copy), which its DataSync role reads and writes with its own policy alone;
/// the fixed object comes again from the source account.
#[tokio::test]
async fn a_pulls_failed_only_run_writes_its_manifest_in_the_destination_account() {
    // Two Regions: the report bucket is in the destination's, where the copy runs.
    let s = Scenario::new("repull", "us-east-1", "us-west-2").await;
    let reports = format!("{}-reports", s.dst);
    s.b.bucket(&s.dst_region, &reports).await;
    locked_object(&s, "media/locked.bin").await;
    let _op = s.pull_operator(&[]);
    let spec = json!({"task": {"excludes": [], "report": {"bucket": reports, "prefix": "reports/"}}});
    s.apply(&s.pull_manifest("p", spec)).await;
    let obj = s.wait_phase("p", Phase::Failed, CONVERGE).await;
    let first = status(&obj).execution.expect("the first execution");
    assert_eq!(first.report.as_ref().map(|r| r.failed), Some(1), "{first:?}");

    put(&s, "media/locked.bin", b"secret", None).await;
    s.annotate("p", "ferry.dev/run", "failed:1").await;
    let obj = s.wait_recovery("p", Phase::Succeeded, CONVERGE).await;
    let st = status(&obj);
    let run = st
        .last_run
        .and_then(|r| r.failed_only)
        .expect("status.lastRun.failedOnly");
    assert_eq!((run.of_execution.as_str(), run.objects), (first.arn.as_str(), 1));
    let manifest = run.manifest.expect("the manifest");
    let key = manifest
        .strip_prefix(&format!("s3://{reports}/"))
        .expect("in the report bucket");
    assert_eq!(s.b.keys(&s.dst_region, &reports, key).await.len(), 1, "{key}");
    let second = st.execution.expect("the failed-only execution");
    assert_eq!(
        (second.estimated_files, second.files_transferred),
        (Some(1), 1),
        "{second:?}"
    );
    assert!(s.destination_keys().await.contains_key("archive/locked.bin"));
    assert_eq!(s.b.executions(&s.dst_region, &st.task_arn.expect("task")).await, 2);
}
