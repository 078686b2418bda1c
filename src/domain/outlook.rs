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

/// What a room's counters say at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observations {
    pub at_ms: i64,
    /// Seats the show sells.
    pub sellable: u64,
    pub booked: u64,
    pub held: u64,
    /// Admitted and still active, by age bucket (`AGE_BOUNDS_MS`).
    pub pending_by_age: Vec<u64>,
    /// `bought[n]`: admissions settled by buying n seats (n ≥ 1).
    pub bought: Vec<u64>,
    /// Buyers' times from admission to purchase, by age bucket.
    pub buy_times: Vec<u64>,
    /// Admissions that ended without a purchase (lapsed or left).
    pub walked: u64,
    /// Sum of admission-to-purchase times (ms).
    pub buy_ms_sum: u64,
    /// Queue: given up (left or abandoned) and admitted, in total.
    pub admitted_total: u64,
    pub gave_up_total: u64,
    pub queue_length: u64,
    /// Admissions per second (observed, else configured; 0: paused).
    pub rate: f64,
    pub sold_out: bool,
}

impl Observations {
    fn buyers(&self) -> u64 {
        self.bought.iter().sum()
    }

    /// P(a buyer is still deciding at the start of each age bucket's
    /// middle): the sale's buying times mixed with the prior's.
    fn still_deciding(&self) -> [f64; AGE_BUCKETS] {
        let mut mass = [0.0; AGE_BUCKETS];
        for (b, m) in mass.iter_mut().enumerate() {
            *m = PRIOR_BUY_TIMES[b] * PRIOR_WEIGHT + self.buy_times.get(b).copied().unwrap_or(0) as f64;
        }
        let total: f64 = mass.iter().sum();
        let mut out = [0.0; AGE_BUCKETS];
        let mut later = total;
        for b in 0..AGE_BUCKETS {
            // Half of the bucket's own buyers are slower than its middle.
            later -= mass[b];
            out[b] = ((later + mass[b] / 2.0) / total).clamp(0.0, 1.0);
        }
        out
    }

    /// The share of admitted shoppers who buy, from settled admissions and
    /// from pending ones weighed by how likely a buyer still is to be
    /// deciding at their age (expectation-maximisation, a few rounds).
    fn buy_share(&self) -> f64 {
        let deciding = self.still_deciding();
        let prior_q = 1.0 - PRIOR_SEATS[0];
        let (buyers, walked) = (self.buyers() as f64, self.walked as f64);
        let mut q = prior_q;
        for _ in 0..30 {
            let mut pending_buyers = 0.0;
            let mut pending_all = 0.0;
            for (b, n) in self.pending_by_age.iter().enumerate() {
                let s = deciding[b.min(AGE_BUCKETS - 1)];
                let buys = q * s / (q * s + 1.0 - q).max(1e-12);
                pending_buyers += *n as f64 * buys;
                pending_all += *n as f64;
            }
            let total = buyers + walked + pending_all + PRIOR_WEIGHT;
            q = ((buyers + pending_buyers + prior_q * PRIOR_WEIGHT) / total).clamp(0.01, 0.999);
        }
        q
    }

    /// Pending admissions as shoppers of the sale's kind: each buys with
    /// its age's chance, a shopper of the sale's kind with `q`.
    fn pending_shoppers(&self, q: f64) -> f64 {
        let deciding = self.still_deciding();
        let buyers: f64 = self
            .pending_by_age
            .iter()
            .enumerate()
            .map(|(b, n)| {
                let s = deciding[b.min(AGE_BUCKETS - 1)];
                *n as f64 * q * s / (q * s + 1.0 - q).max(1e-12)
            })
            .sum();
        buyers / q
    }
}

/// The estimate's inputs, as published with a tick.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Model {
    pub at: i64,
    /// Seats not booked (held ones may come back).
    pub free: i64,
    /// Seats neither held nor booked now.
    pub left: i64,
    /// Admitted shoppers still deciding, as shoppers of the sale's kind
    /// (each as likely to buy as one from the queue).
    pub pending: f64,
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
    /// P(D_m < free) for m = 0..EXACT_UP_TO, computed once per model.
    #[serde(skip)]
    exact: OnceLock<Vec<f64>>,
}

