//! Seat locks that rebuild themselves from the record. Postgres is the
//! truth about sales; Redis holds the fast path and can lose it (a restart
//! without persistence, a failover to a replica that lagged). This wraps an
//! engine so that every caller (booking, the seat stream, the sweepers) gets
//! a show's state rebuilt before it is used:
//!
//! - a show whose state is missing answers `StateMissing`: the state is
//!   rebuilt from the record (booked seats, and the seats of orders waiting
//!   for payment) under a new epoch, and the operation runs again;
//! - a show found at a lower version than this node has seen in the same
//!   epoch went back in time (a lagging replica took over): it is rebuilt;
//! - `rebuild` is also called directly when a payment finds its seat sold to
//!   another order, so the seat goes back to its real owner.
//!
//! Rebuilds of one show are serialized on a node and fenced across nodes by
//! the epoch (`lua/seats_rebuild.lua` only runs for the epoch it saw).

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use tokio::sync::Mutex;

use super::changed::ChangedShows;
use super::cmd::{Rebuild, Snapshot};
use super::{Reply, SeatCommand, SeatEngine};
use crate::booking::store::Records;
use crate::clock::Clock;
use crate::domain::catalog::Catalog;
use crate::domain::seats::RecordState;
use crate::error::{Error, Result};
use crate::metrics as m;

/// See `rebuild`: how far before the record is read a change counts as newer.
const READ_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

pub struct Recovering {
    inner: Arc<SeatEngine>,
    records: Arc<dyn Records>,
    clock: Clock,
    /// Per show: the epoch and the highest version this node has seen in it.
    seen: DashMap<String, (String, u64)>,
    /// Per show: held while this node rebuilds it (a tokio mutex: the
    /// rebuild awaits Postgres and the engine under it).
    rebuilding: DashMap<String, Arc<Mutex<()>>>,
    /// The shows a rebuild may build (set once the catalog is loaded): a
    /// request naming any other show must not make Redis build state, mint
    /// an epoch key or grow the maps above.
    catalog: OnceLock<Arc<Catalog>>,
    /// Shows this node's commands changed, for the sweeper and the figures.
    changed: ChangedShows,
}

/// Why a show was rebuilt, for the metric.
#[derive(Debug, Clone, Copy)]
pub enum Why {
    /// The engine had no state for it.
    Missing,
    /// It answered a version lower than seen in the same epoch.
    WentBack,
    /// A payment found its seat sold to another order.
    SeatsTaken,
    /// Redis's replication identity changed (a failover, to a replica that
    /// may have lagged): every show is rebuilt, whether or not a live node
    /// saw what the old master lost.
    Failover,
}

impl Why {
    fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::WentBack => "went_back",
            Self::SeatsTaken => "seats_taken",
            Self::Failover => "failover",
        }
    }
}

impl Recovering {
    pub fn new(inner: Arc<SeatEngine>, records: Arc<dyn Records>, clock: Clock) -> Self {
        Self {
            inner,
            records,
            clock,
            seen: DashMap::new(),
            rebuilding: DashMap::new(),
            catalog: OnceLock::new(),
            changed: ChangedShows::default(),
        }
    }

    /// From now on, only shows of `catalog` are rebuilt; any other is 404.
    pub fn only_for(&self, catalog: Arc<Catalog>) {
        let _ = self.catalog.set(catalog);
    }

    /// Rebuilds the show's state from the record, if its epoch is still the
    /// one this node knows (another node's rebuild makes this one a no-op).
    pub async fn rebuild(&self, show: &str, why: Why) -> Result<()> {
        if self.catalog.get().is_some_and(|c| c.show(show).is_none()) {
            return Err(Error::not_found("show"));
        }
        let gate = self.rebuilding.entry(show.to_owned()).or_default().clone();
        let _one_at_a_time = gate.lock().await;
        // The epoch to fence the rebuild by: after a failover, the one the
        // new master has (what this node saw may be from the old one).
        let known = self.seen.get(show).map(|s| s.0.clone());
        let seen = match (why, known) {
            (Why::Missing, _) => String::new(),
            (Why::WentBack | Why::SeatsTaken, Some(epoch)) => epoch,
            _ => match self.inner.run(show, self.clock.now_ms(), &Snapshot).await {
                Ok(r) => r.epoch,
                Err(Error::StateMissing(_)) => String::new(),
                Err(e) => return Err(e),
            },
        };
        // Changes that commit while the record is read are newer than it;
        // the margin covers a transaction's time between its clock reading
        // and its commit, so such a change is kept, never undone.
        let as_of = self.clock.now().timestamp_micros() - READ_MARGIN.as_micros() as i64;
        let mut record: RecordState = self.records.record_state(show).await?;
        record.as_of = as_of;
        // Time-ordered: a hold minted before it (`HoldId::minted_before`) was lost with the old state.
        let epoch = uuid::Uuid::now_v7().simple().to_string();
        let rebuild = Rebuild {
            seen: &seen,
            epoch: &epoch,
            record: &record,
        };
        let reply = self.inner.run(show, self.clock.now_ms(), &rebuild).await?;
        if reply.out {
            metrics::counter!(m::SEAT_STATE_REBUILDS, "reason" => why.as_str()).increment(1);
            let (booked, pending) = (record.booked.len(), record.pending.len());
            if matches!(why, Why::Missing) && booked + pending == 0 {
                // A show's first use (or one with nothing sold): routine.
                tracing::debug!(%show, %epoch, "seat state built from the record");
            } else {
                tracing::warn!(%show, reason = why.as_str(), %epoch, booked, pending, "seat state rebuilt from the record");
            }
        }
        self.seen.insert(show.to_owned(), (reply.epoch, reply.version));
        self.changed.note(show);
        Ok(())
    }

