//! Benchmarks (run by `make bench`, never by `make test`): fleets of transfers through the real
//! operator, side by side, one fresh operator process and one namespace per scenario:
//!
//! - (a) 1 transfer, (b) 100 transfers and (c) 1,000 transfers, each into its own destination
//!   bucket (all made in Account B before the first apply);
//! - (d) 100 transfers into one destination bucket (one prefix each);
//! - (e) 1,000 transfers, a bucket each, and (f) 1,000 transfers into one bucket, in an account
//!   at AWS's **default** quotas (100 DataSync tasks in the Region, 1,000 IAM roles): one-off
//!   transfers (`task.release: AfterSuccess`) that pass through the 100 task slots, waiting in
//!   line. The fleets (a)–(d) run at raised quotas, as the figures before quotas were measured;
//! - (g) pulls (`initiator: Destination`): Account B's operator copies from one source bucket
//!   of Account A into a bucket each, Ferry's read-only statements shared in the source policy.
//!
//! After every fleet, an AWS audit: the executions per task (exactly one each: one run request
//! per transfer), the tasks, locations and DataSync roles left, the roles per transfer, the
//! largest bucket policy, the transfers that were seen waiting at the task quota.
//!
//! For each: the time until all are Succeeded; AWS calls per transfer to converge (the
//! operator's `ferry_aws_calls_total`, cross-checked with the emulator's call log) next to the
//! recipe's minimum of 14; AWS calls per poll of a running execution; idle AWS calls and
//! reconciles per transfer per hour (one drift check observed at a short resync, scaled to the default interval); reconciles per transfer to
//! converge; the operator's peak RSS and CPU seconds. BENCHMARKS.md says how each is measured.
//!
//! `FERRY_BENCH_COUNTS="1,10,10,10,0,0,10"` runs smaller fleets (a to g; 0 skips a scenario) and
//! `FERRY_BENCH_IDLE_SECS=20` a shorter idle window, for a quick check of the harness.
//!
//! Timings on a shared 2-core machine are noisy: everything is reported, nothing asserted.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::Operator;
use common::aws::calls;
use common::scenario::Scenario;
use ferry::api::{CrossAccountTransfer, Phase};
use futures::StreamExt;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

/// AWS calls one transfer needs at the least, following the recipe: iam:CreateRole,
/// iam:PutRolePolicy, s3:GetBucketOwnershipControls + s3:PutBucketOwnershipControls,
/// s3:GetBucketPolicy + s3:PutBucketPolicy, datasync:ListLocations + CreateLocationS3 (source),
/// the same for the destination, datasync:ListTasks + CreateTask, and
/// datasync:ListTaskExecutions + StartTaskExecution.
const RECIPE_MINIMUM: usize = 14;

/// The operator's own default log filter (what runs in production), not the harness's debug one.
const OPERATOR_LOG: &str = "info,kube_runtime=warn,aws_config=warn,aws_smithy_runtime=warn";

/// Manifests applied at once (kube-apiserver and etcd share the 2 cores with everything else).
const APPLY_CONCURRENCY: usize = 16;

/// Buckets created at once in the emulator before a scenario starts.
const BUCKET_CONCURRENCY: usize = 16;

/// How often the fleet's state and the operator's metrics are sampled while it converges.
const SAMPLE_EVERY: Duration = Duration::from_millis(500);

/// How long reconciles must stay at the same count to call the operator quiet.
const QUIET_FOR: Duration = Duration::from_secs(3);

/// One scenario of the run.
#[derive(Clone, Debug)]
struct Case {
    key: char,
    transfers: usize,
    /// All transfers into one destination bucket (one prefix each) rather than one bucket each.
    shared_destination: bool,
    /// At AWS's default quotas, one-off transfers that release their task after the run.
    default_quotas: bool,
    /// Pulls: Account B runs the copies from one source bucket of Account A.
    pull: bool,
}

impl Case {
    fn label(&self) -> String {
        let (key, n) = (self.key, self.transfers);
        let quotas = if self.default_quotas {
            ", default quotas, tasks released"
        } else {
            ""
        };
        match (n, self.shared_destination) {
            _ if self.pull => format!("({key}) {n} pulls from one source bucket, a destination bucket each"),
            (1, _) => format!("({key}) 1 transfer, its own bucket{quotas}"),
            (_, true) => format!("({key}) {n} transfers, one destination bucket{quotas}"),
            (_, false) => format!("({key}) {n} transfers, a bucket each{quotas}"),
        }
    }
}

