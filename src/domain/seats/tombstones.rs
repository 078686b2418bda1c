//! Ended hold records (tombstones): what `GET /holds/{id}`, a retried
//! request and an order on an ended hold still need to read, kept for a
//! bounded time at a bounded cost. They go in generations, as the scripts
//! keep them (`tomb_put` and `gc` in `lua/common.lua`): a generation is
//! retired once it is `retention` old and a retired one is dropped whole
//! `retention` after that, so each tombstone is kept at least `retention`
//! and about twice that at most, and dropping them is one step, not one per
//! record. The next of those steps is due at the deadline `GC`.

use std::collections::HashMap;

use super::HoldRecord;

/// The deadline member at which the next generation step is due.
pub const GC: &str = "~gc";

#[derive(Debug, Default)]
pub(super) struct Tombstones {
    current: HashMap<String, HoldRecord>,
    /// When the current generation began (its first tombstone).
    began: Option<i64>,
    retired: HashMap<String, HoldRecord>,
    /// When the retired generation was retired.
    retired_at: Option<i64>,
}

impl Tombstones {
    pub fn get(&self, id: &str) -> Option<&HoldRecord> {
        self.current.get(id).or_else(|| self.retired.get(id))
    }

    /// Keeps an ended hold's record, shrunk to what its reads need.
    /// Answers when the generation it began retires, if it began one.
    pub fn put(&mut self, id: &str, mut rec: HoldRecord, now: i64, retention: i64) -> Option<i64> {
        rec.replaced = None;
        rec.offer = false;
        self.current.insert(id.to_owned(), rec);
        if self.began.is_some() {
            return None;
        }
        self.began = Some(now);
        Some(now + retention)
    }

    /// Retires the current generation and drops the retired one as they
    /// come due; answers when the next step is due, if any.
    pub fn collect(&mut self, now: i64, retention: i64) -> Option<i64> {
        if self.began.is_some_and(|b| now - b >= retention) {
            // The retired generation was retired before this one began.
            self.retired = std::mem::take(&mut self.current);
            self.began = None;
            self.retired_at = Some(now);
        }
        if self.retired_at.is_some_and(|r| now - r >= retention) {
            self.retired.clear();
            self.retired_at = None;
        }
        self.next_due(retention)
    }

    fn next_due(&self, retention: i64) -> Option<i64> {
        [self.began, self.retired_at]
            .into_iter()
            .flatten()
            .map(|t| t + retention)
            .min()
    }

    /// Tombstones kept.
    pub fn len(&self) -> usize {
        self.current.len() + self.retired.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::seats::HoldStatus;

    const R: i64 = 900_000;

    fn rec() -> HoldRecord {
        HoldRecord {
            user: "u".into(),
            seats: vec!["A1".into()],
            status: HoldStatus::Released,
            created_ms: 0,
            expires_ms: 300_000,
            order_id: None,
            order_created_ms: None,
            order_expires_ms: None,
            ended_ms: Some(1),
            replaced: Some("prev".into()),
            offer: true,
        }
    }

    #[test]
    fn every_tombstone_is_kept_at_least_the_retention_and_less_than_twice_it() {
        let mut t = Tombstones::default();
        assert_eq!(
            t.put("a", rec(), 0, R),
            Some(R),
            "a new generation retires one retention on"
        );
        assert_eq!(t.put("b", rec(), R - 1, R), None);
        assert_eq!(t.collect(R - 1, R), Some(R));
        assert_eq!(t.collect(R, R), Some(2 * R), "retired now, dropped a retention later");
        assert!(t.get("a").is_some() && t.get("b").is_some());
        assert_eq!(t.put("c", rec(), R + 5, R), Some(2 * R + 5));
        assert_eq!(t.collect(2 * R, R), Some(2 * R + 5));
        assert!(t.get("b").is_none(), "b ended at R - 1 and is gone at 2R: kept R + 1");
        assert_eq!(
            t.get("c").map(|r| r.replaced.is_none() && !r.offer),
            Some(true),
            "shrunk"
        );
        assert_eq!(t.collect(3 * R + 5, R), Some(4 * R + 5), "a late step retires it late");
        assert!(t.get("c").is_some());
        assert_eq!(t.collect(4 * R + 5, R), None);
        assert_eq!(t.len(), 0);
    }
}
