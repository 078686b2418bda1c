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

/// What a room's counters say at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observations {
    pub at_ms: i64,
    /// Seats the show sells.
    pub sellable: u64,
    pub booked: u64,
    pub held: u64,
    /// Admitted, still active and holding nothing, by age bucket
    /// (`AGE_BOUNDS_MS`): those who hold seats are in `held` already.
    pub pending_by_age: Vec<u64>,
    /// Seats admitted shoppers have held, in total (a seat held twice
    /// counts twice).
    pub held_seats_total: u64,
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

    /// The share of held seats that came back rather than being booked:
    /// seats held in total, less those booked by buyers and those still held.
    fn returns(&self) -> f64 {
        let booked: u64 = self.bought.iter().enumerate().map(|(n, c)| n as u64 * c).sum();
        let back = self.held_seats_total.saturating_sub(booked + self.held) as f64;
        (back + PRIOR_RETURNS * PRIOR_RETURNS_WEIGHT) / (back + booked as f64 + PRIOR_RETURNS_WEIGHT)
    }

    /// How long buying takes: the sale's buying times mixed with the
    /// prior's, as a distribution over the age buckets.
    fn buy_time(&self) -> [f64; AGE_BUCKETS] {
        let mut mass = [0.0; AGE_BUCKETS];
        for (b, m) in mass.iter_mut().enumerate() {
            *m = PRIOR_BUY_TIMES[b] * PRIOR_WEIGHT + self.buy_times.get(b).copied().unwrap_or(0) as f64;
        }
        let total: f64 = mass.iter().sum();
        mass.map(|m| m / total)
    }

    /// P(a buyer is still deciding at the middle of each age bucket).
    fn still_deciding(&self) -> [f64; AGE_BUCKETS] {
        let mass = self.buy_time();
        let total = 1.0;
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

    /// Pending admissions as expected buyers per age bucket: each buys
    /// with its age's chance.
    fn pending_buyers(&self, q: f64) -> Vec<f64> {
        let deciding = self.still_deciding();
        let mut out = vec![0.0; AGE_BUCKETS];
        for (b, n) in self.pending_by_age.iter().enumerate() {
            let b = b.min(AGE_BUCKETS - 1);
            let s = deciding[b];
            out[b] += *n as f64 * q * s / (q * s + 1.0 - q).max(1e-12);
        }
        out
    }
}

