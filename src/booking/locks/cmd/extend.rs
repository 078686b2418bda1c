//! `lua/seats_extend_for_order.lua`: turn an active hold into an order's lock.
//!
//! ```text
//! KEYS: the common fourteen. ARGV: common five, then ARGV[6] userId, ARGV[7] holdId,
//!       ARGV[8] orderId, ARGV[9] order ttl (ms), ARGV[10] grace (ms).
//! Reply: {expired, version, epoch, "ATTACHED", orderId, orderExpiresAt, createdAt}
//!      | {expired, version, epoch, "EXISTING", orderId, orderExpiresAt, createdAt}
//!      | {expired, version, epoch, "NOT_FOUND"} | {expired, version, epoch, "EXPIRED"}
//!      | {expired, version, epoch, "NOT_ACTIVE", status}
//! ```

use redis::{Script, ScriptInvocation};

use super::{Head, SeatCommand};
use crate::domain::seats::{At, Effects, ExtendOutcome, LockTimes, OrderLock, ShowSeats};
use crate::error::Result;
use crate::redis::reply::ReplyReader;
use crate::redis::scripts::Scripts;

/// Turns the user's active hold into the lock of order `order_id` (or
/// answers the order it already became).
#[derive(Debug, Clone, Copy)]
pub struct ExtendForOrder<'a> {
    pub user: &'a str,
    pub hold_id: &'a str,
    pub order_id: &'a str,
    pub order_ttl_ms: i64,
}

impl SeatCommand for ExtendForOrder<'_> {
    type Out = ExtendOutcome;

    fn name(&self) -> &'static str {
        "seats_extend_for_order"
    }

    fn script<'s>(&self, scripts: &'s Scripts) -> &'s Script {
        &scripts.extend_for_order
    }

    fn args(&self, argv: &mut ScriptInvocation<'_>, times: LockTimes) {
        argv.arg(self.user)
            .arg(self.hold_id)
            .arg(self.order_id)
            .arg(self.order_ttl_ms)
            .arg(times.order_grace_ms);
    }

    fn decode(_: &Head, reply: &mut ReplyReader) -> Result<ExtendOutcome> {
        Ok(match reply.next_text()?.as_str() {
            "ATTACHED" => ExtendOutcome::Attached(order_lock(reply)?),
            "EXISTING" => ExtendOutcome::Existing(order_lock(reply)?),
            "NOT_FOUND" => ExtendOutcome::NotFound,
            "EXPIRED" => ExtendOutcome::Expired,
            _ => ExtendOutcome::NotActive(reply.next_text()?),
        })
    }

    fn step(&self, seats: &mut ShowSeats, at: At<'_>) -> (ExtendOutcome, Effects) {
        seats.extend_for_order(at, self.user, self.hold_id, self.order_id, self.order_ttl_ms)
    }
}

fn order_lock(reply: &mut ReplyReader) -> Result<OrderLock> {
    Ok(OrderLock {
        order_id: reply.next_text()?,
        expires_ms: reply.next_as()?,
        created_ms: reply.next_as()?,
    })
}
