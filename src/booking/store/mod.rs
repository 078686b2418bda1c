//! The record: orders, booked seats, idempotency keys and the outbox.
//! Postgres in production; an in-process store otherwise, side by side. Both
//! apply the order state machine (`domain::order::step` and `settle`) and
//! its seat effect in one atomic step, and both refuse a second sale of a
//! seat.

pub mod memory;
pub mod postgres;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::events::EventSink;
pub use crate::domain::order::Order;
use crate::domain::order::{OrderEvent, OrderStatus, Refusal, SeatEffect, Step};
use crate::domain::seats::{PendingLock, RecordState};
use crate::error::Result;

/// The result of applying an event to an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The order moved; its seats need `effect` applied to the locks.
    Changed {
        order: Order,
        effect: SeatEffect,
    },
    /// An idempotent repeat: the order as it is.
    Unchanged(Order),
    Refused(Order, Refusal),
    /// Payment succeeded but some seats were already sold to another order
    /// (a lost lock): the order is FAILED instead and its seats freed.
    SeatsTaken {
        order: Order,
        conflicts: Vec<String>,
    },
}

impl Applied {
    /// The answer for an order settled by `step` (see `domain::order::settle`).
    pub fn settled(next: Order, step: Step, conflicts: Vec<String>) -> Self {
        if conflicts.is_empty() {
            Self::Changed {
                order: next,
                effect: step.seats,
            }
        } else {
            Self::SeatsTaken { order: next, conflicts }
        }
    }
}

/// A stored response for an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub request_hash: String,
    pub status: u16,
    pub body: serde_json::Value,
}

/// Keyset pagination position: orders strictly older than this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

#[async_trait]
pub trait Records: Send + Sync + 'static {
    /// Inserts unless an order with this id or hold exists; answers the
    /// stored order and whether this call created it.
    async fn create_order(&self, order: &Order) -> Result<(Order, bool)>;

    async fn order(&self, id: Uuid) -> Result<Option<Order>>;

    async fn order_by_hold(&self, hold_id: &str) -> Result<Option<Order>>;

    /// Applies `event` at `now` atomically with its effect on booked seats
    /// and an outbox event.
    async fn apply(
        &self,
        id: Uuid,
        event: OrderEvent,
        now: DateTime<Utc>,
        payment_reference: Option<&str>,
    ) -> Result<Applied>;

    async fn mark_lock_synced(&self, id: Uuid, as_of: DateTime<Utc>) -> Result<()>;

    /// Orders whose last seat change Redis may not know of yet, oldest first.
    async fn unsynced_orders(&self, older_than: DateTime<Utc>, limit: i64) -> Result<Vec<Order>>;

    /// PAYMENT_PENDING orders past their expiry.
    async fn due_orders(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<Uuid>>;

    /// How many seats of the show the user's standing orders (waiting for
    /// payment, or paid) own, leaving out the order of `except_hold` (the
    /// one being made or retried): the per-shopper cap counts them.
    async fn seats_ordered(&self, user: &str, show: &str, except_hold: &str) -> Result<usize>;

    /// The user's orders, newest first, after `cursor`.
    async fn orders_of_user(&self, user: &str, limit: i64, cursor: Option<Cursor>) -> Result<Vec<Order>>;

    /// Every booked seat of a show with its order.
    async fn booked_seats(&self, show: &str) -> Result<Vec<(String, Uuid)>>;

    /// What the seat locks of a show must be: every booked seat (by seat)
    /// and every order waiting for payment (oldest first), each with its
    /// state's stamp (see `locks::cmd::Settle`). The caller sets `as_of`.
    async fn record_state(&self, show: &str) -> Result<RecordState>;

    async fn idempotent_response(&self, user: &str, key: &str) -> Result<Option<StoredResponse>>;

    /// Stores the response unless one exists; answers the stored one.
    async fn store_idempotent_response(
        &self,
        user: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<StoredResponse>;

    /// Moves up to `limit` unrelayed outbox events, oldest first, to `sink`
    /// and marks them relayed; answers how many. Events stay in the outbox
    /// if the sink fails, and two nodes never relay the same event at once.
    async fn relay_outbox(&self, limit: i64, sink: &dyn EventSink) -> Result<usize>;

    /// Deletes at most `limit` idempotency keys created before `keys_before`
    /// and at most `limit` outbox events relayed before `events_before`;
    /// answers how many rows went.
    async fn prune(&self, keys_before: DateTime<Utc>, events_before: DateTime<Utc>, limit: i64) -> Result<u64>;

    async fn ping(&self) -> Result<()>;

    fn name(&self) -> &'static str;
}

/// The outbox topic of a transition, if other systems care about it.
pub fn outbox_topic(to: OrderStatus) -> &'static str {
    match to {
        OrderStatus::PaymentPending => "order.created",
        OrderStatus::Confirmed => "booking.confirmed",
        OrderStatus::Failed => "order.failed",
        OrderStatus::Expired => "order.expired",
        OrderStatus::Cancelled => "order.cancelled",
    }
}

/// The outbox payload of an order's event.
pub fn outbox_payload(o: &Order) -> serde_json::Value {
    serde_json::json!({
        "orderId": o.id, "userId": o.user_id, "showId": o.show_id, "seatIds": o.seat_ids,
        "status": o.status.as_str(), "amount": crate::domain::money::format_minor(o.amount_minor), "currency": o.currency,
        "ticketCode": o.ticket_code, "at": o.updated_at,
    })
}

/// A pending order as the seat locks must hold it.
pub fn pending_lock(o: &Order) -> PendingLock {
    PendingLock {
        order_id: o.id.to_string(),
        hold_id: o.hold_id.clone(),
        user: o.user_id.clone(),
        seats: o.seat_ids.clone(),
        created_ms: o.created_at.timestamp_millis(),
        expires_ms: o.expires_at.timestamp_millis(),
        stamp: o.updated_at.timestamp_micros(),
    }
}