/// Operator settings a benchmark run passes through from its own environment.
const PASSED_THROUGH: [&str; 3] = [
    "FERRY_MAX_CONCURRENT_RECONCILES",
    "FERRY_POLL_RATE",
    "FERRY_AWS_RATE_LIMITS",
];

/// The scenarios, from `FERRY_BENCH_COUNTS` ("a,b,c,d,e,f,g", 0 skips one; missing ones are
/// skipped) or the defaults.
pub const DEFAULT_COUNTS: &str = "1,100,1000,100,1000,1000,100";

fn cases() -> Vec<Case> {
    let raw = std::env::var("FERRY_BENCH_COUNTS")
        .ok()
        .filter(|raw| !raw.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_COUNTS.to_string());
    let counts: Vec<usize> = raw
        .split(',')
        .map(|c| {
            c.trim()
                .parse()
                .unwrap_or_else(|_| panic!("FERRY_BENCH_COUNTS={raw}: expected counts like 1,10,10,10,0,0,10"))
        })
        .collect();
    assert!(
        (1..=7).contains(&counts.len()),
        "FERRY_BENCH_COUNTS: up to seven counts (a to g), e.g. 1,10,10,10,0,0,10"
    );
    ['a', 'b', 'c', 'd', 'e', 'f', 'g']
        .into_iter()
        .zip(counts)
        .filter(|(_, n)| *n > 0)
        .map(|(key, transfers)| Case {
            key,
            transfers,
            shared_destination: key == 'd' || key == 'f',
            default_quotas: key == 'e' || key == 'f',
            pull: key == 'g',
        })
        .collect()
}

/// The operator binary the harness starts (see `common::TestEnv::operator`).
fn operator_binary() -> String {
    std::env::var("FERRY_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ferry").to_string())
}

/// `5m`, `300s`, `1h`, `1500ms` or plain seconds.
fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let n: u64 = number.parse().ok()?;
    match unit {
        "" | "s" => Some(Duration::from_secs(n)),
        "ms" => Some(Duration::from_millis(n)),
        "m" => Some(Duration::from_secs(n * 60)),
        "h" => Some(Duration::from_secs(n * 3600)),
        _ => None,
    }
}

/// The operator's default resync interval, read from `ferry run --help` (so the idle window
/// follows the operator if the default changes).
fn default_resync_interval() -> Option<Duration> {
    let out = std::process::Command::new(operator_binary())
        .args(["run", "--help"])
        .env_remove("FERRY_RESYNC_INTERVAL")
        .output()
        .ok()?;
    let help = String::from_utf8_lossy(&out.stdout);
    let after = &help[help.find("FERRY_RESYNC_INTERVAL")?..];
    let value = after.split("[default: ").nth(1)?.split(']').next()?;
    parse_duration(value)
}

/// The resync interval the benchmark's operators run with (`FERRY_BENCH_RESYNC_SECS`, default
/// 600 s): the default (50 min) would make one drift check per transfer take 50 minutes to
/// observe. It must exceed the time a fleet takes to converge (1,000 transfers: about 5.5 min)
/// and one round of drift checks (1,000 × 2 IAM reads at IAM's budget of 10 a second: 200 s),
/// or drift checks fall into the convergence and the no-op probe and rounds overlap (at 120 s
/// they did). The idle window covers one drift check of every transfer (the checks are spread
/// by ±10%), and the idle figures are scaled to an hour at the operator's default interval.
fn bench_resync() -> Duration {
    Duration::from_secs(
        std::env::var("FERRY_BENCH_RESYNC_SECS")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(600),
    )
}

/// The idle window: `FERRY_BENCH_IDLE_SECS`, else the bench resync interval plus 15%.
fn idle_window() -> (Duration, &'static str) {
    if let Some(secs) = std::env::var("FERRY_BENCH_IDLE_SECS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return (Duration::from_secs(secs), "FERRY_BENCH_IDLE_SECS");
    }
    (bench_resync().mul_f64(1.15), "one drift check of every transfer")
}

/// How many drift checks an hour at the operator's default resync interval.
fn checks_per_hour() -> f64 {
    let default = default_resync_interval().unwrap_or(Duration::from_secs(40 * 60));
    3600.0 / default.as_secs_f64()
}

/// The operator's counters at one instant.
#[derive(Clone, Debug, Default)]
struct Counters {
    /// AWS calls by `Service:Operation` (all outcomes).
    calls: BTreeMap<String, f64>,
    reconciles: f64,
}