/// The middle of an age bucket (ms); the last one's start and a half.
fn bucket_middle(b: usize) -> f64 {
    let lo = if b == 0 { 0 } else { AGE_BOUNDS_MS[b - 1] };
    match AGE_BOUNDS_MS.get(b) {
        Some(hi) => (lo + hi) as f64 / 2.0,
        None => lo as f64 * 1.5,
    }
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

    /// P(k of the held seats come back), for the k where it is not
    /// negligible: (k, probability).
    fn returned(&self) -> Vec<(usize, f64)> {
        let (h, r) = (self.held.max(0) as usize, self.returns.clamp(0.0, 1.0));
        if h == 0 || r <= 0.0 {
            return vec![(0, 1.0)];
        }
        if r >= 1.0 {
            return vec![(h, 1.0)];
        }
        let ln = |x: f64| libm::lgamma(x + 1.0);
        (0..=h)
            .map(|k| {
                let (k_, h_) = (k as f64, h as f64);
                let p = (ln(h_) - ln(k_) - ln(h_ - k_) + k_ * r.ln() + (h_ - k_) * (1.0 - r).ln()).exp();
                (k, p)
            })
            .filter(|(_, p)| *p > 1e-9)
            .collect()
    }

    /// P(X₁ + … + Xₘ < left + returned) for m = 0..=EXACT_UP_TO, by
    /// convolution over the sums (dropped once past any seat count that
    /// could be free: they are all "no seat").
    fn exact(&self) -> &[f64] {
        self.exact.get_or_init(|| {
            let returned = self.returned();
            let left = self.left.max(0) as usize;
            let most = left + returned.last().map_or(0, |(k, _)| *k);
            let width = most.min(EXACT_UP_TO * (self.dist.len().max(1) - 1) + 1);
            let mut out = Vec::with_capacity(EXACT_UP_TO + 1);
            let mut sums = vec![0.0; width.max(1)];
            sums[0] = 1.0;
            // P(D < left + k) from the running sums' prefix totals.
            let chance = |sums: &[f64]| {
                let mut below = Vec::with_capacity(sums.len() + 1);
                let mut acc = 0.0;
                below.push(0.0);
                for m in sums {
                    acc += m;
                    below.push(acc);
                }
                let total = acc;
                returned
                    .iter()
                    .map(|(k, p)| {
                        let seats = left + k;
                        let c = if seats >= sums.len() { total } else { below[seats] };
                        p * c
                    })
                    .sum::<f64>()
                    .clamp(0.0, 1.0)
            };
            out.push(if most == 0 { 0.0 } else { chance(&sums) });
            for _ in 0..EXACT_UP_TO {
                let mut next = vec![0.0; sums.len()];
                for (s, mass) in sums.iter().enumerate().filter(|(_, m)| **m > 0.0) {
                    for (n, p) in self.dist.iter().enumerate() {
                        if s + n < next.len() {
                            next[s + n] += mass * p;
                        }
                    }
                }
                sums = next;
                out.push(if most == 0 { 0.0 } else { chance(&sums) });
            }
            out
        })
    }

    /// The chance that seats are free when `m` shoppers (fractional: an
    /// expected count) have taken theirs first.
    fn chance_after(&self, m: f64) -> f64 {
        if self.left <= 0 && self.held <= 0 {
            return 0.0;
        }
        if m <= EXACT_UP_TO as f64 {
            let table = self.exact();
            let lo = m.floor() as usize;
            let hi = (lo + 1).min(EXACT_UP_TO);
            let frac = m - lo as f64;
            return table[lo] * (1.0 - frac) + table[hi] * frac;
        }
        // D − returned < left, with both sides' spread.
        let r = self.returns.clamp(0.0, 1.0);
        let h = self.held.max(0) as f64;
        let mean = m * self.mean() - h * r;
        let var = m * self.variance() + h * r * (1.0 - r);
        if var <= 0.0 {
            return if mean < self.left as f64 { 1.0 } else { 0.0 };
        }
        // Continuity correction: D < seats ⇔ D ≤ seats − 1.
        let z = (self.left as f64 - 0.5 - mean) / var.sqrt();
        0.5 * libm::erfc(-z / std::f64::consts::SQRT_2)
    }

    /// Seats expected to be free for the queue: those left and the held
    /// ones expected back.
    fn expected_free(&self) -> f64 {
        self.left.max(0) as f64 + self.held.max(0) as f64 * self.returns
    }

    /// P(buying takes less than `x` ms): buying times spread evenly
    /// within their bucket (the last bucket up to twice its start).
    fn buy_cdf(&self, x: f64) -> f64 {
        let mut below = 0.0;
        for (b, p) in self.buy_time.iter().enumerate() {
            let lo = if b == 0 { 0.0 } else { AGE_BOUNDS_MS[b - 1] as f64 };
            let hi = AGE_BOUNDS_MS.get(b).map_or(lo * 2.0, |h| *h as f64);
            if x >= hi {
                below += p;
            } else {
                if x > lo {
                    below += p * (x - lo) / (hi - lo);
                }
                break;
            }
        }
        below.clamp(0.0, 1.0)
    }

    /// P(a buyer who started `head_start` ms before you is done before you
    /// are): P(T < head_start + T') over two buying times, given theirs
    /// outlasts `age` (they are still deciding at that age). Your time is
    /// taken at four points of each bucket.
    fn done_first(&self, age: f64, head_start: f64) -> f64 {
        let gone = self.buy_cdf(age);
        if gone >= 1.0 - 1e-9 {
            return 1.0;
        }
        let mut won = 0.0;
        for (j, pj) in self.buy_time.iter().enumerate().filter(|(_, p)| **p > 0.0) {
            let lo = if j == 0 { 0.0 } else { AGE_BOUNDS_MS[j - 1] as f64 };
            let hi = AGE_BOUNDS_MS.get(j).map_or(lo * 2.0, |h| *h as f64);
            let mine: f64 = (0..4)
                .map(|i| lo + (hi - lo) * (i as f64 + 0.5) / 4.0)
                .map(|t| ((self.buy_cdf(head_start + t) - gone) / (1.0 - gone)).max(0.0))
                .sum::<f64>()
                / 4.0;
            won += pj * mine;
        }
        won.clamp(0.0, 1.0)
    }

    /// Ms until a shopper with `ahead` before them is admitted.
    fn wait_ms(&self, ahead: f64) -> f64 {
        if self.rate > 0.0 {
            ahead / self.rate * 1000.0
        } else {
            f64::INFINITY
        }
    }

    /// The places the shoppers-before-you curve is computed at: every one
    /// near the head, then a tenth further each step, past the queue.
    fn grid(&self) -> Vec<u64> {
        let end = (self.queue + 64).max(64);
        let mut points: Vec<u64> = (0..=32).collect();
        let mut at = 32.0f64;
        while (at as u64) < end {
            at = (at * 1.1).ceil();
            points.push(at as u64);
        }
        points
    }

    /// Shoppers ahead in the queue, each weighed by the chance they are
    /// done buying before you are (those admitted just before you race
    /// you): the sum over the j-th before you of P(done first, having
    /// started j / rate earlier), by the trapezoid rule between the grid's
    /// places (the chance grows smoothly with j).
    fn ahead_curve(&self, grid: &[u64]) -> Vec<f64> {
        let race = |j: u64| {
            if self.rate > 0.0 && j > 0 {
                self.done_first(0.0, self.wait_ms(j as f64))
            } else {
                1.0
            }
        };
        let mut out = Vec::with_capacity(grid.len());
        let (mut sum, mut last, mut last_r) = (0.0, 0u64, 0.0);
        for &g in grid {
            let r = race(g);
            if g > 0 {
                if g == last + 1 {
                    sum += r;
                } else {
                    sum += (g - last) as f64 * (r + last_r) / 2.0;
                }
            }
            out.push(sum);
            (last, last_r) = (g, r);
        }
        out
    }

    /// Shoppers who come before one with `ahead` before them, as shoppers
    /// of the sale's kind: the pending ones done first and those ahead done
    /// first (thinned by those who give up). Computed once per model on a
    /// grid of places and read between them, so a node answers each of its
    /// sockets with a lookup.
    fn shoppers_before(&self, ahead: u64) -> f64 {
        let curve = self.before.get_or_init(|| {
            let grid = self.grid();
            let ahead_part = self.ahead_curve(&grid);
            grid.iter()
                .zip(ahead_part)
                .map(|(g, a)| (*g, self.pending_shoppers(*g) + a * self.stay))
                .collect()
        });
        let i = curve.partition_point(|(g, _)| *g < ahead);
        match (curve.get(i), i.checked_sub(1).and_then(|j| curve.get(j))) {
            (Some((g, m)), _) if *g == ahead => *m,
            (Some((g1, m1)), Some((g0, m0))) => m0 + (m1 - m0) * (ahead - g0) as f64 / (g1 - g0) as f64,
            // Past the grid: every further shopper is done first.
            _ => curve
                .last()
                .map_or(0.0, |(g, m)| m + (ahead.saturating_sub(*g)) as f64 * self.stay),
        }
    }

    /// Admitted shoppers still deciding, as shoppers of the sale's kind
    /// that come before one with `ahead` before them: each expected buyer
    /// weighed by the chance they are done first.
    fn pending_shoppers(&self, ahead: u64) -> f64 {
        let q = (1.0 - self.dist.first().copied().unwrap_or(0.0)).max(1e-6);
        let wait = self.wait_ms(ahead as f64);
        let buyers: f64 = self
            .pending
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0.0)
            .map(|(b, n)| {
                let age = bucket_middle(b);
                let first = if wait.is_finite() {
                    self.done_first(age, age + wait)
                } else {
                    1.0
                };
                n * first
            })
            .sum();
        buyers / q
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every pending admission's expected buyers, as shoppers of the sale's kind.
    fn pending_all(m: &Model) -> f64 {
        m.pending.iter().sum::<f64>() / (1.0 - m.dist[0])
    }

    fn sale(sellable: u64, booked: u64, bought: &[u64], walked: u64) -> Observations {
        Observations {
            at_ms: 1_800_000_000_000,
            sellable,
            booked,
            bought: bought.to_vec(),
            walked,
            // Paused: shoppers buy in queue order, nobody races (the race
            // has its own test).
            rate: 0.0,
            queue_length: 1_000,
            ..Observations::default()
        }
    }

    #[test]
    fn before_any_data_the_prior_is_used_and_said() {
        let m = Model::prior(0, 100, 0.0, 500);
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
        assert!((pending_all(&m) - 100.0).abs() < 2.0, "{}", pending_all(&m));
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
        assert!(
            pending_all(&m) < 50.0,
            "the 70 slow ones are mostly walkers: {}",
            pending_all(&m)
        );
        let q = 1.0 - m.dist[0];
        assert!((0.8..0.95).contains(&q), "about 85 % buy: {q}");
        // The prior's slow buyers would have counted them all.
        let mut slow = o.clone();
        slow.buy_times = vec![];
        assert!(pending_all(&Model::new(&slow)) > 90.0);
    }

    #[test]
    fn shoppers_admitted_just_before_you_race_you_for_the_seats() {
        // Everyone buys one seat in about 1.5 s; 10 admitted a second.
        let mut o = sale(100, 0, &[0, 1_000], 0);
        o.buy_times = vec![0; AGE_BUCKETS];
        o.buy_times[age_bucket(1_500)] = 1_000;
        o.rate = 10.0;
        let m = Model::new(&o);
        // The one right before you started 100 ms earlier: about even.
        let stay = m.stay;
        let next = m.shoppers_before(1) / stay;
        assert!((0.4..0.8).contains(&next), "{next}");
        // Far enough back, each one ahead is done first.
        let far = (m.shoppers_before(2_000) - m.shoppers_before(1_980)) / stay / 20.0;
        assert!(far > 0.98, "{far}");
        assert!(m.shoppers_before(2_000) < 2_000.0 * stay);
        // Paused: nobody races, everyone ahead comes first.
        o.rate = 0.0;
        let paused = Model::new(&o);
        assert!((paused.shoppers_before(5) - 5.0 * stay).abs() < 1e-9);
        assert!((paused.shoppers_before(5_000) - 5_000.0 * stay).abs() < 1e-6);
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
        // 100 buyers of one seat; 10 left, 30 held.
        let mut o = sale(140, 100, &[0, 100], 0);
        o.held = 30;
        o.held_seats_total = 130;
        let kept = Model::new(&o);
        assert_eq!((kept.left, kept.held), (10, 30));
        assert!(kept.returns < 0.05, "every hold so far was booked: {}", kept.returns);
        // The same, but half of all held seats so far came back.
        o.held_seats_total = 230;
        let back = Model::new(&o);
        assert!((0.35..0.5).contains(&back.returns), "{}", back.returns);
        assert!(
            back.chance(20) > kept.chance(20) + 0.5,
            "{} vs {}",
            back.chance(20),
            kept.chance(20)
        );
        assert!(kept.chance(3) > 0.9, "seats left before the queue: {}", kept.chance(3));
        // With nothing left and nothing held, nothing can come back.
        o.booked = 140;
        o.held = 0;
        assert_eq!(Model::new(&o).chance(0), 0.0);
    }

    #[test]
    fn pending_shoppers_come_first() {
        let mut o = sale(10, 0, &[0, 100], 0);
        let none = Model::new(&o);
        o.pending_by_age = vec![5];
        let five = Model::new(&o);
        assert!((pending_all(&five) - 5.0).abs() < 0.01, "{}", pending_all(&five));
        assert!(five.chance(3) < none.chance(3) - 0.2);
        assert!(five.chance(0) > 0.9, "{}", five.chance(0));
    }

    #[test]
    fn exact_and_normal_agree_where_they_meet() {
        let m = Model::new(&sale(400, 0, &[0, 300, 500, 100], 300));
        let at = EXACT_UP_TO as f64;
        let exact = m.chance_after(at);
        let (mean, var) = (at * m.mean(), at * m.variance());
        let z = (m.left as f64 - 0.5 - mean) / var.sqrt();
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
        o.rate = 10.0;
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
            free in 0u64..2_000, held in 0u64..300, pending in 0u64..50,
            ones in 0u64..500, twos in 0u64..500, fours in 0u64..200, walked in 0u64..500,
            a in 0u64..3_000, b in 0u64..3_000,
        ) {
            let mut o = sale(free + held, 0, &[0, ones, twos, 0, fours], walked);
            o.held = held;
            o.held_seats_total = held * 2 + ones + twos * 2 + fours * 4;
            o.pending_by_age = vec![pending];
            let m = Model::new(&o);
            let (near, far) = (a.min(b), a.max(b));
            let (cn, cf) = (m.chance(near), m.chance(far));
            prop_assert!((0.0..=1.0).contains(&cn));
            prop_assert!(cf <= cn + 1e-9, "{} at {} > {} at {}", cf, far, cn, near);
        }
    }
}
