//! A queue feed's event loop: the room's events applied in sequence order to
//! the feed's position book, and a batch re-read of ranks when a gap or a
//! lost subscription means an event may be missing.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio_util::sync::CancellationToken;

use super::{FeedState, QueueFeed, QueueHub, SocketView, remember};
use crate::domain::outlook::Outlook;

/// Gives a socket a view unless it shows that already: a sold-out flag
/// flipping to what a socket registered with (it read the room after the
/// feed did) sends nothing. Re-reads send regardless: a socket placed again
/// after Redis lost the room hears so, at the same place or not.
fn tell(socket: &tokio::sync::watch::Sender<SocketView>, view: SocketView) {
    socket.send_if_modified(|current| {
        let changed = *current != view;
        if changed {
            *current = view;
        }
        changed
    });
}

/// The outlook a socket's view shows, if it shows one.
fn outlook_of(view: &SocketView) -> Option<&Outlook> {
    match view {
        SocketView::Queued { outlook, .. }
        | SocketView::PreQueued { outlook, .. }
        | SocketView::Admitted { outlook, .. }
        | SocketView::SoldOut { outlook, .. } => Some(outlook),
        SocketView::Closed | SocketView::Left => None,
    }
}
use crate::domain::waitroom::QueueChange;
use crate::waitroom::engine::{RoomEvent, Standing};

/// Users per rank re-read (one script call each).
const REREAD_CHUNK: usize = 1000;
/// With no event for this long, the feed asks the room's sequence (one
/// `GET`): events lost on the way are found, as the seat feed's probe finds
/// lost deltas.
const PROBE_EVERY: Duration = Duration::from_secs(5);
const RESUBSCRIBE_MIN: Duration = Duration::from_millis(200);
const RESUBSCRIBE_MAX: Duration = Duration::from_secs(2);

impl QueueHub {
    /// The feed's life: events in, in sequence order; resubscribe and re-read
    /// when the subscription is lost; let go of it when stopped.
    pub(super) async fn run(
        self: Arc<Self>,
        feed: Arc<QueueFeed>,
        mut events: BoxStream<'static, RoomEvent>,
        stop: CancellationToken,
    ) {
        let mut probe = tokio::time::interval(PROBE_EVERY);
        probe.tick().await;
        let mut last_event = tokio::time::Instant::now();
        loop {
            let event = tokio::select! {
                _ = stop.cancelled() => {
                    let _ = self.engine.unsubscribe(&feed.show).await;
                    return;
                }
                e = events.next() => e,
                _ = probe.tick() => {
                    if last_event.elapsed() >= PROBE_EVERY {
                        self.probe(&feed).await;
                    }
                    continue;
                }
            };
            last_event = tokio::time::Instant::now();
            let Some(event) = event else {
                // The subscription was lost: resubscribe (an ended stream is
                // never polled again), then re-read.
                let Some(again) = self.resubscribe(&feed.show, &stop).await else {
                    return;
                };
                events = again;
                let mut st = feed.state.lock().await;
                self.reread(&feed.show, &mut st, false).await;
                continue;
            };
            let mut st = feed.state.lock().await;
            self.apply(&feed.show, &mut st, event).await;
        }
    }

