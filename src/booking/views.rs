//! Booking's JSON shapes: holds and orders (the seat map is `live`'s).

use serde_json::{Value, json};

use super::Hold;
use super::store::Order;
use crate::domain::money;
use crate::http::time::{time, time_ms};

pub fn hold(h: &Hold) -> Value {
    json!({
        "holdId": h.id.as_str(),
        "showId": h.id.show().as_str(),
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
