//! Tests of the test environment itself: the real API server (CRD with status subresource,
//! server-side apply, watch) and the AWS emulator (accounts, tags, faults, a real copy).

use crate::common;

use std::time::Duration;

use aws_sdk_datasync::types::{FilterRule, FilterType, S3Config, TagListEntry};
use common::aws::{account, emulator_call, random_account_id};
use common::{env, suffix};
use ferry::api::CrossAccountTransfer;
use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher;

fn transfer(name: &str) -> CrossAccountTransfer {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1",
        "kind": "CrossAccountTransfer",
        "metadata": {"name": name},
        "spec": {
            "source": {"bucket": "env-src", "region": "us-east-1"},
            "destination": {"bucket": "env-dst", "region": "us-west-1", "accountId": "222222222222",
                            "access": {"mode": "External"}}
        }
    }))
    .expect("transfer")
}

#[tokio::test]
async fn api_server_serves_the_crd_with_status_ssa_and_watch() {
    let env = env();
    let client = env.client().await;
    let ns = env.namespace(&client, "env-api").await;
    let api: Api<CrossAccountTransfer> = Api::namespaced(client.clone(), &ns);

    // A watch sees what happens next.
    let mut events = watcher(api.clone(), watcher::Config::default()).boxed();

    let created = api
        .create(&PostParams::default(), &transfer("w"))
        .await
        .expect("create");
    assert_eq!(
        created.spec.task.mode,
        ferry::api::TaskMode::Enhanced,
        "defaults applied by the API server"
    );

    // Status through the status subresource, by server-side apply.
    let patch = serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "CrossAccountTransfer",
        "status": {"phase": "Provisioning", "observedGeneration": 1}
    });
    api.patch_status(
        "w",
        &PatchParams::apply("ferry.dev/controller").force(),
        &Patch::Apply(&patch),
    )
    .await
    .expect("status apply");
    // A spec field in a status patch is ignored: the subresource only takes status.
    let sneaky = serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "CrossAccountTransfer",
        "spec": {"suspend": true}, "status": {"phase": "Ready"}
    });
    api.patch_status("w", &PatchParams::apply("someone-else").force(), &Patch::Apply(&sneaky))
        .await
        .expect("second status apply");
    let got = api.get("w").await.expect("get");
    assert!(!got.spec.suspend, "status subresource must not change the spec");
    assert_eq!(
        got.status.as_ref().and_then(|s| s.phase),
        Some(ferry::api::Phase::Ready)
    );
    let managers: Vec<String> = got
        .metadata
        .managed_fields
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(managers.iter().any(|m| m == "someone-else"), "managers: {managers:?}");

    // Server-side apply of the spec by a user.
    let user = serde_json::json!({
        "apiVersion": "ferry.dev/v1alpha1", "kind": "CrossAccountTransfer", "metadata": {"name": "w"},
        "spec": {"source": {"bucket": "env-src", "region": "us-east-1"},
                 "destination": {"bucket": "env-dst", "region": "us-west-1", "accountId": "222222222222",
                                 "access": {"mode": "External"}},
                 "task": {"excludes": ["*.tmp"]}}
    });
    api.patch("w", &PatchParams::apply("kubectl-user"), &Patch::Apply(&user))
        .await
        .expect("spec apply");
    assert_eq!(api.get("w").await.expect("get").metadata.generation, Some(2));

    // The watch delivered the object with the new spec.
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(event) = events.next().await {
            if let Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj)) = event
                && obj.spec.task.excludes == vec!["*.tmp".to_string()]
            {
                return;
            }
        }
        panic!("watch ended");
    })
    .await
    .expect("the watch saw the spec change");
}

