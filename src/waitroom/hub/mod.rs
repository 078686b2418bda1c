//! Queue sockets on one node. Per show, one feed subscribes to the room's
//! events and keeps the exact position of each of this node's sockets from
//! them alone (`domain::waitroom::PositionBook`): Redis work per admission
//! tick does not grow with the number of waiting shoppers. A gap in the
//! event sequence makes the feed re-read its sockets' ranks in one batch.

mod events;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;

use super::engine::{Stand, Standing, WaitingRooms};
use crate::auth::Tokens;
use crate::clock::Clock;
use crate::domain::outlook::{Model, Outlook};
use crate::domain::waitroom::{PositionBook, QueueChange, eta_seconds};
use crate::error::Result;
use crate::ws::registry::{Registry, Viewer};

/// A feed outlives its last socket by this long.
const LINGER: Duration = Duration::from_secs(5);

/// What a queue socket shows; sessions send the latest, coalesced.
#[derive(Debug, Clone, PartialEq)]
pub enum SocketView {
    Queued {
        position: u64,
        queue_length: u64,
        eta_seconds: Option<u64>,
        outlook: Outlook,
    },
    PreQueued {
        entrants: u64,
        outlook: Outlook,
    },
    Admitted {
        token: String,
        expires_ms: i64,
        outlook: Outlook,
    },
    SoldOut {
        position: u64,
        queue_length: u64,
        outlook: Outlook,
    },
    /// The room was removed: the show is no longer gated.
    Closed,
    /// The shopper left the queue (from another tab, or `DELETE .../me`).
    Left,
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
    /// The room leader's latest outlook estimate (a prior until its first).
    model: Arc<Model>,
}

pub struct QueueFeed {
    show: String,
    /// A tokio mutex: registration reads Redis under it, so no event is
    /// applied between a socket's read and its entry in the book.
    state: Mutex<FeedState>,
}

/// Rate used for ETAs when none has been observed yet.
pub type ConfiguredRate = Arc<dyn Fn(&str) -> Option<f64> + Send + Sync>;
/// The outlook of a show before its leader's first estimate (the prior).
pub type PriorOutlook = Arc<dyn Fn(&str) -> Model + Send + Sync>;

pub struct QueueHub {
    engine: Arc<dyn WaitingRooms>,
    tokens: Arc<Tokens>,
    feeds: Arc<Registry<Arc<QueueFeed>>>,
    next_id: AtomicU64,
    configured_rate: ConfiguredRate,
    prior: PriorOutlook,
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
        prior: PriorOutlook,
        clock: Clock,
    ) -> Arc<Self> {
        Arc::new(Self {
            engine,
            tokens,
            feeds: Registry::new(LINGER),
            next_id: AtomicU64::new(1),
            configured_rate,
            prior,
            clock,
        })
    }

    /// The show's latest estimate as its leader stored it, else the prior.
    pub async fn model(&self, show: &str) -> Model {
        match self.engine.outlook(show).await {
            Ok(Some(json)) => match serde_json::from_str(&json) {
                Ok(model) => return model,
                Err(e) => tracing::warn!(%show, error = %e, "unreadable outlook estimate; using the prior"),
            },
            Ok(None) => {}
            Err(e) => tracing::warn!(%show, error = %e, "outlook estimate unreadable; using the prior"),
        }
        (self.prior)(show)
    }

    fn view_of(&self, show: &str, user: &str, standing: &Standing, st: &FeedState) -> SocketView {
        match standing {
            Standing::Admitted { expires_ms, .. } => match self.tokens.admission(user, show, *expires_ms) {
                Ok(token) => SocketView::Admitted {
                    token,
                    expires_ms: *expires_ms,
                    outlook: st.model.admitted(),
                },
                Err(_) => SocketView::Closed,
            },
            Standing::PreQueued { entrants } => SocketView::PreQueued {
                entrants: *entrants,
                outlook: st.model.pre_queued(*entrants),
            },
            Standing::Queued {
                position, queue_length, ..
            } => self.queued(show, *position, (*queue_length).max(st.queue_length), st),
            // Not in the room any more (left, or abandoned): the room itself
            // still exists, its removal is told by `close`.
            Standing::None => SocketView::Left,
        }
    }

    fn queued(&self, show: &str, position: u64, queue_length: u64, st: &FeedState) -> SocketView {
        let ahead = position.saturating_sub(1);
        if st.sold_out || st.model.sold_out {
            return SocketView::SoldOut {
                position,
                queue_length,
                outlook: st.model.sold_out_view(Some(ahead)),
            };
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
            outlook: st.model.queued(ahead),
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
                stand = self.engine.join(show, user, now, false, now).await?;
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
        let model = Arc::new(self.model(show).await);
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
                model,
            }),
        });
        // Supervised: a feed that died would leave its sockets waiting
        // forever. After a panic it follows the room again from a fresh read.
        let first = Arc::new(std::sync::Mutex::new(Some(events)));
        let (hub, followed, halt) = (self.clone(), feed.clone(), stop.clone());
        crate::supervise::supervised("queue feed", stop, move || {
            let (hub, feed, stop) = (hub.clone(), followed.clone(), halt.clone());
            let first = first.lock().unwrap_or_else(|p| p.into_inner()).take();
            async move {
                let events = match first {
                    Some(events) => events,
                    None => {
                        let Some(events) = hub.resubscribe(&feed.show, &stop).await else {
                            return;
                        };
                        let mut st = feed.state.lock().await;
                        hub.reread(&feed.show, &mut st, false).await;
                        drop(st);
                        events
                    }
                };
                hub.run(feed, events, stop).await
            }
        });
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
}
