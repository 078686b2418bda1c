//! The waiting room's JSON shapes: a shopper's standing, the operator's
//! view of a room, and the queue socket's messages.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::engine::{Counters, SaleCounts, Standing, StoredRoom};
use super::hub::SocketView;
use crate::domain::outlook::{Band, BandShares, Basis, Model, Outlook};
use crate::domain::waitroom::{self, RoomConfig, eta_seconds};
use crate::error::{Error, Result};
use crate::http::time::{time, time_ms};
use crate::metrics as m;

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
    /// The shopper's chance of a seat (`chance` 1 once admitted, 0 when sold out).
    pub outlook: Outlook,
}

impl StandingView {
    fn new(
        state: RoomState,
        position: Option<u64>,
        queue_length: Option<u64>,
        eta: Option<i64>,
        outlook: Outlook,
    ) -> Self {
        Self {
            outlook,
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
    model: &Model,
    admission: impl FnOnce(i64) -> Result<String>,
) -> Result<StandingView> {
    Ok(match standing {
        Standing::Admitted {
            expires_ms,
            queue_length,
        } => StandingView {
            admission_token: Some(admission(*expires_ms)?),
            admission_expires_at: Some(time_ms(*expires_ms)),
            ..StandingView::new(
                RoomState::Admitted,
                Some(0),
                Some(*queue_length),
                Some(0),
                model.admitted(),
            )
        },
        Standing::Queued {
            position, queue_length, ..
        } => {
            let ahead = position.saturating_sub(1);
            let (state, outlook) = if room.sold_out {
                (RoomState::SoldOut, model.sold_out_view(Some(ahead)))
            } else {
                (RoomState::Queued, model.queued(ahead))
            };
            let eta = eta_seconds(*position, eta_rate(room)).map(|s| s as i64);
            StandingView::new(state, Some(*position), Some(*queue_length), eta, outlook)
        }
        Standing::PreQueued { entrants } => StandingView {
            opens_at: room.config.opens_at.map(time),
            pre_queue: Some(true),
            ..StandingView::new(
                RoomState::Queued,
                None,
                Some(*entrants),
                room.config.opens_at.map(|t| (t - now).num_seconds().max(0)),
                model.pre_queued(*entrants),
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
    /// The sale's funnel: shoppers in total at each step.
    pub funnel: Funnel,
    /// The share of the queue in each outlook band.
    pub outlook_bands: BandShares,
    /// Seats neither held nor booked.
    pub seats_left: i64,
    /// Projected sell-out, if the queue is projected to sell the show out.
    #[schema(format = DateTime)]
    pub sold_out_at: Option<String>,
    pub outlook_basis: Basis,
}

/// A gated sale's funnel: shoppers who joined the queue, were admitted,
/// held seats, placed an order and paid; `abandoned` gave up while queued.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
pub struct Funnel {
    pub queued: u64,
    pub admitted: u64,
    pub held: u64,
    pub ordered: u64,
    pub paid: u64,
    pub abandoned: u64,
}

impl Funnel {
    pub fn of(c: &SaleCounts) -> Self {
        Self {
            queued: c.joined,
            admitted: c.admitted,
            held: c.held_shoppers,
            ordered: c.ordered_shoppers,
            paid: c.paid(),
            abandoned: c.gave_up,
        }
    }
}

/// The funnel, seats left, sell-out and band shares as gauges (the leader
/// sets them each time it observes the sale).
pub fn sale_gauges(show: &str, c: &SaleCounts, model: &Model) {
    let f = Funnel::of(c);
    for (step, n) in [
        ("queued", f.queued),
        ("admitted", f.admitted),
        ("held", f.held),
        ("ordered", f.ordered),
        ("paid", f.paid),
        ("abandoned", f.abandoned),
    ] {
        metrics::gauge!(m::WAITROOM_FUNNEL, "show" => show.to_owned(), "step" => step).set(n as f64);
    }
    metrics::gauge!(m::WAITROOM_SEATS_LEFT, "show" => show.to_owned()).set(model.left.max(0) as f64);
    let sold_out_at = model.sold_out_at_ms().map_or(0.0, |ms| ms as f64 / 1000.0);
    metrics::gauge!(m::WAITROOM_SOLD_OUT_AT, "show" => show.to_owned()).set(sold_out_at);
    let shares = model.shares(c.queue_length);
    for (band, share) in [
        (Band::Likely, shares.likely),
        (Band::Possible, shares.possible),
        (Band::Unlikely, shares.unlikely),
        (Band::SoldOut, shares.sold_out),
    ] {
        metrics::gauge!(m::WAITROOM_OUTLOOK_SHARE, "show" => show.to_owned(), "band" => band.as_str()).set(share);
    }
}

pub fn admin(
    show: &str,
    room: &StoredRoom,
    c: &Counters,
    sale: &SaleCounts,
    model: &Model,
    now: DateTime<Utc>,
) -> RoomView {
    let opened = room.config.opens_at.is_none_or(|t| t <= now);
    let sold_out = room.sold_out || model.sold_out;
    RoomView {
        funnel: Funnel::of(sale),
        outlook_bands: model.shares(c.queue_length),
        seats_left: if sold_out { 0 } else { model.left.max(0) },
        sold_out_at: model.sold_out_at_ms().map(time_ms),
        outlook_basis: model.basis,
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
            outlook,
        } => {
            json!({"type": "position", "position": position, "queueLength": queue_length, "etaSeconds": eta_seconds, "outlook": outlook})
        }
        SocketView::PreQueued { entrants, outlook } => {
            json!({"type": "position", "position": Value::Null, "queueLength": entrants, "etaSeconds": Value::Null, "preQueue": true, "outlook": outlook})
        }
        SocketView::Admitted {
            token,
            expires_ms,
            outlook,
        } => {
            json!({"type": "admitted", "admissionToken": token, "expiresAt": time_ms(*expires_ms), "outlook": outlook})
        }
        SocketView::SoldOut {
            position,
            queue_length,
            outlook,
        } => {
            json!({"type": "soldOut", "position": position, "queueLength": queue_length, "outlook": outlook})
        }
        SocketView::Closed => json!({"type": "closed"}),
        SocketView::Left => json!({"type": "left"}),
    }
}
