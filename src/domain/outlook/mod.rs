//! The honest queue's estimate, without I/O: from what a sale has shown so
//! far, the chance that seats are still free when a queued shopper's turn
//! comes, the projected sell-out time, and the share of a queue in each band.
//!
//! The leader of a room turns the room's observations into a `Model` a few
//! times a second and publishes it with its tick; every node then answers
//! each of its shoppers from the model alone (`Model::outlook`), with no
//! Redis work per socket.
//!
//! The estimate. Seats not yet booked (`free`: held seats included, since a
//! hold may come back) go to the shoppers admitted before you: those
//! admitted and still deciding (`pending`) and the queue ahead of you,
//! thinned by the share of queued shoppers who give up before their turn.
//! Each takes `X` seats: nothing with the sale's walk-away share, else `Y`
//! seats, `Y` drawn from what the sale's buyers bought. Both are mixed with
//! a documented prior that weighs as `PRIOR_WEIGHT` shoppers.
//!
//! Admissions are censored: a shopper admitted a few seconds ago who has
//! not bought may still buy, or may have walked away (their admission only
//! lapses minutes later). The sale's buying times (a histogram by age
//! bucket) give the chance that a buyer is still deciding at a given age,
//! so an admission of age `a` buys with the chance
//! q·S(a) / (q·S(a) + 1 − q), where q is the share who buy and S the share
//! of buyers slower than `a`; and q itself is estimated from settled and
//! pending admissions together (a few rounds of expectation-maximisation).
//! Your chance is P(X₁ + … + Xₘ < free), m the pending (as shoppers of the
//! same kind) plus those ahead: exact (by convolution) for the first
//! `EXACT_UP_TO`, the normal approximation beyond, where it is good.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

mod chance;
mod observations;
mod race;
#[cfg(test)]
mod tests;

pub use observations::Observations;

/// The share of held seats that come back, before the sale has data
/// (expired holds, failed payments), and how many seats it weighs as.
pub const PRIOR_RETURNS: f64 = 0.1;
const PRIOR_RETURNS_WEIGHT: f64 = 50.0;

/// Seats one shopper takes, before the sale has data: P(X = n) for
/// n = 0..=6. A quarter of admitted shoppers buy nothing; of the rest,
/// pairs dominate (the seed's own sales: couples and friends), then singles
/// and small groups.
pub const PRIOR_SEATS: [f64; 7] = [0.25, 0.15, 0.35, 0.10, 0.10, 0.03, 0.02];
/// Upper bounds (ms) of the age buckets admissions and buying times are
/// counted in; the last bucket is everything from the last bound on.
pub const AGE_BOUNDS_MS: [i64; 10] = [
    1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 512_000,
];
pub const AGE_BUCKETS: usize = AGE_BOUNDS_MS.len() + 1;
/// How long buying takes, before the sale has data: P(buying time in each
/// age bucket). A person picks seats, types a card: mostly half a minute
/// to four minutes.
const PRIOR_BUY_TIMES: [f64; AGE_BUCKETS] = [0.0, 0.0, 0.01, 0.04, 0.10, 0.20, 0.30, 0.25, 0.08, 0.02, 0.0];

/// The age bucket of an admission (or a buying time) of `ms`.
pub fn age_bucket(ms: i64) -> usize {
    AGE_BOUNDS_MS
        .iter()
        .position(|b| ms < *b)
        .unwrap_or(AGE_BOUNDS_MS.len())
}
/// How many shoppers the prior weighs as against the sale's own.
pub const PRIOR_WEIGHT: f64 = 20.0;
/// Settled admissions before the estimate says `observed`.
pub const OBSERVED_AFTER: u64 = 20;
/// Share of queued shoppers who give up before their turn, before the sale
/// has data.
pub const PRIOR_GIVE_UP: f64 = 0.1;
/// Queue leavers and admissions before the give-up share is the sale's own.
const GIVE_UP_AFTER: u64 = 50;
/// Shoppers (pending + ahead) for whom the chance is computed exactly.
pub const EXACT_UP_TO: usize = 64;
/// The most seats one shopper's outcome is counted at (more count as this).
pub const MAX_SEATS: usize = 10;

pub const LIKELY_FROM: f64 = 0.7;
pub const UNLIKELY_BELOW: f64 = 0.2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Band {
    Likely,
    Possible,
    Unlikely,
    SoldOut,
}

