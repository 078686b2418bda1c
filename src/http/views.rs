//! Response bodies: the contract's JSON shapes, built from domain values.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::booking::{Hold, MapSeat};
use crate::domain::catalog::{Catalog, Show};
use crate::domain::money;
use crate::records::Order;

/// RFC 3339 in UTC with milliseconds: `2026-11-25T20:40:13.120Z`. The
/// milliseconds matter: a countdown to `expiresAt` must not run out early.
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn time_ms(ms: i64) -> String {
    time(crate::booking::from_ms(ms))
}

pub fn show(catalog: &Catalog, s: &Show) -> Value {
    let layout = catalog.layout(&s.screen_id);
    let theatre = catalog.data.theatres.iter().find(|t| t.id == s.theatre_id);
    let screen = theatre.and_then(|t| t.screens.iter().find(|sc| sc.id == s.screen_id));
    json!({
        "id": s.id,
        "movieId": s.movie_id,
        "theatreId": s.theatre_id,
        "screenId": s.screen_id,
        "startTime": time(s.start_time),
        "price": s.price,
        "currency": s.currency,
        "theatreName": theatre.map(|t| t.name.as_str()),
        "city": theatre.map(|t| t.city.as_str()),
        "screenName": screen.map(|sc| sc.name.as_str()),
        "totalSeats": layout.map(|l| l.len()),
    })
}

pub fn seat_map(show_id: &str, version: u64, seats: &[MapSeat]) -> Value {
    let seats: Vec<Value> = seats
        .iter()
        .map(|s| json!({"id": s.id, "row": s.row, "number": s.number, "status": s.status}))
        .collect();
    json!({"showId": show_id, "version": version, "seats": seats})
}

pub fn hold(h: &Hold) -> Value {
    json!({
        "holdId": h.id,
        "showId": h.show_id,
        "userId": h.record.user,
        "seatIds": h.record.seats,
        "status": h.status,
        "createdAt": time_ms(h.record.created_ms),
        "expiresAt": time_ms(h.record.expires_ms),
        "orderId": h.record.order_id,
    })
}

pub fn order(o: &Order) -> Value {
    json!({
        "orderId": o.id,
        "userId": o.user_id,
        "showId": o.show_id,
        "holdId": o.hold_id,
        "seatIds": o.seat_ids,
        "amount": money::format_minor(o.amount_minor),
        "currency": o.currency,
        "status": o.status,
        "createdAt": time(o.created_at),
        "expiresAt": time(o.expires_at),
        "updatedAt": time(o.updated_at),
        "ticketCode": o.ticket_code,
        "paymentReference": o.payment_reference,
        "failureReason": o.failure_reason,
    })
}
