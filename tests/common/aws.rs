//! AWS side of the tests: accounts in the emulator (each test makes its own, through STS
//! AssumeRole), buckets and objects, and the emulator's fault switch.

use std::collections::BTreeMap;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_sdk_s3::primitives::ByteStream;

use super::{TestEnv, suffix};

/// Static credentials (what the operator gets in its environment).
#[derive(Clone, Debug)]
pub struct Creds {
    /// AWS_ACCESS_KEY_ID.
    pub access_key_id: String,
    /// AWS_SECRET_ACCESS_KEY.
    pub secret_access_key: String,
    /// AWS_SESSION_TOKEN.
    pub session_token: String,
}

/// One emulated AWS account with credentials of a role in it.
#[derive(Clone, Debug)]
pub struct TestAccount {
    /// 12-digit id.
    pub id: String,
    /// The ARN of the role the credentials belong to (with its path).
    pub role_arn: String,
    /// The credentials.
    pub creds: Creds,
    config: SdkConfig,
}

/// A fresh random account id (12 digits).
pub fn random_account_id() -> String {
    let mut digits = String::from("4");
    let seed = suffix();
    let mut n: u64 = u64::from_str_radix(&seed, 16).unwrap_or(7) ^ u64::from(std::process::id()) << 20;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    n = n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(nanos);
    for _ in 0..11 {
        n = n
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        digits.push(char::from(b'0' + ((n >> 33) % 10) as u8));
    }
    digits
}

fn config_with(env: &TestEnv, creds: Credentials) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(ferry::aws::http_client())
        .region(Region::new("us-east-1"))
        .endpoint_url(&env.aws_url)
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(creds))
        .build()
}

async fn assume(config: &SdkConfig, role_arn: &str) -> Creds {
    let out = aws_sdk_sts::Client::new(config)
        .assume_role()
        .role_arn(role_arn)
        .role_session_name("ferry-tests")
        .send()
        .await
        .unwrap_or_else(|e| panic!("AssumeRole {role_arn}: {e:?}"));
    let c = out.credentials().expect("credentials");
    Creds {
        access_key_id: c.access_key_id().to_string(),
        secret_access_key: c.secret_access_key().to_string(),
        session_token: c.session_token().to_string(),
    }
}

fn credentials(c: &Creds) -> Credentials {
    Credentials::new(
        c.access_key_id.clone(),
        c.secret_access_key.clone(),
        Some(c.session_token.clone()),
        None,
        "ferry-tests",
    )
}

/// The identity policy every test role gets: what the README's operator policy grants Ferry in
/// Account A plus what Account B's bucket-admin role needs, on any resource of the test's own
/// account. The emulator judges DataSync's access checks (the location access test) by the
/// caller's identity policies, as AWS does, so a role without them could not create a location.
pub const TEST_ROLE_POLICY: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Operator", "Effect": "Allow", "Resource": "*", "Action": [
      "iam:GetRole", "iam:CreateRole", "iam:TagRole", "iam:UpdateAssumeRolePolicy", "iam:GetRolePolicy",
      "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:DeleteRole", "iam:PassRole", "iam:CreateServiceLinkedRole",
      "iam:ListRolePolicies", "datasync:*", "s3:ListBucket", "s3:GetBucketLocation", "sts:AssumeRole",
      "s3:GetEncryptionConfiguration", "kms:DescribeKey", "s3:GetObject"]},
    {"Sid": "BucketAdmin", "Effect": "Allow", "Resource": "*", "Action": [
      "s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy",
      "s3:GetBucketOwnershipControls", "s3:PutBucketOwnershipControls",
      "s3:GetEncryptionConfiguration", "kms:GetKeyPolicy", "kms:PutKeyPolicy"]},
    {"Sid": "TestSetup", "Effect": "Allow", "Resource": "*", "Action": [
      "s3:CreateBucket", "s3:DeleteBucket", "s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:ListAllMyBuckets",
      "s3:GetObjectTagging", "s3:PutObjectTagging", "iam:ListRoles", "iam:ListRolePolicies"]}
  ]
}"#;

