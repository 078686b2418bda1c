//! Booking: seat holds, orders and tickets. The pipeline keeps the seat
//! locks (fast, atomic, shared by every node) and the record (the truth
//! about sales) consistent: locks first, the record second; when the record
//! has changed what an order owns, the locks follow, and the reconciler
//! retries any that did not (`Order::lock_synced`).
//!
//! - `Booking` (this file, `holds`, `orders`): the pipeline.
//! - `locks`: seat locks, one command per Lua script in `lua/`, run on
//!   Redis or in process (`SeatEngine`), side by side.
//! - `store`: orders, booked seats, idempotency keys and the outbox behind
//!   `Records`, in Postgres or in process, side by side.
//! - `gate`: the admission gate booking asks before a hold; `board`: the
//!   available seats a conflict names, from the live seat map.
//! - `hold_routes`, `order_routes`, `idempotency`, `views`: the HTTP side.
//! - `waitlist/`: the waiting list for returned seats, its routes, socket
//!   and views (its rule lives with the seat locks: `domain::seats::waitlist`).
//! - `loops`: seat expiry, order expiry, reconciliation and the outbox relay.
//! - `events`: where the outbox is relayed to.

pub mod board;
pub mod events;
pub mod gate;
pub mod hold_routes;
mod holds;
pub mod idempotency;
pub mod locks;
pub mod loops;
pub mod order_routes;
mod orders;
pub mod store;
pub mod sweeper;
pub mod views;
pub mod waitlist;

use std::sync::Arc;

use crate::clock::Clock;
use crate::domain::HoldId;
use crate::domain::catalog::{Catalog, Layout, Show};
use crate::domain::seats::{HoldRecord, HoldStatus};
use crate::error::{Error, Result};
use crate::metrics as m;
use board::SeatBoard;
use gate::AdmissionGate;
pub use holds::HoldAsk;
use locks::Reply;
use locks::recovering::Recovering;
use store::Records;

/// How long a hold waits for Postgres to count the shopper's ordered seats.
const SEAT_CAP_READ_BUDGET: std::time::Duration = std::time::Duration::from_millis(300);

/// Limits of the booking rules, from settings.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub hold_ttl_ms: i64,
    pub order_ttl_ms: i64,
    pub max_seats_per_hold: usize,
    /// Seats of one show per shopper across their hold and standing orders.
    pub max_seats_per_user_per_show: usize,
    /// How long a waiting-list offer holds its seats.
    pub offer_ttl_ms: i64,
    /// How long after it is minted a hold can still have a record: the
    /// longest a hold or its order's lock lasts, plus the record's
    /// retention. An id older than that (or not one we mint) names nothing.
    pub hold_id_lifetime_ms: i64,
}

/// A hold as the contract shows it.
#[derive(Debug, Clone)]
pub struct Hold {
    pub id: HoldId,
    pub record: HoldRecord,
    pub status: HoldStatus,
}

/// The booking pipeline. Its parts are private: other features reach the
/// seat locks (`live`) or the record (the loops) through the handles the
/// application gives them, never through here.
pub struct Booking {
    catalog: Arc<Catalog>,
    locks: Arc<Recovering>,
    records: Arc<dyn Records>,
    gate: Arc<dyn AdmissionGate>,
    board: Arc<dyn SeatBoard>,
    limits: Limits,
    clock: Clock,
}

/// Counts the holds an engine's in-line sweep expired, and answers its outcome.
fn track<T>(reply: Reply<T>) -> T {
    if reply.expired > 0 {
        metrics::counter!(m::HOLDS_EXPIRED).increment(reply.expired as u64);
    }
    reply.out
}

impl Booking {
    pub fn new(
        catalog: Arc<Catalog>,
        locks: Arc<Recovering>,
        records: Arc<dyn Records>,
        gate: Arc<dyn AdmissionGate>,
        board: Arc<dyn SeatBoard>,
        limits: Limits,
        clock: Clock,
    ) -> Self {
        Self {
            catalog,
            locks,
            records,
            gate,
            board,
            limits,
            clock,
        }
    }

