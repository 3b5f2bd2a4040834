//! Ferry's one error type. The variant name is the event reason and the metric label; the
//! message says what failed, on which resource, and what the user can do.

use std::time::Duration;

use crate::policy::MalformedPolicy;

/// Everything that can stop a reconcile.
#[derive(Debug, thiserror::Error, strum::IntoStaticStr)]
pub enum Error {
    /// The spec cannot work; the user must change it.
    #[error("invalid spec: {0}")]
    InvalidSpec(String),

    /// DataSync's quota of tasks per account and Region is reached: the transfer waits for a slot.
    #[error(
        "DataSync's quota of tasks is reached in account {account}, {region} ({tasks} tasks; quota {quota}): this transfer waits for a free task slot, first come first served ({place} of {waiting} waiting). Ask AWS for a higher \"Maximum number of tasks you can create\" (Service Quotas, AWS DataSync) and set --datasync-task-quota to it, or let one-off transfers give their task back (spec.task.release: AfterSuccess). AWS said: {message}"
    )]
    TaskQuotaReached {
        /// Account A.
        account: String,
        /// The Region of the tasks.
        region: String,
        /// The tasks listed there.
        tasks: usize,
        /// The quota Ferry knows.
        quota: u32,
        /// This transfer's place in the queue (1: first).
        place: usize,
        /// How many transfers wait.
        waiting: usize,
        /// AWS's message (or "not asked" for a transfer that waits behind another).
        message: String,
    },

    /// IAM's quota of roles per account is reached: Ferry cannot create the DataSync role.
    #[error(
        "IAM's quota of roles is reached in account {account}: Ferry cannot create the DataSync role {role}. Ask AWS for a higher \"Roles per account\" quota (up to 5,000), delete roles no longer used, or name an existing role in spec.dataSyncRole.arn; Ferry tries again every few minutes. AWS said: {message}"
    )]
    RoleQuotaReached {
        /// Account A.
        account: String,
        /// The role Ferry would create.
        role: String,
        /// AWS's message.
        message: String,
    },

    /// No `TransferPolicy` permits the transfer: a platform admin must grant it.
    #[error("not permitted: {0}")]
    NotPermitted(String),

    /// AWS refused an action after the IAM propagation window: permissions must be fixed.
    #[error(
        "access denied in account {account}: {action} on {resource} ({message}). Grant {action} on {resource} to the identity Ferry uses in that account; Ferry retries every few minutes"
    )]
    AccessDenied {
        /// Account the call went to.
        account: String,
        /// The AWS action, e.g. `s3:PutBucketPolicy`.
        action: String,
        /// The resource, e.g. a bucket ARN.
        resource: String,
        /// AWS's message.
        message: String,
    },

    /// AWS refused an action shortly after Ferry changed a role or policy: IAM is still
    /// propagating the change, so the call is retried soon.
    #[error(
        "waiting for IAM propagation: {action} on {resource} was refused right after a permission change ({message})"
    )]
    IamPropagation {
        /// The AWS action.
        action: String,
        /// The resource.
        resource: String,
        /// AWS's message.
        message: String,
    },

    /// AWS throttled the call, failed on its side, or could not be reached: retried with backoff.
    #[error("AWS is throttling or unavailable: {action} on {resource} ({message}); retrying")]
    AwsUnavailable {
        /// The AWS action.
        action: String,
        /// The resource.
        resource: String,
        /// AWS's message.
        message: String,
    },

    /// Another writer replaced a document between Ferry's read and its write (S3 has no
    /// conditional bucket-policy write): read again and retried soon.
    #[error("{resource} was written by someone else at the same time as Ferry's {action}: {message}; trying again")]
    ConcurrentWrite {
        /// The AWS action.
        action: String,
        /// The resource.
        resource: String,
        /// What the read-back showed.
        message: String,
    },

    /// AWS answered with an error that is neither access nor availability.
    #[error("{action} on {resource} failed: {code}: {message}")]
    AwsFailed {
        /// The AWS action.
        action: String,
        /// The resource.
        resource: String,
        /// AWS's error code.
        code: String,
        /// AWS's message.
        message: String,
    },

    /// AWS refused a request as invalid (its API model or a documented limit): the spec leads to
    /// something AWS cannot do, and sending it again cannot help.
    #[error("AWS refused {action} on {resource}: {code}: {message}{}; change the spec (Ferry tries again on a change, and every few minutes)", field.as_deref().map(|f| format!(" (from {f})")).unwrap_or_default())]
    AwsRejected {
        /// The AWS action.
        action: String,
        /// The resource.
        resource: String,
        /// AWS's error code.
        code: String,
        /// AWS's message, which names the member and the rule.
        message: String,
        /// The spec field the refused value comes from, when Ferry can tell.
        field: Option<String>,
    },

    /// A resource with Ferry's name exists but belongs to someone else: Ferry will not touch it.
    #[error("{what} {name} already exists and was not created by this transfer; {hint}")]
    NotOwned {
        /// What kind of resource.
        what: String,
        /// Its name or ARN.
        name: String,
        /// How to resolve it.
        hint: String,
    },

    /// The destination's bucket policy is not valid JSON: Ferry refuses to rewrite it.
    #[error("bucket policy of {bucket}: {source}")]
    MalformedBucketPolicy {
        /// The bucket.
        bucket: String,
        /// What is wrong with it.
        source: MalformedPolicy,
    },

    /// Adding this transfer to the destination bucket's policy would pass S3's 20 KB limit.
    #[error(
        "the policy of bucket {bucket} would grow to {size} bytes with this transfer, over S3's 20480-byte limit; remove statements of the bucket's policy, or send this transfer to another bucket"
    )]
    BucketPolicyFull {
        /// The bucket.
        bucket: String,
        /// The size the policy would have.
        size: usize,
    },

    /// A bucket's encryption is one DataSync cannot work with (SSE-C, the AWS managed key across
    /// accounts, a key named by alias across accounts).
    #[error("{message}")]
    EncryptionNotSupported {
        /// The bucket.
        bucket: String,
        /// What is wrong and how to fix it.
        message: String,
    },

    /// A KMS key policy Ferry must merge into is not a JSON policy document.
    #[error("key policy of {key}: {source}")]
    MalformedKeyPolicy {
        /// The key ARN.
        key: String,
        /// What is wrong with it.
        source: MalformedPolicy,
    },

    /// A reconcile did not finish in time (an AWS or Kubernetes call hung); it is dropped and
    /// tried again. Every step can be interrupted, as after a crash.
    #[error("reconcile did not finish within {0:?}; trying again")]
    ReconcileTimeout(Duration),

    /// A Kubernetes API call failed.
    #[error("Kubernetes API: {0}")]
    KubernetesApi(#[from] kube::Error),
}