impl Band {
    pub fn of(chance: f64) -> Self {
        if chance >= LIKELY_FROM {
            Self::Likely
        } else if chance < UNLIKELY_BELOW {
            Self::Unlikely
        } else {
            Self::Possible
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Likely => "LIKELY",
            Self::Possible => "POSSIBLE",
            Self::Unlikely => "UNLIKELY",
            Self::SoldOut => "SOLD_OUT",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Basis {
    /// The sale has too little data of its own: the documented priors.
    Prior,
    /// The sale's own observations (mixed with the prior's small weight).
    Observed,
}

/// An age bucket's span (ms): the last one taken as running to twice its
/// start.
pub(crate) fn bucket_span(b: usize) -> (f64, f64) {
    let lo = if b == 0 { 0.0 } else { AGE_BOUNDS_MS[b - 1] as f64 };
    (lo, AGE_BOUNDS_MS.get(b).map_or(lo * 2.0, |h| *h as f64))
}

/// The middle of an age bucket (ms).
pub(crate) fn bucket_middle(b: usize) -> f64 {
    let (lo, hi) = bucket_span(b);
    (lo + hi) / 2.0
}

/// The estimate's inputs, as published with a tick.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Model {
    pub at: i64,
    /// Seats neither held nor booked now.
    pub left: i64,
    /// Seats held now: each comes back with the chance `returns`.
    pub held: i64,
    /// The share of held seats that came back (a hold expired or was let
    /// go, a payment failed) rather than being booked.
    pub returns: f64,
    /// Admitted shoppers still deciding who hold nothing yet: the buyers
    /// expected among them, per age bucket.
    pub pending: Vec<f64>,
    /// How long buying takes: P(buying time in each age bucket).
    pub buy_time: Vec<f64>,
    /// P(X = n), n = 0..
    pub dist: Vec<f64>,
    /// Share of queued shoppers who stay until their turn.
    pub stay: f64,
    pub rate: f64,
    pub queue: u64,
    /// Mean time from admission to purchase (ms).
    pub buy_ms: i64,
    pub basis: Basis,
    pub sold_out: bool,
    /// P(D_m < seats that will be free) for m = 0..EXACT_UP_TO, computed
    /// once per model.
    #[serde(skip)]
    exact: OnceLock<Vec<f64>>,
    /// `shoppers_before` on a grid of places, computed once per model.
    #[serde(skip)]
    before: OnceLock<Vec<(u64, f64)>>,
}

impl PartialEq for Model {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
            && self.left == other.left
            && self.held == other.held
            && self.returns == other.returns
            && self.pending == other.pending
            && self.buy_time == other.buy_time
            && self.dist == other.dist
            && self.stay == other.stay
            && self.rate == other.rate
            && self.queue == other.queue
            && self.basis == other.basis
            && self.sold_out == other.sold_out
    }
}

/// One shopper's outlook (the contract's `outlook`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Outlook {
    /// Estimated probability (0..1) that seats are still free at admission.
    pub chance: f64,
    pub band: Band,
    pub seats_left: i64,
    /// Shoppers ahead in the queue; `null` in the pre-queue.
    pub ahead_of_you: Option<u64>,
    /// Projected sell-out time (RFC 3339), if the queue will sell it out.
    #[schema(format = DateTime)]
    pub sold_out_at: Option<String>,
    pub basis: Basis,
}

impl Outlook {
    /// Whether a shopper told this should be told `after`: a new band, a
    /// chance moved by two points or more, a sell-out projected, dropped or
    /// moved by a minute, or the seats left moved by 2 % (or to none).
    pub fn worth_telling(&self, after: &Outlook) -> bool {
        let minutes = |o: &Outlook| {
            o.sold_out_at
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp() / 60)
        };
        let seats_step = (self.seats_left.abs() / 50).max(1);
        self.band != after.band
            || (self.chance - after.chance).abs() >= 0.02
            || minutes(self) != minutes(after)
            || (self.seats_left - after.seats_left).abs() >= seats_step
            || (self.seats_left != after.seats_left && after.seats_left == 0)
    }
}

/// The share of a queue in each band.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct BandShares {
    pub likely: f64,
    pub possible: f64,
    pub unlikely: f64,
    pub sold_out: f64,
}

pub(crate) fn round_to(x: f64, scale: f64) -> f64 {
    (x * scale).round() / scale
}

impl Model {
    /// The estimate from what the sale has shown.
    pub fn new(o: &Observations) -> Self {
        let buyers = o.buyers();
        let q = o.buy_share();
        // Seats a buyer takes: the sale's buyers mixed with the prior's.
        let prior_buyers = 1.0 - PRIOR_SEATS[0];
        let mut seats: Vec<f64> = (0..=MAX_SEATS)
            .map(|n| match n {
                0 => 0.0,
                n => PRIOR_SEATS.get(n).copied().unwrap_or(0.0) / prior_buyers * PRIOR_WEIGHT,
            })
            .collect();
        for (n, count) in o.bought.iter().enumerate().skip(1) {
            seats[n.min(MAX_SEATS)] += *count as f64;
        }
        let total: f64 = seats.iter().sum();
        // Six places: the model travels as JSON with every tick, and a short
        // decimal reads back as exactly the number written.
        let mut dist: Vec<f64> = seats.iter().map(|c| round_to(c / total * q, 1e6)).collect();
        dist[0] = round_to(1.0 - q, 1e6);
        while dist.len() > 1 && dist.last() == Some(&0.0) {
            dist.pop();
        }
        let decided = o.gave_up_total + o.admitted_total;
        let stay = if decided >= GIVE_UP_AFTER {
            1.0 - o.gave_up_total as f64 / decided as f64
        } else {
            1.0 - PRIOR_GIVE_UP
        };
        let settled = buyers + o.walked;
        Self {
            at: o.at_ms,
            left: o.sellable as i64 - o.booked as i64 - o.held as i64,
            held: o.held as i64,
            returns: round_to(o.returns(), 1e4),
            pending: o.pending_buyers(q).iter().map(|b| round_to(*b, 1e3)).collect(),
            buy_time: o.buy_time().iter().map(|p| round_to(*p, 1e4)).collect(),
            dist,
            stay: round_to(stay.clamp(0.05, 1.0), 1e4),
            rate: round_to(o.rate.max(0.0), 1e3),
            queue: o.queue_length,
            buy_ms: o.buy_ms_sum.checked_div(buyers).unwrap_or(0) as i64,
            basis: if settled >= OBSERVED_AFTER {
                Basis::Observed
            } else {
                Basis::Prior
            },
            sold_out: o.sold_out,
            exact: OnceLock::new(),
            before: OnceLock::new(),
        }
    }

