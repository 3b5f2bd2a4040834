//! Tenancy against the real API server, the strict emulator and the real `ferry run` with
//! TransferPolicy enforcement on: what no policy grants is refused with zero AWS calls, a policy
//! that grants lets the transfer run, a narrowed policy stops it, deletion still cleans up.

use crate::common;

use std::time::Duration;

use common::aws::calls;
use common::scenario::Scenario;
use common::wait_for;
use ferry::api::{CrossAccountTransfer, Phase, TransferPolicy};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams};
use serde_json::{Value, json};

const CONVERGE: Duration = Duration::from_secs(120);
const ENFORCE: (&str, &str) = ("FERRY_TRANSFER_POLICIES", "enforce");

/// The `Stalled` condition's reason and message.
fn stalled(obj: &CrossAccountTransfer) -> (String, String) {
    let st = obj.status.clone().unwrap_or_default();
    st.conditions
        .iter()
        .find(|c| c.type_ == "Stalled" && c.status == "True")
        .map(|c| (c.reason.clone(), c.message.clone()))
        .unwrap_or_default()
}

/// Every AWS call the emulator saw from either of the scenario's accounts.
fn aws_calls(s: &Scenario) -> usize {
    calls(s.env, &format!("account={}", s.a.id)).len() + calls(s.env, &format!("account={}", s.b.id)).len()
}

/// Waits until a transfer is refused for the current spec, and returns the refusal's message
/// after checking the Warning event that announced it.
async fn refused(s: &Scenario, name: &str) -> String {
    let obj = s.wait_phase(name, Phase::Failed, CONVERGE).await;
    let (reason, message) = stalled(&obj);
    assert_eq!(reason, "NotPermitted", "{message}");
    let events = s.events(name).await;
    assert!(
        events.iter().any(|(kind, reason, note, _)| kind == "Warning"
            && reason == "NotPermitted"
            && message.starts_with(note.as_str())),
        "no NotPermitted Warning event with the message: {events:?}"
    );
    message
}

async fn policy(s: &Scenario, name: &str) -> TransferPolicy {
    Api::<TransferPolicy>::all(s.client.clone())
        .get(name)
        .await
        .expect("get TransferPolicy")
}

