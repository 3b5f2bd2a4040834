//! Leader election on a `coordination.k8s.io` Lease, so two replicas are safe: only the
//! holder reconciles, and only the holder calls AWS.
//!
//! - A standby judges expiry by its own clock, never by the holder's `renewTime`: it takes the
//!   lease once the lease record (holder, renew time, resourceVersion) has not changed for a
//!   whole lease duration *as it observed it*, or at once when the holder released it. Clock
//!   skew between nodes decides nothing.
//! - The holder's [`Fence`] is open only until its last successful renewal (timed from before
//!   the renewal was sent) plus the renew deadline, two thirds of the lease duration: every AWS
//!   request checks it just before it is sent. A standby can take over no earlier than a full
//!   lease duration after it saw that renewal, so a holder that was paused, partitioned or slow
//!   has stopped calling AWS before anyone else may start; it then exits at once, in-flight
//!   reconciles and all (their work is crash-safe).
//! - The same fence guards the controller's Kubernetes writes ([`FenceLayer`]): a holder that
//!   resumes after a pause past its lease neither patches a transfer nor records an event
//!   before it notices and exits (seen in `make stress`: a resumed replica's Warning event on
//!   a transfer the new leader had made). Reads and watches go on; the lease itself is written
//!   with a client of its own.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tower::BoxError;

use tokio::time::Instant;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tracing::{info, warn};

/// Whether this replica may call AWS: always without leader election; with it, only until its
/// lease's renew deadline.
#[derive(Clone, Debug, Default)]
pub struct Fence {
    /// `None`: no leader election, always open.
    until: Option<Arc<Mutex<Option<Instant>>>>,
}

impl Fence {
    /// Always open (a single replica without leader election).
    pub fn open() -> Self {
        Self { until: None }
    }

    /// Closed until the lease is held.
    pub fn closed() -> Self {
        Self {
            until: Some(Arc::new(Mutex::new(None))),
        }
    }

    /// Open until `deadline`.
    pub fn hold_until(&self, deadline: Instant) {
        if let Some(until) = &self.until {
            *until.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(deadline);
        }
    }

    /// When it closes (`None`: never, or closed already).
    pub fn deadline(&self) -> Option<Instant> {
        let until = self.until.as_ref()?;
        *until.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether AWS may be called now.
    pub fn is_open(&self) -> bool {
        self.until.is_none() || self.deadline().is_some_and(|d| Instant::now() < d)
    }

    /// `Ok` while open; the error a request that is not sent fails with otherwise.
    pub fn check(&self) -> Result<(), BoxError> {
        if self.is_open() { Ok(()) } else { Err(NOT_SENT.into()) }
    }
}

/// Why a request of a replica whose fence closed was not sent.
pub const NOT_SENT: &str = "not sent: this replica's leader lease passed its renew deadline";

/// The layer of the Kubernetes client the controller works with: a request that may change
/// something (any method but GET and HEAD; a watch is a GET) is not sent while the fence is
/// closed, and fails with [`NOT_SENT`] instead.
#[derive(Clone, Debug)]
pub struct FenceLayer(pub Fence);

impl<S> tower::Layer<S> for FenceLayer {
    type Service = Fenced<S>;

    fn layer(&self, inner: S) -> Fenced<S> {
        Fenced {
            inner,
            fence: self.0.clone(),
        }
    }
}

/// See [`FenceLayer`].
#[derive(Clone, Debug)]
pub struct Fenced<S> {
    inner: S,
    fence: Fence,
}

impl<S, B> tower::Service<http::Request<B>> for Fenced<S>
where
    S: tower::Service<http::Request<B>>,
    S::Response: Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let reads = matches!(*request.method(), http::Method::GET | http::Method::HEAD);
        if !reads && let Err(refused) = self.fence.check() {
            return Box::pin(std::future::ready(Err(refused)));
        }
        let sent = self.inner.call(request);
        Box::pin(async move { sent.await.map_err(Into::into) })
    }
}

