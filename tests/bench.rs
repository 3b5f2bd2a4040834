//! Benchmarks (run by `make bench`, never by `make test`): how long transfers take to
//! converge through the real operator, what an idle transfer costs in AWS calls, and how much
//! memory the operator uses for many transfers. Prints a Markdown table.
//!
//! Timings on a shared 2-core machine are noisy: they are reported, never asserted.

mod common;

use std::time::{Duration, Instant};

use common::scenario::Scenario;
use ferry::api::Phase;
use serde_json::json;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn metric_sum(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next())
        .filter_map(|v| v.parse::<f64>().ok())
        .sum()
}

fn percentile(mut values: Vec<f64>, p: f64) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    if values.is_empty() {
        return 0.0;
    }
    let i = ((values.len() as f64 - 1.0) * p).round() as usize;
    values[i]
}

async fn converge(count: usize) -> (Vec<f64>, f64, u64, f64) {
    let s = Scenario::new("bench", "us-east-1", "us-east-1").await;
    let op = s.operator(&[("FERRY_RESYNC_INTERVAL", "2s"), ("RUST_LOG", "warn")]);
    let started = Instant::now();
    for i in 0..count {
        let prefix = format!("copy-{i}/");
        s.apply(&s.manifest(&format!("t{i}"), json!({"destination": {"prefix": prefix}})))
            .await;
    }
    // When each transfer was first seen Succeeded (polled every 200 ms).
    let api = s.api();
    let mut done: std::collections::BTreeMap<String, f64> = std::collections::BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    while done.len() < count {
        assert!(
            Instant::now() < deadline,
            "only {}/{count} transfers succeeded",
            done.len()
        );
        let list = api.list(&Default::default()).await.expect("list");
        for t in &list.items {
            if t.status.as_ref().and_then(|s| s.phase) == Some(Phase::Succeeded) {
                let name = t.metadata.name.clone().unwrap_or_default();
                done.entry(name).or_insert_with(|| started.elapsed().as_secs_f64());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let times: Vec<f64> = done.into_values().collect();
    let wall = started.elapsed().as_secs_f64();
    // Idle cost: AWS calls per reconcile while nothing changes (drift checks every 2 s).
    let pid = op.pid();
    let before = op.http("/metrics").unwrap_or_default();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = op.http("/metrics").unwrap_or_default();
    let calls = metric_sum(&after, "ferry_aws_calls_total") - metric_sum(&before, "ferry_aws_calls_total");
    let reconciles = metric_sum(&after, "ferry_reconciles_total") - metric_sum(&before, "ferry_reconciles_total");
    let per_reconcile = if reconciles > 0.0 { calls / reconciles } else { 0.0 };
    (times, wall, rss_kib(pid), per_reconcile)
}

#[tokio::test]
#[ignore = "benchmark: run with `make bench`"]
async fn bench_convergence_and_footprint() {
    let mut rows = Vec::new();
    for count in [1_usize, 10, 40] {
        let (times, wall, rss, per_reconcile) = converge(count).await;
        rows.push(format!(
            "| {count} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.1} |",
            percentile(times.clone(), 0.5),
            percentile(times.clone(), 0.95),
            wall,
            count as f64 / wall * 60.0,
            rss / 1024,
            per_reconcile
        ));
    }
    println!(
        "| transfers applied at once | p50 to Succeeded (s) | p95 (s) | all done (s) | transfers/min | operator RSS (MiB) | AWS calls per idle reconcile |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for r in rows {
        println!("{r}");
    }
}
