//! One transfer scenario: a namespace, Account A (the operator's identity, a role with a path)
//! and Account B (a bucket-admin role), a source bucket with objects and a destination bucket.

use std::time::Duration;

use ferry::api::{CrossAccountTransfer, Phase};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::aws::{TestAccount, account, random_account_id};
use super::{Operator, TestEnv, env, suffix, wait_for};

/// Objects every scenario's source bucket starts with (under `media/`, plus one outside).
pub const SOURCE_OBJECTS: &[(&str, &str)] = &[
    ("media/a.jpg", "aaaa"),
    ("media/b/c.png", "cccccc"),
    ("media/skip.tmp", "tmp"),
    ("elsewhere/x.txt", "not in the prefix"),
];

/// A prepared scenario.
pub struct Scenario {
    /// The environment.
    pub env: &'static TestEnv,
    /// Admin client.
    pub client: Client,
    /// The test's namespace.
    pub ns: String,
    /// Account A (operator identity: role `/platform/ferry-operator`).
    pub a: TestAccount,
    /// Account B (role `ferry-bucket-admin`).
    pub b: TestAccount,
    /// Source bucket (A).
    pub src: String,
    /// Source region.
    pub src_region: String,
    /// Destination bucket (B).
    pub dst: String,
    /// Destination region.
    pub dst_region: String,
}

impl Scenario {
    /// Sets everything up.
    pub async fn new(prefix: &str, src_region: &str, dst_region: &str) -> Self {
        let env = env();
        let client = env.client().await;
        let ns = env.namespace(&client, prefix).await;
        let a = account(env, &random_account_id(), "/platform/", "ferry-operator").await;
        let b = account(env, &random_account_id(), "/", "ferry-bucket-admin").await;
        let id = suffix();
        let (src, dst) = (format!("{prefix}-src-{id}"), format!("{prefix}-dst-{id}"));
        a.bucket(src_region, &src).await;
        b.bucket(dst_region, &dst).await;
        a.put(src_region, &src, SOURCE_OBJECTS).await;
        Scenario {
            env,
            client,
            ns,
            a,
            b,
            src,
            src_region: src_region.into(),
            dst,
            dst_region: dst_region.into(),
        }
    }

    /// The pool of shared DataSync roles of the test's namespace.
    pub fn pool(&self) -> ferry::naming::RolePool {
        ferry::naming::RolePool::new(&self.a.id, &self.ns, &[&self.dst_region, &self.src_region])
    }

    /// The name of a transfer's own inline policy on its shared DataSync role.
    pub fn member_policy(obj: &CrossAccountTransfer) -> String {
        use kube::ResourceExt;
        ferry::naming::TransferId::new(
            obj.namespace().unwrap_or_default(),
            obj.name_any(),
            obj.uid().unwrap_or_default(),
        )
        .member_policy_name()
    }

    /// The API in the test namespace.
    pub fn api(&self) -> Api<CrossAccountTransfer> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// A manifest with the scenario's buckets; `spec` is merged over the base spec.
    pub fn manifest(&self, name: &str, spec: Value) -> Value {
        let mut base = json!({
            "source": {"bucket": self.src, "region": self.src_region, "prefix": "media/"},
            "destination": {"bucket": self.dst, "region": self.dst_region, "accountId": self.b.id,
                            "prefix": "archive/",
                            "access": {"mode": "AssumeRole", "roleArn": self.b.role_arn}},
            "task": {"excludes": ["*.tmp"]}
        });
        merge(&mut base, &spec);
        json!({"apiVersion": "ferry.dev/v1alpha1", "kind": "CrossAccountTransfer",
               "metadata": {"name": name, "namespace": self.ns}, "spec": base})
    }