fn label<'a>(labels: &'a str, key: &str) -> &'a str {
    let needle = format!("{key}=\"");
    labels
        .find(&needle)
        .map(|i| &labels[i + needle.len()..])
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("")
}

impl Counters {
    fn parse(text: &str) -> Self {
        let mut out = Counters::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else { continue };
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            match name {
                "ferry_aws_calls_total" => {
                    let key = format!("{}:{}", label(labels, "service"), label(labels, "operation"));
                    *out.calls.entry(key).or_default() += value;
                }
                "ferry_reconciles_total" => out.reconciles += value,
                _ => {}
            }
        }
        out
    }

    fn total(&self) -> f64 {
        self.calls.values().fold(0.0, |sum, v| sum + v)
    }

    /// Calls of one operation, whatever the service.
    fn operation(&self, operation: &str) -> f64 {
        self.calls
            .iter()
            .filter(|(k, _)| k.rsplit(':').next() == Some(operation))
            .fold(0.0, |sum, (_, v)| sum + v)
    }

    fn since(&self, before: &Counters) -> Counters {
        let mut calls = self.calls.clone();
        for (k, v) in calls.iter_mut() {
            *v -= before.calls.get(k).copied().unwrap_or(0.0);
        }
        calls.retain(|_, v| *v != 0.0);
        Counters {
            calls,
            reconciles: self.reconciles - before.reconciles,
        }
    }
}

/// The operator's counters now (the previous answer's values if /metrics does not answer).
fn scrape(op: &Operator) -> Option<Counters> {
    let answer = op.http("/metrics")?;
    let body = answer.split("\r\n\r\n").nth(1)?;
    Some(Counters::parse(body))
}

/// Peak resident memory of a process (VmHWM), MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}

/// CPU time of a process so far (utime + stime), seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf only reads a system setting.
    let per_second = match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        n if n > 0 => n as f64,
        _ => 100.0,
    };
    (ticks(11) + ticks(12)) / per_second
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Where a transfer is, as the benchmark sorts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Not yet running an execution: being provisioned (or not seen yet).
    Provisioning,
    /// Its execution runs (the operator polls it).
    Running,
    /// Succeeded.
    Done,
}

fn stage(t: &CrossAccountTransfer) -> Stage {
    let status = t.status.as_ref();
    if status.and_then(|s| s.phase) == Some(Phase::Succeeded) {
        Stage::Done
    } else if status
        .and_then(|s| s.execution.as_ref())
        .is_some_and(|e| e.is_running())
    {
        Stage::Running
    } else {
        Stage::Provisioning
    }
}

/// The fleet as a watch on the namespace sees it.
#[derive(Debug, Default)]
struct Fleet {
    stages: BTreeMap<String, Stage>,
    failed: BTreeMap<String, String>,
    /// Seconds from the first apply until each transfer was first seen Succeeded.
    succeeded_at: BTreeMap<String, f64>,
    /// Transfers seen waiting at DataSync's task quota (`Reconciling` `TaskQuotaReached`).
    waited: std::collections::BTreeSet<String>,
}

impl Fleet {
    fn update(&mut self, t: &CrossAccountTransfer, elapsed: f64) {
        let name = t.metadata.name.clone().unwrap_or_default();
        let stage = stage(t);
        if stage == Stage::Done {
            self.succeeded_at.entry(name.clone()).or_insert(elapsed);
        }
        let status = t.status.as_ref();
        let waiting = status.is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Reconciling" && c.status == "True" && c.reason == "TaskQuotaReached")
        });
        if waiting {
            self.waited.insert(name.clone());
        }
        if status.and_then(|s| s.phase) == Some(Phase::Failed) {
            let why = status
                .map(|s| {
                    s.conditions
                        .iter()
                        .filter(|c| c.status == "True")
                        .map(|c| format!("{} {}: {}", c.type_, c.reason, c.message))
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default();
            self.failed.insert(name.clone(), why);
        } else {
            self.failed.remove(&name);
        }
        self.stages.insert(name, stage);
    }

    /// (provisioning, running, done) out of `total`.
    fn counts(&self, total: usize) -> (usize, usize, usize) {
        let running = self.stages.values().filter(|s| **s == Stage::Running).count();
        let done = self.stages.values().filter(|s| **s == Stage::Done).count();
        (total.saturating_sub(running + done), running, done)
    }
}

/// One sample taken while the fleet converges.
#[derive(Clone, Debug)]
struct Sample {
    provisioning: usize,
    running: usize,
    done: usize,
    counters: Counters,
}

