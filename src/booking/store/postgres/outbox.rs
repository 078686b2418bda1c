//! The outbox relay: batches of unrelayed events, oldest first, moved to
//! the event sink and marked relayed in one transaction. One node relays at
//! a time (a transaction-scoped advisory lock): with several relaying in
//! parallel, one could append an order's later event while another still
//! appends its earlier one, and consumers would see them out of order. One
//! relayer appends in id order, and an order's events get rising ids (each
//! is written in the transaction that changes the order, after it takes the
//! order's row), so every order's events reach the stream in order.

use sqlx::PgPool;

use crate::booking::events::{EventSink, OutboxEvent};
use crate::error::Result;

/// The advisory lock the relayer holds ("outbox" in ASCII).
const RELAY_LOCK: i64 = 0x6f7574626f78;

pub async fn relay(pool: &PgPool, limit: i64, sink: &dyn EventSink) -> Result<usize> {
    let mut tx = pool.begin().await?;
    let relayer: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(RELAY_LOCK)
        .fetch_one(&mut *tx)
        .await?;
    if !relayer {
        // Another node is relaying; it goes on until the outbox is drained.
        return Ok(0);
    }
    let rows: Vec<(i64, String, serde_json::Value)> = sqlx::query_as(
        "SELECT id, topic, payload FROM outbox WHERE relayed_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE",
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
