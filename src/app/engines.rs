//! The engines behind every feature, on Redis and Postgres or in process:
//! seat locks, waiting rooms and the event stream share one Redis handle;
//! the record and the catalog share one Postgres pool.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;

use super::StartError;
use crate::booking::events::{EventSink, MemoryStream, RedisStream};
use crate::booking::locks::SeatEngine;
use crate::booking::locks::cmd::Snapshot;
use crate::booking::locks::memory::{MemorySeatLocks, OfferAdmissions};
use crate::booking::locks::recovering::Recovering;
use crate::booking::locks::redis::RedisSeatLocks;
use crate::booking::store::Records;
use crate::booking::store::memory::MemoryRecords;
use crate::booking::store::postgres::PgRecords;
use crate::catalog::postgres::PgCatalog;
use crate::catalog::store::{CatalogStore, MemoryCatalog};
use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::seats::{Budget, LockTimes, Owner, SeatDelta, SeatSnapshot};
use crate::error::Result;
use crate::live::source::SeatSource;
use crate::redis::RedisHandle;
use crate::redis::keys::Keys;
use crate::waitroom::memory::MemoryWaitingRooms;
use crate::waitroom::redis::RedisWaitingRooms;
use crate::waitroom::store::{PgRooms, RoomStore};
use crate::waitroom::{SeatCount, WaitingRooms};

/// How long ended hold records stay readable (GET /holds/{id}), at least,
/// unless `HOLD_RECORD_RETENTION_SECONDS` says otherwise; at most about
/// twice this (they are dropped a generation at a time).
pub const HOLD_RECORD_RETENTION: Duration = Duration::from_secs(15 * 60);
/// How long an order's seat lock outlives the order's expiry when the record
/// never releases it (a crash between the lock and the order row).
pub const ORDER_LOCK_GRACE: Duration = Duration::from_secs(60);

pub const LOCK_TIMES: LockTimes = LockTimes {
    retention_ms: HOLD_RECORD_RETENTION.as_millis() as i64,
    order_grace_ms: ORDER_LOCK_GRACE.as_millis() as i64,
    budget: None,
};

/// The engines: seat locks (rebuilt from the record when Redis loses them),
/// waiting rooms, and the event stream.
pub struct Engines {
    pub locks: Arc<Recovering>,
    pub waitrooms: Arc<dyn WaitingRooms>,
    pub events: Arc<dyn EventSink>,
    /// The shared Redis, when there is one (the clock is checked against it).
    pub redis: Option<Arc<RedisHandle>>,
}

/// The record, the catalog's store and the durable room configs.
pub struct Stores {
    pub records: Arc<dyn Records>,
    pub catalog: Arc<dyn CatalogStore>,
    /// Only with Postgres: without it, Redis (or this process) is the rooms' only copy.
    pub rooms: Option<Arc<dyn RoomStore>>,
    /// The shared pool, when there is Postgres (its use is a metric).
    pub pool: Option<sqlx::PgPool>,
}

/// The seat locks as the in-process waiting room counts them.
pub struct LockedSeats(pub Arc<Recovering>);

#[async_trait]
impl SeatCount for LockedSeats {
    async fn taken(&self, show: &str, now: i64) -> Result<(u64, u64)> {
        let snap = self.0.run(show, now, &Snapshot).await?.out;
        let booked = snap.taken.values().filter(|o| matches!(o, Owner::Booked(_))).count();
        Ok((snap.taken.len() as u64, booked as u64))
    }
}

/// The seat stream reads the engine through its recovery, so a show whose
/// state was lost is rebuilt before a seat map is drawn from it.
#[async_trait]
impl SeatSource for Recovering {
    async fn snapshot(&self, show: &str) -> Result<SeatSnapshot> {
        Ok(self.run(show, self.clock().now_ms(), &Snapshot).await?.out)
    }

    async fn position(&self, show: &str) -> Result<Option<(String, u64)>> {
        SeatEngine::position(self, show).await
    }

    async fn went_back(&self, show: &str) -> Result<()> {
        tracing::warn!(%show, "a seat feed found the show at a version below its own (a lagging replica?)");
        self.rebuild(show, crate::booking::locks::recovering::Why::WentBack)
            .await
    }

    async fn subscribe(&self, show: &str) -> Result<BoxStream<'static, SeatDelta>> {
        SeatEngine::subscribe(self, show).await
    }

    async fn unsubscribe(&self, show: &str) -> Result<()> {
        SeatEngine::unsubscribe(self, show).await
    }

    fn seen(&self, show: &str) -> Option<(String, u64)> {
        Recovering::seen(self, show)
    }
}

