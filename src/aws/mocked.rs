//! Unit tests' AWS: an [`Account`] whose clients answer from `aws-smithy-mocks` rules instead
//! of the network, so the I/O branches of `aws::*` (an entity that exists, a quota, a listing
//! over several pages) are tested without the emulator.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client};
use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
use aws_smithy_types::error::ErrorMetadata;
use aws_smithy_types::retry::RetryConfig;

use super::Account;

/// An account answering from mock rules.
pub struct Mocked {
    /// Its clients (`iam`, `datasync`, `s3`, ...) all answer from the rules.
    pub account: Account,
}

impl Mocked {
    /// An account whose every call is answered by the first matching rule (`MatchAny`) or the
    /// rules in order (`Sequential`). No retries: each rule answers exactly one call.
    pub fn new(mode: RuleMode, rules: &[&Rule]) -> Self {
        let mut interceptor = MockResponseInterceptor::new().rule_mode(mode);
        for rule in rules {
            interceptor = interceptor.with_rule(rule);
        }
        let config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                None,
                None,
                "mocked",
            )))
            .http_client(create_mock_http_client())
            .retry_config(RetryConfig::disabled())
            .build();
        Self {
            account: Account {
                key: "mocked".into(),
                config,
                interceptor: SharedInterceptor::new(interceptor),
                force_path_style: true,
            },
        }
    }
}

/// The error metadata AWS would send: its code and message.
pub fn error_meta(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}
