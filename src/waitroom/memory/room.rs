//! One show's waiting room in process: the queue, the pre-queue and the
//! admitted, and the steps `lua/wr_*.lua` take on them.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::super::engine::{RoomEvent, Stand, Standing, StoredRoom, Tick, TickParams};
use crate::domain::outlook;
use crate::domain::waitroom::PreQueue;

#[derive(Default)]
pub(super) struct Room {
    pub(super) stored: Option<StoredRoom>,
    /// Scores are whole numbers (arrival order, or lottery places below 0).
    pub(super) queue: BTreeMap<i64, String>,
    pub(super) score_of: HashMap<String, i64>,
    pub(super) pre: HashSet<String>,
    /// The pre-queue as the opening began, and which opening that was.
    pub(super) entrants: HashSet<String>,
    pub(super) opened_for: Option<Option<i64>>,
    pub(super) open_base: i64,
    /// Spent proof-of-work challenges, until they expire.
    pub(super) spent: HashMap<String, i64>,
    pub(super) arrivals: i64,
    pub(super) events: u64,
    pub(super) seen: HashMap<String, i64>,
    pub(super) admitted: HashMap<String, i64>,
    pub(super) joined: u64,
    pub(super) admitted_total: u64,
    pub(super) abandoned: u64,
    pub(super) left: u64,
    /// The outlook's observations (`lua/wr_settle.lua`, `wr_admit.lua`).
    pub(super) walked: u64,
    pub(super) bought: Vec<u64>,
    pub(super) buy_ms: u64,
    pub(super) buy_times: Vec<u64>,
    pub(super) held: HashSet<String>,
    pub(super) held_seats: u64,
    pub(super) ordered: HashSet<String>,
    /// The leader's latest estimate (JSON).
    pub(super) outlook: Option<String>,
    pub(super) lease: Option<(String, i64)>,
    pub(super) fence: u64,
    /// The last admission tick's id: a repeat admits nobody.
    pub(super) last_tick: Option<String>,
    pub(super) last_tick_at: Option<i64>,
}

impl Room {
    pub(super) fn rank(&self, score: i64) -> u64 {
        self.queue.range(..score).count() as u64
    }

    pub(super) fn opens_at(&self) -> Option<i64> {
        self.stored
            .as_ref()
            .and_then(|s| s.config.opens_at)
            .map(|t| t.timestamp_millis())
    }

    /// The next arrival's place, behind everyone queued so far.
    pub(super) fn arrive(&mut self, user: &str) -> i64 {
        self.arrivals += 1;
        let score = self.arrivals;
        self.queue.insert(score, user.to_owned());
        self.score_of.insert(user.to_owned(), score);
        score
    }

    /// `lua/wr_opening.lua`'s `begin_opening`: snapshots the pre-queue and
    /// reserves its places, once per opening. Answers the block's base and
    /// size when it began the opening now.
    pub(super) fn begin_opening(&mut self, opens: Option<i64>) -> Option<(i64, u64)> {
        if self.opened_for == Some(opens) {
            return None;
        }
        self.entrants = self.pre.clone();
        let n = self.entrants.len() as i64;
        self.open_base = if n > 0 { self.arrivals + 1 } else { 0 };
        self.arrivals += n;
        self.opened_for = Some(opens);
        Some((self.open_base, n as u64))
    }

    /// `lua/wr_join.lua` past admission: where `user` stands, placed in the
    /// queue (or the pre-queue before a RANDOM opening) when new and
    /// `create`, seen until `until`.
    /// Joins (`create`) or reads, as `lua/wr_join.lua` does.
    pub(super) fn join(&mut self, user: &str, now: i64, create: bool, until: i64, shared_now: i64) -> Stand {
        let opens = self.opens_at();
        let before_opening = opens.is_some_and(|t| shared_now < t);
        if !before_opening {
            self.begin_opening(opens);
        }
        let seq = self.events;
        if let Some(exp) = self.admitted.get(user).filter(|e| **e > now) {
            return Stand {
                standing: Standing::Admitted {
                    expires_ms: *exp,
                    queue_length: self.queue.len() as u64,
                },
                seq,
            };
        }
        let standing = self.place(user, create, until, before_opening);
        Stand { standing, seq }
    }

