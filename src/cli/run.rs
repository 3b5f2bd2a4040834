//! `ferry run`: the controller process — logging, metrics and health server, leader
//! election, the controller itself, and a graceful shutdown on SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Args;
use kube::runtime::events::{Recorder, Reporter};
use tokio::sync::watch;
use tracing::{error, info};

use super::parse_duration;
use crate::aws::{Aws, AwsSettings};
use crate::context::{Context, ControllerConfig, TaskQueue};
use crate::controller::{self, TenancyFeeds};
use crate::leader::{Fence, FenceLayer, LeaderElector};
use crate::metrics::Metrics;
use crate::server::{self, ServerState};
use crate::telemetry::{self, LogFormat};
use crate::tenancy::{Enforcement, Tenancy};
use kube::runtime::reflector;

/// Options of `ferry run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "FERRY_WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// Address of the /metrics, /healthz and /readyz server.
    #[arg(long, env = "FERRY_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Elect a leader on a Lease so only one replica reconciles.
    #[arg(long, env = "FERRY_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Name of the Lease.
    #[arg(long, env = "FERRY_LEASE_NAME", default_value = "ferry-leader")]
    pub lease_name: String,
    /// Namespace of the Lease (default: the pod's namespace, else the watched namespace, else `default`).
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Lease duration.
    #[arg(long, env = "FERRY_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,
    /// This replica's identity (default: the pod name, else host name and process id).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// How many transfers do AWS work at once, first come first served (0: no limit). A
    /// transfer waiting for its turn holds almost no memory; one at work holds its AWS requests.
    #[arg(long, env = "FERRY_MAX_CONCURRENT_RECONCILES", default_value_t = 16)]
    pub max_concurrent_reconciles: u16,
    /// DescribeTaskExecution calls per second all polls together may spend: with more running
    /// executions than this times the poll interval, each is polled less often.
    #[arg(long, env = "FERRY_POLL_RATE", default_value_t = 10.0)]
    pub poll_rate: f64,
    /// How long one reconcile may take before it is dropped and tried again.
    #[arg(long, env = "FERRY_RECONCILE_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub reconcile_timeout: Duration,
    /// IAM permissions boundary (a managed policy ARN) put on every DataSync role Ferry creates,
    /// and put back when it is changed or removed: a role can never do more than it allows,
    /// whatever its inline policy says. Empty: none.
    #[arg(long, env = "FERRY_ROLE_PERMISSIONS_BOUNDARY", value_parser = parse_policy_arn)]
    pub role_permissions_boundary: Option<String>,
    /// DataSync's quota of tasks per account and Region (AWS's default: 100). Set it after AWS
    /// raised the quota: with this many tasks listed, a refused CreateTask means the quota, and
    /// the transfer waits in line for a free slot instead of failing.
    #[arg(long, env = "FERRY_DATASYNC_TASK_QUOTA", default_value_t = 100)]
    pub datasync_task_quota: u32,
    /// How long an AWS endpoint may take to answer a request once it is sent; a call without an
    /// answer by then fails (a create is then searched for, never sent twice).
    #[arg(long, env = "FERRY_AWS_READ_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub aws_read_timeout: Duration,
    /// Request budget: AWS calls per second per service and credentials, over the defaults
    /// datasync=20,s3=50,iam=10,sts=20 (throttling answers lower it for a minute).
    #[arg(long, env = "FERRY_AWS_RATE_LIMITS", default_value = "", value_parser = crate::aws::budget::parse_rates)]
    pub aws_rate_limits: crate::aws::budget::Rates,
    /// How often a running execution is polled.
    #[arg(long, env = "FERRY_POLL_INTERVAL", default_value = "15s", value_parser = parse_duration)]
    pub poll_interval: Duration,
    /// How often a transfer is checked for drift (every step; spread by ±10% per transfer).
    /// 50 minutes: a settled transfer costs about 11 AWS calls an hour (9 reads per check; 10
    /// with a KMS-encrypted destination).
    #[arg(long, env = "FERRY_RESYNC_INTERVAL", default_value = "50m", value_parser = parse_duration)]
    pub resync_interval: Duration,
    /// How long after a permission change access errors count as IAM propagation.
    #[arg(long, env = "FERRY_PROPAGATION_WINDOW", default_value = "2m", value_parser = parse_duration)]
    pub propagation_window: Duration,
    /// How often External mode checks whether Account B applied the bucket policy.
    #[arg(long, env = "FERRY_EXTERNAL_RETRY", default_value = "30s", value_parser = parse_duration)]
    pub external_retry: Duration,
    /// How often a transfer stalled on an access or ownership problem is tried again.
    #[arg(long, env = "FERRY_STALLED_RETRY", default_value = "5m", value_parser = parse_duration)]
    pub stalled_retry: Duration,
    /// Log format.
    #[arg(long, env = "FERRY_LOG_FORMAT", value_enum, default_value = "json")]
    pub log_format: LogFormat,
    /// Whether every transfer needs a TransferPolicy that grants its buckets, accounts and
    /// roles (`Enforce`, the default), or policies are not consulted (`Disabled`: anyone who
    /// may create a transfer in a watched namespace directs Ferry's AWS identity).
    #[arg(long, env = "FERRY_TRANSFER_POLICIES", value_enum, default_value = "enforce")]
    pub transfer_policies: crate::tenancy::Enforcement,
    /// Use path-style S3 addressing (for S3-compatible endpoints on `localhost`).
    #[arg(long, env = "FERRY_S3_FORCE_PATH_STYLE", default_value_t = false, action = clap::ArgAction::Set)]
    pub s3_force_path_style: bool,
}

