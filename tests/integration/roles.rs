//! Shared DataSync roles against the real `ferry run` and the emulator, which enforces IAM's
//! 10,240 characters of inline policies per role and refuses to delete a role that still has
//! inline policies, as IAM does: a namespace's transfers share a row of roles, each transfer
//! its own inline policy on one of them; a full role sends the next transfer to a new one; a
//! transfer's own role from before roles were shared moves to the shared role between runs.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::aws::calls;
use common::scenario::Scenario;
use common::wait_for;
use ferry::api::{CrossAccountTransfer, Phase};
use serde_json::{Value, json};

const CONVERGE: Duration = Duration::from_secs(120);

/// The principals of Ferry's access statement in a bucket policy.
fn principals(policy: Option<String>) -> Vec<String> {
    let policy: Value = policy.map_or(Value::Null, |p| serde_json::from_str(&p).expect("policy JSON"));
    policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["Sid"] == ferry::policy::ACCESS_SID)
        .and_then(|s| s["Principal"]["AWS"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn role_arn(obj: &CrossAccountTransfer) -> String {
    obj.status
        .as_ref()
        .and_then(|s| s.role.as_ref())
        .map(|r| r.arn.clone())
        .expect("a role in the status")
}

/// The inline policies of a role, by name; `None` when the role does not exist.
async fn inline_policies(s: &Scenario, role: &str) -> Option<BTreeSet<String>> {
    match s.a.iam().list_role_policies().role_name(role).send().await {
        Ok(out) => Some(out.policy_names.into_iter().collect()),
        Err(e) => {
            let text = format!("{e:?}");
            assert!(text.contains("NoSuchEntity"), "{text}");
            None
        }
    }
}

#[tokio::test]
async fn a_namespaces_transfers_share_one_role_each_with_its_own_policy() {
    let s = Scenario::new("pool", "us-east-1", "us-east-1").await;
    let _op = s.operator(&[]);
    let names = ["p1", "p2", "p3"];
    for name in names {
        s.apply(&s.manifest(name, json!({"destination": {"prefix": format!("{name}/")}})))
            .await;
    }
    let mut objs = Vec::new();
    for name in names {
        objs.push(s.wait_phase(name, Phase::Succeeded, CONVERGE).await);
    }
    let shared = s.pool().role_name(0);
    let arns: BTreeSet<String> = objs.iter().map(role_arn).collect();
    assert_eq!(
        arns.iter().cloned().collect::<Vec<_>>(),
        vec![format!("arn:aws:iam::{}:role/{shared}", s.a.id)],
        "one role for the three"
    );
    let members: BTreeSet<String> = objs.iter().map(Scenario::member_policy).collect();
    assert_eq!(inline_policies(&s, &shared).await, Some(members.clone()));
    // Each transfer's policy grants its own transfer's buckets.
    for obj in &objs {
        let out =
            s.a.iam()
                .get_role_policy()
                .role_name(&shared)
                .policy_name(Scenario::member_policy(obj))
                .send()
                .await
                .expect("the transfer's policy");
        let doc = percent_encoding::percent_decode_str(out.policy_document())
            .decode_utf8()
            .expect("utf-8")
            .to_string();
        assert!(doc.contains(&format!("arn:aws:s3:::{}", s.dst)), "{doc}");
    }
    assert_eq!(
        s.a.roles()
            .await
            .iter()
            .filter(|r| r.starts_with(&format!("ferry-{}", s.ns)))
            .count(),
        1,
        "no role of a transfer's own"
    );
    let arn = arns.into_iter().next().expect("the role");
    assert_eq!(
        principals(s.b.bucket_policy(&s.dst_region, &s.dst).await),
        vec![arn.clone()]
    );

    // One leaves: its policy goes, the role and the bucket's access stay for the others.
    s.delete_and_wait("p1", CONVERGE).await;
    let left: BTreeSet<String> = objs[1..].iter().map(Scenario::member_policy).collect();
    assert_eq!(inline_policies(&s, &shared).await, Some(left));
    assert_eq!(
        principals(s.b.bucket_policy(&s.dst_region, &s.dst).await),
        vec![arn.clone()]
    );
    let events = s.events("p1").await;
    assert!(events.iter().any(|e| e.1 == "RoleLeft"), "{events:?}");

    // The last one out deletes the role and takes it out of the bucket policy.
    s.delete_and_wait("p2", CONVERGE).await;
    s.delete_and_wait("p3", CONVERGE).await;
    assert_eq!(inline_policies(&s, &shared).await, None, "the role is deleted");
    assert!(principals(s.b.bucket_policy(&s.dst_region, &s.dst).await).is_empty());
}

#[tokio::test]
async fn a_full_shared_role_sends_the_next_transfer_to_the_next_role() {
    let s = Scenario::new("full", "us-east-1", "us-east-1").await;
    // The pool's first role is there and nearly full: someone's 9,700-character policy on it.
    let first = s.pool().role_name(0);
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "datasync.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let tags: Vec<aws_sdk_iam::types::Tag> = s
        .pool()
        .tags()
        .into_iter()
        .map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build().expect("tag"))
        .collect();
    s.a.iam()
        .create_role()
        .role_name(&first)
        .assume_role_policy_document(trust.to_string())
        .set_tags(Some(tags))
        .send()
        .await
        .expect("create the first role");
    let resources: Vec<String> = (0..320).map(|i| format!("arn:aws:s3:::filler-{i:05}/*")).collect();
    let filler = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": resources}]})
    .to_string();
    assert!(filler.len() > 9_000 && filler.len() < 10_240, "{}", filler.len());
    s.a.iam()
        .put_role_policy()
        .role_name(&first)
        .policy_name("filler")
        .policy_document(&filler)
        .send()
        .await
        .expect("the filler policy");
    let puts = || calls(s.env, &format!("account={}&operation=PutRolePolicy", s.a.id)).len();
    let before = puts();

    let _op = s.operator(&[]);
    s.apply(&s.manifest("f1", json!({}))).await;
    let one = s.wait_phase("f1", Phase::Succeeded, CONVERGE).await;
    let second = s.pool().role_name(1);
    assert!(
        role_arn(&one).ends_with(&format!("role/{second}")),
        "{}",
        role_arn(&one)
    );
    assert_eq!(
        inline_policies(&s, &first).await,
        Some(BTreeSet::from(["filler".to_string()]))
    );
    // IAM refused the first role once; the operator remembers it is full.
    assert_eq!(puts(), before + 2, "one refused PutRolePolicy, one on the next role");
    s.apply(&s.manifest("f2", json!({"destination": {"prefix": "two/"}})))
        .await;
    let two = s.wait_phase("f2", Phase::Succeeded, CONVERGE).await;
    assert_eq!(role_arn(&two), role_arn(&one));
    assert_eq!(puts(), before + 3, "the second went straight to the role with room");
    assert_eq!(
        principals(s.b.bucket_policy(&s.dst_region, &s.dst).await),
        vec![role_arn(&one)]
    );

    // Deleting both deletes the role they made, never the one with someone else's policy.
    s.delete_and_wait("f1", CONVERGE).await;
    s.delete_and_wait("f2", CONVERGE).await;
    assert_eq!(inline_policies(&s, &second).await, None);
    assert_eq!(
        inline_policies(&s, &first).await,
        Some(BTreeSet::from(["filler".to_string()]))
    );
}

#[tokio::test]
async fn a_transfers_own_role_moves_to_the_shared_role_in_place_between_runs() {
    let s = Scenario::new("move", "us-east-1", "us-east-1").await;
    let _op = s.operator(&[]);
    // The state an earlier Ferry leaves: the transfer's own role at the default name.
    let own = format!("ferry-{}-m", s.ns);
    s.apply(&s.manifest("m", json!({"dataSyncRole": {"name": own}}))).await;
    let before = s.wait_phase("m", Phase::Succeeded, CONVERGE).await;
    assert!(role_arn(&before).ends_with(&format!("role/{own}")));
    let st = before.status.clone().unwrap_or_default();

    // Without dataSyncRole the transfer moves to the namespace's shared role: its locations
    // are pointed at it in place, the task stays, and its own role is deleted.
    s.patch_spec("m", json!({"dataSyncRole": null})).await;
    let shared = format!("arn:aws:iam::{}:role/{}", s.a.id, s.pool().role_name(0));
    let after = wait_for("the transfer to use the shared role", CONVERGE, || async {
        let obj = s.api().get("m").await.map_err(|e| e.to_string())?;
        let st = obj.status.clone().unwrap_or_default();
        let on_shared = st.role.as_ref().is_some_and(|r| r.arn == shared);
        if on_shared && st.retired.is_empty() && st.phase == Some(Phase::Succeeded) {
            Ok(obj)
        } else {
            Err(format!(
                "role {:?}, retired {:?}, phase {:?}",
                st.role, st.retired, st.phase
            ))
        }
    })
    .await;
    let now = after.status.clone().unwrap_or_default();
    assert_eq!(now.task_arn, st.task_arn, "the task stays");
    assert_eq!(now.source_location_arn, st.source_location_arn);
    assert_eq!(now.destination_location_arn, st.destination_location_arn);
    for location in [&now.source_location_arn, &now.destination_location_arn] {
        let out =
            s.a.datasync(&s.dst_region)
                .describe_location_s3()
                .location_arn(location.as_deref().expect("location"))
                .send()
                .await
                .expect("describe the location");
        assert_eq!(
            out.s3_config().map(|c| c.bucket_access_role_arn()),
            Some(shared.as_str())
        );
    }
    assert_eq!(inline_policies(&s, &own).await, None, "its own role is deleted");
    assert_eq!(
        principals(s.b.bucket_policy(&s.dst_region, &s.dst).await),
        vec![shared.clone()]
    );
    let events = s.events("m").await;
    assert!(events.iter().any(|e| e.1 == "LocationRoleUpdated"), "{events:?}");

    // And a run with the shared role copies.
    s.annotate("m", "ferry.dev/run", "after-move").await;
    let ran = wait_for("the run after the move", CONVERGE, || async {
        let obj = s.api().get("m").await.map_err(|e| e.to_string())?;
        let st = obj.status.clone().unwrap_or_default();
        let token = st.last_run.as_ref().and_then(|r| r.token.clone());
        if token.as_deref() == Some("after-move") && st.phase == Some(Phase::Succeeded) {
            Ok(st)
        } else {
            Err(format!("token {token:?}, phase {:?}", st.phase))
        }
    })
    .await;
    assert!(ran.history.len() >= 2, "{:?}", ran.history);
    let execution = ran.execution.expect("execution");
    assert_eq!(execution.status, "SUCCESS");
    assert!(
        execution.arn.starts_with(st.task_arn.as_deref().expect("task")),
        "on the same task"
    );
}
