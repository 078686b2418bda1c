//! Where room configs are kept durably: Postgres, where one is configured.
//! Redis holds the live copy the scripts read; after Redis loses data, the
//! nodes re-seed it from here, so a gated show never becomes ungated by a
//! fault.

use async_trait::async_trait;
use sqlx::PgPool;

use crate::domain::waitroom::RoomConfig;
use crate::error::Result;

/// A room's durable part: its config and its lottery seed.
#[derive(Debug, Clone, PartialEq)]
pub struct DurableRoom {
    pub show: String,
    pub config: RoomConfig,
    pub seed: String,
}

#[async_trait]
pub trait RoomStore: Send + Sync + 'static {
    async fn save(&self, room: &DurableRoom) -> Result<()>;
    async fn remove(&self, show: &str) -> Result<()>;
    /// Every room; a row that cannot be read is logged and skipped, so one
    /// bad room never hides the others.
    async fn all(&self) -> Result<Vec<DurableRoom>>;
}

pub struct PgRooms {
    pool: PgPool,
}

impl PgRooms {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl RoomStore for PgRooms {
    async fn save(&self, room: &DurableRoom) -> Result<()> {
        sqlx::query(
            "INSERT INTO waitrooms (show_id, config, seed) VALUES ($1, $2, $3) \
             ON CONFLICT (show_id) DO UPDATE SET config = EXCLUDED.config, updated_at = now()",
        )
        .bind(&room.show)
        .bind(serde_json::to_value(&room.config)?)
        .bind(&room.seed)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn remove(&self, show: &str) -> Result<()> {
        sqlx::query("DELETE FROM waitrooms WHERE show_id = $1")
            .bind(show)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn all(&self) -> Result<Vec<DurableRoom>> {
        let rows: Vec<(String, serde_json::Value, String)> =
            sqlx::query_as("SELECT show_id, config, seed FROM waitrooms ORDER BY show_id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(show, config, seed)| match serde_json::from_value(config) {
                Ok(config) => Some(DurableRoom { show, config, seed }),
                Err(e) => {
                    tracing::error!(%show, error = %e, "unreadable waiting-room config; skipped");
                    None
                }
            })
            .collect())
    }
}
