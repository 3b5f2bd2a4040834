//! Reading AWS SDK errors: what kind of failure it is (missing, denied, throttled, ...),
//! independent of the service that returned it.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// What kind of failure an AWS error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The resource does not exist.
    NotFound,
    /// The caller may not do this.
    AccessDenied,
    /// A policy names a principal AWS does not know (yet): typical right after a role is created.
    InvalidPrincipal,
    /// AWS asked to slow down.
    Throttled,
    /// AWS failed on its side, or no usable answer came back.
    Unavailable,
    /// AWS refused the request itself (its API model, a documented limit): sending it again
    /// cannot help.
    Invalid,
    /// Anything else.
    Other,
}

/// An AWS error, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The kind.
    pub kind: FailureKind,
    /// AWS's error code (or a description of the transport failure).
    pub code: String,
    /// AWS's message.
    pub message: String,
}

impl Failure {
    /// True when the resource is missing.
    pub fn is_not_found(&self) -> bool {
        self.kind == FailureKind::NotFound
    }
}

const NOT_FOUND_CODES: &[&str] = &[
    "NoSuchEntity",
    "NoSuchBucket",
    "NoSuchBucketPolicy",
    "OwnershipControlsNotFoundError",
    "NotFound",
    "NoSuchKey",
    "ResourceNotFoundException",
];
const ACCESS_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AllAccessDisabled",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
];
const THROTTLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "SlowDown",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
];
const UNAVAILABLE_CODES: &[&str] = &[
    "InternalFailure",
    "InternalError",
    "InternalException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
    "ExpiredToken",
    "ExpiredTokenException",
];

const INVALID_CODES: &[&str] = &[
    "ValidationException",
    "ValidationError",
    "SerializationException",
    "InvalidParameterValue",
    "InvalidInput",
    "MalformedPolicyDocument",
    "MalformedPolicy",
    "MalformedXML",
    "InvalidArgument",
    "PolicyTooLarge",
    "LimitExceeded",
];

/// Classifies an error from its code, message and HTTP status (pure; unit-tested).
pub fn classify_parts(code: &str, message: &str, http_status: Option<u16>) -> FailureKind {
    let lower = message.to_ascii_lowercase();
    if NOT_FOUND_CODES.contains(&code) || http_status == Some(404) && code.is_empty() {
        return FailureKind::NotFound;
    }
    if ACCESS_CODES.contains(&code) {
        return FailureKind::AccessDenied;
    }
    if THROTTLE_CODES.contains(&code) || http_status == Some(429) {
        return FailureKind::Throttled;
    }
    if UNAVAILABLE_CODES.contains(&code) || http_status.is_some_and(|s| s >= 500) {
        return FailureKind::Unavailable;
    }
    if code == "MalformedPolicy" && lower.contains("invalid principal") {
        return FailureKind::InvalidPrincipal;
    }
    if INVALID_CODES.contains(&code) {
        return FailureKind::Invalid;
    }
    // DataSync reports most problems as InvalidRequestException and says what in the message.
    if code == "InvalidRequestException" {
        if lower.contains("access denied")
            || lower.contains("access test failed")
            || lower.contains("not authorized")
            || lower.contains("accessdenied")
            || lower.contains("unable to assume")
        {
            return FailureKind::AccessDenied;
        }
        if lower.contains("not found") || lower.contains("does not exist") || lower.contains("not exist") {
            return FailureKind::NotFound;
        }
    }
    FailureKind::Other
}

impl<E> From<SdkError<E, Response>> for Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    fn from(err: SdkError<E, Response>) -> Self {
        classify(&err)
    }
}

impl From<aws_smithy_types::error::operation::BuildError> for Failure {
    /// A request Ferry could not even build (a required field missing): a bug, never retried
    /// differently from any other failure.
    fn from(err: aws_smithy_types::error::operation::BuildError) -> Self {
        Failure {
            kind: FailureKind::Other,
            code: "BuildError".into(),
            message: err.to_string(),
        }
    }
}

/// Reads any AWS SDK error.
pub fn classify<E>(err: &SdkError<E, Response>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("").to_string();
            let message = service
                .err()
                .message()
                .map(str::to_string)
                .unwrap_or_else(|| service.err().to_string());
            let status = service.raw().status().as_u16();
            Failure {
                kind: classify_parts(&code, &message, Some(status)),
                code: if code.is_empty() {
                    format!("HTTP {status}")
                } else {
                    code
                },
                message,
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => Failure {
            kind: FailureKind::Unavailable,
            code: "NoResponse".into(),
            message: error_chain(err),
        },
        other => Failure {
            kind: FailureKind::Other,
            code: "RequestNotSent".into(),
            message: error_chain(other),
        },
    }
}

/// An AWS call that failed, and which action it was (for the condition and the event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The IAM action of the call, e.g. `iam:CreateRole`.
    pub action: &'static str,
    /// The failure, read.
    pub failure: Failure,
}

impl Refused {
    /// Reads an SDK error of the call `action`.
    pub fn new<E>(action: &'static str, err: &SdkError<E, Response>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        Self {
            action,
            failure: classify(err),
        }
    }
}

/// An error and its sources on one line.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        assert_eq!(classify_parts("NoSuchEntity", "", Some(404)), FailureKind::NotFound);
        assert_eq!(
            classify_parts("NoSuchBucketPolicy", "", Some(404)),
            FailureKind::NotFound
        );
        assert_eq!(classify_parts("AccessDenied", "", Some(403)), FailureKind::AccessDenied);
        assert_eq!(
            classify_parts("ThrottlingException", "", Some(400)),
            FailureKind::Throttled
        );
        assert_eq!(classify_parts("", "", Some(503)), FailureKind::Unavailable);
        assert_eq!(
            classify_parts("MalformedPolicy", "Invalid principal in policy", Some(400)),
            FailureKind::InvalidPrincipal
        );
        assert_eq!(
            classify_parts(
                "InvalidRequestException",
                "DataSync location access test failed: could not perform s3:ListObjectsV2 on bucket b. Access denied.",
                Some(400)
            ),
            FailureKind::AccessDenied
        );
        assert_eq!(
            classify_parts("InvalidRequestException", "Task arn:... not found", Some(400)),
            FailureKind::NotFound
        );
        assert_eq!(
            classify_parts("InvalidRequestException", "bad filter", Some(400)),
            FailureKind::Other
        );
        for code in [
            "ValidationException",
            "ValidationError",
            "MalformedPolicy",
            "PolicyTooLarge",
        ] {
            assert_eq!(classify_parts(code, "", Some(400)), FailureKind::Invalid, "{code}");
        }
    }
}
