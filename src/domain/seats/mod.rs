//! Seat locks of one show as a state machine: hold, release, extend for an
//! order, book, release an order's seats, and expiry.
//!
//! This is the memory engine's implementation and the specification the Lua
//! scripts in `lua/` follow step for step; the conformance suite runs the
//! same cases against both, so they cannot drift. Every operation first
//! sweeps what is due, then acts, then reports its seat changes as one delta
//! with the version bumped once (or not at all when nothing changed).

mod waitlist;

use std::collections::{BTreeSet, HashMap};

use super::best::{self, RowPlan};
use serde::{Deserialize, Serialize};
pub use waitlist::{
    MAX_OFFERS_PER_STEP, OfferEnd, SWEEP_BUDGET_WITH_WAITERS, WaitJoin, WaitStanding, WaitStats, Waitlist,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SeatStatus {
    Available,
    Held,
    Booked,
    /// Permanently unavailable (broken, reserved): part of the catalog, never
    /// of the lock state.
    Unavailable,
}

impl SeatStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "AVAILABLE",
            Self::Held => "HELD",
            Self::Booked => "BOOKED",
            Self::Unavailable => "UNAVAILABLE",
        }
    }
}

/// Who has a seat. Encoded in Redis as `H:<holdId>`, `O:<orderId>`, `B:<orderId>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Hold(String),
    Order(String),
    Booked(String),
}

impl Owner {
    pub fn parse(s: &str) -> Option<Self> {
        let (tag, id) = s.split_once(':')?;
        match tag {
            "H" => Some(Self::Hold(id.to_owned())),
            "O" => Some(Self::Order(id.to_owned())),
            "B" => Some(Self::Booked(id.to_owned())),
            _ => None,
        }
    }

