//! Pull (`initiator: Destination`): Account B's operator owns the DataSync role and the task
//! and copies from a bucket of Account A, whose policy gets Ferry's read-only statements
//! (AssumeRole) or is published for Account A's administrator (External). Real `ferry run`,
//! real API server, the strict emulator: a role of another account reads the source only when
//! the source bucket's policy (and, for SSE-KMS objects, the source key's policy) and its own
//! identity policy both allow it.

use crate::common;

use std::time::Duration;

use common::aws::calls;
use common::scenario::Scenario;
use ferry::api::{CrossAccountTransfer, CrossAccountTransferStatus, Phase};
use serde_json::{Value, json};

const CONVERGE: Duration = Duration::from_secs(120);

fn status(obj: &CrossAccountTransfer) -> CrossAccountTransferStatus {
    obj.status.clone().expect("status")
}

fn condition(s: &CrossAccountTransferStatus, type_: &str) -> (String, String) {
    s.conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.message.clone()))
        .unwrap_or_else(|| panic!("no {type_} condition in {:?}", s.conditions))
}

fn parse(policy: &str) -> Value {
    serde_json::from_str(policy).expect("policy JSON")
}

/// Account A's own statements in the source bucket's policy.
fn foreign_policy(s: &Scenario) -> Value {
    json!({
        "Version": "2012-10-17",
        "Id": "owned-by-account-a",
        "Statement": [
            {"Sid": "DenyDelete", "Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
             "Action": "s3:DeleteBucket", "Resource": format!("arn:aws:s3:::{}", s.src)},
            {"Sid": "AuditRead", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::888888888888:role/audit"},
             "Action": ["s3:GetObject", "s3:ListBucket"],
             "Resource": [format!("arn:aws:s3:::{}", s.src), format!("arn:aws:s3:::{}/*", s.src)]}
        ]
    })
}