    /// A manifest of a pull (`initiator: Destination`): Account B runs the copy from Account A's
    /// bucket, reaching Account A through its role `/platform/ferry-operator` (any role of the
    /// scenario's accounts may administer buckets); `spec` is merged over it.
    pub fn pull_manifest(&self, name: &str, spec: Value) -> Value {
        let mut base = json!({
            "initiator": "Destination",
            "source": {"bucket": self.src, "region": self.src_region, "prefix": "media/", "accountId": self.a.id,
                       "access": {"mode": "AssumeRole", "roleArn": self.a.role_arn}},
            "destination": {"bucket": self.dst, "region": self.dst_region, "accountId": self.b.id,
                            "prefix": "archive/"},
            "task": {"excludes": ["*.tmp"]}
        });
        merge(&mut base, &spec);
        json!({"apiVersion": "ferry.dev/v1alpha1", "kind": "CrossAccountTransfer",
               "metadata": {"name": name, "namespace": self.ns}, "spec": base})
    }

    /// Starts the operator for this namespace as Account B (`ferry-bucket-admin`): the identity a
    /// pull runs with.
    pub fn pull_operator(&self, extra: &[(&str, &str)]) -> Operator {
        self.env.operator(&self.ns, &self.b.creds, extra)
    }

    /// Starts the operator with `creds` set to abort right after `operation`, checks that it
    /// did, and starts it again (the crash tests); returns the restarted operator.
    pub fn crash_and_restart(&self, creds: &super::aws::Creds, operation: &str) -> Operator {
        let mut crashing = self
            .env
            .operator(&self.ns, creds, &[("FERRY_TEST_ABORT_AFTER", operation)]);
        let exit = crashing.wait_exit(Duration::from_secs(90));
        assert!(
            !exit.success(),
            "the operator was meant to abort after {operation}: {exit:?}"
        );
        assert!(
            crashing.log_text().contains("aborting right after"),
            "it aborted for another reason: {}",
            crashing.log_text()
        );
        self.env.operator(&self.ns, creds, &[])
    }

    /// Applies a manifest as a user would (server-side apply, field manager `kubectl`).
    pub async fn apply(&self, manifest: &Value) -> CrossAccountTransfer {
        let name = manifest["metadata"]["name"].as_str().expect("name");
        self.api()
            .patch(name, &PatchParams::apply("kubectl").force(), &Patch::Apply(manifest))
            .await
            .unwrap_or_else(|e| panic!("apply {name}: {e}"))
    }

    /// A transfer's status now (empty while it has none), or why it could not be read.
    pub async fn status(&self, name: &str) -> Result<ferry::api::CrossAccountTransferStatus, String> {
        let obj = self.api().get(name).await.map_err(|e| e.to_string())?;
        Ok(obj.status.unwrap_or_default())
    }

    /// Starts the operator for this namespace as Account A.
    pub fn operator(&self, extra: &[(&str, &str)]) -> Operator {
        self.env.operator(&self.ns, &self.a.creds, extra)
    }

    /// Waits for a phase with the current generation observed; panics early on Failed unless
    /// that is what is awaited.
    pub async fn wait_phase(&self, name: &str, phase: Phase, timeout: Duration) -> CrossAccountTransfer {
        self.wait(name, phase, timeout, false).await
    }

    /// Like [`Self::wait_phase`], but a transfer that is Failed now may still recover.
    pub async fn wait_recovery(&self, name: &str, phase: Phase, timeout: Duration) -> CrossAccountTransfer {
        self.wait(name, phase, timeout, true).await
    }

    async fn wait(&self, name: &str, phase: Phase, timeout: Duration, tolerate_failed: bool) -> CrossAccountTransfer {
        let api = self.api();
        wait_for(&format!("{name} to reach {phase:?}"), timeout, || {
            let api = api.clone();
            async move {
                let obj = api.get(name).await.map_err(|e| e.to_string())?;
                let status = obj.status.clone().unwrap_or_default();
                // The status must answer this spec and this run request: right after a new
                // `ferry.dev/run` value, a `Succeeded` phase is still the previous run's.
                let current = obj.status_is_current();
                if status.phase == Some(phase) && current {
                    return Ok(obj);
                }
                if status.phase == Some(Phase::Failed) && phase != Phase::Failed && current && !tolerate_failed {
                    panic!(
                        "{name} failed: {}",
                        serde_json::to_string_pretty(&status).unwrap_or_default()
                    );
                }
                Err(format!(
                    "phase {:?}, observed {:?} of {:?}, conditions {:?}",
                    status.phase,
                    status.observed_generation,
                    obj.metadata.generation,
                    status
                        .conditions
                        .iter()
                        .map(|c| format!("{}={} {}: {}", c.type_, c.status, c.reason, c.message))
                        .collect::<Vec<_>>()
                ))
            }
        })
        .await
    }

