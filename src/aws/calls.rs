//! An SDK interceptor on every AWS client: counts calls by service, operation and outcome, and
//! (for crash tests only, in debug builds: never in a release build, the image's and `make
//! install`'s) aborts the process right after a chosen AWS call succeeded.

#[cfg(debug_assertions)]
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::metrics::SharedMetrics;

/// Environment variable naming an AWS operation after whose success the process aborts, as a
/// crash would: `CreateTask`, or `CreateLocationS3#2` for its second success. Test use only:
/// read by debug builds only.
#[cfg(debug_assertions)]
pub const ABORT_AFTER_ENV: &str = "FERRY_TEST_ABORT_AFTER";

#[cfg(debug_assertions)]
#[derive(Debug)]
struct AbortPlan {
    operation: String,
    occurrence: usize,
    seen: AtomicUsize,
}

#[cfg(debug_assertions)]
impl AbortPlan {
    fn from_env() -> Option<Self> {
        let raw = std::env::var(ABORT_AFTER_ENV).ok()?;
        let (operation, occurrence) = match raw.split_once('#') {
            Some((op, n)) => (op.to_string(), n.parse().unwrap_or(1)),
            None => (raw.clone(), 1),
        };
        Some(Self {
            operation,
            occurrence,
            seen: AtomicUsize::new(0),
        })
    }
}

/// Counts every AWS call in the metrics, and tells the request budget about throttling.
#[derive(Debug)]
pub struct CallObserver {
    metrics: SharedMetrics,
    budget: std::sync::Arc<super::budget::Budget>,
    #[cfg(debug_assertions)]
    abort: Option<AbortPlan>,
    fence: crate::leader::Fence,
}

impl CallObserver {
    /// An observer reporting into `metrics` and `budget`.
    pub fn new(
        metrics: SharedMetrics,
        budget: std::sync::Arc<super::budget::Budget>,
        fence: crate::leader::Fence,
    ) -> Self {
        Self {
            metrics,
            budget,
            #[cfg(debug_assertions)]
            abort: AbortPlan::from_env(),
            fence,
        }
    }
}

fn looks_throttled(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    ["Throttl", "SlowDown", "TooManyRequests", "RequestLimitExceeded"]
        .iter()
        .any(|needle| text.contains(needle))
}

impl Intercept for CallObserver {
    fn name(&self) -> &'static str {
        "FerryCallObserver"
    }

    /// Every attempt, once signed, just before it is sent: a replica whose lease's renew deadline
    /// passed sends nothing (another replica may lead by now). After signing, not before, so a
    /// request that passed the fence carries a signing time (X-Amz-Date) from before the
    /// deadline, even if the process is paused between this check and the send.
    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.fence.check()
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg
            .load::<Metadata>()
            .map(|m| (m.service().to_string(), m.name().to_string()))
            .unwrap_or_else(|| ("unknown".into(), "unknown".into()));
        let succeeded = matches!(context.output_or_error(), Some(Ok(_)));
        let outcome = if succeeded {
            "success"
        } else {
            match context.response() {
                None => "no_response",
                Some(r) if r.status().as_u16() == 429 => "throttled",
                Some(r) if r.body().bytes().is_some_and(looks_throttled) => "throttled",
                Some(r) if r.status().is_server_error() => "server_error",
                Some(_) => "client_error",
            }
        };
        self.metrics.aws_call(&service, &operation, outcome);
        if outcome == "throttled"
            && let Some(key) =
                super::budget::request_key(context.request().and_then(|r| r.headers().get("authorization")))
        {
            self.budget.throttled(&key);
        }
        #[cfg(debug_assertions)]
        self.abort_if_planned(&operation, succeeded);
        Ok(())
    }
}

#[cfg(debug_assertions)]
impl CallObserver {
    /// The crash tests' abort right after the planned success of `operation`.
    fn abort_if_planned(&self, operation: &str, succeeded: bool) {
        if let Some(plan) = &self.abort
            && succeeded
            && plan.operation == operation
            && plan.seen.fetch_add(1, Ordering::SeqCst) + 1 == plan.occurrence
        {
            eprintln!(
                "{ABORT_AFTER_ENV}: aborting right after {operation} #{}",
                plan.occurrence
            );
            std::process::abort();
        }
    }
}
