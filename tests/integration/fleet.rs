//! Shared destination buckets and AWS economy: transfers of two namespaces (and two operators)
//! into one bucket keep each other's access, the last one out puts the bucket back as it was, a
//! fleet into one bucket settles without writing again, and a poll is one AWS call.

use std::time::Duration;

use ferry::api::{CrossAccountTransfer, Phase};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};

use crate::common::aws::calls;
use crate::common::scenario::Scenario;
use crate::common::wait_for;

const CONVERGE: Duration = Duration::from_secs(120);

fn parse(policy: &str) -> Value {
    serde_json::from_str(policy).expect("policy JSON")
}

fn roles_in(policy: &Value) -> Vec<String> {
    policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["Sid"] == "FerryDataSyncAccess")
        .and_then(|s| s["Principal"]["AWS"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

async fn phase_of(api: &Api<CrossAccountTransfer>, name: &str) -> Result<Phase, String> {
    let obj = api.get(name).await.map_err(|e| e.to_string())?;
    obj.status.and_then(|s| s.phase).ok_or_else(|| "no phase yet".into())
}

#[tokio::test]
async fn two_namespaces_share_one_bucket_and_the_last_one_out_restores_it() {
    let s = Scenario::new("share", "us-east-1", "us-east-1").await;
    let own = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "AuditRead", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::888888888888:role/audit"},
         "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{}/reports/*", s.dst)}]});
    s.b.put_bucket_policy(&s.dst_region, &s.dst, &own.to_string()).await;
    s.b.set_ownership(&s.dst_region, &s.dst, "ObjectWriter").await;

    // A second namespace with its own operator: two operators write the one bucket's policy.
    let other_ns = s.env.namespace(&s.client, "share2").await;
    let _op1 = s.operator(&[]);
    let _op2 = s.env.operator(&other_ns, &s.a.creds, &[]);
    let api2: Api<CrossAccountTransfer> = Api::namespaced(s.client.clone(), &other_ns);
    let mut second = s.manifest("two", json!({"destination": {"prefix": "two/"}}));
    second["metadata"]["namespace"] = json!(other_ns);
    s.apply(&s.manifest("one", json!({"destination": {"prefix": "one/"}})))
        .await;
    api2.patch("two", &PatchParams::apply("kubectl").force(), &Patch::Apply(&second))
        .await
        .expect("apply the second transfer");
    s.wait_phase("one", Phase::Succeeded, CONVERGE).await;
    wait_for("the second transfer to succeed", CONVERGE, || {
        let api2 = api2.clone();
        async move {
            match phase_of(&api2, "two").await? {
                Phase::Succeeded => Ok(()),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await;

    let policy = wait_for("both roles in Ferry's one statement", CONVERGE, || async {
        let p = parse(&s.b.bucket_policy(&s.dst_region, &s.dst).await.ok_or("no policy")?);
        if roles_in(&p).len() == 2 {
            Ok(p)
        } else {
            Err(format!("{p}"))
        }
    })
    .await;
    assert_eq!(
        policy["Statement"][0], own["Statement"][0],
        "Account B's statement is kept exactly"
    );
    assert_eq!(policy["Statement"].as_array().map(Vec::len), Some(3));

    // The first leaves: the second keeps its access, ACLs stay disabled.
    s.delete_and_wait("one", CONVERGE).await;
    let after_one = parse(&s.b.bucket_policy(&s.dst_region, &s.dst).await.expect("policy"));
    let left = roles_in(&after_one);
    assert_eq!(left.len(), 1, "{after_one}");
    let theirs = ferry::naming::RolePool::new(&s.a.id, &other_ns, &[&s.dst_region, &s.src_region]).role_name(0);
    assert!(
        left[0].ends_with(&format!("role/{theirs}")),
        "the other namespace's shared role: {left:?}"
    );
    assert_eq!(s.b.ownership(&s.dst_region, &s.dst).await, "BucketOwnerEnforced");

    // The last one out puts the bucket back as the first one found it.
    api2.delete("two", &DeleteParams::default()).await.expect("delete");
    wait_for("the second transfer to be gone", CONVERGE, || {
        let api2 = api2.clone();
        async move {
            match api2.get_opt("two").await.map_err(|e| e.to_string())? {
                None => Ok(()),
                Some(_) => Err("still there".to_string()),
            }
        }
    })
    .await;
    let back = parse(&s.b.bucket_policy(&s.dst_region, &s.dst).await.expect("policy"));
    assert_eq!(back, own);
    assert_eq!(s.b.ownership(&s.dst_region, &s.dst).await, "ObjectWriter");
}

#[tokio::test]
async fn thirty_transfers_into_one_bucket_settle_without_writing_again() {
    let s = Scenario::new("thirty", "us-east-1", "us-east-1").await;
    let _op = s.operator(&[("FERRY_RESYNC_INTERVAL", "3s")]);
    for i in 0..30 {
        s.apply(&s.manifest(&format!("t{i}"), json!({"destination": {"prefix": format!("t{i}/")}})))
            .await;
    }
    wait_for("30 transfers to succeed", Duration::from_secs(300), || async {
        let list = s.api().list(&Default::default()).await.map_err(|e| e.to_string())?;
        let done = list
            .items
            .iter()
            .filter(|t| t.status.as_ref().and_then(|st| st.phase) == Some(Phase::Succeeded))
            .count();
        if done == 30 { Ok(()) } else { Err(format!("{done}/30")) }
    })
    .await;
    let policy = parse(&s.b.bucket_policy(&s.dst_region, &s.dst).await.expect("policy"));
    // The 30 transfers share a few roles (each its own inline policy): the statement names
    // each shared role once, and every transfer's role is among them.
    let roles = roles_in(&policy);
    let list = s.api().list(&Default::default()).await.expect("list");
    let used: std::collections::BTreeSet<String> = list
        .items
        .iter()
        .filter_map(|t| t.status.as_ref()?.role.as_ref().map(|r| r.arn.clone()))
        .collect();
    assert_eq!(
        roles.iter().cloned().collect::<std::collections::BTreeSet<_>>(),
        used,
        "{policy}"
    );
    assert!(roles.len() <= 6, "30 transfers, {} roles: {roles:?}", roles.len());

    // Drift checks every 3 s now read, but never write: the policy stays as it is.
    let writes = |op: &str| calls(s.env, &format!("bucket={}&operation={op}", s.dst)).len();
    let before = (writes("PutBucketPolicy"), writes("PutBucketOwnershipControls"));
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        (writes("PutBucketPolicy"), writes("PutBucketOwnershipControls")),
        before,
        "no write once settled"
    );
    let reads = calls(s.env, &format!("bucket={}&operation=GetBucketPolicy", s.dst)).len();
    assert!(reads > 30, "the drift checks did run ({reads} reads)");
}

#[tokio::test]
async fn a_poll_of_a_running_execution_is_one_aws_call() {
    let s = Scenario::new("poll", "us-east-1", "us-east-1").await;
    // Slow executions (the emulator's phases are per server: make this test's long by a
    // schedule-free long-running execution: many polls happen while it runs).
    let _op = s.operator(&[("FERRY_POLL_INTERVAL", "300ms")]);
    s.apply(&s.manifest("p", json!({}))).await;
    let obj = wait_for("the execution to run", CONVERGE, || async {
        let obj = s.api().get("p").await.map_err(|e| e.to_string())?;
        let running = obj
            .status
            .as_ref()
            .and_then(|st| st.execution.as_ref())
            .is_some_and(|e| e.is_running());
        if running {
            Ok(obj)
        } else {
            Err("not running yet".to_string())
        }
    })
    .await;
    let task = obj.status.and_then(|st| st.task_arn).expect("task");
    s.wait_phase("p", Phase::Succeeded, CONVERGE).await;
    // Between the start and the end, the operator's calls are polls only.
    let all = calls(s.env, &format!("account={}", s.a.id));
    let start = all
        .iter()
        .position(|c| c["operation"] == "StartTaskExecution")
        .expect("a start");
    let end = all
        .iter()
        .rposition(|c| c["operation"] == "DescribeTaskExecution")
        .expect("a poll");
    let between: Vec<&str> = all[start + 1..=end]
        .iter()
        .filter_map(|c| c["operation"].as_str())
        .collect();
    assert!(!between.is_empty());
    assert!(
        between.iter().all(|op| *op == "DescribeTaskExecution"),
        "a poll is one DescribeTaskExecution and nothing else: {between:?} (task {task})"
    );
}
