//! [`Transfer`]: everything one reconcile of one transfer works with — the resource, its
//! desired state, the credentials of both accounts, and the status being built — and the
//! helpers every step uses to report (conditions, events, errors, the status write).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::runtime::events::EventType;

use crate::api::{CrossAccountTransfer, CrossAccountTransferSpec, CrossAccountTransferStatus, ExecutionStatus};
use crate::aws::{Account, CallerIdentity, Failure, aws_error};
use crate::context::{Context, event_action};
use crate::desired::{Desired, Identities, Keys, RoleSlot, role_slot};
use crate::error::{Error, Result};
use crate::naming::TransferId;
use crate::summary;

/// Everything one reconcile of one transfer works with.
pub struct Transfer<'a> {
    /// Shared controller context.
    pub ctx: &'a Context,
    /// The resource as the watch delivered it.
    pub obj: &'a CrossAccountTransfer,
    /// Its spec.
    pub spec: &'a CrossAccountTransferSpec,
    /// What the transfer should be in AWS (names, documents, settings), built once.
    pub desired: Desired,
    /// `metadata.generation`.
    pub generation: i64,
    /// The status being built; written at the end and right after every AWS create.
    pub status: CrossAccountTransferStatus,
    /// The credentials of the account that runs the copy (operator identity, or the
    /// `source.roleArn` / `destination.roleArn` assumed from it): Account A, or the destination's
    /// account with `initiator: Destination`.
    pub account_a: Account,
    /// Who those credentials are.
    pub identity_a: CallerIdentity,
    /// DataSync's status of the task when the task step read it (`AVAILABLE`, `CREATING`, ...);
    /// `None` when it was just created or not read.
    pub task_status: Option<String>,
}

/// How the pipeline ended when no step failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Every step is in place.
    Provisioned,
    /// External mode: the location of this side's bucket cannot be created until the other
    /// account applies the bucket policy.
    Awaiting(crate::desired::Side),
}