    pub fn status(&self) -> SeatStatus {
        match self {
            Self::Hold(_) | Self::Order(_) => SeatStatus::Held,
            Self::Booked(_) => SeatStatus::Booked,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HoldStatus {
    Held,
    Expired,
    Released,
}

/// A hold as stored (field names are the Lua scripts' JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldRecord {
    #[serde(rename = "u")]
    pub user: String,
    #[serde(rename = "s")]
    pub seats: Vec<String>,
    #[serde(rename = "st")]
    pub status: HoldStatus,
    #[serde(rename = "c")]
    pub created_ms: i64,
    #[serde(rename = "e")]
    pub expires_ms: i64,
    /// The order this hold became, if any.
    #[serde(rename = "o", default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(rename = "oc", default, skip_serializing_if = "Option::is_none")]
    pub order_created_ms: Option<i64>,
    #[serde(rename = "oe", default, skip_serializing_if = "Option::is_none")]
    pub order_expires_ms: Option<i64>,
    /// When the hold ended (released or expired).
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<i64>,
    /// The user's previous hold this one replaced, so a retried hold answers
    /// what the first run did.
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub replaced: Option<String>,
    /// A waiting-list offer (its end is counted in the list's figures).
    #[serde(rename = "w", default, skip_serializing_if = "std::ops::Not::not")]
    pub offer: bool,
}

impl HoldRecord {
    /// Status as the contract reports it: a hold is EXPIRED the moment its
    /// `expiresAt` passes, whatever any sweeper has done yet; a hold that
    /// became an order stays HELD.
    pub fn status_at(&self, now_ms: i64) -> HoldStatus {
        if self.status == HoldStatus::Held && self.order_id.is_none() && now_ms >= self.expires_ms {
            HoldStatus::Expired
        } else {
            self.status
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatChange {
    pub seat_id: String,
    pub status: SeatStatus,
}

/// One published change of a show's seats: exactly one version step, or a
/// rebuild (a new epoch, with whatever seats it changed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatDelta {
    pub show_id: String,
    #[serde(default)]
    pub epoch: String,
    pub version: u64,
    #[serde(deserialize_with = "super::lua::list_or_empty_object")]
    pub changes: Vec<SeatChange>,
}

/// What the record (Postgres) says a show's seats are: the input of a rebuild.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecordState {
    /// (seat, order, stamp) of every booked seat.
    pub booked: Vec<(String, String, i64)>,
    /// Every order still waiting for its payment.
    pub pending: Vec<PendingLock>,
    /// When the record was read (µs): a change applied to the locks after
    /// it (a newer stamp) is kept by the rebuild.
    #[serde(rename = "asOf")]
    pub as_of: i64,
}

/// A PAYMENT_PENDING order's lock (field names are the rebuild script's JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingLock {
    #[serde(rename = "o")]
    pub order_id: String,
    #[serde(rename = "h")]
    pub hold_id: String,
    #[serde(rename = "u")]
    pub user: String,
    #[serde(rename = "s")]
    pub seats: Vec<String>,
    #[serde(rename = "c")]
    pub created_ms: i64,
    #[serde(rename = "e")]
    pub expires_ms: i64,
    /// The order state's stamp (updated_at, µs).
    #[serde(rename = "t")]
    pub stamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldOutcome {
    /// Locked; `replaced` is the user's previous hold, released in the same step.
    Held { version: u64, replaced: Option<String> },
    /// Nothing changed: the seats asked for that someone else has. (What
    /// is still available is read from the node's replica of the show, not
    /// from here: a conflict costs the shared engine O(seats asked).)
    Conflict { conflicts: Vec<String> },
}

/// What a best-available hold did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BestOutcome {
    /// Locked the seats the rule picked; `replaced` as for `Held`.
    Held {
        version: u64,
        replaced: Option<String>,
        seats: Vec<String>,
    },
    /// No row has that many adjacent free seats; nothing changed.
    NotEnough { largest_block: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseOutcome {
    Released,
    NotFound,
    /// Not active; the hold's status, or `ORDERED` when it became an order.
    NotActive(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLock {
    pub order_id: String,
    pub created_ms: i64,
    pub expires_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtendOutcome {
    /// The hold now locks its seats for this new order.
    Attached(OrderLock),
    /// The hold had already become this order.
    Existing(OrderLock),
    NotFound,
    Expired,
    NotActive(String),
}

/// Every seat that is not available, as of one version of one epoch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeatSnapshot {
    pub epoch: String,
    pub version: u64,
    pub taken: HashMap<String, Owner>,
}

/// What one operation did besides its answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Effects {
    pub expired_holds: u32,
    pub delta: Option<SeatDelta>,
}

/// Timing knobs the operations need; the same values go to the Lua scripts.
#[derive(Debug, Clone, Copy)]
pub struct LockTimes {
    /// How long ended hold records stay readable.
    pub retention_ms: i64,
    /// How long an order's lock outlives the order's expiry if the order
    /// store never releases it.
    pub order_grace_ms: i64,
}

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
    holds: HashMap<String, HoldRecord>,
    users: HashMap<String, String>,
    deadlines: Deadlines,
    gc: Deadlines,
    version: u64,
    /// `None` until the state is built from the record: every operation but
    /// `rebuild` is then refused (the engine answers "state missing").
    epoch: Option<String>,
    /// Order → stamp of the last seat change applied for it.
    stamps: HashMap<String, i64>,
    waitlist: Waitlist,
}

/// A sorted set of ids by time, like a Redis ZSET.
#[derive(Debug, Default)]
struct Deadlines {
    by_time: BTreeSet<(i64, String)>,
    of: HashMap<String, i64>,
}

impl Deadlines {
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
}

impl<'a> Op<'a> {
    fn begin(state: &'a mut ShowSeats, show: &'a str, now: i64, times: LockTimes) -> Self {
        let mut op = Op {
            state,
            show,
            now,
            times,
            changes: Changes::default(),
            expired: 0,
            more_due: false,
            serve_always: false,
        };
        op.sweep();
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
        let offer = rec.offer;
        self.state.holds.insert(id.to_owned(), rec);
        self.state.deadlines.remove(id);
        self.state.gc.add(self.now + self.times.retention_ms, id);
        if offer {
            self.offer_ended(status);
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
                self.state.gc.add(self.now + self.times.retention_ms, &id);
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
            ..
        } = self;
        if changes.order.is_empty() {
            return (
                state.version,
                Effects {
                    expired_holds: expired,
                    delta: None,
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
            },
        )
    }
}

impl ShowSeats {
    /// Locks every seat for `user`, or none (`lua/seats_hold.lua`).
    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per ARGV of the script it specifies"
    )]
    pub fn hold(
        &mut self,
        show: &str,
        now: i64,
        times: LockTimes,
        user: &str,
        hold_id: &str,
        seats: &[String],
        ttl_ms: i64,
    ) -> (HoldOutcome, Effects) {
        let op = Op::begin(self, show, now, times);
        if let Some(again) = op.state.holds.get(hold_id).filter(|r| r.user == user) {
            let replaced = again.replaced.clone();
            let (version, fx) = op.finish();
            return (HoldOutcome::Held { version, replaced }, fx);
        }
        let prev = op.state.users.get(user).cloned();
        let mine = prev.clone().map(Owner::Hold);
        let conflicts: Vec<String> = seats
            .iter()
            .filter(|s| op.state.owners.get(*s).is_some_and(|o| Some(o) != mine.as_ref()))
            .cloned()
            .collect();
        if !conflicts.is_empty() {
            let (_, fx) = op.finish();
            return (HoldOutcome::Conflict { conflicts }, fx);
        }
        let (version, fx) = Self::take(op, user, hold_id, seats, prev.clone(), ttl_ms);
        (
            HoldOutcome::Held {
                version,
                replaced: prev,
            },
            fx,
        )
    }

    /// Holds the best `quantity` adjacent free seats for `user` by the rule
    /// of `domain::best`, over `rows` (in preference order), in one step;
    /// the user's own previous hold counts as free (it is released).
    #[allow(clippy::too_many_arguments)]
    pub fn hold_best(
        &mut self,
        show: &str,
        now: i64,
        times: LockTimes,
        user: &str,
        hold_id: &str,
        quantity: usize,
        rows: &[RowPlan],
        ttl_ms: i64,
    ) -> (BestOutcome, Effects) {
        let op = Op::begin(self, show, now, times);
        if let Some(again) = op.state.holds.get(hold_id).filter(|r| r.user == user) {
            let (replaced, seats) = (again.replaced.clone(), again.seats.clone());
            let (version, fx) = op.finish();
            return (
                BestOutcome::Held {
                    version,
                    replaced,
                    seats,
                },
                fx,
            );
        }
        let prev = op.state.users.get(user).cloned();
        let mine = prev.clone().map(Owner::Hold);
        let free: Vec<Vec<bool>> = rows
            .iter()
            .map(|r| r.free(|seat| op.state.owners.get(seat).is_none_or(|o| Some(o) == mine.as_ref())))
            .collect();
        let Some((r, start)) = best::first_fit(&free, quantity) else {
            let largest_block = best::largest_block(free.iter().map(Vec::as_slice));
            let (_, fx) = op.finish();
            return (BestOutcome::NotEnough { largest_block }, fx);
        };
        let seats: Vec<String> = (start..start + quantity).map(|k| rows[r].seat(k)).collect();
        let (version, fx) = Self::take(op, user, hold_id, &seats, prev.clone(), ttl_ms);
        (
            BestOutcome::Held {
                version,
                replaced: prev,
                seats,
            },
            fx,
        )
    }

    /// Locks `seats` (none of them another's) for a new hold of `user`,
    /// releasing the user's previous one, and ends the step.
    fn take(
        mut op: Op<'_>,
        user: &str,
        hold_id: &str,
        seats: &[String],
        prev: Option<String>,
        ttl_ms: i64,
    ) -> (u64, Effects) {
        op.lock(user, hold_id, seats, prev, ttl_ms, false);
        op.finish()
    }

    /// The owner gives a hold back (`lua/seats_release.lua`).
    pub fn release(
        &mut self,
        show: &str,
        now: i64,
        times: LockTimes,
        user: &str,
        hold_id: &str,
    ) -> (ReleaseOutcome, Effects) {
        let mut op = Op::begin(self, show, now, times);
        let outcome = match op.state.holds.get(hold_id) {
            None => ReleaseOutcome::NotFound,
            Some(rec) if rec.user != user => ReleaseOutcome::NotFound,
            Some(rec) if rec.order_id.is_some() => ReleaseOutcome::NotActive("ORDERED".into()),
            Some(rec) if rec.status != HoldStatus::Held => ReleaseOutcome::NotActive(status_name(rec.status)),
            Some(_) => {
                op.hold_end(hold_id, HoldStatus::Released, now);
                ReleaseOutcome::Released
            }
        };
        let (_, fx) = op.finish();
        (outcome, fx)
    }

    /// Turns an active hold into an order's lock (`lua/seats_extend_for_order.lua`).
    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per ARGV of the script it specifies"
    )]
    pub fn extend_for_order(
        &mut self,
        show: &str,
        now: i64,
        times: LockTimes,
        user: &str,
        hold_id: &str,
        order_id: &str,
        order_ttl_ms: i64,
    ) -> (ExtendOutcome, Effects) {
        let mut op = Op::begin(self, show, now, times);
        // A hold that lost a seat (booked by an order whose lock had been
        // lost) cannot become an order: it gives back what it still has.
        let owner = Owner::Hold(hold_id.to_owned());
        let lost = op.state.holds.get(hold_id).is_some_and(|rec| {
            rec.order_id.is_none()
                && rec.status == HoldStatus::Held
                && rec.seats.iter().any(|s| op.state.owners.get(s) != Some(&owner))
        });
        if lost && op.state.holds.get(hold_id).is_some_and(|rec| rec.user == user) {
            op.hold_end(hold_id, HoldStatus::Released, now);
        }
        let outcome = match op.state.holds.get_mut(hold_id) {
            None => ExtendOutcome::NotFound,
            Some(rec) if rec.user != user => ExtendOutcome::NotFound,
            Some(rec) if rec.order_id.is_some() => ExtendOutcome::Existing(OrderLock {
                order_id: rec.order_id.clone().unwrap_or_default(),
                created_ms: rec.order_created_ms.unwrap_or_default(),
                expires_ms: rec.order_expires_ms.unwrap_or_default(),
            }),
            Some(rec) if rec.status == HoldStatus::Expired => ExtendOutcome::Expired,
            Some(rec) if rec.status != HoldStatus::Held => ExtendOutcome::NotActive(status_name(rec.status)),
            Some(rec) => {
                let lock = OrderLock {
                    order_id: order_id.to_owned(),
                    created_ms: now,
                    expires_ms: now + order_ttl_ms,
                };
                rec.order_id = Some(lock.order_id.clone());
                rec.order_created_ms = Some(lock.created_ms);
                rec.order_expires_ms = Some(lock.expires_ms);
                let seats = rec.seats.clone();
                for seat in seats {
                    op.state.owners.insert(seat, Owner::Order(order_id.to_owned()));
                }
                if op.state.users.get(user).map(String::as_str) == Some(hold_id) {
                    op.state.users.remove(user);
                }
                op.state.deadlines.add(lock.expires_ms + times.order_grace_ms, hold_id);
                ExtendOutcome::Attached(lock)
            }
        };
        if matches!(outcome, ExtendOutcome::Attached(_)) && op.state.holds.get(hold_id).is_some_and(|r| r.offer) {
            op.offer_taken();
        }
        let (_, fx) = op.finish();
        (outcome, fx)
    }

    /// Books an order's seats for good (`lua/seats_book.lua`), unless this
    /// or a newer state of the order was applied already (`false`).
    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per ARGV of the script it specifies"
    )]
    pub fn book(
        &mut self,
        show: &str,
        now: i64,
        times: LockTimes,
        order_id: &str,
        hold_id: &str,
        stamp: i64,
        seats: &[String],
    ) -> (bool, Effects) {
        let mut op = Op::begin(self, show, now, times);
        if !op.fresh(order_id, stamp) {
            return (false, op.finish().1);
        }
        for seat in seats {
            let prev = op.state.owners.insert(seat.clone(), Owner::Booked(order_id.to_owned()));
            if !matches!(prev, Some(Owner::Booked(_))) {
                op.changes.set(seat, SeatStatus::Booked);
            }
        }
        op.state.deadlines.remove(hold_id);
        op.state.gc.add(now + times.retention_ms, hold_id);
        (true, op.finish().1)
    }

    /// Frees the seats an order held or booked (`lua/seats_release_order.lua`),
    /// unless this or a newer state of the order was applied already (`false`).
    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per ARGV of the script it specifies"
    )]
    pub fn release_order(
        &mut self,
        show: &str,
        now: i64,
        times: LockTimes,
        order_id: &str,
        hold_id: &str,
        stamp: i64,
        seats: &[String],
    ) -> (bool, Effects) {
        let mut op = Op::begin(self, show, now, times);
        if !op.fresh(order_id, stamp) {
            return (false, op.finish().1);
        }
        let (held, booked) = (Owner::Order(order_id.to_owned()), Owner::Booked(order_id.to_owned()));
        for seat in seats {
            let owner = op.state.owners.get(seat);
            if owner == Some(&held) || owner == Some(&booked) {
                op.state.owners.remove(seat);
                op.changes.set(seat, SeatStatus::Available);
            }
        }
        op.state.deadlines.remove(hold_id);
        op.state.gc.add(now + times.retention_ms, hold_id);
        (true, op.finish().1)
    }

    /// The sweeper's call (`lua/seats_expire.lua`): expiry, the waiting
    /// list served, record clean-up. Answers whether holds are still due
    /// (the sweep's budget stopped it: call again).
    pub fn expire(&mut self, show: &str, now: i64, times: LockTimes, gc_limit: usize) -> (bool, Effects) {
        let mut op = Op::begin(self, show, now, times);
        op.serve_always = true;
        for id in op.state.gc.due(now, gc_limit) {
            op.state.holds.remove(&id);
            op.state.gc.remove(&id);
        }
        let more = op.more_due;
        (more, op.finish().1)
    }

    /// The state as of one version, after sweeping (`lua/seats_snapshot.lua`).
    pub fn snapshot(&mut self, show: &str, now: i64, times: LockTimes) -> (SeatSnapshot, Effects) {
        let (version, fx) = Op::begin(self, show, now, times).finish();
        let taken = self.owners.clone();
        let epoch = self.epoch.clone().unwrap_or_default();
        (SeatSnapshot { epoch, version, taken }, fx)
    }

    /// (Re)builds the state from the record under a new epoch
    /// (`lua/seats_rebuild.lua`), unless the epoch is no longer `seen`
    /// (another node rebuilt first: `false`, nothing changed).
    pub fn rebuild(
        &mut self,
        show: &str,
        now: i64,
        times: LockTimes,
        seen: &str,
        epoch: &str,
        record: &RecordState,
    ) -> (bool, Effects) {
        if self.epoch.as_deref().unwrap_or("") != seen {
            return (false, Effects::default());
        }
        let mut op = Op::begin(self, show, now, times);
        let mut want: HashMap<String, Owner> = HashMap::new();
        let mut wanted: Vec<String> = Vec::new();
        let mut claim = |seat: &str, owner: Owner| {
            if !want.contains_key(seat) {
                want.insert(seat.to_owned(), owner);
                wanted.push(seat.to_owned());
            }
        };
        for (seat, order, stamp) in &record.booked {
            if op.newer(order, *stamp) {
                continue;
            }
            claim(seat, Owner::Booked(order.clone()));
            op.restamp(order, *stamp);
        }
        for p in &record.pending {
            if op.newer(&p.order_id, p.stamp) {
                continue;
            }
            for seat in &p.seats {
                claim(seat, Owner::Order(p.order_id.clone()));
            }
            op.restamp(&p.order_id, p.stamp);
            let known = op
                .state
                .holds
                .get(&p.hold_id)
                .is_some_and(|r| r.order_id.as_deref() == Some(p.order_id.as_str()));
            if !known {
                op.state.holds.insert(
                    p.hold_id.clone(),
                    HoldRecord {
                        user: p.user.clone(),
                        seats: p.seats.clone(),
                        status: HoldStatus::Held,
                        created_ms: p.created_ms,
                        expires_ms: p.created_ms,
                        order_id: Some(p.order_id.clone()),
                        order_created_ms: Some(p.created_ms),
                        order_expires_ms: Some(p.expires_ms),
                        ended_ms: None,
                        replaced: None,
                        offer: false,
                    },
                );
                if op.state.users.get(&p.user) == Some(&p.hold_id) {
                    op.state.users.remove(&p.user);
                }
            }
            op.state.deadlines.add(p.expires_ms + times.order_grace_ms, &p.hold_id);
        }
        for seat in &wanted {
            let owner = &want[seat];
            let current = op.state.owners.get(seat).cloned();
            if current.as_ref() == Some(owner) {
                continue;
            }
            if let Some(Owner::Hold(id)) = &current {
                let active = op
                    .state
                    .holds
                    .get(id)
                    .is_some_and(|r| r.order_id.is_none() && r.status == HoldStatus::Held);
                if active {
                    op.hold_end(&id.clone(), HoldStatus::Released, now);
                }
            }
            op.state.owners.insert(seat.clone(), owner.clone());
            op.changes.set(seat, owner.status());
        }
        let mut stale: Vec<String> = op
            .state
            .owners
            .iter()
            .filter(|(seat, o)| match o {
                Owner::Booked(order) => !want.contains_key(*seat) && !op.newer(order, record.as_of),
                _ => false,
            })
            .map(|(seat, _)| seat.clone())
            .collect();
        stale.sort();
        for seat in stale {
            op.state.owners.remove(&seat);
            op.changes.set(&seat, SeatStatus::Available);
        }
        op.state.epoch = Some(epoch.to_owned());
        let changed = !op.changes.order.is_empty();
        let (version, mut fx) = op.finish();
        if !changed {
            // The new epoch is news even with no seat changed.
            fx.delta = Some(SeatDelta {
                show_id: show.to_owned(),
                epoch: epoch.to_owned(),
                version,
                changes: Vec::new(),
            });
        }
        (true, fx)
    }

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
        self.holds.get(hold_id).cloned()
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
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T: LockTimes = LockTimes {
        retention_ms: 3_600_000,
        order_grace_ms: 60_000,
    };
    const TTL: i64 = 300_000;

    fn seats(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// A show whose state has been built (empty) under epoch "e1".
    fn built() -> ShowSeats {
        let mut s = ShowSeats::default();
        assert!(s.rebuild("s", 0, T, "", "e1", &RecordState::default()).0);
        s
    }

    #[test]
    fn a_hold_locks_every_seat_and_bumps_the_version_once() {
        let mut s = ShowSeats::default();
        let (out, fx) = s.hold("s", 0, T, "u1", "h1", &seats(&["A1", "A2"]), TTL);
        assert_eq!(
            out,
            HoldOutcome::Held {
                version: 1,
                replaced: None
            }
        );
        let delta = fx.delta.unwrap();
        assert_eq!(delta.version, 1);
        assert_eq!(delta.changes.len(), 2);
        assert!(delta.changes.iter().all(|c| c.status == SeatStatus::Held));
    }

    #[test]
    fn a_conflict_changes_nothing_and_names_the_conflicting_seats() {
        let mut s = ShowSeats::default();
        s.hold("s", 0, T, "u1", "h1", &seats(&["A1"]), TTL);
        let (out, fx) = s.hold("s", 1, T, "u2", "h2", &seats(&["A1", "A2"]), TTL);
        assert_eq!(
            out,
            HoldOutcome::Conflict {
                conflicts: seats(&["A1"])
            }
        );
        assert!(fx.delta.is_none());
        assert!(!s.owners().contains_key("A2"));
    }

    #[test]
    fn a_new_hold_replaces_the_users_previous_one_atomically() {
        let mut s = ShowSeats::default();
        s.hold("s", 0, T, "u1", "h1", &seats(&["A1", "A2"]), TTL);
        let (out, fx) = s.hold("s", 1, T, "u1", "h2", &seats(&["A2", "A3"]), TTL);
        assert_eq!(
            out,
            HoldOutcome::Held {
                version: 2,
                replaced: Some("h1".into())
            }
        );
        let delta = fx.delta.unwrap();
        assert_eq!(
            delta.changes,
            vec![
                SeatChange {
                    seat_id: "A3".into(),
                    status: SeatStatus::Held
                },
                SeatChange {
                    seat_id: "A1".into(),
                    status: SeatStatus::Available
                },
            ]
        );
        assert_eq!(s.hold_record("h1").unwrap().status, HoldStatus::Released);
        assert_eq!(s.owners()["A2"], Owner::Hold("h2".into()));
    }

    #[test]
    fn expiry_frees_seats_at_the_deadline_and_keeps_the_record() {
        let mut s = ShowSeats::default();
        s.hold("s", 0, T, "u1", "h1", &seats(&["A1"]), TTL);
        assert_eq!(s.hold_record("h1").unwrap().status_at(TTL - 1), HoldStatus::Held);
        assert_eq!(s.hold_record("h1").unwrap().status_at(TTL), HoldStatus::Expired);
        let (snap, fx) = s.snapshot("s", TTL, T);
        assert!(snap.taken.is_empty());
        assert_eq!(fx.expired_holds, 1);
        assert_eq!(snap.version, 2);
        assert_eq!(s.hold_record("h1").unwrap().status, HoldStatus::Expired);
        let (_, fx) = s.expire("s", TTL + T.retention_ms, T, 100);
        assert!(fx.delta.is_none());
        assert!(s.hold_record("h1").is_none());
    }

    #[test]
    fn an_ordered_hold_keeps_its_seats_past_the_hold_ttl_and_is_not_the_active_hold() {
        let mut s = ShowSeats::default();
        s.hold("s", 0, T, "u1", "h1", &seats(&["A1"]), TTL);
        let (out, _) = s.extend_for_order("s", 10, T, "u1", "h1", "o1", 600_000);
        assert_eq!(
            out,
            ExtendOutcome::Attached(OrderLock {
                order_id: "o1".into(),
                created_ms: 10,
                expires_ms: 600_010
            })
        );
        let (snap, _) = s.snapshot("s", TTL + 1, T);
        assert_eq!(snap.taken["A1"], Owner::Order("o1".into()));
        // A new hold by the same user leaves the order's seats alone.
        let (out, _) = s.hold("s", TTL + 2, T, "u1", "h2", &seats(&["A1"]), TTL);
        assert!(matches!(out, HoldOutcome::Conflict { .. }));
        let (out, _) = s.extend_for_order("s", 20, T, "u1", "h1", "o2", 600_000);
        assert!(matches!(out, ExtendOutcome::Existing(l) if l.order_id == "o1"));
        assert_eq!(
            s.release("s", 30, T, "u1", "h1").0,
            ReleaseOutcome::NotActive("ORDERED".into())
        );
    }

    #[test]
    fn booking_and_releasing_an_order_publish_one_change_each() {
        let mut s = ShowSeats::default();
        s.hold("s", 0, T, "u1", "h1", &seats(&["A1", "A2"]), TTL);
        s.extend_for_order("s", 1, T, "u1", "h1", "o1", 600_000);
        let (applied, fx) = s.book("s", 2, T, "o1", "h1", 2, &seats(&["A1", "A2"]));
        assert!(applied);
        let delta = fx.delta.unwrap();
        assert_eq!(delta.version, 2);
        assert!(delta.changes.iter().all(|c| c.status == SeatStatus::Booked));
        // Far past the order's expiry a booked seat stays booked.
        let (snap, _) = s.snapshot("s", 10_000_000, T);
        assert_eq!(snap.taken.len(), 2);
        let (applied, fx) = s.release_order("s", 10_000_001, T, "o1", "h1", 3, &seats(&["A1", "A2"]));
        assert!(applied);
        let delta = fx.delta.unwrap();
        assert_eq!((delta.version, delta.changes.len()), (3, 2));
    }

    #[test]
    fn a_late_or_repeated_order_change_changes_nothing() {
        let mut s = built();
        s.hold("s", 0, T, "u1", "h1", &seats(&["A1"]), TTL);
        s.extend_for_order("s", 1, T, "u1", "h1", "o1", 600_000);
        // Cancelled (stamp 20) before the payment's book (stamp 10) arrives.
        assert!(s.release_order("s", 2, T, "o1", "h1", 20, &seats(&["A1"])).0);
        let (applied, fx) = s.book("s", 3, T, "o1", "h1", 10, &seats(&["A1"]));
        assert!(!applied && fx.delta.is_none());
        assert!(s.owners().is_empty(), "a cancelled order's seat is never left booked");
        // The same change twice: the second is a no-op.
        assert!(!s.release_order("s", 4, T, "o1", "h1", 20, &seats(&["A1"])).0);
    }

    #[test]
    fn a_retried_hold_answers_the_first_run_and_keeps_the_seats() {
        let mut s = built();
        s.hold("s", 0, T, "u1", "h0", &seats(&["A9"]), TTL);
        let first = s.hold("s", 1, T, "u1", "h1", &seats(&["A1"]), TTL).0;
        let again = s.hold("s", 2, T, "u1", "h1", &seats(&["A1"]), TTL);
        assert_eq!(
            first,
            HoldOutcome::Held {
                version: 2,
                replaced: Some("h0".into())
            }
        );
        assert_eq!(
            again.0,
            HoldOutcome::Held {
                version: 2,
                replaced: Some("h0".into())
            }
        );
        assert!(again.1.delta.is_none());
        assert_eq!(s.owners().get("A1"), Some(&Owner::Hold("h1".into())));
    }

    #[test]
    fn a_rebuild_puts_the_record_back_over_holds_and_starts_an_epoch() {
        let mut s = ShowSeats::default();
        assert!(!s.has_state());
        assert!(s.rebuild("s", 0, T, "", "e1", &RecordState::default()).0);
        s.hold("s", 1, T, "u1", "h1", &seats(&["A1", "A2"]), TTL);
        s.hold("s", 1, T, "u2", "h2", &seats(&["B1"]), TTL);
        s.book("s", 2, T, "gone", "hx", 5, &seats(&["C1"]));
        let record = RecordState {
            booked: vec![("A1".into(), "o1".into(), 7)],
            pending: vec![PendingLock {
                order_id: "o2".into(),
                hold_id: "h9".into(),
                user: "u9".into(),
                seats: vec!["D1".into()],
                created_ms: 1,
                expires_ms: 1_000,
                stamp: 8,
            }],
            // Read after "gone" was booked (stamp 5): its booking is stale.
            as_of: 6,
        };
        // Only the epoch the caller saw may be rebuilt.
        assert!(!s.rebuild("s", 3, T, "stale", "e2", &record).0);
        let (rebuilt, fx) = s.rebuild("s", 3, T, "e1", "e2", &record);
        assert!(rebuilt);
        assert_eq!(s.epoch(), "e2");
        let owners = s.owners();
        assert_eq!(owners.get("A1"), Some(&Owner::Booked("o1".into())));
        assert_eq!(owners.get("A2"), None, "the hold on A1 was released whole");
        assert_eq!(owners.get("B1"), Some(&Owner::Hold("h2".into())), "other holds stay");
        assert_eq!(owners.get("C1"), None, "a booking the record does not know is freed");
        assert_eq!(owners.get("D1"), Some(&Owner::Order("o2".into())));
        assert_eq!(s.hold_record("h9").unwrap().order_id.as_deref(), Some("o2"));
        let delta = fx.delta.unwrap();
        assert_eq!(delta.epoch, "e2");
        // A stale message about o1 changes nothing; the pending order's lock
        // is freed by the sweep after its expiry plus grace.
        assert!(!s.release_order("s", 4, T, "o1", "", 7, &seats(&["A1"])).0);
        assert_eq!(s.snapshot("s", 1_000 + T.order_grace_ms, T).0.taken.get("D1"), None);
    }

    #[test]
    fn an_order_lock_the_store_forgot_is_freed_after_grace() {
        let mut s = ShowSeats::default();
        s.hold("s", 0, T, "u1", "h1", &seats(&["A1"]), TTL);
        s.extend_for_order("s", 0, T, "u1", "h1", "o1", 1000);
        assert_eq!(s.snapshot("s", 1000 + T.order_grace_ms - 1, T).0.taken.len(), 1);
        assert!(s.snapshot("s", 1000 + T.order_grace_ms, T).0.taken.is_empty());
    }

    #[derive(Debug, Clone)]
    enum Action {
        Hold(u8, Vec<u8>),
        Release(u8),
        Order(u8),
        Book(u8),
        Free(u8),
        Tick(u32),
    }

    fn action() -> impl Strategy<Value = Action> {
        prop_oneof![
            (0u8..4, proptest::collection::btree_set(0u8..6, 1..4))
                .prop_map(|(u, s)| Action::Hold(u, s.into_iter().collect())),
            (0u8..4).prop_map(Action::Release),
            (0u8..4).prop_map(Action::Order),
            (0u8..4).prop_map(Action::Book),
            (0u8..4).prop_map(Action::Free),
            (0u32..400_000).prop_map(Action::Tick),
        ]
    }

    proptest! {
        /// Whatever the interleaving: versions rise by one per delta, a seat's
        /// owner is a live hold or order, every user has at most one active
        /// hold, and replaying the deltas over the start gives the state.
        #[test]
        fn deltas_replay_to_the_state(actions in proptest::collection::vec(action(), 1..60)) {
            let mut s = ShowSeats::default();
            let mut now = 0i64;
            let mut stamp = 0i64;
            let mut replay: HashMap<String, SeatStatus> = HashMap::new();
            let mut version = 0u64;
            let mut last_hold: HashMap<u8, String> = HashMap::new();
            let mut orders: HashMap<u8, (String, String, Vec<String>)> = HashMap::new();
            for (n, a) in actions.into_iter().enumerate() {
                let fx = match a {
                    Action::Hold(u, ss) => {
                        let id = format!("h{n}");
                        let list: Vec<String> = ss.iter().map(|i| format!("A{}", i + 1)).collect();
                        let (out, fx) = s.hold("s", now, T, &format!("u{u}"), &id, &list, TTL);
                        if matches!(out, HoldOutcome::Held { .. }) { last_hold.insert(u, id); }
                        fx
                    }
                    Action::Release(u) => match last_hold.get(&u) {
                        Some(h) => s.release("s", now, T, &format!("u{u}"), h).1,
                        None => Effects::default(),
                    },
                    Action::Order(u) => match last_hold.get(&u).cloned() {
                        Some(h) => {
                            let oid = format!("o{n}");
                            let (out, fx) = s.extend_for_order("s", now, T, &format!("u{u}"), &h, &oid, 600_000);
                            if let ExtendOutcome::Attached(_) = out {
                                let seats = s.hold_record(&h).unwrap().seats;
                                orders.insert(u, (oid, h, seats));
                            }
                            fx
                        }
                        None => Effects::default(),
                    },
                    Action::Book(u) => match orders.get(&u) {
                        Some((o, h, ss)) => { stamp += 1; s.book("s", now, T, o, h, stamp, ss).1 }
                        None => Effects::default(),
                    },
                    Action::Free(u) => match orders.remove(&u) {
                        Some((o, h, ss)) => { stamp += 1; s.release_order("s", now, T, &o, &h, stamp, &ss).1 }
                        None => Effects::default(),
                    },
                    Action::Tick(ms) => { now += ms as i64; s.expire("s", now, T, 1000).1 }
                };
                if let Some(d) = fx.delta {
                    prop_assert_eq!(d.version, version + 1);
                    version = d.version;
                    for c in d.changes {
                        if c.status == SeatStatus::Available { replay.remove(&c.seat_id); } else { replay.insert(c.seat_id, c.status); }
                    }
                }
                let actual: HashMap<String, SeatStatus> = s.owners().iter().map(|(k, o)| (k.clone(), o.status())).collect();
                prop_assert_eq!(&actual, &replay);
                let mut active = std::collections::HashSet::new();
                for (user, hold) in &s.users {
                    let rec = &s.holds[hold];
                    prop_assert_eq!(&rec.user, user);
                    prop_assert!(rec.status == HoldStatus::Held && rec.order_id.is_none());
                    prop_assert!(active.insert(user.clone()));
                }
                for owner in s.owners().values() {
                    if let Owner::Hold(h) = owner {
                        prop_assert_eq!(s.holds[h].status, HoldStatus::Held);
                        prop_assert!(s.holds[h].expires_ms > now);
                    }
                }
            }
        }
    }
}
