//! The in-process engine: `domain::seats::ShowSeats` per show behind a mutex,
//! deltas on a tokio broadcast channel per show. One node, no set-up.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use dashmap::DashMap;
use futures::stream::BoxStream;
use tokio::sync::broadcast;

use super::{EVENT_BUFFER, GC_BATCH, Reply, SeatLocks};
use crate::broadcast::lossy_stream;
use crate::domain::best::RowPlan;
use crate::domain::seats::{
    BestOutcome, Effects, ExtendOutcome, HoldOutcome, HoldRecord, LockTimes, RecordState, ReleaseOutcome, SeatDelta,
    SeatSnapshot, ShowSeats, WaitJoin, WaitStanding, WaitStats,
};
use crate::error::{Error, Result};

struct Show {
    /// A std mutex: no `.await` happens while it is held, and every operation
    /// is a few map updates.
    seats: Mutex<ShowSeats>,
    events: broadcast::Sender<SeatDelta>,
}

pub struct MemorySeatLocks {
    shows: DashMap<String, Arc<Show>>,
    times: LockTimes,
}

impl MemorySeatLocks {
    pub fn new(times: LockTimes) -> Self {
        Self {
            shows: DashMap::new(),
            times,
        }
    }

    fn show(&self, id: &str) -> Arc<Show> {
        if let Some(s) = self.shows.get(id) {
            return s.clone();
        }
        self.shows
            .entry(id.to_owned())
            .or_insert_with(|| {
                Arc::new(Show {
                    seats: Mutex::new(ShowSeats::default()),
                    events: broadcast::channel(EVENT_BUFFER).0,
                })
            })
            .clone()
    }

    /// Runs `f` under the show's lock and publishes its delta before the lock
    /// is released, so subscribers see deltas in version order. A show with
    /// no state refuses, as the scripts do.
    fn with<T>(&self, id: &str, f: impl FnOnce(&mut ShowSeats, LockTimes) -> (T, Effects)) -> Result<Reply<T>> {
        self.run(id, true, f)
    }

    fn run<T>(
        &self,
        id: &str,
        needs_state: bool,
        f: impl FnOnce(&mut ShowSeats, LockTimes) -> (T, Effects),
    ) -> Result<Reply<T>> {
        let show = self.show(id);
        let mut seats = show.seats.lock().unwrap_or_else(|p| p.into_inner());
        if needs_state && !seats.has_state() {
            return Err(Error::StateMissing(id.to_owned()));
        }
        let (out, fx) = f(&mut seats, self.times);
        if let Some(delta) = fx.delta {
            // No receiver is fine: nobody is watching this show.
            let _ = show.events.send(delta);
        }
        Ok(Reply {
            out,
            version: seats.version(),
            epoch: seats.epoch().to_owned(),
            expired: fx.expired_holds,
        })
    }
}

#[async_trait]
impl SeatLocks for MemorySeatLocks {
    async fn hold(
        &self,
        show: &str,
        now: i64,
        user: &str,
        hold_id: &str,
        seats: &[String],
        ttl_ms: i64,
    ) -> Result<Reply<HoldOutcome>> {
        self.with(show, |s, t| s.hold(show, now, t, user, hold_id, seats, ttl_ms))
    }

    async fn hold_best(
        &self,
        show: &str,
        now: i64,
        user: &str,
        hold_id: &str,
        quantity: usize,
        rows: &[RowPlan],
        ttl_ms: i64,
    ) -> Result<Reply<BestOutcome>> {
        self.with(show, |s, t| {
            s.hold_best(show, now, t, user, hold_id, quantity, rows, ttl_ms)
        })
    }

    async fn release(&self, show: &str, now: i64, user: &str, hold_id: &str) -> Result<Reply<ReleaseOutcome>> {
        self.with(show, |s, t| s.release(show, now, t, user, hold_id))
    }

    async fn extend_for_order(
        &self,
        show: &str,
        now: i64,
        user: &str,
        hold_id: &str,
        order_id: &str,
        order_ttl_ms: i64,
    ) -> Result<Reply<ExtendOutcome>> {
        self.with(show, |s, t| {
            s.extend_for_order(show, now, t, user, hold_id, order_id, order_ttl_ms)
        })
    }

    async fn book(
        &self,
        show: &str,
        now: i64,
        order_id: &str,
        hold_id: &str,
        stamp: i64,
        seats: &[String],
    ) -> Result<Reply<bool>> {
        self.with(show, |s, t| s.book(show, now, t, order_id, hold_id, stamp, seats))
    }

    async fn release_order(
        &self,
        show: &str,
        now: i64,
        order_id: &str,
        hold_id: &str,
        stamp: i64,
        seats: &[String],
    ) -> Result<Reply<bool>> {
        self.with(show, |s, t| {
            s.release_order(show, now, t, order_id, hold_id, stamp, seats)
        })
    }

    async fn rebuild(
        &self,
        show: &str,
        now: i64,
        seen: &str,
        epoch: &str,
        record: &RecordState,
    ) -> Result<Reply<bool>> {
        self.run(show, false, |s, t| s.rebuild(show, now, t, seen, epoch, record))
    }

    async fn expire(&self, show: &str, now: i64) -> Result<Reply<bool>> {
        self.with(show, |s, t| s.expire(show, now, t, GC_BATCH))
    }

    /// One process: it is always its own sweeper.
    async fn sweep_turn(&self, _node: &str, _ttl_ms: i64) -> Result<bool> {
        Ok(true)
    }

    /// In process, a pass over a show with nothing due costs next to nothing.
    async fn sweep_due(&self, _show: &str, _now: i64) -> Result<bool> {
        Ok(true)
    }

    async fn wait_join(
        &self,
        show: &str,
        now: i64,
        user: &str,
        quantity: usize,
        offer_id: &str,
        rows: &[RowPlan],
        offer_ttl_ms: i64,
    ) -> Result<Reply<WaitJoin>> {
        self.with(show, |s, t| {
            s.wait_join(show, now, t, user, quantity, offer_id, rows, offer_ttl_ms)
        })
    }

    async fn wait_standing(&self, show: &str, now: i64, user: &str) -> Result<WaitStanding> {
        let show = self.show(show);
        let seats = show.seats.lock().unwrap_or_else(|p| p.into_inner());
        Ok(seats.wait_standing(now, user))
    }

    async fn wait_leave(&self, show: &str, now: i64, user: &str) -> Result<Reply<WaitStanding>> {
        self.with(show, |s, t| s.wait_leave(show, now, t, user))
    }

    async fn wait_stats(&self, show: &str) -> Result<WaitStats> {
        let show = self.show(show);
        let seats = show.seats.lock().unwrap_or_else(|p| p.into_inner());
        Ok(seats.wait_stats())
    }

    async fn snapshot(&self, show: &str, now: i64) -> Result<Reply<SeatSnapshot>> {
        self.with(show, |s, t| s.snapshot(show, now, t))
    }

    async fn hold_record(&self, show: &str, hold_id: &str) -> Result<Option<HoldRecord>> {
        let show = self.show(show);
        let seats = show.seats.lock().unwrap_or_else(|p| p.into_inner());
        Ok(seats.hold_record(hold_id))
    }

    async fn forget(&self, show: &str) -> Result<()> {
        self.shows.remove(show);
        Ok(())
    }

    async fn subscribe(&self, show: &str) -> Result<BoxStream<'static, SeatDelta>> {
        Ok(lossy_stream(self.show(show).events.subscribe()))
    }

    async fn unsubscribe(&self, _show: &str) -> Result<()> {
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}
