//! The order state machine of the seed document:
//!
//! ```text
//! PAYMENT_PENDING ─▶ CONFIRMED | FAILED | EXPIRED
//! PAYMENT_PENDING | CONFIRMED | FAILED | EXPIRED ─▶ CANCELLED
//! ```
//!
//! `step` decides; `settle` writes the decision into the order. Both stores
//! call them and apply the effect on the seats in one transaction.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An order: the record of one sale attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: Uuid,
    pub user_id: String,
    pub show_id: String,
    pub hold_id: String,
    pub seat_ids: Vec<String>,
    pub amount_minor: i64,
    pub currency: String,
    pub status: OrderStatus,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub ticket_code: Option<String>,
    pub payment_reference: Option<String>,
    pub failure_reason: Option<String>,
    /// Whether Redis reflects what this order owns (see `lock_synced` in the schema).
    pub lock_synced: bool,
}

/// The failure reason of an order whose seats were sold to another order
/// between its hold and its payment.
pub const SEAT_CONFLICT: &str = "SEAT_CONFLICT";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    PaymentPending,
    Confirmed,
    Failed,
    Expired,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 5] = [
        Self::PaymentPending,
        Self::Confirmed,
        Self::Failed,
        Self::Expired,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PaymentPending => "PAYMENT_PENDING",
            Self::Confirmed => "CONFIRMED",
            Self::Failed => "FAILED",
            Self::Expired => "EXPIRED",
            Self::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether the order's seats are locked or booked while in this state.
    pub fn owns_seats(self) -> bool {
        matches!(self, Self::PaymentPending | Self::Confirmed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderEvent {
    PaymentSucceeded,
    PaymentFailed,
    /// The order's `expiresAt` has passed without a payment outcome.
    Expire,
    /// The owner (or an admin) cancels.
    Cancel,
}

/// What a transition does to the order's seats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatEffect {
    /// Seats stay as they are.
    Keep,
    /// Seats become BOOKED for good (a row per seat in the record).
    Book,
    /// Seats become available again (lock released, booked rows removed).
    Free,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub to: OrderStatus,
    pub seats: SeatEffect,
}

/// Why an event is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The order is past its `expiresAt` (409 `ORDER_EXPIRED`).
    Expired,
    /// The event does not apply in this state (409 `INVALID_STATE`).
    InvalidState,
}

/// Decides the transition for `event` from `from`. `past_expiry` says whether
/// `now >= expiresAt`. `Ok(None)` is an idempotent repeat: nothing changes and
/// the caller answers the order as it is.
pub fn step(from: OrderStatus, event: OrderEvent, past_expiry: bool) -> Result<Option<Step>, Refusal> {
    use OrderEvent as E;
    use OrderStatus as S;
    let to = |to, seats| Ok(Some(Step { to, seats }));
    match (from, event) {
        (S::PaymentPending, E::PaymentSucceeded) if !past_expiry => to(S::Confirmed, SeatEffect::Book),
        (S::PaymentPending, E::PaymentFailed) if !past_expiry => to(S::Failed, SeatEffect::Free),
        (S::PaymentPending, E::PaymentSucceeded | E::PaymentFailed) => Err(Refusal::Expired),
        (S::PaymentPending, E::Expire) if past_expiry => to(S::Expired, SeatEffect::Free),
        (S::PaymentPending, E::Expire) => Err(Refusal::InvalidState),
        (S::PaymentPending | S::Confirmed, E::Cancel) => to(S::Cancelled, SeatEffect::Free),
        (S::Failed | S::Expired, E::Cancel) => to(S::Cancelled, SeatEffect::Keep),
        // Repeating a payment outcome answers the result already reached.
        (S::Confirmed | S::Failed, E::PaymentSucceeded | E::PaymentFailed) => Ok(None),
        (S::Expired, E::PaymentSucceeded | E::PaymentFailed) => Err(Refusal::Expired),
        (S::Cancelled, E::PaymentSucceeded | E::PaymentFailed) => Err(Refusal::InvalidState),
        (S::Confirmed | S::Failed | S::Expired | S::Cancelled, E::Expire) => Ok(None),
        (S::Cancelled, E::Cancel) => Ok(None),
    }
}

/// The order after `step` was taken at `now`. `conflicts` are the seats the
/// record found booked by another order when `step` would book them: then
/// the sale fails whole (FAILED, `SEAT_CONFLICT`) and the locks must free
/// the order's seats.
pub fn settle(
    current: &Order,
    event: OrderEvent,
    step: Step,
    now: DateTime<Utc>,
    payment_reference: Option<&str>,
    conflicts: &[String],
    rng: &mut impl rand::Rng,
) -> Order {
    let mut next = current.clone();
    // Strictly after the state it follows, even within one microsecond (or
    // a clock step back): the seat locks order an order's changes by it.
    next.updated_at = micros(now).max(current.updated_at + chrono::TimeDelta::microseconds(1));
    if matches!(event, OrderEvent::PaymentSucceeded | OrderEvent::PaymentFailed) {
        next.payment_reference = payment_reference.map(str::to_owned);
    }
    if step.seats == SeatEffect::Book && !conflicts.is_empty() {
        next.status = OrderStatus::Failed;
        next.failure_reason = Some(SEAT_CONFLICT.into());
        next.lock_synced = false;
        return next;
    }
    next.status = step.to;
    next.lock_synced = step.seats == SeatEffect::Keep && current.lock_synced;
    if step.seats == SeatEffect::Book {
        next.ticket_code = Some(ticket_code(rng));
    }
    next
}

/// Truncates to microseconds, the precision Postgres keeps, so both stores
/// answer identical timestamps.
pub fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// What the locks must do for an order in its current status.
pub fn effect_for(status: OrderStatus) -> SeatEffect {
    match status {
        OrderStatus::Confirmed => SeatEffect::Book,
        OrderStatus::PaymentPending => SeatEffect::Keep,
        OrderStatus::Failed | OrderStatus::Expired | OrderStatus::Cancelled => SeatEffect::Free,
    }
}

/// Ticket codes: `SG-` and ten characters of Crockford base32 (no I, L, O, U),
/// easy to read out at a box office; 50 bits of randomness.
pub fn ticket_code(rng: &mut impl rand::Rng) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut code = String::from("SG-");
    for _ in 0..10 {
        code.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderEvent as E;
    use OrderStatus as S;
    use proptest::prelude::*;

    fn pending() -> Order {
        let t = DateTime::from_timestamp_millis(1_800_000_000_000).unwrap();
        Order {
            id: Uuid::nil(),
            user_id: "u".into(),
            show_id: "s".into(),
            hold_id: "h".into(),
            seat_ids: vec!["A1".into()],
            amount_minor: 1000,
            currency: "INR".into(),
            status: S::PaymentPending,
            created_at: t,
            expires_at: t + chrono::TimeDelta::minutes(10),
            updated_at: t,
            ticket_code: None,
            payment_reference: None,
            failure_reason: None,
            lock_synced: true,
        }
    }

    #[test]
    fn settling_a_payment_books_with_a_ticket_or_fails_whole_on_a_conflict() {
        let o = pending();
        let now = o.created_at + chrono::TimeDelta::seconds(1);
        let step = step(o.status, E::PaymentSucceeded, false).unwrap().unwrap();
        let rng = &mut rand::rng();
        let paid = settle(&o, E::PaymentSucceeded, step, now, Some("ref"), &[], rng);
        assert_eq!((paid.status, paid.lock_synced), (S::Confirmed, false));
        assert!(paid.ticket_code.is_some() && paid.payment_reference.as_deref() == Some("ref"));
        let lost = settle(&o, E::PaymentSucceeded, step, now, Some("ref"), &["A1".into()], rng);
        assert_eq!(lost.status, S::Failed);
        assert_eq!(lost.failure_reason.as_deref(), Some(SEAT_CONFLICT));
        assert!(lost.ticket_code.is_none() && !lost.lock_synced);
        let cancel = step_of(&paid, E::Cancel);
        let cancelled = settle(&paid, E::Cancel, cancel, now, None, &[], rng);
        assert_eq!(
            (cancelled.status, cancelled.payment_reference.as_deref()),
            (S::Cancelled, Some("ref"))
        );
    }

    fn step_of(o: &Order, e: E) -> Step {
        step(o.status, e, false).unwrap().unwrap()
    }

    #[test]
    fn pending_orders_confirm_fail_or_expire() {
        assert_eq!(
            step(S::PaymentPending, E::PaymentSucceeded, false).unwrap().unwrap().to,
            S::Confirmed
        );
        assert_eq!(
            step(S::PaymentPending, E::PaymentFailed, false).unwrap().unwrap().seats,
            SeatEffect::Free
        );
        assert_eq!(
            step(S::PaymentPending, E::Expire, true).unwrap().unwrap().to,
            S::Expired
        );
        assert_eq!(step(S::PaymentPending, E::Expire, false), Err(Refusal::InvalidState));
    }

    #[test]
    fn payment_past_expiry_is_refused_as_expired() {
        assert_eq!(
            step(S::PaymentPending, E::PaymentSucceeded, true),
            Err(Refusal::Expired)
        );
        assert_eq!(step(S::Expired, E::PaymentSucceeded, true), Err(Refusal::Expired));
    }

    #[test]
    fn a_cancelled_order_refuses_payment_but_repeats_cancel() {
        assert_eq!(
            step(S::Cancelled, E::PaymentSucceeded, false),
            Err(Refusal::InvalidState)
        );
        assert_eq!(step(S::Cancelled, E::Cancel, false), Ok(None));
    }

    #[test]
    fn cancelling_frees_seats_only_where_the_order_still_owns_them() {
        for from in S::ALL {
            if let Ok(Some(st)) = step(from, E::Cancel, false) {
                assert_eq!(st.to, S::Cancelled);
                assert_eq!(st.seats == SeatEffect::Free, from.owns_seats(), "{from:?}");
            }
        }
    }

    #[test]
    fn statuses_round_trip_their_names() {
        for s in S::ALL {
            assert_eq!(S::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }

    fn any_event() -> impl Strategy<Value = E> {
        prop_oneof![
            Just(E::PaymentSucceeded),
            Just(E::PaymentFailed),
            Just(E::Expire),
            Just(E::Cancel)
        ]
    }

    proptest! {
        /// Whatever happens to an order, its seats are booked exactly while it
        /// is CONFIRMED, locked exactly while PAYMENT_PENDING, and no terminal
        /// state is ever left except for CANCELLED.
        #[test]
        fn seat_effects_track_the_status(events in proptest::collection::vec((any_event(), any::<bool>()), 0..12)) {
            let mut status = S::PaymentPending;
            let mut owns = true;
            let mut booked = false;
            let mut expired = false;
            for (event, tick) in events {
                expired |= tick;
                if let Ok(Some(st)) = step(status, event, expired) {
                    prop_assert!(status != S::Cancelled);
                    match st.seats {
                        SeatEffect::Book => { prop_assert!(owns && !booked); booked = true; }
                        SeatEffect::Free => { prop_assert!(owns); owns = false; booked = false; }
                        SeatEffect::Keep => {}
                    }
                    status = st.to;
                }
                prop_assert_eq!(owns, status.owns_seats());
                prop_assert_eq!(booked, status == S::Confirmed);
            }
        }
    }
}
