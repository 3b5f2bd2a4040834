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
use crate::desired::Side;
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
    /// External mode, waiting for the account of this side's bucket (Account B, or the source's
    /// with `initiator: Destination`).
    Awaiting(Side),
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
    let Summary {
        phase,
        ready,
        reason,
        reconciling,
        stalled,
        message,
    } = judge(obj, status, outcome);
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

/// The phase and the three kstatus conditions one reconcile comes to.
struct Summary {
    phase: Phase,
    ready: bool,
    reason: String,
    reconciling: bool,
    stalled: bool,
    message: String,
}

impl Summary {
    /// Ferry is still working on it: Reconciling.
    fn working(phase: Phase, reason: &str, message: impl Into<String>) -> Self {
        Self::new(phase, false, reason, true, false, message)
    }

    /// Done for now and healthy: Ready.
    fn ready(phase: Phase, reason: &str, message: impl Into<String>) -> Self {
        Self::new(phase, true, reason, false, false, message)
    }

    /// Nothing more happens until someone acts: Stalled.
    fn stalled(phase: Phase, reason: &str, message: impl Into<String>) -> Self {
        Self::new(phase, false, reason, false, true, message)
    }

    fn new(
        phase: Phase,
        ready: bool,
        reason: &str,
        reconciling: bool,
        stalled: bool,
        message: impl Into<String>,
    ) -> Self {
        Self {
            phase,
            ready,
            reason: reason.to_string(),
            reconciling,
            stalled,
            message: message.into(),
        }
    }
}

/// What the outcome of a reconcile means for the transfer as a whole.
fn judge(obj: &CrossAccountTransfer, status: &CrossAccountTransferStatus, outcome: &Outcome) -> Summary {
    let running = status.execution.as_ref().is_some_and(ExecutionStatus::is_running);
    match outcome {
        Outcome::Failed {
            reason,
            message,
            stalled: true,
        } => Summary::stalled(Phase::Failed, reason, message.clone()),
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
            Summary::working(phase, reason, message.clone())
        }
        Outcome::InProgress => Summary::working(
            if running {
                Phase::Transferring
            } else {
                Phase::Provisioning
            },
            "Provisioning",
            "Ferry is bringing the AWS resources in line with the spec",
        ),
        Outcome::Awaiting(side) => {
            let who = match side {
                Side::Destination => "Account B",
                Side::Source => "the source account",
            };
            Summary::working(
                side.awaiting(),
                side.awaiting().as_str(),
                format!(
                    "waiting for {who}'s administrator to apply the bucket policy in status.{}.requiredBucketPolicy",
                    side.label()
                ),
            )
        }
        Outcome::Provisioned => provisioned(obj, status),
    }
}

/// Every AWS resource is in place: what the runs say.
fn provisioned(obj: &CrossAccountTransfer, status: &CrossAccountTransferStatus) -> Summary {
    let generation = obj.metadata.generation.unwrap_or_default();
    let pending = obj
        .spec
        .pending_run(generation, obj.run_token(), status.last_run.as_ref())
        .is_some();
    let last_run_arn = status.last_run.as_ref().and_then(|l| l.execution_arn.clone());
    let execution = status.execution.as_ref();
    let current_run_failed = match (execution, &last_run_arn) {
        (Some(e), Some(arn)) => &e.arn == arn && e.failed(),
        (Some(e), None) => e.failed(),
        _ => false,
    };
    match execution {
        Some(e) if e.is_running() => Summary::working(
            Phase::Transferring,
            "Transferring",
            format!(
                "DataSync is copying: {}",
                status.progress.clone().unwrap_or_else(|| "0%".into())
            ),
        ),
        _ if obj.spec.suspend => Summary::ready(
            Phase::Suspended,
            "Suspended",
            "suspended: Ferry starts no execution and the DataSync schedule is disabled",
        ),
        _ if pending => Summary::working(Phase::Transferring, "RunPending", "an execution is about to start"),
        Some(e) if current_run_failed => Summary::stalled(
            Phase::Failed,
            "ExecutionFailed",
            format!(
                "execution {} failed: {}: {}{}; fix the cause, then set the annotation {RUN_ANNOTATION} to a new value (or change the spec) to run again",
                e.arn,
                e.error_code.clone().unwrap_or_default(),
                e.error_detail.clone().unwrap_or_default(),
                e.report.as_ref().map(ReportSummary::note).unwrap_or_default()
            ),
        ),
        Some(e) if e.succeeded() && e.files_failed > 0 => {
            let report = e.report.as_ref().map_or_else(
                || "the task report".to_string(),
                |r| format!("the task report {}", r.location),
            );
            // Healthy for GitOps (the run finished), but never a clean success.
            Summary::ready(
                Phase::Succeeded,
                "SucceededWithFailures",
                format!(
                    "the transfer finished, but {} items failed to transfer or verify; see {report} (status.execution.report) or the DataSync logs, then set the annotation {RUN_ANNOTATION} to run again",
                    e.files_failed
                ),
            )
        }
        Some(e) if e.succeeded() => Summary::ready(Phase::Succeeded, "Succeeded", "the transfer succeeded"),
        _ => Summary::ready(
            Phase::Ready,
            "Provisioned",
            "every AWS resource is in place; no execution asked for",
        ),
    }
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
                failed_only: None,
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
        summarize(&obj(json!({})), &mut s, &Outcome::Awaiting(Side::Destination));
        assert_eq!(s.phase, Some(Phase::AwaitingDestination));
        assert_eq!(cond(&s, "Reconciling").status, "True");

        let mut s = ran("SUCCESS");
        summarize(&obj(json!({"suspend": true})), &mut s, &Outcome::Provisioned);
        assert_eq!(s.phase, Some(Phase::Suspended));
        assert_eq!(cond(&s, "Ready").status, "True");
    }
}