/// Makes account `id`, creates role `path` + `name` in it with [`TEST_ROLE_POLICY`], and
/// returns credentials of that role.
pub async fn account(env: &TestEnv, id: &str, path: &str, name: &str) -> TestAccount {
    let root = config_with(env, Credentials::new("test", "test", None, None, "ferry-tests"));
    let bootstrap = assume(&root, &format!("arn:aws:iam::{id}:role/ferry-test-bootstrap")).await;
    let boot_config = config_with(env, credentials(&bootstrap));
    let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})
    .to_string();
    let created = aws_sdk_iam::Client::new(&boot_config)
        .create_role()
        .path(path)
        .role_name(name)
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create role {name} in {id}: {e:?}"));
    let role_arn = created.role().expect("role").arn().to_string();
    aws_sdk_iam::Client::new(&boot_config)
        .put_role_policy()
        .role_name(name)
        .policy_name("ferry-test-identity")
        .policy_document(TEST_ROLE_POLICY)
        .send()
        .await
        .unwrap_or_else(|e| panic!("put the policy of role {name} in {id}: {e:?}"));
    let creds = assume(&root, &role_arn).await;
    TestAccount {
        id: id.to_string(),
        role_arn,
        config: config_with(env, credentials(&creds)),
        creds,
    }
}

impl TestAccount {
    /// Credentials of another session of this account's role: the same identity, another access
    /// key (the emulator's call log tells them apart with `key=`).
    pub async fn another_session(&self, env: &TestEnv) -> Creds {
        let root = config_with(env, Credentials::new("test", "test", None, None, "ferry-tests"));
        assume(&root, &self.role_arn).await
    }

