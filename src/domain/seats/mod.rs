//! Seat locks of one show as a state machine: hold, release, extend for an
//! order, book, release an order's seats, expiry, rebuild and the waiting
//! list. This file is the machine (the state and one step of it); the
//! vocabulary is in `vocabulary`, the steps by family in `holds`, `orders`,
//! `rebuild` and `waitlist`.
//!
//! This is the memory engine's implementation and the specification the Lua
//! scripts in `lua/` follow step for step; the conformance suite runs the
//! same cases against both, so they cannot drift. Every step first sweeps
//! what is due, then acts, then reports its seat changes as one delta with
//! the version bumped once (or not at all when nothing changed).

mod budget;
mod holds;
mod orders;
mod rebuild;
mod tombstones;
mod vocabulary;
mod waitlist;

use std::collections::{BTreeSet, HashMap};

pub use budget::Budget;
pub use vocabulary::{
    At, BestOutcome, Effects, ExtendOutcome, HoldOutcome, HoldRecord, HoldStatus, LockTimes, OrderLock, Owner,
    PendingLock, RecordState, ReleaseOutcome, SeatChange, SeatDelta, SeatSnapshot, SeatStatus, Swept,
};
pub use waitlist::{
    MAX_OFFERS_PER_STEP, OfferEnd, SWEEP_BUDGET_WITH_WAITERS, WaitJoin, WaitStanding, WaitStats, Waitlist,
};

/// Seat changes in first-touched order; the last status of a seat wins.
#[derive(Default)]
struct Changes {
    order: Vec<String>,
    status: HashMap<String, SeatStatus>,
}

impl Changes {
    fn set(&mut self, seat: &str, status: SeatStatus) {
        if self.status.insert(seat.to_owned(), status).is_none() {
            self.order.push(seat.to_owned());
        }
    }
}

/// One show's lock state. Mirrors the Redis keys of `lua/common.lua`.
#[derive(Debug, Default)]
pub struct ShowSeats {
    owners: HashMap<String, Owner>,
    /// Live holds' records; ended ones are `ended`'s.
    holds: HashMap<String, HoldRecord>,
    ended: tombstones::Tombstones,
    users: HashMap<String, String>,
    deadlines: Deadlines,
    version: u64,
    /// `None` until the state is built from the record: every operation but
    /// `rebuild` is then refused (the engine answers "state missing").
    epoch: Option<String>,
    /// Order → stamp of the last seat change applied for it.
    stamps: HashMap<String, i64>,
    waitlist: Waitlist,
    /// Each user's budget of seat-changing calls: its arrival time (µs).
    budgets: HashMap<String, i64>,
}

/// A sorted set of ids by time, like a Redis ZSET.
#[derive(Debug, Default)]
struct Deadlines {
    by_time: BTreeSet<(i64, String)>,
    of: HashMap<String, i64>,
}

impl Deadlines {
    /// Like `ZADD LT`: a member already due sooner keeps its time.
    fn add_lt(&mut self, at: i64, id: &str) {
        if self.of.get(id).is_none_or(|t| at < *t) {
            self.add(at, id);
        }
    }
    fn add(&mut self, at: i64, id: &str) {
        self.remove(id);
        self.by_time.insert((at, id.to_owned()));
        self.of.insert(id.to_owned(), at);
    }
    fn remove(&mut self, id: &str) {
        if let Some(at) = self.of.remove(id) {
            self.by_time.remove(&(at, id.to_owned()));
        }
    }
    fn due(&self, now: i64, limit: usize) -> Vec<String> {
        self.by_time
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(limit)
            .map(|(_, id)| id.clone())
            .collect()
    }
}

struct Op<'a> {
    state: &'a mut ShowSeats,
    show: &'a str,
    now: i64,
    times: LockTimes,
    changes: Changes,
    expired: u32,
    /// The sweep stopped at its budget with holds still due.
    more_due: bool,
    /// Serve the waiting list even if this step frees nothing (the
    /// sweeper's call: it serves what a capped step could not).
    serve_always: bool,
    /// Offers made so far in this step (at most `MAX_OFFERS_PER_STEP`):
    /// each waiter and the offer's expiry.
    offers: Vec<(String, i64)>,
    /// The shopper whose own request for seats this step is: never offered
    /// seats in it (their request wins for them; the offer goes to the next
    /// waiter).
    caller: Option<&'a str>,
}

