//! Seat locks that rebuild themselves from the record. Postgres is the
//! truth about sales; Redis holds the fast path and can lose it (a restart
//! without persistence, a failover to a replica that lagged). This wraps an
//! engine so that every caller (booking, the seat stream, the sweepers) gets
//! a show's state rebuilt before it is used:
//!
//! - a show whose state is missing answers `StateMissing`: the state is
//!   rebuilt from the record (booked seats, and the seats of orders waiting
//!   for payment) under a new epoch, and the operation runs again;
//! - a show found at a lower version than this node has seen in the same
//!   epoch went back in time (a lagging replica took over): it is rebuilt;
//! - `rebuild` is also called directly when a payment finds its seat sold to
//!   another order, so the seat goes back to its real owner.
//!
//! Rebuilds of one show are serialized on a node and fenced across nodes by
//! the epoch (`lua/seats_rebuild.lua` only runs for the epoch it saw).

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use dashmap::DashMap;
use futures::stream::BoxStream;
use tokio::sync::Mutex;

use super::{Reply, SeatLocks};
use crate::booking::store::Records;
use crate::clock::Clock;
use crate::domain::best::RowPlan;
use crate::domain::seats::{
    BestOutcome, ExtendOutcome, HoldOutcome, HoldRecord, RecordState, ReleaseOutcome, SeatDelta, SeatSnapshot,
    WaitJoin, WaitStanding, WaitStats,
};
use crate::error::{Error, Result};
use crate::metrics as m;

/// See `rebuild`: how far before the record is read a change counts as newer.
const READ_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

pub struct Recovering {
    inner: Arc<dyn SeatLocks>,
    records: Arc<dyn Records>,
    clock: Clock,
    /// Per show: the epoch and the highest version this node has seen in it.
    seen: DashMap<String, (String, u64)>,
    /// Per show: held while this node rebuilds it (a tokio mutex: the
    /// rebuild awaits Postgres and the engine under it).
    rebuilding: DashMap<String, Arc<Mutex<()>>>,
}

/// Why a show was rebuilt, for the metric.
#[derive(Debug, Clone, Copy)]
pub enum Why {
    /// The engine had no state for it.
    Missing,
    /// It answered a version lower than seen in the same epoch.
    WentBack,
    /// A payment found its seat sold to another order.
    SeatsTaken,
}

impl Why {
    fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::WentBack => "went_back",
            Self::SeatsTaken => "seats_taken",
        }
    }
}

impl Recovering {
    pub fn new(inner: Arc<dyn SeatLocks>, records: Arc<dyn Records>, clock: Clock) -> Self {
        Self {
            inner,
            records,
            clock,
            seen: DashMap::new(),
            rebuilding: DashMap::new(),
        }
    }

    /// Rebuilds the show's state from the record, if its epoch is still the
    /// one this node knows (another node's rebuild makes this one a no-op).
    pub async fn rebuild(&self, show: &str, why: Why) -> Result<()> {
        let gate = self.rebuilding.entry(show.to_owned()).or_default().clone();
        let _one_at_a_time = gate.lock().await;
        let seen = match why {
            Why::Missing => String::new(),
            Why::WentBack | Why::SeatsTaken => match self.seen.get(show) {
                Some(s) => s.0.clone(),
                None => match self.inner.snapshot(show, self.clock.now_ms()).await {
                    Ok(r) => r.epoch,
                    Err(Error::StateMissing(_)) => String::new(),
                    Err(e) => return Err(e),
                },
            },
        };
        // Changes that commit while the record is read are newer than it;
        // the margin covers a transaction's time between its clock reading
        // and its commit, so such a change is kept, never undone.
        let as_of = self.clock.now().timestamp_micros() - READ_MARGIN.as_micros() as i64;
        let mut record: RecordState = self.records.record_state(show).await?;
        record.as_of = as_of;
        // Time-ordered: a hold minted before it (`HoldId::minted_before`) was lost with the old state.
        let epoch = uuid::Uuid::now_v7().simple().to_string();
        let reply = self
            .inner
            .rebuild(show, self.clock.now_ms(), &seen, &epoch, &record)
            .await?;
        if reply.out {
            metrics::counter!(m::SEAT_STATE_REBUILDS, "reason" => why.as_str()).increment(1);
            let (booked, pending) = (record.booked.len(), record.pending.len());
            if matches!(why, Why::Missing) && booked + pending == 0 {
                // A show's first use (or one with nothing sold): routine.
                tracing::debug!(%show, %epoch, "seat state built from the record");
            } else {
                tracing::warn!(%show, reason = why.as_str(), %epoch, booked, pending, "seat state rebuilt from the record");
            }
        }
        self.seen.insert(show.to_owned(), (reply.epoch, reply.version));
        Ok(())
    }

    /// The epoch and the highest version this node has seen of the show.
    pub fn seen(&self, show: &str) -> Option<(String, u64)> {
        self.seen.get(show).map(|s| s.clone())
    }

