//! `lua/seats_snapshot.lua`: the show's seats as of one version (sweeps first).
//!
//! ```text
//! KEYS: the common fourteen (common.lua). ARGV: common five.
//! Reply: {expired, version, epoch, {seatId, owner, seatId, owner, ...}}
//! ```

use std::collections::HashMap;

use redis::{Script, ScriptInvocation};

use super::{Head, SeatCommand};
use crate::domain::seats::{At, Effects, LockTimes, Owner, SeatSnapshot, ShowSeats};
use crate::error::{Error, Result};
use crate::redis::reply::ReplyReader;
use crate::redis::scripts::Scripts;

/// Every taken seat and its owner, as of one version.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot;

impl SeatCommand for Snapshot {
    type Out = SeatSnapshot;

    fn name(&self) -> &'static str {
        "seats_snapshot"
    }

    fn script<'s>(&self, scripts: &'s Scripts) -> &'s Script {
        &scripts.snapshot
    }

    fn args(&self, _: &mut ScriptInvocation<'_>, _: LockTimes) {}

    fn decode(head: &Head, reply: &mut ReplyReader) -> Result<SeatSnapshot> {
        let flat = reply.next_list()?;
        let mut taken = HashMap::with_capacity(flat.len() / 2);
        for pair in flat.chunks_exact(2) {
            let owner = Owner::parse(&pair[1]).ok_or_else(|| Error::Internal(format!("seat owner {:?}", pair[1])))?;
            taken.insert(pair[0].clone(), owner);
        }
        Ok(SeatSnapshot {
            epoch: head.epoch.clone(),
            version: head.version,
            taken,
        })
    }

    fn step(&self, seats: &mut ShowSeats, at: At<'_>) -> (SeatSnapshot, Effects) {
        seats.snapshot(at)
    }
}