#[tokio::test]
async fn pull_with_assume_role_reads_the_source_and_gives_every_statement_back() {
    let s = Scenario::new("pull", "us-east-1", "us-west-2").await;
    let original = foreign_policy(&s);
    s.a.put_bucket_policy(&s.src_region, &s.src, &original.to_string())
        .await;
    // SSE-KMS objects under a customer managed key of Account A, whose policy Ferry edits.
    let key = s.a.kms_key(&s.src_region).await;
    let key_policy = s.a.key_policy(&key).await;
    s.a.encrypt_bucket(&s.src_region, &s.src, &key).await;
    s.a.put(&s.src_region, &s.src, &[("media/locked.bin", "sealed")]).await;
    assert_eq!(
        s.a.object_key_id(&s.src_region, &s.src, "media/locked.bin")
            .await
            .as_deref(),
        Some(key.as_str())
    );
    // Ferry leaves the destination's Object Ownership alone: its own role writes there. The
    // destination's own key needs only the role's policy: its key policy stays as it is.
    s.b.set_ownership(&s.dst_region, &s.dst, "ObjectWriter").await;
    let dst_key = s.b.kms_key(&s.dst_region).await;
    let dst_key_policy = s.b.key_policy(&dst_key).await;
    s.b.encrypt_bucket(&s.dst_region, &s.dst, &dst_key).await;

    let _op = s.pull_operator(&[]);
    s.apply(&s.pull_manifest("p", json!({}))).await;
    let obj = s.wait_phase("p", Phase::Succeeded, CONVERGE).await;
    let st = status(&obj);
    assert_eq!(
        s.destination_keys().await.into_keys().collect::<Vec<_>>(),
        ["archive/a.jpg", "archive/b/c.png", "archive/locked.bin"]
    );
    assert_eq!(condition(&st, "SourceReady").0, "True");
    assert!(
        st.destination.is_none(),
        "nothing recorded for the destination: Ferry owns it"
    );
    let source = st.source.clone().expect("status.source");
    assert_eq!(source.bucket.as_deref(), Some(s.src.as_str()));
    assert_eq!(source.key_arn.as_deref(), Some(key.as_str()));
    assert_eq!(source.required_bucket_policy, None);

    // The role, the locations and the task are Account B's; Account A got only statements.
    let role = st.role.clone().expect("role").arn;
    assert!(role.starts_with(&format!("arn:aws:iam::{}:role/", s.b.id)), "{role}");
    assert_eq!(s.a.roles().await, ["ferry-operator"]);
    assert!(s.a.tasks(&s.dst_region).await.is_empty());
    assert_eq!(s.b.tasks(&s.dst_region).await, [st.task_arn.clone().expect("task")]);
    assert_eq!(s.b.ownership(&s.dst_region, &s.dst).await, "ObjectWriter");
    assert_eq!(
        s.b.object_key_id(&s.dst_region, &s.dst, "archive/locked.bin")
            .await
            .as_deref(),
        Some(dst_key.as_str())
    );
    assert_eq!(s.b.key_policy(&dst_key).await, dst_key_policy);
    assert_eq!(
        st.encryption.and_then(|e| e.destination).and_then(|d| d.key_arn),
        Some(dst_key.clone())
    );

    // Account A's statements kept exactly; Ferry's read-only statement names B's role, and its
    // create-location statement Ferry's identity in B.
    let merged = parse(&s.a.bucket_policy(&s.src_region, &s.src).await.expect("policy"));
    let statements = merged["Statement"].as_array().expect("statements");
    assert_eq!(statements.len(), 4, "{merged}");
    assert_eq!(statements[..2], original["Statement"].as_array().expect("theirs")[..]);
    assert_eq!(merged["Id"], original["Id"]);
    assert_eq!(statements[2]["Sid"], "FerryDataSyncRead");
    assert_eq!(statements[2]["Principal"]["AWS"], json!([role]));
    let actions: Vec<&str> = statements[2]["Action"]
        .as_array()
        .expect("actions")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        actions
            .iter()
            .all(|a| a.starts_with("s3:Get") || a.starts_with("s3:List")),
        "{actions:?}"
    );
    assert_eq!(statements[3]["Sid"], "FerryCreateLocation");
    assert_eq!(statements[3]["Principal"]["AWS"], json!([s.b.role_arn]));
    let key_doc = parse(&s.a.key_policy(&key).await);
    let ours = key_doc["Statement"]
        .as_array()
        .expect("key statements")
        .iter()
        .find(|st| st["Sid"] == "FerryDataSyncKeyRead")
        .cloned()
        .expect("Ferry's key statement");
    assert_eq!(
        (ours["Principal"]["AWS"].clone(), ours["Action"].clone()),
        (json!([role]), json!(["kms:Decrypt"]))
    );

    // Deletion: Account A's policies exactly as they were, nothing of Ferry's left in B.
    s.delete_and_wait("p", CONVERGE).await;
    assert_eq!(
        parse(&s.a.bucket_policy(&s.src_region, &s.src).await.expect("policy")),
        original
    );
    assert_eq!(parse(&s.a.key_policy(&key).await), parse(&key_policy));
    assert_eq!(s.b.roles().await, ["ferry-bucket-admin"]);
    assert!(s.b.tasks(&s.dst_region).await.is_empty());
    assert!(s.b.locations(&s.src_region).await.is_empty());
    assert!(s.b.locations(&s.dst_region).await.is_empty());
    assert_eq!(s.b.ownership(&s.dst_region, &s.dst).await, "ObjectWriter");
    assert_eq!(s.destination_keys().await.len(), 3, "the copy stays");
}