impl<'a> Op<'a> {
    fn begin(state: &'a mut ShowSeats, at: At<'a>) -> Self {
        let mut op = Op {
            state,
            show: at.show,
            now: at.now,
            times: at.times,
            changes: Changes::default(),
            expired: 0,
            more_due: false,
            serve_always: false,
            offers: Vec::new(),
            caller: None,
        };
        op.sweep();
        op
    }

    /// Begins a step of `caller`'s own request for seats: what the sweep
    /// freed goes to the waiting list before the request takes any seat,
    /// and never to the caller.
    fn begin_for(state: &'a mut ShowSeats, at: At<'a>, caller: &'a str) -> Self {
        let mut op = Self::begin(state, at);
        op.caller = Some(caller);
        op.serve();
        op
    }

    fn hold_end(&mut self, id: &str, status: HoldStatus, at: i64) {
        let Some(mut rec) = self.state.holds.remove(id) else {
            return;
        };
        let owner = Owner::Hold(id.to_owned());
        for seat in &rec.seats {
            if self.state.owners.get(seat) == Some(&owner) {
                self.state.owners.remove(seat);
                self.changes.set(seat, SeatStatus::Available);
            }
        }
        rec.status = status;
        rec.ended_ms = Some(at);
        if self.state.users.get(&rec.user).map(String::as_str) == Some(id) {
            self.state.users.remove(&rec.user);
        }
        if rec.offer {
            self.offer_ended(status);
        }
        self.state.deadlines.remove(id);
        self.tomb(id, rec);
    }

    /// An ended hold's record becomes a tombstone (`tomb_put`).
    fn tomb(&mut self, id: &str, rec: HoldRecord) {
        self.state.holds.remove(id);
        if let Some(at) = self.state.ended.put(id, rec, self.now, self.times.retention_ms) {
            self.state.deadlines.add_lt(at, tombstones::GC);
        }
    }

    /// Retires and drops generations of tombstones as they come due (`gc`).
    fn collect(&mut self) {
        match self.state.ended.collect(self.now, self.times.retention_ms) {
            Some(at) => self.state.deadlines.add(at, tombstones::GC),
            None => self.state.deadlines.remove(tombstones::GC),
        }
    }

    /// Locks `seats` (none of them another's) for a new hold of `user` and
    /// releases the user's previous hold (`lock_seats` in `lua/common.lua`).
    fn lock(&mut self, user: &str, hold_id: &str, seats: &[String], prev: Option<String>, ttl_ms: i64, offer: bool) {
        let now = self.now;
        for seat in seats {
            if self
                .state
                .owners
                .insert(seat.clone(), Owner::Hold(hold_id.to_owned()))
                .is_none()
            {
                self.changes.set(seat, SeatStatus::Held);
            }
        }
        if let Some(prev) = &prev {
            self.hold_end(prev, HoldStatus::Released, now);
        }
        let expires = now + ttl_ms;
        self.state.holds.insert(
            hold_id.to_owned(),
            HoldRecord {
                user: user.to_owned(),
                seats: seats.to_vec(),
                status: HoldStatus::Held,
                created_ms: now,
                expires_ms: expires,
                order_id: None,
                order_created_ms: None,
                order_expires_ms: None,
                ended_ms: None,
                replaced: prev,
                offer,
            },
        );
        self.state.users.insert(user.to_owned(), hold_id.to_owned());
        self.state.deadlines.add(expires, hold_id);
    }

    /// Whether a seat change for this order state is newer than the last one
    /// applied (and records it), like `fresh` in `lua/common.lua`.
    fn fresh(&mut self, order: &str, stamp: i64) -> bool {
        if self.state.stamps.get(order).is_some_and(|last| *last >= stamp) {
            return false;
        }
        self.state.stamps.insert(order.to_owned(), stamp);
        true
    }

    /// Whether the locks follow a newer state of the order than `stamp`.
    fn newer(&self, order: &str, stamp: i64) -> bool {
        self.state.stamps.get(order).is_some_and(|last| *last > stamp)
    }

    fn restamp(&mut self, order: &str, stamp: i64) {
        let last = self.state.stamps.entry(order.to_owned()).or_insert(stamp);
        *last = (*last).max(stamp);
    }

