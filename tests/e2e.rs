//! Ferry as users run it: the OCI image `make image` builds, installed with the Helm chart onto
//! a real node (containerd + kubelet + kube-scheduler + kube-controller-manager, started by
//! `tests/common/node.rs`), with credentials as on EKS IRSA (a projected service-account token
//! exchanged through STS AssumeRoleWithWebIdentity in the AWS emulator).
//!
//! The node has no pod network, so the installs that run pods change the chart's defaults only
//! where the node requires it (see [`node_values`]); everything else is the chart's default.
//! Also here: the chart's optional parts (NetworkPolicy, image digest, Grafana dashboard) by
//! `helm template`, the packaged chart, the committed plain manifest (`deploy/install.yaml`)
//! against drift, and the dashboard's queries against the operator's real `/metrics`.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::node::{self, FERRY_IMAGE_REPOSITORY, ferry_image_tag};
use common::scenario::Scenario;
use common::{TestEnv, chart, free_port, repo, succeeded, suffix, wait_for};
use ferry::api::{CrossAccountTransfer, Phase};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};

const CONVERGE: Duration = Duration::from_secs(180);

/// helm without a cluster (template, package), its caches in a scratch folder.
fn helm_offline(args: &[&str]) -> Output {
    common::helm_at(&repo().join("target/ferry-helm-offline"))
        .args(args)
        .output()
        .expect("run helm")
}

/// The port of the test API server (for KUBERNETES_SERVICE_PORT).
fn api_port(env: &TestEnv) -> String {
    env.api_url.rsplit(':').next().unwrap_or_default().to_string()
}

/// What every install that runs pods on this node changes from the chart's defaults, and why:
///
/// - `image.pullPolicy: Never`: nothing can be pulled here; the image is imported into containerd.
/// - `hostNetwork: true`: there is no pod network (a node on loopback only).
/// - `probes.host: 127.0.0.1`, `metrics.bindAddress: 127.0.0.1`: with hostNetwork the pod IP is
///   the node's address; everything here stays on loopback.
/// - `metrics.port`: a free port, since with hostNetwork it is a port of the machine, which
///   other tests share.
/// - `strategy: Recreate`: one node, and a pod holds the metrics port on it: a rolling update
///   could never start its new pod next to the old one.
/// - `extraEnv` KUBERNETES_SERVICE_HOST/PORT: the API server at 127.0.0.1 (the injected values
///   name the `kubernetes` Service IP, which nothing serves here).
/// - `aws.endpointUrl`, `aws.region`: the AWS emulator; no EKS webhook sets the region.
/// - `aws.webIdentity.roleArn`: credentials as IRSA gives them (projected token + role ARN).
/// - `watchNamespace`: the test binary runs other operators at the same time; this one must
///   not reconcile their transfers.
fn node_values(env: &TestEnv, port: u16, role_arn: &str, watch_namespace: &str) -> Value {
    json!({
        "image": {"pullPolicy": "Never"},
        "hostNetwork": true,
        "probes": {"host": "127.0.0.1"},
        "metrics": {"port": port, "bindAddress": "127.0.0.1"},
        "strategy": {"type": "Recreate"},
        "watchNamespace": watch_namespace,
        "aws": {
            "endpointUrl": env.aws_url,
            "region": "us-east-1",
            "webIdentity": {"roleArn": role_arn},
        },
        "extraEnv": [
            {"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"},
            {"name": "KUBERNETES_SERVICE_PORT", "value": api_port(env)},
        ],
    })
}

fn write_values(env: &TestEnv, values: &Value) -> PathBuf {
    let path = env.dir.join(format!("values-{}.json", suffix()));
    std::fs::write(&path, values.to_string()).expect("write values");
    path
}

async fn labelled_namespace(client: &Client, prefix: &str, labels: Value) -> String {
    let name = format!("{prefix}-{}", suffix());
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).expect("namespace");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    name
}

fn selector(release: &str) -> String {
    format!("app.kubernetes.io/instance={release},app.kubernetes.io/name=ferry")
}

fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn describe(pods: &[Pod]) -> String {
    pods.iter()
        .map(|p| {
            let st = p.status.clone().unwrap_or_default();
            let conditions: Vec<String> = st
                .conditions
                .unwrap_or_default()
                .iter()
                .map(|c| format!("{}={} {}", c.type_, c.status, c.message.clone().unwrap_or_default()))
                .collect();
            let waiting: Vec<String> = st
                .container_statuses
                .unwrap_or_default()
                .iter()
                .filter_map(|c| c.state.as_ref().and_then(|s| s.waiting.as_ref()))
                .map(|w| {
                    format!(
                        "{}: {}",
                        w.reason.clone().unwrap_or_default(),
                        w.message.clone().unwrap_or_default()
                    )
                })
                .collect();
            format!(
                "{} {:?} {conditions:?} {waiting:?}",
                p.metadata.name.clone().unwrap_or_default(),
                st.phase
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Waits for a Ready pod of the release that is not one of `old`.
async fn ready_pod(client: &Client, ns: &str, release: &str, old: &BTreeSet<String>) -> Pod {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().labels(&selector(release));
    wait_for("a Ready operator pod", CONVERGE, || {
        let (pods, lp) = (pods.clone(), lp.clone());
        async move {
            let list = pods.list(&lp).await.map_err(|e| e.to_string())?.items;
            list.iter()
                .find(|p| is_ready(p) && !old.contains(p.metadata.name.as_deref().unwrap_or_default()))
                .cloned()
                .ok_or_else(|| describe(&list))
        }
    })
    .await
}

async fn lease_holder(client: &Client, ns: &str) -> Option<String> {
    Api::<Lease>::namespaced(client.clone(), ns)
        .get_opt("ferry-leader")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
}

/// `kubectl apply -f` of a manifest, as a user would.
fn kubectl_apply(env: &TestEnv, manifest: &Value) {
    let path = env.dir.join(format!("transfer-{}.json", suffix()));
    std::fs::write(&path, manifest.to_string()).expect("write manifest");
    succeeded(
        &env.kubectl(&["apply", "-f", &path.display().to_string()]),
        "kubectl apply",
    );
}

/// The PodSecurity checks an API answer (helm's or kubectl's warnings) says a pod would fail.
fn pod_security_violations(stderr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in stderr.lines().filter(|l| l.contains("PodSecurity")) {
        let Some((_, list)) = line.split_once("\": ") else {
            continue;
        };
        for item in list.split("), ") {
            out.insert(item.split(" (").next().unwrap_or(item).trim().to_string());
        }
    }
    out
}

/// The sessions STS (moto) handed out for `role_arn`, by session name. The emulator's call log
/// (`/ferry-emulator/calls`) records signed requests only, and AssumeRoleWithWebIdentity is
/// unsigned (the token is the credential), so STS's own state is what shows the exchange.
fn sts_sessions(env: &TestEnv, role_arn: &str) -> BTreeSet<String> {
    let answer = common::aws::emulator_call(env, "GET", "/moto-api/data.json", "");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let data: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("moto data: {answer:.300}"));
    data["sts"]["AssumedRole"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["role_arn"] == role_arn)
        .filter_map(|r| r["session_name"].as_str().map(str::to_string))
        .collect()
}

fn executions_started(env: &TestEnv, account: &str) -> usize {
    common::aws::calls(env, &format!("operation=StartTaskExecution&account={account}")).len()
}

/// (a)–(e): install, transfer, logs, web identity, failover, upgrade and uninstall on one node.
#[tokio::test]
async fn the_chart_runs_ferry_on_a_real_node() {
    let env = node::env();
    let node = node::node();
    eprintln!("measured: node started in {:.1}s", node.started_in.as_secs_f64());
    let s = Scenario::new("e2e", "us-east-1", "us-east-1").await;
    let client = s.client.clone();
    // hostNetwork (no pod network here) is refused by the baseline and restricted levels:
    // this namespace enforces privileged, warns restricted (the restricted test below shows
    // the chart's own defaults pass restricted).
    let release_ns = labelled_namespace(
        &client,
        "ferry-system",
        json!({"pod-security.kubernetes.io/enforce": "privileged",
               "pod-security.kubernetes.io/warn": "restricted"}),
    )
    .await;
    let release = "ferry";
    let port = free_port();
    let values = write_values(env, &node_values(env, port, &s.a.role_arn, &s.ns));

    // (a) helm install: admitted, Running and Ready through its real probes.
    let installed = Instant::now();
    let out = env.helm(&[
        "install",
        release,
        &chart(),
        "--namespace",
        &release_ns,
        "-f",
        &values.display().to_string(),
    ]);
    succeeded(&out, "helm install");
    // The only restricted-level findings are what the node needs: the host network, and the
    // probes on 127.0.0.1.
    let violations = pod_security_violations(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        violations,
        BTreeSet::from(["host namespaces".to_string(), "probe or lifecycle host".to_string()]),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let leader = ready_pod(&client, &release_ns, release, &BTreeSet::new()).await;
    let ready_in = installed.elapsed();
    eprintln!("measured: helm install -> pod Ready in {:.1}s", ready_in.as_secs_f64());
    let leader_name = leader.metadata.name.clone().expect("pod name");
    let spec = leader.spec.clone().expect("pod spec");
    assert_eq!(spec.host_network, Some(true));
    let container = &spec.containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some(format!("{FERRY_IMAGE_REPOSITORY}:{}", ferry_image_tag()).as_str())
    );
    // The chart's default replicaCount (2): the second replica cannot have the port on this
    // one node and waits, unscheduled — it is the standby that (c) uses.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &release_ns);
    let lp = ListParams::default().labels(&selector(release));
    wait_for("the second replica to be unschedulable for its port", CONVERGE, || {
        let (pods, lp) = (pods.clone(), lp.clone());
        async move {
            let list = pods.list(&lp).await.map_err(|e| e.to_string())?.items;
            let waiting = list.iter().any(|p| {
                p.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| {
                    c.iter().any(|c| {
                        c.type_ == "PodScheduled"
                            && c.status == "False"
                            && c.message.as_deref().unwrap_or_default().contains("free ports")
                    })
                })
            });
            if list.len() == 2 && waiting {
                Ok(())
            } else {
                Err(describe(&list))
            }
        }
    })
    .await;

    // (d) IRSA-style credentials: a projected token for sts.amazonaws.com, AWS_ROLE_ARN and
    // AWS_WEB_IDENTITY_TOKEN_FILE, no keys.
    let env_names: BTreeSet<String> = container
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.name)
        .collect();
    for name in ["AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"] {
        assert!(env_names.contains(name), "{name} missing: {env_names:?}");
    }
    assert!(
        !env_names
            .iter()
            .any(|n| n.starts_with("AWS_ACCESS_KEY") || n.starts_with("AWS_SECRET"))
    );
    let token = spec
        .volumes
        .clone()
        .unwrap_or_default()
        .into_iter()
        .find(|v| v.name == "aws-iam-token")
        .and_then(|v| v.projected)
        .and_then(|p| p.sources)
        .and_then(|s| s.into_iter().find_map(|s| s.service_account_token))
        .expect("the projected token volume");
    assert_eq!(token.audience.as_deref(), Some("sts.amazonaws.com"));

    // Tenants' rights come from Kubernetes' own roles (aggregated by the real
    // kube-controller-manager); policies stay with cluster admins.
    tenant_rights(env, &client, &s.ns).await;

    // (b) a transfer applied with kubectl reaches Succeeded through the pod; JSON logs. The chart
    // enforces TransferPolicies: the platform admin grants the namespace first.
    let policy = s.grant_spec(json!({}));
    kubectl_apply(
        env,
        &json!({"apiVersion": "ferry.dev/v1alpha1", "kind": "TransferPolicy",
                "metadata": {"name": format!("{}-tenant", s.ns)}, "spec": policy}),
    );
    kubectl_apply(env, &s.manifest("first", json!({})));
    s.wait_phase("first", Phase::Succeeded, CONVERGE).await;
    assert!(!s.destination_keys().await.is_empty(), "nothing copied");
    assert_eq!(
        lease_holder(&client, &release_ns).await.as_deref(),
        Some(leader_name.as_str())
    );
    let logs = succeeded(&env.kubectl(&["logs", "-n", &release_ns, &leader_name]), "kubectl logs");
    let lines: Vec<Value> = logs
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not a JSON log line: {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["span"]["resource"] == format!("{}/first", s.ns).as_str()),
        "no log line about the transfer:\n{logs}"
    );
    // (d) the SDK exchanged the pod's token with STS (AssumeRoleWithWebIdentity): a session of
    // the role named after the pod (AWS_ROLE_SESSION_NAME); the pod has no other credentials.
    let sessions = sts_sessions(env, &s.a.role_arn);
    assert!(
        sessions.contains(&leader_name),
        "no STS session {leader_name} for {}: {sessions:?}",
        s.a.role_arn
    );

    // (c) the leader pod deleted: the standby takes the lease, a second transfer succeeds.
    let deleted = Instant::now();
    succeeded(
        &env.kubectl(&["delete", "pod", "-n", &release_ns, &leader_name, "--wait=false"]),
        "kubectl delete pod",
    );
    let new_leader = wait_for("another pod to take the lease", CONVERGE, || {
        let (client, ns, old) = (client.clone(), release_ns.clone(), leader_name.clone());
        async move {
            match lease_holder(&client, &ns).await {
                Some(h) if h != old => Ok(h),
                other => Err(format!("holder {other:?}")),
            }
        }
    })
    .await;
    let lease_taken = deleted.elapsed();
    kubectl_apply(env, &s.manifest("second", json!({})));
    wait_for("second to start transferring", CONVERGE, || {
        let api = s.api();
        async move {
            let obj = api.get("second").await.map_err(|e| e.to_string())?;
            let phase = obj.status.and_then(|st| st.phase);
            match phase {
                Some(Phase::Transferring | Phase::Succeeded) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await;
    let second_running = deleted.elapsed();
    s.wait_phase("second", Phase::Succeeded, CONVERGE).await;
    eprintln!(
        "measured: leader pod deleted -> lease taken by {new_leader} in {:.1}s, second transfer running in {:.1}s, succeeded in {:.1}s",
        lease_taken.as_secs_f64(),
        second_running.as_secs_f64(),
        deleted.elapsed().as_secs_f64()
    );
    let writers: BTreeSet<String> = s.events("second").await.into_iter().map(|e| e.3).collect();
    assert_eq!(
        writers,
        BTreeSet::from([new_leader.clone()]),
        "only the new leader writes"
    );

    // (e) helm upgrade with a changed value while a transfer runs: the pods are replaced, the
    // transfer still succeeds, with one execution.
    kubectl_apply(env, &s.manifest("third", json!({})));
    // The execution runs (polled every 15 s, the chart's default) when the upgrade starts.
    s.wait_phase("third", Phase::Transferring, CONVERGE).await;
    let before: BTreeSet<String> = pods
        .list(&lp)
        .await
        .expect("pods")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    let upgraded = Instant::now();
    succeeded(
        &env.helm(&[
            "upgrade",
            release,
            &chart(),
            "--namespace",
            &release_ns,
            "--reuse-values",
            "--set",
            "controller.pollInterval=5s",
        ]),
        "helm upgrade",
    );
    let rolled = ready_pod(&client, &release_ns, release, &before).await;
    eprintln!(
        "measured: helm upgrade -> new pod Ready in {:.1}s",
        upgraded.elapsed().as_secs_f64()
    );
    let rolled_env: Vec<(String, String)> = rolled.spec.expect("spec").containers[0]
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.name, e.value.unwrap_or_default()))
        .collect();
    assert!(rolled_env.contains(&("FERRY_POLL_INTERVAL".to_string(), "5s".to_string())));
    s.wait_phase("third", Phase::Succeeded, CONVERGE).await;
    assert_eq!(
        executions_started(env, &s.a.id),
        3,
        "one execution per transfer, none lost or repeated over the failover and the upgrade"
    );

    // helm uninstall: the operator goes; the CRD (from crds/) and the transfers stay.
    succeeded(
        &env.helm(&["uninstall", release, "--namespace", &release_ns, "--wait"]),
        "helm uninstall",
    );
    wait_for("the operator pods to be gone", CONVERGE, || {
        let (pods, lp) = (pods.clone(), lp.clone());
        async move {
            let list = pods.list(&lp).await.map_err(|e| e.to_string())?.items;
            if list.is_empty() { Ok(()) } else { Err(describe(&list)) }
        }
    })
    .await;
    Api::<CustomResourceDefinition>::all(client.clone())
        .get("crossaccounttransfers.ferry.dev")
        .await
        .expect("the CRD stays after helm uninstall");
    for name in ["first", "second", "third"] {
        let obj: CrossAccountTransfer = s.api().get(name).await.expect("the transfer stays");
        assert_eq!(obj.status.and_then(|st| st.phase), Some(Phase::Succeeded));
        // Their finalizer stays too: deleting one now waits until Ferry runs again.
        assert!(!obj.metadata.finalizers.unwrap_or_default().is_empty(), "{name}");
    }
}

/// What a namespace's admin, editor and viewer may do with Ferry's resources, asked of the real
/// API server with `kubectl auth can-i` once the chart's ClusterRoles are aggregated into
/// `admin`, `edit` and `view`.
async fn tenant_rights(env: &TestEnv, client: &Client, ns: &str) {
    use k8s_openapi::api::rbac::v1::RoleBinding;
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), ns);
    for (user, role) in [
        ("tenant-admin", "admin"),
        ("tenant-editor", "edit"),
        ("tenant-viewer", "view"),
    ] {
        let binding: RoleBinding = serde_json::from_value(json!({
            "metadata": {"name": user},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]
        }))
        .expect("binding");
        bindings
            .create(&PostParams::default(), &binding)
            .await
            .expect("create binding");
    }
    let can = |user: &str, verb: &str, resource: &str, namespaced: bool| {
        let scope = if namespaced {
            format!("--namespace={ns}")
        } else {
            "--all-namespaces".into()
        };
        let out = env.kubectl(&["auth", "can-i", verb, resource, &scope, &format!("--as={user}")]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let expected = [
        ("tenant-admin", "create", "crossaccounttransfers.ferry.dev", true, "yes"),
        ("tenant-admin", "delete", "crossaccounttransfers.ferry.dev", true, "yes"),
        (
            "tenant-editor",
            "create",
            "crossaccounttransfers.ferry.dev",
            true,
            "yes",
        ),
        ("tenant-editor", "patch", "crossaccounttransfers.ferry.dev", true, "yes"),
        ("tenant-viewer", "list", "crossaccounttransfers.ferry.dev", true, "yes"),
        ("tenant-viewer", "create", "crossaccounttransfers.ferry.dev", true, "no"),
        (
            "tenant-editor",
            "create",
            "crossaccounttransfers.ferry.dev",
            false,
            "no",
        ),
        ("tenant-admin", "create", "transferpolicies.ferry.dev", false, "no"),
        ("tenant-admin", "update", "transferpolicies.ferry.dev", false, "no"),
        ("tenant-editor", "create", "transferpolicies.ferry.dev", false, "no"),
        ("tenant-viewer", "list", "transferpolicies.ferry.dev", false, "no"),
    ];
    // The aggregation controller fills the roles shortly after the chart created them.
    wait_for("the aggregated tenant rights", CONVERGE, || {
        let wrong: Vec<String> = expected
            .iter()
            .filter(|(user, verb, resource, namespaced, want)| can(user, verb, resource, *namespaced) != *want)
            .map(|(user, verb, resource, namespaced, want)| {
                format!("{user} {verb} {resource} (namespaced: {namespaced}) should be {want}")
            })
            .collect();
        std::future::ready(if wrong.is_empty() {
            Ok(())
        } else {
            Err(wrong.join("; "))
        })
    })
    .await;
}

/// (a) The chart's defaults pass the `restricted` Pod Security level: the pods are admitted.
/// They are kept off the node (a nodeSelector): without a pod network they could not run here.
/// With hostNetwork, what this node needs, the same namespace refuses them.
#[tokio::test]
async fn the_chart_defaults_are_admitted_under_the_restricted_pod_security_level() {
    let env = node::env();
    node::node();
    let client = env.client().await;
    let ns = labelled_namespace(
        &client,
        "restricted",
        json!({"pod-security.kubernetes.io/enforce": "restricted",
               "pod-security.kubernetes.io/warn": "restricted"}),
    )
    .await;
    let release = format!("ferry-{}", suffix());
    let out = env.helm(&[
        "install",
        &release,
        &chart(),
        "--namespace",
        &ns,
        "--skip-crds",
        "--set",
        "image.pullPolicy=Never",
        "--set",
        "nodeSelector.ferry\\.dev/e2e=admission-only",
    ]);
    succeeded(&out, "helm install");
    assert!(
        pod_security_violations(&String::from_utf8_lossy(&out.stderr)).is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let lp = ListParams::default().labels(&selector(&release));
    wait_for("both replicas admitted", CONVERGE, || {
        let (pods, lp) = (pods.clone(), lp.clone());
        async move {
            let list = pods.list(&lp).await.map_err(|e| e.to_string())?.items;
            if list.len() == 2 { Ok(()) } else { Err(describe(&list)) }
        }
    })
    .await;

    let out = env.helm(&[
        "upgrade",
        &release,
        &chart(),
        "--namespace",
        &ns,
        "--reuse-values",
        "--set",
        "hostNetwork=true",
    ]);
    succeeded(&out, "helm upgrade");
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), &ns);
    let refused = wait_for("the hostNetwork pod to be refused", CONVERGE, || {
        let events = events.clone();
        async move {
            let list = events.list(&ListParams::default()).await.map_err(|e| e.to_string())?;
            list.items
                .into_iter()
                .filter(|e| e.reason.as_deref() == Some("FailedCreate"))
                .filter_map(|e| e.message)
                .find(|m| m.contains("violates PodSecurity"))
                .ok_or_else(|| "no FailedCreate yet".to_string())
        }
    })
    .await;
    assert!(refused.contains("host namespaces"), "{refused}");
    let rs: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    assert_eq!(rs.list(&lp).await.expect("replicasets").items.len(), 2);
    succeeded(
        &env.helm(&["uninstall", &release, "--namespace", &ns]),
        "helm uninstall",
    );
}

