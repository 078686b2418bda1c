//! Queue sockets on one node. Per show, one feed subscribes to the room's
//! events and keeps the exact position of each of this node's sockets from
//! them alone (`domain::waitroom::PositionBook`): Redis work per admission
//! tick does not grow with the number of waiting shoppers. A gap in the
//! event sequence makes the feed re-read its sockets' ranks in one batch.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;

use super::engine::{RoomEvent, Stand, Standing, WaitingRooms};
use crate::auth::Tokens;
use crate::clock::Clock;
use crate::domain::waitroom::{PositionBook, QueueChange, eta_seconds};
use crate::error::Result;
use crate::ws::registry::{Registry, Viewer};

/// Users per rank re-read (one script call each).
const REREAD_CHUNK: usize = 1000;
/// A feed outlives its last socket by this long.
const LINGER: Duration = Duration::from_secs(5);

/// What a queue socket shows; sessions send the latest, coalesced.
#[derive(Debug, Clone, PartialEq)]
pub enum SocketView {
    Queued {
        position: u64,
        queue_length: u64,
        eta_seconds: Option<u64>,
    },
    PreQueued {
        entrants: u64,
    },
    Admitted {
        token: String,
        expires_ms: i64,
    },
    SoldOut {
        position: u64,
        queue_length: u64,
    },
    /// The room was removed: the show is no longer gated.
    Closed,
}

struct Socket {
    user: String,
    view: watch::Sender<SocketView>,
}

/// Events kept to bring a socket registered as of an older one up to date.
const RECENT_EVENTS: usize = 1024;

struct FeedState {
    book: PositionBook<u64>,
    sockets: HashMap<u64, Socket>,
    last_seq: u64,
    /// The last events applied, for sockets whose join was read before them.
    recent: VecDeque<(u64, QueueChange)>,
    queue_length: u64,
    rate: f64,
    sold_out: bool,
}

pub struct QueueFeed {
    show: String,
    /// A tokio mutex: registration reads Redis under it, so no event is
    /// applied between a socket's read and its entry in the book.
    state: Mutex<FeedState>,
}

/// Rate used for ETAs when none has been observed yet.
pub type ConfiguredRate = Arc<dyn Fn(&str) -> Option<f64> + Send + Sync>;

pub struct QueueHub {
    engine: Arc<dyn WaitingRooms>,
    tokens: Arc<Tokens>,
    feeds: Arc<Registry<Arc<QueueFeed>>>,
    next_id: AtomicU64,
    configured_rate: ConfiguredRate,
    clock: Clock,
}

/// A registered socket; dropping it unregisters.
pub struct Registration {
    pub id: u64,
    pub user: String,
    pub view: watch::Receiver<SocketView>,
    viewer: Option<Viewer<Arc<QueueFeed>>>,
}

/// Logs an applied event for sockets registering as of an older one.
fn remember(st: &mut FeedState, seq: u64, change: QueueChange) {
    st.recent.push_back((seq, change));
    if st.recent.len() > RECENT_EVENTS {
        st.recent.pop_front();
    }
}

impl Registration {
    /// A registration on no feed, for testing a session on channels.
    #[cfg(test)]
    pub fn detached(user: &str, view: watch::Receiver<SocketView>) -> Self {
        Self {
            id: 0,
            user: user.to_owned(),
            view,
            viewer: None,
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let (Some(viewer), id) = (self.viewer.take(), self.id) else {
            return;
        };
        tokio::spawn(async move {
            {
                let mut st = viewer.feed().state.lock().await;
                st.book.remove(&id);
                st.sockets.remove(&id);
            }
            // The viewer leaves the feed only now, after its socket is gone.
            drop(viewer);
        });
    }
}

impl QueueHub {
    pub fn new(
        engine: Arc<dyn WaitingRooms>,
        tokens: Arc<Tokens>,
        configured_rate: ConfiguredRate,
        clock: Clock,
    ) -> Arc<Self> {
        Arc::new(Self {
            engine,
            tokens,
            feeds: Registry::new(LINGER),
            next_id: AtomicU64::new(1),
            configured_rate,
            clock,
        })
    }

