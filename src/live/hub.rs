//! One feed per show per node. A feed takes the engine's subscription to the
//! show when the node's first viewer arrives and drops it a moment after the
//! last leaves. It keeps a replica of the show's seats, built from one
//! snapshot and then the deltas, so a connecting socket's snapshot costs the
//! node nothing but a lock, whatever the number of viewers. The replica is
//! checked against the engine now and then, so a lost message cannot leave a
//! feed silently behind.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::json;
use tokio::sync::{RwLock, broadcast};
use tokio_util::sync::CancellationToken;

use crate::booking::locks::SeatLocks;
use crate::clock::Clock;
use crate::domain::catalog::{Catalog, Layout};
use crate::domain::seats::{Owner, SeatDelta, SeatStatus};
use crate::error::{Error, Result};
use crate::ws::registry::{Registry, Viewer};

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

/// The show's seats as of `version` of `epoch`.
struct Replica {
    epoch: String,
    version: u64,
    taken: HashMap<String, SeatStatus>,
    /// The snapshot message for this version, built on first need.
    json: Option<Bytes>,
}

/// Where a feed reads the show from.
#[derive(Clone)]
struct Source {
    locks: Arc<dyn SeatLocks>,
    clock: Clock,
}

impl Source {
    async fn read(&self, show: &str) -> Result<Replica> {
        let reply = self.locks.snapshot(show, self.clock.now_ms()).await?;
        let taken = reply
            .out
            .taken
            .iter()
            .map(|(seat, owner)| (seat.clone(), Owner::status(owner)))
            .collect();
        Ok(Replica {
            epoch: reply.out.epoch,
            version: reply.out.version,
            taken,
            json: None,
        })
    }
}

pub struct Feed {
    pub show: String,
    layout: Arc<Layout>,
    /// A tokio lock: a resync awaits the engine while holding it, so joiners
    /// wait for the fresh state rather than read a stale one.
    state: RwLock<Replica>,
    tx: broadcast::Sender<Frame>,
    source: Source,
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
        json!({"type": "snapshot", "showId": self.show, "epoch": r.epoch, "version": r.version, "seats": seats})
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

