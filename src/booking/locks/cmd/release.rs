//! `lua/seats_release.lua`: the owner gives a hold back before it expires.
//!
//! ```text
//! KEYS: the common fourteen (fifteen when charged). ARGV: common five, then ARGV[6] userId, ARGV[7] holdId.
//! Reply: {expired, version, epoch, "RELEASED"} | {expired, version, epoch, "NOT_FOUND"}
//!        | {expired, version, epoch, "NOT_ACTIVE", status} where status is the hold's
//!        status, or "ORDERED" when it has become an order.
//! ```

use redis::{Script, ScriptInvocation};

use super::{Head, SeatCommand};
use crate::domain::seats::{At, Effects, LockTimes, ReleaseOutcome, ShowSeats};
use crate::error::Result;
use crate::redis::reply::ReplyReader;
use crate::redis::scripts::Scripts;

#[derive(Debug, Clone, Copy)]
pub struct Release<'a> {
    pub user: &'a str,
    pub hold_id: &'a str,
}

impl SeatCommand for Release<'_> {
    type Out = ReleaseOutcome;

    fn name(&self) -> &'static str {
        "seats_release"
    }

    fn charged(&self) -> Option<&str> {
        Some(self.user)
    }

    fn script<'s>(&self, scripts: &'s Scripts) -> &'s Script {
        &scripts.release
    }

    fn args(&self, argv: &mut ScriptInvocation<'_>, _: LockTimes) {
        argv.arg(self.user).arg(self.hold_id);
    }

    fn decode(_: &Head, reply: &mut ReplyReader) -> Result<ReleaseOutcome> {
        Ok(match reply.next_text()?.as_str() {
            "RELEASED" => ReleaseOutcome::Released,
            "NOT_FOUND" => ReleaseOutcome::NotFound,
            _ => ReleaseOutcome::NotActive(reply.next_text()?),
        })
    }

    fn step(&self, seats: &mut ShowSeats, at: At<'_>) -> (ReleaseOutcome, Effects) {
        seats.release(at, self.user, self.hold_id)
    }
}
