//! `WaitingRooms`: the storage and atomic steps of a room, with a Redis
//! implementation (`redis`, scripts `lua/wr_*.lua`) and an in-process one
//! (`memory`) side by side; `tests/conformance` runs both.

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::domain::waitroom::RoomConfig;
use crate::error::Result;

/// What the in-process engine needs to know of a show's seats to tell
/// "sold out" (the Redis script reads the seat hash in the same slot).
#[async_trait]
pub trait SeatCount: Send + Sync + 'static {
    /// How many seats are taken at `now` (held or booked), and how many of
    /// them are booked.
    async fn taken(&self, show: &str, now: i64) -> Result<(u64, u64)>;
}

/// A room as stored: its config, its lottery seed and what the leader last saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredRoom {
    pub config: RoomConfig,
    /// Secret until `opensAt`; only its hash is shown before.
    pub seed: String,
    #[serde(default)]
    pub sold_out: bool,
    #[serde(default)]
    pub observed_rate: f64,
    /// Which life of the room this is: a new one when the room is created or
    /// re-seeded after Redis lost it (and its queue). Nodes that see it change
    /// re-place their queue sockets rather than keep positions that are gone.
    #[serde(default)]
    pub generation: String,
}

/// Where a shopper stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Standing {
    Queued {
        score: f64,
        position: u64,
        queue_length: u64,
    },
    /// Before a RANDOM opening: in the lottery, no position yet.
    PreQueued {
        entrants: u64,
    },
    Admitted {
        expires_ms: i64,
        /// Shoppers still waiting (the queue's length, as the queued are told).
        queue_length: u64,
    },
    None,
}

/// A solved proof-of-work challenge a join spends: its id and expiry (ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spend {
    pub id: String,
    pub until_ms: i64,
}

/// A standing as of one event sequence number.
#[derive(Debug, Clone, PartialEq)]
pub struct Stand {
    pub standing: Standing,
    pub seq: u64,
}

/// What one admission tick did.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub admitted: Vec<String>,
    pub queue_length: u64,
    pub active: u64,
    pub available: i64,
    pub sold_out: bool,
    pub seq: u64,
}

/// How an admission ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// The shopper's order was confirmed, for this many seats.
    Bought { seats: u64 },
    /// The shopper gave the admission up (left) without buying.
    Walked,
}

/// A step of the sale's funnel an admitted shopper reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Held { seats: u64 },
    Ordered,
}

/// What the room's counters say of the sale (the outlook's observations
/// and the funnel), read in one step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SaleCounts {
    pub booked: u64,
    pub held: u64,
    /// Admitted, not yet lapsed, left or confirmed, and holding nothing
    /// (not in the funnel's held set), by age bucket
    /// (`domain::outlook::AGE_BOUNDS_MS`).
    pub pending_by_age: Vec<u64>,
    /// `bought[n]`: admissions settled by buying n seats.
    pub bought: Vec<u64>,
    /// Buyers' times from admission to purchase, by age bucket.
    pub buy_times: Vec<u64>,
    /// Seats admitted shoppers held, in total.
    pub held_seats: u64,
    /// Admissions that lapsed or were left without a purchase.
    pub walked: u64,
    pub buy_ms_sum: u64,
    pub joined: u64,
    pub admitted: u64,
    /// Queued shoppers who left or were abandoned.
    pub gave_up: u64,
    /// Admitted shoppers who held seats / placed an order.
    pub held_shoppers: u64,
    pub ordered_shoppers: u64,
    pub queue_length: u64,
}

impl SaleCounts {
    pub fn paid(&self) -> u64 {
        self.bought.iter().sum()
    }

    /// Admitted shoppers still deciding who hold nothing.
    pub fn pending(&self) -> u64 {
        self.pending_by_age.iter().sum()
    }
}

/// A room's live figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    pub queue_length: u64,
    pub pre_queue: u64,
    pub active: u64,
    pub joined_total: u64,
    pub admitted_total: u64,
    pub abandoned_total: u64,
    pub leader: Option<String>,
    /// When the room's last admission tick ran (ms), by whichever leader.
    pub last_tick_ms: Option<i64>,
}

/// What moves positions, published by the room's steps in sequence order.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum RoomEvent {
    #[serde(rename_all = "camelCase")]
    Tick {
        seq: u64,
        #[serde(deserialize_with = "crate::domain::lua::list_or_empty_object")]
        admitted: Vec<String>,
        expires_at: i64,
        queue_length: u64,
        active: u64,
        sold_out: bool,
        paused: bool,
        rate: f64,
        /// The leader's latest estimate (absent before its first).
        #[serde(default)]
        outlook: Option<Box<crate::domain::outlook::Model>>,
    },
    #[serde(rename_all = "camelCase")]
    Left {
        seq: u64,
        #[serde(deserialize_with = "crate::domain::lua::list_or_empty_object")]
        scores: Vec<f64>,
        queue_length: u64,
    },
    /// The pre-queue lottery placed shoppers: every position must be re-read.
    #[serde(rename_all = "camelCase")]
    Reset { seq: u64, queue_length: u64 },
}

impl RoomEvent {
    pub fn seq(&self) -> u64 {
        match self {
            Self::Tick { seq, .. } | Self::Left { seq, .. } | Self::Reset { seq, .. } => *seq,
        }
    }
}

/// The admission tick's parameters.
#[derive(Debug, Clone)]
pub struct TickParams {
    /// Unique per tick of a leader: a retried tick admits nobody twice.
    pub tick_id: String,
    pub now: i64,
    /// Tokens in hand: the most this tick may admit.
    pub max: u64,
    pub ttl_ms: i64,
    pub sellable: u64,
    pub max_active: u64,
    pub paused: bool,
    pub observed_rate: f64,
    /// The leader's latest estimate (`domain::outlook::Model` as JSON), kept
    /// with the room and published with the tick.
    pub outlook: Option<String>,
}