    pub fn records(&self) -> &Arc<dyn Records> {
        &self.records
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    fn show(&self, id: &str) -> Result<&Show> {
        self.catalog.show(id).ok_or_else(|| Error::not_found("show"))
    }

    /// Checks a hold id from outside before any engine or record is asked:
    /// its show must be in the catalog, and it must be one this service
    /// could have minted within the lifetime of a hold's record (404
    /// otherwise), so a made-up id costs Redis and Postgres nothing.
    pub fn known_hold(&self, hold: &HoldId) -> Result<()> {
        self.show(hold.show().as_str()).map_err(|_| Error::not_found("hold"))?;
        let now = self.clock.now_ms();
        match hold.minted_ms().map(|m| m as i64) {
            // A minute's slack for clocks a little apart between nodes.
            Some(minted) if minted <= now + 60_000 && now - minted <= self.limits.hold_id_lifetime_ms => Ok(()),
            _ => Err(Error::not_found("hold")),
        }
    }

    /// The answer for a hold the engine would not act on for this caller.
    /// Another user's hold (it exists) is 404, like one never made. One the
    /// engine has no record of, minted before the show's state was last
    /// rebuilt, lived only in the lost state: its shopper is told it is no
    /// longer active (409) and picks again, as the contract says.
    async fn unknown_hold(&self, hold: &HoldId) -> Error {
        match self.locks.hold_record(hold.show().as_str(), hold.as_str()).await {
            Ok(None) => self.absent_hold(hold),
            Ok(Some(_)) | Err(_) => Error::not_found("hold"),
        }
    }

    /// The answer for a hold the engine has no record of, under any owner.
    fn absent_hold(&self, hold: &HoldId) -> Error {
        let lost = self
            .locks
            .seen(hold.show().as_str())
            .is_some_and(|(epoch, _)| hold.minted_before(&epoch));
        if lost {
            Error::HoldNotActive("the hold was lost when the show's seats were restored; pick seats again".into())
        } else {
            Error::not_found("hold")
        }
    }

    /// Refuses `wanted` more seats of the show for the user when, with the
    /// seats their standing orders own (but the order of `hold`, if any),
    /// they would pass `MAX_SEATS_PER_USER_PER_SHOW`. A new hold replaces
    /// the user's previous one, so only orders count beside it.
    async fn check_seat_cap(&self, user: &str, show: &str, hold: &str, wanted: usize) -> Result<()> {
        let limit = self.limits.max_seats_per_user_per_show;
        if wanted > limit || self.records.seats_ordered(user, show, hold).await? + wanted > limit {
            return Err(Error::SeatLimit { limit });
        }
        Ok(())
    }

    /// The cap at a hold: read within a short budget and, when Postgres
    /// cannot answer (down or stalled), let through. Holds live in Redis and
    /// must outlast a Postgres outage; the order, which needs Postgres
    /// anyway, checks the cap again before it is made.
    async fn check_seat_cap_at_hold(&self, user: &str, show: &str, hold: &str, wanted: usize) -> Result<()> {
        let check = self.check_seat_cap(user, show, hold, wanted);
        match tokio::time::timeout(SEAT_CAP_READ_BUDGET, check).await {
            Ok(Err(Error::Unavailable(e))) => {
                tracing::warn!(%show, error = %e, "seat cap not read at a hold (Postgres); the order checks it");
                Ok(())
            }
            Ok(checked) => checked,
            Err(_) => {
                tracing::warn!(%show, "seat cap not read at a hold in time (Postgres); the order checks it");
                Ok(())
            }
        }
    }

    fn layout(&self, show: &Show) -> Result<Arc<Layout>> {
        self.catalog
            .layout(&show.screen_id)
            .ok_or_else(|| Error::Internal(format!("no layout for {}", show.screen_id)))
    }
}
