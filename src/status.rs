//! Status bookkeeping: conditions whose `lastTransitionTime` only moves on a transition, the
//! summary (phase, `Ready`, `Reconciling`, `Stalled` with kstatus semantics) computed from
//! the step results, and the server-side-apply write under `ferry.dev/controller`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::api::{
    CrossAccountTransfer, CrossAccountTransferStatus, ExecutionStatus, FIELD_MANAGER, Phase, RUN_ANNOTATION,
    ReportSummary, condition,
};
use crate::context::Context;
use crate::error::Result;

/// Sets a condition; `lastTransitionTime` changes only when the status changes.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: i64,
) {
    let now = Time(jiff::Timestamp::now());
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = now;
            }
            c.status = status.to_string();
            c.reason = reason.to_string();
            c.message = message.to_string();
            c.observed_generation = Some(generation);
        }
        None => conditions.push(Condition {
            type_: type_.to_string(),
            status: status.to_string(),
            reason: reason.to_string(),
            message: message.to_string(),
            observed_generation: Some(generation),
            last_transition_time: now,
        }),
    }
}

/// How the reconcile ended, as far as the summary is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The pipeline is starting on a spec it has not reconciled yet.
    InProgress,
    /// Every step is in place.
    Provisioned,
    /// External mode, waiting for Account B.
    AwaitingDestination,
    /// A step failed; `stalled` when retrying cannot fix it.
    Failed {
        /// The error's reason (variant name).
        reason: String,
        /// The error message.
        message: String,
        /// Retrying cannot help.
        stalled: bool,
    },
}

/// Computes phase, `Ready`, `Reconciling` and `Stalled` from the outcome and the status (pure).
pub fn summarize(obj: &CrossAccountTransfer, status: &mut CrossAccountTransferStatus, outcome: &Outcome) {
    let generation = obj.metadata.generation.unwrap_or_default();
    let token = obj.run_token();
    let pending = obj
        .spec
        .pending_run(generation, token, status.last_run.as_ref())
        .is_some();
    let running = status.execution.as_ref().is_some_and(ExecutionStatus::is_running);
    let succeeded = status.execution.as_ref().is_some_and(ExecutionStatus::succeeded);
    let last_run_arn = status.last_run.as_ref().and_then(|l| l.execution_arn.clone());
    let current_run_failed = match (&status.execution, &last_run_arn) {
        (Some(e), Some(arn)) => &e.arn == arn && e.failed(),
        (Some(e), None) => e.failed(),
        _ => false,
    };

    // (phase, ready, ready reason, reconciling, stalled, message)
    let (phase, ready, reason, reconciling, stalled, message): (Phase, bool, String, bool, bool, String) = match outcome {
        Outcome::Failed {
            reason,
            message,
            stalled: true,
        } => (Phase::Failed, false, reason.clone(), false, true, message.clone()),
        Outcome::Failed { reason, message, .. } => {
            let phase = if running {
                Phase::Transferring
            } else if reason == "TaskQuotaReached" {
                // In line for a task slot: nothing more happens until its turn comes.
                Phase::Pending
            } else if status.task_arn.is_some() {
                status.phase.unwrap_or(Phase::Provisioning)
            } else {
                Phase::Provisioning
            };
            (phase, false, reason.clone(), true, false, message.clone())
        }
        Outcome::InProgress => (
            if running { Phase::Transferring } else { Phase::Provisioning },
            false,
            "Provisioning".into(),
            true,
            false,
            "Ferry is bringing the AWS resources in line with the spec".into(),
        ),
        Outcome::AwaitingDestination => (
            Phase::AwaitingDestination,
            false,
            "AwaitingDestination".into(),
            true,
            false,
            "waiting for Account B's administrator to apply the bucket policy in status.destination.requiredBucketPolicy".into(),
        ),
        Outcome::Provisioned if running => (
            Phase::Transferring,
            false,
            "Transferring".into(),
            true,
            false,
            format!("DataSync is copying: {}", status.progress.clone().unwrap_or_else(|| "0%".into())),
        ),
        Outcome::Provisioned if obj.spec.suspend => (
            Phase::Suspended,
            true,
            "Suspended".into(),
            false,
            false,
            "suspended: Ferry starts no execution and the DataSync schedule is disabled".into(),
        ),
        Outcome::Provisioned if pending => (
            Phase::Transferring,
            false,
            "RunPending".into(),
            true,
            false,
            "an execution is about to start".into(),
        ),
        Outcome::Provisioned if current_run_failed => {
            let e = status.execution.clone().unwrap_or_default();
            (
                Phase::Failed,
                false,
                "ExecutionFailed".into(),
                false,
                true,
                format!(
                    "execution {} failed: {}: {}{}; fix the cause, then set the annotation {RUN_ANNOTATION} to a new value (or change the spec) to run again",
                    e.arn,
                    e.error_code.clone().unwrap_or_default(),
                    e.error_detail.clone().unwrap_or_default(),
                    e.report.as_ref().map(ReportSummary::note).unwrap_or_default()
                ),
            )
        }
        Outcome::Provisioned if succeeded => {
            let failed = status.execution.as_ref().map(|e| e.files_failed).unwrap_or_default();
            let report = status
                .execution
                .as_ref()
                .and_then(|e| e.report.as_ref())
                .map_or_else(|| "the task report".to_string(), |r| format!("the task report {}", r.location));
            if failed > 0 {
                // Healthy for GitOps (the run finished), but never a clean success.
                (
                    Phase::Succeeded,
                    true,
                    "SucceededWithFailures".into(),
                    false,
                    false,
                    format!("the transfer finished, but {failed} items failed to transfer or verify; see {report} (status.execution.report) or the DataSync logs, then set the annotation {RUN_ANNOTATION} to run again"),
                )
            } else {
                (
                    Phase::Succeeded,
                    true,
                    "Succeeded".into(),
                    false,
                    false,
                    "the transfer succeeded".into(),
                )
            }
        }
        Outcome::Provisioned => (
            Phase::Ready,
            true,
            "Provisioned".into(),
            false,
            false,
            "every AWS resource is in place; no execution asked for".into(),
        ),
    };
    status.phase = Some(phase);
    status.observed_generation = Some(generation);
    status.observed_run_token = token.map(str::to_string);
    let conds = &mut status.conditions;
    let tf = |b: bool| if b { "True" } else { "False" };
    set_condition(conds, condition::READY, tf(ready), &reason, &message, generation);
    set_condition(
        conds,
        condition::RECONCILING,
        tf(reconciling),
        if reconciling { &reason } else { "Idle" },
        if reconciling { &message } else { "" },
        generation,
    );
    set_condition(
        conds,
        condition::STALLED,
        tf(stalled),
        if stalled { &reason } else { "NotStalled" },
        if stalled { &message } else { "" },
        generation,
    );
}

