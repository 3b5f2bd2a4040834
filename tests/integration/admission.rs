//! The CRD as the real API server enforces it: a corpus of invalid manifests, each refused
//! with a message that names the field; `kubectl explain` and `kubectl get` show what the
//! types say. (That the committed CRD is the generated one is a unit test of `ferry crd`.)

use crate::common;

use common::env;
use ferry::api::CrossAccountTransfer;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn valid_spec() -> Value {
    json!({
        "source": {"bucket": "source-bucket", "region": "us-east-1", "prefix": "media/"},
        "destination": {"bucket": "destination-bucket", "region": "us-west-1", "accountId": "222222222222",
                        "access": {"mode": "AssumeRole", "roleArn": "arn:aws:iam::222222222222:role/ferry-bucket-admin"}}
    })
}

fn with(patch: Value) -> Value {
    let mut spec = valid_spec();
    common::scenario::merge(&mut spec, &patch);
    spec
}

/// (what is wrong, spec, text the error must contain: the field and the reason)
fn corpus() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        (
            "a KMS key named by alias",
            with(json!({"destination": {"kmsKeyArn": "alias/archive"}})),
            "kmsKeyArn must be the key's full ARN",
        ),
        (
            "a KMS alias ARN",
            with(json!({"source": {"kmsKeyArn": "arn:aws:kms:us-east-1:111111111111:alias/data"}})),
            "spec.source.kmsKeyArn",
        ),
        (
            "bucket with capitals and underscore",
            with(json!({"source": {"bucket": "Bad_Bucket"}})),
            "spec.source.bucket",
        ),
        (
            "bucket too short",
            with(json!({"source": {"bucket": "ab"}})),
            "spec.source.bucket",
        ),
        (
            "destination bucket with capitals",
            with(json!({"destination": {"bucket": "Archive"}})),
            "spec.destination.bucket",
        ),
        (
            "region without number",
            with(json!({"source": {"region": "us-east"}})),
            "spec.source.region",
        ),
        (
            "region made up",
            with(json!({"destination": {"region": "Mars-1"}})),
            "spec.destination.region",
        ),
        (
            "account id too short",
            with(json!({"destination": {"accountId": "12345"}})),
            "spec.destination.accountId",
        ),
        (
            "account id as a number",
            with(json!({"destination": {"accountId": 222222222222_u64}})),
            "spec.destination.accountId",
        ),
        (
            "AssumeRole without roleArn",
            with(json!({"destination": {"access": {"roleArn": null}}})),
            "spec.destination.access.roleArn is required",
        ),
        (
            "unknown access mode",
            with(json!({"destination": {"access": {"mode": "Sometimes"}}})),
            "spec.destination.access.mode",
        ),
        (
            "roleArn not an ARN",
            with(json!({"destination": {"access": {"roleArn": "ferry-bucket-admin"}}})),
            "spec.destination.access.roleArn",
        ),
        (
            "roleArn of another account",
            with(json!({"destination": {"access": {"roleArn": "arn:aws:iam::333333333333:role/x"}}})),
            "spec.destination.access.roleArn must be a role of the destination account",
        ),
        (
            "External mode with a roleArn",
            with(json!({"destination": {"access": {"mode": "External"}}})),
            "spec.destination.access.roleArn must be empty",
        ),
        (
            "missing access",
            with(json!({"destination": {"access": null}})),
            "spec.destination.access",
        ),
        (
            "role name and arn both",
            with(json!({"dataSyncRole": {"name": "r", "arn": "arn:aws:iam::111111111111:role/r"}})),
            "spec.dataSyncRole: set name",
        ),
        (
            "role arn malformed",
            with(json!({"dataSyncRole": {"arn": "arn:aws:s3:::bucket"}})),
            "spec.dataSyncRole.arn",
        ),
        (
            "role name with spaces",
            with(json!({"dataSyncRole": {"name": "my role"}})),
            "spec.dataSyncRole.name",
        ),
        (
            "source roleArn malformed",
            with(json!({"source": {"roleArn": "arn:aws:iam::1:role/x"}})),
            "spec.source.roleArn",
        ),
        (
            "unknown task mode",
            with(json!({"task": {"mode": "Turbo"}})),
            "spec.task.mode",
        ),
        (
            "Enhanced with point-in-time verification",
            with(json!({"task": {"verify": "PointInTimeConsistent"}})),
            "spec.task.verify",
        ),
        (
            "Enhanced with a bandwidth limit",
            with(json!({"task": {"bytesPerSecond": 1048576}})),
            "spec.task.bytesPerSecond",
        ),
        (
            "bandwidth limit of zero",
            with(json!({"task": {"mode": "Basic", "bytesPerSecond": 0}})),
            "spec.task.bytesPerSecond",
        ),
        (
            "Remove with transfer All",
            with(json!({"task": {"deleted": "Remove", "transfer": "All"}})),
            "spec.task.deleted",
        ),
        (
            "a pipe inside a filter",
            with(json!({"task": {"includes": ["/a*|/b*"]}})),
            "spec.task.includes",
        ),
        (
            "schedule in prose",
            with(json!({"schedule": "every day at two"})),
            "spec.schedule",
        ),
        (
            "schedule more often than hourly",
            with(json!({"schedule": "rate(5 minutes)"})),
            "spec.schedule",
        ),
        ("unknown run policy", with(json!({"run": "Always"})), "spec.run"),
        (
            "unknown deletion policy",
            with(json!({"deletionPolicy": "Orphan"})),
            "spec.deletionPolicy",
        ),
        (
            "unknown storage class",
            with(json!({"destination": {"storageClass": "COLD"}})),
            "spec.destination.storageClass",
        ),
        (
            "prefix with a leading slash",
            with(json!({"source": {"prefix": "/media"}})),
            "spec.source.prefix",
        ),
        (
            "prefix with an empty folder",
            with(json!({"destination": {"prefix": "a//b"}})),
            "spec.destination.prefix",
        ),
        (
            "same bucket on both sides",
            with(json!({"destination": {"bucket": "source-bucket"}})),
            "spec.destination.bucket must differ",
        ),
        (
            "log level without a log group",
            with(json!({"task": {"logLevel": "Transfer"}})),
            "spec.task.logGroupArn is required",
        ),
        (
            "log group ARN malformed",
            with(json!({"task": {"logGroupArn": "arn:aws:logs:us-east-1:1:log-group:x"}})),
            "spec.task.logGroupArn",
        ),
        (
            "report into the source bucket",
            with(json!({"task": {"report": {"bucket": "source-bucket"}}})),
            "spec.task.report.bucket",
        ),
        ("missing source", with(json!({"source": null})), "spec.source"),
        // S3's bucket naming rules beyond the pattern.
        (
            "bucket formatted as an IP address",
            with(json!({"source": {"bucket": "192.168.5.4"}})),
            "spec.source.bucket",
        ),
        (
            "bucket with adjacent periods",
            with(json!({"destination": {"bucket": "my..bucket"}})),
            "spec.destination.bucket",
        ),
        (
            "bucket with the reserved xn-- prefix",
            with(json!({"source": {"bucket": "xn--bucket"}})),
            "spec.source.bucket",
        ),
        (
            "bucket with the reserved sthree- prefix",
            with(json!({"destination": {"bucket": "sthree-bucket"}})),
            "spec.destination.bucket",
        ),
        (
            "bucket with the access-point alias suffix",
            with(json!({"destination": {"bucket": "archive-s3alias"}})),
            "spec.destination.bucket",
        ),
        (
            "report bucket with an Object Lambda alias suffix",
            with(json!({"task": {"report": {"bucket": "reports--ol-s3"}}})),
            "spec.task.report.bucket",
        ),
        // DataSync's Subdirectory: letters, digits, _ - + . / ( ) and spaces only.
        (
            "prefix with =",
            with(json!({"source": {"prefix": "a=b/"}})),
            "spec.source.prefix",
        ),
        (
            "prefix with !",
            with(json!({"destination": {"prefix": "wow!/"}})),
            "spec.destination.prefix",
        ),
        (
            "prefix with *",
            with(json!({"source": {"prefix": "media*"}})),
            "spec.source.prefix",
        ),
        (
            "prefix with a quote",
            with(json!({"destination": {"prefix": "it's/"}})),
            "spec.destination.prefix",
        ),
        // DataSync's 102,400 characters for the joined filter.
        (
            "a filter pattern longer than 1023 characters",
            with(json!({"task": {"excludes": ["x".repeat(1024)]}})),
            "spec.task.excludes",
        ),
        // EventBridge's grammar and DataSync's hourly minimum.
        (
            "rate with a plural unit for 1",
            with(json!({"schedule": "rate(1 hours)"})),
            "spec.schedule",
        ),
        (
            "rate with a singular unit for 2",
            with(json!({"schedule": "rate(2 hour)"})),
            "spec.schedule",
        ),
        (
            "five-field cron",
            with(json!({"schedule": "cron(0 2 * * *)"})),
            "spec.schedule",
        ),
        (
            "cron with * in both day fields",
            with(json!({"schedule": "cron(0 2 * * * *)"})),
            "spec.schedule: a cron expression needs ?",
        ),
        (
            "cron more often than hourly",
            with(json!({"schedule": "cron(0/5 * * * ? *)"})),
            "spec.schedule",
        ),
        (
            "rate of 30 minutes",
            with(json!({"schedule": "rate(30 minutes)"})),
            "spec.schedule",
        ),
        // DataSync's rules across fields.
        (
            "point-in-time verification into Glacier",
            with(json!({"task": {"mode": "Basic", "verify": "PointInTimeConsistent"},
                        "destination": {"storageClass": "GLACIER"}})),
            "spec.task.verify: DataSync cannot verify PointInTimeConsistent",
        ),
        (
            "point-in-time verification into Deep Archive",
            with(json!({"task": {"mode": "Basic", "verify": "PointInTimeConsistent"},
                        "destination": {"storageClass": "DEEP_ARCHIVE"}})),
            "spec.task.verify: DataSync cannot verify PointInTimeConsistent",
        ),
        (
            "Enhanced mode logging to another log group",
            with(json!({"task": {"logGroupArn": "arn:aws:logs:us-west-1:111111111111:log-group:ferry"}})),
            "spec.task.logGroupArn: Enhanced mode tasks log only to the log group /aws/datasync",
        ),
        (
            "regions of two partitions",
            with(json!({"source": {"region": "cn-north-1"}})),
            "must be in one AWS partition",
        ),
        (
            "GovCloud to a commercial region",
            with(json!({"destination": {"region": "us-gov-west-1",
                        "access": {"roleArn": "arn:aws-us-gov:iam::222222222222:role/ferry-bucket-admin"}}})),
            "must be in one AWS partition",
        ),
        (
            "across Regions from an opt-in Region",
            with(json!({"source": {"region": "af-south-1"}})),
            "opt-in Region",
        ),
    ]
}

