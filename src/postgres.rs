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

/// Connects; the first query proves the database answers.
pub async fn connect(url: &str) -> Result<PgPool> {
    let opts = PgConnectOptions::from_str(url).map_err(|e| Error::Unavailable(format!("DATABASE_URL: {e}")))?;
    PgPoolOptions::new()
        .max_connections(POOL_SIZE)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(opts)
        .await
        .map_err(|e| Error::Unavailable(format!("DATABASE_URL: {e}")))
}

/// Connects and applies every migration not yet applied.
pub async fn connect_and_migrate(url: &str) -> Result<PgPool> {
    let pool = connect(url).await?;
    MIGRATOR
        .run(&pool)
        .await
        .map_err(|e| Error::Internal(format!("migrations: {e}")))?;
    Ok(pool)
}

pub async fn ping(pool: &PgPool) -> Result<()> {
    sqlx::query("SELECT 1").execute(pool).await?;
    Ok(())
}