/// AWS calls per poll of a running execution, from the samples. Only intervals in which no
/// transfer was being provisioned count (both ends; plus the interval after the last running
/// one, where the last settling reconciles end): there every AWS call belongs to a reconcile of a
/// running execution, whose `DescribeTaskExecution` counts the polls, or to the one settling
/// reconcile a transfer gets once Succeeded, which costs `settled` calls (measured by
/// [`settled_reconcile_cost`]) and is taken out. Returns (calls per poll, polls it is based on).
fn calls_per_poll(samples: &[Sample], settled: f64) -> Option<(f64, f64)> {
    let (mut calls, mut polls, mut finished) = (0.0, 0.0, 0.0);
    for i in 1..samples.len() {
        let (prev, cur) = (&samples[i - 1], &samples[i]);
        let running = prev.running > 0 || (i >= 2 && samples[i - 2].running > 0);
        if prev.provisioning == 0 && cur.provisioning == 0 && running {
            let delta = cur.counters.since(&prev.counters);
            calls += delta.total();
            polls += delta.operation("DescribeTaskExecution");
            finished += cur.done.saturating_sub(prev.done) as f64;
        }
    }
    (polls > 0.0).then(|| ((calls - settled * finished).max(0.0) / polls, polls))
}

/// What one scenario measured until every transfer had succeeded.
#[derive(Debug)]
struct Converged {
    case: Case,
    seconds: f64,
    p50: f64,
    calls: Counters,
    emulator_calls: Option<f64>,
    per_poll: Option<(f64, f64)>,
    /// AWS calls of one reconcile of a settled transfer (a resync), when one could be caused.
    settled: Option<f64>,
    cpu: f64,
    audit: Audit,
}

/// What AWS holds once a fleet has succeeded (read from the emulator with the real SDK).
#[derive(Debug, Default)]
struct Audit {
    /// Executions in the Region (DataSync keeps them listed after their task is deleted).
    executions: usize,
    /// Tasks that ran, and the most executions one of them had (one run request each).
    tasks_run: usize,
    most_per_task: usize,
    /// Left in AWS: tasks and locations in the Region, Ferry's DataSync roles in Account A.
    tasks: usize,
    locations: usize,
    roles: usize,
    /// The largest destination bucket policy, in bytes.
    policy_bytes: usize,
    /// Transfers seen waiting at the task quota.
    waited: usize,
    /// The creates Ferry sent (the emulator's call log, refusals at the quota included).
    create_task: usize,
    create_location: usize,
    start_execution: usize,
}

/// Reads the audit of a fleet that has succeeded.
async fn audit(s: &Scenario, case: &Case, buckets: &[String], waited: usize) -> Audit {
    // The account that runs the copies, and the bucket policies Ferry wrote into the other.
    let home = if case.pull { &s.b } else { &s.a };
    let ds = home.datasync(&s.dst_region);
    let mut per_task: BTreeMap<String, usize> = BTreeMap::new();
    let mut executions = ds
        .list_task_executions()
        .max_results(100)
        .into_paginator()
        .items()
        .send();
    while let Some(e) = executions.next().await {
        let arn = e.expect("list task executions").task_execution_arn.unwrap_or_default();
        let task = arn.split("/execution/").next().unwrap_or_default().to_string();
        *per_task.entry(task).or_default() += 1;
    }
    // Every page, or the audit fails: a listing error must not count as a resource.
    let tasks = ds.list_tasks().into_paginator().items().send().try_collect().await;
    let tasks = tasks.expect("list tasks").len();
    let locations = ds.list_locations().into_paginator().items().send().try_collect().await;
    let locations = locations.expect("list locations").len();
    let roles = home
        .iam()
        .list_roles()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await;
    let roles = roles
        .expect("list roles")
        .iter()
        .filter(|r| r.role_name().starts_with(&format!("ferry-{}-", s.ns)))
        .count();
    let distinct: std::collections::BTreeSet<&String> = buckets.iter().collect();
    let (foreign, region, policies) = if case.pull {
        (&s.a, &s.src_region, vec![&s.src])
    } else {
        (&s.b, &s.dst_region, distinct.into_iter().collect())
    };
    let policy_bytes = futures::stream::iter(policies)
        .map(|b| foreign.bucket_policy(region, b))
        .buffer_unordered(BUCKET_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|p| p.map_or(0, |p| p.len()))
        .max()
        .unwrap_or(0);
    let count = |operation: &str| calls(s.env, &format!("account={}&operation={operation}", home.id)).len();
    Audit {
        executions: per_task.values().sum(),
        tasks_run: per_task.len(),
        most_per_task: per_task.values().copied().max().unwrap_or(0),
        tasks,
        locations,
        roles,
        policy_bytes,
        waited,
        create_task: count("CreateTask"),
        create_location: count("CreateLocationS3"),
        start_execution: count("StartTaskExecution"),
    }
}