/// Checks `--role-permissions-boundary`: the ARN of a managed policy (customer managed,
/// `arn:aws:iam::123456789012:policy/...`, or AWS managed, `arn:aws:iam::aws:policy/...`).
fn parse_policy_arn(text: &str) -> Result<String, String> {
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    let account_ok = |a: &str| a == "aws" || (a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()));
    match parts.as_slice() {
        ["arn", partition, "iam", "", account, resource]
            if partition.starts_with("aws")
                && account_ok(account)
                && resource.starts_with("policy/")
                && resource.len() > 7 =>
        {
            Ok(text.to_string())
        }
        _ => Err(format!(
            "`{text}` is not the ARN of an IAM managed policy: write e.g. arn:aws:iam::111111111111:policy/ferry-datasync-boundary"
        )),
    }
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "ferry".into());
    format!("{host}-{}", std::process::id())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `addr` in the background.
fn serve_metrics(addr: SocketAddr, metrics: Arc<Metrics>, ready: Arc<AtomicBool>) {
    let state = ServerState { metrics, ready };
    tokio::spawn(async move {
        if let Err(e) = server::serve(addr, state).await {
            error!(error = %e, %addr, "metrics server stopped");
        }
    });
}

/// The controller's timing and limits, from the flags.
fn controller_config(args: &RunArgs) -> ControllerConfig {
    ControllerConfig {
        poll_interval: args.poll_interval,
        resync_interval: args.resync_interval,
        propagation_window: args.propagation_window,
        external_retry: args.external_retry,
        stalled_retry: args.stalled_retry,
        max_concurrent_reconciles: args.max_concurrent_reconciles,
        reconcile_timeout: args.reconcile_timeout,
        poll_rate: args.poll_rate,
        role_permissions_boundary: args.role_permissions_boundary.clone(),
        datasync_task_quota: args.datasync_task_quota,
    }
}

/// The lease this replica competes for (`--lease-namespace`, else the watched namespace, else
/// `default`).
fn elector(args: &RunArgs, client: &kube::Client, identity: &str, fence: &Fence) -> LeaderElector {
    let namespace = args
        .lease_namespace
        .clone()
        .or_else(|| args.namespace.clone())
        .unwrap_or_else(|| "default".into());
    LeaderElector::new(
        client.clone(),
        &namespace,
        &args.lease_name,
        identity,
        args.lease_duration,
        fence.clone(),
    )
}

/// The controller's shared context (AWS, events, settings, the tenancy stores, the task queue)
/// and the feeds that fill its stores.
async fn build_context(
    args: &RunArgs,
    client: kube::Client,
    metrics: Arc<Metrics>,
    identity: &str,
    fence: &Fence,
) -> (Arc<Context>, TenancyFeeds) {
    let aws = Aws::new(
        AwsSettings {
            force_path_style: args.s3_force_path_style,
            session_name: "ferry-operator".into(),
            rates: args.aws_rate_limits.0.clone(),
            read_timeout: args.aws_read_timeout,
            fence: fence.clone(),
        },
        metrics.clone(),
    )
    .await;
    let reporter = Reporter {
        controller: "ferry".into(),
        instance: Some(identity.to_string()),
    };
    let recorder = Recorder::new(client.clone(), reporter.clone());
    let config = controller_config(args);
    let (policies, policy_writer) = reflector::store();
    let (namespaces, namespace_writer) = reflector::store();
    let (listed_tx, listed) = watch::channel(false);
    let (wake, woken) = tokio::sync::mpsc::unbounded_channel();
    let feeds = TenancyFeeds {
        policies: policy_writer,
        namespaces: namespace_writer,
        listed: listed_tx,
        woken,
    };
    if args.transfer_policies == Enforcement::Disabled {
        tracing::warn!(
            "TransferPolicy enforcement is disabled: anyone who may create a CrossAccountTransfer in a watched namespace directs Ferry's AWS identity"
        );
    }
    let ctx = Arc::new(Context {
        client: client.clone(),
        aws,
        recorder,
        reporter,
        metrics,
        slots: Context::slots_for(&config),
        config,
        locks: Default::default(),
        watch_namespace: args.namespace.clone(),
        memory: Default::default(),
        tenancy: Tenancy {
            enforcement: args.transfer_policies,
            policies,
            namespaces,
            listed,
        },
        task_queue: TaskQueue::new(wake),
        role_pools: crate::context::RolePools::default(),
    });
    (ctx, feeds)
}

