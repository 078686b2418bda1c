//! Shared by the integration test binaries: real Redis and Postgres, each
//! test with its own key prefix and its own database.
#![allow(dead_code)]

pub mod own_cluster;
pub mod own_redis;
pub mod proxy;

use std::sync::Arc;

use showgate::booking::locks::memory::MemorySeatLocks;
use showgate::booking::locks::redis::RedisSeatLocks;
use showgate::booking::locks::{SeatEngine, cmd};
use showgate::booking::store::Records;
use showgate::booking::store::memory::MemoryRecords;
use showgate::booking::store::postgres::PgRecords;
use showgate::catalog::postgres::PgCatalog;
use showgate::catalog::store::{CatalogStore, MemoryCatalog};
use showgate::clock::Clock;
use showgate::domain::seats::LockTimes;
use showgate::redis::RedisHandle;
use showgate::redis::keys::Keys;
use sqlx::Connection;

pub const TIMES: LockTimes = LockTimes {
    retention_ms: 3_600_000,
    order_grace_ms: 60_000,
    budget: None,
};

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Seed nodes of the local Redis Cluster (`scripts/services.sh` starts it).
pub fn redis_cluster_nodes() -> Vec<String> {
    std::env::var("TEST_REDIS_CLUSTER_NODES")
        .unwrap_or_else(|_| "redis://127.0.0.1:7101,redis://127.0.0.1:7102,redis://127.0.0.1:7103".into())
        .split(',')
        .map(str::to_owned)
        .collect()
}

/// The Postgres server, without a database name.
pub fn postgres_base() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A key prefix no other test or run shares.
pub fn unique_prefix() -> String {
    format!("sgtest:{}:", uuid::Uuid::new_v4().simple())
}

/// Creates an empty database for one test and answers its URL. Databases
/// are named `sg_t_<uuid>`; `.ci/run` drops leftovers before each run.
pub async fn fresh_database() -> String {
    let name = format!("sg_t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", postgres_base()))
        .await
        .expect("Postgres must run at TEST_POSTGRES_URL (default 127.0.0.1:5432)");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create test database");
    format!("{}/{name}", postgres_base())
}

pub async fn redis_locks(prefix: &str) -> Arc<SeatEngine> {
    redis_locks_with(prefix, TIMES).await
}

pub async fn redis_locks_with(prefix: &str, times: LockTimes) -> Arc<SeatEngine> {
    let handle = RedisHandle::connect(Some(&redis_url()), &[])
        .await
        .expect("Redis must run at TEST_REDIS_URL");
    Arc::new(SeatEngine::Redis(RedisSeatLocks::new(
        Arc::new(handle),
        Keys::new(prefix),
        times,
    )))
}

pub async fn cluster_locks(prefix: &str) -> Arc<SeatEngine> {
    cluster_locks_with(prefix, TIMES).await
}

pub async fn cluster_locks_with(prefix: &str, times: LockTimes) -> Arc<SeatEngine> {
    let handle = RedisHandle::connect(None, &redis_cluster_nodes())
        .await
        .expect("the Redis Cluster must run at TEST_REDIS_CLUSTER_NODES (scripts/services.sh starts one)");
    Arc::new(SeatEngine::Redis(RedisSeatLocks::new(
        Arc::new(handle),
        Keys::new(prefix),
        times,
    )))
}

/// A Redis waiting-room engine with its seat locks under one prefix.
pub async fn redis_rooms(prefix: &str) -> (Arc<SeatEngine>, Arc<dyn showgate::waitroom::WaitingRooms>) {
    let handle = Arc::new(
        RedisHandle::connect(Some(&redis_url()), &[])
            .await
            .expect("Redis must run at TEST_REDIS_URL"),
    );
    (
        ready(Arc::new(SeatEngine::Redis(RedisSeatLocks::new(
            handle.clone(),
            Keys::new(prefix),
            TIMES,
        ))))
        .await,
        Arc::new(showgate::waitroom::redis::RedisWaitingRooms::new(
            handle,
            Keys::new(prefix),
        )),
    )
}

pub async fn memory_rooms() -> (Arc<SeatEngine>, Arc<dyn showgate::waitroom::WaitingRooms>) {
    // Wired as the service wires them: offers admit their waiters.
    let (raw, _, rooms) = showgate::app::engines::in_process(TIMES, memory_records(), Clock::system());
    (ready(raw).await, rooms)
}

pub fn memory_locks() -> Arc<SeatEngine> {
    memory_locks_with(TIMES)
}

pub fn memory_locks_with(times: LockTimes) -> Arc<SeatEngine> {
    Arc::new(SeatEngine::Memory(MemorySeatLocks::new(times)))
}

/// A fresh, migrated database.
pub async fn pg_pool() -> sqlx::PgPool {
    showgate::postgres::connect_and_migrate(&fresh_database().await)
        .await
        .expect("connect and migrate the test database")
}

pub async fn pg_records() -> Arc<dyn Records> {
    Arc::new(PgRecords::new(pg_pool().await))
}

pub async fn pg_catalog() -> Arc<dyn CatalogStore> {
    Arc::new(PgCatalog::new(pg_pool().await))
}

pub fn memory_catalog() -> Arc<dyn CatalogStore> {
    Arc::new(MemoryCatalog::default())
}

pub fn memory_records() -> Arc<dyn Records> {
    Arc::new(MemoryRecords::new())
}

/// The shows the conformance cases use.
pub const SHOWS: [&str; 4] = ["show-1", "show-2", "show-a", "show-b"];

/// Builds the (empty) seat state of the test shows under epoch "e1", as the
/// service does from the record before a show's first use.
pub async fn ready(locks: Arc<SeatEngine>) -> Arc<SeatEngine> {
    for show in SHOWS {
        let r = locks
            .run(
                show,
                0,
                &cmd::Rebuild {
                    seen: "",
                    epoch: "e1",
                    record: &showgate::domain::seats::RecordState::default(),
                },
            )
            .await
            .expect("rebuild");
        assert!(r.out, "a fresh show rebuilds");
    }
    locks
}

pub fn seats(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}
