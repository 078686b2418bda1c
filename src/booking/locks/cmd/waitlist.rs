//! The waiting list's scripts: `lua/waitlist_join.lua`,
//! `lua/waitlist_leave.lua` and `lua/waitlist_standing.lua`.
//!
//! ```text
//! KEYS: the common fourteen (common.lua).
//! waitlist_join     ARGV: common five, then ARGV[6] userId, ARGV[7] quantity,
//!                   ARGV[8] the hold id the waiter's offer will have, ARGV[9] an
//!                   offer's TTL (ms), ARGV[10] the show's plan (JSON
//!                   [[label, seats, "3,7"], ...], rows in preference order).
//!                   Reply: {expired, version, epoch, "JOINED" | "ALREADY", standing...}
//!                   or {expired, version, epoch, "SEATS_AVAILABLE", free}.
//! waitlist_leave    ARGV: common five, then ARGV[6] userId.
//!                   Reply: {expired, version, epoch, standing...}.
//! waitlist_standing ARGV: common five, then ARGV[6] userId (a read: no sweep).
//!                   Reply: {0, version, epoch, standing...}.
//! standing (common.lua): {"WAITING", position, quantity}
//!                   | {"OFFERED", holdId, expiresAt, {seats}}
//!                   | {"ENDED", holdId, "ACCEPTED" | "EXPIRED" | "RELEASED", orderId or "", {seats}}
//!                   | {"NONE"}
//! ```

use redis::{Script, ScriptInvocation};

use super::{Head, SeatCommand};
use crate::domain::best::RowPlan;
use crate::domain::seats::{At, Effects, LockTimes, OfferEnd, ShowSeats, WaitJoin, WaitStanding};
use crate::error::Result;
use crate::redis::reply::ReplyReader;
use crate::redis::scripts::Scripts;

/// Joins the show's waiting list for `quantity` seats; `offer_id` is the
/// hold id the waiter's offer will have, `rows` the show's plan.
#[derive(Debug, Clone, Copy)]
pub struct JoinWaitlist<'a> {
    pub user: &'a str,
    pub quantity: usize,
    pub offer_id: &'a str,
    pub rows: &'a [RowPlan],
    pub offer_ttl_ms: i64,
}

/// Leaves the list, giving back a live offer; answers where the user stood.
#[derive(Debug, Clone, Copy)]
pub struct LeaveWaitlist<'a> {
    pub user: &'a str,
}

/// Where the user stands on the list (a read: no step).
#[derive(Debug, Clone, Copy)]
pub struct WaitlistStanding<'a> {
    pub user: &'a str,
}

impl SeatCommand for JoinWaitlist<'_> {
    type Out = WaitJoin;

    fn name(&self) -> &'static str {
        "waitlist_join"
    }

    fn charged(&self) -> Option<&str> {
        Some(self.user)
    }

    fn script<'s>(&self, scripts: &'s Scripts) -> &'s Script {
        &scripts.wait_join
    }

    fn args(&self, argv: &mut ScriptInvocation<'_>, _: LockTimes) {
        argv.arg(self.user)
            .arg(self.quantity)
            .arg(self.offer_id)
            .arg(self.offer_ttl_ms)
            .arg(plan_json(self.rows));
    }

    fn decode(_: &Head, reply: &mut ReplyReader) -> Result<WaitJoin> {
        Ok(match reply.next_text()?.as_str() {
            "JOINED" => WaitJoin::Joined(standing(reply)?),
            "ALREADY" => WaitJoin::Already(standing(reply)?),
            _ => WaitJoin::SeatsAvailable { free: reply.next_as()? },
        })
    }

    fn step(&self, seats: &mut ShowSeats, at: At<'_>) -> (WaitJoin, Effects) {
        seats.wait_join(
            at,
            self.user,
            self.quantity,
            self.offer_id,
            self.rows,
            self.offer_ttl_ms,
        )
    }
}

impl SeatCommand for LeaveWaitlist<'_> {
    type Out = WaitStanding;

    fn name(&self) -> &'static str {
        "waitlist_leave"
    }

    fn script<'s>(&self, scripts: &'s Scripts) -> &'s Script {
        &scripts.wait_leave
    }

    fn args(&self, argv: &mut ScriptInvocation<'_>, _: LockTimes) {
        argv.arg(self.user);
    }

    fn decode(_: &Head, reply: &mut ReplyReader) -> Result<WaitStanding> {
        standing(reply)
    }

    fn step(&self, seats: &mut ShowSeats, at: At<'_>) -> (WaitStanding, Effects) {
        seats.wait_leave(at, self.user)
    }
}

impl SeatCommand for WaitlistStanding<'_> {
    type Out = WaitStanding;
    // A read of the list's own keys: it needs no seat state.
    const NEEDS_STATE: bool = false;
    const RECOVERS: bool = false;

    fn name(&self) -> &'static str {
        "waitlist_standing"
    }

    fn script<'s>(&self, scripts: &'s Scripts) -> &'s Script {
        &scripts.wait_standing
    }

    fn args(&self, argv: &mut ScriptInvocation<'_>, _: LockTimes) {
        argv.arg(self.user);
    }

    fn decode(_: &Head, reply: &mut ReplyReader) -> Result<WaitStanding> {
        standing(reply)
    }

    fn step(&self, seats: &mut ShowSeats, at: At<'_>) -> (WaitStanding, Effects) {
        (seats.wait_standing(at.now, self.user), Effects::default())
    }
}

/// A standing, as `lua/common.lua`'s `standing` answers it.
fn standing(reply: &mut ReplyReader) -> Result<WaitStanding> {
    Ok(match reply.next_text()?.as_str() {
        "WAITING" => WaitStanding::Waiting {
            position: reply.next_as()?,
            quantity: reply.next_as()?,
        },
        "OFFERED" => WaitStanding::Offered {
            hold_id: reply.next_text()?,
            expires_ms: reply.next_as()?,
            seats: reply.next_list()?,
        },
        "ENDED" => {
            let hold_id = reply.next_text()?;
            let how = reply.next_text()?;
            let order = reply.next_text()?;
            let end = match how.as_str() {
                "ACCEPTED" => OfferEnd::Accepted(order),
                "RELEASED" => OfferEnd::Released,
                _ => OfferEnd::Expired,
            };
            WaitStanding::Ended {
                hold_id,
                end,
                seats: reply.next_list()?,
            }
        }
        _ => WaitStanding::None,
    })
}

/// A show's plan as the waiting-list scripts keep it:
/// `[[label, seats, "unavailable numbers"], ...]`.
fn plan_json(rows: &[RowPlan]) -> String {
    let rows: Vec<(&str, u16, String)> = rows
        .iter()
        .map(|r| (r.row.as_str(), r.seats, r.unavailable_list()))
        .collect();
    // Strings and numbers only: serializing cannot fail.
    serde_json::to_string(&rows).unwrap_or_default()
}