#[tokio::test]
async fn two_accounts_are_separated() {
    let env = env();
    let a = account(env, &random_account_id(), "/", "tester").await;
    let b = account(env, &random_account_id(), "/", "tester").await;
    let ident_a = a.sts().get_caller_identity().send().await.expect("identity a");
    let ident_b = b.sts().get_caller_identity().send().await.expect("identity b");
    assert_eq!(ident_a.account(), Some(a.id.as_str()));
    assert_eq!(ident_b.account(), Some(b.id.as_str()));

    let bucket = format!("sep-{}", suffix());
    a.bucket("us-east-1", &bucket).await;
    let datasync_role = a.datasync_role("tester-datasync").await;
    let config = S3Config::builder()
        .bucket_access_role_arn(&datasync_role)
        .build()
        .expect("s3 config");
    let loc = a
        .datasync("us-east-1")
        .create_location_s3()
        .s3_bucket_arn(format!("arn:aws:s3:::{bucket}"))
        .s3_config(config)
        .send()
        .await
        .expect("create location")
        .location_arn
        .expect("arn");
    assert!(
        loc.contains(&format!(":{}:", a.id)),
        "ARN carries the caller's account: {loc}"
    );
    assert!(a.locations("us-east-1").await.contains(&loc));
    assert!(
        !b.locations("us-east-1").await.contains(&loc),
        "B must not see A's location"
    );
    assert!(a.roles().await.contains(&"tester".to_string()));
    assert_eq!(
        b.roles().await.iter().filter(|r| *r == "tester").count(),
        1,
        "each account has its own role"
    );
}

#[tokio::test]
async fn datasync_tags_round_trip() {
    let env = env();
    let a = account(env, &random_account_id(), "/", "tagger").await;
    let bucket = format!("tags-{}", suffix());
    a.bucket("us-east-1", &bucket).await;
    let datasync_role = a.datasync_role("tagger-datasync").await;
    let ds = a.datasync("us-east-1");
    let tag = |k: &str, v: &str| TagListEntry::builder().key(k).value(v).build().expect("tag");
    let loc = ds
        .create_location_s3()
        .s3_bucket_arn(format!("arn:aws:s3:::{bucket}"))
        .s3_config(
            S3Config::builder()
                .bucket_access_role_arn(&datasync_role)
                .build()
                .expect("cfg"),
        )
        .tags(tag("ferry.dev/uid", "abc"))
        .send()
        .await
        .expect("create")
        .location_arn
        .expect("arn");
    ds.tag_resource()
        .resource_arn(&loc)
        .tags(tag("extra", "1"))
        .send()
        .await
        .expect("tag");
    let tags = ds
        .list_tags_for_resource()
        .resource_arn(&loc)
        .send()
        .await
        .expect("list tags");
    let pairs: Vec<(String, String)> = tags
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().unwrap_or_default().to_string()))
        .collect();
    assert!(pairs.contains(&("ferry.dev/uid".into(), "abc".into())), "{pairs:?}");
    assert!(pairs.contains(&("extra".into(), "1".into())), "{pairs:?}");
    ds.untag_resource()
        .resource_arn(&loc)
        .keys("extra")
        .send()
        .await
        .expect("untag");
    let tags = ds
        .list_tags_for_resource()
        .resource_arn(&loc)
        .send()
        .await
        .expect("list tags");
    assert_eq!(tags.tags().len(), 1);
}

