//! Who comes before you: shoppers admitted earlier race you for the seats
//! (buying takes longer than admission's gaps), each counting with the
//! chance they are done buying first. Computed once per model on a grid of
//! places, read between them.

use super::{Model, bucket_middle, bucket_span};

impl Model {
    /// P(buying takes less than `x` ms): buying times spread evenly
    /// within their bucket (the last bucket up to twice its start).
    fn buy_cdf(&self, x: f64) -> f64 {
        let mut below = 0.0;
        for (b, p) in self.buy_time.iter().enumerate() {
            let (lo, hi) = bucket_span(b);
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
            let (lo, hi) = bucket_span(j);
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
    pub(super) fn shoppers_before(&self, ahead: u64) -> f64 {
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
}