#[tokio::test]
async fn pull_in_external_mode_waits_for_the_source_account_and_never_calls_it() {
    let s = Scenario::new("pullext", "us-east-1", "us-east-1").await;
    let theirs = foreign_policy(&s);
    s.a.put_bucket_policy(&s.src_region, &s.src, &theirs.to_string()).await;
    let _op = s.pull_operator(&[]);
    let manifest = s.pull_manifest(
        "x",
        json!({"source": {"access": {"mode": "External", "roleArn": null}}}),
    );
    s.apply(&manifest).await;
    let obj = s.wait_phase("x", Phase::AwaitingSource, CONVERGE).await;
    let st = status(&obj);
    let (ready, message) = condition(&st, "SourceReady");
    assert_eq!(ready, "False");
    assert!(message.contains(&s.a.id) && message.contains(&s.src), "{message}");
    assert!(
        !message.contains("Object Ownership"),
        "a source needs no ownership change: {message}"
    );
    assert_eq!(condition(&st, "Stalled").0, "False", "waiting is not a failure");
    let required = st
        .source
        .clone()
        .and_then(|d| d.required_bucket_policy)
        .expect("published");
    assert_eq!(parse(&required)["Statement"][0]["Sid"], "FerryDataSyncRead");

    // Account A's administrator merges what Ferry published with `ferry policy`.
    let merged = common::ferry_policy_merged(s.env, &manifest, &theirs);
    let doc = parse(&merged);
    assert_eq!(doc["Statement"].as_array().map(Vec::len), Some(4));
    assert_eq!(
        doc["Statement"].as_array().expect("merged")[..2],
        theirs["Statement"].as_array().expect("theirs")[..]
    );
    s.a.put_bucket_policy(&s.src_region, &s.src, &merged).await;

    let obj = s.wait_phase("x", Phase::Succeeded, CONVERGE).await;
    assert_eq!(condition(&status(&obj), "SourceReady").0, "True");
    assert_eq!(s.destination_keys().await.len(), 2);
    // Ferry made no call on Account A's bucket and assumed no role.
    let on_bucket = calls(s.env, &format!("account={}&bucket={}", s.b.id, s.src));
    assert!(on_bucket.is_empty(), "Ferry called Account A's bucket: {on_bucket:?}");
    let assumed = calls(s.env, &format!("account={}&operation=AssumeRole", s.b.id));
    assert!(assumed.is_empty(), "Ferry assumed a role: {assumed:?}");

    // Deleting leaves Account A's bucket to its administrator.
    s.delete_and_wait("x", CONVERGE).await;
    assert_eq!(
        parse(&s.a.bucket_policy(&s.src_region, &s.src).await.expect("policy")),
        doc
    );
    assert_eq!(s.b.roles().await, ["ferry-bucket-admin"]);
}

#[tokio::test]
async fn a_pull_into_an_account_ferry_does_not_run_in_is_refused_before_any_aws_change() {
    let s = Scenario::new("pullwho", "us-east-1", "us-east-1").await;
    // The operator runs as Account A, but the pull names Account B as the one running the copy.
    let _op = s.operator(&[]);
    s.apply(&s.pull_manifest("w", json!({}))).await;
    let obj = s.wait_phase("w", Phase::Failed, CONVERGE).await;
    let st = status(&obj);
    let (stalled, message) = condition(&st, "Stalled");
    assert_eq!(stalled, "True");
    assert!(
        message.contains("spec.destination.accountId") && message.contains(&s.a.id),
        "{message}"
    );
    assert_eq!(s.a.roles().await, ["ferry-operator"]);
    assert_eq!(s.a.bucket_policy(&s.src_region, &s.src).await, None);
}

#[tokio::test]
async fn a_pull_puts_its_source_statements_back_and_gives_a_source_it_left_back() {
    let s = Scenario::new("pulldrift", "us-east-1", "us-east-1").await;
    let second = format!("{}-2", s.src);
    s.a.bucket(&s.src_region, &second).await;
    s.a.put(&s.src_region, &second, &[("media/z.txt", "zz")]).await;
    let theirs = foreign_policy(&s);
    s.a.put_bucket_policy(&s.src_region, &s.src, &theirs.to_string()).await;
    let _op = s.pull_operator(&[("FERRY_RESYNC_INTERVAL", "2s")]);
    s.apply(&s.pull_manifest("d", json!({}))).await;
    s.wait_phase("d", Phase::Succeeded, CONVERGE).await;
    let granted = s.a.bucket_policy(&s.src_region, &s.src).await.expect("policy");

    // Someone puts Account A's own policy back over Ferry's statements: the next check restores
    // them, A's statements untouched.
    s.a.put_bucket_policy(&s.src_region, &s.src, &theirs.to_string()).await;
    let (a, region, src) = (s.a.clone(), s.src_region.clone(), s.src.clone());
    common::wait_for("Ferry to put its source statements back", CONVERGE, || {
        let (a, region, src, granted) = (a.clone(), region.clone(), src.clone(), granted.clone());
        async move {
            let now = a.bucket_policy(&region, &src).await.unwrap_or_default();
            if parse(&now) == parse(&granted) {
                Ok(())
            } else {
                Err(now)
            }
        }
    })
    .await;

    // Moving to another source bucket gives the first one back exactly as Account A had it.
    s.patch_spec("d", json!({"source": {"bucket": second}})).await;
    let obj = s.wait_phase("d", Phase::Succeeded, CONVERGE).await;
    assert_eq!(
        parse(&s.a.bucket_policy(&s.src_region, &s.src).await.expect("policy")),
        theirs
    );
    let moved = parse(&s.a.bucket_policy(&s.src_region, &second).await.expect("policy"));
    assert_eq!(moved["Statement"][0]["Sid"], "FerryDataSyncRead");
    assert_eq!(status(&obj).source.and_then(|d| d.bucket), Some(second.clone()));
    assert!(s.destination_keys().await.contains_key("archive/z.txt"));
}

