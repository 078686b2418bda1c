//! The waiting room's JSON shapes: a shopper's standing, the operator's
//! view of a room, and the queue socket's messages.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::engine::{Counters, Standing, StoredRoom};
use super::hub::SocketView;
use crate::domain::waitroom::{self, RoomConfig, eta_seconds};
use crate::error::{Error, Result};
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

/// Where a shopper stands in the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RoomState {
    Queued,
    Admitted,
    /// No seat is left to sell; admission stops until seats come back.
    SoldOut,
}

/// A shopper's standing (`join` and `me`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StandingView {
    pub state: RoomState,
    /// 1 for the next shopper to be admitted; 0 once admitted; `null` in
    /// the pre-queue (the lottery has not run).
    pub position: Option<u64>,
    /// Shoppers in the queue (in the pre-queue: entrants so far; once admitted: those still waiting).
    pub queue_length: Option<u64>,
    /// Seconds until admission at the observed rate (in the pre-queue: until
    /// `opensAt`); `null` while admission is paused.
    pub eta_seconds: Option<i64>,
    /// `ADMITTED`: send as `X-Admission-Token` on `POST /holds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub admission_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub admission_expires_at: Option<String>,
    /// In the pre-queue: when the queue opens and the lottery runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub opens_at: Option<String>,
    /// `true` while in the pre-queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub pre_queue: Option<bool>,
}

impl StandingView {
    fn new(state: RoomState, position: Option<u64>, queue_length: Option<u64>, eta: Option<i64>) -> Self {
        Self {
            state,
            position,
            queue_length,
            eta_seconds: eta,
            admission_token: None,
            admission_expires_at: None,
            opens_at: None,
            pre_queue: None,
        }
    }
}

/// A shopper's standing. `admission` mints the token of an admitted
/// shopper; someone not in the room is a 404.
pub fn standing(
    room: &StoredRoom,
    standing: &Standing,
    now: DateTime<Utc>,
    admission: impl FnOnce(i64) -> Result<String>,
) -> Result<StandingView> {
    Ok(match standing {
        Standing::Admitted {
            expires_ms,
            queue_length,
        } => StandingView {
            admission_token: Some(admission(*expires_ms)?),
            admission_expires_at: Some(time_ms(*expires_ms)),
            ..StandingView::new(RoomState::Admitted, Some(0), Some(*queue_length), Some(0))
        },
        Standing::Queued {
            position, queue_length, ..
        } => {
            let state = if room.sold_out {
                RoomState::SoldOut
            } else {
                RoomState::Queued
            };
            let eta = eta_seconds(*position, eta_rate(room)).map(|s| s as i64);
            StandingView::new(state, Some(*position), Some(*queue_length), eta)
        }
        Standing::PreQueued { entrants } => StandingView {
            opens_at: room.config.opens_at.map(time),
            pre_queue: Some(true),
            ..StandingView::new(
                RoomState::Queued,
                None,
                Some(*entrants),
                room.config.opens_at.map(|t| (t - now).num_seconds().max(0)),
            )
        },
        Standing::None => return Err(Error::NotFound("you are not in this queue; join it first".into())),
    })
}

/// The operator's view of a room: the config, the lottery commitment and
/// the live figures.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomView {
    #[serde(flatten)]
    pub config: RoomConfig,
    pub show_id: String,
    /// Queued shoppers, the pre-queue included.
    pub queue_length: u64,
    pub pre_queue_length: u64,
    /// Admitted and not yet done (expired, left or confirmed).
    pub active: u64,
    pub joined_total: u64,
    pub admitted_total: u64,
    pub abandoned_total: u64,
    /// Admissions per second over the last few seconds.
    pub observed_admit_rate: f64,
    pub sold_out: bool,
    /// The node running this room's admission ticks.
    pub leader: Option<String>,
    /// SHA-256 of the lottery seed, published before `opensAt`.
    pub lottery_seed_hash: String,
    /// The seed itself, revealed once the room has opened.
    pub lottery_seed: Option<String>,
}

pub fn admin(show: &str, room: &StoredRoom, c: &Counters, now: DateTime<Utc>) -> RoomView {
    let opened = room.config.opens_at.is_none_or(|t| t <= now);
    RoomView {
        config: room.config.clone(),
        show_id: show.to_owned(),
        queue_length: c.queue_length + c.pre_queue,
        pre_queue_length: c.pre_queue,
        active: c.active,
        joined_total: c.joined_total,
        admitted_total: c.admitted_total,
        abandoned_total: c.abandoned_total,
        observed_admit_rate: (room.observed_rate * 100.0).round() / 100.0,
        sold_out: room.sold_out,
        leader: c.leader.clone(),
        lottery_seed_hash: waitroom::seed_hash(&room.seed),
        lottery_seed: opened.then(|| room.seed.clone()),
    }
}

/// `DELETE /admin/waitrooms/{id}`: the show is no longer gated.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ungated {
    pub show_id: String,
    /// Always `false`.
    pub gated: bool,
}

/// `DELETE /waitrooms/{id}/me`: the shopper's place (or admission) is gone.
#[derive(Debug, Serialize, ToSchema)]
pub struct Left {
    /// Always `LEFT`.
    #[schema(example = "LEFT")]
    pub state: &'static str,
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
