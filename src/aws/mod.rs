//! AWS access: one SDK configuration per identity (the operator's own, `source.roleArn`,
//! Account B's role), assumed roles cached until their credentials expire, and clients per
//! service and region. `AWS_ENDPOINT_URL` (and the per-service variants) are honoured by the
//! SDK's configuration loader, so the same binary runs against a local emulator.

pub mod budget;
pub mod calls;
pub mod datasync;
pub mod error;
pub mod iam;
#[cfg(test)]
pub mod mocked;
pub mod report;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
use tokio::sync::Mutex;

use crate::error::{Error, Result};
use crate::metrics::SharedMetrics;
pub use error::{Failure, FailureKind, Refused, classify};

/// Settings of the AWS side, from the command line.
#[derive(Clone, Debug, Default)]
pub struct AwsSettings {
    /// Use path-style S3 addressing (needed for emulators on `localhost`).
    pub force_path_style: bool,
    /// Session name used when assuming roles.
    pub session_name: String,
    /// Requests per second per service and credentials, over [`budget::DEFAULT_RATES`].
    pub rates: Vec<(String, f64)>,
    /// How long an endpoint may take to answer once a request is sent (`--aws-read-timeout`).
    pub read_timeout: Duration,
    /// Closed while this replica does not hold the leader lease: no AWS request is sent then.
    pub fence: crate::leader::Fence,
}

/// The identity behind one set of credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallerIdentity {
    /// The account id.
    pub account: String,
    /// The ARN STS reports (`...:assumed-role/...` for sessions).
    pub arn: String,
    /// The ARN to use as a policy principal: an assumed-role session mapped back to its role
    /// ARN, path included.
    pub principal_arn: String,
}

/// One client constructor per service: the account's credentials, the region and the call
/// observer.
macro_rules! clients {
    ($($(#[$doc:meta])* $name:ident: $sdk:ident),+ $(,)?) => {$(
        $(#[$doc])*
        pub fn $name(&self, region: &str) -> $sdk::Client {
            let conf = $sdk::config::Builder::from(&self.config)
                .region(Region::new(region.to_string()))
                .interceptor(self.interceptor.clone())
                .build();
            $sdk::Client::from_conf(conf)
        }
    )+};
}

/// Credentials of one identity, and the clients built from them.
#[derive(Clone, Debug)]
pub struct Account {
    key: String,
    config: SdkConfig,
    interceptor: SharedInterceptor,
    force_path_style: bool,
}

impl Account {
    clients! {
        /// IAM client (a global service; `region` only picks the endpoint partition).
        iam: aws_sdk_iam,
        /// STS client.
        sts: aws_sdk_sts,
        /// DataSync client for a region.
        datasync: aws_sdk_datasync,
        /// KMS client for a region.
        kms: aws_sdk_kms,
    }

    /// S3 client for a region.
    pub fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.config)
            .region(Region::new(region.to_string()))
            .force_path_style(self.force_path_style)
            .interceptor(self.interceptor.clone())
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }
}

/// All AWS identities the operator uses, built lazily and cached.
pub struct Aws {
    base: SdkConfig,
    settings: AwsSettings,
    interceptor: SharedInterceptor,
    assumed: Mutex<HashMap<String, SdkConfig>>,
    identities: Mutex<HashMap<String, (CallerIdentity, Instant)>>,
}