/// Manifests next to the refused ones that AWS accepts, so each rule refuses only what it must.
fn accepted() -> Vec<(&'static str, Value)> {
    vec![
        (
            "bucket with single periods",
            with(json!({"source": {"bucket": "my.bucket.name"}})),
        ),
        (
            "bucket with digits and periods",
            with(json!({"source": {"bucket": "192.168.5.bucket"}})),
        ),
        (
            "prefix with parentheses, plus and spaces",
            with(json!({"source": {"prefix": "media/(2024) a+b/"}})),
        ),
        (
            "a filter pattern of 1023 characters",
            with(json!({"task": {"excludes": ["x".repeat(1023)]}})),
        ),
        ("rate of one hour", with(json!({"schedule": "rate(1 hour)"}))),
        ("rate of 90 minutes", with(json!({"schedule": "rate(90 minutes)"}))),
        ("six-field cron", with(json!({"schedule": "cron(15 2 ? * MON-FRI *)"}))),
        (
            "point-in-time verification into Standard-IA",
            with(json!({"task": {"mode": "Basic", "verify": "PointInTimeConsistent"},
                        "destination": {"storageClass": "STANDARD_IA"}})),
        ),
        (
            "Enhanced mode logging to /aws/datasync",
            with(json!({"task": {"logGroupArn": "arn:aws:logs:us-west-1:111111111111:log-group:/aws/datasync:*"}})),
        ),
        (
            "Basic mode logging to any log group",
            with(
                json!({"task": {"mode": "Basic", "logGroupArn": "arn:aws:logs:us-west-1:111111111111:log-group:ferry"}}),
            ),
        ),
        (
            "an opt-in Region on both sides",
            with(json!({"source": {"region": "af-south-1"}, "destination": {"region": "af-south-1"}})),
        ),
        (
            "KMS key ARNs on both sides",
            with(
                json!({"source": {"kmsKeyArn": "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
                        "destination": {"kmsKeyArn": "arn:aws:kms:us-east-1:222222222222:key/mrk-1234abcd12ab34cd56ef1234567890ab"}}),
            ),
        ),
        (
            "China on both sides",
            with(
                json!({"source": {"region": "cn-north-1"}, "destination": {"region": "cn-northwest-1",
                        "access": {"roleArn": "arn:aws-cn:iam::222222222222:role/ferry-bucket-admin"}}}),
            ),
        ),
        (
            "the European Sovereign Cloud on both sides",
            with(
                json!({"source": {"region": "eusc-de-east-1"}, "destination": {"region": "eusc-de-east-1",
                        "access": {"roleArn": "arn:aws-eusc:iam::222222222222:role/ferry-bucket-admin"}}}),
            ),
        ),
    ]
}

#[tokio::test]
async fn manifests_next_to_the_refused_ones_are_admitted() {
    let env = env();
    let client = env.client().await;
    let ns = env.namespace(&client, "adm-ok").await;
    let resource = ApiResource::erase::<CrossAccountTransfer>(&());
    let raw: Api<DynamicObject> = Api::namespaced_with(client, &ns, &resource);
    let mut wrong = Vec::new();
    for (i, (what, spec)) in accepted().into_iter().enumerate() {
        let manifest = json!({"apiVersion": "ferry.dev/v1alpha1", "kind": "CrossAccountTransfer",
                              "metadata": {"name": format!("ok-{i}")}, "spec": spec});
        let obj: DynamicObject = serde_json::from_value(manifest).expect("object");
        if let Err(err) = raw.create(&PostParams::default(), &obj).await {
            wrong.push(format!("{what}: refused: {err}"));
        }
        // ... and by Ferry's own check (`validate`, the CEL rules' Rust twins).
        let problems = serde_json::from_value::<ferry::api::CrossAccountTransferSpec>(spec)
            .expect("spec")
            .validate();
        if !problems.is_empty() {
            wrong.push(format!("{what}: validate() refuses: {problems:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Every cross-field rule (`ferry::api::RULES`, the one table both the CRD's CEL rules and
/// `validate` come from): its example is refused by the real API server's CEL with the rule's
/// message, and by `validate` with the same message.
#[tokio::test]
async fn every_cel_rule_and_its_rust_twin_refuse_the_same_example() {
    let env = env();
    let client = env.client().await;
    let ns = env.namespace(&client, "adm-rules").await;
    let resource = ApiResource::erase::<CrossAccountTransfer>(&());
    let raw: Api<DynamicObject> = Api::namespaced_with(client, &ns, &resource);
    let mut wrong = Vec::new();
    for (i, rule) in ferry::api::RULES.iter().enumerate() {
        let spec = with(serde_json::from_str(rule.example).expect("example JSON"));
        let manifest = json!({"apiVersion": "ferry.dev/v1alpha1", "kind": "CrossAccountTransfer",
                              "metadata": {"name": format!("rule-{i}")}, "spec": spec});
        let obj: DynamicObject = serde_json::from_value(manifest).expect("object");
        match raw.create(&PostParams::default(), &obj).await {
            Ok(_) => wrong.push(format!("{}: the API server accepted {}", rule.message, rule.example)),
            Err(kube::Error::Api(status)) if status.code == 422 && status.message.contains(rule.message) => {}
            Err(other) => wrong.push(format!("{}: the API server answered {other}", rule.message)),
        }
        let problems = serde_json::from_value::<ferry::api::CrossAccountTransferSpec>(spec)
            .expect("spec")
            .validate();
        if problems != [rule.message] {
            wrong.push(format!("{}: validate() says {problems:?}", rule.message));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn invalid_manifests_are_refused_with_a_message_naming_the_field() {
    let env = env();
    let client = env.client().await;
    let ns = env.namespace(&client, "adm").await;
    let api: Api<CrossAccountTransfer> = Api::namespaced(client.clone(), &ns);
    let resource = ApiResource::erase::<CrossAccountTransfer>(&());
    let raw: Api<DynamicObject> = Api::namespaced_with(client, &ns, &resource);
    let cases = corpus();
    assert!(cases.len() >= 20);
    let mut wrong = Vec::new();
    for (i, (what, spec, needle)) in cases.iter().enumerate() {
        let manifest = json!({"apiVersion": "ferry.dev/v1alpha1", "kind": "CrossAccountTransfer",
                              "metadata": {"name": format!("bad-{i}")}, "spec": spec});
        // Sent as raw JSON, as kubectl would: some of these cannot even be a Rust value.
        let obj: DynamicObject = serde_json::from_value(manifest).expect("object");
        let result = raw.create(&PostParams::default(), &obj).await.map(|_| ());
        match result {
            Ok(()) => wrong.push(format!("{what}: accepted")),
            Err(kube::Error::Api(status)) if status.code == 422 => {
                if !status.message.contains(needle) {
                    wrong.push(format!("{what}: message does not name `{needle}`: {}", status.message));
                }
            }
            Err(other) => wrong.push(format!("{what}: unexpected error {other}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // The valid base is accepted, so every refusal above is for its own reason.
    let ok = json!({"apiVersion": "ferry.dev/v1alpha1", "kind": "CrossAccountTransfer",
                    "metadata": {"name": "good"}, "spec": valid_spec()});
    api.create(&PostParams::default(), &serde_json::from_value(ok).expect("valid"))
        .await
        .expect("the valid manifest is accepted");
}

#[tokio::test]
async fn the_task_mode_and_the_initiator_cannot_change() {
    let env = env();
    let client = env.client().await;
    let ns = env.namespace(&client, "immut").await;
    let api: Api<CrossAccountTransfer> = Api::namespaced(client, &ns);
    let manifest = json!({"apiVersion": "ferry.dev/v1alpha1", "kind": "CrossAccountTransfer",
                          "metadata": {"name": "m"}, "spec": valid_spec()});
    api.create(
        &PostParams::default(),
        &serde_json::from_value(manifest).expect("valid"),
    )
    .await
    .expect("create");
    let err = api
        .patch(
            "m",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"task": {"mode": "Basic"}}})),
        )
        .await
        .expect_err("the mode is immutable");
    assert!(err.to_string().contains("spec.task.mode is immutable"), "{err}");
    // Nor which account runs the copy (defaulted to Source at creation): the role and the task
    // live in that account. The pull asked for is valid otherwise.
    let pull = json!({"spec": {"initiator": "Destination",
        "source": {"accountId": "111111111111", "access": {"mode": "External"}},
        "destination": {"access": null}}});
    let err = api
        .patch("m", &PatchParams::default(), &Patch::Merge(pull))
        .await
        .expect_err("the initiator is immutable");
    assert!(err.to_string().contains("spec.initiator is immutable"), "{err}");
}

#[tokio::test]
async fn kubectl_explains_the_resource_and_prints_the_columns() {
    let env = env();
    // The API server publishes a new CRD's OpenAPI a moment after it is Established.
    let text = common::wait_for(
        "kubectl explain to know the CRD",
        std::time::Duration::from_secs(60),
        || async {
            let out = env.kubectl(&["explain", "crossaccounttransfers.spec.destination.access"]);
            if out.status.success() {
                Ok(String::from_utf8_lossy(&out.stdout).to_string())
            } else {
                Err(String::from_utf8_lossy(&out.stderr).to_string())
            }
        },
    )
    .await;
    assert!(text.contains("Ferry never calls Account B"), "{text}");
    assert!(text.contains("roleArn"), "{text}");

    let client = env.client().await;
    let ns = env.namespace(&client, "cols").await;
    let api: Api<CrossAccountTransfer> = Api::namespaced(client, &ns);
    let manifest = json!({"apiVersion": "ferry.dev/v1alpha1", "kind": "CrossAccountTransfer",
                          "metadata": {"name": "c"}, "spec": valid_spec()});
    api.create(
        &PostParams::default(),
        &serde_json::from_value(manifest).expect("valid"),
    )
    .await
    .expect("create");
    let out = env.kubectl(&["get", "xat", "-n", &ns]);
    let header = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    for column in ["NAME", "PHASE", "SOURCE", "DESTINATION", "PROGRESS", "AGE"] {
        assert!(header.contains(column), "{header}");
    }
    let out = env.kubectl(&["get", "ferry", "-n", &ns, "-o", "name"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "crossaccounttransfer.ferry.dev/c"
    );
}