/// The in-process seat engine (raw, and with its recovery) and waiting
/// rooms, wired both ways: the rooms count the seats, and each offer the
/// engine makes on a gated show is its waiter's admission.
pub fn in_process(
    times: LockTimes,
    records: Arc<dyn Records>,
    clock: Clock,
) -> (Arc<SeatEngine>, Arc<Recovering>, Arc<MemoryWaitingRooms>) {
    let admissions = Arc::new(RoomAdmissions::default());
    let raw = Arc::new(SeatEngine::Memory(
        MemorySeatLocks::new(times).admitting(admissions.clone()),
    ));
    let locks = Arc::new(Recovering::new(raw.clone(), records, clock));
    let rooms = Arc::new(MemoryWaitingRooms::new(Arc::new(LockedSeats(locks.clone())), clock));
    // Set once, here: the rooms need the seats and the seats tell the rooms.
    let _ = admissions.0.set(rooms.clone());
    (raw, locks, rooms)
}

/// The in-process rooms as the in-process seat engine tells them of offers.
#[derive(Default)]
struct RoomAdmissions(OnceLock<Arc<MemoryWaitingRooms>>);

impl OfferAdmissions for RoomAdmissions {
    fn offered(&self, show: &str, user: &str, until_ms: i64) {
        if let Some(rooms) = self.0.get() {
            rooms.admit_offer(show, user, until_ms);
        }
    }
}

/// The engine's times, with each user's budget of seat-changing calls.
fn lock_times(settings: &Settings) -> LockTimes {
    LockTimes {
        retention_ms: settings.hold_record_retention_seconds as i64 * 1000,
        budget: Budget::per_sec(settings.rate_limit_user_per_sec),
        ..LOCK_TIMES
    }
}

/// The seat locks, the waiting rooms and the event stream, on Redis (one
/// shared connection) or in process. The seat locks rebuild from `records`.
pub async fn engines(settings: &Settings, clock: Clock, records: Arc<dyn Records>) -> Result<Engines, StartError> {
    if !settings.uses_redis() {
        let (_, locks, waitrooms) = in_process(lock_times(settings), records, clock);
        return Ok(Engines {
            waitrooms,
            locks,
            events: Arc::new(MemoryStream::default()),
            redis: None,
        });
    }
    let setting = if settings.redis_cluster_nodes.is_empty() {
        "REDIS_URL"
    } else {
        "REDIS_CLUSTER_NODES"
    };
    let unreachable = |e: crate::error::Error| StartError::Redis {
        setting,
        cause: e.to_string(),
    };
    let handle = RedisHandle::connect(settings.redis_url.as_deref(), &settings.redis_cluster_nodes)
        .await
        .map_err(unreachable)?;
    let handle = Arc::new(handle);
    let keys = Keys::new(settings.redis_key_prefix.clone());
    let locks = SeatEngine::Redis(RedisSeatLocks::new(handle.clone(), keys.clone(), lock_times(settings)));
    locks.ping().await.map_err(unreachable)?;
    Ok(Engines {
        locks: Arc::new(Recovering::new(Arc::new(locks), records, clock)),
        waitrooms: Arc::new(RedisWaitingRooms::new(handle.clone(), keys.clone())),
        events: Arc::new(RedisStream::new(handle.clone(), keys.event_stream())),
        redis: Some(handle),
    })
}

/// Connects to Postgres and runs the migrations, or answers the in-process stores.
pub async fn stores(settings: &Settings) -> Result<Stores, StartError> {
    match &settings.database_url {
        None => Ok(Stores {
            records: Arc::new(MemoryRecords::new()),
            catalog: Arc::new(MemoryCatalog::default()),
            rooms: None,
            pool: None,
        }),
        Some(url) => {
            let timeouts = crate::postgres::Timeouts {
                statement: Duration::from_millis(settings.postgres_statement_timeout_ms),
                lock: Duration::from_millis(settings.postgres_lock_timeout_ms),
            };
            let pool = crate::postgres::connect_and_migrate_with(url, timeouts)
                .await
                .map_err(|e| StartError::Postgres(e.to_string()))?;
            Ok(Stores {
                records: Arc::new(PgRecords::new(pool.clone())),
                catalog: Arc::new(PgCatalog::new(pool.clone())),
                rooms: Some(Arc::new(PgRooms::new(pool.clone()))),
                pool: Some(pool),
            })
        }
    }
}
