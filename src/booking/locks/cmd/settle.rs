//! `lua/seats_book.lua` and `lua/seats_release_order.lua`: the record's
//! verdict on an order applied to its seats, fenced by the order state's stamp.
//!
//! ```text
//! KEYS: the common fourteen. ARGV: common five, then ARGV[6] orderId, ARGV[7] holdId,
//!       ARGV[8] the order state's stamp (updated_at, µs), ARGV[9..] seatIds.
//! Reply: {expired, version, epoch, applied (1|0)}: 0 when a newer (or this)
//! state of the order was applied already, and nothing changed.
//! ```

use redis::{Script, ScriptInvocation};

use super::{Head, SeatCommand};
use crate::domain::seats::{At, Effects, LockTimes, ShowSeats};
use crate::error::Result;
use crate::redis::reply::ReplyReader;
use crate::redis::scripts::Scripts;

/// What the record decided for the order's seats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Booked for good (the payment was recorded).
    Book,
    /// Back on sale (failed, expired or cancelled).
    Release,
}

/// Applies the verdict to one order's seats at one state of the order
/// (`stamp`: its updated_at, µs); `false` when refused as old.
#[derive(Debug, Clone, Copy)]
pub struct Settle<'a> {
    pub verdict: Verdict,
    pub order_id: &'a str,
    pub hold_id: &'a str,
    pub stamp: i64,
    pub seats: &'a [String],
}

impl SeatCommand for Settle<'_> {
    type Out = bool;

    fn name(&self) -> &'static str {
        match self.verdict {
            Verdict::Book => "seats_book",
            Verdict::Release => "seats_release_order",
        }
    }

    fn script<'s>(&self, scripts: &'s Scripts) -> &'s Script {
        match self.verdict {
            Verdict::Book => &scripts.book,
            Verdict::Release => &scripts.release_order,
        }
    }

    fn args(&self, argv: &mut ScriptInvocation<'_>, _: LockTimes) {
        argv.arg(self.order_id).arg(self.hold_id).arg(self.stamp);
        for seat in self.seats {
            argv.arg(seat);
        }
    }

    fn decode(_: &Head, reply: &mut ReplyReader) -> Result<bool> {
        reply.next_flag()
    }

    fn step(&self, seats: &mut ShowSeats, at: At<'_>) -> (bool, Effects) {
        let (order, hold, stamp) = (self.order_id, self.hold_id, self.stamp);
        match self.verdict {
            Verdict::Book => seats.book(at, order, hold, stamp, self.seats),
            Verdict::Release => seats.release_order(at, order, hold, stamp, self.seats),
        }
    }
}