impl<'a> Transfer<'a> {
    /// Sets up the reconcile: credentials for both accounts and Account A's identity; `status`
    /// is where the reconcile starts from.
    pub async fn new(
        ctx: &'a Context,
        obj: &'a CrossAccountTransfer,
        status: CrossAccountTransferStatus,
    ) -> Result<Transfer<'a>> {
        let spec = &obj.spec;
        let id = TransferId::new(
            obj.namespace().unwrap_or_default(),
            obj.name_any(),
            obj.uid().unwrap_or_default(),
        );
        let account_a = ctx.aws.account_a(spec.home_role_arn()).await;
        let home_region = if spec.pulls() {
            &spec.destination.region
        } else {
            &spec.source.region
        };
        let identity_a = ctx.aws.identity(&account_a, home_region).await?;
        if spec.pulls() && identity_a.account != spec.destination.account_id {
            return Err(Error::InvalidSpec(format!(
                "spec.initiator is Destination, so the DataSync role and task go into the account Ferry runs in, and spec.destination.accountId {} is not it: Ferry runs as {} of account {}; set spec.destination.accountId to {}, or name a role of {} to run as in spec.destination.roleArn",
                spec.destination.account_id,
                identity_a.principal_arn,
                identity_a.account,
                identity_a.account,
                spec.destination.account_id
            )));
        }
        let who = Identities {
            account_a: identity_a.account.clone(),
            creator_arn: identity_a.principal_arn.clone(),
        };
        let running = status.execution.as_ref().is_some_and(ExecutionStatus::is_running);
        let slot = role_slot(spec, &id, &who.account_a, status.role.as_ref(), running, |pool| {
            ctx.role_pools.first_open(&pool.hash)
        });
        Ok(Transfer {
            ctx,
            obj,
            spec,
            desired: Desired::placed(spec, &id, &who, slot),
            generation: obj.metadata.generation.unwrap_or_default(),
            status,
            account_a,
            identity_a,
            task_status: None,
        })
    }

    /// Whether the status records an execution that has not finished.
    pub fn running(&self) -> bool {
        self.status.execution.as_ref().is_some_and(ExecutionStatus::is_running)
    }

    /// Who Ferry is in Account A, as the desired state needs it.
    pub fn identities(&self) -> Identities {
        Identities {
            account_a: self.identity_a.account.clone(),
            creator_arn: self.identity_a.principal_arn.clone(),
        }
    }

    /// Builds the desired state again with the KMS keys found and the role's slot.
    pub fn rebuild_desired(&mut self, keys: Keys, slot: RoleSlot) {
        let id = self.desired.id.clone();
        self.desired = Desired::with_keys(self.spec, &id, &self.identities(), keys, slot);
    }

    /// True while an access error is more likely IAM propagation than a real refusal.
    pub fn propagating(&self) -> bool {
        let Some(Time(changed)) = &self.status.iam_changed_at else {
            return false;
        };
        let elapsed = jiff::Timestamp::now().duration_since(*changed);
        elapsed.as_secs() >= 0 && elapsed.unsigned_abs() < self.ctx.config.propagation_window
    }

    /// Remembers that a permission changed now (opens the propagation window).
    pub fn permissions_changed(&mut self) {
        self.status.iam_changed_at = Some(Time(jiff::Timestamp::now()));
    }

    /// Marks a resource Ferry created as no longer used by the spec; [`retired`](super::retired) deletes it.
    pub fn retire(&mut self, arn: &str) {
        if !self.status.retired.iter().any(|a| a == arn) {
            self.status.retired.push(arn.to_string());
        }
    }

    /// Whether a DataSync resource found by a search may be adopted: it carries this
    /// transfer's tag and is not one Ferry already retired.
    pub async fn adoptable(&self, client: &aws_sdk_datasync::Client, arn: &str) -> Result<bool> {
        if self.status.retired.iter().any(|a| a == arn) {
            return Ok(false);
        }
        crate::aws::datasync::owned(client, arn, self.id())
            .await
            .map_err(|f| self.aws_error(&f, self.account_a_id(), "datasync:ListTagsForResource", arn))
    }

    /// Names and tags derive from this.
    pub fn id(&self) -> &TransferId {
        &self.desired.id
    }

    /// Account A's id.
    pub fn account_a_id(&self) -> &str {
        &self.identity_a.account
    }

    /// Turns an AWS failure into Ferry's error for this transfer.
    pub fn aws_error(&self, failure: &Failure, account: &str, action: &str, resource: &str) -> Error {
        aws_error(failure, account, action, resource, self.propagating())
    }

    /// Turns a refused AWS call into Ferry's error for this transfer.
    pub fn refused(&self, refused: &crate::aws::Refused, account: &str, resource: &str) -> Error {
        self.aws_error(&refused.failure, account, refused.action, resource)
    }

    /// Reads an SDK error and turns it into Ferry's error for this transfer.
    pub fn sdk_error<E>(
        &self,
        err: &aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
        account: &str,
        action: &str,
        resource: &str,
    ) -> Error
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    {
        self.aws_error(&crate::aws::classify(err), account, action, resource)
    }

    /// Whether a create of `what` was started and its result not recorded (a crash came in
    /// between): only then is AWS searched for a resource of this transfer before creating.
    pub fn maybe_created(&self, what: &str) -> bool {
        self.status.creating.iter().any(|c| c == what)
    }

    /// Records, before an AWS create, that `what` is being created, so a crash in between is
    /// followed by a search instead of a second create.
    pub async fn creating(&mut self, what: &str) -> Result<()> {
        if !self.maybe_created(what) {
            self.status.creating.push(what.to_string());
            self.persist().await?;
        }
        Ok(())
    }

    /// The create of `what` is recorded (or found): no search is needed any more. Written with
    /// the next status write.
    pub fn created(&mut self, what: &str) {
        self.status.creating.retain(|c| c != what);
    }

    /// Writes the status now: called right after every AWS create so a crash never loses an ARN.
    /// The summary is brought up to date first (in progress: the pipeline has not finished), so
    /// the status never pairs a new run request or a new execution with the previous run's
    /// `Succeeded`.
    pub async fn persist(&mut self) -> Result<()> {
        summary::summarize(self.obj, &mut self.status, &summary::Outcome::InProgress);
        summary::write(self.ctx, self.obj, &self.status).await
    }

    /// Records an AWS change as a Normal event. Its action names the AWS resource the note
    /// mentions, so two changes of the same kind (the source and the destination location, two
    /// executions) stay two events instead of being merged into one series.
    pub async fn changed(&self, reason: &str, note: String) {
        tracing::info!(reason, "{note}");
        let action = event_action(reason, &note);
        self.ctx
            .publish_action(self.obj, EventType::Normal, reason, &action, note)
            .await;
    }

    /// Sets one step condition.
    pub fn condition(&mut self, type_: &str, ok: bool, reason: &str, message: impl Into<String>) {
        summary::set_condition(
            &mut self.status.conditions,
            type_,
            if ok { "True" } else { "False" },
            reason,
            &message.into(),
            self.generation,
        );
    }

    /// The DataSync role this transfer uses: the one recorded in the status, else the desired one.
    pub fn role_arn_in_use(&self) -> String {
        self.status
            .role
            .as_ref()
            .map_or_else(|| self.desired.role.arn.clone(), |r| r.arn.clone())
    }

    /// Whether another transfer of this cluster, not being deleted, uses the same DataSync role
    /// and matches `also` (sends into the same bucket, writes with the same key): then the role
    /// stays a principal where that other transfer needs it. A role is shared when the spec
    /// names it (`dataSyncRole.arn`) or when it is a role of a pool of shared roles.
    pub async fn role_shared(&self, also: impl Fn(&CrossAccountTransfer) -> bool) -> Result<bool> {
        let role = self.role_arn_in_use();
        if self.spec.data_sync_role.arn.is_none() && !self.is_shared_role(&role) {
            return Ok(false);
        }
        self.role_used_by_others(&role, also).await
    }

    /// Whether another transfer of this cluster, not being deleted, uses DataSync role `role`
    /// and matches `also`.
    pub async fn role_used_by_others(&self, role: &str, also: impl Fn(&CrossAccountTransfer) -> bool) -> Result<bool> {
        // Only the namespace's transfers use its shared roles: list those alone.
        let namespace = if self.is_shared_role(role) {
            Some(&self.id().namespace)
        } else {
            self.ctx.watch_namespace.as_ref()
        };
        let api: kube::Api<CrossAccountTransfer> = match namespace {
            Some(ns) => kube::Api::namespaced(self.ctx.client.clone(), ns),
            None => kube::Api::all(self.ctx.client.clone()),
        };
        let others = api.list(&kube::api::ListParams::default()).await?;
        Ok(others.items.iter().any(|o| {
            let theirs = o
                .spec
                .data_sync_role
                .arn
                .as_deref()
                .or_else(|| o.status.as_ref().and_then(|s| s.role.as_ref()).map(|r| r.arn.as_str()));
            o.metadata.uid != self.obj.metadata.uid
                && o.metadata.deletion_timestamp.is_none()
                && theirs == Some(role)
                && also(o)
        }))
    }

    /// Whether `arn` is a shared role (of this transfer's pool or of one it left), not one of
    /// a single transfer.
    pub fn is_shared_role(&self, arn: &str) -> bool {
        self.spec.data_sync_role.name.as_deref() != crate::naming::role_name_from_arn(arn)
            && crate::naming::looks_shared(arn)
    }
}