/// Writes the whole status with server-side apply (forced, field manager `ferry.dev/controller`).
pub async fn write(ctx: &Context, obj: &CrossAccountTransfer, status: &CrossAccountTransferStatus) -> Result<()> {
    let api: Api<CrossAccountTransfer> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": "ferry.dev/v1alpha1",
        "kind": "CrossAccountTransfer",
        "status": status,
    });
    let written = api
        .patch_status(
            &obj.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    if let (Some(uid), Some(version)) = (obj.uid(), written.resource_version()) {
        ctx.memory.wrote(&uid, &version);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ExecutionStatus, RunRequest};

    fn obj(extra: serde_json::Value) -> CrossAccountTransfer {
        let mut overrides = crate::fixtures::external();
        crate::fixtures::merge(&mut overrides, &extra);
        crate::fixtures::transfer(overrides)
    }

    fn cond<'a>(s: &'a CrossAccountTransferStatus, t: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    fn ran(status: &str) -> CrossAccountTransferStatus {
        CrossAccountTransferStatus {
            last_run: Some(RunRequest {
                generation: Some(2),
                token: None,
                execution_arn: Some("e1".into()),
            }),
            execution: Some(ExecutionStatus {
                arn: "e1".into(),
                status: status.into(),
                ..ExecutionStatus::default()
            }),
            task_arn: Some("task".into()),
            ..CrossAccountTransferStatus::default()
        }
    }

    #[test]
    fn last_transition_time_only_moves_on_a_transition() {
        let mut conds = Vec::new();
        set_condition(&mut conds, "Ready", "False", "A", "a", 1);
        let first = conds[0].last_transition_time.clone();
        std::thread::sleep(std::time::Duration::from_millis(5));
        set_condition(&mut conds, "Ready", "False", "B", "b", 2);
        assert_eq!(conds[0].last_transition_time, first);
        assert_eq!(conds[0].reason, "B");
        assert_eq!(conds[0].observed_generation, Some(2));
        set_condition(&mut conds, "Ready", "True", "C", "c", 2);
        assert_ne!(conds[0].last_transition_time, first);
    }

    #[test]
    fn running_is_transferring_and_reconciling() {
        let mut s = ran("TRANSFERRING");
        summarize(&obj(json!({})), &mut s, &Outcome::Provisioned);
        assert_eq!(s.phase, Some(Phase::Transferring));
        assert_eq!(cond(&s, "Ready").status, "False");
        assert_eq!(cond(&s, "Reconciling").status, "True");
        assert_eq!(cond(&s, "Stalled").status, "False");
        assert_eq!(s.observed_generation, Some(2));
    }

    #[test]
    fn success_is_ready_and_failure_is_stalled() {
        let mut s = ran("SUCCESS");
        summarize(&obj(json!({})), &mut s, &Outcome::Provisioned);
        assert_eq!(s.phase, Some(Phase::Succeeded));
        assert_eq!(cond(&s, "Ready").status, "True");
        assert_eq!(cond(&s, "Reconciling").status, "False");

        let mut s = ran("ERROR");
        summarize(&obj(json!({})), &mut s, &Outcome::Provisioned);
        assert_eq!(s.phase, Some(Phase::Failed));
        assert_eq!(cond(&s, "Stalled").status, "True");
        assert_eq!(cond(&s, "Stalled").reason, "ExecutionFailed");
        assert_eq!(cond(&s, "Ready").status, "False");
    }

    #[test]
    fn a_new_generation_after_success_is_pending() {
        let mut s = ran("SUCCESS");
        s.last_run.as_mut().unwrap().generation = Some(1);
        summarize(&obj(json!({})), &mut s, &Outcome::Provisioned);
        assert_eq!(s.phase, Some(Phase::Transferring));
        assert_eq!(cond(&s, "Reconciling").status, "True");
    }

    #[test]
    fn manual_without_request_is_ready() {
        let mut s = CrossAccountTransferStatus::default();
        summarize(&obj(json!({"run": "Manual"})), &mut s, &Outcome::Provisioned);
        assert_eq!(s.phase, Some(Phase::Ready));
        assert_eq!(cond(&s, "Ready").status, "True");
    }

    #[test]
    fn errors_stall_or_retry() {
        let mut s = CrossAccountTransferStatus::default();
        let stalled = Outcome::Failed {
            reason: "InvalidSpec".into(),
            message: "bad".into(),
            stalled: true,
        };
        summarize(&obj(json!({})), &mut s, &stalled);
        assert_eq!(s.phase, Some(Phase::Failed));
        assert_eq!(cond(&s, "Stalled").status, "True");
        assert_eq!(cond(&s, "Stalled").message, "bad");

        let mut s = CrossAccountTransferStatus::default();
        let transient = Outcome::Failed {
            reason: "AwsUnavailable".into(),
            message: "slow down".into(),
            stalled: false,
        };
        summarize(&obj(json!({})), &mut s, &transient);
        assert_eq!(s.phase, Some(Phase::Provisioning));
        assert_eq!(cond(&s, "Stalled").status, "False");
        assert_eq!(cond(&s, "Reconciling").status, "True");

        let mut s = CrossAccountTransferStatus::default();
        let waiting = Outcome::Failed {
            reason: "TaskQuotaReached".into(),
            message: "in line".into(),
            stalled: false,
        };
        summarize(&obj(json!({})), &mut s, &waiting);
        assert_eq!(s.phase, Some(Phase::Pending), "in line at the task quota");
        assert_eq!(cond(&s, "Reconciling").reason, "TaskQuotaReached");
    }

    #[test]
    fn awaiting_destination_and_suspended() {
        let mut s = CrossAccountTransferStatus::default();
        summarize(&obj(json!({})), &mut s, &Outcome::AwaitingDestination);
        assert_eq!(s.phase, Some(Phase::AwaitingDestination));
        assert_eq!(cond(&s, "Reconciling").status, "True");

        let mut s = ran("SUCCESS");
        summarize(&obj(json!({"suspend": true})), &mut s, &Outcome::Provisioned);
        assert_eq!(s.phase, Some(Phase::Suspended));
        assert_eq!(cond(&s, "Ready").status, "True");
    }
}
