//! The controller: watches `CrossAccountTransfer`s, keeps the finalizer, runs the pipeline
//! (or the cleanup when the resource is deleted), writes the status, and picks the next
//! reconcile: soon while a transfer runs, after a backoff on errors, never for an invalid spec
//! until it changes.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{ListParams, Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::{Controller, WatchStreamExt, reflector, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tracing::{Instrument, info, info_span, warn};

use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::reflector::ObjectRef;

use crate::api::{
    CrossAccountTransfer, CrossAccountTransferStatus, DeletionPolicy, ExecutionStatus, FINALIZER, Phase, TransferPolicy,
};
use crate::context::{Context, ControllerConfig, Seen};
use crate::error::{Error, Result};
use crate::steps::{self, Progress, Transfer, cleanup};
use crate::summary::{self, Outcome, summarize};
use crate::tenancy::{Enforcement, IDENTITY_FIELDS, Verdict, policy_reports};

/// Waits until the CRDs are served (listing works), so the watches do not start against a
/// missing API: CrossAccountTransfer's, and TransferPolicy's when policies are enforced (`helm
/// upgrade` does not install a chart's new CRDs: until `kubectl apply -f crds/`, the new
/// version stays unready and the old one keeps running). Needs only the list permission Ferry
/// has anyway.
pub async fn wait_for_crd(client: &Client, namespace: Option<&str>, enforcement: Enforcement) {
    let transfers: Api<CrossAccountTransfer> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let policies: Api<TransferPolicy> = Api::all(client.clone());
    let mut logged = false;
    loop {
        let listed = match transfers.list(&ListParams::default().limit(1)).await {
            Ok(_) if enforcement == Enforcement::Disabled => return,
            Ok(_) => policies
                .list(&ListParams::default().limit(1))
                .await
                .map(|_| ())
                .map_err(|e| ("TransferPolicy", e)),
            Err(err) => Err(("CrossAccountTransfer", err)),
        };
        match listed {
            Ok(()) => return,
            Err((kind, err)) => {
                if !logged {
                    warn!(error = %err, "waiting for the {kind} CRD: kubectl apply -f crds/ (helm upgrade does not install new CRDs)");
                    logged = true;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

/// The writers of the policy and namespace caches of [`crate::tenancy::Tenancy`]: the controller
/// feeds them from its watches.
pub struct TenancyFeeds {
    /// Fills `Tenancy::policies`.
    pub policies: reflector::store::Writer<TransferPolicy>,
    /// Fills `Tenancy::namespaces`.
    pub namespaces: reflector::store::Writer<Namespace>,
    /// Sets `Tenancy::listed`.
    pub listed: tokio::sync::watch::Sender<bool>,
    /// The transfers `Context::task_queue` wakes (namespace, name).
    pub woken: tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
}

/// Runs the controller until `shutdown` completes; running reconciles are allowed to finish.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
    feeds: TenancyFeeds,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<DeserializeGuard<CrossAccountTransfer>> = match &namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    info!(
        namespace = namespace.as_deref().unwrap_or("(all)"),
        "controller started"
    );
    // No limit in kube's runner: it keeps due objects in a hash set while at its limit and
    // takes them in hash order, so under steady load some objects never got their turn (1,000
    // transfers with a limit of 16 stalled). `Context::limited` bounds the work instead, first
    // come first served.
    // The cache keeps every transfer; their managedFields (a few KiB each, as nested JSON maps
    // in memory) are never read by Ferry, so they are dropped as the objects arrive.
    let (reader, writer) = reflector::store();
    let objects = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|guard: &mut DeserializeGuard<CrossAccountTransfer>| {
            if let Ok(obj) = &mut guard.0 {
                obj.metadata.managed_fields = None;
            }
        })
        .reflect(writer)
        .applied_objects();
    let TenancyFeeds {
        policies,
        namespaces: namespace_feed,
        listed,
        woken,
    } = feeds;
    let woken = futures::stream::unfold(woken, |mut rx| async move {
        let (namespace, name): (String, String) = rx.recv().await?;
        Some((ObjectRef::new(&name).within(&namespace), rx))
    });
    let mut controller = Controller::for_stream(objects, reader.clone()).reconcile_on(woken);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if ctx.tenancy.enforcement == Enforcement::Enforce {
        let stores = (policies, namespace_feed, listed);
        controller = watch_tenancy(controller, &ctx, namespace.as_deref(), &reader, stores, stop_rx);
    }
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(error = %err, "reconcile loop");
            }
        })
        .await;
    let _ = stop_tx.send(true);
    info!("controller stopped");
}