    fn view_of(&self, show: &str, user: &str, standing: &Standing, st: &FeedState) -> SocketView {
        match standing {
            Standing::Admitted { expires_ms } => match self.tokens.admission(user, show, *expires_ms) {
                Ok(token) => SocketView::Admitted {
                    token,
                    expires_ms: *expires_ms,
                },
                Err(_) => SocketView::Closed,
            },
            Standing::PreQueued { entrants } => SocketView::PreQueued { entrants: *entrants },
            Standing::Queued {
                position, queue_length, ..
            } => self.queued(show, *position, (*queue_length).max(st.queue_length), st),
            Standing::None => SocketView::Closed,
        }
    }

    fn queued(&self, show: &str, position: u64, queue_length: u64, st: &FeedState) -> SocketView {
        if st.sold_out {
            return SocketView::SoldOut { position, queue_length };
        }
        let rate = if st.rate > 0.0 {
            Some(st.rate)
        } else {
            (self.configured_rate)(show)
        };
        SocketView::Queued {
            position,
            queue_length,
            eta_seconds: rate.and_then(|r| eta_seconds(position, r)),
        }
    }

    /// Registers a socket of `user`: joins the queue (idempotently) under
    /// the feed's lock and tracks the position from then on.
    pub async fn register(
        self: &Arc<Self>,
        show: &str,
        user: &str,
        join: impl AsyncFnOnce() -> Result<Stand>,
    ) -> Result<Registration> {
        let viewer = self.feeds.join(show, |stop| self.start(show, stop)).await?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let feed = viewer.feed().clone();
        // The join goes to Redis without the feed's lock, so thousands of
        // sockets joining at once do not queue behind each other's round
        // trips (nor the admissions behind them); the events applied
        // meanwhile are replayed for this socket alone.
        let mut stand = join().await?;
        let mut st = feed.state.lock().await;
        if let Standing::Queued { score, position, .. } = &stand.standing {
            st.book.insert(id, *score, *position, stand.seq);
            let missed: Vec<(u64, QueueChange)> = st.recent.iter().filter(|(s, _)| *s > stand.seq).cloned().collect();
            let covered = st.last_seq <= stand.seq
                || (missed.first().is_some_and(|(s, _)| *s == stand.seq + 1)
                    && missed.last().is_some_and(|(s, _)| *s == st.last_seq));
            if !covered || !st.book.catch_up(&id, &missed) {
                // Too old for the log, or admitted meanwhile: ask again, under the lock.
                st.book.remove(&id);
                let now = self.clock.now_ms();
                stand = self.engine.join(show, user, now, false, false, now).await?;
                if let Standing::Queued { score, position, .. } = &stand.standing {
                    st.book.insert(id, *score, *position, stand.seq);
                }
            }
        }
        let view = match (&stand.standing, st.book.position(&id)) {
            (Standing::Queued { queue_length, .. }, Some(position)) => {
                let length = (*queue_length).max(st.queue_length);
                self.queued(show, position, length, &st)
            }
            _ => self.view_of(show, user, &stand.standing, &st),
        };
        let (tx, rx) = watch::channel(view);
        st.sockets.insert(
            id,
            Socket {
                user: user.to_owned(),
                view: tx,
            },
        );
        drop(st);
        Ok(Registration {
            id,
            user: user.to_owned(),
            view: rx,
            viewer: Some(viewer),
        })
    }

    async fn start(self: &Arc<Self>, show: &str, stop: CancellationToken) -> Result<Arc<QueueFeed>> {
        let events = self.engine.subscribe(show).await?;
        let (seq, queue_length, _) = self.engine.ranks(show, &[]).await?;
        let feed = Arc::new(QueueFeed {
            show: show.to_owned(),
            state: Mutex::new(FeedState {
                book: PositionBook::default(),
                sockets: HashMap::new(),
                last_seq: seq,
                recent: VecDeque::new(),
                queue_length,
                rate: 0.0,
                sold_out: false,
            }),
        });
        tokio::spawn(self.clone().run(feed.clone(), events, stop));
        Ok(feed)
    }