/// Renews the lease while this replica leads; when it is lost, stops everything at once and
/// exits 2 (see [`LeaderElector::hold`]).
fn hold_leadership(elector: LeaderElector, lost: watch::Sender<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        elector.hold().await;
        // No graceful end: in-flight reconciles stop here, mid-way (their work is crash-safe),
        // and the fence already refuses every AWS request.
        error!("leadership lost; exiting at once so a fresh replica can take over");
        let _ = lost.send(true);
        std::process::exit(2);
    })
}

/// A graceful stop's hand-over: renewing stops before the lease is given up, since a renewal
/// after the release would take the lease back, or find the standby holding it and exit 2
/// mid-shutdown (seen once in `make stress`: "lost the lease to another replica" right after
/// "controller stopped").
async fn hand_over(elector: &LeaderElector, holding: tokio::task::JoinHandle<()>) {
    holding.abort();
    let _ = holding.await;
    elector.release().await;
}

/// Runs the controller process; returns the exit code.
pub async fn run(args: RunArgs) -> i32 {
    telemetry::init(args.log_format);
    let fence = if args.leader_election {
        Fence::closed()
    } else {
        Fence::open()
    };
    let config = match kube::Config::infer().await {
        Ok(config) => config,
        Err(e) => {
            error!(error = %e, "no Kubernetes configuration (in-cluster or KUBECONFIG)");
            return 1;
        }
    };
    // Two clients of one configuration: the controller's, whose writes pass the fence, and the
    // lease's own, which must write while the fence is closed (to take the lease).
    let clients = kube::client::ClientBuilder::try_from(config.clone()).and_then(|builder| {
        let fenced = builder.with_layer(&FenceLayer(fence.clone())).build();
        Ok((fenced, kube::Client::try_from(config)?))
    });
    let (client, lease_client) = match clients {
        Ok(clients) => clients,
        Err(e) => {
            error!(error = %e, "could not build a Kubernetes client");
            return 1;
        }
    };
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    serve_metrics(args.metrics_addr, metrics.clone(), ready.clone());

    let identity = args.identity.clone().unwrap_or_else(default_identity);
    let (ctx, feeds) = build_context(&args, client.clone(), metrics, &identity, &fence).await;

    // One signal, seen by every part that must stop.
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        info!("shutdown requested");
        let _ = stop_tx.send(true);
    });
    // A channel whose sender is gone (no leader election: nothing can lose the lease) never
    // says stop.
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        if rx.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    };

    controller::wait_for_crd(&client, args.namespace.as_deref(), args.transfer_policies).await;
    ready.store(true, Ordering::SeqCst);

    let elector = if args.leader_election {
        let elector = elector(&args, &lease_client, &identity, &fence);
        tokio::select! {
            () = elector.acquire() => {},
            () = stopped(stop_rx.clone()) => return 0,
        }
        Some(elector)
    } else {
        None
    };

    // Leadership lost: stop reconciling at once, like a shutdown, and exit non-zero.
    let (lost_tx, lost_rx) = watch::channel(false);
    let holding = elector.clone().map(|elector| hold_leadership(elector, lost_tx));
    let mut lost_flag = lost_rx.clone();
    let shutdown = {
        let stop = stop_rx.clone();
        let lost = lost_rx.clone();
        async move {
            tokio::select! {
                () = stopped(stop) => {},
                () = stopped(lost) => {},
            }
        }
    };
    controller::run(ctx, args.namespace.clone(), feeds, shutdown).await;

    let lost = *lost_flag.borrow_and_update();
    if lost {
        error!("leadership lost; exiting so a fresh replica can take over");
        return 2;
    }
    if let (Some(elector), Some(holding)) = (elector, holding) {
        hand_over(&elector, holding).await;
    }
    0
}
