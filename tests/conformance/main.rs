//! One suite, two engines of each kind: every case runs against the memory
//! seat locks and the Redis (Lua) ones, and against the in-process record and
//! Postgres. If the two implementations of a trait ever disagree, a case here
//! fails on one of them. One module per concern.

#[path = "../common/mod.rs"]
mod common;

mod budget;
mod catalog;
mod differential;
mod records;
mod recovery;
mod seat_locks;
mod waitlist;
mod waitroom;

pub const SHOW: &str = "show-1";
pub const TTL: i64 = 300_000;
pub const T0: i64 = 1_800_000_000_000;
