//! `lua/seats_hold.lua`: lock every requested seat for one user, or none.
//!
//! ```text
//! KEYS: the common fourteen (fifteen when charged) (common.lua).
//! ARGV: common five, then ARGV[6] userId, ARGV[7] holdId, ARGV[8] ttl (ms),
//!       ARGV[9..] seatIds (validated, distinct, on the map, not UNAVAILABLE).
//! Reply: {expired, version, epoch, 1, hold record JSON (as stored, after the
//!        script's changes; its "p" names the replaced hold)} on success;
//!        {expired, version, epoch, 0, {conflicting seats}} on conflict.
//! ```

use redis::{Script, ScriptInvocation};

use super::{Head, SeatCommand};
use crate::domain::seats::{At, Effects, HoldOutcome, LockTimes, ShowSeats};
use crate::error::Result;
use crate::redis::reply::ReplyReader;
use crate::redis::scripts::Scripts;

/// Locks `seats` for `user` under `hold_id`, replacing the user's previous
/// active hold on the show in the same step.
#[derive(Debug, Clone, Copy)]
pub struct Hold<'a> {
    pub user: &'a str,
    pub hold_id: &'a str,
    pub seats: &'a [String],
    pub ttl_ms: i64,
}

impl SeatCommand for Hold<'_> {
    type Out = HoldOutcome;

    fn name(&self) -> &'static str {
        "seats_hold"
    }

    fn charged(&self) -> Option<&str> {
        Some(self.user)
    }

    fn script<'s>(&self, scripts: &'s Scripts) -> &'s Script {
        &scripts.hold
    }

    fn args(&self, argv: &mut ScriptInvocation<'_>, _: LockTimes) {
        argv.arg(self.user).arg(self.hold_id).arg(self.ttl_ms);
        for seat in self.seats {
            argv.arg(seat);
        }
    }

    fn decode(head: &Head, reply: &mut ReplyReader) -> Result<HoldOutcome> {
        Ok(if reply.next_int()? == 1 {
            HoldOutcome::Held {
                version: head.version,
                record: record(reply)?,
            }
        } else {
            HoldOutcome::Conflict {
                conflicts: reply.next_list()?,
            }
        })
    }

    fn step(&self, seats: &mut ShowSeats, at: At<'_>) -> (HoldOutcome, Effects) {
        seats.hold(at, self.user, self.hold_id, self.seats, self.ttl_ms)
    }
}

/// A hold record as a script answers it: the JSON it stores.
pub(super) fn record(reply: &mut ReplyReader) -> Result<crate::domain::seats::HoldRecord> {
    Ok(serde_json::from_str(&reply.next_text()?)?)
}