impl Error {
    /// The reason used for events, conditions and metrics: the variant name (strum's
    /// `IntoStaticStr`).
    pub fn reason(&self) -> &'static str {
        self.into()
    }

    /// True when retrying soon cannot help and the resource is `Stalled`.
    pub fn is_stalled(&self) -> bool {
        matches!(
            self,
            Error::InvalidSpec(_)
                | Error::NotPermitted(_)
                | Error::RoleQuotaReached { .. }
                | Error::AwsRejected { .. }
                | Error::AccessDenied { .. }
                | Error::NotOwned { .. }
                | Error::MalformedBucketPolicy { .. }
                | Error::BucketPolicyFull { .. }
                | Error::EncryptionNotSupported { .. }
                | Error::MalformedKeyPolicy { .. }
        )
    }

    /// How long to wait before the next attempt; `None`: wait for a spec change. Stalled errors
    /// other than an invalid spec are fixed in AWS, where Ferry cannot watch, and are tried again
    /// after `stalled_retry`.
    pub fn retry_after(&self, stalled_retry: Duration) -> Option<Duration> {
        match self {
            // A policy change (watched) reconciles the transfer again.
            Error::InvalidSpec(_) | Error::NotPermitted(_) => None,
            // The first in the queue looks again (a slot Ferry does not free itself, a quota
            // raised); the others are woken when they are first (an hour as a fallback).
            Error::TaskQuotaReached { place: 1, .. } => Some(stalled_retry),
            Error::TaskQuotaReached { .. } => Some(Duration::from_secs(3600)),
            _ if self.is_stalled() => Some(stalled_retry),
            Error::IamPropagation { .. } => Some(Duration::from_secs(5)),
            Error::AwsUnavailable { .. }
            | Error::ConcurrentWrite { .. }
            | Error::KubernetesApi(_)
            | Error::ReconcileTimeout(_) => Some(Duration::from_secs(10)),
            _ => Some(Duration::from_secs(60)),
        }
    }
}

/// Result with Ferry's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<aws_smithy_types::error::operation::BuildError> for Error {
    fn from(err: aws_smithy_types::error::operation::BuildError) -> Self {
        Error::AwsFailed {
            action: "building an AWS request".into(),
            resource: "-".into(),
            code: "BuildError".into(),
            message: err.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_is_the_variant_name() {
        assert_eq!(Error::InvalidSpec("x".into()).reason(), "InvalidSpec");
        let timeout = Error::ReconcileTimeout(Duration::from_secs(1));
        assert_eq!(timeout.reason(), "ReconcileTimeout");
    }

    #[test]
    fn retries_follow_the_kind_of_error() {
        let stalled = Duration::from_secs(300);
        assert_eq!(Error::InvalidSpec("x".into()).retry_after(stalled), None);
        let denied = Error::AccessDenied {
            account: "1".into(),
            action: "a".into(),
            resource: "r".into(),
            message: "m".into(),
        };
        assert_eq!(denied.retry_after(stalled), Some(stalled));
        let propagating = Error::IamPropagation {
            action: "a".into(),
            resource: "r".into(),
            message: "m".into(),
        };
        assert_eq!(propagating.retry_after(stalled), Some(Duration::from_secs(5)));
        assert!(!propagating.is_stalled());
    }
}