    /// Creates a role DataSync may assume for this account's locations (trusted by
    /// `datasync.amazonaws.com`, allowed every S3 action, as the DataSync documentation's
    /// example role) and returns its ARN.
    pub async fn datasync_role(&self, name: &str) -> String {
        let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"Service": "datasync.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
        let arn = self
            .iam()
            .create_role()
            .role_name(name)
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("create role {name}: {e:?}"))
            .role
            .expect("role")
            .arn;
        let access = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Action": "s3:*", "Resource": "*"}]});
        self.iam()
            .put_role_policy()
            .role_name(name)
            .policy_name("s3")
            .policy_document(access.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("put the policy of role {name}: {e:?}"));
        arn
    }

    /// S3 client in a region.
    pub fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.config)
            .region(Region::new(region.to_string()))
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// IAM client.
    pub fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.config)
    }

    /// DataSync client in a region.
    pub fn datasync(&self, region: &str) -> aws_sdk_datasync::Client {
        let conf = aws_sdk_datasync::config::Builder::from(&self.config)
            .region(Region::new(region.to_string()))
            .build();
        aws_sdk_datasync::Client::from_conf(conf)
    }

    /// STS client.
    pub fn sts(&self) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::new(&self.config)
    }

    /// KMS client in a region.
    pub fn kms(&self, region: &str) -> aws_sdk_kms::Client {
        let conf = aws_sdk_kms::config::Builder::from(&self.config)
            .region(Region::new(region.to_string()))
            .build();
        aws_sdk_kms::Client::from_conf(conf)
    }

    /// Creates a customer managed KMS key (with KMS's default key policy, which lets the
    /// account's IAM policies grant its use) and returns its ARN.
    pub async fn kms_key(&self, region: &str) -> String {
        let out = self
            .kms(region)
            .create_key()
            .description("ferry test key")
            .send()
            .await
            .unwrap_or_else(|e| panic!("create key: {e:?}"));
        out.key_metadata().and_then(|m| m.arn()).expect("key arn").to_string()
    }

    /// The key policy of a key.
    pub async fn key_policy(&self, key_arn: &str) -> String {
        let region = key_arn.split(':').nth(3).expect("region");
        self.kms(region)
            .get_key_policy()
            .key_id(key_arn)
            .policy_name("default")
            .send()
            .await
            .unwrap_or_else(|e| panic!("get key policy: {e:?}"))
            .policy()
            .expect("policy")
            .to_string()
    }

    /// Replaces the key policy of a key.
    pub async fn put_key_policy(&self, key_arn: &str, policy: &str) {
        let region = key_arn.split(':').nth(3).expect("region");
        self.kms(region)
            .put_key_policy()
            .key_id(key_arn)
            .policy_name("default")
            .policy(policy)
            .send()
            .await
            .unwrap_or_else(|e| panic!("put key policy: {e:?}"));
    }

    /// Sets a bucket's default encryption to SSE-KMS with `key` (an ARN, alias or id).
    pub async fn encrypt_bucket(&self, region: &str, bucket: &str, key: &str) {
        use aws_sdk_s3::types::{
            ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
            ServerSideEncryptionRule,
        };
        let default = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::AwsKms)
            .kms_master_key_id(key)
            .build()
            .expect("default");
        let config = ServerSideEncryptionConfiguration::builder()
            .rules(
                ServerSideEncryptionRule::builder()
                    .apply_server_side_encryption_by_default(default)
                    .build(),
            )
            .build()
            .expect("config");
        self.s3(region)
            .put_bucket_encryption()
            .bucket(bucket)
            .server_side_encryption_configuration(config)
            .send()
            .await
            .unwrap_or_else(|e| panic!("encrypt {bucket}: {e:?}"));
    }

    /// The KMS key an object is stored with, if any.
    pub async fn object_key_id(&self, region: &str, bucket: &str, key: &str) -> Option<String> {
        let out = self
            .s3(region)
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("head {bucket}/{key}: {e:?}"));
        out.ssekms_key_id().map(str::to_string)
    }

    /// How many executions DataSync lists for a task of this account.
    pub async fn executions(&self, region: &str, task: &str) -> usize {
        self.datasync(region)
            .list_task_executions()
            .task_arn(task)
            .send()
            .await
            .unwrap_or_else(|e| panic!("list the executions of {task}: {e:?}"))
            .task_executions()
            .len()
    }

    /// Creates a bucket in a region.
    pub async fn bucket(&self, region: &str, name: &str) {
        let mut req = self.s3(region).create_bucket().bucket(name);
        if region != "us-east-1" {
            req = req.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        req.send()
            .await
            .unwrap_or_else(|e| panic!("create bucket {name}: {e:?}"));
    }

    /// Puts objects (key → body).
    pub async fn put(&self, region: &str, bucket: &str, objects: &[(&str, &str)]) {
        let s3 = self.s3(region);
        for (key, body) in objects {
            s3.put_object()
                .bucket(bucket)
                .key(*key)
                .body(ByteStream::from(body.as_bytes().to_vec()))
                .send()
                .await
                .unwrap_or_else(|e| panic!("put {bucket}/{key}: {e:?}"));
        }
    }

    /// Every key under a prefix with its size.
    pub async fn keys(&self, region: &str, bucket: &str, prefix: &str) -> BTreeMap<String, i64> {
        let mut out = BTreeMap::new();
        let mut token = None;
        loop {
            let page = self
                .s3(region)
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .send()
                .await
                .unwrap_or_else(|e| panic!("list {bucket}: {e:?}"));
            for o in page.contents() {
                out.insert(o.key().unwrap_or_default().to_string(), o.size().unwrap_or_default());
            }
            match page.next_continuation_token() {
                Some(t) => token = Some(t.to_string()),
                None => return out,
            }
        }
    }

    /// The bucket policy text, if any.
    pub async fn bucket_policy(&self, region: &str, bucket: &str) -> Option<String> {
        match self.s3(region).get_bucket_policy().bucket(bucket).send().await {
            Ok(out) => out.policy().map(str::to_string),
            Err(_) => None,
        }
    }

    /// Writes a bucket policy.
    pub async fn put_bucket_policy(&self, region: &str, bucket: &str, policy: &str) {
        self.s3(region)
            .put_bucket_policy()
            .bucket(bucket)
            .policy(policy)
            .send()
            .await
            .unwrap_or_else(|e| panic!("put policy on {bucket}: {e:?}"));
    }

    /// The bucket's Object Ownership (`Unset` when it has none).
    pub async fn ownership(&self, region: &str, bucket: &str) -> String {
        match self
            .s3(region)
            .get_bucket_ownership_controls()
            .bucket(bucket)
            .send()
            .await
        {
            Ok(out) => out
                .ownership_controls()
                .and_then(|c| c.rules().first())
                .map(|r| r.object_ownership().as_str().to_string())
                .unwrap_or_else(|| "Unset".into()),
            Err(_) => "Unset".into(),
        }
    }

    /// Sets the bucket's Object Ownership.
    pub async fn set_ownership(&self, region: &str, bucket: &str, value: &str) {
        let rule = aws_sdk_s3::types::OwnershipControlsRule::builder()
            .object_ownership(aws_sdk_s3::types::ObjectOwnership::from(value))
            .build()
            .expect("rule");
        let controls = aws_sdk_s3::types::OwnershipControls::builder()
            .rules(rule)
            .build()
            .expect("controls");
        self.s3(region)
            .put_bucket_ownership_controls()
            .bucket(bucket)
            .ownership_controls(controls)
            .send()
            .await
            .expect("put ownership controls");
    }

    /// Names of the IAM roles in the account.
    pub async fn roles(&self) -> Vec<String> {
        let out = self.iam().list_roles().send().await.expect("list roles");
        out.roles().iter().map(|r| r.role_name().to_string()).collect()
    }

    /// ARNs of the DataSync locations in a region.
    pub async fn locations(&self, region: &str) -> Vec<String> {
        let out = self
            .datasync(region)
            .list_locations()
            .send()
            .await
            .expect("list locations");
        out.locations()
            .iter()
            .filter_map(|l| l.location_arn().map(str::to_string))
            .collect()
    }

    /// ARNs of the DataSync tasks in a region.
    pub async fn tasks(&self, region: &str) -> Vec<String> {
        let out = self.datasync(region).list_tasks().send().await.expect("list tasks");
        out.tasks()
            .iter()
            .filter_map(|t| t.task_arn().map(str::to_string))
            .collect()
    }
}