    pub(super) fn place(&mut self, user: &str, create: bool, until: i64, before_opening: bool) -> Standing {
        let score = match self.score_of.get(user) {
            Some(s) => *s,
            None if self.pre.contains(user) => {
                self.seen.insert(user.to_owned(), until);
                if before_opening || self.entrants.contains(user) {
                    return self.pre_queued();
                }
                // A straggler the opening did not see: behind the block.
                self.pre.remove(user);
                self.arrive(user)
            }
            None if !create => return Standing::None,
            None => {
                self.joined += 1;
                self.seen.insert(user.to_owned(), until);
                let random = self
                    .stored
                    .as_ref()
                    .is_some_and(|s| s.config.pre_queue == PreQueue::Random);
                if before_opening && random {
                    self.pre.insert(user.to_owned());
                    return self.pre_queued();
                }
                self.arrive(user)
            }
        };
        self.seen.insert(user.to_owned(), until);
        Standing::Queued {
            score: score as f64,
            position: self.rank(score) + 1,
            queue_length: self.queue.len() as u64,
        }
    }

    pub(super) fn pre_queued(&self) -> Standing {
        Standing::PreQueued {
            entrants: self.pre.len() as u64,
        }
    }

    /// `lua/wr_admit.lua` under a held lease: admits up to the tokens in
    /// hand, and answers the tick and, unless it repeats one already made,
    /// its event.
    pub(super) fn tick(&mut self, p: &TickParams, available: i64, sold_out: bool) -> (Tick, Option<RoomEvent>) {
        let repeated = self.last_tick.as_deref() == Some(p.tick_id.as_str());
        self.last_tick = Some(p.tick_id.clone());
        if !repeated {
            self.last_tick_at = Some(p.now);
        }
        let before = self.admitted.len();
        self.admitted.retain(|_, exp| *exp > p.now);
        self.walked += (before - self.admitted.len()) as u64;
        let mut active = self.admitted.len() as u64;
        let mut users = Vec::new();
        if !p.paused && available > 0 && !repeated {
            users = self.admit_head(p, active);
            active += users.len() as u64;
        }
        let mut tick = Tick {
            admitted: users,
            queue_length: self.queue.len() as u64,
            active,
            available,
            sold_out,
            seq: self.events,
        };
        if repeated {
            return (tick, None);
        }
        if let Some(s) = self.stored.as_mut() {
            s.sold_out = sold_out;
            s.observed_rate = p.observed_rate;
        }
        self.events += 1;
        tick.seq = self.events;
        if p.outlook.is_some() {
            self.outlook = p.outlook.clone();
        }
        let event = RoomEvent::Tick {
            seq: self.events,
            admitted: tick.admitted.clone(),
            expires_at: p.now + p.ttl_ms,
            queue_length: tick.queue_length,
            active,
            sold_out,
            paused: p.paused,
            rate: p.observed_rate,
            outlook: self
                .outlook
                .as_deref()
                .and_then(|o| serde_json::from_str(o).ok())
                .map(Box::new),
        };
        (tick, Some(event))
    }

    /// Admits from the head of the queue as many as the tokens in hand and
    /// `max_active` allow.
    pub(super) fn admit_head(&mut self, p: &TickParams, active: u64) -> Vec<String> {
        let k = p
            .max
            .min(p.max_active.saturating_sub(active))
            .min(self.queue.len() as u64);
        let mut users = Vec::new();
        for _ in 0..k {
            if let Some((_, user)) = self.queue.pop_first() {
                self.score_of.remove(&user);
                self.seen.remove(&user);
                self.admitted.insert(user.clone(), p.now + p.ttl_ms);
                users.push(user);
            }
        }
        self.admitted_total += users.len() as u64;
        users
    }

    /// `lua/wr_settle.lua`.
    pub(super) fn settle(&mut self, user: &str, seats: u64, now: i64, ttl_ms: i64) {
        let Some(expires) = self.admitted.remove(user) else {
            return;
        };
        if seats == 0 {
            self.walked += 1;
            return;
        }
        let seats = seats as usize;
        if self.bought.len() <= seats {
            self.bought.resize(seats + 1, 0);
        }
        self.bought[seats] += 1;
        let took = (now - (expires - ttl_ms)).max(0);
        self.buy_ms += took as u64;
        if self.buy_times.is_empty() {
            self.buy_times = vec![0; outlook::AGE_BUCKETS];
        }
        self.buy_times[outlook::age_bucket(took)] += 1;
    }

    pub(super) fn holds_lease(&self, token: &str, now: i64) -> bool {
        self.lease.as_ref().is_some_and(|(t, until)| t == token && *until > now)
    }

    pub(super) fn remove(&mut self, users: &[String]) -> (u64, Vec<f64>) {
        let (mut removed, mut scores) = (0, Vec::new());
        for user in users {
            if let Some(score) = self.score_of.remove(user) {
                self.queue.remove(&score);
                scores.push(score as f64);
                removed += 1;
            } else if self.pre.remove(user) {
                removed += 1;
            }
            self.seen.remove(user);
        }
        (removed, scores)
    }
}
