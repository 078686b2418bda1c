//! The waiting list's JSON shapes: the answers of its routes, and the
//! messages of its socket (docs/waitlist-socket.md).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::domain::seats::{OfferEnd, WaitStanding, WaitStats};
use crate::http::time::time_ms;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JoinRequest {
    /// Seats wanted, 1 to `MAX_SEATS_PER_HOLD`; together when they can be.
    #[schema(minimum = 1)]
    pub quantity: u64,
}

/// Where a shopper stands on a show's waiting list.
#[derive(Serialize, ToSchema, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WaitState {
    /// In line for returned seats.
    Waiting,
    /// Seats are held for them: buy them (`holdId`) before `expiresAt`.
    Offered,
    /// They turned the offer into an order (`orderId`).
    Accepted,
    /// The offer ran out; its seats went to the next waiter.
    Expired,
    /// They gave the offer back.
    Released,
    /// (`DELETE`) They are off the list.
    Left,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaitlistView {
    pub show_id: String,
    pub user_id: String,
    pub state: WaitState,
    /// `WAITING`: 1 is next.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub position: Option<u64>,
    /// Seats asked for (`WAITING`) or offered.
    pub quantity: u64,
    /// The offer's hold, an ordinary hold of the shopper (`POST /orders` with it).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub hold_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub seat_ids: Option<Vec<String>>,
    /// `OFFERED`: when the offer's hold expires and its seats move on.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub expires_at: Option<String>,
    /// `ACCEPTED`: the order the offer became.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub order_id: Option<String>,
}

/// How an offer ended, as a state.
fn end_state(end: &OfferEnd) -> WaitState {
    match end {
        OfferEnd::Accepted(_) => WaitState::Accepted,
        OfferEnd::Expired => WaitState::Expired,
        OfferEnd::Released => WaitState::Released,
    }
}

/// Where `user` stands, as `POST` and `GET .../waitlist/me` answer it.
pub fn standing(show: &str, user: &str, standing: &WaitStanding) -> WaitlistView {
    let mut v = WaitlistView {
        show_id: show.to_owned(),
        user_id: user.to_owned(),
        state: WaitState::Left,
        position: None,
        quantity: 0,
        hold_id: None,
        seat_ids: None,
        expires_at: None,
        order_id: None,
    };
    match standing {
        WaitStanding::Waiting { position, quantity } => {
            v.state = WaitState::Waiting;
            v.position = Some(*position);
            v.quantity = *quantity as u64;
        }
        WaitStanding::Offered {
            hold_id,
            seats,
            expires_ms,
        } => {
            v.state = WaitState::Offered;
            v.quantity = seats.len() as u64;
            v.hold_id = Some(hold_id.clone());
            v.seat_ids = Some(seats.clone());
            v.expires_at = Some(time_ms(*expires_ms));
        }
        WaitStanding::Ended { hold_id, seats, end } => {
            v.state = end_state(end);
            if let OfferEnd::Accepted(order) = end {
                v.order_id = Some(order.clone());
            }
            v.quantity = seats.len() as u64;
            v.hold_id = Some(hold_id.clone());
            v.seat_ids = Some(seats.clone());
        }
        WaitStanding::None => {}
    }
    v
}

/// What `DELETE` answers: where `user` stood, as `LEFT` (no place, no
/// deadline: neither holds any more).
pub fn left(show: &str, user: &str, was: &WaitStanding) -> WaitlistView {
    let mut view = standing(show, user, was);
    view.state = WaitState::Left;
    (view.position, view.expires_at) = (None, None);
    view
}

/// What one standing says on the socket.
pub fn socket_message(standing: &WaitStanding) -> Value {
    match standing {
        WaitStanding::Waiting { position, quantity } => json!({
            "type": "position", "state": "WAITING", "position": position, "quantity": quantity,
        }),
        WaitStanding::Offered {
            hold_id,
            seats,
            expires_ms,
        } => json!({
            "type": "offer", "state": "OFFERED", "holdId": hold_id, "seatIds": seats,
            "expiresAt": time_ms(*expires_ms),
        }),
        WaitStanding::Ended { hold_id, end, .. } => {
            let order = match end {
                OfferEnd::Accepted(order) => Some(order),
                _ => None,
            };
            json!({ "type": "ended", "state": end_state(end), "holdId": hold_id, "orderId": order })
        }
        WaitStanding::None => json!({ "type": "ended", "state": "LEFT" }),
    }
}