/// Takes and keeps one Lease.
#[derive(Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    lease_duration: Duration,
    fence: Fence,
    /// The lease record last seen held by another replica, and when this replica first saw it.
    seen: Arc<Mutex<Option<(String, Instant)>>>,
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

/// Whether a lease held by another replica has expired, judged by this replica's clock alone
/// (pure): the record `key` unchanged since `first_seen` for more than its duration. A record
/// not seen before was just renewed, as far as this replica can know.
pub fn expired(seen: Option<&(String, Instant)>, key: &str, now: Instant, duration: Duration) -> bool {
    seen.is_some_and(|(k, first_seen)| k == key && now.duration_since(*first_seen) > duration)
}

/// What identifies one renewal of a lease: holder, renew time and resourceVersion.
fn record_key(lease: &Lease) -> String {
    let spec = lease.spec.as_ref();
    format!(
        "{}|{:?}|{}",
        spec.and_then(|s| s.holder_identity.as_deref()).unwrap_or_default(),
        spec.and_then(|s| s.renew_time.as_ref()).map(|t| t.0),
        lease.metadata.resource_version.as_deref().unwrap_or_default()
    )
}

impl LeaderElector {
    /// An elector for lease `name` in `namespace`, as `identity`, that opens `fence` while it
    /// holds the lease.
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        lease_duration: Duration,
        fence: Fence,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            lease_duration,
            fence,
            seen: Arc::new(Mutex::new(None)),
        }
    }

    /// How long after a renewal was sent the holder may still call AWS.
    pub fn renew_deadline(&self) -> Duration {
        self.lease_duration * 2 / 3
    }

    /// This replica's identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn seconds(&self) -> i32 {
        i32::try_from(self.lease_duration.as_secs()).unwrap_or(15)
    }

    /// One attempt to take or renew the lease; true when this replica holds it afterwards (and
    /// then its fence is open until the renew deadline, counted from before the attempt).
    pub async fn try_acquire(&self) -> Result<bool, kube::Error> {
        let started = Instant::now();
        let held = self.attempt().await?;
        if held {
            self.fence.hold_until(started + self.renew_deadline());
        }
        Ok(held)
    }

    async fn attempt(&self) -> Result<bool, kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(self.seconds()),
                    acquire_time: Some(now()),
                    renew_time: Some(now()),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let key = record_key(&lease);
        let mut spec = lease.spec.take().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let mine = holder.as_deref() == Some(self.identity.as_str());
        if !mine && holder.is_some() {
            let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if !expired(seen.as_ref(), &key, Instant::now(), self.lease_duration) {
                if seen.as_ref().is_none_or(|(k, _)| *k != key) {
                    *seen = Some((key, Instant::now()));
                }
                return Ok(false);
            }
        }
        if !mine {
            spec.acquire_time = Some(now());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.holder_identity = Some(self.identity.clone());
        spec.lease_duration_seconds = Some(self.seconds());
        spec.renew_time = Some(now());
        lease.spec = Some(spec);
        // replace carries the resourceVersion: a concurrent writer makes this fail with 409.
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Waits until this replica holds the lease.
    pub async fn acquire(&self) {
        let mut said = false;
        loop {
            match self.try_acquire().await {
                Ok(true) => {
                    info!(identity = %self.identity, lease = %self.name, "became the leader");
                    return;
                }
                Ok(false) if !said => {
                    info!(identity = %self.identity, lease = %self.name, "another replica leads; standing by");
                    said = true;
                }
                Ok(false) => {}
                Err(e) => warn!(error = %e, "leader election"),
            }
            tokio::time::sleep(self.lease_duration / 5).await;
        }
    }

    /// Renews the lease every third of its duration; returns once the fence closed (renewing
    /// failed until the renew deadline, or another replica holds the lease): the caller must
    /// stop at once.
    pub async fn hold(&self) {
        loop {
            let deadline = self.fence.deadline().unwrap_or_else(Instant::now);
            let next = Instant::now() + self.lease_duration / 3;
            tokio::time::sleep_until(next.min(deadline)).await;
            if !self.fence.is_open() {
                warn!("the lease was not renewed within its renew deadline");
                return;
            }
            match self.try_acquire().await {
                Ok(true) => {}
                Ok(false) => {
                    self.fence.hold_until(Instant::now());
                    warn!("lost the lease to another replica");
                    return;
                }
                Err(e) => warn!(error = %e, "could not renew the lease"),
            }
        }
    }

    /// Gives the lease up so a standby replica takes over at once. The fence closes first:
    /// once the release lands, the standby may write.
    pub async fn release(&self) {
        self.fence.hold_until(Instant::now());
        let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else { return };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        spec.acquire_time = None;
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => info!("released the lease"),
            Err(e) => warn!(error = %e, "could not release the lease"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An inner service that records the methods it was asked to send.
    #[derive(Clone, Default)]
    struct Recorded(Arc<Mutex<Vec<http::Method>>>);

    impl tower::Service<http::Request<()>> for Recorded {
        type Response = ();
        type Error = BoxError;
        type Future = std::future::Ready<Result<(), BoxError>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: http::Request<()>) -> Self::Future {
            self.0.lock().unwrap().push(request.method().clone());
            std::future::ready(Ok(()))
        }
    }

    /// Sends one request of each method through a fenced `Recorded`; returns the methods that
    /// were refused and the ones the inner service saw.
    async fn send_each(fence: &Fence) -> (Vec<http::Method>, Vec<http::Method>) {
        use http::Method;
        use tower::{Layer, Service};
        let inner = Recorded::default();
        let mut fenced = FenceLayer(fence.clone()).layer(inner.clone());
        let mut refused = Vec::new();
        for method in [
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ] {
            std::future::poll_fn(|cx| fenced.poll_ready(cx)).await.unwrap();
            let request = http::Request::builder().method(method.clone()).body(()).unwrap();
            if let Err(e) = fenced.call(request).await {
                assert_eq!(e.to_string(), NOT_SENT);
                refused.push(method);
            }
        }
        let sent = inner.0.lock().unwrap().clone();
        (refused, sent)
    }

    #[tokio::test]
    async fn a_closed_fence_sends_kubernetes_reads_and_no_write() {
        use http::Method;
        let writes = vec![Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
        let fence = Fence::closed();
        let (refused, sent) = send_each(&fence).await;
        assert_eq!(refused, writes);
        assert_eq!(
            sent,
            vec![Method::GET, Method::HEAD],
            "refused requests never reach the client"
        );

        fence.hold_until(Instant::now() + Duration::from_secs(600));
        assert_eq!(
            send_each(&fence).await.0,
            Vec::<Method>::new(),
            "open while the lease is held"
        );
        fence.hold_until(Instant::now());
        assert_eq!(send_each(&fence).await.0, writes, "closed again at the deadline");
        assert_eq!(
            send_each(&Fence::open()).await.0,
            Vec::<Method>::new(),
            "no leader election"
        );
    }

    #[test]
    fn leases_expire_by_the_observers_clock_only() {
        let t0 = Instant::now();
        let d = Duration::from_secs(15);
        let seen = ("holder|renewed at 10:00|7".to_string(), t0);
        assert!(
            !expired(None, "holder|renewed at 10:00|7", t0 + d * 2, d),
            "never seen: just renewed"
        );
        assert!(!expired(Some(&seen), &seen.0, t0 + Duration::from_secs(10), d));
        assert!(expired(Some(&seen), &seen.0, t0 + Duration::from_secs(16), d));
        assert!(
            !expired(Some(&seen), "holder|renewed at 10:01|8", t0 + d * 2, d),
            "a renewal seen restarts the count, whatever its renewTime says"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_fence_closes_at_the_renew_deadline() {
        assert!(Fence::open().is_open());
        let fence = Fence::closed();
        assert!(!fence.is_open(), "closed until the lease is held");
        fence.hold_until(Instant::now() + Duration::from_secs(10));
        assert!(fence.is_open());
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(!fence.is_open());
    }
}