    /// Deletes a transfer and waits until it is gone (finalizer done).
    pub async fn delete_and_wait(&self, name: &str, timeout: Duration) {
        let api = self.api();
        api.delete(name, &DeleteParams::default()).await.expect("delete");
        wait_for(&format!("{name} to be deleted"), timeout, || {
            let api = api.clone();
            async move {
                match api.get_opt(name).await {
                    Ok(None) => Ok(()),
                    Ok(Some(obj)) => Err(format!(
                        "still there: finalizers {:?}, status {:?}",
                        obj.finalizers(),
                        obj.status.as_ref().map(|s| &s.conditions)
                    )),
                    Err(e) => Err(e.to_string()),
                }
            }
        })
        .await;
    }

    /// The events about a transfer as (type, reason, note, reporting instance).
    pub async fn events(&self, name: &str) -> Vec<(String, String, String, String)> {
        let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(self.client.clone(), &self.ns);
        let list = api.list(&Default::default()).await.expect("list events");
        list.items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .map(|e| {
                (
                    e.type_.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.note.unwrap_or_default(),
                    e.reporting_instance.unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Sets (or replaces) an annotation on a transfer.
    pub async fn annotate(&self, name: &str, key: &str, value: &str) {
        let patch = json!({"metadata": {"annotations": {key: value}}});
        self.api()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("annotate");
    }

    /// Merge-patches a transfer's spec.
    pub async fn patch_spec(&self, name: &str, spec: Value) -> CrossAccountTransfer {
        self.api()
            .patch(name, &PatchParams::default(), &Patch::Merge(&json!({"spec": spec})))
            .await
            .expect("patch spec")
    }

    /// The spec of a TransferPolicy that grants this scenario's namespace exactly its buckets,
    /// Regions, accounts and Account B role; `overrides` are merged over it.
    pub fn grant_spec(&self, overrides: Value) -> Value {
        let mut spec = json!({
            "namespaces": {"names": [self.ns]},
            "source": {"buckets": [self.src], "regions": [self.src_region]},
            "destination": {"accounts": [self.b.id], "buckets": [self.dst], "regions": [self.dst_region],
                            "roleArns": [self.b.role_arn]}
        });
        merge(&mut spec, &overrides);
        spec
    }

    /// Creates (or replaces) the cluster-scoped TransferPolicy `<namespace>-<name>` with
    /// [`Self::grant_spec`]`(overrides)`; its name.
    pub async fn grant(&self, name: &str, overrides: Value) -> String {
        let name = format!("{}-{name}", self.ns);
        let policy = json!({"apiVersion": "ferry.dev/v1alpha1", "kind": "TransferPolicy",
                            "metadata": {"name": name}, "spec": self.grant_spec(overrides)});
        Api::<ferry::api::TransferPolicy>::all(self.client.clone())
            .patch(&name, &PatchParams::apply("kubectl").force(), &Patch::Apply(&policy))
            .await
            .unwrap_or_else(|e| panic!("apply TransferPolicy {name}: {e}"));
        name
    }

    /// Keys under the destination prefix (with sizes).
    pub async fn destination_keys(&self) -> std::collections::BTreeMap<String, i64> {
        self.b.keys(&self.dst_region, &self.dst, "").await
    }
}

/// Merges `patch` into `base` (objects recursively, everything else replaced).
pub fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(k);
                } else {
                    merge(b.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}