/// A raw HTTP call to the emulator's control endpoints.
pub fn emulator_call(env: &TestEnv, method: &str, path: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let port: u16 = env
        .aws_url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("emulator port");
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the emulator");
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    response
}

/// A fault rule in the emulator, removed when dropped (only this rule: the server is shared).
pub struct Fault {
    env: &'static TestEnv,
    id: String,
}

/// Adds a fault rule (see tests/emulator/README.md) and returns its guard.
pub fn fault(env: &'static TestEnv, rule: serde_json::Value) -> Fault {
    let answer = emulator_call(env, "POST", "/ferry-emulator/faults", &rule.to_string());
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let parsed: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("fault answer: {answer}"));
    let id = parsed["id"]
        .as_str()
        .unwrap_or_else(|| panic!("fault answer: {answer}"))
        .to_string();
    Fault { env, id }
}

impl Fault {
    /// How often the rule fired so far (0 once removed).
    pub fn fired(&self) -> u64 {
        let answer = emulator_call(self.env, "GET", "/ferry-emulator/faults", "");
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        let parsed: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        parsed["faults"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["id"] == self.id.as_str())
            .and_then(|f| f["fired"].as_u64())
            .unwrap_or(0)
    }
}

impl Drop for Fault {
    fn drop(&mut self) {
        emulator_call(self.env, "DELETE", &format!("/ferry-emulator/faults/{}", self.id), "");
    }
}

/// The AWS calls the emulator saw, filtered (`account=..&bucket=..&service=..&operation=..`).
pub fn calls(env: &TestEnv, query: &str) -> Vec<serde_json::Value> {
    let answer = emulator_call(env, "GET", &format!("/ferry-emulator/calls?{query}"), "");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let parsed: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("calls answer: {answer}"));
    parsed["calls"].as_array().cloned().unwrap_or_default()
}

/// Starts an execution of `task` directly (as its DataSync schedule would, without Ferry) and
/// waits until it ends, SUCCESS or ERROR; its last description.
/// A stranger (a new account) creates bucket `name`, taken over after its owner deleted it, and
/// opens it to `role` for every S3 action: the case the roles' `s3:ResourceAccount` guard is for.
pub async fn stranger_takes(env: &TestEnv, region: &str, name: &str, role: &str) -> TestAccount {
    let c = account(env, &random_account_id(), "/", "stranger").await;
    c.bucket(region, name).await;
    let open = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": role}, "Action": "s3:*",
        "Resource": [format!("arn:aws:s3:::{name}"), format!("arn:aws:s3:::{name}/*")]}]});
    c.put_bucket_policy(region, name, &open.to_string()).await;
    c
}

/// Runs a task as its schedule would, without Ferry, and checks that DataSync ended it ERROR
/// for lack of access.
pub async fn run_task_refused(client: &aws_sdk_datasync::Client, task: &str, timeout: std::time::Duration) {
    let ended = run_task(client, task, timeout).await;
    assert_eq!(ended.status().map(|s| s.as_str()), Some("ERROR"));
    let detail = ended
        .result()
        .and_then(|r| r.error_detail())
        .unwrap_or_default()
        .to_string();
    assert!(
        detail.contains("AccessDenied") || detail.contains("not authorized"),
        "{detail}"
    );
}

pub async fn run_task(
    ds: &aws_sdk_datasync::Client,
    task: &str,
    timeout: std::time::Duration,
) -> aws_sdk_datasync::operation::describe_task_execution::DescribeTaskExecutionOutput {
    let exec = ds
        .start_task_execution()
        .task_arn(task)
        .send()
        .await
        .expect("start the task")
        .task_execution_arn
        .expect("execution arn");
    super::wait_for("the execution to end", timeout, || {
        let (ds, exec) = (ds.clone(), exec.clone());
        async move {
            let out = ds
                .describe_task_execution()
                .task_execution_arn(&exec)
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
            match out.status().map(|s| s.as_str()) {
                Some("SUCCESS" | "ERROR") => Ok(out),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await
}