const IDENTITY_TTL: Duration = Duration::from_secs(600);
/// How long connecting to an AWS endpoint may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl Aws {
    /// Loads the default credential chain (IRSA, EKS Pod Identity, environment, IMDS).
    pub async fn new(settings: AwsSettings, metrics: SharedMetrics) -> Self {
        let budget = std::sync::Arc::new(budget::Budget::new(&settings.rates, metrics.clone()));
        // A call waiting for the request budget sends nothing yet: the SDK's stalled-stream
        // protection (meant for large streaming bodies) must not take the wait for a stall.
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(budget::budgeted(http_client(), budget.clone()))
            .stalled_stream_protection(aws_config::stalled_stream_protection::StalledStreamProtectionConfig::disabled())
            // The budget waits before the connector sends; these bound the call itself, so a
            // connection that never answers fails (and is retried) instead of holding a
            // reconcile forever.
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .read_timeout(settings.read_timeout)
                    .build(),
            );
        if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none() {
            loader = loader.region(Region::new("us-east-1"));
        }
        let base = loader.load().await;
        let fence = settings.fence.clone();
        Self {
            base,
            settings,
            interceptor: SharedInterceptor::new(calls::CallObserver::new(metrics, budget, fence)),
            assumed: Mutex::new(HashMap::new()),
            identities: Mutex::new(HashMap::new()),
        }
    }

    fn account(&self, key: String, config: SdkConfig) -> Account {
        Account {
            key,
            config,
            interceptor: self.interceptor.clone(),
            force_path_style: self.settings.force_path_style,
        }
    }

    async fn assume(&self, key: &str, role_arn: &str, from: &SdkConfig) -> SdkConfig {
        let mut cache = self.assumed.lock().await;
        if let Some(config) = cache.get(key) {
            return config.clone();
        }
        let provider = aws_config::sts::AssumeRoleProvider::builder(role_arn)
            .session_name(self.settings.session_name.clone())
            .configure(from)
            .build()
            .await;
        let config = from
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(CachedCredentials::new(provider)))
            .build();
        cache.insert(key.to_string(), config.clone());
        config
    }

    /// Account A: the operator's own identity, or `role_arn` assumed from it.
    pub async fn account_a(&self, role_arn: Option<&str>) -> Account {
        match role_arn {
            None => self.account("default".into(), self.base.clone()),
            Some(arn) => {
                let key = format!("a|{arn}");
                let config = self.assume(&key, arn, &self.base).await;
                self.account(key, config)
            }
        }
    }

    /// Account B: `role_arn` assumed from Account A's identity.
    pub async fn account_b(&self, account_a: &Account, role_arn: &str) -> Account {
        let key = format!("{}|b|{role_arn}", account_a.key);
        let config = self.assume(&key, role_arn, &account_a.config).await;
        self.account(key, config)
    }

    /// Who `account` is (cached for ten minutes): STS GetCallerIdentity, with an assumed-role
    /// session mapped back to its role ARN through IAM GetRole so the path is right.
    pub async fn identity(&self, account: &Account, region: &str) -> Result<CallerIdentity> {
        if let Some((identity, at)) = self.identities.lock().await.get(&account.key)
            && at.elapsed() < IDENTITY_TTL
        {
            return Ok(identity.clone());
        }
        let out = account.sts(region).get_caller_identity().send().await.map_err(|e| {
            aws_error(
                &classify(&e),
                "(own account)",
                "sts:GetCallerIdentity",
                "caller identity",
                false,
            )
        })?;
        let arn = out.arn().unwrap_or_default().to_string();
        let account_id = out.account().unwrap_or_default().to_string();
        let principal_arn = match assumed_role_name(&arn) {
            Some(role) => match account.iam(region).get_role().role_name(role).send().await {
                Ok(found) => found
                    .role()
                    .map(|r| r.arn().to_string())
                    .unwrap_or_else(|| plain_role_arn(&arn, role)),
                // Without iam:GetRole the path is unknown; the plain ARN is right for roles at `/`.
                Err(_) => plain_role_arn(&arn, role),
            },
            None => arn.clone(),
        };
        let identity = CallerIdentity {
            account: account_id,
            arn,
            principal_arn,
        };
        self.identities
            .lock()
            .await
            .insert(account.key.clone(), (identity.clone(), Instant::now()));
        Ok(identity)
    }
}

/// The SDK's HTTP client with rustls on `ring` (the only crypto provider in the build: the
/// `rustls-ring` feature of `aws-smithy-http-client` in Cargo.toml).
pub fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .build_https()
}

/// Credentials of an assumed role, kept until five minutes before they expire. The SDK's
/// identity cache already caches per client configuration; this also covers the provider
/// chains built on top (Account B's role is assumed with Account A's assumed credentials).
#[derive(Debug)]
struct CachedCredentials {
    inner: aws_config::sts::AssumeRoleProvider,
    current: Mutex<Option<aws_credential_types::Credentials>>,
}

impl CachedCredentials {
    const REFRESH_BEFORE: Duration = Duration::from_secs(300);

    fn new(inner: aws_config::sts::AssumeRoleProvider) -> Self {
        Self {
            inner,
            current: Mutex::new(None),
        }
    }
}

impl aws_credential_types::provider::ProvideCredentials for CachedCredentials {
    fn provide_credentials<'a>(&'a self) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::new(async move {
            let mut current = self.current.lock().await;
            if let Some(creds) = current.as_ref() {
                let fresh = creds
                    .expiry()
                    .is_none_or(|at| at > std::time::SystemTime::now() + Self::REFRESH_BEFORE);
                if fresh {
                    return Ok(creds.clone());
                }
            }
            let creds = self.inner.provide_credentials().await?;
            *current = Some(creds.clone());
            Ok(creds)
        })
    }
}

/// The role name of an STS assumed-role session ARN
/// (`arn:aws:sts::1:assumed-role/NAME/SESSION` → `NAME`).
pub fn assumed_role_name(arn: &str) -> Option<&str> {
    let (_, rest) = arn.split_once(":assumed-role/")?;
    rest.split('/').next().filter(|n| !n.is_empty())
}

