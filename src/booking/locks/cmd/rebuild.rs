//! `lua/seats_rebuild.lua`: a show's seats rebuilt from the record under a
//! new epoch, fenced by the epoch the caller saw.
//!
//! ```text
//! KEYS: the common fourteen.
//! ARGV: common five, then ARGV[6] the epoch the caller saw ("" for none),
//!       ARGV[7] the new epoch, ARGV[8] order-lock grace (ms), ARGV[9] JSON
//!       {"booked": [[seatId, orderId, stamp], ..],
//!        "pending": [{"o", "h", "u", "s", "c", "e", "t"}, ..], "asOf": µs}
//! Reply: {expired, version, epoch, rebuilt (1|0)}: 0 when the epoch is no
//! longer the one the caller saw (another node rebuilt first): nothing changed.
//! ```

use redis::{Script, ScriptInvocation};

use super::{Head, SeatCommand};
use crate::domain::seats::{At, Effects, LockTimes, RecordState, ShowSeats};
use crate::error::Result;
use crate::redis::reply::ReplyReader;
use crate::redis::scripts::Scripts;

/// Builds the show's state from `record` under `epoch`, if its epoch is
/// still `seen`; `false` when another node rebuilt first.
#[derive(Debug, Clone, Copy)]
pub struct Rebuild<'a> {
    pub seen: &'a str,
    pub epoch: &'a str,
    pub record: &'a RecordState,
}

impl SeatCommand for Rebuild<'_> {
    type Out = bool;
    const NEEDS_STATE: bool = false;
    const RECOVERS: bool = false;

    fn name(&self) -> &'static str {
        "seats_rebuild"
    }

    fn script<'s>(&self, scripts: &'s Scripts) -> &'s Script {
        &scripts.rebuild
    }

    fn args(&self, argv: &mut ScriptInvocation<'_>, times: LockTimes) {
        // Strings and numbers only: serializing it cannot fail.
        let record = serde_json::to_string(self.record).unwrap_or_default();
        argv.arg(self.seen)
            .arg(self.epoch)
            .arg(times.order_grace_ms)
            .arg(record);
    }

    fn decode(_: &Head, reply: &mut ReplyReader) -> Result<bool> {
        reply.next_flag()
    }

    fn step(&self, seats: &mut ShowSeats, at: At<'_>) -> (bool, Effects) {
        seats.rebuild(at, self.seen, self.epoch, self.record)
    }
}
