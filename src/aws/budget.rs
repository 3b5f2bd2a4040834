//! Ferry's request budget: a client-side rate limit per AWS service and per set of credentials
//! (so per account), shared by every reconcile, so a fleet's drift checks and polls never go
//! over what the account can take. AWS throttles IAM and STS per account and API, with limits
//! that cannot be raised; a throttling answer halves the rate of that service for those
//! credentials, which then grows back over a minute (adaptive, like the SDK's adaptive retry).
//!
//! The limit sits in the HTTP client every SDK client uses: the request is signed by then, and
//! its SigV4 credential scope names the service and the access key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

// Tokio's clock (the real one outside tests) so tests can pause time.
use tokio::time::Instant;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, SharedHttpClient, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;

use crate::metrics::SharedMetrics;

/// Requests per second per service and credentials, unless configured otherwise: below what a
/// single account sustains (AWS publishes no DataSync, IAM or STS rates; IAM and STS throttle
/// per account and API and cannot be raised), leaving room for everything else in the account.
pub const DEFAULT_RATES: &[(&str, f64)] = &[("datasync", 20.0), ("s3", 50.0), ("iam", 10.0), ("sts", 20.0)];
/// Rate of a service not in the table.
const OTHER_RATE: f64 = 10.0;
/// The lowest a rate goes after throttling.
const FLOOR: f64 = 0.5;
/// How long after the last throttling answer the rate takes to grow back to its limit.
const RECOVERY: Duration = Duration::from_secs(60);

/// Configured rates: requests per second per service.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rates(pub Vec<(String, f64)>);

/// Parses `datasync=10,iam=5` (requests per second per service).
pub fn parse_rates(text: &str) -> Result<Rates, String> {
    parse_pairs(text).map(Rates)
}

fn parse_pairs(text: &str) -> Result<Vec<(String, f64)>, String> {
    text.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            let (service, rate) = pair
                .split_once('=')
                .ok_or_else(|| format!("`{pair}`: write service=requests-per-second, e.g. iam=5"))?;
            let rate: f64 = rate
                .trim()
                .parse()
                .map_err(|_| format!("`{pair}`: the rate is not a number"))?;
            if rate <= 0.0 {
                return Err(format!("`{pair}`: the rate must be above 0"));
            }
            Ok((service.trim().to_ascii_lowercase(), rate))
        })
        .collect()
}

/// One service's budget for one set of credentials: calls take slots `1/rate` apart, in the
/// order they ask (a fair turnstile: no caller starves behind later ones), with a burst of one
/// second's worth when the service was idle. A slot is taken only when its call goes out, so a
/// call given up while it waits (its reconcile timed out or was dropped) costs the budget nothing.
#[derive(Debug)]
struct Bucket {
    limit: f64,
    rate: f64,
    next_slot: Instant,
    throttled: Option<Instant>,
    turnstile: Arc<tokio::sync::Mutex<()>>,
}

impl Bucket {
    fn new(limit: f64, now: Instant) -> Self {
        Self {
            limit,
            rate: limit,
            next_slot: now,
            throttled: None,
            turnstile: Arc::default(),
        }
    }

    /// The rate now: halved at a throttle, back to the limit over [`RECOVERY`].
    fn current_rate(&mut self, now: Instant) -> f64 {
        if let Some(at) = self.throttled {
            let since = now.duration_since(at).as_secs_f64() / RECOVERY.as_secs_f64();
            if since >= 1.0 {
                self.throttled = None;
                self.rate = self.limit;
            } else {
                return (self.rate + (self.limit - self.rate) * since).max(FLOOR);
            }
        }
        self.rate
    }

    /// The next free slot and the interval after it.
    fn slot(&mut self, now: Instant) -> (Instant, Duration) {
        let rate = self.current_rate(now);
        let interval = Duration::from_secs_f64(1.0 / rate);
        // An idle service may burst up to one second's worth of calls.
        let earliest = now.checked_sub(Duration::from_secs_f64(rate.max(1.0) * interval.as_secs_f64()));
        let slot = match earliest {
            Some(e) if self.next_slot < e => e,
            _ => self.next_slot,
        };
        (slot, interval)
    }

    /// How long until the next slot is free (pure given `now`; takes nothing).
    fn wait(&mut self, now: Instant) -> Duration {
        self.slot(now).0.saturating_duration_since(now)
    }

    /// Takes the next slot; returns how long to wait for it (pure given `now`).
    fn take(&mut self, now: Instant) -> Duration {
        let (slot, interval) = self.slot(now);
        self.next_slot = slot + interval;
        slot.saturating_duration_since(now)
    }

    fn throttle(&mut self, now: Instant) {
        self.rate = (self.current_rate(now) / 2.0).max(FLOOR);
        self.throttled = Some(now);
    }
}

/// The budget of every service and set of credentials.
#[derive(Debug)]
pub struct Budget {
    limits: HashMap<String, f64>,
    buckets: Mutex<HashMap<(String, String), Bucket>>,
    metrics: SharedMetrics,
}