fn plain_role_arn(session_arn: &str, role: &str) -> String {
    let partition = crate::naming::arn_partition(session_arn).unwrap_or("aws");
    let account = crate::naming::arn_account(session_arn).unwrap_or_default();
    format!("arn:{partition}:iam::{account}:role/{role}")
}

/// Turns a read AWS failure into Ferry's error, knowing the account, action and resource, and
/// whether Ferry changed a permission moments ago (then access errors are propagation).
pub fn aws_error(failure: &Failure, account: &str, action: &str, resource: &str, propagating: bool) -> Error {
    let (action, resource, message) = (action.to_string(), resource.to_string(), failure.message.clone());
    match failure.kind {
        FailureKind::AccessDenied | FailureKind::InvalidPrincipal if propagating => Error::IamPropagation {
            action,
            resource,
            message,
        },
        FailureKind::AccessDenied => Error::AccessDenied {
            account: account.to_string(),
            action,
            resource,
            message,
        },
        FailureKind::Throttled | FailureKind::Unavailable => Error::AwsUnavailable {
            action,
            resource,
            message,
        },
        FailureKind::Invalid => Error::AwsRejected {
            field: spec_field(&action, &message).map(str::to_string),
            action,
            resource,
            code: failure.code.clone(),
            message,
        },
        FailureKind::NotFound | FailureKind::InvalidPrincipal | FailureKind::Other => Error::AwsFailed {
            action,
            resource,
            code: failure.code.clone(),
            message,
        },
    }
}

/// The spec field behind the member AWS names in a validation message (`... at 'subdirectory'
/// failed to satisfy constraint ...`), for the requests Ferry builds from the spec (pure).
pub fn spec_field(action: &str, message: &str) -> Option<&'static str> {
    let member = message.split(" at '").nth(1)?.split('\'').next()?;
    let top = member.split('.').next().unwrap_or(member);
    Some(match (action, top) {
        ("datasync:CreateLocationS3", "subdirectory") => "spec.source.prefix or spec.destination.prefix",
        ("datasync:ListLocations", "filters") => "spec.source.prefix or spec.destination.prefix",
        (_, "name") if action.starts_with("datasync:") => "metadata.namespace and metadata.name (the task name)",
        (_, "tags") => "metadata.namespace and metadata.name (the ferry.dev/resource tag)",
        (_, "includes") => "spec.task.includes",
        (_, "excludes") => "spec.task.excludes",
        (_, "schedule") => "spec.schedule",
        (_, "cloudWatchLogGroupArn") => "spec.task.logGroupArn",
        (_, "taskReportConfig") => "spec.task.report",
        (_, "options") => "spec.task",
        ("iam:CreateRole", "roleName") => "spec.dataSyncRole.name",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_messages_point_at_the_spec_field() {
        let msg = "1 validation error detected: Value '/a=b/' at 'subdirectory' failed to satisfy constraint: Member must satisfy regular expression pattern";
        assert_eq!(
            spec_field("datasync:CreateLocationS3", msg),
            Some("spec.source.prefix or spec.destination.prefix")
        );
        assert_eq!(
            spec_field(
                "datasync:CreateTask",
                "Value 'x' at 'schedule.scheduleExpression' failed"
            ),
            Some("spec.schedule")
        );
        assert_eq!(spec_field("datasync:CreateTask", "no member named"), None);
        let f = Failure {
            kind: FailureKind::Invalid,
            code: "ValidationException".into(),
            message: msg.into(),
        };
        let e = aws_error(&f, "1", "datasync:CreateLocationS3", "s3://b/a=b/", false);
        assert!(e.is_stalled());
        assert_eq!(e.reason(), "AwsRejected");
        assert!(e.to_string().contains("spec.source.prefix"), "{e}");
    }

    #[test]
    fn assumed_role_sessions_map_to_roles() {
        let arn = "arn:aws:sts::111111111111:assumed-role/ferry-operator/i-123";
        assert_eq!(assumed_role_name(arn), Some("ferry-operator"));
        assert_eq!(
            plain_role_arn(arn, "ferry-operator"),
            "arn:aws:iam::111111111111:role/ferry-operator"
        );
        assert_eq!(assumed_role_name("arn:aws:iam::1:user/bob"), None);
    }

    #[test]
    fn access_errors_inside_the_window_are_propagation() {
        let f = Failure {
            kind: FailureKind::AccessDenied,
            code: "AccessDenied".into(),
            message: "no".into(),
        };
        assert!(matches!(
            aws_error(&f, "1", "s3:PutBucketPolicy", "b", true),
            Error::IamPropagation { .. }
        ));
        let e = aws_error(&f, "222222222222", "s3:PutBucketPolicy", "arn:aws:s3:::b", false);
        assert!(e.is_stalled());
        let text = e.to_string();
        assert!(
            text.contains("222222222222") && text.contains("s3:PutBucketPolicy") && text.contains("arn:aws:s3:::b")
        );
    }
}
