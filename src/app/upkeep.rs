//! The node's housekeeping, each a bounded loop:
//! - the clock: this node's offset to Redis `TIME`, so every node agrees on
//!   when holds, orders and admissions end;
//! - clean-up: idempotency keys and relayed outbox events past their
//!   retention, in bounded batches; the seat keys of shows long over.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use tokio_util::sync::CancellationToken;

use crate::booking::locks::recovering::Recovering;
use crate::booking::store::Records;
use crate::clock::{self, Clock};
use crate::domain::catalog::Catalog;
use crate::error::Error;
use crate::redis::RedisHandle;
use crate::waitroom::rooms::Rooms;

/// How often the node measures its clock against Redis.
pub const CLOCK_EVERY: Duration = Duration::from_secs(10);
/// A skew worth a warning in the logs.
const SKEW_WARN_MS: i64 = 500;
/// How often the clean-up runs, and how many rows one pass deletes per table.
pub const CLEANUP_EVERY: Duration = Duration::from_secs(60);
const PRUNE_BATCH: i64 = 1_000;
/// An `Idempotency-Key` answers retries for a day.
pub const IDEMPOTENCY_RETENTION: TimeDelta = TimeDelta::days(1);
/// Relayed events stay a week for consumers that replay.
pub const OUTBOX_RETENTION: TimeDelta = TimeDelta::days(7);
/// A show's seat keys go this long after it started (its tickets are in Postgres).
pub const SHOW_KEYS_RETENTION: TimeDelta = TimeDelta::days(2);

/// Measures the offset once: `TIME` halfway through the round trip.
pub async fn sync_clock(redis: &RedisHandle) -> crate::error::Result<i64> {
    let (sent, local_ms) = (Instant::now(), chrono::Utc::now().timestamp_millis());
    let remote = redis.time_ms().await?;
    let half_trip = sent.elapsed().as_millis() as i64 / 2;
    let offset = remote - (local_ms + half_trip);
    clock::set_offset_ms(offset);
    if offset.abs() > SKEW_WARN_MS {
        tracing::warn!(
            offset_ms = offset,
            "this node's clock is off from Redis TIME; using Redis time"
        );
    }
    Ok(offset)
}

pub async fn clock_loop(redis: Arc<RedisHandle>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(CLOCK_EVERY);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = sync_clock(&redis).await {
            tracing::warn!(error = %e, "clock check against Redis failed; keeping the last offset");
        }
    }
}

/// What the clean-up works on.
#[derive(Clone)]
pub struct Cleanup {
    pub records: Arc<dyn Records>,
    pub locks: Arc<Recovering>,
    /// A show's waiting room goes with its seat keys.
    pub rooms: Arc<Rooms>,
    pub catalog: Arc<Catalog>,
    pub clock: Clock,
}

impl Cleanup {
    pub async fn run(self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(CLEANUP_EVERY);
        let mut forgotten: HashSet<String> = HashSet::new();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.pass(&mut forgotten).await;
        }
    }

    /// One pass; each part on its own, so one failing never stops the others.
    pub async fn pass(&self, forgotten: &mut HashSet<String>) {
        let now = self.clock.now();
        match self
            .records
            .prune(now - IDEMPOTENCY_RETENTION, now - OUTBOX_RETENTION, PRUNE_BATCH)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "pruned old idempotency keys and relayed events"),
            Err(e) => tracing::warn!(error = %e, "pruning failed"),
        }
        for show in self.catalog.shows() {
            if show.start_time > now - SHOW_KEYS_RETENTION || forgotten.contains(&show.id) {
                continue;
            }
            let forgot = match self.locks.forget(&show.id).await {
                Ok(()) => self.rooms.remove(show).await,
                Err(e) => Err(e),
            };
            match forgot {
                // A show that never had a room is as forgotten as one whose room went.
                Ok(()) | Err(Error::NotFound(_)) => {
                    forgotten.insert(show.id.clone());
                }
                Err(e) => tracing::warn!(show = %show.id, error = %e, "could not drop an old show's keys"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Tokens;
    use crate::booking::locks::SeatEngine;
    use crate::booking::locks::cmd;
    use crate::booking::locks::memory::MemorySeatLocks;
    use crate::booking::store::memory::MemoryRecords;
    use crate::domain::catalog::demo;
    use crate::waitroom::engine::WaitingRooms;
    use crate::waitroom::fixtures::{NothingSold, room};
    use crate::waitroom::memory::MemoryWaitingRooms;

    #[tokio::test]
    async fn a_show_long_over_loses_its_seat_keys_and_its_waiting_room() {
        let clock = Clock::system();
        // Shows from ten days ago to three days ago: all past the retention.
        let catalog = Arc::new(Catalog::new(demo((clock.now() - TimeDelta::days(10)).date_naive())).unwrap());
        let (old, other) = (catalog.shows()[0].id.clone(), catalog.shows()[1].id.clone());
        let records: Arc<dyn Records> = Arc::new(MemoryRecords::new());
        let engine = Arc::new(SeatEngine::Memory(MemorySeatLocks::new(
            crate::app::engines::LOCK_TIMES,
        )));
        let locks = Arc::new(Recovering::new(engine, records.clone(), clock));
        locks.run(&old, clock.now_ms(), &cmd::Snapshot).await.unwrap();
        let waitrooms: Arc<dyn WaitingRooms> = Arc::new(MemoryWaitingRooms::new(Arc::new(NothingSold), clock));
        waitrooms.save(&old, &room()).await.unwrap();
        let rooms = Rooms::new(
            waitrooms.clone(),
            None,
            catalog.clone(),
            Arc::new(Tokens::new("secret")),
            Duration::from_secs(60),
            clock,
            CancellationToken::new(),
        );
        let cleanup = Cleanup {
            records,
            locks: locks.clone(),
            rooms,
            catalog,
            clock,
        };
        let mut forgotten = HashSet::new();
        cleanup.pass(&mut forgotten).await;
        assert!(
            waitrooms.load(&old).await.unwrap().is_none(),
            "the room went with the show"
        );
        assert!(
            forgotten.contains(&old) && forgotten.contains(&other),
            "shows without a room count as done too"
        );
        assert_eq!(locks.seen(&old), None, "the seat state was forgotten");
    }
}
