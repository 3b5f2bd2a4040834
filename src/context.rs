//! What every reconcile shares: the Kubernetes client, the AWS identities, the event recorder,
//! the metrics and the timing knobs, and the one way to publish a Kubernetes event. It sits
//! below `summary`, `steps` and `controller`, which all use it.

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
    /// DataSync's quota of tasks per account and Region as Ferry knows it (AWS's default 100;
    /// set it after a quota increase): with this many tasks listed, a refused `CreateTask` is
    /// the quota, and the transfer waits for a slot.
    pub datasync_task_quota: u32,
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
            datasync_task_quota: 100,
        }
    }
}

/// One lock per shared AWS document, by key: a destination bucket (its policy and ownership), a
/// KMS key (its key policy), a pool of shared roles (who joins which role). Reconciles of
/// different transfers take turns at it, since AWS can only read-modify-write these without
/// conditions.
#[derive(Default)]
pub struct SharedLocks {
    locks: std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
}

impl SharedLocks {
    /// Waits for the key's turn; the guard ends it.
    pub async fn lock(&self, bucket: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            locks.entry(bucket.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

/// The first shared role of each pool that may still have room, as learnt from IAM's answers
/// (`LimitExceeded` at a role's 10,240 characters of inline policies). In memory: after a
/// restart the first new member of a pool learns it again, one refused `PutRolePolicy` per
/// full role.
#[derive(Default)]
pub struct RolePools {
    open: std::sync::Mutex<std::collections::HashMap<String, u32>>,
}

impl RolePools {
    /// The first shard of `pool` not known to be full.
    pub fn first_open(&self, pool: &str) -> u32 {
        let open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        open.get(pool).copied().unwrap_or(0)
    }

    /// IAM refused another policy on `shard`: new members start after it.
    pub fn full(&self, pool: &str, shard: u32) {
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let first = open.entry(pool.to_string()).or_insert(0);
        *first = (*first).max(shard + 1);
    }

    /// A member left `shard`: it has room again.
    pub fn freed(&self, pool: &str, shard: u32) {
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(first) = open.get_mut(pool) {
            *first = (*first).min(shard);
        }
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

/// Where a transfer waits for a DataSync task slot: an account and a Region.
pub type SlotKey = (String, String);

/// Transfers waiting for a DataSync task slot, per account and Region, in the order they were
/// created (first come, first served; the order survives a restart). Each task Ferry deletes in
/// an account and Region grants its slot to the first waiting transfer without one, and wakes
/// it: as many transfers go on at once as slots were freed. Besides them, only the first
/// transfer without a grant tries `CreateTask` again (slots freed outside Ferry, a raised
/// quota); a create of it that succeeds wakes the next. The others wait without an AWS call.
pub struct TaskQueue {
    lines: std::sync::Mutex<Lines>,
    wake: tokio::sync::mpsc::UnboundedSender<(String, String)>,
    /// Woken and not reconciled since: their failure's retry delay no longer holds.
    woken: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// The queues and the slots granted in them.
#[derive(Default)]
struct Lines {
    waiting: std::collections::HashMap<SlotKey, std::collections::BTreeSet<Waiter>>,
    /// Transfers a freed slot was granted to (by uid), until they leave or are refused again.
    granted: std::collections::HashSet<String>,
}

impl Lines {
    /// The waiters of `key` without a grant, in order.
    fn ungranted<'a>(&'a self, key: &SlotKey) -> impl Iterator<Item = &'a Waiter> + 'a {
        self.waiting
            .get(key)
            .into_iter()
            .flatten()
            .filter(|w| !self.granted.contains(&w.uid))
    }
}

/// One waiting transfer: ordered by creation time, then uid; with its namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Waiter {
    /// `metadata.creationTimestamp` (seconds).
    pub created: i64,
    /// `metadata.uid`.
    pub uid: String,
    /// Namespace and name, to wake it.
    pub object: (String, String),
}

impl TaskQueue {
    /// A queue that wakes transfers through `wake` (namespace, name).
    pub fn new(wake: tokio::sync::mpsc::UnboundedSender<(String, String)>) -> Self {
        Self {
            lines: Default::default(),
            wake,
            woken: Default::default(),
        }
    }

    fn wake(&self, waiter: &Waiter) {
        self.woken
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(waiter.uid.clone());
        let _ = self.wake.send(waiter.object.clone());
    }

    /// Whether the transfer was woken since its last reconcile (and forgets it).
    pub fn take_woken(&self, uid: &str) -> bool {
        self.woken
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(uid)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lines> {
        self.lines.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Puts a transfer in the queue of `key` (again: no change) after a refusal at the quota
    /// (a slot granted to it was taken meanwhile: the grant is gone); its place (1 = first)
    /// and the queue's length.
    pub fn join(&self, key: &SlotKey, waiter: Waiter) -> (usize, usize) {
        let mut lines = self.lock();
        lines.granted.remove(&waiter.uid);
        let queue = lines.waiting.entry(key.clone()).or_default();
        queue.insert(waiter.clone());
        let place = queue.iter().position(|w| *w == waiter).unwrap_or_default() + 1;
        (place, queue.len())
    }

    /// How many transfers without a grant wait before this one in the queue of `key` (0: none,
    /// no queue, or a freed slot was granted to this one).
    pub fn ahead(&self, key: &SlotKey, waiter: &Waiter) -> usize {
        let lines = self.lock();
        if lines.granted.contains(&waiter.uid) {
            return 0;
        }
        lines.ungranted(key).take_while(|w| *w < waiter).count()
    }

    /// Whether the transfer `uid` waits behind another one without a grant of its own (in any
    /// queue).
    pub fn behind_another(&self, uid: &str) -> bool {
        let lines = self.lock();
        !lines.granted.contains(uid)
            && lines
                .waiting
                .keys()
                .any(|key| lines.ungranted(key).skip(1).any(|w| w.uid == uid))
    }

    /// Takes a transfer out of every queue (it got its task, or it is gone). When it was the
    /// first without a grant, the next one tries too (its create may have found a slot freed
    /// outside Ferry, or a raised quota: there may be more).
    pub fn leave(&self, uid: &str) {
        let mut woken = Vec::new();
        {
            let mut lines = self.lock();
            let was_granted = lines.granted.remove(uid);
            let keys: Vec<SlotKey> = lines.waiting.keys().cloned().collect();
            for key in keys {
                let was_first = !was_granted && lines.ungranted(&key).next().is_some_and(|w| w.uid == uid);
                if let Some(queue) = lines.waiting.get_mut(&key) {
                    queue.retain(|w| w.uid != uid);
                }
                if was_first && let Some(next) = lines.ungranted(&key).next() {
                    woken.push(next.clone());
                }
            }
            lines.waiting.retain(|_, queue| !queue.is_empty());
        }
        for waiter in woken {
            self.wake(&waiter);
        }
    }

    /// A task slot was freed in `key` (Ferry deleted a task there): it is granted to the first
    /// waiting transfer without one, which goes on now.
    pub fn freed(&self, key: &SlotKey) {
        let first = {
            let mut lines = self.lock();
            let first = lines.ungranted(key).next().cloned();
            if let Some(waiter) = &first {
                lines.granted.insert(waiter.uid.clone());
            }
            first
        };
        if let Some(waiter) = first {
            self.wake(&waiter);
        }
    }

    /// [`freed`](Self::freed) for the account and Region of a deleted task's ARN.
    pub fn freed_task(&self, task_arn: &str) {
        use crate::naming::{arn_account, arn_region};
        if let (Some(account), Some(region)) = (arn_account(task_arn), arn_region(task_arn)) {
            self.freed(&(account.to_string(), region.to_string()));
        }
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
    pub locks: SharedLocks,
    /// The one namespace the operator watches (`--namespace`), or all.
    pub watch_namespace: Option<String>,
    /// When each transfer was last checked and polled.
    pub memory: Memory,
    /// The platform's `TransferPolicy`s and the namespaces they select.
    pub tenancy: crate::tenancy::Tenancy,
    /// Transfers waiting for a DataSync task slot.
    pub task_queue: TaskQueue,
    /// Which shared DataSync roles have room.
    pub role_pools: RolePools,
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
    use super::{ControllerConfig, RolePools, TaskQueue, Waiter, event_action, outdated};

    #[test]
    fn the_first_role_with_room_only_moves_forward_until_a_member_leaves() {
        let pools = RolePools::default();
        assert_eq!(pools.first_open("p"), 0);
        pools.full("p", 0);
        pools.full("p", 2);
        assert_eq!(pools.first_open("p"), 3, "roles 0 to 2 are known to be full");
        pools.full("p", 1);
        assert_eq!(
            pools.first_open("p"),
            3,
            "a late refusal of an earlier role moves nothing back"
        );
        pools.freed("p", 1);
        assert_eq!(pools.first_open("p"), 1, "a member left role 1");
        assert_eq!(pools.first_open("other"), 0);
    }

    fn waiter(created: i64, uid: &str) -> Waiter {
        Waiter {
            created,
            uid: uid.into(),
            object: ("ns".into(), uid.into()),
        }
    }

    #[test]
    fn the_task_queue_is_first_come_first_served_and_wakes_the_next() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let queue = TaskQueue::new(tx);
        let key = ("111111111111".to_string(), "us-east-1".to_string());
        assert_eq!(queue.ahead(&key, &waiter(5, "e")), 0, "no queue: try");
        assert_eq!(queue.join(&key, waiter(20, "b")), (1, 1));
        assert_eq!(queue.join(&key, waiter(10, "a")), (1, 2), "created earlier: first");
        assert_eq!(
            queue.join(&key, waiter(20, "b")),
            (2, 2),
            "joining again changes nothing"
        );
        assert_eq!(queue.ahead(&key, &waiter(30, "c")), 2, "a newcomer waits behind both");
        assert!(queue.behind_another("b") && !queue.behind_another("a"));
        queue.freed(&key);
        assert_eq!(
            rx.try_recv().ok(),
            Some(("ns".into(), "a".into())),
            "a freed slot wakes the first"
        );
        assert!(queue.take_woken("a") && !queue.take_woken("a"));
        assert_eq!(
            queue.ahead(&key, &waiter(20, "b")),
            0,
            "b is the first without a grant: it may ask AWS"
        );
        queue.leave("a");
        assert!(rx.try_recv().is_err(), "a took the freed slot: nobody else is woken");
        // The first without a grant that got its task wakes the next: there may be more room.
        queue.join(&key, waiter(40, "d"));
        queue.leave("b");
        assert_eq!(
            rx.try_recv().ok(),
            Some(("ns".into(), "d".into())),
            "the first leaving wakes the next"
        );
        queue.leave("d");
        assert!(rx.try_recv().is_err(), "nobody left to wake");

        // Three slots freed at once: three transfers go on at once, the fourth waits.
        for (created, uid) in [(1, "p"), (2, "q"), (3, "r"), (4, "s")] {
            queue.join(&key, waiter(created, uid));
        }
        for _ in 0..3 {
            queue.freed(&key);
        }
        let woken: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok()).map(|(_, n)| n).collect();
        assert_eq!(woken, ["p", "q", "r"], "one grant per freed slot, in order");
        for uid in ["p", "q", "r"] {
            assert_eq!(queue.ahead(&key, &waiter(0, uid)), 0, "{uid} was granted a slot");
            assert!(!queue.behind_another(uid));
        }
        assert_eq!(
            queue.ahead(&key, &waiter(4, "s")),
            0,
            "the first without a grant may ask AWS"
        );
        queue.join(&key, waiter(5, "t"));
        assert!(queue.behind_another("t"), "behind s");
        // A granted transfer refused anyway loses its grant and waits in its place again.
        queue.join(&key, waiter(1, "p"));
        assert!(!queue.behind_another("p"), "first without a grant again");
        assert!(queue.behind_another("s"));
        // A granted one that got its task wakes nobody: its slot was the freed one.
        queue.leave("q");
        assert!(rx.try_recv().is_err());
        for uid in ["p", "r", "s", "t"] {
            queue.leave(uid);
        }
        let _ = std::iter::from_fn(|| rx.try_recv().ok()).count();
        assert_eq!(queue.ahead(&key, &waiter(30, "c")), 0, "an empty queue is gone");
        queue.join(&key, waiter(1, "z"));
        queue.freed_task("arn:aws:datasync:us-east-1:111111111111:task/task-0123");
        assert_eq!(
            rx.try_recv().ok(),
            Some(("ns".into(), "z".into())),
            "a deleted task's ARN names the queue"
        );
    }

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
