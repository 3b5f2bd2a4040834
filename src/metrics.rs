//! Prometheus metrics served on `/metrics`: reconciles and their duration, errors by reason,
//! AWS calls by service, operation and outcome, and per-transfer progress.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a reconcile count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// `apply` or `cleanup`.
    pub kind: String,
    /// `ok` or `error`.
    pub result: String,
}

/// Labels of an error count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The error's reason (the variant name of `crate::Error`).
    pub reason: String,
}

/// Labels of an AWS call count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AwsCallLabels {
    /// AWS service, e.g. `DataSync`.
    pub service: String,
    /// Operation, e.g. `CreateTask`.
    pub operation: String,
    /// `success`, `client_error`, `throttled`, `server_error` or `no_response`.
    pub outcome: String,
}

/// Labels of the request budget's metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    /// The AWS service's signing name, e.g. `iam`.
    pub service: String,
}

/// Labels of per-transfer gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransferLabels {
    /// Namespace of the transfer.
    pub namespace: String,
    /// Name of the transfer.
    pub name: String,
}

/// Every metric Ferry exports, registered in one registry.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ReconcileLabels, Counter>,
    reconcile_duration: Histogram,
    errors: Family<ErrorLabels, Counter>,
    aws_calls: Family<AwsCallLabels, Counter>,
    bytes: Family<TransferLabels, Gauge>,
    files: Family<TransferLabels, Gauge>,
    progress: Family<TransferLabels, Gauge>,
    budget_wait: Family<ServiceLabels, Counter<f64, std::sync::atomic::AtomicU64>>,
    budget_rate: Family<ServiceLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ferry");
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        let reconcile_duration = Histogram::new(exponential_buckets(0.01, 2.0, 12));
        let errors = Family::<ErrorLabels, Counter>::default();
        let aws_calls = Family::<AwsCallLabels, Counter>::default();
        let bytes = Family::<TransferLabels, Gauge>::default();
        let files = Family::<TransferLabels, Gauge>::default();
        let progress = Family::<TransferLabels, Gauge>::default();
        let budget_wait = Family::<ServiceLabels, Counter<f64, std::sync::atomic::AtomicU64>>::default();
        let budget_rate = Family::<ServiceLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register("reconciles", "Reconciles run, by kind and result", reconciles.clone());
        registry.register(
            "reconcile_duration_seconds",
            "Duration of reconciles",
            reconcile_duration.clone(),
        );
        registry.register("reconcile_errors", "Reconcile errors by reason", errors.clone());
        registry.register(
            "aws_calls",
            "AWS API calls by service, operation and outcome",
            aws_calls.clone(),
        );
        registry.register(
            "transfer_bytes_transferred",
            "Bytes transferred by the current or last execution",
            bytes.clone(),
        );
        registry.register(
            "transfer_files_transferred",
            "Objects transferred by the current or last execution",
            files.clone(),
        );
        registry.register(
            "transfer_progress_percent",
            "Percent done of the current or last execution",
            progress.clone(),
        );
        registry.register(
            "aws_budget_wait_seconds",
            "Time AWS calls waited for the request budget, by service",
            budget_wait.clone(),
        );
        registry.register(
            "aws_budget_rate",
            "Requests per second the budget allows after the last throttling answer, by service",
            budget_rate.clone(),
        );
        Self {
            registry,
            budget_wait,
            budget_rate,
            reconciles,
            reconcile_duration,
            errors,
            aws_calls,
            bytes,
            files,
            progress,
        }
    }

    /// Counts one reconcile and its duration.
    pub fn reconciled(&self, kind: &str, ok: bool, took: Duration) {
        self.reconciles
            .get_or_create(&ReconcileLabels {
                kind: kind.to_string(),
                result: if ok { "ok" } else { "error" }.to_string(),
            })
            .inc();
        self.reconcile_duration.observe(took.as_secs_f64());
    }

    /// Counts one error by reason.
    pub fn error(&self, reason: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Counts one AWS call.
    pub fn aws_call(&self, service: &str, operation: &str, outcome: &str) {
        self.aws_calls
            .get_or_create(&AwsCallLabels {
                service: service.to_string(),
                operation: operation.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Adds time an AWS call waited for the request budget.
    pub fn budget_wait(&self, service: &str, waited: Duration) {
        self.budget_wait
            .get_or_create(&ServiceLabels {
                service: service.to_string(),
            })
            .inc_by(waited.as_secs_f64());
    }

    /// Records the rate the budget allows a service after a throttling answer.
    pub fn budget_rate(&self, service: &str, rate: f64) {
        self.budget_rate
            .get_or_create(&ServiceLabels {
                service: service.to_string(),
            })
            .set(rate);
    }

    /// Sets a transfer's progress gauges.
    pub fn transfer_progress(&self, namespace: &str, name: &str, bytes: i64, files: i64, percent: i32) {
        let labels = TransferLabels {
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        self.bytes.get_or_create(&labels).set(bytes);
        self.files.get_or_create(&labels).set(files);
        self.progress.get_or_create(&labels).set(i64::from(percent));
    }

    /// Drops a deleted transfer's gauges.
    pub fn forget_transfer(&self, namespace: &str, name: &str) {
        let labels = TransferLabels {
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        self.bytes.remove(&labels);
        self.files.remove(&labels);
        self.progress.remove(&labels);
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Metrics shared by the controller, the AWS interceptor and the HTTP server.
pub type SharedMetrics = Arc<Metrics>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_family() {
        let m = Metrics::new();
        m.reconciled("apply", true, Duration::from_millis(30));
        m.error("AccessDenied");
        m.aws_call("DataSync", "CreateTask", "success");
        m.transfer_progress("data", "media", 1024, 3, 50);
        let text = m.encode();
        for needle in [
            "ferry_reconciles_total{kind=\"apply\",result=\"ok\"} 1",
            "ferry_reconcile_errors_total{reason=\"AccessDenied\"} 1",
            "ferry_aws_calls_total{service=\"DataSync\",operation=\"CreateTask\",outcome=\"success\"} 1",
            "ferry_transfer_progress_percent{namespace=\"data\",name=\"media\"} 50",
            "ferry_reconcile_duration_seconds_count 1",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
        m.forget_transfer("data", "media");
        assert!(!m.encode().contains("name=\"media\""));
    }
}
