//! `lua/seats_book.lua` and `lua/seats_release_order.lua`: the record's
//! verdict on an order applied to its seats, fenced by the order state's stamp.
//!
//! ```text
//! KEYS: the common eleven. ARGV: common five, then ARGV[6] orderId, ARGV[7] holdId,
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

/// One order's seats at one state of the order (`stamp`: its updated_at, µs).
#[derive(Debug, Clone, Copy)]
pub struct OrderSeats<'a> {
    pub order_id: &'a str,
    pub hold_id: &'a str,
    pub stamp: i64,
    pub seats: &'a [String],
}

impl OrderSeats<'_> {
    fn args(&self, argv: &mut ScriptInvocation<'_>) {
        argv.arg(self.order_id).arg(self.hold_id).arg(self.stamp);
        for seat in self.seats {
            argv.arg(seat);
        }
    }
}

/// Books the order's seats for good; `false` when refused as old.
#[derive(Debug, Clone, Copy)]
pub struct Book<'a>(pub OrderSeats<'a>);

/// Frees the seats the order held or booked; `false` when refused as old.
#[derive(Debug, Clone, Copy)]
pub struct ReleaseOrder<'a>(pub OrderSeats<'a>);

impl SeatCommand for Book<'_> {
    type Out = bool;
    const NAME: &'static str = "seats_book";

    fn script(scripts: &Scripts) -> &Script {
        &scripts.book
    }

    fn args(&self, argv: &mut ScriptInvocation<'_>, _: LockTimes) {
        self.0.args(argv);
    }

    fn decode(_: &Head, reply: &mut ReplyReader) -> Result<bool> {
        reply.next_flag()
    }

    fn step(&self, seats: &mut ShowSeats, at: At<'_>) -> (bool, Effects) {
        let o = &self.0;
        seats.book(at, o.order_id, o.hold_id, o.stamp, o.seats)
    }
}

impl SeatCommand for ReleaseOrder<'_> {
    type Out = bool;
    const NAME: &'static str = "seats_release_order";

    fn script(scripts: &Scripts) -> &Script {
        &scripts.release_order
    }

    fn args(&self, argv: &mut ScriptInvocation<'_>, _: LockTimes) {
        self.0.args(argv);
    }

    fn decode(_: &Head, reply: &mut ReplyReader) -> Result<bool> {
        reply.next_flag()
    }

    fn step(&self, seats: &mut ShowSeats, at: At<'_>) -> (bool, Effects) {
        let o = &self.0;
        seats.release_order(at, o.order_id, o.hold_id, o.stamp, o.seats)
    }
}