#[tokio::test]
async fn a_tenant_without_a_policy_is_refused_with_zero_aws_calls_until_one_grants_it() {
    let s = Scenario::new("ten", "us-east-1", "us-east-1").await;
    let _op = s.operator(&[ENFORCE]);
    let before = aws_calls(&s);
    s.apply(&s.manifest("t", json!({}))).await;
    let message = refused(&s, "t").await;
    assert!(
        message.contains(&format!("no TransferPolicy selects namespace {}", s.ns)),
        "{message}"
    );
    let obj = s.api().get("t").await.expect("get");
    assert!(
        obj.finalizers().is_empty(),
        "a refused transfer has nothing in AWS to guard"
    );
    assert_eq!(aws_calls(&s), before, "a refused transfer makes no AWS call");

    // The admin grants the namespace: the policy's watch event reconciles the transfer at once.
    let name = s.grant("team", json!({})).await;
    s.wait_recovery("t", Phase::Succeeded, CONVERGE).await;
    assert_eq!(s.destination_keys().await.len(), 2);
    let report = wait_for("the policy's status", CONVERGE, || {
        let s = &s;
        let name = name.clone();
        async move {
            let p = policy(s, &name).await;
            match p.status {
                Some(st) if st.transfers == 1 => Ok(st),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await;
    assert_eq!(report.namespaces, vec![s.ns.clone()]);
    assert_eq!((report.namespace_count, report.refused), (1, 0));
}

#[tokio::test]
async fn every_ungranted_field_is_refused_before_aws_and_deleted_without_cleanup() {
    let s = Scenario::new("edge", "us-east-1", "us-east-1").await;
    let (a, b) = (s.a.id.clone(), s.b.id.clone());
    let reports = format!("{}-reports", s.src);
    // Granted: a source bucket whose name extends the real one and the real one, the media/b/
    // folder only, a source role in mixed case (IAM ignores the case of role names; grants do
    // not), External mode only, the archive/ folder, one report bucket's ferry/ folder.
    s.grant(
        "edges",
        json!({"source": {"buckets": [format!("{}-archive", s.src), s.src.clone()], "prefixes": ["media/b/"],
                          "roleArns": [format!("arn:aws:iam::{a}:role/Ferry-Migrations")]},
               "destination": {"modes": ["External"], "prefixes": ["archive/"]},
               "report": {"buckets": [reports.clone()], "prefixes": ["ferry/"]}}),
    )
    .await;
    let _op = s.operator(&[ENFORCE]);
    let before = aws_calls(&s);
    // Each case changes one field of a granted External transfer of media/b/.
    let manifest = |name: &str, change: &Value| {
        let granted =
            json!({"source": {"prefix": "media/b/"}, "destination": {"access": {"mode": "External", "roleArn": null}}});
        let mut m = s.manifest(name, granted);
        common::scenario::merge(&mut m["spec"], change);
        m
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        // a prefix of a granted bucket name is not that bucket
        (
            "shorter-bucket",
            json!({"source": {"bucket": s.src[..s.src.len() - 1].to_string()}}),
            "spec.source.bucket",
        ),
        (
            "source-region",
            json!({"source": {"region": "us-west-2"}}),
            "spec.source.region",
        ),
        // a wider folder than the granted one, and the whole bucket
        (
            "wider-prefix",
            json!({"source": {"prefix": "media/"}}),
            "spec.source.prefix",
        ),
        (
            "whole-bucket",
            json!({"source": {"prefix": null}}),
            "spec.source.prefix",
        ),
        // case counts
        (
            "role-case",
            json!({"source": {"roleArn": format!("arn:aws:iam::{a}:role/ferry-migrations")}}),
            "spec.source.roleArn",
        ),
        (
            "source-key",
            json!({"source": {"kmsKeyArn": format!("arn:aws:kms:us-east-1:{a}:key/k1")}}),
            "spec.source.kmsKeyArn",
        ),
        // the case: External mode into an account nobody approved
        (
            "other-account",
            json!({"destination": {"accountId": "999999999999"}}),
            "spec.destination.accountId",
        ),
        (
            "other-bucket",
            json!({"destination": {"bucket": "someone-elses-bucket"}}),
            "spec.destination.bucket",
        ),
        (
            "dest-region",
            json!({"destination": {"region": "us-west-2"}}),
            "spec.destination.region",
        ),
        (
            "dest-prefix",
            json!({"destination": {"prefix": "elsewhere/"}}),
            "spec.destination.prefix",
        ),
        (
            "assume-role",
            json!({"destination": {"access": {"mode": "AssumeRole", "roleArn": s.b.role_arn.clone()}}}),
            "spec.destination.access.mode",
        ),
        (
            "dest-key",
            json!({"destination": {"kmsKeyArn": format!("arn:aws:kms:us-east-1:{b}:key/k2")}}),
            "spec.destination.kmsKeyArn",
        ),
        (
            "datasync-name",
            json!({"dataSyncRole": {"name": "powerful"}}),
            "spec.dataSyncRole.name",
        ),
        (
            "datasync-arn",
            json!({"dataSyncRole": {"arn": format!("arn:aws:iam::{a}:role/powerful")}}),
            "spec.dataSyncRole.arn",
        ),
        (
            "report-bucket",
            json!({"task": {"report": {"bucket": s.dst.clone()}}}),
            "spec.task.report.bucket",
        ),
        (
            "report-prefix",
            json!({"task": {"report": {"bucket": reports.clone(), "prefix": "other/"}}}),
            "spec.task.report.prefix",
        ),
        (
            "log-group",
            json!({"task": {"logGroupArn": format!("arn:aws:logs:us-east-1:{a}:log-group:/aws/datasync")}}),
            "spec.task.logGroupArn",
        ),
    ];
    for (name, change, _) in &cases {
        s.apply(&manifest(name, change)).await;
    }
    for (name, _, field) in &cases {
        let message = refused(&s, name).await;
        assert!(
            message.starts_with(&format!("not permitted: {field} ")),
            "{name}: {message}"
        );
        assert!(message.contains("a platform admin must add it to"), "{name}: {message}");
        if *name == "whole-bucket" {
            assert!(message.contains("(empty: the whole bucket)"), "{message}");
        }
    }
    assert_eq!(aws_calls(&s), before, "no refused transfer made an AWS call");
    // A transfer that never ran is deleted at once, without an AWS call.
    for (name, _, _) in &cases {
        s.delete_and_wait(name, CONVERGE).await;
    }
    assert_eq!(aws_calls(&s), before, "deleting them made no AWS call either");

    // The same transfer within what is granted runs (External: Ferry never calls Account B).
    s.apply(&manifest("granted", &json!({}))).await;
    s.wait_phase("granted", Phase::AwaitingDestination, CONVERGE).await;
    assert!(aws_calls(&s) > before);
}

#[tokio::test]
async fn a_narrowed_policy_stops_new_runs_and_deletion_still_cleans_up() {
    let s = Scenario::new("narrow", "us-east-1", "us-east-1").await;
    let name = s.grant("team", json!({})).await;
    let _op = s.operator(&[ENFORCE, ("FERRY_RESYNC_INTERVAL", "3s")]);
    s.apply(&s.manifest("n", json!({"run": "Manual"}))).await;
    s.annotate("n", "ferry.dev/run", "first").await;
    s.wait_phase("n", Phase::Succeeded, CONVERGE).await;
    let role = s.pool().role_name(0);
    assert!(s.a.roles().await.contains(&role));

    // The admin takes the destination bucket away: the transfer says so and runs no more.
    s.grant("team", json!({"destination": {"buckets": ["some-other-bucket"]}}))
        .await;
    let message = refused(&s, "n").await;
    assert!(
        message.starts_with(&format!("not permitted: spec.destination.bucket \"{}\"", s.dst)),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "TransferPolicy {name} grants spec.destination.buckets = some-other-bucket"
        )),
        "{message}"
    );
    let before = aws_calls(&s);
    s.annotate("n", "ferry.dev/run", "second").await;
    refused(&s, "n").await;
    let obj = s.api().get("n").await.expect("get");
    assert_eq!(
        obj.status.and_then(|st| st.last_run).and_then(|r| r.token).as_deref(),
        Some("first"),
        "no run for the new request"
    );
    // Several drift checks' worth of time: still nothing.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(
        aws_calls(&s),
        before,
        "a refused transfer makes no AWS call, drift checks included"
    );
    let starts = calls(s.env, &format!("account={}&operation=StartTaskExecution", s.a.id)).len();
    assert_eq!(starts, 1);

    // Deleting it still removes what Ferry made (its identities are still granted).
    s.delete_and_wait("n", CONVERGE).await;
    assert!(!s.a.roles().await.contains(&role), "role deleted");
    assert!(s.a.tasks(&s.dst_region).await.is_empty(), "task deleted");
    let events = s.events("n").await;
    assert!(
        events.iter().any(|(_, reason, _, _)| reason == "CleanedUp"),
        "{events:?}"
    );
    Api::<TransferPolicy>::all(s.client.clone())
        .delete(&name, &DeleteParams::default())
        .await
        .expect("delete policy");
}

#[tokio::test]
async fn a_transfer_whose_identity_is_no_longer_granted_is_deleted_without_aws_calls() {
    let s = Scenario::new("ident", "us-east-1", "us-east-1").await;
    s.grant("team", json!({})).await;
    let _op = s.operator(&[ENFORCE]);
    s.apply(&s.manifest("i", json!({}))).await;
    s.wait_phase("i", Phase::Succeeded, CONVERGE).await;
    // The tenant points Account B's side at a role nobody granted, then deletes the transfer:
    // Ferry must not assume that role, not even to clean up.
    let other = format!("arn:aws:iam::{}:role/admin", s.b.id);
    s.patch_spec("i", json!({"destination": {"access": {"roleArn": other}}}))
        .await;
    let message = refused(&s, "i").await;
    assert!(
        message.starts_with("not permitted: spec.destination.access.roleArn"),
        "{message}"
    );
    let before = aws_calls(&s);
    s.delete_and_wait("i", CONVERGE).await;
    assert_eq!(aws_calls(&s), before, "no AWS call with an identity no policy grants");
    let events = s.events("i").await;
    let left = events
        .iter()
        .find(|(kind, reason, _, _)| kind == "Warning" && reason == "CleanupNotPermitted")
        .unwrap_or_else(|| panic!("no CleanupNotPermitted event: {events:?}"));
    assert!(left.2.contains("Left in AWS: arn:aws:datasync:"), "{}", left.2);
}

/// `ferry plan --cluster`: the policy that permits a manifest, or what is missing (exit 1).
#[tokio::test]
async fn ferry_plan_names_the_permitting_policy_or_what_is_missing() {
    let s = Scenario::new("tplan", "us-east-1", "us-east-1").await;
    // As `kubectl get -o yaml` prints them: a List.
    let plan = |name: &str, spec: Value| {
        let path = s.env.dir.join(format!("plan-{}-{name}.yaml", s.ns));
        let list = json!({"apiVersion": "v1", "kind": "List", "items": [s.manifest(name, spec)]});
        std::fs::write(&path, serde_json::to_string(&list).expect("json")).expect("write");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["plan", "--cluster", "-f", &path.display().to_string()])
            .env("KUBECONFIG", &s.env.kubeconfig)
            .output()
            .expect("ferry plan");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string())
    };
    let (code, text) = plan("p", json!({}));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!("NOT PERMITTED: no TransferPolicy selects namespace {}", s.ns)),
        "{text}"
    );
    let name = s.grant("team", json!({})).await;
    let (code, text) = plan("p", json!({}));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(&format!("Permitted by TransferPolicy {name}.")), "{text}");
    let (code, text) = plan("p", json!({"destination": {"bucket": "not-granted-bucket"}}));
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("NOT PERMITTED: spec.destination.bucket \"not-granted-bucket\" is not granted"),
        "{text}"
    );
}