impl Budget {
    /// A budget with `rates` over the defaults.
    pub fn new(rates: &[(String, f64)], metrics: SharedMetrics) -> Self {
        let mut limits: HashMap<String, f64> = DEFAULT_RATES.iter().map(|(s, r)| (s.to_string(), *r)).collect();
        limits.extend(rates.iter().cloned());
        Self {
            limits,
            buckets: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    fn with_bucket<T>(&self, key: &(String, String), f: impl FnOnce(&mut Bucket, Instant) -> T) -> T {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let limit = self.limits.get(&key.0).copied().unwrap_or(OTHER_RATE);
        let bucket = buckets.entry(key.clone()).or_insert_with(|| {
            // The service's metrics exist from its first call on.
            self.metrics.budget_rate(&key.0, limit);
            self.metrics.budget_wait(&key.0, Duration::ZERO);
            Bucket::new(limit, now)
        });
        f(bucket, now)
    }

    /// Waits for this call's slot of the service's budget for these credentials: callers pass
    /// the turnstile one at a time, in order, and take their slot when it is due.
    pub async fn acquire(&self, key: &(String, String)) {
        let turnstile = self.with_bucket(key, |b, _| b.turnstile.clone());
        let started = Instant::now();
        let _turn = turnstile.lock().await;
        loop {
            // A throttle while waiting moves the slot: look again after each sleep.
            let wait = self.with_bucket(key, Bucket::wait);
            if wait.is_zero() {
                self.with_bucket(key, Bucket::take);
                break;
            }
            tokio::time::sleep(wait).await;
        }
        let waited = started.elapsed();
        if waited >= Duration::from_millis(1) {
            self.metrics.budget_wait(&key.0, waited);
        }
    }

    /// AWS throttled a call: slow this service down for these credentials (the rate metric
    /// shows the lowest rate of the service's credentials).
    pub fn throttled(&self, key: &(String, String)) {
        let rate = self.with_bucket(key, |b, now| {
            b.throttle(now);
            b.current_rate(now)
        });
        self.metrics.budget_rate(&key.0, rate);
    }
}

/// The service and access key of a signed request, from its SigV4 credential scope
/// (`Credential=AKID/20261129/us-east-1/datasync/aws4_request`).
pub fn request_key(authorization: Option<&str>) -> Option<(String, String)> {
    let scope = authorization?.split("Credential=").nth(1)?.split([',', ' ']).next()?;
    let mut parts = scope.split('/');
    let key = parts.next()?.to_string();
    let service = parts.nth(2)?.to_ascii_lowercase();
    Some((service, key))
}

#[derive(Debug)]
struct Budgeted {
    inner: SharedHttpConnector,
    budget: Arc<Budget>,
}

impl HttpConnector for Budgeted {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let key = request_key(request.headers().get("authorization"));
        let (inner, budget) = (self.inner.clone(), self.budget.clone());
        HttpConnectorFuture::new(async move {
            if let Some(key) = &key {
                budget.acquire(key).await;
            }
            inner.call(request).await
        })
    }
}

/// `base` with every request waiting for the budget first.
pub fn budgeted(base: SharedHttpClient, budget: Arc<Budget>) -> SharedHttpClient {
    http_client_fn(move |settings, components| {
        SharedHttpConnector::new(Budgeted {
            inner: base.http_connector(settings, components),
            budget: budget.clone(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_scope_names_service_and_key() {
        let auth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261129/us-east-1/datasync/aws4_request, SignedHeaders=host, Signature=abc";
        assert_eq!(
            request_key(Some(auth)),
            Some(("datasync".to_string(), "AKIDEXAMPLE".to_string()))
        );
        assert_eq!(request_key(Some("Bearer x")), None);
        assert_eq!(request_key(None), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_given_up_while_waiting_takes_no_slot() {
        let budget = Budget::new(
            &[("datasync".to_string(), 1.0)],
            Arc::new(crate::metrics::Metrics::new()),
        );
        let key = ("datasync".to_string(), "AKID".to_string());
        // An idle service at one call a second: a burst of two, then one a second.
        budget.acquire(&key).await;
        budget.acquire(&key).await;
        let start = Instant::now();
        let given_up = tokio::time::timeout(Duration::from_millis(500), budget.acquire(&key)).await;
        assert!(given_up.is_err(), "the third call must wait for its slot");
        // The call that gave up took nothing: the next one goes at the slot it would have had.
        budget.acquire(&key).await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        budget.acquire(&key).await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[test]
    fn the_bucket_keeps_the_rate_in_order_and_halves_it_when_throttled() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut b = Bucket::new(4.0, t0 - Duration::from_secs(10));
        // An idle service: a burst of one second's worth, then slots 1/rate apart, first come
        // first served.
        for _ in 0..4 {
            assert_eq!(b.take(t0), Duration::ZERO);
        }
        let waits: Vec<f64> = (0..3).map(|_| b.take(t0).as_secs_f64()).collect();
        for (got, want) in waits.iter().zip([0.0, 0.25, 0.5]) {
            assert!((got - want).abs() < 1e-6, "{waits:?}");
        }
        // Throttled: half the rate, growing back over a minute.
        b.throttle(t0 + Duration::from_secs(1));
        assert!((b.current_rate(t0 + Duration::from_secs(1)) - 2.0).abs() < 1e-6);
        let halfway = b.current_rate(t0 + Duration::from_secs(31));
        assert!(halfway > 2.0 && halfway < 4.0, "{halfway}");
        assert!((b.current_rate(t0 + Duration::from_secs(62)) - 4.0).abs() < 1e-6);
    }

    #[test]
    fn rates_parse_with_clear_errors() {
        assert_eq!(
            parse_rates("iam=2, DataSync=7.5").unwrap(),
            Rates(vec![("iam".to_string(), 2.0), ("datasync".to_string(), 7.5)])
        );
        assert!(parse_rates("iam").unwrap_err().contains("service=requests-per-second"));
        assert!(parse_rates("iam=0").is_err());
        assert!(parse_rates("").unwrap().0.is_empty());
    }
}
