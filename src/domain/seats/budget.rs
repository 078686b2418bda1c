//! A user's budget of seat-changing calls (holds, releases, waiting-list
//! joins) on one show, kept with the show's seats so every node spends the
//! same budget: behind ten pods an account gets the rate once, not ten
//! times. A GCRA (generic cell rate algorithm): one number per user, the
//! "theoretical arrival time" of its next call, so the check and the
//! charge are one read and one write in the script that makes the change
//! (`charge` in `lua/common.lua` follows this step for step).

/// `rate` calls a second with a burst of twice that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// µs between calls at the sustained rate.
    pub interval_us: i64,
    /// Calls that may come at once.
    pub burst: i64,
}

impl Budget {
    /// `None` for 0 (no budget), as `RATE_LIMIT_USER_PER_SEC=0` turns the
    /// per-user limits off.
    pub fn per_sec(rate: u32) -> Option<Self> {
        (rate > 0).then(|| Self {
            interval_us: 1_000_000 / i64::from(rate),
            burst: 2 * i64::from(rate),
        })
    }

    /// Charges one call at `now_ms` against the stored arrival time `tat`
    /// (µs): the new arrival time to store (it may be dropped once it has
    /// passed), or, when the budget is spent, how long (ms) until a call
    /// would pass.
    pub fn charge(&self, tat: Option<i64>, now_ms: i64) -> Result<i64, i64> {
        let now = now_ms * 1000;
        let tat = tat.unwrap_or(0).max(now);
        let early = tat - now - (self.burst - 1) * self.interval_us;
        if early > 0 {
            return Err((early + 999) / 1000);
        }
        Ok(tat + self.interval_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_burst_of_twice_the_rate_passes_at_once_then_one_call_per_interval() {
        let b = Budget::per_sec(20).unwrap();
        let mut tat = None;
        for _ in 0..40 {
            tat = Some(b.charge(tat, 1_000).unwrap());
        }
        let wait = b.charge(tat, 1_000).unwrap_err();
        assert_eq!(wait, 50, "the next call passes one interval later");
        assert!(b.charge(tat, 1_049).is_err());
        let after = b.charge(tat, 1_050).unwrap();
        assert!(b.charge(Some(after), 1_050).is_err(), "and only one");
    }

    #[test]
    fn zero_is_no_budget() {
        assert_eq!(Budget::per_sec(0), None);
    }

    proptest! {
        /// Over any window, calls that pass never exceed the burst plus the
        /// rate times the window.
        #[test]
        fn passed_calls_stay_within_rate_and_burst(rate in 1u32..50, gaps in prop::collection::vec(0i64..200, 1..400)) {
            let b = Budget::per_sec(rate).unwrap();
            let (mut tat, mut now, mut passed) = (None, 10_000i64, 0i64);
            let start = now;
            for gap in gaps {
                now += gap;
                if let Ok(t) = b.charge(tat, now) {
                    tat = Some(t);
                    passed += 1;
                }
            }
            let allowed = b.burst + (now - start) * 1000 / b.interval_us;
            prop_assert!(passed <= allowed, "{passed} passed, {allowed} allowed");
        }
    }
}
