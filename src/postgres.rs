//! The Postgres pool every feature's store shares, and the migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::error::{Error, Result};

/// Connections per node. Sale-night load is Redis-bound; Postgres sees one
/// write per order step, so a small pool per node keeps the server's
/// connection count sane when the gateway scales out.
pub const POOL_SIZE: u32 = 16;
/// A request waits at most this long for a connection, so an outage is a
/// 503 within 2 s (the contract), never a hang.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_millis(1500);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a statement may run and wait for a lock before Postgres
/// cancels it (SQLSTATE 57014 / 55P03, which the caller answers as 503).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub statement: Duration,
    pub lock: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            statement: Duration::from_secs(5),
            lock: Duration::from_secs(1),
        }
    }
}

/// Connects; the first query proves the database answers. Every session
/// of the pool runs with `timeouts`.
pub async fn connect(url: &str, timeouts: Timeouts) -> Result<PgPool> {
    let opts = options(url)?.options([
        ("statement_timeout", timeouts.statement.as_millis().to_string()),
        ("lock_timeout", timeouts.lock.as_millis().to_string()),
    ]);
    PgPoolOptions::new()
        .max_connections(POOL_SIZE)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(opts)
        .await
        .map_err(|e| Error::Unavailable(format!("DATABASE_URL: {e}")))
}

fn options(url: &str) -> Result<PgConnectOptions> {
    PgConnectOptions::from_str(url).map_err(|e| Error::Unavailable(format!("DATABASE_URL: {e}")))
}

/// Applies every migration not yet applied, on a connection of its own
/// without the pool's timeouts: nodes starting together wait their turn
/// on the migrator's lock, however long the one ahead takes.
pub async fn migrate(url: &str) -> Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options(url)?)
        .await
        .map_err(|e| Error::Unavailable(format!("DATABASE_URL: {e}")))?;
    let migrated = MIGRATOR
        .run(&pool)
        .await
        .map_err(|e| Error::Internal(format!("migrations: {e}")));
    pool.close().await;
    migrated
}

/// Migrates, then connects the pool with `timeouts`.
pub async fn connect_and_migrate_with(url: &str, timeouts: Timeouts) -> Result<PgPool> {
    migrate(url).await?;
    connect(url, timeouts).await
}

/// Migrates, then connects the pool with the default timeouts.
pub async fn connect_and_migrate(url: &str) -> Result<PgPool> {
    connect_and_migrate_with(url, Timeouts::default()).await
}

pub async fn ping(pool: &PgPool) -> Result<()> {
    sqlx::query("SELECT 1").execute(pool).await?;
    Ok(())
}
