//! The chance itself: P(demand before you < seats left + held seats that
//! come back), exact by convolution near the head of the queue, the normal
//! approximation beyond.

use super::{EXACT_UP_TO, Model};

impl Model {
    pub(super) fn mean(&self) -> f64 {
        self.dist.iter().enumerate().map(|(n, p)| n as f64 * p).sum()
    }

    pub(super) fn variance(&self) -> f64 {
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
    pub(super) fn chance_after(&self, m: f64) -> f64 {
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
    pub(super) fn expected_free(&self) -> f64 {
        self.left.max(0) as f64 + self.held.max(0) as f64 * self.returns
    }
}
