//! The outbox relay: batches of unrelayed events, oldest first, moved to
//! the event sink and marked relayed in one transaction.

use sqlx::PgPool;

use crate::booking::events::{EventSink, OutboxEvent};
use crate::error::Result;

pub async fn relay(pool: &PgPool, limit: i64, sink: &dyn EventSink) -> Result<usize> {
    let mut tx = pool.begin().await?;
    // SKIP LOCKED: another node relaying now takes the next batch instead.
    let rows: Vec<(i64, String, serde_json::Value)> = sqlx::query_as(
        "SELECT id, topic, payload FROM outbox WHERE relayed_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let events: Vec<OutboxEvent> = rows
        .into_iter()
        .map(|(id, topic, payload)| OutboxEvent { id, topic, payload })
        .collect();
    if let Err(e) = sink.append(&events).await {
        // Release the rows now (a dropped transaction rolls back later,
        // and until then SKIP LOCKED would hide them from the next pass).
        tx.rollback().await?;
        return Err(e);
    }
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    sqlx::query("UPDATE outbox SET relayed_at = now() WHERE id = ANY($1)")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(events.len())
}