    /// The room lost its queue (Redis lost its data): every socket's shopper
    /// queues again, in the order of their sockets, and is told where.
    pub fn requeue(self: &Arc<Self>, show: &str) {
        let Some(slot) = self.feeds.slots().into_iter().find(|s| s.show == show) else {
            return;
        };
        let (hub, feed) = (self.clone(), slot.feed.clone());
        tokio::spawn(async move {
            let mut st = feed.state.lock().await;
            st.book = PositionBook::default();
            st.last_seq = 0;
            hub.reread(&feed.show, &mut st, true).await;
        });
    }

    /// Tells every socket of the show that the room is gone.
    pub fn close(&self, show: &str) {
        if let Some(slot) = self.feeds.close(show) {
            let feed = slot.feed.clone();
            tokio::spawn(async move {
                let st = feed.state.lock().await;
                for s in st.sockets.values() {
                    let _ = s.view.send(SocketView::Closed);
                }
            });
        }
    }

    /// The users with a live socket on this node, per show (for liveness).
    pub async fn live_users(&self) -> Vec<(String, Vec<String>)> {
        let feeds: Vec<Arc<QueueFeed>> = self.feeds.slots().into_iter().map(|slot| slot.feed.clone()).collect();
        let mut out = Vec::new();
        for feed in feeds {
            let st = feed.state.lock().await;
            out.push((feed.show.clone(), st.sockets.values().map(|s| s.user.clone()).collect()));
        }
        out
    }

    /// The feed's life: events in, in sequence order; resubscribe and re-read
    /// when the subscription is lost; let go of it when stopped.
    async fn run(
        self: Arc<Self>,
        feed: Arc<QueueFeed>,
        mut events: BoxStream<'static, RoomEvent>,
        stop: CancellationToken,
    ) {
        loop {
            let event = tokio::select! {
                _ = stop.cancelled() => {
                    let _ = self.engine.unsubscribe(&feed.show).await;
                    return;
                }
                e = events.next() => e,
            };
            let Some(event) = event else {
                // The subscription was lost: resubscribe, then re-read.
                tokio::time::sleep(Duration::from_millis(200)).await;
                match self.engine.subscribe(&feed.show).await {
                    Ok(s) => events = s,
                    Err(e) => tracing::warn!(show = %feed.show, error = %e, "queue feed resubscribe failed"),
                }
                let mut st = feed.state.lock().await;
                self.reread(&feed.show, &mut st, false).await;
                continue;
            };
            let mut st = feed.state.lock().await;
            self.apply(&feed.show, &mut st, event).await;
        }
    }

