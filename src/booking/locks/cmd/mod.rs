//! The seat engine's commands: one value per seat script, each in its own
//! file beside a copy of its script's header, holding the three things that
//! must agree with that script: its ARGV encoding, its reply's decoding, and
//! the same step on the in-process state machine (`domain::seats`). Both
//! engines run any command through one `run` (`super::SeatEngine`), so a
//! new step is one file, not a method written four times.
//!
//! Every seat script takes the common KEYS (`ShowKeys::script_keys`) and
//! ARGV (show, channel, publish command, now, retention) and answers the
//! common head `{expired, version, epoch, ...}` before its own reply.

mod expire;
mod extend;
mod hold;
mod hold_best;
mod rebuild;
mod release;
mod settle;
mod snapshot;
mod waitlist;

use redis::{Script, ScriptInvocation};

pub use expire::Expire;
pub use extend::ExtendForOrder;
pub use hold::Hold;
pub use hold_best::HoldBest;
pub use rebuild::Rebuild;
pub use release::Release;
pub use settle::{Settle, Verdict};
pub use snapshot::Snapshot;
pub use waitlist::{JoinWaitlist, LeaveWaitlist, WaitlistStanding};

use crate::domain::seats::{At, Effects, LockTimes, ShowSeats};
use crate::error::Result;
use crate::redis::reply::ReplyReader;
use crate::redis::scripts::Scripts;

/// The common head of every seat script's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Holds the script's in-line sweep expired.
    pub expired: u32,
    /// The show's version and epoch after the script.
    pub version: u64,
    pub epoch: String,
}

impl Head {
    pub fn read(reply: &mut ReplyReader) -> Result<Self> {
        Ok(Self {
            expired: reply.next_as()?,
            version: reply.next_as()?,
            epoch: reply.next_text()?,
        })
    }
}

/// One seat script and its twin step on the state machine.
pub trait SeatCommand: Sync {
    /// What the step answers.
    type Out: Send;
    /// Whether the show's state must have been built (a rebuild builds it;
    /// a read of the waiting list does not look at the seats).
    const NEEDS_STATE: bool = true;
    /// Whether `Recovering` rebuilds the show around it when its state is
    /// missing or went back in time (not around a rebuild itself).
    const RECOVERS: bool = true;

    /// The script's file name without `.lua`, for errors.
    fn name(&self) -> &'static str;

    fn script<'s>(&self, scripts: &'s Scripts) -> &'s Script;

    /// The user whose budget of seat-changing calls this spends, if any
    /// (holds, releases, waiting-list joins): charged in the same script,
    /// before it changes anything.
    fn charged(&self) -> Option<&str> {
        None
    }

    /// The ARGV after the common five, in the header's order.
    fn args(&self, argv: &mut ScriptInvocation<'_>, times: LockTimes);

    /// The reply after the common head; every item must be read.
    fn decode(head: &Head, reply: &mut ReplyReader) -> Result<Self::Out>;

    /// The same step in process.
    fn step(&self, seats: &mut ShowSeats, at: At<'_>) -> (Self::Out, Effects);
}
