//! The waiting room's JSON shapes: a shopper's standing, the operator's
//! view of a room, and the queue socket's messages.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::engine::{Counters, Standing, StoredRoom};
use super::hub::SocketView;
use crate::domain::waitroom::{self, eta_seconds};
use crate::error::Result;
use crate::http::time::{time, time_ms};

/// The rate an ETA is computed from: the observed one, else the configured one.
fn eta_rate(room: &StoredRoom) -> f64 {
    if room.observed_rate > 0.0 {
        room.observed_rate
    } else if room.config.paused {
        0.0
    } else {
        room.config.admit_rate_per_second
    }
}

/// A shopper's standing (`join` and `me`). `admission` mints the token of
/// an admitted shopper.
pub fn standing(
    room: &StoredRoom,
    standing: &Standing,
    now: DateTime<Utc>,
    admission: impl FnOnce(i64) -> Result<String>,
) -> Result<Value> {
    Ok(match standing {
        Standing::Admitted { expires_ms } => json!({
            "state": "ADMITTED", "position": 0, "queueLength": Value::Null, "etaSeconds": 0,
            "admissionToken": admission(*expires_ms)?,
            "admissionExpiresAt": time_ms(*expires_ms),
        }),
        Standing::Queued {
            position, queue_length, ..
        } => json!({
            "state": if room.sold_out { "SOLD_OUT" } else { "QUEUED" },
            "position": position, "queueLength": queue_length,
            "etaSeconds": eta_seconds(*position, eta_rate(room)),
        }),
        Standing::PreQueued { entrants } => json!({
            "state": "QUEUED", "position": Value::Null, "queueLength": entrants,
            "etaSeconds": room.config.opens_at.map(|t| (t - now).num_seconds().max(0)),
            "opensAt": room.config.opens_at.map(time),
            "preQueue": true,
        }),
        Standing::None => json!({"state": "NONE"}),
    })
}

/// The config, the lottery commitment and the live figures.
pub fn admin(show: &str, room: &StoredRoom, c: &Counters, now: DateTime<Utc>) -> Result<Value> {
    let mut v = serde_json::to_value(&room.config)?;
    let opened = room.config.opens_at.is_none_or(|t| t <= now);
    let extra = json!({
        "showId": show,
        "queueLength": c.queue_length + c.pre_queue,
        "preQueueLength": c.pre_queue,
        "active": c.active,
        "joinedTotal": c.joined_total,
        "admittedTotal": c.admitted_total,
        "abandonedTotal": c.abandoned_total,
        "observedAdmitRate": (room.observed_rate * 100.0).round() / 100.0,
        "soldOut": room.sold_out,
        "leader": c.leader,
        "lotterySeedHash": waitroom::seed_hash(&room.seed),
        "lotterySeed": if opened { Some(room.seed.clone()) } else { None },
    });
    if let (Value::Object(a), Value::Object(b)) = (&mut v, extra) {
        a.extend(b);
    }
    Ok(v)
}

/// A queue socket's message for what it shows now.
pub fn socket_message(view: &SocketView) -> Value {
    match view {
        SocketView::Queued {
            position,
            queue_length,
            eta_seconds,
        } => {
            json!({"type": "position", "position": position, "queueLength": queue_length, "etaSeconds": eta_seconds})
        }
        SocketView::PreQueued { entrants } => {
            json!({"type": "position", "position": Value::Null, "queueLength": entrants, "etaSeconds": Value::Null, "preQueue": true})
        }
        SocketView::Admitted { token, expires_ms } => {
            json!({"type": "admitted", "admissionToken": token, "expiresAt": time_ms(*expires_ms)})
        }
        SocketView::SoldOut { position, queue_length } => {
            json!({"type": "soldOut", "position": position, "queueLength": queue_length})
        }
        SocketView::Closed => json!({"type": "closed"}),
        SocketView::Left => json!({"type": "left"}),
    }
}