#[tokio::test]
async fn policies_are_validated_at_admission() {
    let s = Scenario::new("tpadm", "us-east-1", "us-east-1").await;
    let path = s.env.dir.join(format!("policy-{}.yaml", s.ns));
    let bad = [
        (
            json!({"namespaces": {}, "source": {"buckets": ["a"], "regions": ["*"]},
                "destination": {"accounts": ["*"], "buckets": ["*"], "regions": ["*"]}}),
            "spec.namespaces: name namespaces (names) or select them by label (selector)",
        ),
        (
            json!({"namespaces": {"names": ["x"]}, "source": {"buckets": [], "regions": ["*"]},
                "destination": {"accounts": ["*"], "buckets": ["*"], "regions": ["*"]}}),
            "spec.source.buckets",
        ),
        (
            json!({"namespaces": {"names": ["x"]}, "source": {"buckets": ["a"], "regions": ["*"]},
                "destination": {"accounts": ["22222222222"], "buckets": ["*"], "regions": ["*"]}}),
            "spec.destination.accounts[0]",
        ),
    ];
    for (spec, expected) in bad {
        let doc = json!({"apiVersion": "ferry.dev/v1alpha1", "kind": "TransferPolicy",
                         "metadata": {"name": format!("{}-bad", s.ns)}, "spec": spec});
        std::fs::write(&path, serde_json::to_string(&doc).expect("json")).expect("write");
        let out = s
            .env
            .kubectl(&["apply", "--dry-run=server", "-f", &path.display().to_string()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(expected),
            "{expected}: {stderr}"
        );
    }
}

/// A policy that selects namespaces by label: labelling the namespace (a namespace watch
/// event) is what lets its transfer run.
#[tokio::test]
async fn labelling_a_namespace_grants_what_a_selector_policy_grants() {
    let s = Scenario::new("tlabel", "us-east-1", "us-east-1").await;
    let label = format!("tenant-{}", s.ns);
    s.grant(
        "by-label",
        json!({"namespaces": {"names": null, "selector": {"matchLabels": {"ferry.dev/tenant": label}}}}),
    )
    .await;
    let _op = s.operator(&[ENFORCE]);
    s.apply(&s.manifest("l", json!({}))).await;
    let message = refused(&s, "l").await;
    assert!(message.contains("no TransferPolicy selects namespace"), "{message}");
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(s.client.clone());
    let patch = json!({"metadata": {"labels": {"ferry.dev/tenant": label}}});
    namespaces
        .patch(
            &s.ns,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .expect("label the namespace");
    s.wait_recovery("l", Phase::Succeeded, CONVERGE).await;
}

#[tokio::test]
async fn a_pull_runs_only_when_a_policy_grants_its_source_account_and_the_role_to_assume_there() {
    let s = Scenario::new("tenpull", "us-east-1", "us-east-1").await;
    let _op = s.pull_operator(&[ENFORCE]);
    // Every bucket and Region granted, and Account B as a destination: not yet the source account.
    s.grant("pull", json!({"destination": {"accounts": [s.b.id], "roleArns": null}}))
        .await;
    let before = aws_calls(&s);
    s.apply(&s.pull_manifest("p", json!({}))).await;
    let message = refused(&s, "p").await;
    assert!(
        message.contains(&format!("spec.source.accountId \"{}\" is not granted", s.a.id)),
        "{message}"
    );
    assert_eq!(aws_calls(&s), before, "a refused pull makes no AWS call");

    // The account, but not the role Ferry would assume there.
    s.grant("pull", json!({"source": {"accounts": [s.a.id]}})).await;
    let message = wait_for("the refusal to name the access role", CONVERGE, || async {
        let message = stalled(&s.api().get("p").await.map_err(|e| e.to_string())?).1;
        if message.contains("permitted: spec.source.access.roleArn") {
            Ok(message)
        } else {
            Err(message)
        }
    })
    .await;
    assert!(message.contains("spec.source.accessRoleArns"), "{message}");
    assert_eq!(aws_calls(&s), before);

    s.grant(
        "pull",
        json!({"source": {"accounts": [s.a.id], "accessRoleArns": [s.a.role_arn]}}),
    )
    .await;
    s.wait_recovery("p", Phase::Succeeded, CONVERGE).await;
    assert_eq!(s.destination_keys().await.len(), 2);
}