/// The pull's operator is aborted right after `operation` (before it records the result) and
/// restarted: exactly one of everything, in the right account.
async fn pull_crash_after(operation: &str) {
    let s = Scenario::new("pullcrash", "us-east-1", "us-west-2").await;
    s.apply(&s.pull_manifest("c", json!({}))).await;
    let _restarted = s.crash_and_restart(&s.b.creds, operation);
    let obj = s.wait_phase("c", Phase::Succeeded, CONVERGE).await;
    let st = status(&obj);
    let roles: Vec<String> =
        s.b.roles()
            .await
            .into_iter()
            .filter(|r| r != "ferry-bucket-admin")
            .collect();
    assert_eq!(roles.len(), 1, "exactly one DataSync role: {roles:?}");
    assert_eq!(
        s.a.roles().await,
        ["ferry-operator"],
        "nothing of Ferry's in the source account"
    );
    assert_eq!(
        s.b.locations(&s.src_region).await,
        [st.source_location_arn.clone().expect("source")]
    );
    assert_eq!(
        s.b.locations(&s.dst_region).await,
        [st.destination_location_arn.clone().expect("destination")]
    );
    let task = st.task_arn.clone().expect("task");
    assert_eq!(s.b.tasks(&s.dst_region).await, std::slice::from_ref(&task));
    assert_eq!(s.b.executions(&s.dst_region, &task).await, 1, "exactly one execution");
    let policy = parse(&s.a.bucket_policy(&s.src_region, &s.src).await.expect("policy"));
    assert_eq!(
        policy["Statement"].as_array().map(Vec::len),
        Some(2),
        "Ferry's two statements, once: {policy}"
    );
    assert_eq!(s.destination_keys().await.len(), 2);
}

crash_tests! {
    pull_crash_after:
    a_pull_crashed_after_create_role => "CreateRole",
    a_pull_crashed_after_put_bucket_policy => "PutBucketPolicy",
    a_pull_crashed_after_create_destination_location => "CreateLocationS3#1",
    a_pull_crashed_after_create_source_location => "CreateLocationS3#2",
    a_pull_crashed_after_create_task => "CreateTask",
    a_pull_crashed_after_start_execution => "StartTaskExecution",
}

#[tokio::test]
async fn pulls_sharing_a_source_bucket_share_ferry_s_statements_and_the_last_one_gives_it_back() {
    let s = Scenario::new("pullshare", "us-east-1", "us-east-1").await;
    let theirs = foreign_policy(&s);
    s.a.put_bucket_policy(&s.src_region, &s.src, &theirs.to_string()).await;
    let _op = s.pull_operator(&[]);
    for name in ["one", "two"] {
        let spec = json!({"destination": {"prefix": format!("{name}/")}});
        s.apply(&s.pull_manifest(name, spec)).await;
    }
    for name in ["one", "two"] {
        s.wait_phase(name, Phase::Succeeded, CONVERGE).await;
    }
    let policy = parse(&s.a.bucket_policy(&s.src_region, &s.src).await.expect("policy"));
    let statements = policy["Statement"].as_array().expect("statements");
    assert_eq!(statements.len(), 4, "one read statement for both: {policy}");
    // The namespace's transfers share one DataSync role: it is named once.
    assert_eq!(
        statements[2]["Principal"]["AWS"].as_array().map(Vec::len),
        Some(1),
        "{policy}"
    );

    // The first leaves: the second still reads the source (another run proves it).
    s.delete_and_wait("one", CONVERGE).await;
    assert_eq!(
        parse(&s.a.bucket_policy(&s.src_region, &s.src).await.expect("policy")),
        policy
    );
    s.a.put(&s.src_region, &s.src, &[("media/later.txt", "later")]).await;
    s.annotate("two", "ferry.dev/run", "again").await;
    common::wait_for("the second pull to copy the new object", CONVERGE, || async {
        let keys = s.destination_keys().await;
        if keys.contains_key("two/later.txt") {
            Ok(())
        } else {
            Err(format!("{keys:?}"))
        }
    })
    .await;
    // The last one out gives the bucket back exactly as Account A had it.
    s.delete_and_wait("two", CONVERGE).await;
    assert_eq!(
        parse(&s.a.bucket_policy(&s.src_region, &s.src).await.expect("policy")),
        theirs
    );
}

