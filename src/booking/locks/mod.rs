//! Seat locks: the fast path of every hold. One set of commands (`cmd`),
//! each a seat script and its twin step on the state machine, run by either
//! engine: `redis` (Lua scripts, shared by every node) or `memory` (in
//! process, the embedded default). `tests/conformance` runs the same cases
//! against both; `recovering` rebuilds a show's state around any command.
//!
//! Engines own the lock state and publish every change; they know nothing of
//! orders, catalogs or HTTP.

pub mod changed;
pub mod cmd;
mod engine;
pub mod memory;
pub mod recovering;
pub mod redis;

pub use cmd::SeatCommand;
pub use engine::{Due, SeatEngine};

/// An engine's answer: the outcome, the show's version and epoch after the
/// operation, and how many holds its in-line sweep expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<T> {
    pub out: T,
    pub version: u64,
    pub epoch: String,
    pub expired: u32,
}

impl<T> Reply<T> {
    /// The same answer with its outcome mapped.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Reply<U> {
        Reply {
            out: f(self.out),
            version: self.version,
            epoch: self.epoch,
            expired: self.expired,
        }
    }
}

/// Deltas a subscriber of the memory engine may fall behind by before it
/// misses some; it then sees a version gap and re-reads a snapshot.
pub const EVENT_BUFFER: usize = 1024;