    /// Frees what is due. With anyone on the waiting list, at most
    /// `SWEEP_BUDGET_WITH_WAITERS` seats a step (the rest stay due), so
    /// `serve` can offer every seat the step frees.
    fn sweep(&mut self) {
        let budget = if self.state.waitlist.is_empty() {
            usize::MAX
        } else {
            SWEEP_BUDGET_WITH_WAITERS
        };
        let mut freed = 0;
        for id in self.state.deadlines.due(self.now, usize::MAX) {
            if freed >= budget {
                self.more_due = true;
                break;
            }
            if id == tombstones::GC {
                self.collect();
                continue;
            }
            let Some(rec) = self.state.holds.get(&id).cloned() else {
                self.state.deadlines.remove(&id);
                continue;
            };
            if let Some(order) = &rec.order_id {
                let owner = Owner::Order(order.clone());
                for seat in &rec.seats {
                    if self.state.owners.get(seat) == Some(&owner) {
                        self.state.owners.remove(seat);
                        self.changes.set(seat, SeatStatus::Available);
                        freed += 1;
                    }
                }
                self.state.deadlines.remove(&id);
                self.tomb(&id, rec);
            } else if rec.status == HoldStatus::Held {
                freed += rec.seats.len();
                self.hold_end(&id, HoldStatus::Expired, rec.expires_ms);
                self.expired += 1;
            } else {
                self.state.deadlines.remove(&id);
            }
        }
    }

    /// Ends the step: freed seats go to the waiting list first, then the
    /// version steps once and one delta carries every change.
    fn finish(mut self) -> (u64, Effects) {
        self.serve();
        let Op {
            state,
            show,
            changes,
            expired,
            offers,
            ..
        } = self;
        if changes.order.is_empty() {
            return (
                state.version,
                Effects {
                    expired_holds: expired,
                    delta: None,
                    offers,
                },
            );
        }
        state.version += 1;
        let changes = changes
            .order
            .iter()
            .map(|seat| SeatChange {
                seat_id: seat.clone(),
                status: changes.status[seat],
            })
            .collect();
        let delta = SeatDelta {
            show_id: show.to_owned(),
            epoch: state.epoch.clone().unwrap_or_default(),
            version: state.version,
            changes,
        };
        (
            state.version,
            Effects {
                expired_holds: expired,
                delta: Some(delta),
                offers,
            },
        )
    }
}

impl ShowSeats {
    /// Whether the state has been built (see `epoch`).
    pub fn has_state(&self) -> bool {
        self.epoch.is_some()
    }

    pub fn epoch(&self) -> &str {
        self.epoch.as_deref().unwrap_or("")
    }

    /// The show's seat-change counter.
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn hold_record(&self, hold_id: &str) -> Option<HoldRecord> {
        self.record(hold_id).cloned()
    }

    /// Charges `user`'s budget of seat-changing calls (`charge` in
    /// `lua/common.lua`), before the step: refused with the ms until a call
    /// would pass, and nothing changes.
    pub fn charge(&mut self, at: At<'_>, user: &str) -> Result<(), i64> {
        let Some(budget) = at.times.budget else {
            return Ok(());
        };
        let tat = budget.charge(self.budgets.get(user).copied(), at.now)?;
        self.budgets.insert(user.to_owned(), tat);
        Ok(())
    }

    /// A hold's record, live or a tombstone (`hold_get`).
    fn record(&self, hold_id: &str) -> Option<&HoldRecord> {
        self.holds.get(hold_id).or_else(|| self.ended.get(hold_id))
    }

    /// The earliest deadline (ms), tombstone steps included.
    pub fn next_due(&self) -> Option<i64> {
        self.deadlines.by_time.first().map(|(at, _)| *at)
    }

    /// Test and invariant access: every held or booked seat and its owner.
    pub fn owners(&self) -> &HashMap<String, Owner> {
        &self.owners
    }
}

fn status_name(status: HoldStatus) -> String {
    match status {
        HoldStatus::Held => "HELD",
        HoldStatus::Expired => "EXPIRED",
        HoldStatus::Released => "RELEASED",
    }
    .to_owned()
}

#[cfg(test)]
mod tests;