    /// Before any tick: the show's seats, the prior.
    pub fn prior(at_ms: i64, sellable: u64, rate: f64, queue: u64) -> Self {
        Self::new(&Observations {
            at_ms,
            sellable,
            rate,
            queue_length: queue,
            ..Observations::default()
        })
    }

    /// The chance of a shopper with `ahead` queued before them.
    pub fn chance(&self, ahead: u64) -> f64 {
        if self.sold_out {
            return 0.0;
        }
        let c = self.chance_after(self.shoppers_before(ahead));
        (c * 1000.0).round() / 1000.0
    }

    /// When the queue is projected to take the last free seat, if it will.
    pub fn sold_out_at_ms(&self) -> Option<i64> {
        let mean = self.mean();
        if self.sold_out || self.expected_free() <= 0.0 || mean <= 0.0 {
            return None;
        }
        let q = (1.0 - self.dist.first().copied().unwrap_or(0.0)).max(1e-6);
        let shoppers = self.expected_free() / mean - self.pending.iter().sum::<f64>() / q;
        if shoppers <= 0.0 {
            return Some(self.at + self.buy_ms);
        }
        if shoppers > self.queue as f64 * self.stay || self.rate <= 0.0 {
            return None;
        }
        Some(self.at + (shoppers / self.rate * 1000.0) as i64 + self.buy_ms)
    }

    fn view(&self, chance: f64, band: Band, ahead: Option<u64>) -> Outlook {
        Outlook {
            chance,
            band,
            seats_left: self.left.max(0),
            ahead_of_you: ahead,
            sold_out_at: self
                .sold_out_at_ms()
                .map(|ms| crate::clock::from_ms(ms).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            basis: self.basis,
        }
    }

    /// A queued shopper's outlook.
    pub fn queued(&self, ahead: u64) -> Outlook {
        if self.sold_out {
            return self.sold_out_view(Some(ahead));
        }
        let chance = self.chance(ahead);
        self.view(chance, Band::of(chance), Some(ahead))
    }

    /// In the pre-queue the place is a lottery's: the chance averaged over
    /// every place among `entrants`.
    pub fn pre_queued(&self, entrants: u64) -> Outlook {
        if self.sold_out {
            return self.sold_out_view(None);
        }
        let n = entrants.max(1);
        let samples = n.min(64);
        let chance = (0..samples)
            .map(|i| {
                let ahead = i * n / samples;
                self.chance_after(self.shoppers_before(ahead))
            })
            .sum::<f64>()
            / samples as f64;
        let chance = (chance * 1000.0).round() / 1000.0;
        self.view(chance, Band::of(chance), None)
    }

    /// Admitted: the seats are theirs to pick.
    pub fn admitted(&self) -> Outlook {
        self.view(1.0, Band::Likely, Some(0))
    }

    pub fn sold_out_view(&self, ahead: Option<u64>) -> Outlook {
        Outlook {
            chance: 0.0,
            band: Band::SoldOut,
            seats_left: 0,
            ahead_of_you: ahead,
            sold_out_at: None,
            basis: self.basis,
        }
    }

    /// How many of the first `queue` places have a chance of at least `p`
    /// (the chance falls with the place).
    fn places_at_least(&self, queue: u64, p: f64) -> u64 {
        let (mut lo, mut hi) = (0u64, queue);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.chance(mid) >= p {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The share of a queue of `queue` in each band.
    pub fn shares(&self, queue: u64) -> BandShares {
        if queue == 0 {
            return BandShares::default();
        }
        if self.sold_out {
            return BandShares {
                sold_out: 1.0,
                ..BandShares::default()
            };
        }
        let likely = self.places_at_least(queue, LIKELY_FROM);
        let possible = self.places_at_least(queue, UNLIKELY_BELOW) - likely;
        let q = queue as f64;
        BandShares {
            likely: likely as f64 / q,
            possible: possible as f64 / q,
            unlikely: (queue - likely - possible) as f64 / q,
            sold_out: 0.0,
        }
    }
}
