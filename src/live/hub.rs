//! One feed per show per node. A feed takes the engine's subscription to the
//! show when the node's first viewer arrives and drops it a moment after the
//! last leaves. It keeps a replica of the show's seats, built from one
//! snapshot and then the deltas, so a connecting socket's snapshot costs the
//! node nothing but a lock, whatever the number of viewers. The replica is
//! checked against the engine now and then, so a lost message cannot leave a
//! feed silently behind.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::json;
use tokio::sync::{OnceCell, RwLock, broadcast};
use tokio_util::sync::CancellationToken;

use crate::booking::{self, Booking};
use crate::domain::catalog::Layout;
use crate::domain::seats::{Owner, SeatDelta, SeatStatus};
use crate::error::{Error, Result};

/// Frames a socket may fall behind by before it is sent a fresh snapshot.
pub const DEFAULT_QUEUE_FRAMES: usize = 256;
/// How long a feed outlives its last viewer (a page reload keeps it).
pub const LINGER: Duration = Duration::from_secs(5);
/// How often a feed compares its version with the engine's.
pub const PROBE_EVERY: Duration = Duration::from_secs(5);
/// Backoff bounds when the engine subscription is lost.
const RESUBSCRIBE_MIN: Duration = Duration::from_millis(100);
const RESUBSCRIBE_MAX: Duration = Duration::from_secs(5);

/// What the feed sends its sockets. The JSON is serialized once per node.
#[derive(Debug, Clone)]
pub enum Frame {
    Delta {
        version: u64,
        json: Bytes,
    },
    /// The feed re-read the show (after a gap): every socket resyncs.
    Snapshot {
        version: u64,
        json: Bytes,
    },
}

/// The show's seats as of `version`.
struct Replica {
    version: u64,
    taken: HashMap<String, SeatStatus>,
    /// The snapshot message for this version, built on first need.
    json: Option<Bytes>,
}

pub struct Feed {
    pub show: String,
    layout: Arc<Layout>,
    /// A tokio lock: a resync awaits the engine while holding it, so joiners
    /// wait for the fresh state rather than read a stale one.
    state: RwLock<Replica>,
    tx: broadcast::Sender<Frame>,
    viewers: AtomicUsize,
    stop: CancellationToken,
}

impl Feed {
    fn snapshot_json(&self, r: &Replica) -> Bytes {
        let seats: Vec<serde_json::Value> = self
            .layout
            .seats
            .iter()
            .map(|seat| {
                let id = seat.to_string();
                let status = if self.layout.is_unavailable(&id) {
                    SeatStatus::Unavailable
                } else {
                    r.taken.get(&id).copied().unwrap_or(SeatStatus::Available)
                };
                json!({"id": id, "status": status})
            })
            .collect();
        json!({"type": "snapshot", "showId": self.show, "version": r.version, "seats": seats})
            .to_string()
            .into()
    }

    /// The current snapshot and a receiver of every frame after it.
    pub async fn join(&self) -> (broadcast::Receiver<Frame>, u64, Bytes) {
        let mut r = self.state.write().await;
        let rx = self.tx.subscribe();
        let json = match &r.json {
            Some(j) => j.clone(),
            None => {
                let j = self.snapshot_json(&r);
                r.json = Some(j.clone());
                j
            }
        };
        (rx, r.version, json)
    }

    /// A fresh snapshot for a socket that fell behind.
    pub async fn snapshot(&self) -> (u64, Bytes) {
        let (_, v, j) = self.join().await;
        (v, j)
    }

