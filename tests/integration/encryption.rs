//! Encrypted buckets and the resource-account guard, against the emulator's KMS and S3 rules:
//! SSE-KMS sources and destinations in AssumeRole and External mode (the role granted the
//! keys, Account B's key policy merged by Sid and restored exactly), SSE-C refused, and a
//! same-named bucket of a third account never written.

use crate::common;

use std::time::Duration;

use common::aws::{account, random_account_id};
use common::scenario::{SOURCE_OBJECTS, Scenario};
use ferry::api::{CrossAccountTransfer, Phase};
use serde_json::{Value, json};

const CONVERGE: Duration = Duration::from_secs(120);

fn status(obj: &CrossAccountTransfer) -> ferry::api::CrossAccountTransferStatus {
    obj.status.clone().expect("status")
}

fn parse(policy: &str) -> Value {
    serde_json::from_str(policy).expect("policy JSON")
}

/// A statement of Account B's own, which Ferry must keep exactly.
fn foreign_statement(account: &str) -> Value {
    json!({"Sid": "AuditorsMayDescribe", "Effect": "Allow",
           "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
           "Action": ["kms:DescribeKey", "kms:GetKeyPolicy"], "Resource": "*"})
}

/// The key's policy with `extra` appended to its statements.
fn with_statement(policy: &str, extra: Value) -> String {
    let mut doc = parse(policy);
    doc["Statement"].as_array_mut().expect("statements").push(extra);
    doc.to_string()
}

fn statement<'a>(policy: &'a Value, sid: &str) -> Option<&'a Value> {
    policy["Statement"].as_array()?.iter().find(|s| s["Sid"] == sid)
}

#[tokio::test]
async fn sse_kms_source_and_destination_in_assume_role_mode() {
    let s = Scenario::new("kms", "us-east-1", "us-east-1").await;
    // Account A's source objects under its own key; Account B's bucket under B's key, whose
    // policy has a statement of B's own.
    let source_key = s.a.kms_key(&s.src_region).await;
    s.a.encrypt_bucket(&s.src_region, &s.src, &source_key).await;
    s.a.put(&s.src_region, &s.src, SOURCE_OBJECTS).await;
    let destination_key = s.b.kms_key(&s.dst_region).await;
    let original = with_statement(&s.b.key_policy(&destination_key).await, foreign_statement(&s.b.id));
    s.b.put_key_policy(&destination_key, &original).await;
    s.b.encrypt_bucket(&s.dst_region, &s.dst, &destination_key).await;

    let _op = s.operator(&[]);
    s.apply(&s.manifest("k", json!({}))).await;
    let obj = s.wait_phase("k", Phase::Succeeded, CONVERGE).await;
    let st = status(&obj);
    assert_eq!(s.destination_keys().await.len(), 2);
    // The copies are encrypted with Account B's key.
    assert_eq!(
        s.b.object_key_id(&s.dst_region, &s.dst, "archive/a.jpg")
            .await
            .as_deref(),
        Some(destination_key.as_str())
    );
    let enc = st.encryption.clone().expect("encryption in the status");
    assert_eq!(enc.source.and_then(|e| e.key_arn).as_deref(), Some(source_key.as_str()));
    assert_eq!(
        enc.destination.and_then(|e| e.key_arn).as_deref(),
        Some(destination_key.as_str())
    );
    let dest = st.destination.clone().expect("destination");
    assert_eq!(dest.key_arn.as_deref(), Some(destination_key.as_str()));

    // The key policy: Ferry's statement names the DataSync role; Account B's statements are
    // kept exactly, in place.
    let role = st.role.clone().expect("role").arn;
    let merged = parse(&s.b.key_policy(&destination_key).await);
    let ours = statement(&merged, "FerryDataSyncKeyUse").expect("Ferry's key statement");
    assert_eq!(ours["Principal"]["AWS"], json!([role]));
    let before = parse(&original);
    for kept in before["Statement"].as_array().expect("statements") {
        let sid = kept["Sid"].as_str().expect("sid");
        assert_eq!(statement(&merged, sid), Some(kept), "statement {sid} changed");
    }
    // The role may use both keys, by ARN, and only buckets of the right accounts.
    let inline: Value = {
        let name = role.rsplit('/').next().expect("role name");
        let out =
            s.a.iam()
                .get_role_policy()
                .role_name(name)
                .policy_name(Scenario::member_policy(&obj))
                .send()
                .await;
        let doc = out.expect("inline policy").policy_document;
        parse(&percent_decode(&doc))
    };
    assert_eq!(
        statement(&inline, "SourceKey").expect("SourceKey")["Resource"],
        json!([source_key])
    );
    assert_eq!(
        statement(&inline, "DestinationKey").expect("DestinationKey")["Resource"],
        json!(destination_key)
    );
    assert_eq!(
        statement(&inline, "DestinationObjects").expect("DestinationObjects")["Condition"],
        json!({"StringEquals": {"s3:ResourceAccount": s.b.id}})
    );
    let reasons: Vec<String> = s.events("k").await.into_iter().map(|e| e.1).collect();
    assert!(reasons.iter().any(|r| r == "KeyPolicyUpdated"), "{reasons:?}");

    // Deleting the transfer gives the key its policy back exactly.
    s.delete_and_wait("k", CONVERGE).await;
    assert_eq!(parse(&s.b.key_policy(&destination_key).await), before);
}