fn template(sets: &[&str]) -> Result<String, String> {
    let mut args = vec!["template", "ferry", "CHART", "--namespace", "ferry-system"];
    let chart = chart();
    args[2] = &chart;
    for s in sets {
        args.extend(["--set", s]);
    }
    let out = helm_offline(&args);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

/// The documents of a rendered chart, by kind.
fn documents(rendered: &str) -> Vec<Value> {
    rendered
        .split("\n---")
        .filter_map(|doc| serde_saphyr::from_str::<Value>(doc).ok())
        .filter(|v| v.is_object())
        .collect()
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// The NetworkPolicy, the image digest and the dashboard ConfigMap: off by default, rendered
/// as documented when on, refused by the schema when malformed, accepted by the API server.
#[tokio::test]
async fn the_charts_optional_parts_render_and_validate() {
    let defaults = documents(&template(&[]).expect("default render"));
    assert!(kind(&defaults, "NetworkPolicy").is_empty());
    assert!(kind(&defaults, "ConfigMap").is_empty());
    let image = |docs: &[Value]| {
        kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        image(&defaults),
        format!("{FERRY_IMAGE_REPOSITORY}:{}", ferry_image_tag())
    );

    // Image by digest.
    let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
    let docs = documents(&template(&[&format!("image.digest={digest}"), "image.tag=ignored"]).expect("digest"));
    assert_eq!(image(&docs), format!("{FERRY_IMAGE_REPOSITORY}@{digest}"));
    for bad in [
        "image.digest=latest",
        "image.digest=sha256:abc",
        "image.digest=md5:0123",
    ] {
        let err = template(&[bad]).expect_err(bad);
        assert!(err.contains("schema"), "{bad}: {err}");
    }

    // NetworkPolicy: ingress to the metrics port only; egress to DNS, the API server, AWS.
    let docs = documents(&template(&["networkPolicy.enabled=true"]).expect("networkPolicy"));
    let np = kind(&docs, "NetworkPolicy");
    assert_eq!(np.len(), 1);
    let spec = &np[0]["spec"];
    assert_eq!(spec["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(
        spec["podSelector"]["matchLabels"]["app.kubernetes.io/instance"],
        "ferry"
    );
    assert_eq!(spec["ingress"], json!([{"ports": [{"port": 8080, "protocol": "TCP"}]}]));
    let egress = spec["egress"].as_array().expect("egress");
    assert_eq!(egress.len(), 3, "{egress:?}");
    assert_eq!(
        egress[0]["ports"],
        json!([{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}])
    );
    assert_eq!(
        egress[0]["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "kube-system"
    );
    assert_eq!(
        egress[1]["ports"],
        json!([{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}])
    );
    assert_eq!(egress[2]["to"], json!([{"ipBlock": {"cidr": "0.0.0.0/0"}}]));
    let docs = documents(
        &template(&[
            "networkPolicy.enabled=true",
            "networkPolicy.apiServer.cidrs={10.1.0.5/32}",
            "networkPolicy.dns.enabled=false",
            "metrics.port=9090",
        ])
        .expect("networkPolicy narrowed"),
    );
    let spec = &kind(&docs, "NetworkPolicy")[0]["spec"];
    assert_eq!(spec["ingress"][0]["ports"][0]["port"], 9090);
    assert_eq!(spec["egress"].as_array().map(Vec::len), Some(2));
    assert_eq!(spec["egress"][0]["to"], json!([{"ipBlock": {"cidr": "10.1.0.5/32"}}]));
    for bad in [
        "networkPolicy.enabled=yes",
        "networkPolicy.apiServer.cidrs={kubernetes}",
        "networkPolicy.aws.ports={0}",
        "networkPolicy.egress=all",
    ] {
        let err = template(&[bad]).expect_err(bad);
        assert!(err.contains("schema"), "{bad}: {err}");
    }

    // The Grafana dashboard ConfigMap carries the dashboard JSON.
    let docs = documents(&template(&["grafanaDashboard.enabled=true"]).expect("dashboard"));
    let cm = kind(&docs, "ConfigMap");
    assert_eq!(cm.len(), 1);
    assert_eq!(cm[0]["metadata"]["labels"]["grafana_dashboard"], "1");
    let dashboard: Value =
        serde_json::from_str(cm[0]["data"]["ferry.json"].as_str().expect("ferry.json")).expect("dashboard JSON");
    assert_eq!(dashboard["title"], "Ferry");
    let err = template(&["grafanaDashboard.enabled=true", "grafanaDashboard.namespace=Bad_NS"]).expect_err("bad ns");
    assert!(err.contains("schema"), "{err}");

    // What the API server says of them (server-side dry run).
    let env = node::env();
    let client = env.client().await;
    let ns = env.namespace(&client, "optional").await;
    let rendered = helm_offline(&[
        "template",
        "ferry",
        &chart(),
        "--namespace",
        &ns,
        "--set",
        "networkPolicy.enabled=true",
        "--set",
        "grafanaDashboard.enabled=true",
        "--set",
        &format!("image.digest={digest}"),
        "--set",
        "aws.webIdentity.roleArn=arn:aws:iam::111111111111:role/ferry-operator",
        "--set",
        "hostNetwork=true",
        "--set",
        "probes.host=127.0.0.1",
    ]);
    let text = env.dry_run_apply(&ns, &succeeded(&rendered, "helm template"));
    for object in [
        "networkpolicy.networking.k8s.io/ferry",
        "configmap/ferry-dashboard",
        "deployment.apps/ferry",
    ] {
        assert!(text.contains(object), "{object} missing in {text}");
    }

    // `make chart`: helm package makes the archive, dashboard included.
    let dir = tempfile::tempdir().expect("tempdir");
    succeeded(
        &helm_offline(&["package", &chart(), "--destination", &dir.path().display().to_string()]),
        "helm package",
    );
    let archive = dir.path().join(format!("ferry-{}.tgz", env!("CARGO_PKG_VERSION")));
    let listing = succeeded(
        &Command::new("tar")
            .args(["tzf", &archive.display().to_string()])
            .output()
            .expect("tar"),
        "tar tzf",
    );
    for file in [
        "ferry/Chart.yaml",
        "ferry/values.schema.json",
        "ferry/dashboards/ferry.json",
        "ferry/crds/ferry.dev_crossaccounttransfers.yaml",
        "ferry/crds/ferry.dev_transferpolicies.yaml",
        "ferry/templates/networkpolicy.yaml",
        "ferry/templates/rbac-tenants.yaml",
    ] {
        assert!(listing.lines().any(|l| l == file), "{file} missing in {listing}");
    }
}

/// `deploy/install.yaml` is the chart rendered with its defaults (regenerate with
/// `make install.yaml`), and the API server accepts it.
#[tokio::test]
async fn the_plain_manifest_is_the_rendered_chart() {
    let out = Command::new("bash")
        .arg(repo().join("hack/manifests.sh"))
        .arg("--check")
        .env("HELM", common::bin("helm"))
        .output()
        .expect("hack/manifests.sh");
    succeeded(&out, "hack/manifests.sh --check (run `make install.yaml`)");
    let env = node::env();
    // A server-side dry run cannot create the namespace the other objects need: make it.
    let client = env.client().await;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "ferry-system"}})).expect("namespace");
    let _ = Api::<Namespace>::all(client).create(&PostParams::default(), &ns).await;
    let out = env.kubectl(&[
        "apply",
        "--server-side",
        "--dry-run=server",
        "-f",
        &repo().join("deploy/install.yaml").display().to_string(),
    ]);
    let text = succeeded(&out, "kubectl apply --dry-run=server -f deploy/install.yaml");
    for object in [
        "namespace/ferry-system",
        "serviceaccount/ferry",
        "customresourcedefinition.apiextensions.k8s.io/crossaccounttransfers.ferry.dev",
        "deployment.apps/ferry",
        "clusterrole.rbac.authorization.k8s.io/ferry-controller",
        "customresourcedefinition.apiextensions.k8s.io/transferpolicies.ferry.dev",
        "clusterrole.rbac.authorization.k8s.io/ferry-tenancy",
        "clusterrole.rbac.authorization.k8s.io/ferry-transfers-edit",
        "clusterrole.rbac.authorization.k8s.io/ferry-transfers-view",
        "clusterrole.rbac.authorization.k8s.io/ferry-policy-viewer",
    ] {
        assert!(text.contains(object), "{object} missing in {text}");
    }
}