    /// Applies one delta in order, or resyncs on a gap or a new epoch (the
    /// show was rebuilt: a delta of another epoch is never forwarded).
    async fn apply(&self, delta: SeatDelta) {
        let mut r = self.state.write().await;
        if delta.epoch != r.epoch {
            tracing::info!(show = %self.show, have = %r.epoch, got = %delta.epoch, "seat feed: new epoch; resyncing");
            drop(r);
            self.resync().await;
            return;
        }
        if delta.version <= r.version {
            return;
        }
        if delta.version != r.version + 1 {
            tracing::info!(show = %self.show, have = r.version, got = delta.version, "seat feed gap; resyncing");
            drop(r);
            self.resync().await;
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
        let json = json!({
            "type": "delta", "epoch": r.epoch, "fromVersion": delta.version,
            "version": delta.version, "changes": delta.changes,
        })
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
    async fn resync(&self) {
        let mut r = self.state.write().await;
        match self.source.read(&self.show).await {
            Ok(fresh) if fresh.epoch != r.epoch || fresh.version >= r.version => {
                *r = fresh;
                let version = r.version;
                let json = self.snapshot_json(&r);
                r.json = Some(json.clone());
                let _ = self.tx.send(Frame::Snapshot { version, json });
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(show = %self.show, error = %e, "seat feed resync failed"),
        }
    }

    async fn position(&self) -> (String, u64) {
        let r = self.state.read().await;
        (r.epoch.clone(), r.version)
    }
}

/// The seat feeds of this node.
pub struct SeatHub {
    catalog: Arc<Catalog>,
    source: Source,
    feeds: Arc<Registry<Arc<Feed>>>,
    queue_frames: usize,
}

/// A socket's start: its hold on the feed, its queue, and the snapshot to send.
pub struct Joined {
    pub viewer: Viewer<Arc<Feed>>,
    pub rx: broadcast::Receiver<Frame>,
    pub version: u64,
    pub snapshot: Bytes,
}

impl SeatHub {
    pub fn new(
        catalog: Arc<Catalog>,
        locks: Arc<dyn SeatLocks>,
        clock: Clock,
        queue_frames: usize,
        linger: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            catalog,
            source: Source { locks, clock },
            feeds: Registry::new(linger),
            queue_frames: queue_frames.max(1),
        })
    }

    /// Joins the show's feed, starting it if this is the node's first viewer.
    pub async fn join(&self, show: &str) -> Result<Joined> {
        let viewer = self.feeds.join(show, |stop| self.start(show, stop)).await?;
        let (rx, version, snapshot) = viewer.feed().join().await;
        Ok(Joined {
            viewer,
            rx,
            version,
            snapshot,
        })
    }

    async fn start(&self, show: &str, stop: CancellationToken) -> Result<Arc<Feed>> {
        let catalog_show = self.catalog.show(show).ok_or_else(|| Error::not_found("show"))?;
        let layout = self
            .catalog
            .layout(&catalog_show.screen_id)
            .ok_or_else(|| Error::Internal("show without a layout".into()))?;
        // Subscribe before reading, so no delta falls between the two.
        let stream = self.source.locks.subscribe(show).await?;
        let replica = self.source.read(show).await?;
        let (tx, _) = broadcast::channel(self.queue_frames);
        let feed = Arc::new(Feed {
            show: show.to_owned(),
            layout,
            state: RwLock::new(replica),
            tx,
            source: self.source.clone(),
        });
        metrics::gauge!(crate::metrics::SEAT_FEEDS).increment(1.0);
        tokio::spawn(run(feed.clone(), stream, stop));
        Ok(feed)
    }
}

/// A feed's life: deltas in, a probe now and then, resubscribe when lost;
/// when the registry stops it, it lets go of its subscription.
async fn run(feed: Arc<Feed>, stream: BoxStream<'static, SeatDelta>, stop: CancellationToken) {
    follow(&feed, stream, &stop).await;
    metrics::gauge!(crate::metrics::SEAT_FEEDS).decrement(1.0);
    if let Err(e) = feed.source.locks.unsubscribe(&feed.show).await {
        tracing::warn!(show = %feed.show, error = %e, "unsubscribe failed");
    }
}

async fn follow(feed: &Feed, mut stream: BoxStream<'static, SeatDelta>, stop: &CancellationToken) {
    let mut probe = tokio::time::interval(PROBE_EVERY);
    probe.tick().await;
    // The engine's version seen ahead of ours at the last probe: resync only
    // if we are still behind it one probe later (deltas may be in flight).
    let mut ahead: Option<u64> = None;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            next = stream.next() => match next {
                Some(delta) => feed.apply(delta).await,
                None => {
                    let mut wait = RESUBSCRIBE_MIN;
                    stream = loop {
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            _ = tokio::time::sleep(wait) => {}
                        }
                        match feed.source.locks.subscribe(&feed.show).await {
                            Ok(s) => break s,
                            Err(e) => {
                                tracing::warn!(show = %feed.show, error = %e, "resubscribe failed");
                                wait = (wait * 2).min(RESUBSCRIBE_MAX);
                            }
                        }
                    };
                    feed.resync().await;
                }
            },
            _ = probe.tick() => {
                let (epoch, ours) = feed.position().await;
                if ahead.is_some_and(|v| ours < v) {
                    feed.resync().await;
                    ahead = None;
                } else {
                    ahead = match feed.source.read(&feed.show).await {
                        // Rebuilt, or gone back: resync now, whatever the version.
                        Ok(theirs) if theirs.epoch != epoch || theirs.version < ours => {
                            feed.resync().await;
                            None
                        }
                        Ok(theirs) if theirs.version > ours => Some(theirs.version),
                        _ => None,
                    };
                }
            }
        }
    }
}