/// What `open_begin` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opening {
    /// The token does not hold the lease.
    Stale,
    /// The shared clock has not reached `opensAt`.
    Wait,
    /// The lottery block starts at score `base`; `pending` entrants are
    /// still in the pre-queue (0: the opening is done).
    Open { base: i64, pending: u64 },
}

#[async_trait]
pub trait WaitingRooms: Send + Sync + 'static {
    async fn save(&self, show: &str, room: &StoredRoom) -> Result<()>;
    async fn load(&self, show: &str) -> Result<Option<StoredRoom>>;
    /// Every gated show.
    async fn all(&self) -> Result<Vec<(String, StoredRoom)>>;
    /// Ungates the show and forgets its queue.
    async fn remove(&self, show: &str) -> Result<()>;
    /// A version that every save, removal and sold-out flip of any room
    /// replaces with a new random one (never a counter: a Redis that lost
    /// it and counted again from 1 would look unchanged): nodes poll it (one
    /// light read) and re-read the rooms only when it moved. `None` when the
    /// engine has none (Redis lost it): re-read then too.
    async fn rooms_version(&self) -> Result<Option<String>>;
    /// Replaces it (a leader saw its room's sold-out flag flip).
    async fn rooms_changed(&self) -> Result<()>;

    /// Joins (`create`) or reads a shopper's standing, marking them seen
    /// until `seen_until`. Whether a join enters the pre-queue is decided by
    /// the engine's shared clock (Redis `TIME`) against the room's `opensAt`,
    /// not by `now` (the node's clock, used for admission expiry).
    async fn join(&self, show: &str, user: &str, now: i64, create: bool, seen_until: i64) -> Result<Stand>;
    /// Removes these shoppers (`counter`: "left" or "abandoned").
    async fn leave(&self, show: &str, users: &[String], counter: &str) -> Result<u64>;
    /// Removes shoppers not seen since `cutoff`.
    async fn abandon(&self, show: &str, cutoff: i64, limit: u64) -> Result<u64>;
    /// Marks queued shoppers with live sockets as seen until `until`.
    async fn touch(&self, show: &str, users: &[String], until: i64) -> Result<()>;

    /// Acquires or renews the admission lease; answers the token if ours.
    async fn lease(&self, show: &str, node: &str, ttl_ms: i64) -> Result<Option<String>>;
    /// Hands the admission lease back, if `node` holds it (at shutdown).
    async fn release_lease(&self, show: &str, node: &str) -> Result<()>;
    /// One admission tick; `None` when `token` no longer holds the lease.
    async fn admit(&self, show: &str, token: &str, p: TickParams) -> Result<Option<Tick>>;

    /// Begins or resumes the opening of the pre-queue: only for the lease
    /// holder `token`, only once the shared clock has reached `opensAt`.
    async fn open_begin(&self, show: &str, token: &str) -> Result<Opening>;
    /// The opening's entrants (the pre-queue as the opening began).
    async fn entrants(&self, show: &str) -> Result<Vec<String>>;
    /// Places entrants, each at `base` + its lottery rank, skipping any no
    /// longer in the pre-queue. Answers how many it moved and how many are
    /// still in the pre-queue; `None` when `token` no longer holds the lease.
    async fn open(&self, show: &str, token: &str, base: i64, ranked: &[(u64, String)]) -> Result<Option<(u64, u64)>>;

    /// Joins as `join` with `create` does, spending the solved `challenge`
    /// in the same step: only a join that makes a new place spends it, and
    /// a spent one makes no place (`Standing::None`). A join that fails
    /// leaves it unspent, so the shopper's retry of the same solution is
    /// accepted.
    async fn join_spending(
        &self,
        show: &str,
        user: &str,
        now: i64,
        seen_until: i64,
        challenge: &Spend,
    ) -> Result<Stand>;

    /// The room's event sequence number now: what a queue feed that heard
    /// nothing for a while compares with what it applied.
    async fn event_seq(&self, show: &str) -> Result<u64> {
        Ok(self.ranks(show, &[]).await?.0)
    }

    /// Scores and ranks (0-based) of these shoppers, as of one event.
    async fn ranks(&self, show: &str, users: &[String]) -> Result<(u64, u64, Vec<Option<(f64, u64)>>)>;
    /// The shopper's admission is used up (their order was confirmed, or
    /// they left), and how counts toward the sale's observations. `ttl_ms`
    /// is the room's admission length (the admission began at its expiry
    /// less that).
    async fn end_active(&self, show: &str, user: &str, how: Settled, now: i64, ttl_ms: i64) -> Result<()>;
    /// An admitted shopper reached a step of the funnel (counted once each).
    async fn progressed(&self, show: &str, user: &str, step: Step) -> Result<()>;
    /// The sale's counts as of `now`; an admission's age is `now` less its
    /// expiry less `ttl_ms` (the room's admission length).
    async fn sale_counts(&self, show: &str, now: i64, ttl_ms: i64) -> Result<SaleCounts>;
    /// The leader's latest estimate, as it stored it with its tick.
    async fn outlook(&self, show: &str) -> Result<Option<String>>;
    /// Until when the shopper's admission lasts (ms), if they hold one.
    async fn active_until(&self, show: &str, user: &str) -> Result<Option<i64>>;
    async fn counters(&self, show: &str, now: i64) -> Result<Counters>;

    async fn subscribe(&self, show: &str) -> Result<BoxStream<'static, RoomEvent>>;
    async fn unsubscribe(&self, show: &str) -> Result<()>;
}
