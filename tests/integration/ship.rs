//! Shipping Ferry: the Helm chart against the real API server (lint, server-side dry run,
//! install, and the operator running with exactly the chart's RBAC), leader election, the
//! HTTP endpoints and graceful shutdown, GitOps health over statuses the operator produced,
//! and the `ferry` / `kubectl ferry` command line.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::scenario::Scenario;
use common::{bin, chart, env, repo, succeeded, wait_for};
use ferry::api::{CrossAccountTransfer, Phase};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
use kube::Api;
use serde_json::{Value, json};

const CONVERGE: Duration = Duration::from_secs(120);

#[test]
fn helm_lint_is_clean() {
    let out = env().helm(&["lint", "--strict", &chart()]);
    let text = succeeded(&out, "helm lint");
    assert!(text.contains("0 chart(s) failed"), "{text}");
    assert!(!text.contains("[WARNING]") && !text.contains("[ERROR]"), "{text}");
}

#[test]
fn helm_refuses_values_the_schema_does_not_allow() {
    for bad in [
        "logFormat=xml",
        "replicaCount=two",
        "controller.pollInterval=soon",
        "imagee.tag=x",
    ] {
        let out = env().helm(&["template", "x", &chart(), "--set", bad]);
        assert!(!out.status.success(), "{bad} was accepted");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("schema"),
            "{bad}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn helm_template_passes_a_server_side_dry_run() {
    let env = env();
    let client = env.client().await;
    let ns = env.namespace(&client, "dry").await;
    for extra in [vec![], vec!["--set".to_string(), format!("watchNamespace={ns}")]] {
        let mut args = vec!["template", "ferry", &chart(), "--namespace", &ns, "--include-crds"]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        args.extend(extra);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let manifests = succeeded(&env.helm(&refs), "helm template");
        let text = env.dry_run_apply(&ns, &manifests);
        for kind in [
            "deployment.apps/ferry",
            "serviceaccount/ferry",
            "service/ferry-metrics",
            "customresourcedefinition",
        ] {
            assert!(text.contains(kind), "{kind} missing in {text}");
        }
    }
}

#[tokio::test]
async fn examples_are_valid_manifests() {
    let env = env();
    let client = env.client().await;
    // The examples name their own namespaces; make them exist for the dry run.
    let mut namespaces = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(repo().join("examples")).expect("examples") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let Ok(transfers) = ferry::cli::read_transfers(&path) else {
            // The policies: they grant every example (below).
            assert!(
                !ferry::cli::read_policies(std::slice::from_ref(&path))
                    .expect("policies")
                    .is_empty()
            );
            continue;
        };
        for obj in transfers {
            namespaces.insert(obj.metadata.namespace.clone().unwrap_or_else(|| "default".into()));
        }
        let examples = repo().join("examples");
        let plan = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args([
                "plan",
                "-f",
                &path.display().to_string(),
                "--account-a-id",
                "111111111111",
            ])
            .arg(format!(
                "--policies={}",
                examples.join("quickstart-policy.yaml").display()
            ))
            .arg(format!("--policies={}", examples.join("policies.yaml").display()))
            .output()
            .expect("ferry plan");
        let text = succeeded(&plan, &format!("ferry plan -f {}", path.display()));
        assert!(text.contains("Permitted by TransferPolicy ferry-demo-"), "{text}");
    }
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client);
    for ns in namespaces {
        let _ = api
            .create(
                &Default::default(),
                &serde_json::from_value(json!({"metadata": {"name": ns}})).expect("ns"),
            )
            .await;
    }
    let out = env.kubectl(&[
        "apply",
        "--dry-run=server",
        "-f",
        &repo().join("examples").display().to_string(),
    ]);
    succeeded(&out, "kubectl apply --dry-run=server -f examples/");
}

