//! The seat engine's vocabulary: who owns a seat, what a hold is, what the
//! record says, and what each step answers. Shared by the state machine
//! (`super`), the engines (`booking::locks`) and the Lua scripts' JSON.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SeatStatus {
    Available,
    Held,
    Booked,
    /// Permanently unavailable (broken, reserved): part of the catalog, never
    /// of the lock state.
    Unavailable,
}

impl SeatStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "AVAILABLE",
            Self::Held => "HELD",
            Self::Booked => "BOOKED",
            Self::Unavailable => "UNAVAILABLE",
        }
    }
}

/// Who has a seat. Encoded in Redis as `H:<holdId>`, `O:<orderId>`, `B:<orderId>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Hold(String),
    Order(String),
    Booked(String),
}

impl Owner {
    pub fn parse(s: &str) -> Option<Self> {
        let (tag, id) = s.split_once(':')?;
        match tag {
            "H" => Some(Self::Hold(id.to_owned())),
            "O" => Some(Self::Order(id.to_owned())),
            "B" => Some(Self::Booked(id.to_owned())),
            _ => None,
        }
    }

    pub fn status(&self) -> SeatStatus {
        match self {
            Self::Hold(_) | Self::Order(_) => SeatStatus::Held,
            Self::Booked(_) => SeatStatus::Booked,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HoldStatus {
    Held,
    Expired,
    Released,
}

/// A hold as stored (field names are the Lua scripts' JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldRecord {
    #[serde(rename = "u")]
    pub user: String,
    #[serde(rename = "s")]
    pub seats: Vec<String>,
    #[serde(rename = "st")]
    pub status: HoldStatus,
    #[serde(rename = "c")]
    pub created_ms: i64,
    #[serde(rename = "e")]
    pub expires_ms: i64,
    /// The order this hold became, if any.
    #[serde(rename = "o", default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(rename = "oc", default, skip_serializing_if = "Option::is_none")]
    pub order_created_ms: Option<i64>,
    #[serde(rename = "oe", default, skip_serializing_if = "Option::is_none")]
    pub order_expires_ms: Option<i64>,
    /// When the hold ended (released or expired).
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<i64>,
    /// The user's previous hold this one replaced, so a retried hold answers
    /// what the first run did.
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub replaced: Option<String>,
    /// A waiting-list offer (its end is counted in the list's figures).
    #[serde(rename = "w", default, skip_serializing_if = "std::ops::Not::not")]
    pub offer: bool,
}

impl HoldRecord {
    /// Status as the contract reports it: a hold is EXPIRED the moment its
    /// `expiresAt` passes, whatever any sweeper has done yet; a hold that
    /// became an order stays HELD.
    pub fn status_at(&self, now_ms: i64) -> HoldStatus {
        if self.status == HoldStatus::Held && self.order_id.is_none() && now_ms >= self.expires_ms {
            HoldStatus::Expired
        } else {
            self.status
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatChange {
    pub seat_id: String,
    pub status: SeatStatus,
}

/// One published change of a show's seats: exactly one version step, or a
/// rebuild (a new epoch, with whatever seats it changed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatDelta {
    pub show_id: String,
    #[serde(default)]
    pub epoch: String,
    pub version: u64,
    #[serde(deserialize_with = "crate::domain::lua::list_or_empty_object")]
    pub changes: Vec<SeatChange>,
}

/// What the record (Postgres) says a show's seats are: the input of a rebuild.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecordState {
    /// (seat, order, stamp) of every booked seat.
    pub booked: Vec<(String, String, i64)>,
    /// Every order still waiting for its payment.
    pub pending: Vec<PendingLock>,
    /// (order, stamp) of the show's orders that ended lately (cancelled,
    /// failed, expired): a booking of one of them that Redis kept from an
    /// earlier state (a replica that lost the release) is freed whatever
    /// `as_of` says.
    pub ended: Vec<(String, i64)>,
    /// When the record was read (µs): a change applied to the locks after
    /// it (a newer stamp) is kept by the rebuild.
    #[serde(rename = "asOf")]
    pub as_of: i64,
}

/// A PAYMENT_PENDING order's lock (field names are the rebuild script's JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingLock {
    #[serde(rename = "o")]
    pub order_id: String,
    #[serde(rename = "h")]
    pub hold_id: String,
    #[serde(rename = "u")]
    pub user: String,
    #[serde(rename = "s")]
    pub seats: Vec<String>,
    #[serde(rename = "c")]
    pub created_ms: i64,
    #[serde(rename = "e")]
    pub expires_ms: i64,
    /// The order state's stamp (updated_at, µs).
    #[serde(rename = "t")]
    pub stamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldOutcome {
    /// Locked: the hold as stored (its `replaced` is the user's previous
    /// hold, released in the same step).
    Held { version: u64, record: HoldRecord },
    /// Nothing changed: the seats asked for that someone else has. (What
    /// is still available is read from the node's replica of the show, not
    /// from here: a conflict costs the shared engine O(seats asked).)
    Conflict { conflicts: Vec<String> },
}

/// What a best-available hold did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BestOutcome {
    /// Locked the seats the rule picked: the hold as stored, as for `HoldOutcome::Held`.
    Held { version: u64, record: HoldRecord },
    /// No row has that many adjacent free seats; nothing changed.
    NotEnough { largest_block: usize },
}

/// What the sweeper's call did and found (`lua/seats_expire.lua`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Holds are still due (the sweep's budget stopped it): call again.
    pub more: bool,
    /// The show's next deadline (ms), tombstone steps included: when the
    /// sweeper must come back, if ever.
    pub next_due: Option<i64>,
    /// Ended holds' records kept.
    pub tombstones: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseOutcome {
    Released,
    NotFound,
    /// Not active; the hold's status, or `ORDERED` when it became an order.
    NotActive(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLock {
    pub order_id: String,
    pub created_ms: i64,
    pub expires_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtendOutcome {
    /// The hold now locks its seats for this new order.
    Attached(OrderLock),
    /// The hold had already become this order.
    Existing(OrderLock),
    NotFound,
    Expired,
    NotActive(String),
}

/// Every seat that is not available, as of one version of one epoch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeatSnapshot {
    pub epoch: String,
    pub version: u64,
    pub taken: HashMap<String, Owner>,
}

/// What one operation did besides its answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Effects {
    pub expired_holds: u32,
    pub delta: Option<SeatDelta>,
    /// Offers the step made: (waiter, the offer's expiry in ms). On a gated
    /// show each is its waiter's admission until then.
    pub offers: Vec<(String, i64)>,
}

/// Timing knobs the operations need; the same values go to the Lua scripts.
#[derive(Debug, Clone, Copy)]
pub struct LockTimes {
    /// How long ended hold records (tombstones) stay readable, at least:
    /// they go in generations, each kept between this and twice this.
    pub retention_ms: i64,
    /// How long an order's lock outlives the order's expiry if the order
    /// store never releases it.
    pub order_grace_ms: i64,
    /// Each user's budget of seat-changing calls per show, across nodes.
    pub budget: Option<super::Budget>,
}

/// Where and when a step runs: the show, the time (ms since the epoch, from
/// the caller, so the same cases run on every engine) and the timing knobs.
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    pub show: &'a str,
    pub now: i64,
    pub times: LockTimes,
}
