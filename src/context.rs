//! What every reconcile shares: the Kubernetes client, the AWS identities, the event recorder,
//! the metrics and the timing knobs, and the one way to publish a Kubernetes event. It sits
//! below `status`, `steps` and `controller`, which all use it.

use std::time::Duration;

use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};

use crate::api::CrossAccountTransfer;
use crate::aws::Aws;
use crate::metrics::SharedMetrics;

/// Timing knobs of the controller.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// How often a running execution is polled.
    pub poll_interval: Duration,
    /// How often a transfer is checked for drift (every step, 7 reads); each transfer's check is
    /// spread by up to ±10% so a fleet's checks do not come at once.
    pub resync_interval: Duration,
    /// How long after a permission change access errors count as IAM propagation.
    pub propagation_window: Duration,
    /// How often External mode checks whether Account B applied the policy.
    pub external_retry: Duration,
    /// How often a transfer stalled on access or ownership problems is tried again (the fix
    /// happens in AWS, where Ferry cannot watch it).
    pub stalled_retry: Duration,
    /// How many transfers are reconciled at once (0: no limit). The request budget bounds the
    /// AWS calls anyway, and every reconcile in flight holds memory.
    pub max_concurrent_reconciles: u16,
    /// How long one reconcile may take before it is dropped and tried again, so a call that
    /// hangs cannot hold a reconcile slot forever.
    pub reconcile_timeout: Duration,
    /// DescribeTaskExecution calls per second the whole fleet's polls may spend (half of
    /// DataSync's default budget): with many executions running, each is polled less often so
    /// polls never crowd out the rest.
    pub poll_rate: f64,
    /// The IAM permissions boundary (a managed policy ARN) of every role Ferry creates: the most
    /// any DataSync role may do, whatever its inline policy says. `None`: no boundary.
    pub role_permissions_boundary: Option<String>,
}

impl ControllerConfig {
    /// The settings with the poll interval stretched for `running` executions, so all polls
    /// together stay within [`poll_rate`](Self::poll_rate) (pure).
    pub fn for_fleet(&self, running: usize) -> ControllerConfig {
        let spread = Duration::from_secs_f64(running as f64 / self.poll_rate.max(0.1));
        ControllerConfig {
            poll_interval: self.poll_interval.max(spread),
            ..self.clone()
        }
    }
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(15),
            resync_interval: Duration::from_secs(50 * 60),
            propagation_window: Duration::from_secs(120),
            external_retry: Duration::from_secs(30),
            stalled_retry: Duration::from_secs(300),
            max_concurrent_reconciles: 16,
            reconcile_timeout: Duration::from_secs(300),
            poll_rate: 10.0,
            role_permissions_boundary: None,
        }
    }
}

/// One lock per destination bucket: reconciles of different transfers into one bucket take
/// turns at its policy and ownership, which S3 can only read-modify-write without conditions.
#[derive(Default)]
pub struct BucketLocks {
    locks: std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
}