#[tokio::test]
async fn faults_fire_and_then_stop() {
    let env = env();
    let a = account(env, &random_account_id(), "/", "faulty").await;
    // Only this test's account: other tests' operators call ListTasks on the same server.
    let rule = serde_json::json!({"service": "datasync", "operation": "ListTasks", "kind": "throttle", "count": 2,
                                  "account": a.id});
    let answer = emulator_call(env, "POST", "/ferry-emulator/faults", &rule.to_string());
    assert!(
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"),
        "{answer}"
    );
    // No SDK retries here, so every throttled answer shows.
    let conf = aws_sdk_datasync::config::Builder::from(&aws_config::SdkConfig::builder().build())
        .behavior_version(aws_config::BehaviorVersion::latest())
        .http_client(ferry::aws::http_client())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&env.aws_url)
        .credentials_provider(aws_credential_types::Credentials::new(
            a.creds.access_key_id.clone(),
            a.creds.secret_access_key.clone(),
            Some(a.creds.session_token.clone()),
            None,
            "t",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    let ds = aws_sdk_datasync::Client::from_conf(conf);
    let mut codes = Vec::new();
    for _ in 0..3 {
        match ds.list_tasks().send().await {
            Ok(_) => codes.push("ok".to_string()),
            Err(e) => codes.push(
                aws_smithy_types::error::metadata::ProvideErrorMetadata::code(&e)
                    .unwrap_or("?")
                    .to_string(),
            ),
        }
    }
    assert_eq!(codes, vec!["ThrottlingException", "ThrottlingException", "ok"]);
}

#[tokio::test]
async fn emulator_copies_across_accounts_and_regions() {
    let env = env();
    let a = account(env, &random_account_id(), "/", "copier").await;
    let b = account(env, &random_account_id(), "/", "owner").await;
    let (src, dst) = (format!("e2e-src-{}", suffix()), format!("e2e-dst-{}", suffix()));
    a.bucket("us-east-1", &src).await;
    b.bucket("us-west-2", &dst).await;
    a.put(
        "us-east-1",
        &src,
        &[
            ("data/a.txt", "alpha"),
            ("data/sub/b.txt", "bravo!"),
            ("data/skip.tmp", "temporary"),
            ("other/c.txt", "outside the prefix"),
        ],
    )
    .await;

    // The DataSync role lives in A; B's bucket policy grants it and A's identity.
    let role_arn = a.datasync_role("datasync").await;
    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": role_arn}, "Action": ["s3:ListBucket", "s3:PutObject"],
         "Resource": [format!("arn:aws:s3:::{dst}"), format!("arn:aws:s3:::{dst}/*")]},
        {"Effect": "Allow", "Principal": {"AWS": a.role_arn}, "Action": "s3:ListBucket",
         "Resource": format!("arn:aws:s3:::{dst}")}]});
    b.put_bucket_policy("us-west-2", &dst, &policy.to_string()).await;

    let cfg = || {
        S3Config::builder()
            .bucket_access_role_arn(&role_arn)
            .build()
            .expect("cfg")
    };
    let source = a
        .datasync("us-east-1")
        .create_location_s3()
        .s3_bucket_arn(format!("arn:aws:s3:::{src}"))
        .subdirectory("/data/")
        .s3_config(cfg())
        .send()
        .await
        .expect("source location")
        .location_arn
        .expect("arn");
    let ds = a.datasync("us-west-2");
    let destination = ds
        .create_location_s3()
        .s3_bucket_arn(format!("arn:aws:s3:::{dst}"))
        .subdirectory("/copy/")
        .s3_config(cfg())
        .send()
        .await
        .expect("destination location")
        .location_arn
        .expect("arn");
    assert!(source.contains(":us-east-1:") && destination.contains(":us-west-2:"));
    let task = ds
        .create_task()
        .source_location_arn(&source)
        .destination_location_arn(&destination)
        .excludes(
            FilterRule::builder()
                .filter_type(FilterType::SimplePattern)
                .value("*.tmp")
                .build(),
        )
        .send()
        .await
        .expect("task in the destination region with a source location of another region")
        .task_arn
        .expect("arn");
    let out = common::aws::run_task(&ds, &task, Duration::from_secs(60)).await;
    assert_eq!(out.status().map(|s| s.as_str()), Some("SUCCESS"), "{:?}", out.result());
    let keys = b.keys("us-west-2", &dst, "").await;
    let expected: Vec<(String, i64)> = vec![("copy/a.txt".into(), 5), ("copy/sub/b.txt".into(), 6)];
    assert_eq!(keys.into_iter().collect::<Vec<_>>(), expected);
    assert_eq!(out.files_transferred, 2);
    assert_eq!(out.bytes_transferred, 11);
    assert!(out.start_time().is_some());
}
