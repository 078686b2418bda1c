//! Seat locks: the fast path of every hold. Two implementations of one
//! trait, side by side: `redis` (Lua scripts, shared by every node) and
//! `memory` (in process, the embedded default). `tests/conformance` runs the
//! same cases against both.
//!
//! Engines own the lock state and publish every change; they know nothing of
//! orders, catalogs or HTTP.

pub mod memory;
pub mod recovering;
pub mod redis;

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::domain::best::RowPlan;
use crate::domain::seats::{
    BestOutcome, ExtendOutcome, HoldOutcome, HoldRecord, RecordState, ReleaseOutcome, SeatDelta, SeatSnapshot,
    WaitJoin, WaitStanding, WaitStats,
};
use crate::error::Result;

/// An engine's answer: the outcome, the show's version and epoch after the
/// operation, and how many holds its in-line sweep expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<T> {
    pub out: T,
    pub version: u64,
    pub epoch: String,
    pub expired: u32,
}

impl<T> Reply<T> {
    /// The same answer with its outcome mapped.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Reply<U> {
        Reply {
            out: f(self.out),
            version: self.version,
            epoch: self.epoch,
            expired: self.expired,
        }
    }
}

/// Atomic seat locks for every show. Times are milliseconds since the epoch
/// and come from the caller, so the same cases run against both engines.
///
/// A show whose state was never built, or was lost (Redis restarted empty),
/// answers every operation but `rebuild` with `Error::StateMissing`:
/// `recovering::Recovering` rebuilds it from the record and retries.
#[async_trait]
pub trait SeatLocks: Send + Sync + 'static {
    /// Locks every seat for `user`, or none; replaces the user's previous
    /// active hold on the show in the same step.
    async fn hold(
        &self,
        show: &str,
        now: i64,
        user: &str,
        hold_id: &str,
        seats: &[String],
        ttl_ms: i64,
    ) -> Result<Reply<HoldOutcome>>;

    /// Best available: holds `quantity` adjacent free seats for the user,
    /// picked by `domain::best`'s rule over `rows` (the show's plan) and
    /// locked in the same step, releasing the user's previous hold.
    #[allow(clippy::too_many_arguments)]
    async fn hold_best(
        &self,
        show: &str,
        now: i64,
        user: &str,
        hold_id: &str,
        quantity: usize,
        rows: &[RowPlan],
        ttl_ms: i64,
    ) -> Result<Reply<BestOutcome>>;

    async fn release(&self, show: &str, now: i64, user: &str, hold_id: &str) -> Result<Reply<ReleaseOutcome>>;

    /// Turns the user's active hold into the lock of order `order_id`
    /// (or answers the order it already became).
    async fn extend_for_order(
        &self,
        show: &str,
        now: i64,
        user: &str,
        hold_id: &str,
        order_id: &str,
        order_ttl_ms: i64,
    ) -> Result<Reply<ExtendOutcome>>;

    /// Books the order's seats; `stamp` is the order state's (updated_at,
    /// µs): an older or repeated one is refused (`false`) and changes nothing.
    async fn book(
        &self,
        show: &str,
        now: i64,
        order_id: &str,
        hold_id: &str,
        stamp: i64,
        seats: &[String],
    ) -> Result<Reply<bool>>;

    /// Frees the order's seats, with the same stamp rule as `book`.
    async fn release_order(
        &self,
        show: &str,
        now: i64,
        order_id: &str,
        hold_id: &str,
        stamp: i64,
        seats: &[String],
    ) -> Result<Reply<bool>>;

    /// Builds the show's state from the record under the new `epoch`, if the
    /// show's epoch is still `seen` ("" for none); `false` when another node
    /// rebuilt first.
    async fn rebuild(&self, show: &str, now: i64, seen: &str, epoch: &str, record: &RecordState)
    -> Result<Reply<bool>>;

    /// The sweeper's call on one show: answers `true` when holds are still
    /// due (with waiters, one call frees a bounded number of seats: call
    /// again).
    async fn expire(&self, show: &str, now: i64) -> Result<Reply<bool>>;

    /// Whether `node` sweeps this round. One node at a time sweeps every
    /// show (a lease of `ttl_ms`, renewed by its holder), so sweeping costs
    /// the shared engine the same with one node or ten.
    async fn sweep_turn(&self, node: &str, ttl_ms: i64) -> Result<bool>;

    /// Whether the show needs the sweeper's pass: a hold past its deadline,
    /// a record past its retention, or no state at all (which the pass
    /// rebuilds). Answered without running a script.
    async fn sweep_due(&self, show: &str, now: i64) -> Result<bool>;

    /// Joins the show's waiting list for `quantity` seats; `offer_id` is the
    /// hold id the waiter's offer will have, `rows` the show's plan and
    /// `offer_ttl_ms` the offer's TTL (`domain::seats::waitlist`).
    #[allow(clippy::too_many_arguments)]
    async fn wait_join(
        &self,
        show: &str,
        now: i64,
        user: &str,
        quantity: usize,
        offer_id: &str,
        rows: &[RowPlan],
        offer_ttl_ms: i64,
    ) -> Result<Reply<WaitJoin>>;

    /// Where the user stands on the show's waiting list (a read: no step).
    async fn wait_standing(&self, show: &str, now: i64, user: &str) -> Result<WaitStanding>;

    /// Leaves the waiting list, giving back a live offer; answers where the
    /// user stood (`None` when they were not on it).
    async fn wait_leave(&self, show: &str, now: i64, user: &str) -> Result<Reply<WaitStanding>>;

    /// The waiting list's length and what became of its offers.
    async fn wait_stats(&self, show: &str) -> Result<WaitStats>;

    /// Every taken seat as of one version.
    async fn snapshot(&self, show: &str, now: i64) -> Result<Reply<SeatSnapshot>>;

    async fn hold_record(&self, show: &str, hold_id: &str) -> Result<Option<HoldRecord>>;

    /// Drops everything kept for a show that is over (its keys in Redis).
    async fn forget(&self, show: &str) -> Result<()>;

    /// The show's deltas from now on, in version order. Callers share one
    /// subscription per show per node (`live::feed`); a stream that ends means
    /// the subscription was lost and must be taken again.
    async fn subscribe(&self, show: &str) -> Result<BoxStream<'static, SeatDelta>>;

    /// Drops this node's subscription to the show.
    async fn unsubscribe(&self, show: &str) -> Result<()>;

    async fn ping(&self) -> Result<()>;

    fn name(&self) -> &'static str;
}

/// How many ended hold records one sweeper pass drops per show.
pub const GC_BATCH: usize = 500;

/// Deltas a subscriber of the memory engine may fall behind by before it
/// misses some; it then sees a version gap and re-reads a snapshot.
pub const EVENT_BUFFER: usize = 1024;
