//! The real `ferry run` against the real API server and the AWS emulator.

mod common;

use std::time::Duration;

use common::scenario::Scenario;
use ferry::api::Phase;
use serde_json::json;

const CONVERGE: Duration = Duration::from_secs(120);

#[tokio::test]
async fn same_region_transfer_succeeds_and_counts_match() {
    let s = Scenario::new("same", "us-east-1", "us-east-1").await;
    let _op = s.operator(&[]);
    s.apply(&s.manifest("copy", json!({}))).await;
    let obj = s.wait_phase("copy", Phase::Succeeded, CONVERGE).await;
    let keys = s.destination_keys().await;
    let expected: Vec<(String, i64)> = vec![("archive/a.jpg".into(), 4), ("archive/b/c.png".into(), 6)];
    assert_eq!(keys.into_iter().collect::<Vec<_>>(), expected);
    let status = obj.status.expect("status");
    let exec = status.execution.expect("execution");
    assert_eq!(exec.status, "SUCCESS");
    assert_eq!(exec.files_transferred, 2);
    assert_eq!(exec.bytes_transferred, 10);
    assert_eq!(exec.percent_done, 100);
    assert_eq!(status.progress.as_deref(), Some("100%"));
    assert!(status.role.expect("role").arn.ends_with(&format!("role/ferry-{}-copy", s.ns)));
}
