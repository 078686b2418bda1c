//! The order state machine of the seed document:
//!
//! ```text
//! PAYMENT_PENDING ─▶ CONFIRMED | FAILED | EXPIRED
//! PAYMENT_PENDING | CONFIRMED | FAILED | EXPIRED ─▶ CANCELLED
//! ```
//!
//! `step` decides; the stores apply its decision and its effect on the seats
//! in one transaction.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