    /// Notes what a reply says of the show; answers whether it went back in
    /// time. `floor` is what this node had seen when it sent the request:
    /// Redis ran the request after every reply seen by then, so a lower
    /// version in the same epoch means its data went back. (Replies to
    /// requests in flight together may arrive in any order: those are no
    /// evidence.)
    fn went_back<T>(&self, show: &str, floor: Option<(String, u64)>, reply: &Reply<T>) -> bool {
        let back = floor.is_some_and(|(epoch, version)| epoch == reply.epoch && reply.version < version);
        let mut entry = self
            .seen
            .entry(show.to_owned())
            .or_insert_with(|| (reply.epoch.clone(), reply.version));
        let (epoch, version) = entry.value_mut();
        if *epoch != reply.epoch || back {
            (*epoch, *version) = (reply.epoch.clone(), reply.version);
        } else {
            *version = (*version).max(reply.version);
        }
        back
    }

    /// Runs `op`, rebuilding the show first if its state is missing, and
    /// after if the answer shows it went back in time.
    async fn attempt<T, F, Fut>(&self, show: &str, op: F) -> Result<Reply<T>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Reply<T>>>,
    {
        let floor = self.seen.get(show).map(|s| s.clone());
        let reply = match op().await {
            Err(Error::StateMissing(_)) => {
                self.rebuild(show, Why::Missing).await?;
                op().await?
            }
            other => other?,
        };
        if self.went_back(show, floor, &reply) {
            tracing::warn!(%show, version = reply.version, "seat state went back in time (a lagging replica?)");
            self.rebuild(show, Why::WentBack).await?;
        }
        Ok(reply)
    }
}

#[async_trait]
impl SeatLocks for Recovering {
    async fn hold(
        &self,
        show: &str,
        now: i64,
        user: &str,
        hold_id: &str,
        seats: &[String],
        ttl_ms: i64,
    ) -> Result<Reply<HoldOutcome>> {
        self.attempt(show, || self.inner.hold(show, now, user, hold_id, seats, ttl_ms))
            .await
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
        self.attempt(show, || {
            self.inner.hold_best(show, now, user, hold_id, quantity, rows, ttl_ms)
        })
        .await
    }

    async fn release(&self, show: &str, now: i64, user: &str, hold_id: &str) -> Result<Reply<ReleaseOutcome>> {
        self.attempt(show, || self.inner.release(show, now, user, hold_id))
            .await
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
        self.attempt(show, || {
            self.inner
                .extend_for_order(show, now, user, hold_id, order_id, order_ttl_ms)
        })
        .await
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
        self.attempt(show, || self.inner.book(show, now, order_id, hold_id, stamp, seats))
            .await
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
        self.attempt(show, || {
            self.inner.release_order(show, now, order_id, hold_id, stamp, seats)
        })
        .await
    }

    async fn rebuild(
        &self,
        show: &str,
        now: i64,
        seen: &str,
        epoch: &str,
        record: &RecordState,
    ) -> Result<Reply<bool>> {
        self.inner.rebuild(show, now, seen, epoch, record).await
    }

    async fn expire(&self, show: &str, now: i64) -> Result<Reply<bool>> {
        self.attempt(show, || self.inner.expire(show, now)).await
    }

    async fn sweep_turn(&self, node: &str, ttl_ms: i64) -> Result<bool> {
        self.inner.sweep_turn(node, ttl_ms).await
    }

    async fn sweep_due(&self, show: &str, now: i64) -> Result<bool> {
        self.inner.sweep_due(show, now).await
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
        self.attempt(show, || {
            self.inner
                .wait_join(show, now, user, quantity, offer_id, rows, offer_ttl_ms)
        })
        .await
    }

    /// A read of the list's own keys: it needs no seat state.
    async fn wait_standing(&self, show: &str, now: i64, user: &str) -> Result<WaitStanding> {
        self.inner.wait_standing(show, now, user).await
    }

    async fn wait_leave(&self, show: &str, now: i64, user: &str) -> Result<Reply<WaitStanding>> {
        self.attempt(show, || self.inner.wait_leave(show, now, user)).await
    }

    async fn wait_stats(&self, show: &str) -> Result<WaitStats> {
        self.inner.wait_stats(show).await
    }

    async fn snapshot(&self, show: &str, now: i64) -> Result<Reply<SeatSnapshot>> {
        self.attempt(show, || self.inner.snapshot(show, now)).await
    }

    async fn hold_record(&self, show: &str, hold_id: &str) -> Result<Option<HoldRecord>> {
        self.inner.hold_record(show, hold_id).await
    }

    async fn forget(&self, show: &str) -> Result<()> {
        self.seen.remove(show);
        self.inner.forget(show).await
    }

    async fn subscribe(&self, show: &str) -> Result<BoxStream<'static, SeatDelta>> {
        self.inner.subscribe(show).await
    }

    async fn unsubscribe(&self, show: &str) -> Result<()> {
        self.inner.unsubscribe(show).await
    }

    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }
}
