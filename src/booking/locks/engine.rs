//! The seat engine: Redis (a single Redis or a Cluster: the same scripts)
//! or in process. A closed set, so a command runs through one `match`, and
//! each engine's housekeeping (sweeper lease, records, subscriptions) is
//! answered by the engine that keeps it.

use futures::StreamExt;
use futures::stream::BoxStream;

use super::memory::MemorySeatLocks;
use super::redis::RedisSeatLocks;
use super::{Reply, SeatCommand};
use crate::domain::seats::{HoldRecord, SeatDelta, WaitStats};
use crate::error::Result;

/// When a show next needs the sweeper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Its state is missing: now (the pass rebuilds it).
    Now,
    /// At this time (ms).
    At(i64),
    /// Nothing will come due until something changes.
    Never,
}

pub enum SeatEngine {
    Memory(MemorySeatLocks),
    Redis(RedisSeatLocks),
}

impl SeatEngine {
    /// Runs one command on the show at `now` (ms, from the caller, so the
    /// same cases run on both engines). A show whose state was never built,
    /// or was lost, answers `Error::StateMissing` to every command that
    /// needs it (`recovering::Recovering` rebuilds it and runs it again).
    pub async fn run<C: SeatCommand>(&self, show: &str, now: i64, cmd: &C) -> Result<Reply<C::Out>> {
        match self {
            Self::Memory(m) => m.run(show, now, cmd),
            Self::Redis(r) => r.run(show, now, cmd).await,
        }
    }

    /// Whether `node` sweeps this round. One node at a time sweeps every
    /// show (a lease of `ttl_ms`, renewed by its holder), so sweeping costs
    /// the shared engine the same with one node or ten. One process is
    /// always its own sweeper.
    pub async fn sweep_turn(&self, node: &str, ttl_ms: i64) -> Result<bool> {
        match self {
            Self::Memory(_) => Ok(true),
            Self::Redis(r) => r.sweep_turn(node, ttl_ms).await,
        }
    }

    /// Hands the sweeper's lease back at shutdown, if `node` holds it.
    pub async fn sweep_release(&self, node: &str) -> Result<()> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::Redis(r) => r.sweep_release(node).await,
        }
    }

    /// When the show next needs the sweeper: its earliest deadline (a
    /// hold's, an order lock's, or the tombstones' next step), or at once
    /// when it has no state (the pass rebuilds it). Read without a script.
    pub async fn next_due(&self, show: &str) -> Result<Due> {
        match self {
            Self::Memory(m) => Ok(m.next_due(show)),
            Self::Redis(r) => r.next_due(show).await,
        }
    }

    /// The show's epoch and version, read together in one light command
    /// (no script, no sweep); `None` when it has no state.
    pub async fn position(&self, show: &str) -> Result<Option<(String, u64)>> {
        match self {
            Self::Memory(m) => Ok(m.position(show)),
            Self::Redis(r) => r.position(show).await,
        }
    }

    /// Redis's replication identity and the one the seat state was last
    /// checked under (see `RedisSeatLocks::identity`); `None` in process.
    pub async fn identity(&self) -> Result<Option<(String, Option<String>)>> {
        match self {
            Self::Memory(_) => Ok(None),
            Self::Redis(r) => r.identity().await,
        }
    }

    pub async fn set_identity(&self, replid: &str) -> Result<()> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::Redis(r) => r.set_identity(replid).await,
        }
    }

    /// Tells the other nodes these shows changed here (one message).
    pub async fn announce_changed(&self, shows: &[String]) -> Result<()> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::Redis(r) => r.announce_changed(shows).await,
        }
    }

    /// The shows other nodes announce as changed; a stream that ends means
    /// the subscription was lost and must be taken again. In process there
    /// are no other nodes: it never yields.
    pub async fn changed_elsewhere(&self) -> Result<BoxStream<'static, Vec<String>>> {
        match self {
            Self::Memory(_) => Ok(futures::stream::pending().boxed()),
            Self::Redis(r) => r.changed_elsewhere().await,
        }
    }

    /// The waiting list's length and what became of its offers.
    pub async fn wait_stats(&self, show: &str) -> Result<WaitStats> {
        match self {
            Self::Memory(m) => Ok(m.wait_stats(show)),
            Self::Redis(r) => r.wait_stats(show).await,
        }
    }

    pub async fn hold_record(&self, show: &str, hold_id: &str) -> Result<Option<HoldRecord>> {
        match self {
            Self::Memory(m) => Ok(m.hold_record(show, hold_id)),
            Self::Redis(r) => r.hold_record(show, hold_id).await,
        }
    }

    /// Drops everything kept for a show that is over (its keys in Redis).
    pub async fn forget(&self, show: &str) -> Result<()> {
        match self {
            Self::Memory(m) => {
                m.forget(show);
                Ok(())
            }
            Self::Redis(r) => r.forget(show).await,
        }
    }

    /// The show's deltas from now on, in version order. Callers share one
    /// subscription per show per node (`live::feed`); a stream that ends means
    /// the subscription was lost and must be taken again.
    pub async fn subscribe(&self, show: &str) -> Result<BoxStream<'static, SeatDelta>> {
        match self {
            Self::Memory(m) => Ok(m.subscribe(show)),
            Self::Redis(r) => r.subscribe(show).await,
        }
    }

    /// Drops this node's subscription to the show.
    pub async fn unsubscribe(&self, show: &str) -> Result<()> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::Redis(r) => r.unsubscribe(show).await,
        }
    }

    pub async fn ping(&self) -> Result<()> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::Redis(r) => r.ping().await,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
            Self::Redis(_) => "redis",
        }
    }
}