fn audit_table(rows: &[(Converged, Idle)]) -> String {
    let mut out = String::from(
        "| AWS audit once all succeeded | executions (tasks that ran; most per task) | CreateTask / CreateLocationS3 / StartTaskExecution sent | tasks, locations left | DataSync roles (per transfer) | largest bucket policy (bytes of 20,480) | transfers that waited at the task quota |\n| --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for (c, _) in rows {
        let a = &c.audit;
        out.push_str(&format!(
            "| {} | {} ({}; {}) | {} / {} / {} | {}, {} | {} ({:.3}) | {} | {} |\n",
            c.case.label(),
            a.executions,
            a.tasks_run,
            a.most_per_task,
            a.create_task,
            a.create_location,
            a.start_execution,
            a.tasks,
            a.locations,
            a.roles,
            a.roles as f64 / c.case.transfers as f64,
            a.policy_bytes,
            a.waited,
        ));
    }
    out.push('\n');
    out
}

/// What one scenario measured while idle.
#[derive(Debug)]
struct Idle {
    window: f64,
    observed: f64,
    calls: f64,
    reconciles: f64,
    cpu: f64,
    peak_rss_mib: f64,
}

/// Waits until the operator's reconcile count has not moved for [`QUIET_FOR`] (at most `max`).
async fn wait_quiet(op: &Operator, max: Duration) -> Counters {
    let deadline = Instant::now() + max;
    let mut last = scrape(op).unwrap_or_default();
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = scrape(op).unwrap_or_else(|| last.clone());
        if now.reconciles != last.reconciles {
            since = Instant::now();
        }
        last = now;
        if since.elapsed() >= QUIET_FOR || Instant::now() > deadline {
            return last;
        }
    }
}