    /// Takes the room's events again, backing off between tries while
    /// Redis is away; `None` when the feed stops first.
    pub(super) async fn resubscribe(
        &self,
        show: &str,
        stop: &CancellationToken,
    ) -> Option<BoxStream<'static, RoomEvent>> {
        let mut wait = RESUBSCRIBE_MIN;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return None,
                _ = tokio::time::sleep(wait) => {}
            }
            match self.engine.subscribe(show).await {
                Ok(events) => return Some(events),
                Err(e) => {
                    tracing::warn!(%show, error = %e, "queue feed resubscribe failed");
                    wait = (wait * 2).min(RESUBSCRIBE_MAX);
                }
            }
        }
    }

    /// The room's sequence now: ahead of what the feed applied means events
    /// were lost (a subscription gone quiet): every position is re-read.
    async fn probe(&self, feed: &QueueFeed) {
        let Ok(seq) = self.engine.event_seq(&feed.show).await else {
            return;
        };
        let mut st = feed.state.lock().await;
        if seq > st.last_seq {
            tracing::info!(show = %feed.show, have = st.last_seq, room = seq, "queue feed behind the room; re-reading positions");
            self.reread(&feed.show, &mut st, false).await;
        }
    }

    pub(super) async fn apply(&self, show: &str, st: &mut FeedState, event: RoomEvent) {
        let seq = event.seq();
        let reset = matches!(event, RoomEvent::Reset { .. });
        // Applied already, or part of a re-read that came after it (events
        // buffered while ranks were read): never a reason to read again,
        // or a re-read outlasting a tick would feed itself for the rest of
        // the sale. A room whose counters restarted (Redis lost it) comes
        // back under a new generation, which re-reads (`requeue`).
        if seq <= st.last_seq && !reset {
            return;
        }
        if seq != st.last_seq + 1 || reset {
            self.restart(show, st, &event).await;
            return;
        }
        st.last_seq = seq;
        let estimated = self.take_model(st, &event);
        let Some((moved, flipped)) = self.follow(show, st, seq, &event).await else {
            return;
        };
        let targets: Vec<u64> = if flipped {
            st.book.keys().copied().collect()
        } else {
            moved
        };
        let told: std::collections::HashSet<u64> = targets.iter().copied().collect();
        self.tell_positions(show, st, targets);
        if estimated {
            self.tell_outlooks(show, st, &told);
        }
    }

    /// Takes a tick's new estimate. Answers whether it is new.
    fn take_model(&self, st: &mut FeedState, event: &RoomEvent) -> bool {
        match event {
            RoomEvent::Tick {
                outlook: Some(model), ..
            } if model.at != st.model.at => {
                st.model = Arc::new((**model).clone());
                true
            }
            _ => false,
        }
    }

    /// A new estimate: each socket not told already this event hears it only
    /// if it moves its shopper's outlook enough to matter (a new band, two
    /// points of chance, the last seat gone): thousands of sockets are not
    /// written to for a chance that moved by 0.001.
    fn tell_outlooks(&self, show: &str, st: &FeedState, told: &std::collections::HashSet<u64>) {
        for (id, socket) in &st.sockets {
            if told.contains(id) {
                continue;
            }
            let Some(pos) = st.book.position(id) else { continue };
            let fresh = self.queued(show, pos, st.queue_length, st);
            socket.view.send_if_modified(|current| {
                let worth = match (outlook_of(current), outlook_of(&fresh)) {
                    (Some(before), Some(after)) => {
                        std::mem::discriminant(current) != std::mem::discriminant(&fresh) || before.worth_telling(after)
                    }
                    _ => *current != fresh,
                };
                if worth {
                    *current = fresh.clone();
                }
                worth
            });
        }
    }

    /// A gap or a reset: every position is re-read, never frozen behind
    /// the old number.
    async fn restart(&self, show: &str, st: &mut FeedState, event: &RoomEvent) {
        let seq = event.seq();
        if seq != st.last_seq + 1 {
            tracing::info!(%show, have = st.last_seq, got = seq, "queue feed gap; re-reading positions");
        }
        let went_back = seq < st.last_seq;
        st.last_seq = 0;
        self.take_model(st, event);
        self.reread(show, st, went_back).await;
        if let RoomEvent::Tick { sold_out, rate, .. } = event {
            st.sold_out = *sold_out;
            st.rate = *rate;
        }
    }

    /// Applies the next event in sequence to the book and tells the sockets
    /// it admitted or took out. Answers the sockets that moved and whether
    /// every socket's view changed (sold out flipped); nothing when the
    /// event forced a re-read instead.
    async fn follow(&self, show: &str, st: &mut FeedState, seq: u64, event: &RoomEvent) -> Option<(Vec<u64>, bool)> {
        match event {
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
                if self.tell_admitted(show, st, &gone, admitted, *expires_at) {
                    tracing::info!(%show, "a socket's place disagreed with the tick's admitted users; re-reading positions");
                    self.reread(show, st, false).await;
                    return None;
                }
                Some((moved, flipped))
            }
            RoomEvent::Left {
                scores, queue_length, ..
            } => {
                st.queue_length = *queue_length;
                let change = QueueChange::Left(scores.clone());
                let (moved, left) = st.book.apply(seq, &change);
                remember(st, seq, change);
                // A socket whose own shopper left is told so and closes.
                for id in &left {
                    if let Some(s) = st.sockets.get(id) {
                        let _ = s.view.send(SocketView::Left);
                    }
                }
                Some((moved, false))
            }
            RoomEvent::Reset { .. } => Some((Vec::new(), false)),
        }
    }

    /// Sends an admission to each socket that left the head of the queue
    /// (`gone`) whose user the tick admitted. Answers whether some socket was
    /// out of step: admission belongs to the users the tick names, not to
    /// the places at the head, so a socket whose place says "admitted" but
    /// whose user is not named must be re-read.
    fn tell_admitted(&self, show: &str, st: &FeedState, gone: &[u64], admitted: &[String], expires_at: i64) -> bool {
        let mut stray = false;
        let named: std::collections::HashSet<&str> = admitted.iter().map(String::as_str).collect();
        for id in gone {
            let Some(s) = st.sockets.get(id) else { continue };
            if !named.contains(s.user.as_str()) {
                stray = true;
                continue;
            }
            if let Ok(token) = self.tokens.admission(&s.user, show, expires_at) {
                let _ = s.view.send(SocketView::Admitted {
                    token,
                    expires_ms: expires_at,
                    outlook: st.model.admitted(),
                });
            }
        }
        stray
    }

    fn tell_positions(&self, show: &str, st: &FeedState, targets: Vec<u64>) {
        for id in targets {
            if let (Some(pos), Some(s)) = (st.book.position(&id), st.sockets.get(&id)) {
                tell(&s.view, self.queued(show, pos, st.queue_length, st));
            }
        }
    }

    /// Re-reads the rank of every socket's user in batches, as of one event.
    /// `lost`: the room's data went back (Redis lost it), so a socket whose
    /// shopper is no longer queued joins again instead of waiting forever.
    pub(super) async fn reread(&self, show: &str, st: &mut FeedState, lost: bool) {
        // Positions come from a read now, not from events: the log no longer applies.
        st.recent.clear();
        // Oldest sockets first: if shoppers must queue again, they keep their order.
        let mut ids: Vec<u64> = st.sockets.keys().copied().collect();
        ids.sort_unstable();
        let last = self.read_ranks(show, st, &ids).await;
        // Sockets whose user is no longer queued: admitted during the gap, or gone.
        let missing: Vec<u64> = ids.into_iter().filter(|id| st.book.position(id).is_none()).collect();
        let requeued = self.find_missing(show, st, missing, lost).await;
        st.last_seq = last.max(requeued);
    }

    /// Reads the ranks of the users of `ids`, in chunks, into the book, and
    /// tells each queued socket its place. Answers the room's counter as of
    /// the reading, which may be below what the feed had seen (the room's
    /// counters restarted): it is the one to follow.
    async fn read_ranks(&self, show: &str, st: &mut FeedState, ids: &[u64]) -> u64 {
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
                        } else {
                            // Not queued now: found out below (admitted, pre-queued, gone).
                            st.book.remove(id);
                        }
                    }
                }
                Err(e) => tracing::warn!(%show, error = %e, "queue position re-read failed"),
            }
        }
        last
    }

    /// Finds out where the users of sockets that are not queued stand, and
    /// tells the sockets. Answers the newest sequence among those queued
    /// again (0: none).
    async fn find_missing(&self, show: &str, st: &mut FeedState, missing: Vec<u64>, lost: bool) -> u64 {
        let mut last = 0;
        let now = self.clock.now_ms();
        for id in missing {
            let user = st.sockets[&id].user.clone();
            // A live socket is a shopper still waiting: if Redis lost their
            // place (its data was lost), they queue again rather than freeze.
            let Ok(stand) = self.engine.join(show, &user, now, lost, now).await else {
                continue;
            };
            if !lost
                && !matches!(
                    stand.standing,
                    Standing::Admitted { .. } | Standing::PreQueued { .. } | Standing::None
                )
            {
                continue;
            }
            if let Standing::Queued { score, position, .. } = &stand.standing {
                st.book.insert(id, *score, *position, stand.seq);
                last = last.max(stand.seq);
            }
            let view = self.view_of(show, &user, &stand.standing, st);
            let _ = st.sockets[&id].view.send(view);
        }
        last
    }
}