impl PartialEq for Model {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
            && self.free == other.free
            && self.left == other.left
            && self.pending == other.pending
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

fn round_to(x: f64, scale: f64) -> f64 {
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
            free: o.sellable as i64 - o.booked as i64,
            left: o.sellable as i64 - o.booked as i64 - o.held as i64,
            pending: round_to(o.pending_shoppers(q), 1e3),
            dist,
            stay: round_to(stay.clamp(0.05, 1.0), 1e4),
            rate: round_to(o.rate.max(0.0), 1e3),
            queue: o.queue_length,
            buy_ms: if buyers > 0 { (o.buy_ms_sum / buyers) as i64 } else { 0 },
            basis: if settled >= OBSERVED_AFTER {
                Basis::Observed
            } else {
                Basis::Prior
            },
            sold_out: o.sold_out,
            exact: OnceLock::new(),
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

    fn mean(&self) -> f64 {
        self.dist.iter().enumerate().map(|(n, p)| n as f64 * p).sum()
    }

    fn variance(&self) -> f64 {
        let mean = self.mean();
        self.dist
            .iter()
            .enumerate()
            .map(|(n, p)| (n as f64 - mean).powi(2) * p)
            .sum()
    }

    /// P(X₁ + … + Xₘ < free) for m = 0..=EXACT_UP_TO, by convolution; sums
    /// at or past `free` are dropped as they come (they are all "no seat").
    fn exact(&self) -> &[f64] {
        self.exact.get_or_init(|| {
            let free = self.free.max(0) as usize;
            let mut out = Vec::with_capacity(EXACT_UP_TO + 1);
            if free == 0 {
                out.resize(EXACT_UP_TO + 1, 0.0);
                return out;
            }
            let width = free.min(EXACT_UP_TO * (self.dist.len().max(1) - 1) + 1);
            let mut sums = vec![0.0; width];
            sums[0] = 1.0;
            out.push(1.0);
            for _ in 0..EXACT_UP_TO {
                let mut next = vec![0.0; width];
                for (s, mass) in sums.iter().enumerate().filter(|(_, m)| **m > 0.0) {
                    for (n, p) in self.dist.iter().enumerate() {
                        if s + n < width {
                            next[s + n] += mass * p;
                        }
                    }
                }
                sums = next;
                out.push(sums.iter().sum::<f64>().clamp(0.0, 1.0));
            }
            out
        })
    }

    /// The chance that seats are free when `m` shoppers (fractional: an
    /// expected count) have taken theirs first.
    fn chance_after(&self, m: f64) -> f64 {
        if self.free <= 0 {
            return 0.0;
        }
        if m <= EXACT_UP_TO as f64 {
            let table = self.exact();
            let lo = m.floor() as usize;
            let hi = (lo + 1).min(EXACT_UP_TO);
            let frac = m - lo as f64;
            return table[lo] * (1.0 - frac) + table[hi] * frac;
        }
        let (mean, var) = (m * self.mean(), m * self.variance());
        if var <= 0.0 {
            return if mean < self.free as f64 { 1.0 } else { 0.0 };
        }
        // Continuity correction: D < free ⇔ D ≤ free − 1.
        let z = (self.free as f64 - 0.5 - mean) / var.sqrt();
        0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
    }

    /// The chance of a shopper with `ahead` queued before them.
    pub fn chance(&self, ahead: u64) -> f64 {
        if self.sold_out {
            return 0.0;
        }
        let c = self.chance_after(self.pending + ahead as f64 * self.stay);
        (c * 1000.0).round() / 1000.0
    }

    /// When the queue is projected to take the last free seat, if it will.
    pub fn sold_out_at_ms(&self) -> Option<i64> {
        let mean = self.mean();
        if self.sold_out || self.free <= 0 || mean <= 0.0 {
            return None;
        }
        let shoppers = self.free as f64 / mean - self.pending;
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
            .map(|i| self.chance_after(self.pending + (i * n / samples) as f64 * self.stay))
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sale(sellable: u64, booked: u64, bought: &[u64], walked: u64) -> Observations {
        Observations {
            at_ms: 1_800_000_000_000,
            sellable,
            booked,
            bought: bought.to_vec(),
            walked,
            rate: 10.0,
            queue_length: 1_000,
            ..Observations::default()
        }
    }

    #[test]
    fn before_any_data_the_prior_is_used_and_said() {
        let m = Model::prior(0, 100, 10.0, 500);
        assert_eq!(m.basis, Basis::Prior);
        let mean: f64 = PRIOR_SEATS.iter().enumerate().map(|(n, p)| n as f64 * p).sum();
        assert!((m.mean() - mean).abs() < 1e-9);
        // 100 seats at ~1.9 a shopper, 10 % give up: ~58 places are safe.
        assert!(m.chance(0) > 0.999);
        assert!(m.chance(20) > 0.99, "{}", m.chance(20));
        assert!(m.chance(120) < 0.01, "{}", m.chance(120));
    }

    #[test]
    fn the_sale_own_buyers_replace_the_prior() {
        // Everyone buys exactly one seat: 100 seats last 100 shoppers.
        let m = Model::new(&sale(100, 0, &[0, 2_000], 0));
        assert_eq!(m.basis, Basis::Observed);
        assert!(m.dist[1] > 0.98, "{:?}", m.dist);
        let stay = m.stay;
        let safe = (95.0 / stay) as u64;
        let gone = (106.0 / stay) as u64;
        assert!(m.chance(safe) > 0.9, "{}", m.chance(safe));
        assert!(m.chance(gone) < 0.1, "{}", m.chance(gone));
    }

    #[test]
    fn walkers_and_lapsed_admissions_make_seats_last_longer() {
        let buyers = Model::new(&sale(100, 0, &[0, 0, 500], 0));
        let half_walk = Model::new(&sale(100, 0, &[0, 0, 500], 500));
        assert!(half_walk.chance(60) > buyers.chance(60) + 0.5);
        // 100 admitted this second, 500 admitted ten minutes ago who never
        // bought: the old ones count as walkers, the young ones as buyers
        // as likely as any.
        let mut censored = sale(100, 0, &[0, 0, 500], 0);
        censored.pending_by_age = vec![0; AGE_BUCKETS];
        censored.pending_by_age[0] = 100;
        censored.pending_by_age[AGE_BUCKETS - 1] = 500;
        let m = Model::new(&censored);
        assert!((m.pending - 100.0).abs() < 2.0, "{}", m.pending);
        assert!(
            (m.dist[0] - half_walk.dist[0]).abs() < 0.01,
            "{} vs {}",
            m.dist[0],
            half_walk.dist[0]
        );
    }

    #[test]
    fn a_sale_whose_buyers_are_quick_discounts_its_slow_pending_admissions() {
        // Buyers buy within two seconds; 15 % walk away. Of 100 admitted in
        // the last 16 s and not settled, those older than a few seconds are
        // walkers, however few lapses the sale has seen yet.
        let mut o = sale(1_000, 0, &[0, 0, 0, 850], 20);
        o.buy_times = vec![0; AGE_BUCKETS];
        o.buy_times[age_bucket(1_500)] = 850;
        o.pending_by_age = vec![0; AGE_BUCKETS];
        o.pending_by_age[age_bucket(500)] = 30;
        o.pending_by_age[age_bucket(10_000)] = 70;
        let m = Model::new(&o);
        assert!(m.pending < 50.0, "the 70 slow ones are mostly walkers: {}", m.pending);
        let q = 1.0 - m.dist[0];
        assert!((0.8..0.95).contains(&q), "about 85 % buy: {q}");
        // The prior's slow buyers would have counted them all.
        let mut slow = o.clone();
        slow.buy_times = vec![];
        assert!(Model::new(&slow).pending > 90.0);
    }

    #[test]
    fn ages_fall_in_their_buckets() {
        assert_eq!(age_bucket(0), 0);
        assert_eq!(age_bucket(999), 0);
        assert_eq!(age_bucket(1_000), 1);
        assert_eq!(age_bucket(600_000), AGE_BUCKETS - 1);
    }

    #[test]
    fn booked_seats_are_gone_and_held_ones_may_come_back() {
        let mut o = sale(100, 60, &[0, 100], 0);
        o.held = 30;
        let m = Model::new(&o);
        assert_eq!((m.free, m.left), (40, 10));
        assert!(
            m.chance(30) > 0.9,
            "held seats still count as a chance: {}",
            m.chance(30)
        );
        o.booked = 100;
        o.held = 0;
        assert_eq!(Model::new(&o).chance(0), 0.0);
    }

    #[test]
    fn pending_shoppers_come_first() {
        let mut o = sale(10, 0, &[0, 100], 0);
        let none = Model::new(&o);
        o.pending_by_age = vec![5];
        let five = Model::new(&o);
        assert!((five.pending - 5.0).abs() < 0.01, "{}", five.pending);
        assert!(five.chance(3) < none.chance(3) - 0.2);
        assert!(five.chance(0) > 0.9, "{}", five.chance(0));
    }

    #[test]
    fn exact_and_normal_agree_where_they_meet() {
        let m = Model::new(&sale(400, 0, &[0, 300, 500, 100], 300));
        let at = EXACT_UP_TO as f64;
        let exact = m.chance_after(at);
        let (mean, var) = (at * m.mean(), at * m.variance());
        let z = (m.free as f64 - 0.5 - mean) / var.sqrt();
        let normal = 0.5 * libm::erfc(-z / std::f64::consts::SQRT_2);
        assert!((exact - normal).abs() < 0.02, "exact {exact} normal {normal}");
    }

    #[test]
    fn bands_follow_the_contract() {
        assert_eq!(Band::of(0.7), Band::Likely);
        assert_eq!(Band::of(0.69), Band::Possible);
        assert_eq!(Band::of(0.2), Band::Possible);
        assert_eq!(Band::of(0.19), Band::Unlikely);
        let mut o = sale(10, 10, &[0, 10], 0);
        o.sold_out = true;
        let m = Model::new(&o);
        let v = m.queued(3);
        assert_eq!(
            (v.band, v.chance, v.seats_left, v.sold_out_at),
            (Band::SoldOut, 0.0, 0, None)
        );
        let a = m.admitted();
        assert_eq!((a.band, a.chance), (Band::Likely, 1.0));
    }

    #[test]
    fn the_sell_out_is_projected_from_the_rate() {
        // 200 seats, 2 a shopper, all stay: 100 shoppers at 10/s = 10 s.
        let mut o = sale(200, 0, &[0, 0, 1_000], 0);
        o.admitted_total = 1_000;
        let m = Model::new(&o);
        let at = m.sold_out_at_ms().unwrap() - o.at_ms;
        assert!((9_000..=11_000).contains(&at), "{at}");
        o.queue_length = 50;
        assert_eq!(
            Model::new(&o).sold_out_at_ms(),
            None,
            "the queue is too short to sell out"
        );
        o.queue_length = 1_000;
        o.rate = 0.0;
        assert_eq!(Model::new(&o).sold_out_at_ms(), None, "paused");
    }

    #[test]
    fn shares_split_the_queue_at_the_band_edges() {
        let m = Model::new(&sale(100, 0, &[0, 1_000], 0));
        let s = m.shares(300);
        assert!((s.likely + s.possible + s.unlikely - 1.0).abs() < 1e-9);
        let likely = (s.likely * 300.0).round() as u64;
        assert!(m.chance(likely - 1) >= LIKELY_FROM && m.chance(likely) < LIKELY_FROM);
        assert!(s.unlikely > 0.5);
    }

    #[test]
    fn the_pre_queue_averages_over_the_lottery() {
        let m = Model::new(&sale(100, 0, &[0, 1_000], 0));
        let all = m.pre_queued(200).chance;
        assert!(
            (0.4..0.6).contains(&all),
            "about half of 200 get one of 100 seats: {all}"
        );
        assert_eq!(m.pre_queued(10).ahead_of_you, None);
    }

    #[test]
    fn a_shopper_is_told_what_changes_enough_to_matter() {
        let m = Model::new(&sale(1_000, 0, &[0, 1_000], 0));
        let base = m.queued(10);
        let same = Outlook {
            chance: base.chance - 0.01,
            ..base.clone()
        };
        assert!(!base.worth_telling(&same), "a point of chance is noise");
        for changed in [
            Outlook {
                chance: base.chance - 0.03,
                ..base.clone()
            },
            Outlook {
                band: Band::Possible,
                ..base.clone()
            },
            Outlook {
                seats_left: base.seats_left - 20,
                ..base.clone()
            },
            Outlook {
                sold_out_at: Some("2026-12-08T20:41:00Z".into()),
                ..base.clone()
            },
        ] {
            assert!(base.worth_telling(&changed), "{changed:?}");
        }
        let projected = Outlook {
            sold_out_at: Some("2026-12-08T20:41:00Z".into()),
            ..base.clone()
        };
        let seconds_later = Outlook {
            sold_out_at: Some("2026-12-08T20:41:20Z".into()),
            ..base.clone()
        };
        assert!(!projected.worth_telling(&seconds_later));
        assert!(projected.worth_telling(&base), "the projection dropped");
    }

    #[test]
    fn the_model_travels_as_json() {
        let m = Model::new(&sale(100, 5, &[0, 30, 20], 7));
        let back: Model = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.chance(40), m.chance(40));
    }

    proptest! {
        #[test]
        fn the_chance_never_rises_further_back(
            free in 0u64..2_000, pending in 0u64..50,
            ones in 0u64..500, twos in 0u64..500, fours in 0u64..200, walked in 0u64..500,
            a in 0u64..3_000, b in 0u64..3_000,
        ) {
            let mut o = sale(free, 0, &[0, ones, twos, 0, fours], walked);
            o.pending_by_age = vec![pending];
            let m = Model::new(&o);
            let (near, far) = (a.min(b), a.max(b));
            let (cn, cf) = (m.chance(near), m.chance(far));
            prop_assert!((0.0..=1.0).contains(&cn));
            prop_assert!(cf <= cn + 1e-9, "{} at {} > {} at {}", cf, far, cn, near);
        }
    }
}