fn kubeconfig_as(env: &common::TestEnv, user: &str, groups: &[&str]) -> std::path::PathBuf {
    let base = std::fs::read_to_string(&env.kubeconfig).expect("kubeconfig");
    let groups = groups.iter().map(|g| format!("\n    - {g}")).collect::<String>();
    let text = base.replace(
        "    client-key-data:",
        &format!("    as: {user}\n    as-groups:{groups}\n    client-key-data:"),
    );
    let path = env.dir.join(format!("kubeconfig-as-{}", common::suffix()));
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

#[tokio::test]
async fn helm_install_creates_least_privilege_objects_that_suffice_for_the_operator() {
    let s = Scenario::new("helm", "us-east-1", "us-east-1").await;
    let env = s.env;
    let release_ns = env.namespace(&s.client, "ferry-system").await;
    let release = format!("ferry-{}", common::suffix());
    succeeded(
        &env.helm(&[
            "install",
            &release,
            &chart(),
            "--namespace",
            &release_ns,
            "--set",
            &format!("watchNamespace={}", s.ns),
            "--set",
            "replicaCount=1",
            "--skip-crds",
            "--wait=false",
        ]),
        "helm install",
    );
    // Every object exists, as the chart says (no node runs the pod here: only objects are checked).
    let deploy: Api<Deployment> = Api::namespaced(s.client.clone(), &release_ns);
    let d = deploy.get(&release).await.expect("deployment");
    let pod = d.spec.expect("spec").template.spec.expect("pod spec");
    let psc = pod.security_context.expect("pod security context");
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(psc.seccomp_profile.map(|p| p.type_).as_deref(), Some("RuntimeDefault"));
    let c = &pod.containers[0];
    let sc = c.security_context.clone().expect("container security context");
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.capabilities.and_then(|c| c.drop), Some(vec!["ALL".to_string()]));
    let resources = c.resources.clone().expect("resources");
    assert!(resources.requests.is_some() && resources.limits.is_some());
    Api::<ServiceAccount>::namespaced(s.client.clone(), &release_ns)
        .get(&release)
        .await
        .expect("service account");
    Api::<Service>::namespaced(s.client.clone(), &release_ns)
        .get(&format!("{release}-metrics"))
        .await
        .expect("metrics service");
    let role = Api::<Role>::namespaced(s.client.clone(), &s.ns)
        .get(&format!("{release}-controller"))
        .await
        .expect("the controller Role in the watched namespace");
    let rules: Vec<(Vec<String>, Vec<String>)> = role
        .rules
        .unwrap_or_default()
        .into_iter()
        .map(|r| (r.resources.unwrap_or_default(), r.verbs))
        .collect();
    assert_eq!(rules.len(), 4, "{rules:?}");
    Api::<Role>::namespaced(s.client.clone(), &release_ns)
        .get(&format!("{release}-leader-election"))
        .await
        .expect("the lease Role");
    assert!(
        Api::<ClusterRole>::all(s.client.clone())
            .get_opt(&format!("{release}-controller"))
            .await
            .expect("get")
            .is_none(),
        "a namespaced install makes no ClusterRole"
    );

    // Nothing more than needed...
    let sa = format!("system:serviceaccount:{release_ns}:{release}");
    for (verb, resource, ns, allowed) in [
        ("patch", "crossaccounttransfers.ferry.dev/status", s.ns.as_str(), "yes"),
        ("create", "events.events.k8s.io", s.ns.as_str(), "yes"),
        ("update", "leases.coordination.k8s.io", release_ns.as_str(), "yes"),
        ("get", "secrets", s.ns.as_str(), "no"),
        ("create", "crossaccounttransfers.ferry.dev", s.ns.as_str(), "no"),
        ("list", "crossaccounttransfers.ferry.dev", "default", "no"),
        ("create", "events", s.ns.as_str(), "no"),
        ("watch", "transferpolicies.ferry.dev", "", "yes"),
        ("patch", "transferpolicies.ferry.dev/status", "", "yes"),
        ("create", "transferpolicies.ferry.dev", "", "no"),
        ("update", "transferpolicies.ferry.dev", "", "no"),
        ("watch", "namespaces", "", "yes"),
        ("update", "namespaces", "", "no"),
    ] {
        let scope = if ns.is_empty() {
            "--all-namespaces".to_string()
        } else {
            format!("--namespace={ns}")
        };
        let (resource, subresource) = match resource.split_once('/') {
            Some((r, sub)) => (r, format!("--subresource={sub}")),
            None => (resource, "--subresource=".to_string()),
        };
        let out = env.kubectl(&[
            "auth",
            "can-i",
            verb,
            resource,
            &subresource,
            &scope,
            &format!("--as={sa}"),
        ]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            allowed,
            "{verb} {resource} in {ns}"
        );
    }
    // ...and enough: the real operator, as that service account, runs a transfer to the end.
    let kubeconfig = kubeconfig_as(
        env,
        &sa,
        &[
            "system:serviceaccounts",
            &format!("system:serviceaccounts:{release_ns}"),
            "system:authenticated",
        ],
    );
    let _op = s.operator(&[
        ("KUBECONFIG", &kubeconfig.display().to_string()),
        ("FERRY_LEADER_ELECTION", "true"),
        ("POD_NAMESPACE", &release_ns),
        ("FERRY_LEASE_NAME", "ferry-leader"),
        ("FERRY_TRANSFER_POLICIES", "enforce"),
    ]);
    s.grant("rbac", json!({})).await;
    s.apply(&s.manifest("rbac", json!({}))).await;
    s.wait_phase("rbac", Phase::Succeeded, CONVERGE).await;
    s.delete_and_wait("rbac", CONVERGE).await;
    succeeded(
        &env.helm(&["uninstall", &release, "--namespace", &release_ns]),
        "helm uninstall",
    );
}

