//! The seat feeds of this node, one per show (kept in `ws::registry`): a
//! feed starts with the node's first viewer of a show, seat socket or REST
//! reader, and ends a moment after the last.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::feed::{self, Feed, FeedParts, Replica};
use super::views;
use crate::booking::board::SeatBoard;
use crate::domain::catalog::{Catalog, Show};
use crate::domain::seats::Owner;
use crate::error::{Error, Result, SeatList};
use crate::live::source::SeatSource;
use crate::ws::registry::{Registry, Viewer};

/// How long a feed outlives its last viewer (a page reload keeps it).
pub const LINGER: Duration = Duration::from_secs(5);
/// How long a REST read waits for the replica to reach what this node has
/// seen of the engine (its own writes), before asking the engine instead.
const REST_WAIT: Duration = Duration::from_millis(200);

pub struct SeatHub {
    catalog: Arc<Catalog>,
    locks: Arc<dyn SeatSource>,
    feeds: Arc<Registry<Arc<Feed>>>,
    batch_window: Duration,
    history_batches: usize,
    shards: usize,
}

/// How the hub runs its feeds.
#[derive(Debug, Clone, Copy)]
pub struct FeedTuning {
    /// `SEAT_STREAM_BATCH_MS`: a socket gets at most one delta per window.
    pub batch_window: Duration,
    /// Batches of history kept for catching slow sockets up.
    pub history_batches: usize,
    /// `SEAT_FEEDS_MAX`: feeds kept on this node at most; over it a new
    /// one ends the longest idle.
    pub max_feeds: usize,
}

impl SeatHub {
    pub fn new(catalog: Arc<Catalog>, locks: Arc<dyn SeatSource>, tuning: FeedTuning, linger: Duration) -> Arc<Self> {
        // One write pass per core but one: a batch reaches 10,000 sockets in
        // the time a core writes a share of them, and one core is always
        // left for the requests (holds must not wait behind the fan-out).
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let shards = cores.saturating_sub(1).clamp(1, 8);
        Arc::new(Self {
            catalog,
            locks,
            feeds: Registry::capped(linger, tuning.max_feeds),
            batch_window: tuning.batch_window,
            history_batches: tuning.history_batches,
            shards,
        })
    }

    /// Joins the show's feed, starting it if this is the node's first viewer.
    pub async fn join(&self, show: &str) -> Result<Viewer<Arc<Feed>>> {
        self.feeds.join(show, |stop| self.start(show, stop)).await
    }

    async fn start(&self, show: &str, stop: CancellationToken) -> Result<Arc<Feed>> {
        let catalog_show = self.catalog.show(show).ok_or_else(|| Error::not_found("show"))?;
        let layout = self
            .catalog
            .layout(&catalog_show.screen_id)
            .ok_or_else(|| Error::Internal("show without a layout".into()))?;
        let parts = FeedParts {
            show: show.to_owned(),
            layout,
            locks: self.locks.clone(),
            batch_window: self.batch_window,
            history_batches: self.history_batches,
            shards: self.shards,
        };
        feed::start(parts, stop).await
    }

    fn layout(&self, show: &Show) -> Result<Arc<crate::domain::catalog::Layout>> {
        self.catalog
            .layout(&show.screen_id)
            .ok_or_else(|| Error::Internal("show without a layout".into()))
    }

    /// Waits until the show's feed has what this node has seen of the show
    /// (its own writes: a hold just answered 201), at most `REST_WAIT`, so a
    /// seat map opened after it shows it from its first snapshot. No Redis.
    pub async fn await_seen(&self, viewer: &Viewer<Arc<Feed>>, show: &str) {
        viewer.feed().caught_up(self.locks.seen(show), REST_WAIT).await;
    }

    /// The REST seat map and its ETag. From the feed's replica (no Redis
    /// work per request) once it has reached what this node has seen of the
    /// show; from the engine if it does not catch up at once.
    pub async fn seat_map(&self, show: &Show) -> Result<(String, Bytes)> {
        let viewer = self.join(&show.id).await?;
        if let Some(map) = viewer.feed().rest_map(self.locks.seen(&show.id), REST_WAIT).await {
            return Ok(map);
        }
        let layout = self.layout(show)?;
        let snap = self.locks.snapshot(&show.id).await?;
        let replica = Replica {
            epoch: snap.epoch,
            version: snap.version,
            taken: snap.taken.iter().map(|(s, o)| (s.clone(), Owner::status(o))).collect(),
        };
        Ok((
            views::etag(&replica),
            Bytes::from(views::rest_map(&show.id, &layout, &replica)),
        ))
    }
}

#[async_trait::async_trait]
impl SeatBoard for SeatHub {
    /// From the feed's replica, following the show if this node does not
    /// yet (a conflict in a sale is followed by many); from the engine if
    /// the replica does not catch up at once.
    async fn available(&self, show: &Show) -> Result<SeatList> {
        let viewer = self.join(&show.id).await?;
        if let Some(list) = viewer.feed().available(self.locks.seen(&show.id), REST_WAIT).await {
            return Ok(list);
        }
        let layout = self.layout(show)?;
        let snap = self.locks.snapshot(&show.id).await?;
        Ok(SeatList::new(&layout.free_seats(|s| snap.taken.contains_key(s))))
    }

    /// From the feed's replica as `available` is; from the engine if the
    /// replica does not catch up at once.
    async fn taken_of(&self, show: &Show, seats: &[String]) -> Result<Vec<String>> {
        let viewer = self.join(&show.id).await?;
        let seen = self.locks.seen(&show.id);
        if let Some(taken) = viewer.feed().taken_of(seen, REST_WAIT, seats).await {
            return Ok(taken);
        }
        let snap = self.locks.snapshot(&show.id).await?;
        Ok(seats.iter().filter(|s| snap.taken.contains_key(*s)).cloned().collect())
    }
}
