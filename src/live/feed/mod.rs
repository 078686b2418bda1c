//! One show's feed on one node: a replica of the show's seats built from one
//! snapshot and then the engine's deltas, batched into at most one delta
//! frame per `SEAT_STREAM_BATCH_MS` (`fromVersion..version`, the net change
//! per seat; a change after a quiet window goes out at once),
//! encoded once and written to every socket by a few shard passes (one per
//! core), and kept in a short history so a socket that fell behind is
//! caught up with one merged delta instead of a snapshot.
//!
//! The replica is checked against the engine now and then, so a lost
//! message cannot leave the feed silently behind; a new epoch, a gap or a
//! version that went back resyncs it and starts a new generation: every
//! socket is then sent a fresh snapshot (at most one a second per socket).

mod tasks;

pub use tasks::{FeedParts, start};

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Instant;

use super::conn::{Conn, Position, Sink};
use super::views;
use crate::domain::catalog::Layout;
use crate::domain::seats::{SeatChange, SeatDelta, SeatStatus};
use crate::error::{Result, SeatList};
use crate::live::source::SeatSource;
use crate::metrics as m;
use crate::ws::frame::Shared;

/// How often a feed compares its version with the engine's.
pub const PROBE_EVERY: Duration = Duration::from_secs(5);
/// Merged frames kept (a handful of versions sockets are at).
const MERGED_CACHE: usize = 64;
/// Backoff bounds when the engine subscription is lost.
const RESUBSCRIBE_MIN: Duration = Duration::from_millis(100);
const RESUBSCRIBE_MAX: Duration = Duration::from_secs(5);

/// How long after a (re)sync a delta at or below the replica's version is
/// taken for one the snapshot already had, not for Redis going back.
const STALE_GRACE: Duration = Duration::from_secs(2);

/// What a delta did to the replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DeltaFate {
    Applied,
    /// One the snapshot had already (just after a read).
    Stale,
    /// A gap or another epoch: read the show again.
    Resync,
    /// Below the replica's version, long after its read: Redis went back.
    WentBack,
}

/// The show's seats as of `version` of `epoch`.
#[derive(Debug, Clone)]
pub struct Replica {
    pub epoch: String,
    pub version: u64,
    pub taken: HashMap<String, SeatStatus>,
}

/// One emitted batch: versions `from..=to` of `generation`.
pub struct Sent {
    pub generation: u64,
    pub from: u64,
    pub to: u64,
    /// The net change per seat, in first-touched order.
    changes: Vec<SeatChange>,
    pub frame: Shared,
}

/// Changes collected for the next frame.
struct Batch {
    from: u64,
    order: Vec<String>,
    status: HashMap<String, SeatStatus>,
    started: Instant,
}

struct State {
    replica: Replica,
    /// When the replica was last read whole.
    synced_at: Instant,
    generation: u64,
    batch: Option<Batch>,
    /// When the last batch went out: the next goes out at once if the
    /// window since has passed (a lone change waits for nothing), else when
    /// it does.
    last_emit: Option<Instant>,
    history: VecDeque<Arc<Sent>>,
    /// The snapshot frame and the REST seat map of the current version,
    /// built on first need.
    snapshot: Option<Shared>,
    rest: Option<Bytes>,
    /// The available seats of the current version (a conflict's answer),
    /// built on first need.
    available: Option<SeatList>,
}

/// A shard of the feed's sockets, written by its own pass.
struct Shard {
    conns: Mutex<Vec<Arc<Conn>>>,
    latest: watch::Sender<Option<Arc<Sent>>>,
}

pub struct Feed {
    pub show: String,
    layout: Arc<Layout>,
    state: Mutex<State>,
    shards: Vec<Shard>,
    next_shard: AtomicUsize,
    locks: Arc<dyn SeatSource>,
    batch_window: Duration,
    /// Batches kept for catching sockets up; a socket further behind gets a snapshot.
    history_batches: usize,
    /// Merged frames by (generation, from, to): sockets and shards at the
    /// same version share one.
    merged: Mutex<HashMap<(u64, u64, u64), Shared>>,
    /// Wakes REST readers waiting for the replica to reach a version.
    applied: tokio::sync::Notify,
}

/// Where a new socket starts: its position and its first frame.
pub struct Start {
    pub at: Position,
    pub snapshot: Bytes,
}

impl Feed {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the show from the engine.
    async fn read(&self) -> Result<Replica> {
        tasks::read(self.locks.as_ref(), &self.show).await
    }

