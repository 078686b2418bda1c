//! The in-process waiting room: the same steps as `lua/wr_*.lua` over plain
//! maps behind one mutex per process, events on a broadcast per show.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::stream::BoxStream;
use tokio::sync::broadcast;

use super::engine::{
    Counters, Opening, RoomEvent, SaleCounts, SeatCount, Settled, Spend, Stand, Standing, Step, StoredRoom, Tick,
    TickParams, WaitingRooms,
};
use crate::clock::Clock;
use crate::domain::outlook;
use crate::error::Result;

/// Events a socket feed may fall behind by before it sees a gap and re-reads.
const EVENT_BUFFER: usize = 1024;

mod room;

use room::Room;

pub struct MemoryWaitingRooms {
    rooms: Mutex<HashMap<String, Room>>,
    events: dashmap::DashMap<String, broadcast::Sender<RoomEvent>>,
    seats: Arc<dyn SeatCount>,
    /// Lease expiry reads it, as the Redis scripts read Redis `TIME`.
    clock: Clock,
    /// See `WaitingRooms::rooms_version`.
    version: std::sync::atomic::AtomicU64,
}

impl MemoryWaitingRooms {
    pub fn new(seats: Arc<dyn SeatCount>, clock: Clock) -> Self {
        Self {
            rooms: Mutex::new(HashMap::new()),
            events: dashmap::DashMap::new(),
            version: std::sync::atomic::AtomicU64::new(0),
            seats,
            clock,
        }
    }

    /// On a gated show an offer from the waiting list is its waiter's
    /// admission until `until_ms` (`lua/common.lua` writes the same to the
    /// admitted set): they count once in `active`, an admission that lasts
    /// longer stays.
    pub fn admit_offer(&self, show: &str, user: &str, until_ms: i64) {
        self.with(show, |r| {
            if r.stored.is_some() {
                let until = r.admitted.entry(user.to_owned()).or_insert(until_ms);
                *until = (*until).max(until_ms);
            }
        });
    }

    fn with<T>(&self, show: &str, f: impl FnOnce(&mut Room) -> T) -> T {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        f(rooms.entry(show.to_owned()).or_default())
    }

    fn publish(&self, show: &str, event: RoomEvent) {
        if let Some(tx) = self.events.get(show) {
            let _ = tx.send(event);
        }
    }
}

#[async_trait]
impl WaitingRooms for MemoryWaitingRooms {
    async fn save(&self, show: &str, room: &StoredRoom) -> Result<()> {
        self.with(show, |r| {
            let (sold_out, rate) = r
                .stored
                .as_ref()
                .map(|s| (s.sold_out, s.observed_rate))
                .unwrap_or_default();
            r.stored = Some(StoredRoom {
                sold_out,
                observed_rate: rate,
                ..room.clone()
            });
        });
        self.rooms_changed().await
    }

    async fn load(&self, show: &str) -> Result<Option<StoredRoom>> {
        Ok(self.with(show, |r| r.stored.clone()))
    }

    async fn all(&self) -> Result<Vec<(String, StoredRoom)>> {
        let rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        Ok(rooms
            .iter()
            .filter_map(|(show, r)| r.stored.clone().map(|s| (show.clone(), s)))
            .collect())
    }

