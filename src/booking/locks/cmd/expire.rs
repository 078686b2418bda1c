//! `lua/seats_expire.lua`: the sweeper's call on one show.
//!
//! ```text
//! KEYS: the common thirteen. ARGV: common five, then ARGV[6] max records to drop.
//! Reply: {expired, version, epoch, dropped, more}: more is 1 when holds are
//! still due (the sweeper calls again).
//! ```

use redis::{Script, ScriptInvocation};

use super::{Head, SeatCommand};
use crate::booking::locks::GC_BATCH;
use crate::domain::seats::{At, Effects, LockTimes, ShowSeats};
use crate::error::Result;
use crate::redis::reply::ReplyReader;
use crate::redis::scripts::Scripts;

/// Expires what is due, serves the waiting list and drops old hold
/// records; answers `true` while holds are still due (call again).
#[derive(Debug, Clone, Copy)]
pub struct Expire;

impl SeatCommand for Expire {
    type Out = bool;

    fn name(&self) -> &'static str {
        "seats_expire"
    }

    fn script<'s>(&self, scripts: &'s Scripts) -> &'s Script {
        &scripts.expire
    }

    fn args(&self, argv: &mut ScriptInvocation<'_>, _: LockTimes) {
        argv.arg(GC_BATCH);
    }

    fn decode(_: &Head, reply: &mut ReplyReader) -> Result<bool> {
        let _dropped = reply.next_int()?;
        reply.next_flag()
    }

    fn step(&self, seats: &mut ShowSeats, at: At<'_>) -> (bool, Effects) {
        seats.expire(at, GC_BATCH)
    }
}