    /// Registers a socket: it starts at the current version with the
    /// current snapshot, and is offered every batch after it.
    pub fn add(&self, sink: Sink, deflate: bool) -> Arc<Conn> {
        let mut st = self.lock();
        let snapshot = self.snapshot_of(&mut st);
        let at = Position {
            generation: st.generation,
            version: st.replica.version,
        };
        let conn = Arc::new(Conn::new(sink, at, snapshot.for_socket(deflate), deflate));
        let shard = self.next_shard.fetch_add(1, Ordering::Relaxed) % self.shards.len();
        // Under the state lock: no batch is emitted between the snapshot and this.
        self.shards[shard]
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn.clone());
        drop(st);
        conn.wake.notify_one();
        conn
    }

    fn snapshot_of(&self, st: &mut State) -> Shared {
        if let Some(s) = &st.snapshot {
            return s.clone();
        }
        let json = views::snapshot(&self.show, &self.layout, &st.replica);
        let frame = Shared::text(json.as_bytes());
        st.snapshot = Some(frame.clone());
        frame
    }

    /// Runs `f` on the state once the replica has reached `at_least` (what
    /// this node has seen of the engine); `None` if it does not within `wait`.
    async fn when_current<T>(
        &self,
        at_least: Option<(String, u64)>,
        wait: Duration,
        mut f: impl FnMut(&mut State) -> T,
    ) -> Option<T> {
        let deadline = Instant::now() + wait;
        loop {
            let notified = self.applied.notified();
            {
                let mut st = self.lock();
                let current = at_least
                    .as_ref()
                    .is_none_or(|(epoch, v)| *epoch != st.replica.epoch || st.replica.version >= *v);
                if current {
                    return Some(f(&mut st));
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// Waits (at most `wait`) until the replica has reached `at_least`:
    /// answers whether it did.
    pub async fn caught_up(&self, at_least: Option<(String, u64)>, wait: Duration) -> bool {
        self.when_current(at_least, wait, |_| ()).await.is_some()
    }

    /// The REST seat map as of the replica, with its ETag, once the replica
    /// has reached `at_least`; `None` if it does not within `wait`.
    pub async fn rest_map(&self, at_least: Option<(String, u64)>, wait: Duration) -> Option<(String, Bytes)> {
        self.when_current(at_least, wait, |st| {
            let etag = views::etag(&st.replica);
            let body = st
                .rest
                .get_or_insert_with(|| Bytes::from(views::rest_map(&self.show, &self.layout, &st.replica)))
                .clone();
            (etag, body)
        })
        .await
    }

    /// The show's available seats as of the replica, once it has reached
    /// `at_least`; `None` if it does not within `wait`. Built once per version.
    pub async fn available(&self, at_least: Option<(String, u64)>, wait: Duration) -> Option<SeatList> {
        self.when_current(at_least, wait, |st| {
            st.available
                .get_or_insert_with(|| SeatList::new(&self.layout.free_seats(|s| st.replica.taken.contains_key(s))))
                .clone()
        })
        .await
    }

    /// Which of `seats` the replica shows held or booked, once it has
    /// reached `at_least`; `None` if it does not within `wait`.
    pub async fn taken_of(
        &self,
        at_least: Option<(String, u64)>,
        wait: Duration,
        seats: &[String],
    ) -> Option<Vec<String>> {
        self.when_current(at_least, wait, |st| {
            seats
                .iter()
                .filter(|s| st.replica.taken.contains_key(s.as_str()))
                .cloned()
                .collect()
        })
        .await
    }

    /// One delta frame for versions `from..=to` of the history (the net change
    /// per seat), shared by every socket that needs that range: built once.
    fn merged(&self, st: &State, from: u64, to: u64) -> Shared {
        let key = (st.generation, from, to);
        let mut cache = self.merged.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = cache.get(&key) {
            return f.clone();
        }
        let mut order: Vec<String> = Vec::new();
        let mut status: HashMap<String, SeatStatus> = HashMap::new();
        for sent in st.history.iter().filter(|s| s.to >= from && s.from <= to) {
            for c in &sent.changes {
                if status.insert(c.seat_id.clone(), c.status).is_none() {
                    order.push(c.seat_id.clone());
                }
            }
        }
        let changes: Vec<SeatChange> = order
            .into_iter()
            .map(|seat| SeatChange {
                status: status[&seat],
                seat_id: seat,
            })
            .collect();
        let frame = Shared::text(views::delta(&st.replica.epoch, from, to, &changes).as_bytes());
        if cache.len() >= MERGED_CACHE {
            cache.clear();
        }
        cache.insert(key, frame.clone());
        frame
    }

    /// A frame that brings a socket at `at` to the current version: one
    /// merged delta from the history, or a snapshot if the history does not
    /// reach back far enough (or the generation changed).
    pub fn catch_up(&self, at: Position) -> (Position, Shared, bool) {
        let mut st = self.lock();
        let now = Position {
            generation: st.generation,
            version: st.replica.version,
        };
        // Versions still in the open batch are sent with it, not now.
        let sent_to = st.history.back().map(|s| s.to).unwrap_or(0);
        let from_history = at.generation == st.generation
            && st.history.front().is_some_and(|s| s.from <= at.version + 1)
            && sent_to > at.version;
        if from_history {
            let frame = self.merged(&st, at.version + 1, sent_to);
            let to = Position {
                generation: st.generation,
                version: sent_to,
            };
            return (to, frame, false);
        }
        if at.generation == st.generation && at.version >= sent_to {
            // Current with what was sent; the open batch comes with its frame.
            return (at, Shared::default(), false);
        }
        // A snapshot is at the replica's version, open batch included.
        let snapshot = self.snapshot_of(&mut st);
        (now, snapshot, true)
    }

    /// Applies one delta, or says what it shows instead.
    fn apply(&self, delta: SeatDelta) -> DeltaFate {
        let mut st = self.lock();
        if delta.epoch != st.replica.epoch {
            return DeltaFate::Resync;
        }
        if delta.version <= st.replica.version {
            // Pub/sub delivers each message once: a delta at or below the
            // replica's version is one read with the snapshot (it arrives
            // just after a (re)sync), or Redis went back and counts again.
            return if st.synced_at.elapsed() < STALE_GRACE {
                DeltaFate::Stale
            } else {
                DeltaFate::WentBack
            };
        }
        if delta.version != st.replica.version + 1 {
            return DeltaFate::Resync;
        }
        let batch = st.batch.get_or_insert_with(|| Batch {
            from: delta.version,
            order: Vec::new(),
            status: HashMap::new(),
            started: Instant::now(),
        });
        for c in &delta.changes {
            if batch.status.insert(c.seat_id.clone(), c.status).is_none() {
                batch.order.push(c.seat_id.clone());
            }
        }
        for c in delta.changes {
            if c.status == SeatStatus::Available {
                st.replica.taken.remove(&c.seat_id);
            } else {
                st.replica.taken.insert(c.seat_id, c.status);
            }
        }
        st.replica.version = delta.version;
        st.snapshot = None;
        st.rest = None;
        st.available = None;
        drop(st);
        self.applied.notify_waiters();
        DeltaFate::Applied
    }

    /// When the open batch goes out, if one is open: at once after a quiet
    /// window, else one window after the last batch.
    fn batch_due(&self) -> Option<Instant> {
        let st = self.lock();
        let batch = st.batch.as_ref()?;
        Some(match st.last_emit {
            Some(last) => batch.started.max(last + self.batch_window),
            None => batch.started,
        })
    }

    /// Closes the open batch: one frame for every socket.
    fn emit(&self) {
        let mut st = self.lock();
        let Some(batch) = st.batch.take() else { return };
        st.last_emit = Some(Instant::now());
        let to = st.replica.version;
        let changes: Vec<SeatChange> = batch
            .order
            .into_iter()
            .map(|seat| SeatChange {
                status: batch.status[&seat],
                seat_id: seat,
            })
            .collect();
        let json = views::delta(&st.replica.epoch, batch.from, to, &changes);
        let sent = Arc::new(Sent {
            generation: st.generation,
            from: batch.from,
            to,
            changes,
            frame: Shared::text(json.as_bytes()),
        });
        st.history.push_back(sent.clone());
        while st.history.len() > self.history_batches {
            st.history.pop_front();
        }
        metrics::histogram!(m::SEAT_FEED_LAG).record(batch.started.elapsed().as_secs_f64());
        // Sent to the shards under the lock: a socket added after this sees
        // the new version in its snapshot, one added before gets this frame.
        for shard in &self.shards {
            shard.latest.send_replace(Some(sent.clone()));
        }
    }

    /// Replaces the replica with a fresh read from the engine. A new
    /// generation unless it simply moved on within the same epoch.
    async fn resync(&self) {
        match self.read().await {
            Ok(fresh) => {
                let mut st = self.lock();
                if fresh.epoch == st.replica.epoch && fresh.version == st.replica.version && st.batch.is_none() {
                    return;
                }
                tracing::info!(
                    show = %self.show, have = st.replica.version, now = fresh.version,
                    epoch_changed = fresh.epoch != st.replica.epoch, "seat feed resynced"
                );
                st.replica = fresh;
                st.synced_at = Instant::now();
                st.generation += 1;
                st.batch = None;
                st.history.clear();
                st.snapshot = None;
                st.rest = None;
                st.available = None;
                let reset = Arc::new(Sent {
                    generation: st.generation,
                    from: 0,
                    to: st.replica.version,
                    changes: Vec::new(),
                    frame: Shared::default(),
                });
                for shard in &self.shards {
                    shard.latest.send_replace(Some(reset.clone()));
                }
                drop(st);
                self.applied.notify_waiters();
                metrics::counter!(m::SEAT_FEED_RESYNCS).increment(1);
            }
            Err(e) => tracing::warn!(show = %self.show, error = %e, "seat feed resync failed"),
        }
    }

    fn position(&self) -> (String, u64) {
        let st = self.lock();
        (st.replica.epoch.clone(), st.replica.version)
    }

    /// Sockets on this feed (for the metric and tests).
    pub fn sockets(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.conns.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}