    async fn remove(&self, show: &str) -> Result<()> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner()).remove(show);
        self.rooms_changed().await
    }

    async fn rooms_version(&self) -> Result<Option<String>> {
        // One process never loses it: a counter will do.
        Ok(Some(
            self.version.load(std::sync::atomic::Ordering::Acquire).to_string(),
        ))
    }

    async fn rooms_changed(&self) -> Result<()> {
        self.version.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Ok(())
    }

    async fn join(&self, show: &str, user: &str, now: i64, create: bool, until: i64) -> Result<Stand> {
        // One process: its clock is the shared one.
        let shared_now = self.clock.now_ms();
        Ok(self.with(show, |r| r.join(user, now, create, until, shared_now)))
    }

    async fn join_spending(&self, show: &str, user: &str, now: i64, until: i64, challenge: &Spend) -> Result<Stand> {
        let shared_now = self.clock.now_ms();
        Ok(self.with(show, |r| {
            r.spent.retain(|_, until| *until > shared_now);
            let create = !r.spent.contains_key(&challenge.id);
            let placed = r.score_of.contains_key(user) || r.pre.contains(user);
            let stand = r.join(user, now, create, until, shared_now);
            let made_a_place =
                !placed && matches!(stand.standing, Standing::Queued { .. } | Standing::PreQueued { .. });
            if made_a_place {
                r.spent.insert(challenge.id.clone(), challenge.until_ms);
            }
            stand
        }))
    }

    async fn leave(&self, show: &str, users: &[String], counter: &str) -> Result<u64> {
        let (removed, event) = self.with(show, |r| {
            let (removed, scores) = r.remove(users);
            match counter {
                "abandoned" => r.abandoned += removed,
                _ => r.left += removed,
            }
            if scores.is_empty() {
                return (removed, None);
            }
            r.events += 1;
            (
                removed,
                Some(RoomEvent::Left {
                    seq: r.events,
                    scores,
                    queue_length: r.queue.len() as u64,
                }),
            )
        });
        if let Some(e) = event {
            self.publish(show, e);
        }
        Ok(removed)
    }

    async fn abandon(&self, show: &str, cutoff: i64, limit: u64) -> Result<u64> {
        let stale: Vec<String> = self.with(show, |r| {
            let mut stale: Vec<(i64, String)> = r
                .seen
                .iter()
                .filter(|(_, at)| **at <= cutoff)
                .map(|(u, at)| (*at, u.clone()))
                .collect();
            stale.sort();
            stale.into_iter().take(limit as usize).map(|(_, u)| u).collect()
        });
        self.leave(show, &stale, "abandoned").await
    }

    async fn touch(&self, show: &str, users: &[String], until: i64) -> Result<()> {
        self.with(show, |r| {
            for u in users {
                if let Some(at) = r.seen.get_mut(u) {
                    *at = until;
                }
            }
        });
        Ok(())
    }

    async fn release_lease(&self, show: &str, node: &str) -> Result<()> {
        let mine = format!("{node}/");
        self.with(show, |r| {
            if r.lease.as_ref().is_some_and(|(token, _)| token.starts_with(&mine)) {
                r.lease = None;
            }
        });
        Ok(())
    }

    async fn lease(&self, show: &str, node: &str, ttl_ms: i64) -> Result<Option<String>> {
        let now = self.clock.now_ms();
        Ok(self.with(show, |r| match &r.lease {
            Some((token, until)) if *until > now => {
                if token.starts_with(&format!("{node}/")) {
                    r.lease = Some((token.clone(), now + ttl_ms));
                    r.lease.as_ref().map(|l| l.0.clone())
                } else {
                    None
                }
            }
            _ => {
                r.fence += 1;
                let token = format!("{node}/{}", r.fence);
                r.lease = Some((token.clone(), now + ttl_ms));
                Some(token)
            }
        }))
    }

    async fn admit(&self, show: &str, token: &str, p: TickParams) -> Result<Option<Tick>> {
        let now = self.clock.now_ms();
        if self.with(show, |r| {
            r.lease.as_ref().is_none_or(|(t, until)| t != token || *until <= now)
        }) {
            return Ok(None);
        }
        let (taken, booked) = self.seats.taken(show, p.now).await?;
        let available = p.sellable as i64 - taken as i64;
        let sold_out = available <= 0 && booked == taken;
        let (tick, event) = self.with(show, |r| r.tick(&p, available, sold_out));
        if let Some(event) = event {
            self.publish(show, event);
        }
        Ok(Some(tick))
    }

    async fn open_begin(&self, show: &str, token: &str) -> Result<Opening> {
        let now = self.clock.now_ms();
        Ok(self.with(show, |r| {
            if !r.holds_lease(token, now) {
                return Opening::Stale;
            }
            let opens = r.opens_at();
            if opens.is_some_and(|t| now < t) {
                return Opening::Wait;
            }
            if let Some((base, pending)) = r.begin_opening(opens) {
                return Opening::Open { base, pending };
            }
            let late: Vec<String> = r.pre.difference(&r.entrants).cloned().collect();
            for user in late {
                r.pre.remove(&user);
                r.arrive(&user);
            }
            Opening::Open {
                base: r.open_base,
                pending: r.pre.len() as u64,
            }
        }))
    }

    async fn entrants(&self, show: &str) -> Result<Vec<String>> {
        Ok(self.with(show, |r| r.entrants.iter().cloned().collect()))
    }

    async fn open(&self, show: &str, token: &str, base: i64, ranked: &[(u64, String)]) -> Result<Option<(u64, u64)>> {
        let now = self.clock.now_ms();
        let (answer, event) = self.with(show, |r| {
            if !r.holds_lease(token, now) {
                return (None, None);
            }
            let mut moved = 0;
            for (rank, u) in ranked {
                if r.pre.remove(u) {
                    let score = base + *rank as i64;
                    r.queue.insert(score, u.clone());
                    r.score_of.insert(u.clone(), score);
                    moved += 1;
                }
            }
            let event = (moved > 0).then(|| {
                r.events += 1;
                RoomEvent::Reset {
                    seq: r.events,
                    queue_length: r.queue.len() as u64,
                }
            });
            (Some((moved, r.pre.len() as u64)), event)
        });
        if let Some(event) = event {
            self.publish(show, event);
        }
        Ok(answer)
    }

    async fn ranks(&self, show: &str, users: &[String]) -> Result<(u64, u64, Vec<Option<(f64, u64)>>)> {
        Ok(self.with(show, |r| {
            let out = users
                .iter()
                .map(|u| r.score_of.get(u).map(|s| (*s as f64, r.rank(*s))))
                .collect();
            (r.events, r.queue.len() as u64, out)
        }))
    }

    async fn end_active(&self, show: &str, user: &str, how: Settled, now: i64, ttl_ms: i64) -> Result<()> {
        let seats = match how {
            Settled::Bought { seats } => seats.clamp(1, outlook::MAX_SEATS as u64),
            Settled::Walked => 0,
        };
        self.with(show, |r| r.settle(user, seats, now, ttl_ms));
        Ok(())
    }

    async fn progressed(&self, show: &str, user: &str, step: Step) -> Result<()> {
        self.with(show, |r| match step {
            Step::Held { seats } => {
                r.held_seats += seats;
                r.held.insert(user.to_owned())
            }
            Step::Ordered => r.ordered.insert(user.to_owned()),
        });
        Ok(())
    }

    async fn sale_counts(&self, show: &str, now: i64, ttl_ms: i64) -> Result<SaleCounts> {
        let (taken, booked) = self.seats.taken(show, now).await?;
        Ok(self.with(show, |r| SaleCounts {
            booked,
            held: taken - booked,
            pending_by_age: r
                .admitted
                .iter()
                .filter(|(user, e)| **e > now && !r.held.contains(*user))
                .fold(vec![0; outlook::AGE_BUCKETS], |mut ages, (_, expires)| {
                    ages[outlook::age_bucket(now - (expires - ttl_ms))] += 1;
                    ages
                }),
            held_seats: r.held_seats,
            bought: r.bought.clone(),
            buy_times: if r.buy_times.is_empty() {
                vec![0; outlook::AGE_BUCKETS]
            } else {
                r.buy_times.clone()
            },
            walked: r.walked,
            buy_ms_sum: r.buy_ms,
            joined: r.joined,
            admitted: r.admitted_total,
            gave_up: r.left + r.abandoned,
            held_shoppers: r.held.len() as u64,
            ordered_shoppers: r.ordered.len() as u64,
            queue_length: r.queue.len() as u64,
        }))
    }

    async fn outlook(&self, show: &str) -> Result<Option<String>> {
        Ok(self.with(show, |r| r.outlook.clone()))
    }

    async fn active_until(&self, show: &str, user: &str) -> Result<Option<i64>> {
        Ok(self.with(show, |r| r.admitted.get(user).copied()))
    }

    async fn counters(&self, show: &str, now: i64) -> Result<Counters> {
        Ok(self.with(show, |r| Counters {
            queue_length: r.queue.len() as u64,
            pre_queue: r.pre.len() as u64,
            active: r.admitted.values().filter(|e| **e > now).count() as u64,
            joined_total: r.joined,
            admitted_total: r.admitted_total,
            abandoned_total: r.abandoned,
            leader: r
                .lease
                .as_ref()
                .filter(|(_, until)| *until > self.clock.now_ms())
                .map(|(t, _)| t.clone()),
            last_tick_ms: r.last_tick_at,
        }))
    }

    async fn subscribe(&self, show: &str) -> Result<BoxStream<'static, RoomEvent>> {
        let rx = self
            .events
            .entry(show.to_owned())
            .or_insert_with(|| broadcast::channel(EVENT_BUFFER).0)
            .subscribe();
        Ok(crate::broadcast::lossy_stream(rx))
    }

    async fn unsubscribe(&self, _show: &str) -> Result<()> {
        Ok(())
    }
}