/// The metric names a dashboard's queries use.
fn dashboard_metrics(dashboard: &Value) -> BTreeSet<String> {
    let mut exprs = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    if (k == "expr" || k == "query" || k == "definition") && v.is_string() {
                        out.push(v.as_str().unwrap_or_default().to_string());
                    } else {
                        walk(v, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(dashboard, &mut exprs);
    let mut names = BTreeSet::new();
    for expr in exprs {
        let bytes = expr.as_bytes();
        let mut i = 0;
        while let Some(pos) = expr[i..].find("ferry_") {
            let start = i + pos;
            let boundary = start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
            let end = expr[start..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(expr.len(), |e| start + e);
            if boundary {
                names.insert(expr[start..end].to_string());
            }
            i = end;
        }
    }
    names
}

/// Whether `/metrics` has a sample of `name`.
fn exported(metrics: &str, name: &str) -> bool {
    metrics.lines().any(|l| {
        l.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
    })
}

/// Every metric the Grafana dashboard queries is one the operator serves on `/metrics`.
#[tokio::test]
async fn the_dashboard_queries_only_metrics_the_operator_exports() {
    node::env();
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("charts/ferry/dashboards/ferry.json")).expect("dashboard"),
    )
    .expect("dashboard JSON");
    let names = dashboard_metrics(&dashboard);
    assert!(names.len() >= 7, "{names:?}");
    let s = Scenario::new("dash", "us-east-1", "us-east-1").await;
    let op = s.operator(&[]);
    s.apply(&s.manifest("d", json!({}))).await;
    s.wait_phase("d", Phase::Succeeded, CONVERGE).await;
    // A labelled family has samples only once it has a child: make a reconcile error too.
    s.apply(&s.manifest(
        "broken",
        json!({"dataSyncRole": {"arn": "arn:aws:iam::999999999999:role/elsewhere"}}),
    ))
    .await;
    s.wait_phase("broken", Phase::Failed, CONVERGE).await;
    let metrics = op.http("/metrics").expect("metrics");
    let missing: Vec<&String> = names.iter().filter(|n| !exported(&metrics, n)).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries {missing:?}, not in\n{metrics}"
    );
    // Every family Ferry exports has a panel.
    let families: BTreeSet<String> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .filter(|f| f.starts_with("ferry_"))
        .map(str::to_string)
        .collect();
    for family in &families {
        assert!(
            names.iter().any(|n| n.starts_with(family.as_str())),
            "no panel queries {family}"
        );
    }
}