#[tokio::test]
async fn one_operator_runs_a_pull_as_a_role_of_the_destination_account() {
    let s = Scenario::new("pullrole", "us-east-1", "us-east-1").await;
    // The operator's own identity is Account A's; the pull runs as Account B's role.
    let _op = s.operator(&[]);
    s.apply(&s.pull_manifest("r", json!({"destination": {"roleArn": s.b.role_arn}})))
        .await;
    let obj = s.wait_phase("r", Phase::Succeeded, CONVERGE).await;
    let st = status(&obj);
    let role = st.role.clone().expect("role").arn;
    assert!(role.starts_with(&format!("arn:aws:iam::{}:role/", s.b.id)), "{role}");
    assert_eq!(s.b.tasks(&s.dst_region).await, [st.task_arn.clone().expect("task")]);
    assert!(s.a.tasks(&s.dst_region).await.is_empty());
    assert_eq!(s.destination_keys().await.len(), 2);
    // Ferry's create-location statement names the role it ran as, mapped from its session.
    let policy = parse(&s.a.bucket_policy(&s.src_region, &s.src).await.expect("policy"));
    assert_eq!(policy["Statement"][1]["Principal"]["AWS"], json!([s.b.role_arn]));
    s.delete_and_wait("r", CONVERGE).await;
    assert_eq!(s.a.bucket_policy(&s.src_region, &s.src).await, None);
    assert_eq!(s.b.roles().await, ["ferry-bucket-admin"]);
}

#[tokio::test]
async fn a_pull_never_reads_a_same_named_bucket_of_a_third_account() {
    let s = Scenario::new("pullsnipe", "us-east-1", "us-east-1").await;
    let _op = s.pull_operator(&[]);
    s.apply(&s.pull_manifest("t", json!({"run": "Manual"}))).await;
    let obj = s.wait_phase("t", Phase::Ready, CONVERGE).await;
    let st = status(&obj);
    let (task, role) = (st.task_arn.expect("task"), st.role.expect("role").arn);

    // Account A's bucket goes; a stranger (account C) creates one of the same name, puts an
    // object in the folder the pull copies and opens the bucket to the DataSync role.
    let a3 = s.a.s3(&s.src_region);
    for (key, _) in common::scenario::SOURCE_OBJECTS {
        a3.delete_object()
            .bucket(&s.src)
            .key(*key)
            .send()
            .await
            .expect("delete object");
    }
    a3.delete_bucket_policy()
        .bucket(&s.src)
        .send()
        .await
        .expect("delete policy");
    a3.delete_bucket().bucket(&s.src).send().await.expect("delete bucket");
    let c = common::aws::stranger_takes(s.env, &s.src_region, &s.src, &role).await;
    c.put(&s.src_region, &s.src, &[("media/planted.txt", "not Account A's")])
        .await;

    // The task runs (as a schedule would, without Ferry): the role's policy keeps DataSync out
    // of a source bucket that the source account does not own.
    common::aws::run_task_refused(&s.b.datasync(&s.dst_region), &task, CONVERGE).await;
    assert!(
        !s.destination_keys().await.contains_key("archive/planted.txt"),
        "the stranger's object was copied"
    );
}