    async fn apply(&self, show: &str, st: &mut FeedState, event: RoomEvent) {
        let seq = event.seq();
        if seq == st.last_seq {
            return; // seen already
        }
        // A gap, a reset, or a sequence that went back (Redis lost the room's
        // counters and they started again): every position is re-read, never
        // frozen behind the old number.
        if seq != st.last_seq + 1 || matches!(event, RoomEvent::Reset { .. }) {
            if seq != st.last_seq + 1 {
                tracing::info!(%show, have = st.last_seq, got = seq, "queue feed gap; re-reading positions");
            }
            let went_back = seq < st.last_seq;
            st.last_seq = 0;
            self.reread(show, st, went_back).await;
            if let RoomEvent::Tick { sold_out, rate, .. } = event {
                st.sold_out = sold_out;
                st.rate = rate;
            }
            return;
        }
        st.last_seq = seq;
        let (moved, flipped) = match &event {
            RoomEvent::Tick {
                admitted,
                queue_length,
                sold_out,
                rate,
                expires_at,
                ..
            } => {
                st.queue_length = *queue_length;
                st.rate = *rate;
                let flipped = st.sold_out != *sold_out;
                st.sold_out = *sold_out;
                let change = QueueChange::Head(admitted.len() as u64);
                let (moved, gone) = st.book.apply(seq, &change);
                remember(st, seq, change);
                for id in &gone {
                    if let Some(s) = st.sockets.get(id)
                        && let Ok(token) = self.tokens.admission(&s.user, show, *expires_at)
                    {
                        let _ = s.view.send(SocketView::Admitted {
                            token,
                            expires_ms: *expires_at,
                        });
                    }
                }
                (moved, flipped)
            }
            RoomEvent::Left {
                scores, queue_length, ..
            } => {
                st.queue_length = *queue_length;
                let change = QueueChange::Left(scores.clone());
                let (moved, _) = st.book.apply(seq, &change);
                remember(st, seq, change);
                (moved, false)
            }
            RoomEvent::Reset { .. } => (Vec::new(), false),
        };
        let targets: Vec<u64> = if flipped {
            st.book.keys().copied().collect()
        } else {
            moved
        };
        for id in targets {
            if let (Some(pos), Some(s)) = (st.book.position(&id), st.sockets.get(&id)) {
                let _ = s.view.send(self.queued(show, pos, st.queue_length, st));
            }
        }
    }

    /// Re-reads the rank of every socket's user in batches, as of one event.
    /// `lost`: the room's data went back (Redis lost it), so a socket whose
    /// shopper is no longer queued joins again instead of waiting forever.
    async fn reread(&self, show: &str, st: &mut FeedState, lost: bool) {
        // Positions come from a read now, not from events: the log no longer applies.
        st.recent.clear();
        // Oldest sockets first: if shoppers must queue again, they keep their order.
        let mut ids: Vec<u64> = st.sockets.keys().copied().collect();
        ids.sort_unstable();
        // The counter as of this reading, which may be below what the feed had
        // seen (the room's counters restarted): it is the one to follow.
        let mut last = st.last_seq;
        if ids.is_empty()
            && let Ok((seq, length, _)) = self.engine.ranks(show, &[]).await
        {
            (last, st.queue_length) = (seq, length);
        }
        for chunk in ids.chunks(REREAD_CHUNK) {
            let users: Vec<String> = chunk.iter().map(|id| st.sockets[id].user.clone()).collect();
            match self.engine.ranks(show, &users).await {
                Ok((seq, length, ranks)) => {
                    last = last.max(seq);
                    st.queue_length = length;
                    for (id, rank) in chunk.iter().zip(ranks) {
                        if let Some((score, rank)) = rank {
                            st.book.insert(*id, score, rank + 1, seq);
                            let view = self.queued(show, rank + 1, length, st);
                            let _ = st.sockets[id].view.send(view);
                        }
                    }
                }
                Err(e) => tracing::warn!(%show, error = %e, "queue position re-read failed"),
            }
        }
        // Sockets whose user is no longer queued: admitted during the gap, or gone.
        let now = self.clock.now_ms();
        let missing: Vec<u64> = ids.into_iter().filter(|id| st.book.position(id).is_none()).collect();
        for id in missing {
            let user = st.sockets[&id].user.clone();
            // A live socket is a shopper still waiting: if Redis lost their
            // place (its data was lost), they queue again rather than freeze.
            let Ok(stand) = self.engine.join(show, &user, now, false, lost, now).await else {
                continue;
            };
            if !lost && !matches!(stand.standing, Standing::Admitted { .. } | Standing::PreQueued { .. }) {
                continue;
            }
            if let Standing::Queued { score, position, .. } = &stand.standing {
                st.book.insert(id, *score, *position, stand.seq);
                last = last.max(stand.seq);
            }
            let view = self.view_of(show, &user, &stand.standing, st);
            let _ = st.sockets[&id].view.send(view);
        }
        st.last_seq = last;
    }
}
