//! The show's waiting list for returned seats, as part of its seat state:
//! seats that come back are offered to waiters in the same step that frees
//! them, so no other shopper ever sees them available while a waiter can
//! be served. `lua/common.lua` (`serve`) and `lua/waitlist_*.lua` follow
//! this step for step; the conformance and differential tests hold them
//! together.
//!
//! The rule: whenever a step frees a seat, the first waiter (in order of
//! arrival) whose quantity the free seats can serve gets an ordinary hold
//! of that many seats (`best::pick_offer`), with the offer's TTL, and
//! leaves the list; repeated while anyone can be served. A waiter asking
//! for more seats than are free is passed over, not skipped for good.

use std::collections::{BTreeMap, HashMap};

use super::{At, Effects, HoldStatus, Op, SeatStatus, ShowSeats};
use crate::domain::best::{self, RowPlan};

/// At most this many offers in one step (each is O(seats of the show) to
/// pick), so no single step runs unbounded.
pub const MAX_OFFERS_PER_STEP: usize = 32;

/// With anyone waiting, a step's sweep frees at most this many seats; the
/// holds left due are freed by the next step or the sweeper's next call.
/// No waiter fits the seats free before a step (else they would have been
/// served), so a step needs at most one offer per seat it frees: the
/// sweep's budget plus the seats of the hold or order the step itself
/// ends (`MAX_SEATS_PER_HOLD`, 10 by default) stay within
/// `MAX_OFFERS_PER_STEP`, and a burst of expiries is served in turns
/// rather than published AVAILABLE for want of room in one step.
pub const SWEEP_BUDGET_WITH_WAITERS: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Waiter {
    seq: u64,
    quantity: usize,
    /// The id the offer's hold will have, minted by the node when the
    /// waiter joined (the scripts cannot mint unguessable ids).
    offer_id: String,
}

/// What a show keeps for its waiting list (`KEYS[9]` and `KEYS[10]` of
/// the seat scripts).
#[derive(Debug, Default)]
pub struct Waitlist {
    order: BTreeMap<u64, String>,
    waiters: HashMap<String, Waiter>,
    /// User → the hold id of their latest offer.
    offers: HashMap<String, String>,
    seq: u64,
    /// The show's rows in preference order, stored by the first join (the
    /// steps that free seats need them and are not given them).
    plan: Option<Vec<RowPlan>>,
    offer_ttl_ms: i64,
    stats: WaitStats,
}

/// The waiting list's figures: how long it is and what became of offers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaitStats {
    pub length: u64,
    pub made: u64,
    pub taken: u64,
    pub expired: u64,
    pub declined: u64,
}

/// How an offer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfferEnd {
    /// The waiter turned it into this order.
    Accepted(String),
    /// Its TTL ran out.
    Expired,
    /// The waiter gave it back (left the list, released it, or held other seats).
    Released,
}

/// Where a shopper stands on a show's waiting list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitStanding {
    Waiting {
        position: u64,
        quantity: usize,
    },
    Offered {
        hold_id: String,
        seats: Vec<String>,
        expires_ms: i64,
    },
    /// Their last offer is over.
    Ended {
        hold_id: String,
        seats: Vec<String>,
        end: OfferEnd,
    },
    None,
}

/// What a join did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitJoin {
    /// A new place at the end of the list.
    Joined(WaitStanding),
    /// Already waiting or holding an offer: where they stand, unchanged.
    Already(WaitStanding),
    /// Enough seats are free to buy now (`free` of them): not joined.
    SeatsAvailable { free: usize },
}

impl Waitlist {
    /// The first waiter (by arrival) wanting at most `free` seats, passing
    /// over `except`.
    fn first_fitting(&self, free: usize, except: Option<&str>) -> Option<(String, Waiter)> {
        self.order
            .values()
            .find(|u| Some(u.as_str()) != except && self.waiters[*u].quantity <= free)
            .map(|u| (u.clone(), self.waiters[u].clone()))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    fn remove(&mut self, user: &str) -> Option<Waiter> {
        let w = self.waiters.remove(user)?;
        self.order.remove(&w.seq);
        Some(w)
    }
}

impl Op<'_> {
    /// Free seats of the show, row by row in preference order.
    fn free_rows(&self, plan: &[RowPlan]) -> Vec<Vec<bool>> {
        plan.iter()
            .map(|r| r.free(|seat| !self.state.owners.contains_key(seat)))
            .collect()
    }

    /// Offers freed seats to waiters (see the module's rule). Runs at the
    /// end of every step, before its delta is made (an offered seat's
    /// change is HELD, never AVAILABLE), and in a request for seats also
    /// right after the sweep, before the request takes any. The step's
    /// budget of offers is checked before each.
    pub(super) fn serve(&mut self) {
        let freed = self.changes.status.values().any(|s| *s == SeatStatus::Available);
        if !(freed || self.serve_always) || self.state.waitlist.waiters.is_empty() {
            return;
        }
        let Some(plan) = self.state.waitlist.plan.clone() else {
            return;
        };
        let ttl = self.state.waitlist.offer_ttl_ms;
        while self.offers.len() < MAX_OFFERS_PER_STEP {
            let free = self.free_rows(&plan);
            let total = free.iter().flatten().filter(|f| **f).count();
            if total == 0 {
                return;
            }
            let Some((user, waiter)) = self.state.waitlist.first_fitting(total, self.caller) else {
                return;
            };
            self.state.waitlist.remove(&user);
            let Some(picks) = best::pick_offer(&free, waiter.quantity) else {
                return;
            };
            let seats: Vec<String> = picks.into_iter().map(|(r, k)| plan[r].seat(k)).collect();
            let prev = self.state.users.get(&user).cloned();
            self.lock(&user, &waiter.offer_id, &seats, prev, ttl, true);
            let wl = &mut self.state.waitlist;
            wl.offers.insert(user.clone(), waiter.offer_id);
            wl.stats.made += 1;
            self.offers.push((user, self.now + ttl));
        }
    }

