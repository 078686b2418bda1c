//! The waiting room's rules, without I/O: its configuration, the verifiable
//! pre-queue lottery, ETAs, and the bookkeeping that lets a node keep the
//! exact position of each of its sockets from broadcast events alone.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Highest admission rate accepted, per second.
pub const MAX_RATE: f64 = 100_000.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PreQueue {
    /// Everyone who arrived before `opensAt` is ordered by lottery at the opening.
    #[default]
    Random,
    /// Arrival order, even before `opensAt`.
    Fifo,
}

/// A show's waiting room as ops configure it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomConfig {
    pub admit_rate_per_second: f64,
    pub burst: u32,
    pub max_active: u32,
    pub admission_ttl_seconds: u32,
    pub opens_at: Option<DateTime<Utc>>,
    pub pre_queue: PreQueue,
    pub paused: bool,
    /// Proof-of-work bits a new joiner must solve (0: none).
    #[serde(default)]
    pub challenge_bits: u8,
}

/// A `PUT` body: every field but the rate may be left out (then it keeps
/// its current value, or takes its default on creation).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoomPatch {
    /// Required when the room is created; admissions per second across all nodes.
    #[schema(exclusive_minimum = 0, maximum = 100000)]
    pub admit_rate_per_second: Option<f64>,
    /// The token bucket's size (default: the rate, rounded up).
    #[schema(minimum = 1, maximum = 1000000)]
    pub burst: Option<u32>,
    /// Most shoppers admitted and not yet done at once (default 5000).
    #[schema(minimum = 1)]
    pub max_active: Option<u32>,
    /// How long an admission lasts (default 600).
    #[schema(minimum = 1, maximum = 86400)]
    pub admission_ttl_seconds: Option<u32>,
    /// When the queue opens; `null` clears it.
    #[serde(default, deserialize_with = "some_or_null")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub opens_at: Option<Option<DateTime<Utc>>>,
    pub pre_queue: Option<PreQueue>,
    pub paused: Option<bool>,
    /// Proof-of-work bits a new joiner must solve, 0 (off, the default) to 26.
    #[schema(minimum = 0, maximum = 26)]
    pub challenge_bits: Option<u8>,
}

fn some_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<DateTime<Utc>>>, D::Error> {
    Option::<DateTime<Utc>>::deserialize(d).map(Some)
}

impl RoomPatch {
    /// Applies the patch to `current` (or to the defaults when creating)
    /// and checks the result; the error names the field.
    pub fn apply(self, current: Option<&RoomConfig>) -> Result<RoomConfig, String> {
        let rate = match (self.admit_rate_per_second, current) {
            (Some(r), _) => r,
            (None, Some(c)) => c.admit_rate_per_second,
            (None, None) => return Err("admitRatePerSecond is required".into()),
        };
        if !(rate.is_finite() && rate > 0.0 && rate <= MAX_RATE) {
            return Err(format!("admitRatePerSecond must be above 0 and at most {MAX_RATE}"));
        }
        let default_burst = (rate.ceil() as u32).max(1);
        let config = RoomConfig {
            admit_rate_per_second: rate,
            burst: self.burst.or(current.map(|c| c.burst)).unwrap_or(default_burst),
            max_active: self.max_active.or(current.map(|c| c.max_active)).unwrap_or(5_000),
            admission_ttl_seconds: self
                .admission_ttl_seconds
                .or(current.map(|c| c.admission_ttl_seconds))
                .unwrap_or(600),
            opens_at: match self.opens_at {
                Some(v) => v,
                None => current.and_then(|c| c.opens_at),
            },
            pre_queue: self.pre_queue.or(current.map(|c| c.pre_queue)).unwrap_or_default(),
            paused: self.paused.or(current.map(|c| c.paused)).unwrap_or(false),
            challenge_bits: self.challenge_bits.or(current.map(|c| c.challenge_bits)).unwrap_or(0),
        };
        if config.challenge_bits > crate::domain::pow::MAX_BITS {
            return Err(format!(
                "challengeBits must be from 0 to {}",
                crate::domain::pow::MAX_BITS
            ));
        }
        if config.burst == 0 || config.burst > 1_000_000 {
            return Err("burst must be from 1 to 1000000".into());
        }
        if config.max_active == 0 {
            return Err("maxActive must be at least 1".into());
        }
        if !(1..=86_400).contains(&config.admission_ttl_seconds) {
            return Err("admissionTtlSeconds must be from 1 to 86400".into());
        }
        Ok(config)
    }
}

/// The lottery: a random seed, published as its SHA-256 before the opening
/// and revealed after; the order is ascending HMAC-SHA256(seed, userId), so
/// anyone can check it.
pub fn seed_hash(seed: &str) -> String {
    hex(&Sha256::digest(seed.as_bytes()))
}