    /// Shows whose seats changed, here or (as announced) elsewhere.
    pub fn changed(&self) -> &ChangedShows {
        &self.changed
    }

    /// The clock its rebuilds read the record by.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// The epoch and the highest version this node has seen of the show.
    pub fn seen(&self, show: &str) -> Option<(String, u64)> {
        self.seen.get(show).map(|s| s.clone())
    }

    /// Notes what a reply says of the show; answers whether it went back in
    /// time. `floor` is what this node had seen when it sent the request:
    /// Redis ran the request after every reply seen by then, so a lower
    /// version in the same epoch means its data went back. (Replies to
    /// requests in flight together may arrive in any order: those are no
    /// evidence.)
    fn went_back<T>(&self, show: &str, floor: Option<(String, u64)>, reply: &Reply<T>) -> bool {
        if floor
            .as_ref()
            .is_none_or(|(epoch, version)| *epoch != reply.epoch || reply.version > *version)
        {
            // It may have new deadlines: the sweeper looks at it.
            self.changed.note(show);
        }
        let back = floor.is_some_and(|(epoch, version)| epoch == reply.epoch && reply.version < version);
        let mut entry = self
            .seen
            .entry(show.to_owned())
            .or_insert_with(|| (reply.epoch.clone(), reply.version));
        let (epoch, version) = entry.value_mut();
        if *epoch != reply.epoch || back {
            (*epoch, *version) = (reply.epoch.clone(), reply.version);
        } else {
            *version = (*version).max(reply.version);
        }
        back
    }

    /// Runs a command, rebuilding the show first if its state is missing,
    /// and after if the answer shows it went back in time.
    pub async fn run<C: SeatCommand>(&self, show: &str, now: i64, cmd: &C) -> Result<Reply<C::Out>> {
        if !C::RECOVERS {
            return self.inner.run(show, now, cmd).await;
        }
        let floor = self.seen.get(show).map(|s| s.clone());
        let reply = match self.inner.run(show, now, cmd).await {
            Err(Error::StateMissing(_)) => {
                self.rebuild(show, Why::Missing).await?;
                self.inner.run(show, now, cmd).await?
            }
            other => other?,
        };
        if self.went_back(show, floor, &reply) {
            tracing::warn!(%show, version = reply.version, "seat state went back in time (a lagging replica?)");
            self.rebuild(show, Why::WentBack).await?;
        }
        Ok(reply)
    }

    /// Drops everything kept for a show that is over, here and in the engine.
    pub async fn forget(&self, show: &str) -> Result<()> {
        self.seen.remove(show);
        self.inner.forget(show).await
    }
}

/// The engine's own housekeeping (sweeper lease, records, subscriptions)
/// needs no recovery: a `Recovering` answers it as its engine does.
impl Deref for Recovering {
    type Target = SeatEngine;

    fn deref(&self) -> &SeatEngine {
        &self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::booking::locks::memory::MemorySeatLocks;
    use crate::booking::store::memory::MemoryRecords;
    use crate::domain::catalog::demo;

    #[tokio::test]
    async fn a_show_the_catalog_does_not_know_is_never_built() {
        let clock = Clock::system();
        let catalog = Arc::new(Catalog::new(demo(clock.now().date_naive())).unwrap());
        let known = catalog.shows()[0].id.clone();
        let engine = Arc::new(SeatEngine::Memory(MemorySeatLocks::new(
            crate::app::engines::LOCK_TIMES,
        )));
        let locks = Recovering::new(engine, Arc::new(MemoryRecords::new()), clock);
        locks.only_for(catalog);
        let unknown = locks.run("no-such-show", clock.now_ms(), &Snapshot).await;
        assert!(matches!(unknown, Err(Error::NotFound(_))), "{unknown:?}");
        assert_eq!(locks.seen("no-such-show"), None);
        assert!(locks.rebuilding.is_empty(), "nothing kept for it");
        let built = locks.run(&known, clock.now_ms(), &Snapshot).await.unwrap();
        assert_eq!(locks.seen(&known), Some((built.epoch, built.version)));
    }
}