    pub fn is_stopped(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Applies one delta in order, or resyncs on a gap.
    async fn apply(&self, delta: SeatDelta, booking: &Booking) {
        let mut r = self.state.write().await;
        if delta.version <= r.version {
            return;
        }
        if delta.version != r.version + 1 {
            tracing::info!(show = %self.show, have = r.version, got = delta.version, "seat feed gap; resyncing");
            drop(r);
            self.resync(booking).await;
            return;
        }
        for c in &delta.changes {
            if c.status == SeatStatus::Available {
                r.taken.remove(&c.seat_id);
            } else {
                r.taken.insert(c.seat_id.clone(), c.status);
            }
        }
        r.version = delta.version;
        r.json = None;
        let json = json!({"type": "delta", "version": delta.version, "changes": delta.changes})
            .to_string()
            .into();
        // Sent under the lock: a joiner sees either the old version and this
        // frame, or the new version and not this frame.
        let _ = self.tx.send(Frame::Delta {
            version: delta.version,
            json,
        });
    }

    /// Re-reads the show from the engine and sends every socket a snapshot.
    async fn resync(&self, booking: &Booking) {
        let mut r = self.state.write().await;
        match read(booking, &self.show).await {
            Ok((version, taken)) if version >= r.version => {
                *r = Replica {
                    version,
                    taken,
                    json: None,
                };
                let json = self.snapshot_json(&r);
                r.json = Some(json.clone());
                let _ = self.tx.send(Frame::Snapshot { version, json });
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(show = %self.show, error = %e, "seat feed resync failed"),
        }
    }

    async fn version(&self) -> u64 {
        self.state.read().await.version
    }
}

async fn read(booking: &Booking, show: &str) -> Result<(u64, HashMap<String, SeatStatus>)> {
    let reply = booking.locks.snapshot(show, booking::now().timestamp_millis()).await?;
    let taken = reply
        .out
        .taken
        .iter()
        .map(|(seat, owner)| (seat.clone(), Owner::status(owner)))
        .collect();
    Ok((reply.out.version, taken))
}

/// A socket's hold on a feed; the last one out schedules the feed's end.
pub struct Viewer {
    pub feed: Arc<Feed>,
    hub: Arc<SeatHub>,
}

impl Drop for Viewer {
    fn drop(&mut self) {
        if self.feed.viewers.fetch_sub(1, Ordering::AcqRel) == 1 {
            let (hub, show) = (self.hub.clone(), self.feed.show.clone());
            tokio::spawn(async move { hub.linger_then_drop(show).await });
        }
    }
}

pub struct SeatHub {
    booking: Arc<Booking>,
    feeds: DashMap<String, Arc<OnceCell<Arc<Feed>>>>,
    queue_frames: usize,
    linger: Duration,
}

/// A socket's start: its viewer guard, its queue, and the snapshot to send.
pub struct Joined {
    pub viewer: Viewer,
    pub rx: broadcast::Receiver<Frame>,
    pub version: u64,
    pub snapshot: Bytes,
}

impl SeatHub {
    pub fn new(booking: Arc<Booking>, queue_frames: usize, linger: Duration) -> Arc<Self> {
        Arc::new(Self {
            booking,
            feeds: DashMap::new(),
            queue_frames: queue_frames.max(1),
            linger,
        })
    }

    /// Joins the show's feed, starting it if this is the node's first viewer.
    pub async fn join(self: &Arc<Self>, show: &str) -> Result<Joined> {
        loop {
            let cell = self.feeds.entry(show.to_owned()).or_default().clone();
            let feed = match cell.get_or_try_init(|| self.start(show)).await {
                Ok(feed) => feed.clone(),
                Err(e) => {
                    self.feeds.remove_if(show, |_, c| Arc::ptr_eq(c, &cell));
                    return Err(e);
                }
            };
            feed.viewers.fetch_add(1, Ordering::AcqRel);
            let viewer = Viewer {
                feed: feed.clone(),
                hub: self.clone(),
            };
            if feed.is_stopped() {
                // It ended between lookup and join: start over with a new one.
                continue;
            }
            let (rx, version, snapshot) = feed.join().await;
            return Ok(Joined {
                viewer,
                rx,
                version,
                snapshot,
            });
        }
    }

    async fn start(self: &Arc<Self>, show: &str) -> Result<Arc<Feed>> {
        let catalog_show = self.booking.show(show)?;
        let layout = self
            .booking
            .catalog
            .layout(&catalog_show.screen_id)
            .ok_or_else(|| Error::Internal("show without a layout".into()))?;
        // Subscribe before reading, so no delta falls between the two.
        let stream = self.booking.locks.subscribe(show).await?;
        let (version, taken) = read(&self.booking, show).await?;
        let feed = Arc::new(Feed {
            show: show.to_owned(),
            layout,
            state: RwLock::new(Replica {
                version,
                taken,
                json: None,
            }),
            tx: broadcast::channel(self.queue_frames).0,
            viewers: AtomicUsize::new(0),
            stop: CancellationToken::new(),
        });
        metrics::gauge!(crate::metrics::SEAT_FEEDS).increment(1.0);
        tokio::spawn(run(feed.clone(), self.booking.clone(), stream));
        Ok(feed)
    }

    async fn linger_then_drop(self: Arc<Self>, show: String) {
        tokio::time::sleep(self.linger).await;
        let removed = self.feeds.remove_if(&show, |_, cell| {
            cell.get().is_none_or(|feed| feed.viewers.load(Ordering::Acquire) == 0)
        });
        if let Some((_, cell)) = removed {
            if let Some(feed) = cell.get() {
                feed.stop.cancel();
                metrics::gauge!(crate::metrics::SEAT_FEEDS).decrement(1.0);
            }
            if let Err(e) = self.booking.locks.unsubscribe(&show).await {
                tracing::warn!(%show, error = %e, "unsubscribe failed");
            }
        }
    }

    /// Shows this node has a feed for.
    pub fn feeds(&self) -> usize {
        self.feeds.len()
    }
}

/// A feed's life: deltas in, a probe now and then, resubscribe when lost.
async fn run(feed: Arc<Feed>, booking: Arc<Booking>, mut stream: BoxStream<'static, SeatDelta>) {
    let mut probe = tokio::time::interval(PROBE_EVERY);
    probe.tick().await;
    // The engine's version seen ahead of ours at the last probe: resync only
    // if we are still behind it one probe later (deltas may be in flight).
    let mut ahead: Option<u64> = None;
    loop {
        tokio::select! {
            _ = feed.stop.cancelled() => return,
            next = stream.next() => match next {
                Some(delta) => feed.apply(delta, &booking).await,
                None => {
                    let mut wait = RESUBSCRIBE_MIN;
                    stream = loop {
                        tokio::select! {
                            _ = feed.stop.cancelled() => return,
                            _ = tokio::time::sleep(wait) => {}
                        }
                        match booking.locks.subscribe(&feed.show).await {
                            Ok(s) => break s,
                            Err(e) => {
                                tracing::warn!(show = %feed.show, error = %e, "resubscribe failed");
                                wait = (wait * 2).min(RESUBSCRIBE_MAX);
                            }
                        }
                    };
                    feed.resync(&booking).await;
                }
            },
            _ = probe.tick() => {
                let ours = feed.version().await;
                if ahead.is_some_and(|v| ours < v) {
                    feed.resync(&booking).await;
                    ahead = None;
                } else {
                    ahead = match read(&booking, &feed.show).await {
                        Ok((theirs, _)) if theirs > ours => Some(theirs),
                        _ => None,
                    };
                }
            }
        }
    }
}