impl BucketLocks {
    /// Waits for the bucket's turn; the guard ends it.
    pub async fn lock(&self, bucket: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            locks.entry(bucket.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

/// What the controller remembers of one transfer between reconciles (in memory: a restart
/// starts with a full check of everything).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The generation the last full check covered.
    pub generation: i64,
    /// The `ferry.dev/run` value then.
    pub token: Option<String>,
    /// When the last full check (every step) ended well.
    pub checked_at: std::time::Instant,
    /// When the running execution was last polled.
    pub polled_at: std::time::Instant,
    /// The last reconcile failed: the next full check is due then (its error's retry delay), not
    /// at the watch event of the status that reported the failure. A create whose answer never
    /// came must not be searched for, and sent again, before AWS could have done it.
    pub retry_at: Option<std::time::Instant>,
}

/// [`Seen`] per transfer uid, which transfers have an execution running, and the
/// `resourceVersion` of Ferry's last status write of each.
#[derive(Default)]
pub struct Memory {
    seen: std::sync::Mutex<std::collections::HashMap<String, Seen>>,
    running: std::sync::Mutex<std::collections::HashSet<String>>,
    written: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

/// Whether a copy of a transfer with `cached` as its `resourceVersion` may be older than Ferry's
/// own last status write, `written` (pure): any other version may be (versions are opaque, not
/// ordered), so only the very version Ferry wrote, or no write yet, is known to be current enough.
pub fn outdated(cached: Option<&str>, written: Option<&str>) -> bool {
    written.is_some_and(|w| cached != Some(w))
}

impl Memory {
    /// Records the `resourceVersion` the API server gave Ferry's status write of a transfer.
    pub fn wrote(&self, uid: &str, resource_version: &str) {
        self.written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(uid.to_string(), resource_version.to_string());
    }

    /// Whether this copy of a transfer (from the watch cache) may predate Ferry's last status
    /// write of it; see [`outdated`].
    pub fn outdated(&self, obj: &CrossAccountTransfer) -> bool {
        let uid = obj.metadata.uid.as_deref().unwrap_or_default();
        let written = self.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        outdated(
            obj.metadata.resource_version.as_deref(),
            written.get(uid).map(String::as_str),
        )
    }

    /// Drops everything remembered of a transfer that is gone.
    pub fn gone(&self, uid: &str) {
        self.forget(uid);
        self.set_running(uid, false);
        self.written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(uid);
    }

    /// Records whether a transfer has an execution running (or about to start).
    pub fn set_running(&self, uid: &str, running: bool) {
        let mut set = self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if running {
            set.insert(uid.to_string());
        } else {
            set.remove(uid);
        }
    }

    /// How many transfers have an execution running.
    pub fn running(&self) -> usize {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// What is remembered of a transfer.
    pub fn get(&self, uid: &str) -> Option<Seen> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(uid)
            .cloned()
    }

    /// Remembers a transfer.
    pub fn set(&self, uid: &str, seen: Seen) {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(uid.to_string(), seen);
    }

    /// Records a failed reconcile of generation `generation` with run token `token`: the next
    /// full check comes after `retry` (or when the spec or the token changes).
    pub fn failed(&self, uid: &str, generation: i64, token: Option<String>, retry: std::time::Duration) {
        let now = std::time::Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let previous = seen.get(uid);
        let entry = Seen {
            generation,
            token,
            checked_at: previous.map_or(now, |s| s.checked_at),
            polled_at: previous.map_or(now, |s| s.polled_at),
            retry_at: Some(now + retry),
        };
        seen.insert(uid.to_string(), entry);
    }

    /// Forgets when a transfer was checked (deleted: the next reconcile checks all).
    pub fn forget(&self, uid: &str) {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(uid);
    }
}

/// What every reconcile shares.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// AWS identities and clients.
    pub aws: Aws,
    /// Event recorder for Warnings: a warning that repeats becomes one event series. It keeps
    /// every event it published for six minutes to count repeats.
    pub recorder: Recorder,
    /// Who publishes events (for Normal events, which never repeat: published without that
    /// cache, so a fleet's thousands of one-off changes do not sit in memory).
    pub reporter: Reporter,
    /// Metrics.
    pub metrics: SharedMetrics,
    /// Timing knobs.
    pub config: ControllerConfig,
    /// One writer per destination bucket at a time.
    pub buckets: BucketLocks,
    /// The one namespace the operator watches (`--namespace`), or all.
    pub watch_namespace: Option<String>,
    /// When each transfer was last checked and polled.
    pub memory: Memory,
    /// The platform's `TransferPolicy`s and the namespaces they select.
    pub tenancy: crate::tenancy::Tenancy,
    /// Turns at AWS work, `config.max_concurrent_reconciles` at a time (fair: first come, first
    /// served); `None`: no limit.
    pub slots: Option<tokio::sync::Semaphore>,
}

/// The event action for a change: the reason and the last segment of the first ARN in the note
/// (pure).
pub fn event_action(reason: &str, note: &str) -> String {
    let subject = note
        .split_whitespace()
        .find(|w| w.starts_with("arn:"))
        .and_then(|arn| arn.trim_end_matches([',', '.', ';']).rsplit(['/', ':']).next());
    let action = match subject {
        Some(s) if !s.is_empty() => format!("{reason} {s}"),
        _ => reason.to_string(),
    };
    action.chars().take(128).collect()
}

impl Context {
    /// The semaphore for `max_concurrent_reconciles` (0: no limit).
    pub fn slots_for(config: &ControllerConfig) -> Option<tokio::sync::Semaphore> {
        (config.max_concurrent_reconciles > 0)
            .then(|| tokio::sync::Semaphore::new(usize::from(config.max_concurrent_reconciles)))
    }

    /// Runs a reconcile's AWS work when its turn comes, and drops it if it takes longer than
    /// `config.reconcile_timeout` (a hung call must not hold a turn forever; every step can be
    /// interrupted, as by a crash). The work is built only once the turn has come, on the
    /// heap: a reconcile waiting for its turn holds a few hundred bytes, not the state of the
    /// whole pipeline (1,000 waiting transfers would otherwise hold about 100 MiB).
    pub async fn limited<T, E, W, F>(&self, work: W) -> std::result::Result<T, E>
    where
        W: FnOnce() -> F,
        F: Future<Output = std::result::Result<T, E>>,
        E: From<crate::error::Error>,
    {
        let _turn = match &self.slots {
            Some(slots) => slots.acquire().await.ok(),
            None => None,
        };
        let limit = self.config.reconcile_timeout;
        tokio::time::timeout(limit, Box::pin(work()))
            .await
            .unwrap_or_else(|_| Err(crate::error::Error::ReconcileTimeout(limit).into()))
    }

    /// Publishes a Kubernetes event about `obj` (action = reason); failures are only logged.
    pub async fn publish(&self, obj: &CrossAccountTransfer, type_: EventType, reason: &str, note: String) {
        self.publish_action(obj, type_, reason, reason, note).await;
    }

    /// Publishes a Kubernetes event with an explicit action.
    pub async fn publish_action(
        &self,
        obj: &CrossAccountTransfer,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let mut note = note;
        if note.len() > 1000 {
            let mut cut = 1000;
            while !note.is_char_boundary(cut) {
                cut -= 1;
            }
            note.truncate(cut);
        }
        let event = Event {
            type_,
            reason: reason.to_string(),
            note: Some(note),
            action: action.to_string(),
            secondary: None,
        };
        let regarding = obj.object_ref(&());
        let published = if type_ == EventType::Normal {
            Recorder::new(self.client.clone(), self.reporter.clone())
                .publish(&event, &regarding)
                .await
        } else {
            self.recorder.publish(&event, &regarding).await
        };
        if let Err(err) = published {
            tracing::warn!(error = %err, "could not publish event {reason}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ControllerConfig, event_action, outdated};

    #[test]
    fn only_the_version_ferry_wrote_last_is_known_to_be_current() {
        // Nothing written yet (a restart, a new transfer): the cache is all there is.
        assert!(!outdated(Some("7"), None));
        // The watch delivered Ferry's own write.
        assert!(!outdated(Some("7"), Some("7")));
        // An older copy, or a newer one (versions are opaque): read the object itself.
        assert!(outdated(Some("5"), Some("7")));
        assert!(outdated(Some("9"), Some("7")));
        assert!(outdated(None, Some("7")));
    }

    #[test]
    fn polls_of_a_busy_fleet_spread_to_stay_within_the_poll_rate() {
        let config = ControllerConfig::default();
        assert_eq!(config.for_fleet(3).poll_interval, config.poll_interval);
        // 600 running executions at 10 polls a second: each is polled once a minute.
        assert_eq!(config.for_fleet(600).poll_interval, std::time::Duration::from_secs(60));
        assert_eq!(config.for_fleet(600).resync_interval, config.resync_interval);
    }

    #[test]
    fn event_actions_name_the_resource() {
        assert_eq!(
            event_action(
                "LocationCreated",
                "created the source DataSync location arn:aws:datasync:us-east-1:1:location/loc-1 for s3://b/"
            ),
            "LocationCreated loc-1"
        );
        assert_eq!(
            event_action(
                "ExecutionStarted",
                "started DataSync execution arn:aws:datasync:us-east-1:1:task/t/execution/exec-9"
            ),
            "ExecutionStarted exec-9"
        );
        assert_eq!(
            event_action("AclsDisabled", "set Object Ownership of bucket b"),
            "AclsDisabled"
        );
    }
}