#[tokio::test]
async fn sse_kms_destination_in_external_mode_publishes_the_key_statement() {
    let s = Scenario::new("kmsext", "us-east-1", "us-east-1").await;
    let key = s.b.kms_key(&s.dst_region).await;
    s.b.encrypt_bucket(&s.dst_region, &s.dst, &key).await;
    let _op = s.operator(&[]);
    s.apply(&s.manifest(
        "x",
        json!({"destination": {"kmsKeyArn": key, "access": {"mode": "External", "roleArn": null}}}),
    ))
    .await;
    let obj = s.wait_phase("x", Phase::AwaitingDestination, CONVERGE).await;
    let dest = status(&obj).destination.expect("destination");
    let key_statement = dest.required_key_policy.expect("the key statement is published");
    let bucket_policy = dest.required_bucket_policy.expect("the bucket policy is published");

    // Account B's administrator applies both; Ferry never calls Account B.
    let stmt = parse(&key_statement)["Statement"][0].clone();
    let merged = with_statement(&s.b.key_policy(&key).await, stmt);
    s.b.put_key_policy(&key, &merged).await;
    s.b.put_bucket_policy(&s.dst_region, &s.dst, &bucket_policy).await;
    s.b.set_ownership(&s.dst_region, &s.dst, "BucketOwnerEnforced").await;
    s.wait_phase("x", Phase::Succeeded, CONVERGE).await;
    assert_eq!(
        s.b.object_key_id(&s.dst_region, &s.dst, "archive/a.jpg")
            .await
            .as_deref(),
        Some(key.as_str())
    );
    let on_b = common::aws::calls(s.env, &format!("account={}&service=kms", s.a.id));
    assert!(on_b.is_empty(), "Ferry called KMS in External mode: {on_b:?}");
    s.delete_and_wait("x", CONVERGE).await;
}