/// Waits until a standby operator has found the lease held (it may start slowly).
async fn stands_by(op: &common::Operator) {
    wait_for("the standby to stand by", CONVERGE, || {
        let log = op.log_text();
        async move { if log.contains("standing by") { Ok(()) } else { Err(log) } }
    })
    .await;
}

#[tokio::test]
async fn one_leader_writes_and_a_standby_takes_over() {
    let s = Scenario::new("lead", "us-east-1", "us-east-1").await;
    let leader_env = |id: &'static str| {
        vec![
            ("FERRY_LEADER_ELECTION", "true"),
            ("POD_NAME", id),
            ("FERRY_LEASE_DURATION", "4s"),
        ]
    };
    let mut first = s.operator(&leader_env("ferry-one"));
    let lease_api: Api<Lease> = Api::namespaced(s.client.clone(), &s.ns);
    let holder = wait_for("a lease holder", CONVERGE, || {
        let lease_api = lease_api.clone();
        async move {
            let lease = lease_api.get("ferry-leader").await.map_err(|e| e.to_string())?;
            lease
                .spec
                .and_then(|s| s.holder_identity)
                .ok_or_else(|| "no holder".into())
        }
    })
    .await;
    assert_eq!(holder, "ferry-one");
    let mut second = s.operator(&leader_env("ferry-two"));
    // The standby has found the lease held before the transfer comes (it may start slowly).
    stands_by(&second).await;
    s.apply(&s.manifest("one", json!({}))).await;
    s.wait_phase("one", Phase::Succeeded, CONVERGE).await;
    let writers: std::collections::BTreeSet<String> = s.events("one").await.into_iter().map(|e| e.3).collect();
    assert_eq!(
        writers.into_iter().collect::<Vec<_>>(),
        vec!["ferry-one".to_string()],
        "only the leader writes"
    );

    // A graceful stop hands the lease over at once.
    let status = first.terminate().expect("exit status");
    assert!(
        status.success(),
        "graceful shutdown exits 0: {status:?}\n{}",
        first.log_text()
    );
    assert!(first.log_text().contains("released the lease"), "{}", first.log_text());
    wait_for("ferry-two to lead", Duration::from_secs(30), || {
        let lease_api = lease_api.clone();
        async move {
            let lease = lease_api.get("ferry-leader").await.map_err(|e| e.to_string())?;
            match lease.spec.and_then(|s| s.holder_identity).as_deref() {
                Some("ferry-two") => Ok(()),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await;
    s.apply(&s.manifest("two", json!({}))).await;
    s.wait_phase("two", Phase::Succeeded, CONVERGE).await;
    let writers: std::collections::BTreeSet<String> = s.events("two").await.into_iter().map(|e| e.3).collect();
    assert_eq!(writers.into_iter().collect::<Vec<_>>(), vec!["ferry-two".to_string()]);
    assert!(second.exited().is_none());
}

/// A leader paused (SIGSTOP) past its lease: the standby takes over by its own clock and
/// converges; the old leader, resumed, sends AWS nothing (its fence closed at the renew
/// deadline) and exits. Each operator signs with its own session of Account A's role, so the
/// emulator's call log tells their calls apart.
#[tokio::test]
async fn a_paused_leader_sends_aws_nothing_once_its_lease_is_gone() {
    let s = Scenario::new("fence", "us-east-1", "us-east-1").await;
    let lease_api: Api<Lease> = Api::namespaced(s.client.clone(), &s.ns);
    let holder = || async {
        lease_api
            .get("ferry-leader")
            .await
            .ok()
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
    };
    let env = |id: &'static str| {
        vec![
            ("FERRY_LEADER_ELECTION", "true"),
            ("POD_NAME", id),
            ("FERRY_LEASE_DURATION", "3s"),
        ]
    };
    let first_creds = s.a.another_session(s.env).await;
    // A drift check every second: when it resumes, reconciles are due at once.
    let mut first_env = env("ferry-one");
    first_env.push(("FERRY_RESYNC_INTERVAL", "1s"));
    let mut first = s.env.operator(&s.ns, &first_creds, &first_env);
    wait_for("ferry-one to lead", CONVERGE, || async {
        match holder().await.as_deref() {
            Some("ferry-one") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let second = s.operator(&env("ferry-two"));
    stands_by(&second).await;
    // The leader is at work: a transfer it checks every second.
    s.apply(&s.manifest("one", json!({}))).await;
    s.wait_phase("one", Phase::Succeeded, CONVERGE).await;
    // Counted by when each request was signed (its X-Amz-Date), not when it arrived: the fence
    // is checked after signing, so a request signed before the pause may still arrive after the
    // takeover; none may be signed after it. (Whole seconds: the fence closed at least a third
    // of the lease, 1 s, before the standby could take over.)
    let from_first = |after: f64| {
        common::aws::calls(s.env, &format!("key={}", first_creds.access_key_id))
            .into_iter()
            .filter(|c| c["signed_at"].as_f64().unwrap_or_default() > after)
            .count()
    };
    assert!(from_first(0.0) > 0, "the leader did the work");

    // Paused well past its lease: the standby takes over and converges a new transfer.
    // SAFETY: a signal to a child process this test started.
    unsafe { libc::kill(first.pid() as i32, libc::SIGSTOP) };
    wait_for("ferry-two to take the lease", CONVERGE, || async {
        match holder().await.as_deref() {
            Some("ferry-two") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let taken_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    s.apply(&s.manifest("two", json!({}))).await;
    s.patch_spec("one", json!({"task": {"excludes": ["*.tmp", "*.bak"]}}))
        .await;
    s.wait_phase("two", Phase::Succeeded, CONVERGE).await;
    s.wait_phase("one", Phase::Succeeded, CONVERGE).await;

    // Resumed, with its timers and reconciles due at once: nothing reaches AWS, and it exits.
    // SAFETY: as above.
    unsafe { libc::kill(first.pid() as i32, libc::SIGCONT) };
    let status = first.wait_exit(CONVERGE);
    assert_eq!(status.code(), Some(2), "{}", first.log_text());
    assert_eq!(
        from_first(taken_at),
        0,
        "AWS calls signed by the replica that lost its lease, after the takeover"
    );
    assert!(first.log_text().contains("leadership lost"), "{}", first.log_text());
    let writers: std::collections::BTreeSet<String> = s.events("two").await.into_iter().map(|e| e.3).collect();
    assert_eq!(writers.into_iter().collect::<Vec<_>>(), vec!["ferry-two".to_string()]);
}

#[tokio::test]
async fn health_readiness_and_metrics_are_served() {
    let s = Scenario::new("http", "us-east-1", "us-east-1").await;
    let mut op = s.operator(&[]);
    let ready = wait_for("/readyz", Duration::from_secs(30), || {
        let answer = op.http("/readyz").unwrap_or_default();
        async move {
            if answer.contains("200 OK") {
                Ok(answer)
            } else {
                Err(answer)
            }
        }
    })
    .await;
    assert!(ready.ends_with("ready"));
    assert!(op.http("/healthz").unwrap_or_default().contains("200 OK"));
    s.apply(&s.manifest("m", json!({}))).await;
    s.wait_phase("m", Phase::Succeeded, CONVERGE).await;
    let metrics = op.http("/metrics").expect("metrics");
    for family in [
        "ferry_reconciles_total{kind=\"apply\",result=\"ok\"}",
        "ferry_reconcile_duration_seconds_bucket",
        "ferry_aws_calls_total{service=\"DataSync\",operation=\"CreateTask\",outcome=\"success\"} 1",
        "ferry_aws_calls_total{service=\"IAM\",operation=\"CreateRole\",outcome=\"success\"} 1",
        &format!(
            "ferry_transfer_bytes_transferred{{namespace=\"{}\",name=\"m\"}} 10",
            s.ns
        ),
        &format!(
            "ferry_transfer_files_transferred{{namespace=\"{}\",name=\"m\"}} 2",
            s.ns
        ),
        &format!(
            "ferry_transfer_progress_percent{{namespace=\"{}\",name=\"m\"}} 100",
            s.ns
        ),
    ] {
        assert!(metrics.contains(family), "{family} missing in\n{metrics}");
    }
    // JSON logs carry the resource.
    let line = op
        .log_text()
        .lines()
        .find(|l| l.contains("TaskCreated"))
        .map(str::to_string)
        .expect("a log line about the task");
    let parsed: Value = serde_json::from_str(&line).expect("JSON log line");
    assert_eq!(parsed["span"]["resource"], format!("{}/m", s.ns));
    let status = op.terminate().expect("exit");
    assert!(status.success(), "{status:?}");
}

/// Statuses the real operator wrote, one per phase seen.
async fn collect_statuses(s: &Scenario) -> BTreeMap<String, Value> {
    let mut seen: BTreeMap<String, Value> = BTreeMap::new();
    let api = s.api();
    let record = |obj: &CrossAccountTransfer, key: &str, seen: &mut BTreeMap<String, Value>| {
        let value = serde_json::to_value(obj).expect("json");
        seen.entry(key.to_string()).or_insert(value);
    };
    // A transfer from Pending to Succeeded, sampled often enough to see it transferring.
    s.apply(&s.manifest("gitops", json!({}))).await;
    let deadline = std::time::Instant::now() + CONVERGE;
    loop {
        let obj = api.get("gitops").await.expect("get");
        let phase = obj
            .status
            .as_ref()
            .and_then(|st| st.phase)
            .map(|p| p.as_str())
            .unwrap_or("NoStatus");
        record(&obj, phase, &mut seen);
        if phase == "Succeeded" && obj.status.as_ref().and_then(|st| st.observed_generation) == obj.metadata.generation
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no Succeeded; saw {:?}",
            seen.keys()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A new generation the controller has not observed yet.
    let mut stale = seen["Succeeded"].clone();
    stale["metadata"]["generation"] = json!(stale["metadata"]["generation"].as_i64().unwrap_or(1) + 1);
    seen.insert("StaleGeneration".into(), stale);
    // Suspended.
    s.patch_spec("gitops", json!({"suspend": true})).await;
    record(
        &s.wait_phase("gitops", Phase::Suspended, CONVERGE).await,
        "Suspended",
        &mut seen,
    );
    // Stalled on an invalid spec.
    let foreign = "arn:aws:iam::999999999999:role/elsewhere";
    s.apply(&s.manifest("broken", json!({"dataSyncRole": {"arn": foreign}})))
        .await;
    record(
        &s.wait_phase("broken", Phase::Failed, CONVERGE).await,
        "Failed",
        &mut seen,
    );
    // External mode, waiting for Account B (another bucket: the namespace's shared role
    // already reaches the first, whose policy names it).
    let other = format!("{}-ext", s.dst);
    s.b.bucket(&s.dst_region, &other).await;
    s.apply(&s.manifest(
        "waiting",
        json!({"destination": {"bucket": other, "access": {"mode": "External", "roleArn": null}}}),
    ))
    .await;
    record(
        &s.wait_phase("waiting", Phase::AwaitingDestination, CONVERGE).await,
        "AwaitingDestination",
        &mut seen,
    );
    seen
}

fn checker(tool: &str, args: &[&str], object: &Value) -> Value {
    let mut child = Command::new(bin(tool))
        .args(args)
        .args(["-object", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the checker");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(object.to_string().as_bytes())
        .expect("write object");
    let out = child.wait_with_output().expect("checker output");
    let text = succeeded(&out, tool);
    serde_json::from_str(text.trim()).unwrap_or_else(|_| panic!("{tool} printed {text}"))
}

#[tokio::test]
async fn argo_cd_and_flux_read_the_statuses_the_operator_writes() {
    let s = Scenario::new("gitops", "us-east-1", "us-east-1").await;
    let _op = s.operator(&[]);
    let seen = collect_statuses(&s).await;
    for phase in [
        "Provisioning",
        "Transferring",
        "Succeeded",
        "Suspended",
        "Failed",
        "AwaitingDestination",
    ] {
        assert!(seen.contains_key(phase), "never saw {phase}: {:?}", seen.keys());
    }
    let script = repo().join("integrations/argocd/health.lua").display().to_string();
    let expected_argo = [
        ("Provisioning", "Progressing"),
        ("Transferring", "Progressing"),
        ("Succeeded", "Healthy"),
        ("StaleGeneration", "Progressing"),
        ("Suspended", "Suspended"),
        ("Failed", "Degraded"),
        ("AwaitingDestination", "Progressing"),
    ];
    let expected_kstatus = [
        ("Provisioning", "InProgress"),
        ("Transferring", "InProgress"),
        ("Succeeded", "Current"),
        ("StaleGeneration", "InProgress"),
        ("Failed", "Failed"),
        ("AwaitingDestination", "InProgress"),
    ];
    let mut wrong = Vec::new();
    for (phase, want) in expected_argo {
        let got = checker("ferry-luahealth", &["-script", &script], &seen[phase]);
        if got["status"] != want {
            wrong.push(format!("Argo CD {phase}: want {want}, got {got}"));
        }
    }
    for (phase, want) in expected_kstatus {
        let got = checker("ferry-kstatus", &[], &seen[phase]);
        if got["status"] != want {
            wrong.push(format!("kstatus {phase}: want {want}, got {got}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The Argo CD ConfigMap snippet carries the same script.
    let out = Command::new("bash")
        .arg(repo().join("integrations/argocd/render-cm.sh"))
        .arg("--check")
        .output()
        .expect("render-cm.sh");
    succeeded(&out, "render-cm.sh --check");
}

fn plugin_dir(env: &common::TestEnv) -> std::path::PathBuf {
    let dir = env.dir.join(format!("plugins-{}", common::suffix()));
    std::fs::create_dir_all(&dir).expect("plugin dir");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ferry"), dir.join("kubectl-ferry")).expect("symlink");
    dir
}

#[tokio::test]
async fn the_cli_reports_status_and_publishes_the_external_policy() {
    let s = Scenario::new("cli", "us-east-1", "us-east-1").await;
    let _op = s.operator(&[]);
    s.apply(&s.manifest("done", json!({}))).await;
    s.wait_phase("done", Phase::Succeeded, CONVERGE).await;

    // `kubectl ferry status` as a kubectl plugin.
    let dir = plugin_dir(s.env);
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new(bin("kubectl"))
        .args(["ferry", "status", "-n", &s.ns])
        .env("PATH", &path)
        .env("KUBECONFIG", &s.env.kubeconfig)
        .output()
        .expect("kubectl ferry");
    let table = succeeded(&out, "kubectl ferry status");
    let row = table
        .lines()
        .find(|l| l.starts_with("done"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.contains("Succeeded") && row.contains("[####################]") && row.contains("100%"),
        "{table}"
    );
    assert!(row.contains("2 objects, 10 B"), "{table}");

    // `ferry policy` reads the exact policy Ferry published for an External transfer and merges
    // it (another bucket: the namespace's shared role already reaches the first).
    let other = format!("{}-ext", s.dst);
    s.b.bucket(&s.dst_region, &other).await;
    let manifest = s.manifest(
        "ext",
        json!({"destination": {"bucket": other, "access": {"mode": "External", "roleArn": null}}}),
    );
    s.apply(&manifest).await;
    let obj = s.wait_phase("ext", Phase::AwaitingDestination, CONVERGE).await;
    let existing = json!({"Version": "2012-10-17", "Statement": [{"Sid": "Mine", "Effect": "Deny",
        "Principal": "*", "Action": "s3:DeleteBucket", "Resource": format!("arn:aws:s3:::{}", s.dst)}]});
    let merged: Value =
        serde_json::from_str(&common::ferry_policy_merged(s.env, &manifest, &existing)).expect("policy JSON");
    let required: Value = serde_json::from_str(
        &obj.status
            .and_then(|st| st.destination)
            .and_then(|d| d.required_bucket_policy)
            .expect("published"),
    )
    .expect("json");
    let statements = merged["Statement"].as_array().expect("statements");
    assert_eq!(statements[0], existing["Statement"][0]);
    assert_eq!(
        &statements[1..],
        required["Statement"].as_array().expect("ours").as_slice()
    );

    // Offline, without the cluster, it says what it needs.
    let file = s.env.dir.join(format!("ext-{}.yaml", common::suffix()));
    std::fs::write(&file, serde_json::to_string(&manifest).expect("json")).expect("write manifest");
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["policy", "--offline", "-f", &file.display().to_string()])
        .output()
        .expect("ferry policy");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--account-a-id"));
    assert!(Path::new(&file).exists());
}