/// The writers of the tenancy stores, and the signal that both are listed.
type TenancyStores = (
    reflector::store::Writer<TransferPolicy>,
    reflector::store::Writer<Namespace>,
    tokio::sync::watch::Sender<bool>,
);

/// With TransferPolicies enforced: the controller also reconciles every transfer when a
/// policy changes (or goes), and a namespace's transfers when its labels change; the tenancy
/// stores are filled, and the policies' status kept, until `stop`.
fn watch_tenancy(
    controller: Controller<DeserializeGuard<CrossAccountTransfer>>,
    ctx: &Arc<Context>,
    namespace: Option<&str>,
    reader: &reflector::Store<DeserializeGuard<CrossAccountTransfer>>,
    (policy_feed, namespace_feed, listed): TenancyStores,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Controller<DeserializeGuard<CrossAccountTransfer>> {
    // A policy that changes (or goes) may change the answer for any transfer; a namespace
    // whose labels change, for its transfers.
    let policies = watcher(
        Api::<TransferPolicy>::all(ctx.client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .modify(|p: &mut TransferPolicy| p.metadata.managed_fields = None)
    .reflect(policy_feed)
    .touched_objects()
    .filter(changed(ctx.tenancy.policies.clone(), |p| {
        p.metadata.generation.unwrap_or_default() as u64
    }));
    let namespace_config = match namespace {
        Some(ns) => watcher::Config::default().fields(&format!("metadata.name={ns}")),
        None => watcher::Config::default(),
    };
    let namespaces = watcher(Api::<Namespace>::all(ctx.client.clone()), namespace_config)
        .default_backoff()
        .modify(|n: &mut Namespace| n.metadata.managed_fields = None)
        .reflect(namespace_feed)
        .touched_objects()
        .filter(changed(ctx.tenancy.namespaces.clone(), |n| {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            n.labels().hash(&mut h);
            h.finish()
        }));
    let tenancy = ctx.tenancy.clone();
    tokio::spawn(async move {
        let _ = tenancy.policies.wait_until_ready().await;
        let _ = tenancy.namespaces.wait_until_ready().await;
        let _ = listed.send(true);
    });
    tokio::spawn(report_policies(ctx.clone(), reader.clone(), stop));
    let all = reader.clone();
    let within = reader.clone();
    controller
        .watches_stream(policies, move |_: TransferPolicy| {
            all.state()
                .iter()
                .map(|o| ObjectRef::from_obj(&**o))
                .collect::<Vec<_>>()
        })
        .watches_stream(namespaces, move |ns: Namespace| {
            let name = ns.name_any();
            within
                .state()
                .iter()
                .filter(|o| {
                    o.0.as_ref()
                        .is_ok_and(|t| t.namespace().as_deref() == Some(name.as_str()))
                })
                .map(|o| ObjectRef::from_obj(&**o))
                .collect::<Vec<_>>()
        })
}

/// A filter for a watch stream after `reflect`: passes an object only when `key` of it differs
/// from the one last passed, or it is gone from `store` (deleted). So Ferry's own writes of the
/// policies' status, and namespace changes other than labels, reconcile no transfer: with a
/// fleet converging, the status changes every few seconds and would reconcile every transfer.
fn changed<K>(
    store: reflector::Store<K>,
    key: fn(&K) -> u64,
) -> impl FnMut(&Result<K, watcher::Error>) -> std::future::Ready<bool>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    let mut last: std::collections::HashMap<String, u64> = Default::default();
    move |item| {
        let Ok(obj) = item else {
            return std::future::ready(true);
        };
        let name = obj.name_any();
        let pass = if store.get(&ObjectRef::from_obj(obj)).is_none() {
            last.remove(&name);
            true
        } else {
            last.insert(name, key(obj)) != Some(key(obj))
        };
        std::future::ready(pass)
    }
}

/// How often the policies' status (namespaces selected, transfers permitted) is brought up to
/// date; it is written only when it changed.
const POLICY_REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// Keeps every `TransferPolicy`'s status up to date until `stop`.
async fn report_policies(
    ctx: Arc<Context>,
    transfers: reflector::Store<DeserializeGuard<CrossAccountTransfer>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    ctx.tenancy.ready().await;
    let api: Api<TransferPolicy> = Api::all(ctx.client.clone());
    loop {
        let state = transfers.state();
        let live: Vec<&CrossAccountTransfer> = state
            .iter()
            .filter_map(|g| g.0.as_ref().ok())
            .filter(|t| t.metadata.deletion_timestamp.is_none())
            .collect();
        let policies = ctx.tenancy.policies.state();
        let namespaces = ctx.tenancy.namespaces.state();
        let reports = policy_reports(
            policies.iter().map(|p| &**p),
            namespaces.iter().map(|n| &**n),
            live.iter().copied(),
        );
        for (policy, report) in policies.iter().zip(reports) {
            if policy.status.as_ref() == Some(&report) {
                continue;
            }
            let patch = json!({"status": report});
            if let Err(err) = api
                .patch_status(&policy.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::debug!(policy = policy.name_any(), error = %err, "policy status");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(POLICY_REPORT_INTERVAL) => {},
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

async fn reconcile(guard: Arc<DeserializeGuard<CrossAccountTransfer>>, ctx: Arc<Context>) -> Result<Action> {
    let obj = match &guard.0 {
        Ok(obj) => obj,
        Err(invalid) => {
            let name = invalid.metadata.name.clone().unwrap_or_default();
            warn!(name, error = %invalid.error, "cannot read CrossAccountTransfer");
            ctx.metrics.error("InvalidObject");
            return Ok(Action::await_change());
        }
    };
    // The watch cache may not have Ferry's own last status write yet (a busy API server
    // delivers events late, and a requeue comes on a timer): a reconcile of that older copy
    // would start a run or create a task a second time, or write back an outdated status.
    let fresh;
    let obj = if ctx.memory.outdated(obj) {
        let api: Api<CrossAccountTransfer> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
        match api.get_opt(&obj.name_any()).await {
            Ok(Some(current)) => {
                fresh = current;
                &fresh
            }
            Ok(None) => return Ok(Action::await_change()),
            Err(err) => return Err(Error::from(err)),
        }
    } else {
        obj
    };
    let span = info_span!("reconcile", resource = %format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any()), generation = obj.metadata.generation.unwrap_or_default());
    async move {
        let started = Instant::now();
        let deleting = obj.metadata.deletion_timestamp.is_some();
        let uid = obj.uid().unwrap_or_default();
        let (result, kind) = if deleting {
            ctx.memory.forget(&uid);
            ctx.memory.set_running(&uid, false);
            ctx.task_queue.leave(&uid);
            (ctx.limited(|| cleanup_transfer(obj, &ctx)).await, "cleanup")
        } else {
            apply(obj, &ctx).await
        };
        ctx.metrics.reconciled(kind, result.is_ok(), started.elapsed());
        match result {
            Ok(action) => Ok(action),
            Err(Failure { error, announced }) => {
                // Until the error's retry delay, nothing (not even the watch event of the status
                // that reports the failure) reconciles the transfer again, unless it changes.
                let retry = error.retry_after(ctx.config.stalled_retry).unwrap_or(AWAIT_CHANGE);
                let token = obj.run_token().map(str::to_string);
                ctx.memory
                    .failed(&uid, obj.metadata.generation.unwrap_or_default(), token, retry);
                ctx.metrics.error(error.reason());
                if !announced {
                    announce(&ctx, obj, &error).await;
                }
                Err(error)
            }
        }
    }
    .instrument(span)
    .await
}

/// How long a transfer whose error only a change can fix (an invalid spec) waits: until it
/// changes, in effect.
const AWAIT_CHANGE: Duration = Duration::from_secs(365 * 24 * 3600);

/// A failed reconcile, and whether its failure was announced already (logged, and published as
/// a Warning event). A status that shows a failure is written only after the failure's event
/// exists, so whoever reads the failure in the status finds the event too.
struct Failure {
    error: Error,
    announced: bool,
}

impl Failure {
    /// A failure that was just announced (its status is written next).
    fn announced(error: Error) -> Self {
        Self { error, announced: true }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Self {
            error,
            announced: false,
        }
    }
}

/// Logs a failure and publishes its Warning event; IAM propagation, which fixes itself within
/// seconds, is only logged.
async fn announce(ctx: &Context, obj: &CrossAccountTransfer, err: &Error) {
    if let Error::IamPropagation { .. } = err {
        info!("{err}");
    } else {
        warn!(reason = err.reason(), "{err}");
        ctx.publish(obj, EventType::Warning, err.reason(), err.to_string())
            .await;
    }
}

fn error_policy(_obj: Arc<DeserializeGuard<CrossAccountTransfer>>, err: &Error, ctx: Arc<Context>) -> Action {
    match err.retry_after(ctx.config.stalled_retry) {
        None => Action::await_change(),
        Some(after) => Action::requeue(after),
    }
}

async fn patch_finalizers(ctx: &Context, obj: &CrossAccountTransfer, finalizers: Vec<String>) -> Result<()> {
    let api: Api<CrossAccountTransfer> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    // The resourceVersion makes this a compare-and-swap: a concurrent change wins and we retry.
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": obj.resource_version()}});
    api.patch(&obj.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// What a reconcile does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Every step: something changed, or the drift check is due.
    Full,
    /// Only `DescribeTaskExecution` of the running execution: one AWS call.
    Poll,
    /// Nothing is due (typically the watch event of Ferry's own status write): no AWS call.
    Wait(Duration),
}

/// This transfer's drift-check interval: the resync interval spread by up to ±10% by its uid,
/// so the checks of a fleet applied at once do not all come at once (pure).
pub fn resync_for(uid: &str, resync: Duration) -> Duration {
    let spread = uid
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % 2001;
    resync.mul_f64(0.9 + f64::from(spread) / 10_000.0)
}

/// What this reconcile must do (pure): a full check when the spec or the run request changed,
/// a run is pending, nothing is remembered or the drift check is due; a poll when an execution
/// runs and the poll interval passed; else nothing until the next of those.
pub fn next_step(obj: &CrossAccountTransfer, seen: Option<&Seen>, now: Instant, config: &ControllerConfig) -> Next {
    let Some(seen) = seen else { return Next::Full };
    let generation = obj.metadata.generation.unwrap_or_default();
    let token = obj.run_token().map(str::to_string);
    let empty = CrossAccountTransferStatus::default();
    let status = obj.status.as_ref().unwrap_or(&empty);
    if seen.generation != generation || seen.token != token {
        return Next::Full;
    }
    if let Some(retry_at) = seen.retry_at {
        return if now >= retry_at {
            Next::Full
        } else {
            Next::Wait(retry_at - now)
        };
    }
    if !obj.status_is_current()
        || obj
            .spec
            .pending_run(generation, token.as_deref(), status.last_run.as_ref())
            .is_some()
    {
        return Next::Full;
    }
    let awaiting = matches!(status.phase, Some(Phase::AwaitingDestination | Phase::AwaitingSource));
    let check_every = if awaiting {
        config.external_retry
    } else {
        resync_for(&obj.uid().unwrap_or_default(), config.resync_interval)
    };
    let check_at = seen.checked_at + check_every;
    if now >= check_at {
        return Next::Full;
    }
    if status.execution.as_ref().is_some_and(ExecutionStatus::is_running) {
        let poll_at = seen.polled_at + config.poll_interval;
        return if now >= poll_at {
            Next::Poll
        } else {
            Next::Wait(poll_at.min(check_at) - now)
        };
    }
    Next::Wait(check_at - now)
}

/// Whether the status already reports this very refusal for this spec and run request.
fn refusal_reported(obj: &CrossAccountTransfer, message: &str) -> bool {
    obj.status_is_current()
        && obj.status.as_ref().is_some_and(|s| {
            s.conditions.iter().any(|c| {
                c.type_ == "Stalled" && c.status == "True" && c.reason == "NotPermitted" && c.message == message
            })
        })
}

/// Whether the status reports a refusal by the policies (of any spec).
fn refused_before(obj: &CrossAccountTransfer) -> bool {
    obj.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Stalled" && c.reason == "NotPermitted")
    })
}

/// The policies' answer for a transfer, before anything else: a refused transfer gets
/// `Stalled`/`NotPermitted`, a Warning event, and no AWS call (nor a finalizer, when it has none
/// yet: nothing in AWS to clean up). `None`: permitted, go on.
async fn refuse(obj: &CrossAccountTransfer, ctx: &Context) -> Option<Result<Action, Failure>> {
    ctx.tenancy.ready().await;
    let namespace = obj.namespace().unwrap_or_default();
    match ctx.tenancy.decide(&obj.spec, &namespace, |_| true) {
        Verdict::Permitted { .. } => {
            if refused_before(obj) {
                // What a refusal remembered (wait for a change) no longer holds.
                ctx.memory.forget(&obj.uid().unwrap_or_default());
            }
            None
        }
        Verdict::Refused { message } => {
            let err = Error::NotPermitted(message);
            if refusal_reported(obj, &err.to_string()) {
                return Some(Ok(Action::await_change()));
            }
            Some(finish(ctx, obj, obj.status.clone().unwrap_or_default(), Err(err)).await)
        }
    }
}

async fn apply(obj: &CrossAccountTransfer, ctx: &Context) -> (Result<Action, Failure>, &'static str) {
    if let Some(refused) = refuse(obj, ctx).await {
        return (refused, "refused");
    }
    if !obj.finalizers().iter().any(|f| f == FINALIZER) {
        let mut finalizers = obj.finalizers().to_vec();
        finalizers.push(FINALIZER.to_string());
        // The patch triggers the next reconcile.
        return (
            patch_finalizers(ctx, obj, finalizers)
                .await
                .map(|()| Action::await_change())
                .map_err(Failure::from),
            "apply",
        );
    }
    let uid = obj.uid().unwrap_or_default();
    let now = Instant::now();
    let config = ctx.config.for_fleet(ctx.memory.running());
    if ctx.task_queue.take_woken(&uid) {
        // First in line for a freed task slot: a full check now, whatever the retry delay said.
        ctx.memory.forget(&uid);
    }
    let seen = ctx.memory.get(&uid);
    // Behind another transfer in a task queue, and unchanged: nothing to ask AWS until woken.
    if ctx.task_queue.behind_another(&uid)
        && seen.as_ref().is_some_and(|s| {
            s.generation == obj.metadata.generation.unwrap_or_default() && s.token.as_deref() == obj.run_token()
        })
    {
        return (Ok(Action::await_change()), "queued");
    }
    match next_step(obj, seen.as_ref(), now, &config) {
        Next::Wait(after) => return (Ok(Action::requeue(after)), "idle"),
        Next::Poll => {
            let result = ctx.limited(|| poll(obj, ctx)).await;
            if result.is_ok()
                && let Some(mut seen) = ctx.memory.get(&uid)
            {
                seen.polled_at = now;
                ctx.memory.set(&uid, seen);
            }
            return (result, "poll");
        }
        Next::Full => {}
    }
    let result = ctx.limited(|| full_check(obj, ctx)).await;
    if result.is_ok() {
        ctx.memory.set(
            &uid,
            Seen {
                generation: obj.metadata.generation.unwrap_or_default(),
                token: obj.run_token().map(str::to_string),
                checked_at: now,
                polled_at: now,
                retry_at: None,
            },
        );
    }
    (result, "apply")
}

/// One poll of the running execution: `DescribeTaskExecution`, then the status.
async fn poll(obj: &CrossAccountTransfer, ctx: &Context) -> Result<Action, Failure> {
    let status = obj.status.clone().unwrap_or_default();
    let mut transfer = match Transfer::new(ctx, obj, status.clone()).await {
        Ok(t) => t,
        Err(err) => return finish(ctx, obj, status, Err(err)).await,
    };
    let mut progress = steps::execution::poll(&mut transfer).await;
    // A run that just ended may have made DataSync disable the task's schedule: look once.
    let ended = !transfer
        .status
        .execution
        .as_ref()
        .is_some_and(ExecutionStatus::is_running);
    if progress.is_ok() && ended && obj.spec.schedule.is_some() {
        progress = steps::task::observe_schedule(&mut transfer).await;
    }
    // A one-off transfer gives its task back as soon as its run succeeded.
    if progress.is_ok() && ended {
        progress = steps::retired::release_after_success(&mut transfer).await;
    }
    let progress = progress.map(|()| Progress::Provisioned);
    let status = std::mem::take(&mut transfer.status);
    finish(ctx, obj, status, progress).await
}

/// Every step, in order, then the status.
async fn full_check(obj: &CrossAccountTransfer, ctx: &Context) -> Result<Action, Failure> {
    let problems = obj.spec.validate();
    if !problems.is_empty() {
        let err = Error::InvalidSpec(problems.join("; "));
        return finish(ctx, obj, obj.status.clone().unwrap_or_default(), Err(err)).await;
    }
    // A spec or run request not reconciled yet is InProgress at once (GitOps tools and
    // `kubectl wait` wait on this), not after the whole pipeline ran.
    let mut status = obj.status.clone().unwrap_or_default();
    if !obj.status_is_current() {
        summarize(obj, &mut status, &Outcome::InProgress);
        summary::write(ctx, obj, &status).await?;
    }
    let mut transfer = match Transfer::new(ctx, obj, status.clone()).await {
        Ok(t) => t,
        Err(err) => return finish(ctx, obj, status, Err(err)).await,
    };
    let progress = steps::provision(&mut transfer).await;
    let status = std::mem::take(&mut transfer.status);
    finish(ctx, obj, status, progress).await
}

/// When to reconcile a transfer again after a pipeline that did not fail (pure): soon while an
/// execution runs or is about to start, at the External-mode retry while Account B has not
/// acted, else at its drift check (runs a DataSync schedule starts are found then).
pub fn requeue_after(
    progress: Progress,
    uid: &str,
    status: &CrossAccountTransferStatus,
    config: &ControllerConfig,
) -> Duration {
    let running = status.execution.as_ref().is_some_and(ExecutionStatus::is_running);
    let pending = status.phase == Some(Phase::Transferring);
    match progress {
        Progress::Awaiting(_) => config.external_retry,
        Progress::Provisioned if running || pending => config.poll_interval,
        Progress::Provisioned => resync_for(uid, config.resync_interval),
    }
}

/// Summarises, writes the status, and turns the outcome into the next action.
async fn finish(
    ctx: &Context,
    obj: &CrossAccountTransfer,
    mut status: CrossAccountTransferStatus,
    progress: Result<Progress>,
) -> Result<Action, Failure> {
    if let Err(err) = &progress {
        announce(ctx, obj, err).await;
    }
    let outcome = match &progress {
        Ok(Progress::Provisioned) => Outcome::Provisioned,
        Ok(Progress::Awaiting(side)) => Outcome::Awaiting(*side),
        Err(err) => Outcome::Failed {
            reason: err.reason().to_string(),
            message: err.to_string(),
            stalled: err.is_stalled(),
        },
    };
    summarize(obj, &mut status, &outcome);
    summary::write(ctx, obj, &status).await?;
    let uid = obj.uid().unwrap_or_default();
    let running =
        status.execution.as_ref().is_some_and(ExecutionStatus::is_running) || status.phase == Some(Phase::Transferring);
    ctx.memory.set_running(&uid, running);
    let config = ctx.config.for_fleet(ctx.memory.running());
    let progress = progress.map_err(Failure::announced)?;
    Ok(Action::requeue(requeue_after(progress, &uid, &status, &config)))
}

async fn cleanup_transfer(obj: &CrossAccountTransfer, ctx: &Context) -> Result<Action, Failure> {
    if !obj.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let (namespace, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
    if obj.spec.deletion_policy == DeletionPolicy::Retain {
        ctx.publish(
            obj,
            EventType::Normal,
            "Retained",
            "deletionPolicy Retain: the role, locations, task and bucket settings stay in AWS".into(),
        )
        .await;
    } else if let Some(why) = cleanup_refused(obj, ctx).await {
        ctx.publish(obj, EventType::Warning, "CleanupNotPermitted", why).await;
    } else {
        let mut transfer = Transfer::new(ctx, obj, obj.status.clone().unwrap_or_default()).await?;
        if let Err(err) = cleanup::run(&mut transfer).await {
            announce(ctx, obj, &err).await;
            let mut status = std::mem::take(&mut transfer.status);
            let outcome = Outcome::Failed {
                reason: err.reason().to_string(),
                message: format!("deleting: {err}; set spec.deletionPolicy to Retain to let go without cleaning up"),
                stalled: false,
            };
            summarize(obj, &mut status, &outcome);
            // The status write is best effort: the object is on its way out.
            let _ = summary::write(ctx, obj, &status).await;
            return Err(Failure::announced(err));
        }
        ctx.publish(
            obj,
            EventType::Normal,
            "CleanedUp",
            "removed everything Ferry created in AWS".into(),
        )
        .await;
    }
    let finalizers: Vec<String> = obj.finalizers().iter().filter(|f| *f != FINALIZER).cloned().collect();
    patch_finalizers(ctx, obj, finalizers).await?;
    ctx.memory.gone(&obj.uid().unwrap_or_default());
    ctx.metrics.forget_transfer(&namespace, &name);
    Ok(Action::await_change())
}

/// Why a deleted transfer's cleanup may not call AWS, if it may not: its spec names an identity
/// (`source.roleArn`, Account B's role) that no policy grants. Removing what Ferry made for the
/// transfer needs nothing else granted: it only takes away.
async fn cleanup_refused(obj: &CrossAccountTransfer, ctx: &Context) -> Option<String> {
    if ctx.tenancy.enforcement == Enforcement::Disabled {
        return None;
    }
    ctx.tenancy.ready().await;
    let namespace = obj.namespace().unwrap_or_default();
    let Verdict::Refused { message } = ctx
        .tenancy
        .decide(&obj.spec, &namespace, |f| IDENTITY_FIELDS.contains(&f))
    else {
        return None;
    };
    let status = obj.status.clone().unwrap_or_default();
    let foreign_bucket = status.foreign(obj.spec.pulls()).and_then(|d| d.bucket.clone());
    let mut left: Vec<String> = [
        status.task_arn,
        status.source_location_arn,
        status.destination_location_arn,
    ]
    .into_iter()
    .flatten()
    .chain(status.role.filter(|r| r.managed).map(|r| r.arn))
    .chain(status.retired)
    .collect();
    if let Some(bucket) = foreign_bucket {
        left.push(format!("Ferry's statement in the policy of bucket {bucket}"));
    }
    let left = if left.is_empty() {
        "nothing recorded".to_string()
    } else {
        left.join(", ")
    };
    Some(format!(
        "the transfer is gone, but Ferry made no AWS call to clean up after it: {message}. Left in AWS: {left}; remove them by hand"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_spec_changes_and_deletions_of_a_policy_reconcile_transfers() {
        let (store, mut writer) = reflector::store::<TransferPolicy>();
        let mut filter = changed(store, |p| p.metadata.generation.unwrap_or_default() as u64);
        let mut policy: TransferPolicy = serde_json::from_value(json!({
            "apiVersion": "ferry.dev/v1alpha1", "kind": "TransferPolicy",
            "metadata": {"name": "p", "generation": 1},
            "spec": {"namespaces": {"names": ["a"]}, "source": {"buckets": ["b"], "regions": ["*"]},
                     "destination": {"accounts": ["*"], "buckets": ["*"], "regions": ["*"]}}
        }))
        .unwrap();
        let mut pass = |writer: &mut reflector::store::Writer<TransferPolicy>,
                        event: watcher::Event<TransferPolicy>| {
            writer.apply_watcher_event(&event);
            let obj = match event {
                watcher::Event::Apply(o) | watcher::Event::Delete(o) => o,
                _ => unreachable!(),
            };
            futures::executor::block_on(filter(&Ok(obj)))
        };
        assert!(pass(&mut writer, watcher::Event::Apply(policy.clone())), "a new policy");
        policy.status = Some(Default::default());
        assert!(
            !pass(&mut writer, watcher::Event::Apply(policy.clone())),
            "a status write"
        );
        policy.metadata.generation = Some(2);
        assert!(
            pass(&mut writer, watcher::Event::Apply(policy.clone())),
            "a spec change"
        );
        assert!(pass(&mut writer, watcher::Event::Delete(policy)), "a deletion");
    }
    use crate::api::RUN_ANNOTATION;
    use crate::fixtures;
    use serde_json::json;

    fn status(execution: Option<&str>, phase: Phase) -> CrossAccountTransferStatus {
        CrossAccountTransferStatus {
            phase: Some(phase),
            execution: execution.map(|s| ExecutionStatus {
                arn: "e".into(),
                status: s.into(),
                ..ExecutionStatus::default()
            }),
            ..CrossAccountTransferStatus::default()
        }
    }

    #[test]
    fn requeue_follows_what_the_transfer_waits_for() {
        let config = ControllerConfig::default();
        let settled = status(Some("SUCCESS"), Phase::Succeeded);
        let running = status(Some("TRANSFERRING"), Phase::Transferring);
        let about_to_start = status(None, Phase::Transferring);
        let poll = config.poll_interval;
        assert_eq!(requeue_after(Progress::Provisioned, "u", &running, &config), poll);
        assert_eq!(
            requeue_after(Progress::Provisioned, "u", &about_to_start, &config),
            poll
        );
        assert_eq!(
            requeue_after(Progress::Provisioned, "u", &settled, &config),
            resync_for("u", config.resync_interval)
        );
        assert_eq!(
            requeue_after(
                Progress::Awaiting(crate::desired::Side::Destination),
                "u",
                &settled,
                &config
            ),
            config.external_retry
        );
    }

    #[test]
    fn drift_checks_spread_within_ten_percent() {
        let resync = Duration::from_secs(1000);
        let spread: Vec<Duration> = (0..50).map(|i| resync_for(&format!("uid-{i}"), resync)).collect();
        assert!(
            spread
                .iter()
                .all(|d| *d >= Duration::from_secs(900) && *d <= Duration::from_secs(1100))
        );
        assert!(spread.iter().any(|d| *d != spread[0]), "not all the same");
        assert_eq!(resync_for("x", resync), resync_for("x", resync), "stable per transfer");
    }

    fn observed(overrides: serde_json::Value, status: CrossAccountTransferStatus) -> CrossAccountTransfer {
        let mut obj = fixtures::transfer(overrides);
        obj.status = Some(CrossAccountTransferStatus {
            observed_generation: Some(2),
            last_run: Some(crate::api::RunRequest {
                generation: Some(2),
                token: None,
                execution_arn: Some("e".into()),
                failed_only: None,
            }),
            ..status
        });
        obj
    }

    #[test]
    fn only_what_is_due_is_done() {
        let config = ControllerConfig::default();
        let t0 = Instant::now();
        let seen = Seen {
            generation: 2,
            token: None,
            checked_at: t0,
            polled_at: t0,
            retry_at: None,
        };
        let settled = observed(json!({}), status(Some("SUCCESS"), Phase::Succeeded));
        let running = observed(json!({}), status(Some("TRANSFERRING"), Phase::Transferring));
        // Nothing remembered (a restart): everything is checked.
        assert_eq!(next_step(&settled, None, t0, &config), Next::Full);
        // Ferry's own status write: nothing to do until the drift check.
        let Next::Wait(after) = next_step(&settled, Some(&seen), t0 + Duration::from_secs(1), &config) else {
            panic!("a settled transfer waits");
        };
        assert!(after > Duration::from_secs(30 * 60));
        // A running execution: one poll per interval, not more.
        assert!(matches!(
            next_step(&running, Some(&seen), t0 + Duration::from_secs(1), &config),
            Next::Wait(_)
        ));
        assert_eq!(
            next_step(&running, Some(&seen), t0 + config.poll_interval, &config),
            Next::Poll
        );
        // The drift check comes on its interval, running or not.
        assert_eq!(
            next_step(&running, Some(&seen), t0 + config.resync_interval.mul_f64(1.1), &config),
            Next::Full
        );
        // A spec change, a new run request: everything at once.
        let mut changed = settled.clone();
        changed.metadata.generation = Some(3);
        assert_eq!(next_step(&changed, Some(&seen), t0, &config), Next::Full);
        let mut asked = settled.clone();
        asked
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(RUN_ANNOTATION.into(), "again".into());
        assert_eq!(next_step(&asked, Some(&seen), t0, &config), Next::Full);
    }

    #[test]
    fn a_failed_reconcile_waits_for_its_retry_unless_the_transfer_changes() {
        let config = ControllerConfig::default();
        let t0 = Instant::now();
        let failed = Seen {
            generation: 2,
            token: None,
            checked_at: t0,
            polled_at: t0,
            retry_at: Some(t0 + Duration::from_secs(10)),
        };
        // The run it failed to start is still pending, and its failure status was just written:
        // still nothing before the retry (a create whose answer never came may yet be done).
        let mut pending = observed(json!({}), status(Some("SUCCESS"), Phase::Transferring));
        pending
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(RUN_ANNOTATION.into(), "again".into());
        let seen = Seen {
            token: Some("again".into()),
            ..failed.clone()
        };
        assert_eq!(
            next_step(&pending, Some(&seen), t0 + Duration::from_secs(1), &config),
            Next::Wait(Duration::from_secs(9))
        );
        assert_eq!(
            next_step(&pending, Some(&seen), t0 + Duration::from_secs(10), &config),
            Next::Full
        );
        // A change is looked at at once.
        let mut changed = pending.clone();
        changed.metadata.generation = Some(3);
        assert_eq!(next_step(&changed, Some(&seen), t0, &config), Next::Full);
    }
}