#[tokio::test]
async fn a_destination_requiring_sse_c_is_refused_and_the_transfer_can_be_deleted() {
    let s = Scenario::new("ssec", "us-east-1", "us-east-1").await;
    let require_sse_c = json!({"Version": "2012-10-17", "Statement": [{
        "Sid": "RequireCustomerKeys", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
        "Resource": format!("arn:aws:s3:::{}/*", s.dst),
        "Condition": {"Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "true"}}}]});
    s.b.put_bucket_policy(&s.dst_region, &s.dst, &require_sse_c.to_string())
        .await;
    let _op = s.operator(&[]);
    s.apply(&s.manifest("c", json!({}))).await;
    let obj = s.wait_phase("c", Phase::Failed, CONVERGE).await;
    let st = status(&obj);
    let stalled = st.conditions.iter().find(|c| c.type_ == "Stalled").expect("Stalled");
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "EncryptionNotSupported")
    );
    assert!(
        stalled.message.contains("SSE-C") && stalled.message.contains(&s.dst),
        "{}",
        stalled.message
    );
    // Nothing was written to Account B's policy.
    assert_eq!(
        s.b.bucket_policy(&s.dst_region, &s.dst).await.map(|p| parse(&p)),
        Some(require_sse_c)
    );
    s.delete_and_wait("c", CONVERGE).await;
}

#[tokio::test]
async fn a_destination_key_named_by_alias_is_refused_with_the_fix() {
    let s = Scenario::new("alias", "us-east-1", "us-east-1").await;
    let key = s.b.kms_key(&s.dst_region).await;
    s.b.kms(&s.dst_region)
        .create_alias()
        .alias_name("alias/archive")
        .target_key_id(&key)
        .send()
        .await
        .expect("alias");
    s.b.encrypt_bucket(&s.dst_region, &s.dst, "alias/archive").await;
    let _op = s.operator(&[]);
    s.apply(&s.manifest("a", json!({}))).await;
    let obj = s.wait_phase("a", Phase::Failed, CONVERGE).await;
    let stalled = status(&obj)
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Stalled")
        .expect("Stalled");
    assert_eq!(stalled.reason, "EncryptionNotSupported");
    assert!(
        stalled.message.contains("alias/archive") && stalled.message.contains("full ARN"),
        "{}",
        stalled.message
    );
    s.delete_and_wait("a", CONVERGE).await;
}

#[tokio::test]
async fn a_same_named_bucket_of_a_third_account_is_never_written() {
    let s = Scenario::new("snipe", "us-east-1", "us-east-1").await;
    let _op = s.operator(&[]);
    s.apply(&s.manifest("t", json!({"run": "Manual"}))).await;
    let obj = s.wait_phase("t", Phase::Ready, CONVERGE).await;
    let st = status(&obj);
    let (task, role) = (st.task_arn.expect("task"), st.role.expect("role").arn);

    // Account B's bucket goes; a stranger (account C) creates one of the same name and opens
    // it to everyone.
    let b3 = s.b.s3(&s.dst_region);
    b3.delete_bucket_policy()
        .bucket(&s.dst)
        .send()
        .await
        .expect("delete policy");
    b3.delete_bucket().bucket(&s.dst).send().await.expect("delete bucket");
    let c = common::aws::stranger_takes(s.env, &s.dst_region, &s.dst, &role).await;

    // The task runs (as its schedule would, without Ferry): the role's policy keeps DataSync
    // out of a bucket Account B does not own.
    common::aws::run_task_refused(&s.a.datasync(&s.dst_region), &task, CONVERGE).await;
    assert!(
        c.keys(&s.dst_region, &s.dst, "").await.is_empty(),
        "the stranger's bucket was written"
    );
}

fn percent_decode(raw: &str) -> String {
    ferry::policy::decode_iam_document(raw)
}

#[tokio::test]
async fn a_report_with_failed_objects_reaches_the_status_the_events_and_ferry_status() {
    let s = Scenario::new("rep", "us-east-1", "us-east-1").await;
    let reports = format!("{}-reports", s.src);
    s.a.bucket(&s.src_region, &reports).await;
    // One source object is encrypted with a key the transfer does not name: DataSync's role may
    // not decrypt it, so that object alone fails.
    let other_key = s.a.kms_key(&s.src_region).await;
    s.a.s3(&s.src_region)
        .put_object()
        .bucket(&s.src)
        .key("media/locked.bin")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"secret"))
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
        .ssekms_key_id(&other_key)
        .send()
        .await
        .expect("put the locked object");
    let _op = s.operator(&[]);
    s.apply(&s.manifest(
        "r",
        json!({"task": {"report": {"bucket": reports, "prefix": "reports/"}}}),
    ))
    .await;
    let obj = s.wait_phase("r", Phase::Failed, CONVERGE).await;
    let exec = status(&obj).execution.expect("execution");
    let report = exec.report.clone().expect("the report in status.execution.report");
    assert!(
        report.location.starts_with(&format!("s3://{reports}/reports/")),
        "{}",
        report.location
    );
    assert_eq!(report.failed, 1, "{report:?}");
    assert_eq!(report.failed_objects.len(), 1, "{report:?}");
    assert!(report.failed_objects[0].contains("locked.bin"), "{report:?}");
    assert!(exec.files_failed >= 1, "{exec:?}");
    // The good objects were copied all the same.
    assert!(s.destination_keys().await.contains_key("archive/a.jpg"));
    let warnings: Vec<_> = s.events("r").await.into_iter().filter(|e| e.0 == "Warning").collect();
    assert!(
        warnings
            .iter()
            .any(|e| e.2.contains(&report.location) && e.2.contains("locked.bin")),
        "{warnings:?}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["status", "-n", &s.ns])
        .env("KUBECONFIG", &s.env.kubeconfig)
        .output()
        .expect("ferry status");
    let text = common::succeeded(&out, "ferry status");
    assert!(
        text.contains("1 failed") && text.contains(&report.location) && text.contains("locked.bin"),
        "{text}"
    );

    // Naming the key lets the role decrypt it: the next run copies everything.
    s.patch_spec("r", json!({"source": {"kmsKeyArn": other_key}})).await;
    let obj = s.wait_recovery("r", Phase::Succeeded, CONVERGE).await;
    assert!(s.destination_keys().await.contains_key("archive/locked.bin"));
    let exec = status(&obj).execution.expect("execution");
    assert_eq!(exec.report.map(|r| r.failed), Some(0));
}

#[tokio::test]
async fn a_destination_key_of_a_third_account_is_published_not_edited() {
    let s = Scenario::new("kms3", "us-east-1", "us-east-1").await;
    // Account B's bucket encrypts with a key of account C (a central key account).
    let c = account(s.env, &random_account_id(), "/", "key-admin").await;
    let key = c.kms_key(&s.dst_region).await;
    s.b.encrypt_bucket(&s.dst_region, &s.dst, &key).await;
    let original = c.key_policy(&key).await;
    let _op = s.operator(&[]);
    s.apply(&s.manifest("k", json!({}))).await;
    // Ferry cannot edit C's key: the copy fails on the key, and the statement C must add is
    // published.
    let obj = s.wait_phase("k", Phase::Failed, CONVERGE).await;
    let st = status(&obj);
    let dest = st.destination.clone().expect("destination");
    assert_eq!(dest.key_arn, None, "Ferry edited a key of another account");
    let required = dest.required_key_policy.expect("the key statement is published");
    assert_eq!(
        parse(&c.key_policy(&key).await),
        parse(&original),
        "C's key policy changed"
    );
    let exec = st.execution.expect("execution");
    assert!(
        exec.error_detail
            .as_deref()
            .unwrap_or_default()
            .contains("kms:GenerateDataKey")
            || exec.report.is_some(),
        "{exec:?}"
    );

    // C's administrator adds the statement; the next run copies under C's key.
    let stmt = parse(&required)["Statement"][0].clone();
    c.put_key_policy(&key, &with_statement(&original, stmt)).await;
    s.annotate("k", "ferry.dev/run", "again").await;
    s.wait_recovery("k", Phase::Succeeded, CONVERGE).await;
    assert_eq!(
        s.b.object_key_id(&s.dst_region, &s.dst, "archive/a.jpg")
            .await
            .as_deref(),
        Some(key.as_str())
    );
}

#[tokio::test]
async fn an_operator_that_may_not_read_encryption_carries_on_with_the_specs_keys() {
    let s = Scenario::new("noenc", "us-east-1", "us-east-1").await;
    let _denied = common::aws::fault(
        s.env,
        json!({"service": "s3", "operation": "GetBucketEncryption", "kind": "denied", "account": s.a.id,
               "bucket": s.src, "probability": 1.0}),
    );
    let _op = s.operator(&[]);
    s.apply(&s.manifest("n", json!({}))).await;
    let obj = s.wait_phase("n", Phase::Succeeded, CONVERGE).await;
    let source = status(&obj)
        .encryption
        .and_then(|e| e.source)
        .expect("source encryption");
    assert_eq!(source.algorithm, ferry::steps::encryption::UNREAD);
    assert_eq!(source.key_arn, None);
}
