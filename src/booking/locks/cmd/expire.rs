//! `lua/seats_expire.lua`: the sweeper's call on one show.
//!
//! ```text
//! KEYS: the common fourteen. ARGV: common five.
//! Reply: {expired, version, epoch, more, next, tombstones}: more is 1 when
//! holds are still due (the sweeper calls again); next is the show's next
//! deadline (ms; -1 when nothing is due ever), so the sweeper knows when to
//! come back; tombstones is how many ended holds are kept.
//! ```

use redis::{Script, ScriptInvocation};

use super::{Head, SeatCommand};
use crate::domain::seats::{At, Effects, LockTimes, ShowSeats, Swept};
use crate::error::Result;
use crate::redis::reply::ReplyReader;
use crate::redis::scripts::Scripts;

/// Expires what is due, serves the waiting list, retires and drops
/// tombstones as they come due, and says when the show is next due.
#[derive(Debug, Clone, Copy)]
pub struct Expire;

impl SeatCommand for Expire {
    type Out = Swept;

    fn name(&self) -> &'static str {
        "seats_expire"
    }

    fn script<'s>(&self, scripts: &'s Scripts) -> &'s Script {
        &scripts.expire
    }

    fn args(&self, _: &mut ScriptInvocation<'_>, _: LockTimes) {}

    fn decode(_: &Head, reply: &mut ReplyReader) -> Result<Swept> {
        let more = reply.next_flag()?;
        let next: i64 = reply.next_as()?;
        Ok(Swept {
            more,
            next_due: (next >= 0).then_some(next),
            tombstones: reply.next_as()?,
        })
    }

    fn step(&self, seats: &mut ShowSeats, at: At<'_>) -> (Swept, Effects) {
        seats.expire(at)
    }
}
