//! Holds: by seat id, best available, and given back; the sweeper's step
//! and the snapshot, which only sweep.

use super::{
    At, BestOutcome, Effects, HoldOutcome, HoldRecord, HoldStatus, Op, Owner, ReleaseOutcome, SeatSnapshot, ShowSeats,
    Swept, status_name,
};
use crate::domain::best::{self, RowPlan};

impl ShowSeats {
    /// Locks every seat for `user`, or none (`lua/seats_hold.lua`).
    pub fn hold(
        &mut self,
        at: At<'_>,
        user: &str,
        hold_id: &str,
        seats: &[String],
        ttl_ms: i64,
    ) -> (HoldOutcome, Effects) {
        let op = Op::begin_for(self, at, user);
        if op.retried(user, hold_id) {
            let (version, fx) = op.finish();
            let record = self.stored(hold_id);
            return (HoldOutcome::Held { version, record }, fx);
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
        let (version, fx) = Self::take(op, user, hold_id, seats, prev, ttl_ms);
        let record = self.stored(hold_id);
        (HoldOutcome::Held { version, record }, fx)
    }

    /// Holds the best `quantity` adjacent free seats for `user` by the rule
    /// of `domain::best`, over `rows` (in preference order), in one step;
    /// the user's own previous hold counts as free (it is released).
    pub fn hold_best(
        &mut self,
        at: At<'_>,
        user: &str,
        hold_id: &str,
        quantity: usize,
        rows: &[RowPlan],
        ttl_ms: i64,
    ) -> (BestOutcome, Effects) {
        let op = Op::begin_for(self, at, user);
        if op.retried(user, hold_id) {
            let (version, fx) = op.finish();
            let record = self.stored(hold_id);
            return (BestOutcome::Held { version, record }, fx);
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
        let (version, fx) = Self::take(op, user, hold_id, &seats, prev, ttl_ms);
        let record = self.stored(hold_id);
        (BestOutcome::Held { version, record }, fx)
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

    /// A hold as the step left it (read after the step's end, as the
    /// scripts read it after `announce`). A step never drops a record (only
    /// the sweeper's garbage collection does, past the retention), so the
    /// hold it just made or found is there.
    fn stored(&self, hold_id: &str) -> HoldRecord {
        self.record(hold_id)
            .cloned()
            .unwrap_or_else(|| panic!("hold {hold_id} has no record"))
    }

    /// The owner gives a hold back (`lua/seats_release.lua`).
    pub fn release(&mut self, at: At<'_>, user: &str, hold_id: &str) -> (ReleaseOutcome, Effects) {
        let mut op = Op::begin(self, at);
        let outcome = match op.state.record(hold_id) {
            None => ReleaseOutcome::NotFound,
            Some(rec) if rec.user != user => ReleaseOutcome::NotFound,
            Some(rec) if rec.order_id.is_some() => ReleaseOutcome::NotActive("ORDERED".into()),
            Some(rec) if rec.status != HoldStatus::Held => ReleaseOutcome::NotActive(status_name(rec.status)),
            Some(_) => {
                op.hold_end(hold_id, HoldStatus::Released, at.now);
                ReleaseOutcome::Released
            }
        };
        let (_, fx) = op.finish();
        (outcome, fx)
    }

    /// The sweeper's call (`lua/seats_expire.lua`): expiry, the waiting
    /// list served, tombstones retired and dropped as they come due.
    pub fn expire(&mut self, at: At<'_>) -> (Swept, Effects) {
        let mut op = Op::begin(self, at);
        op.serve_always = true;
        let more = op.more_due;
        let fx = op.finish().1;
        // The budgets of users who have not called for a while are full again.
        let now_us = at.now * 1000;
        self.budgets.retain(|_, tat| *tat > now_us);
        let swept = Swept {
            more,
            next_due: self.next_due(),
            tombstones: self.ended.len() as u64,
        };
        (swept, fx)
    }

    /// The state as of one version, after sweeping (`lua/seats_snapshot.lua`).
    pub fn snapshot(&mut self, at: At<'_>) -> (SeatSnapshot, Effects) {
        let (version, fx) = Op::begin(self, at).finish();
        let taken = self.owners.clone();
        let epoch = self.epoch.clone().unwrap_or_default();
        (SeatSnapshot { epoch, version, taken }, fx)
    }
}

impl Op<'_> {
    /// Whether the user has a hold under this id: a retried request,
    /// answered as the first run did.
    fn retried(&self, user: &str, hold_id: &str) -> bool {
        self.state.record(hold_id).is_some_and(|r| r.user == user)
    }
}
