//! What a sale has shown, and what the estimate learns from it: the share
//! of admitted shoppers who buy (admissions are censored: a pending one
//! buys with its age's chance), the seats buyers take, how long buying
//! takes, and the share of held seats that come back.

use super::{AGE_BUCKETS, PRIOR_BUY_TIMES, PRIOR_RETURNS, PRIOR_RETURNS_WEIGHT, PRIOR_SEATS, PRIOR_WEIGHT};

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
    pub(super) fn buyers(&self) -> u64 {
        self.bought.iter().sum()
    }

    /// The share of held seats that came back rather than being booked:
    /// seats held in total, less those booked by buyers and those still held.
    pub(super) fn returns(&self) -> f64 {
        let booked: u64 = self.bought.iter().enumerate().map(|(n, c)| n as u64 * c).sum();
        let back = self.held_seats_total.saturating_sub(booked + self.held) as f64;
        (back + PRIOR_RETURNS * PRIOR_RETURNS_WEIGHT) / (back + booked as f64 + PRIOR_RETURNS_WEIGHT)
    }

    /// How long buying takes: the sale's buying times mixed with the
    /// prior's, as a distribution over the age buckets.
    pub(super) fn buy_time(&self) -> [f64; AGE_BUCKETS] {
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
    pub(super) fn buy_share(&self) -> f64 {
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
    pub(super) fn pending_buyers(&self, q: f64) -> Vec<f64> {
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