/// Creates `names` in Account B, [`BUCKET_CONCURRENCY`] at a time.
async fn destination_buckets(s: &Scenario, names: &[String]) {
    futures::stream::iter(names)
        .map(|name| s.b.bucket(&s.dst_region, name))
        .buffer_unordered(BUCKET_CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
}

/// The emulator's count of the AWS calls signed by the scenario's accounts in `[from, to]`
/// (Unix seconds); `None` when its log (the last 50,000 calls) no longer reaches back to `from`.
fn emulator_count(s: &Scenario, from: f64, to: f64) -> Option<f64> {
    let mut total = 0.0;
    for account in [&s.a.id, &s.b.id] {
        let log = calls(s.env, &format!("account={account}"));
        let times: Vec<f64> = log.iter().filter_map(|c| c["at"].as_f64()).collect();
        // The scenario's own setup (buckets, objects) precedes `from` in both accounts.
        if !times.iter().any(|t| *t < from) {
            return None;
        }
        total += times.iter().filter(|t| **t >= from && **t <= to).count() as f64;
    }
    Some(total)
}

/// The AWS calls of one reconcile of a settled transfer: once the operator is quiet, a harmless
/// annotation on a few transfers causes one reconcile each (as a resync would). `None` when the
/// operator does not reconcile on such a change (then a status write does not cause a settling
/// reconcile either).
async fn settled_reconcile_cost(s: &Scenario, op: &Operator, n: usize) -> Option<f64> {
    let before = wait_quiet(op, Duration::from_secs(120)).await;
    let probes = n.min(5);
    for i in 0..probes {
        s.annotate(&format!("t{i}"), "bench.ferry.dev/probe", "1").await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let delta = wait_quiet(op, Duration::from_secs(60)).await.since(&before);
    (delta.reconciles > 0.0).then(|| delta.total() / delta.reconciles)
}

/// Runs one scenario until every transfer succeeded; returns the measures and what the idle
/// phase needs (the operator keeps running).
async fn converge(case: &Case, timeout: Duration) -> (Converged, Scenario, Operator) {
    let n = case.transfers;
    let s = Scenario::new(&format!("bench-{}", case.key), "us-east-1", "us-east-1").await;
    // The emulator enforces AWS's default quotas (100 tasks per Region, 1,000 roles): these
    // fleets run in an account whose quotas were raised, as today's figures were measured, and
    // Ferry is told so (FERRY_DATASYNC_TASK_QUOTA below).
    // Fleets (e) and (f) keep AWS's defaults.
    let home = if case.pull { &s.b } else { &s.a };
    if !case.default_quotas {
        let raised = json!([
            {"account": home.id, "region": "us-east-1", "quota": "DataSyncTasks", "value": 10_000},
            {"account": home.id, "quota": "IamRoles", "value": 5_000}
        ]);
        let answer = common::aws::emulator_call(s.env, "POST", "/ferry-emulator/quotas", &raised.to_string());
        assert!(answer.contains(" 200 "), "raising the quotas: {answer}");
    }
    let buckets: Vec<String> = if case.shared_destination {
        vec![s.dst.clone(); n]
    } else {
        (0..n).map(|i| format!("{}-{i}", s.dst)).collect()
    };
    let setup = Instant::now();
    if !case.shared_destination {
        destination_buckets(&s, &buckets).await;
    }
    eprintln!(
        "bench {}: namespace {}, {} destination bucket(s) ready in {:.1}s",
        case.key,
        s.ns,
        if case.shared_destination { 1 } else { n },
        setup.elapsed().as_secs_f64()
    );
    let manifests: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let prefix = if case.shared_destination {
                format!("t{i}/")
            } else {
                "archive/".to_string()
            };
            let mut spec = json!({"destination": {"bucket": buckets[i], "prefix": prefix}});
            if case.default_quotas {
                spec["task"] = json!({"release": "AfterSuccess"});
            }
            if case.pull {
                s.pull_manifest(&format!("t{i}"), spec)
            } else {
                s.manifest(&format!("t{i}"), spec)
            }
        })
        .collect();

    let resync = format!("{}s", bench_resync().as_secs());
    let mut env = vec![
        ("RUST_LOG", OPERATOR_LOG.to_string()),
        ("FERRY_RESYNC_INTERVAL", resync),
    ];
    if !case.default_quotas {
        env.push(("FERRY_DATASYNC_TASK_QUOTA", "10000".to_string()));
    }
    // Operator settings to try in a benchmark run, passed through when set.
    for name in PASSED_THROUGH {
        if let Ok(value) = std::env::var(name) {
            env.push((name, value));
        }
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let op = s.env.operator(&s.ns, &home.creds, &env);
    common::wait_for("the operator to be ready", Duration::from_secs(60), || {
        let ready = op
            .http("/readyz")
            .is_some_and(|a| a.starts_with("HTTP/1.1 200") || a.starts_with("HTTP/1.0 200"));
        async move { if ready { Ok(()) } else { Err("not ready".to_string()) } }
    })
    .await;

    // The fleet, as a watch sees it (cheaper than listing 1,000 transfers every half second).
    let fleet = Arc::new(Mutex::new(Fleet::default()));
    let started = Instant::now();
    let watch = {
        let (fleet, api) = (fleet.clone(), s.api());
        tokio::spawn(async move {
            let mut events = watcher(api, watcher::Config::default())
                .default_backoff()
                .applied_objects()
                .boxed();
            while let Some(event) = events.next().await {
                if let Ok(t) = event {
                    fleet
                        .lock()
                        .expect("fleet lock")
                        .update(&t, started.elapsed().as_secs_f64());
                }
            }
        })
    };

    let before = scrape(&op).unwrap_or_default();
    let cpu_before = cpu_seconds(op.pid());
    let from = unix_now();
    let started_at = started;
    let applying = futures::stream::iter(&manifests)
        .map(|m| s.apply(m))
        .buffer_unordered(APPLY_CONCURRENCY)
        .collect::<Vec<_>>();
    let mut applying = Box::pin(applying);
    let mut applied = false;
    let mut samples = vec![Sample {
        provisioning: n,
        running: 0,
        done: 0,
        counters: before.clone(),
    }];
    let mut last_report = Instant::now();
    loop {
        if !applied {
            // Keep applying while sampling: 1,000 applies take a while.
            tokio::select! {
                _ = &mut applying => {
                    applied = true;
                    eprintln!("bench {}: {n} applied in {:.1}s", case.key, started_at.elapsed().as_secs_f64());
                }
                _ = tokio::time::sleep(SAMPLE_EVERY) => {}
            }
        } else {
            tokio::time::sleep(SAMPLE_EVERY).await;
        }
        let (provisioning, running, done) = fleet.lock().expect("fleet lock").counts(n);
        let counters = scrape(&op).unwrap_or_else(|| samples.last().map(|s| s.counters.clone()).unwrap_or_default());
        samples.push(Sample {
            provisioning,
            running,
            done,
            counters,
        });
        if applied && done == n {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(15) {
            last_report = Instant::now();
            // A watch can miss an update under load (it resumes from a later version): a list
            // every 15 s puts the fleet right.
            if let Ok(list) = s.api().list(&Default::default()).await {
                let mut fleet = fleet.lock().expect("fleet lock");
                for t in &list.items {
                    fleet.update(t, started.elapsed().as_secs_f64());
                }
            }
            let failed = fleet.lock().expect("fleet lock").failed.clone();
            eprintln!(
                "bench {}: {:.0}s: {provisioning} provisioning, {running} running, {done}/{n} succeeded, {} failed{}",
                case.key,
                started_at.elapsed().as_secs_f64(),
                failed.len(),
                failed
                    .iter()
                    .next()
                    .map(|(name, why)| format!(" ({name}: {why})"))
                    .unwrap_or_default()
            );
        }
        assert!(
            started_at.elapsed() < timeout,
            "bench {}: only {done}/{n} transfers succeeded after {timeout:?}; operator log: {}",
            case.key,
            op.log.display()
        );
    }
    let to = unix_now();
    drop(applying);
    let cpu = cpu_seconds(op.pid()) - cpu_before;
    let after = samples.last().map(|s| s.counters.clone()).unwrap_or_default();
    // One more sample: the settling reconciles of the last transfers to succeed end in it.
    tokio::time::sleep(SAMPLE_EVERY).await;
    if let Some(counters) = scrape(&op) {
        samples.push(Sample {
            provisioning: 0,
            running: 0,
            done: n,
            counters,
        });
    }
    watch.abort();
    let settled = settled_reconcile_cost(&s, &op, n).await;
    let mut times: Vec<f64> = fleet
        .lock()
        .expect("fleet lock")
        .succeeded_at
        .values()
        .copied()
        .collect();
    times.sort_by(f64::total_cmp);
    let seconds = times.last().copied().unwrap_or_default();
    let p50 = times
        .get((times.len().saturating_sub(1)) / 2)
        .copied()
        .unwrap_or_default();
    let emulator_calls = emulator_count(&s, from, to);
    let waited = fleet.lock().expect("fleet lock").waited.len();
    let audit = audit(&s, case, &buckets, waited).await;
    eprintln!("bench {}: audit {audit:?}", case.key);
    let converged = Converged {
        case: case.clone(),
        seconds,
        p50,
        calls: after.since(&before),
        emulator_calls,
        per_poll: calls_per_poll(&samples, settled.unwrap_or(0.0)),
        settled,
        cpu,
        audit,
    };
    eprintln!(
        "bench {}: all {n} succeeded in {seconds:.1}s; {:.1} AWS calls/transfer",
        case.key,
        converged.calls.total() / n as f64
    );
    (converged, s, op)
}

/// Watches a settled operator for `window` (after its reconciles went quiet), plus the time the
/// reconciles started in the window take to finish.
async fn idle(op: Operator, s: Scenario, window: Duration) -> Idle {
    let start = wait_quiet(&op, Duration::from_secs(120)).await;
    let cpu_start = cpu_seconds(op.pid());
    let began = Instant::now();
    tokio::time::sleep(window).await;
    let end = wait_quiet(&op, Duration::from_secs(120)).await;
    let delta = end.since(&start);
    let result = Idle {
        window: window.as_secs_f64(),
        observed: began.elapsed().as_secs_f64(),
        calls: delta.total(),
        reconciles: delta.reconciles,
        cpu: cpu_seconds(op.pid()) - cpu_start,
        peak_rss_mib: peak_rss_mib(op.pid()),
    };
    drop(op);
    drop(s);
    result
}

fn per_transfer(value: f64, n: usize) -> f64 {
    value / n as f64
}

fn table(rows: &[(Converged, Idle)], idle_note: &str) -> String {
    let mut out = String::new();
    out.push_str(
        &format!("| scenario | all Succeeded (s) | p50 (s) | AWS calls/transfer to converge (recipe min. {RECIPE_MINIMUM}) | AWS calls/poll of a running execution (polls) | AWS calls of a no-op reconcile (an unrelated change) | idle AWS calls/transfer/h | reconciles/transfer to converge | idle reconciles/transfer/h | peak RSS (MiB) | CPU s to converge | idle CPU s/h |\n"),
    );
    out.push_str("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for (c, i) in rows {
        let n = c.case.transfers;
        // The window holds one drift check per transfer: an hour holds `checks_per_hour` of them
        // at the default resync interval.
        let per_hour = checks_per_hour();
        let emulator = c
            .emulator_calls
            .map(|e| format!(" (emulator: {:.1})", per_transfer(e, n)))
            .unwrap_or_default();
        let per_poll = c
            .per_poll
            .map(|(v, polls)| format!("{v:.1} ({polls:.0})"))
            .unwrap_or_else(|| "n/a".into());
        let settled = c.settled.map(|v| format!("{v:.1}")).unwrap_or_else(|| "n/a".into());
        out.push_str(&format!(
            "| {} | {:.1} | {:.1} | {:.1}{emulator} | {per_poll} | {settled} | {:.1} | {:.1} | {:.1} | {:.0} | {:.1} | {:.1} |\n",
            c.case.label(),
            c.seconds,
            c.p50,
            per_transfer(c.calls.total(), n),
            per_transfer(i.calls, n) * per_hour,
            per_transfer(c.calls.reconciles, n),
            per_transfer(i.reconciles, n) * per_hour,
            i.peak_rss_mib,
            c.cpu,
            i.cpu * per_hour,
        ));
    }
    out.push('\n');
    let observed: Vec<String> = rows
        .iter()
        .map(|(c, i)| format!("{} {:.0} s", c.case.key, i.observed))
        .collect();
    out.push_str(&format!(
        "Idle: {idle_note} ({:.0} s) after the reconciles went quiet, observed until the reconciles started in it had finished ({}); with the operators' resync at the bench interval; scaled to an hour at the default resync interval (one drift check per transfer per interval).\n\n",
        rows.first().map(|(_, i)| i.window).unwrap_or_default(),
        observed.join(", ")
    ));

    // AWS calls per transfer to converge, by operation.
    let mut operations: Vec<String> = rows.iter().flat_map(|(c, _)| c.calls.calls.keys().cloned()).collect();
    operations.sort();
    operations.dedup();
    out.push_str("| AWS calls per transfer to converge, by operation |");
    for (c, _) in rows {
        out.push_str(&format!(" ({}) {} |", c.case.key, c.case.transfers));
    }
    out.push_str("\n| --- |");
    for _ in rows {
        out.push_str(" --- |");
    }
    out.push('\n');
    for op in operations.iter().chain(std::iter::once(&"total".to_string())) {
        out.push_str(&format!("| {op} |"));
        for (c, _) in rows {
            let v = if op == "total" {
                c.calls.total()
            } else {
                c.calls.calls.get(op).copied().unwrap_or(0.0)
            };
            out.push_str(&format!(" {:.2} |", per_transfer(v, c.case.transfers)));
        }
        out.push('\n');
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with `make bench`"]
async fn bench_fleets() {
    let cases = cases();
    let (window, idle_note) = idle_window();
    let timeout = Duration::from_secs(
        std::env::var("FERRY_BENCH_TIMEOUT_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1800),
    );
    eprintln!(
        "bench: scenarios {:?}, idle window {:.0}s ({idle_note}), operator {}",
        cases.iter().map(|c| (c.key, c.transfers)).collect::<Vec<_>>(),
        window.as_secs_f64(),
        operator_binary()
    );
    // The largest fleet runs last, so the idle windows of the others (which run on while the
    // next scenarios converge) do not overlap its resync burst.
    let mut order = cases.clone();
    order.sort_by_key(|c| (c.transfers, c.key));
    let mut idling = Vec::new();
    let mut converged = BTreeMap::new();
    for case in &order {
        let (result, s, op) = converge(case, timeout).await;
        idling.push((case.key, tokio::spawn(idle(op, s, window))));
        converged.insert(case.key, result);
    }
    let mut idles = BTreeMap::new();
    for (key, task) in idling {
        idles.insert(key, task.await.expect("idle phase"));
    }
    let rows: Vec<(Converged, Idle)> = cases
        .iter()
        .filter_map(|c| Some((converged.remove(&c.key)?, idles.remove(&c.key)?)))
        .collect();
    println!("<!-- bench-output:start -->");
    print!("{}", table(&rows, idle_note));
    print!("{}", audit_table(&rows));
    println!("<!-- bench-output:end -->");
}