/// Ops' view of a show's waiting list.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaitlistFigures {
    show_id: String,
    /// Shoppers waiting now.
    length: u64,
    /// Offers made, and what became of them (an offer not yet over is in none of the three).
    offers_made: u64,
    offers_taken: u64,
    offers_expired: u64,
    offers_declined: u64,
}

pub fn figures(show_id: &str, s: &WaitStats) -> WaitlistFigures {
    WaitlistFigures {
        show_id: show_id.to_owned(),
        length: s.length,
        offers_made: s.made,
        offers_taken: s.taken,
        offers_expired: s.expired,
        offers_declined: s.declined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered() -> WaitStanding {
        WaitStanding::Offered {
            hold_id: "s.h".into(),
            seats: vec!["D4".into(), "D5".into()],
            expires_ms: 1_764_103_213_120,
        }
    }

    fn answer(view: &WaitlistView) -> Value {
        serde_json::to_value(view).unwrap()
    }

    #[test]
    fn the_answer_says_where_the_shopper_stands_with_only_the_fields_that_apply() {
        let waiting = WaitStanding::Waiting {
            position: 3,
            quantity: 2,
        };
        assert_eq!(
            answer(&standing("s", "u", &waiting)),
            json!({"showId": "s", "userId": "u", "state": "WAITING", "position": 3, "quantity": 2})
        );
        assert_eq!(
            answer(&standing("s", "u", &offered())),
            json!({"showId": "s", "userId": "u", "state": "OFFERED", "quantity": 2, "holdId": "s.h",
                "seatIds": ["D4", "D5"], "expiresAt": "2025-11-25T20:40:13.120Z"})
        );
        let accepted = WaitStanding::Ended {
            hold_id: "s.h".into(),
            seats: vec!["D4".into()],
            end: OfferEnd::Accepted("o1".into()),
        };
        assert_eq!(
            answer(&standing("s", "u", &accepted)),
            json!({"showId": "s", "userId": "u", "state": "ACCEPTED", "quantity": 1, "holdId": "s.h",
                "seatIds": ["D4"], "orderId": "o1"})
        );
    }

    #[test]
    fn leaving_an_offer_answers_left_with_its_hold_but_no_deadline() {
        assert_eq!(
            answer(&left("s", "u", &offered())),
            json!({"showId": "s", "userId": "u", "state": "LEFT", "quantity": 2, "holdId": "s.h",
                "seatIds": ["D4", "D5"]})
        );
        let waiting = WaitStanding::Waiting {
            position: 7,
            quantity: 1,
        };
        assert_eq!(
            answer(&left("s", "u", &waiting)),
            json!({"showId": "s", "userId": "u", "state": "LEFT", "quantity": 1})
        );
    }

    #[test]
    fn socket_messages_are_those_of_the_protocol() {
        let waiting = WaitStanding::Waiting {
            position: 3,
            quantity: 2,
        };
        assert_eq!(
            socket_message(&waiting),
            json!({"type": "position", "state": "WAITING", "position": 3, "quantity": 2})
        );
        assert_eq!(
            socket_message(&offered()),
            json!({"type": "offer", "state": "OFFERED", "holdId": "s.h", "seatIds": ["D4", "D5"],
                "expiresAt": "2025-11-25T20:40:13.120Z"})
        );
        for (end, state) in [(OfferEnd::Expired, "EXPIRED"), (OfferEnd::Released, "RELEASED")] {
            let ended = WaitStanding::Ended {
                hold_id: "s.h".into(),
                seats: vec![],
                end,
            };
            assert_eq!(
                socket_message(&ended),
                json!({"type": "ended", "state": state, "holdId": "s.h", "orderId": null})
            );
        }
        assert_eq!(
            socket_message(&WaitStanding::None),
            json!({"type": "ended", "state": "LEFT"})
        );
    }

    #[test]
    fn ops_figures_name_what_became_of_the_offers() {
        let stats = WaitStats {
            length: 5,
            made: 4,
            taken: 1,
            expired: 2,
            declined: 0,
        };
        assert_eq!(
            serde_json::to_value(figures("s", &stats)).unwrap(),
            json!({"showId": "s", "length": 5, "offersMade": 4, "offersTaken": 1, "offersExpired": 2,
                "offersDeclined": 0})
        );
    }
}