    /// An offer's hold ended: count how.
    pub(super) fn offer_ended(&mut self, status: HoldStatus) {
        let stats = &mut self.state.waitlist.stats;
        match status {
            HoldStatus::Expired => stats.expired += 1,
            HoldStatus::Released => stats.declined += 1,
            HoldStatus::Held => {}
        }
    }

    pub(super) fn offer_taken(&mut self) {
        self.state.waitlist.stats.taken += 1;
    }

    fn free_count(&self, plan: &[RowPlan]) -> usize {
        self.free_rows(plan).iter().flatten().filter(|f| **f).count()
    }
}

impl ShowSeats {
    /// Where `user` stands on the waiting list at `now` (no step is taken:
    /// an offer past its TTL reads as ended before the sweep moves it on).
    pub fn wait_standing(&self, now: i64, user: &str) -> WaitStanding {
        let wl = &self.waitlist;
        if let Some(w) = wl.waiters.get(user) {
            let position = wl.order.range(..=w.seq).count() as u64;
            return WaitStanding::Waiting {
                position,
                quantity: w.quantity,
            };
        }
        let Some(hold_id) = wl.offers.get(user) else {
            return WaitStanding::None;
        };
        let Some(rec) = self.record(hold_id) else {
            return WaitStanding::None;
        };
        let (hold_id, seats) = (hold_id.clone(), rec.seats.clone());
        if let Some(order) = &rec.order_id {
            return WaitStanding::Ended {
                hold_id,
                seats,
                end: OfferEnd::Accepted(order.clone()),
            };
        }
        match rec.status_at(now) {
            HoldStatus::Held => WaitStanding::Offered {
                hold_id,
                seats,
                expires_ms: rec.expires_ms,
            },
            HoldStatus::Expired => WaitStanding::Ended {
                hold_id,
                seats,
                end: OfferEnd::Expired,
            },
            HoldStatus::Released => WaitStanding::Ended {
                hold_id,
                seats,
                end: OfferEnd::Released,
            },
        }
    }

    /// Joins the waiting list (`lua/waitlist_join.lua`): a shopper already
    /// waiting or holding a live offer keeps where they stand; with
    /// `quantity` seats free now, nobody joins (buy them instead).
    pub fn wait_join(
        &mut self,
        at: At<'_>,
        user: &str,
        quantity: usize,
        offer_id: &str,
        plan: &[RowPlan],
        offer_ttl_ms: i64,
    ) -> (WaitJoin, Effects) {
        let now = at.now;
        let mut op = Op::begin(self, at);
        {
            let wl = &mut op.state.waitlist;
            if wl.plan.is_none() {
                wl.plan = Some(plan.to_vec());
            }
            wl.offer_ttl_ms = offer_ttl_ms;
        }
        // The sweep may have freed seats: they go to waiters first.
        op.serve();
        let standing = op.state.wait_standing(now, user);
        let outcome = match standing {
            WaitStanding::Waiting { .. } | WaitStanding::Offered { .. } => WaitJoin::Already(standing),
            _ => {
                let free = op.free_count(plan);
                if free >= quantity {
                    WaitJoin::SeatsAvailable { free }
                } else {
                    let wl = &mut op.state.waitlist;
                    wl.seq += 1;
                    let seq = wl.seq;
                    wl.order.insert(seq, user.to_owned());
                    wl.waiters.insert(
                        user.to_owned(),
                        Waiter {
                            seq,
                            quantity,
                            offer_id: offer_id.to_owned(),
                        },
                    );
                    WaitJoin::Joined(op.state.wait_standing(now, user))
                }
            }
        };
        let (_, fx) = op.finish();
        (outcome, fx)
    }

    /// Leaves the waiting list (`lua/waitlist_leave.lua`): a waiter leaves
    /// their place; a live offer is given back, and its seats go to the
    /// next waiter in the same step. Answers where they stood, or `None`
    /// when they were neither waiting nor offered.
    pub fn wait_leave(&mut self, at: At<'_>, user: &str) -> (WaitStanding, Effects) {
        let now = at.now;
        let mut op = Op::begin(self, at);
        let standing = op.state.wait_standing(now, user);
        let left = match &standing {
            WaitStanding::Waiting { .. } => {
                op.state.waitlist.remove(user);
                standing
            }
            WaitStanding::Offered { hold_id, .. } => {
                let id = hold_id.clone();
                op.hold_end(&id, HoldStatus::Released, now);
                standing
            }
            _ => WaitStanding::None,
        };
        let (_, fx) = op.finish();
        (left, fx)
    }

    pub fn wait_stats(&self) -> WaitStats {
        WaitStats {
            length: self.waitlist.waiters.len() as u64,
            ..self.waitlist.stats
        }
    }
}
