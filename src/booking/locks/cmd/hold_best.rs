//! `lua/seats_hold_best.lua`: best available, picked and locked in one step.
//!
//! ```text
//! KEYS: the common fourteen (fifteen when charged) (common.lua).
//! ARGV: common five, then ARGV[6] userId, ARGV[7] holdId, ARGV[8] ttl (ms),
//!       ARGV[9] quantity, then per row in preference order: label, seats,
//!       unavailable seat numbers ("3,7" or "").
//! Reply: {expired, version, epoch, 1, hold record JSON (as stored, after the
//!        script's changes: its "s" are the seats picked)} on success;
//!        {expired, version, epoch, 2, largestBlock} when no row has room.
//! ```

use redis::{Script, ScriptInvocation};

use super::{Head, SeatCommand};
use crate::domain::best::RowPlan;
use crate::domain::seats::{At, BestOutcome, Effects, LockTimes, ShowSeats};
use crate::error::Result;
use crate::redis::reply::ReplyReader;
use crate::redis::scripts::Scripts;

/// Holds the best block of `quantity` adjacent free seats over `rows` (the
/// show's plan, in preference order) for `user`, releasing their previous hold.
#[derive(Debug, Clone, Copy)]
pub struct HoldBest<'a> {
    pub user: &'a str,
    pub hold_id: &'a str,
    pub quantity: usize,
    pub rows: &'a [RowPlan],
    pub ttl_ms: i64,
}

impl SeatCommand for HoldBest<'_> {
    type Out = BestOutcome;

    fn name(&self) -> &'static str {
        "seats_hold_best"
    }

    fn charged(&self) -> Option<&str> {
        Some(self.user)
    }

    fn script<'s>(&self, scripts: &'s Scripts) -> &'s Script {
        &scripts.hold_best
    }

    fn args(&self, argv: &mut ScriptInvocation<'_>, _: LockTimes) {
        argv.arg(self.user)
            .arg(self.hold_id)
            .arg(self.ttl_ms)
            .arg(self.quantity);
        for row in self.rows {
            argv.arg(&row.row).arg(row.seats).arg(row.unavailable_list());
        }
    }

    fn decode(head: &Head, reply: &mut ReplyReader) -> Result<BestOutcome> {
        Ok(if reply.next_int()? == 1 {
            BestOutcome::Held {
                version: head.version,
                record: super::hold::record(reply)?,
            }
        } else {
            BestOutcome::NotEnough {
                largest_block: reply.next_as()?,
            }
        })
    }

    fn step(&self, seats: &mut ShowSeats, at: At<'_>) -> (BestOutcome, Effects) {
        seats.hold_best(at, self.user, self.hold_id, self.quantity, self.rows, self.ttl_ms)
    }
}