pub fn lottery_key(seed: &str, user: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(seed.as_bytes()).expect("HMAC takes any key length");
    mac.update(user.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// Users in lottery order.
pub fn lottery_order(seed: &str, mut users: Vec<String>) -> Vec<String> {
    users.sort_by_cached_key(|u| lottery_key(seed, u));
    users
}

pub fn new_seed(rng: &mut impl rand::Rng) -> String {
    let bytes: [u8; 32] = rng.random();
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Seconds until a shopper at `position` is admitted at `rate` per second.
pub fn eta_seconds(position: u64, rate: f64) -> Option<u64> {
    (rate > 0.0).then(|| (position as f64 / rate).ceil() as u64)
}

/// What happened to the queue, in the order the room's events say.
#[derive(Debug, Clone, PartialEq)]
pub enum QueueChange {
    /// The `k` users at the head were admitted.
    Head(u64),
    /// The users with these scores left (gave up or abandoned).
    Left(Vec<f64>),
}

/// The positions of one node's sockets, kept exact from events alone: a
/// shopper's position is 1 + the number of queued shoppers with a lower
/// score, and only admissions at the head and leaves change it. Each entry
/// remembers the event sequence number its position is as of, so an event
/// already reflected in a fresh read is not applied twice.
#[derive(Debug)]
pub struct PositionBook<K: std::hash::Hash + Eq + Clone> {
    entries: HashMap<K, Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    score: f64,
    position: u64,
    seq: u64,
}

impl<K: std::hash::Hash + Eq + Clone> Default for PositionBook<K> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone> PositionBook<K> {
    /// Tracks `key` at `position` as of event `seq`.
    pub fn insert(&mut self, key: K, score: f64, position: u64, seq: u64) {
        self.entries.insert(key, Entry { score, position, seq });
    }

    pub fn remove(&mut self, key: &K) {
        self.entries.remove(key);
    }

    pub fn position(&self, key: &K) -> Option<u64> {
        self.entries.get(key).map(|e| e.position)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.entries.keys()
    }

    /// Brings one entry, read as of an earlier event, up to date with the
    /// events since (`recent`, in order): answers `false` when one of them
    /// admitted it (it leaves the book).
    pub fn catch_up(&mut self, key: &K, recent: &[(u64, QueueChange)]) -> bool {
        let Some(e) = self.entries.get_mut(key) else {
            return true;
        };
        for (seq, change) in recent {
            if e.seq >= *seq {
                continue;
            }
            e.seq = *seq;
            match change {
                QueueChange::Head(k) if e.position <= *k => {
                    self.entries.remove(key);
                    return false;
                }
                QueueChange::Left(scores) if scores.contains(&e.score) => {
                    self.entries.remove(key);
                    return false;
                }
                QueueChange::Head(k) => e.position -= k,
                QueueChange::Left(scores) => {
                    let ahead = scores.iter().filter(|s| **s < e.score).count() as u64;
                    e.position = e.position.saturating_sub(ahead).max(1);
                }
            }
        }
        true
    }

    /// Applies event `seq`; answers the keys whose position changed and the
    /// keys that leave the book: admitted (at positions 1..=k) by a tick, or
    /// whose own shopper left (their score is among those that left).
    pub fn apply(&mut self, seq: u64, change: &QueueChange) -> (Vec<K>, Vec<K>) {
        let (mut moved, mut admitted) = (Vec::new(), Vec::new());
        for (key, e) in self.entries.iter_mut() {
            if e.seq >= seq {
                continue;
            }
            e.seq = seq;
            match change {
                QueueChange::Head(k) if e.position <= *k => admitted.push(key.clone()),
                QueueChange::Head(0) => {}
                QueueChange::Head(k) => {
                    e.position -= k;
                    moved.push(key.clone());
                }
                QueueChange::Left(scores) if scores.contains(&e.score) => admitted.push(key.clone()),
                QueueChange::Left(scores) => {
                    let ahead = scores.iter().filter(|s| **s < e.score).count() as u64;
                    if ahead > 0 {
                        e.position = e.position.saturating_sub(ahead).max(1);
                        moved.push(key.clone());
                    }
                }
            }
        }
        for key in &admitted {
            self.entries.remove(key);
        }
        (moved, admitted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_shopper_who_left_leaves_the_book_and_is_never_admitted() {
        let mut book: PositionBook<&str> = PositionBook::default();
        book.insert("stays", 30.0, 3, 1);
        book.insert("leaver", 20.0, 2, 1);
        book.insert("leaver-tab-2", 20.0, 2, 1);
        let (moved, gone) = book.apply(2, &QueueChange::Left(vec![20.0]));
        assert_eq!(moved, vec!["stays"]);
        let mut gone = gone;
        gone.sort();
        assert_eq!(gone, vec!["leaver", "leaver-tab-2"]);
        assert_eq!(book.position(&"stays"), Some(2));
        // The next tick admits the head: the leaver is not in the book to be told.
        let (_, admitted) = book.apply(3, &QueueChange::Head(2));
        assert_eq!(admitted, vec!["stays"]);
        // Caught up from the log, a leaver's entry goes too.
        book.insert("late", 20.0, 2, 1);
        assert!(!book.catch_up(&"late", &[(2, QueueChange::Left(vec![20.0]))]));
        assert_eq!(book.position(&"late"), None);
    }

    #[test]
    fn an_entry_read_before_the_latest_events_is_caught_up_with_them() {
        let mut book: PositionBook<u32> = PositionBook::default();
        book.insert(1, 10.0, 5, 3);
        book.insert(2, 20.0, 8, 7);
        let recent = vec![
            (4, QueueChange::Head(2)),
            (5, QueueChange::Left(vec![1.0, 30.0])),
            (6, QueueChange::Head(1)),
            (7, QueueChange::Head(1)),
        ];
        assert!(!book.catch_up(&1, &recent));
        // 5 → 3 (two admitted) → 2 (one ahead left) → 1 → admitted by the seq-7 tick.
        assert_eq!(book.position(&1), None, "admitted by the last tick");
        assert!(
            book.catch_up(&2, &recent),
            "events up to its read are not applied twice"
        );
        assert_eq!(book.position(&2), Some(8));
        book.insert(3, 15.0, 6, 3);
        assert!(book.catch_up(&3, &recent[..3]));
        assert_eq!(book.position(&3), Some(6 - 2 - 1 - 1));
        assert!(book.catch_up(&3, &recent), "events already applied are skipped");
        assert_eq!(book.position(&3), Some(1));
        assert!(
            !book.catch_up(&3, &[(8, QueueChange::Head(1))]),
            "then a tick admits it"
        );
    }

    #[test]
    fn a_patch_needs_a_rate_on_creation_and_keeps_the_rest_after() {
        assert!(
            RoomPatch::default()
                .apply(None)
                .unwrap_err()
                .contains("admitRatePerSecond")
        );
        let created = RoomPatch {
            admit_rate_per_second: Some(50.0),
            ..Default::default()
        }
        .apply(None)
        .unwrap();
        assert_eq!(
            (created.burst, created.max_active, created.admission_ttl_seconds),
            (50, 5000, 600)
        );
        let tuned = RoomPatch {
            paused: Some(true),
            ..Default::default()
        }
        .apply(Some(&created))
        .unwrap();
        assert!(tuned.paused);
        assert_eq!(tuned.admit_rate_per_second, 50.0);
        for bad in [0.0, -1.0, f64::NAN, 1e9] {
            assert!(
                RoomPatch {
                    admit_rate_per_second: Some(bad),
                    ..Default::default()
                }
                .apply(None)
                .is_err()
            );
        }
        let bad_ttl = RoomPatch {
            admit_rate_per_second: Some(1.0),
            admission_ttl_seconds: Some(0),
            ..Default::default()
        };
        assert!(bad_ttl.apply(None).unwrap_err().contains("admissionTtlSeconds"));
    }

    #[test]
    fn the_lottery_is_verifiable_from_the_seed() {
        let seed = "0f".repeat(32);
        let order = lottery_order(&seed, vec!["carol".into(), "alice".into(), "bob".into()]);
        let mut keys: Vec<String> = order.iter().map(|u| lottery_key(&seed, u)).collect();
        let sorted = {
            let mut k = keys.clone();
            k.sort();
            k
        };
        assert_eq!(keys, sorted);
        keys.dedup();
        assert_eq!(keys.len(), 3);
        assert_eq!(
            seed_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn eta_follows_the_rate() {
        assert_eq!(eta_seconds(100, 50.0), Some(2));
        assert_eq!(eta_seconds(101, 50.0), Some(3));
        assert_eq!(eta_seconds(5, 0.0), None);
    }

    proptest! {
        /// However admissions and leaves interleave, every tracked shopper's
        /// position equals 1 + the number of queued shoppers ahead of it.
        #[test]
        fn positions_from_events_equal_real_ranks(
            n in 1usize..60,
            tracked in proptest::collection::vec(any::<bool>(), 60),
            ops in proptest::collection::vec((any::<bool>(), 0usize..5, any::<prop::sample::Index>()), 0..40),
        ) {
            let mut queue: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let mut book = PositionBook::default();
            for (i, score) in queue.iter().enumerate() {
                if tracked[i] { book.insert(*score as u64, *score, i as u64 + 1, 0); }
            }
            for (seq, (admit, k, pick)) in ops.into_iter().enumerate() {
                let seq = seq as u64 + 1;
                if queue.is_empty() { break; }
                if admit {
                    let k = k.min(queue.len());
                    let gone: Vec<f64> = queue.drain(..k).collect();
                    let (_, admitted) = book.apply(seq, &QueueChange::Head(k as u64));
                    for a in admitted { prop_assert!(gone.contains(&(a as f64))); }
                } else {
                    let s = queue.remove(pick.index(queue.len()));
                    book.remove(&(s as u64));
                    book.apply(seq, &QueueChange::Left(vec![s]));
                    // Applying the same event again changes nothing.
                    book.apply(seq, &QueueChange::Left(vec![s]));
                }
                for (rank, score) in queue.iter().enumerate() {
                    if let Some(p) = book.position(&(*score as u64)) { prop_assert_eq!(p, rank as u64 + 1); }
                }
            }
            for (rank, score) in queue.iter().enumerate() {
                if let Some(p) = book.position(&(*score as u64)) { prop_assert_eq!(p, rank as u64 + 1); }
            }
        }
    }
}
