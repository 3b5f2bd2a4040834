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
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tracing::{Instrument, info, info_span, warn};

use crate::api::{
    CrossAccountTransfer, CrossAccountTransferSpec, CrossAccountTransferStatus, DeletionPolicy, ExecutionStatus,
    FINALIZER, Phase,
};
use crate::context::{Context, ControllerConfig};
use crate::error::{Error, Result};
use crate::status::{self, Outcome, summarize};
use crate::steps::{self, Progress, Transfer, cleanup};

/// Waits until the CRD is served (listing works), so the watch does not start against a
/// missing API. Needs only the list permission Ferry has anyway.
pub async fn wait_for_crd(client: &Client, namespace: Option<&str>) {
    let api: Api<CrossAccountTransfer> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut logged = false;
    loop {
        match api.list(&ListParams::default().limit(1)).await {
            Ok(_) => return,
            Err(err) => {
                if !logged {
                    warn!(error = %err, "waiting for the CrossAccountTransfer CRD (install crds/ or the Helm chart)");
                    logged = true;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

/// Runs the controller until `shutdown` completes; running reconciles are allowed to finish.
pub async fn run(
    ctx: Arc<Context>,
    namespace: Option<String>,
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
    Controller::new(api, watcher::Config::default())
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(error = %err, "reconcile loop");
            }
        })
        .await;
    info!("controller stopped");
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
    let span = info_span!("reconcile", resource = %format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any()), generation = obj.metadata.generation.unwrap_or_default());
    async move {
        let started = Instant::now();
        let deleting = obj.metadata.deletion_timestamp.is_some();
        let result = if deleting {
            cleanup_transfer(obj, &ctx).await
        } else {
            apply(obj, &ctx).await
        };
        ctx.metrics.reconciled(
            if deleting { "cleanup" } else { "apply" },
            result.is_ok(),
            started.elapsed(),
        );
        if let Err(err) = &result {
            ctx.metrics.error(err.reason());
            match err {
                Error::IamPropagation { .. } => info!("{err}"),
                _ => {
                    warn!(reason = err.reason(), "{err}");
                    ctx.publish(obj, EventType::Warning, err.reason(), err.to_string())
                        .await;
                }
            }
        }
        result
    }
    .instrument(span)
    .await
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

async fn apply(obj: &CrossAccountTransfer, ctx: &Context) -> Result<Action> {
    if !obj.finalizers().iter().any(|f| f == FINALIZER) {
        let mut finalizers = obj.finalizers().to_vec();
        finalizers.push(FINALIZER.to_string());
        patch_finalizers(ctx, obj, finalizers).await?;
        // The patch triggers the next reconcile.
        return Ok(Action::await_change());
    }

    let problems = obj.spec.validate();
    if !problems.is_empty() {
        let err = Error::InvalidSpec(problems.join("; "));
        return finish(ctx, obj, obj.status.clone().unwrap_or_default(), Err(err)).await;
    }
    // A spec not reconciled yet is InProgress at once (GitOps tools wait on this), not after
    // the whole pipeline ran.
    let mut status = obj.status.clone().unwrap_or_default();
    if status.observed_generation != obj.metadata.generation {
        summarize(obj, &mut status, &Outcome::InProgress);
        status::write(ctx, obj, &status).await?;
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
/// acted, every minute for a schedule (to catch the runs it starts), else at the resync interval.
pub fn requeue_after(
    progress: Progress,
    spec: &CrossAccountTransferSpec,
    status: &CrossAccountTransferStatus,
    config: &ControllerConfig,
) -> Duration {
    let running = status.execution.as_ref().is_some_and(ExecutionStatus::is_running);
    let pending = status.phase == Some(Phase::Transferring);
    match progress {
        Progress::AwaitingDestination => config.external_retry,
        Progress::Provisioned if running || pending => config.poll_interval,
        Progress::Provisioned if spec.schedule.is_some() => config.resync_interval.min(Duration::from_secs(60)),
        Progress::Provisioned => config.resync_interval,
    }
}

/// Summarises, writes the status, and turns the outcome into the next action.
async fn finish(
    ctx: &Context,
    obj: &CrossAccountTransfer,
    mut status: CrossAccountTransferStatus,
    progress: Result<Progress>,
) -> Result<Action> {
    let outcome = match &progress {
        Ok(Progress::Provisioned) => Outcome::Provisioned,
        Ok(Progress::AwaitingDestination) => Outcome::AwaitingDestination,
        Err(err) => Outcome::Failed {
            reason: err.reason().to_string(),
            message: err.to_string(),
            stalled: err.is_stalled(),
        },
    };
    summarize(obj, &mut status, &outcome);
    status::write(ctx, obj, &status).await?;
    Ok(Action::requeue(requeue_after(
        progress?,
        &obj.spec,
        &status,
        &ctx.config,
    )))
}

async fn cleanup_transfer(obj: &CrossAccountTransfer, ctx: &Context) -> Result<Action> {
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
    } else {
        let mut transfer = Transfer::new(ctx, obj, obj.status.clone().unwrap_or_default()).await?;
        if let Err(err) = cleanup::run(&mut transfer).await {
            let mut status = std::mem::take(&mut transfer.status);
            let outcome = Outcome::Failed {
                reason: err.reason().to_string(),
                message: format!("deleting: {err}; set spec.deletionPolicy to Retain to let go without cleaning up"),
                stalled: false,
            };
            summarize(obj, &mut status, &outcome);
            // The status write is best effort: the object is on its way out.
            let _ = status::write(ctx, obj, &status).await;
            return Err(err);
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
    ctx.metrics.forget_transfer(&namespace, &name);
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let plain = fixtures::spec(json!({}));
        let scheduled = fixtures::spec(json!({"schedule": "rate(1 day)"}));
        let settled = status(Some("SUCCESS"), Phase::Succeeded);
        let running = status(Some("TRANSFERRING"), Phase::Transferring);
        let about_to_start = status(None, Phase::Transferring);
        assert_eq!(
            requeue_after(Progress::Provisioned, &plain, &running, &config),
            config.poll_interval
        );
        assert_eq!(
            requeue_after(Progress::Provisioned, &plain, &about_to_start, &config),
            config.poll_interval
        );
        assert_eq!(
            requeue_after(Progress::Provisioned, &plain, &settled, &config),
            config.resync_interval
        );
        assert_eq!(
            requeue_after(Progress::Provisioned, &scheduled, &settled, &config),
            Duration::from_secs(60)
        );
        assert_eq!(
            requeue_after(Progress::AwaitingDestination, &plain, &settled, &config),
            config.external_retry
        );
    }
}
