//! The Postgres record. Each order transition is one transaction: lock the
//! order row, decide with `domain::order::step`, write booked seats (whose
//! primary key refuses a second sale), the order (`domain::order::settle`)
//! and an outbox event. Idempotency keys and the outbox relay have a file
//! each.

mod idempotency;
mod outbox;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use super::{Applied, Cursor, Order, Records, StoredResponse, outbox_payload, outbox_topic};
use crate::booking::events::EventSink;
use crate::domain::order::{self, OrderEvent, OrderStatus, SeatEffect};
use crate::domain::seats::RecordState;
use crate::error::{Error, Result};

pub struct PgRecords {
    pool: PgPool,
}

const ORDER_COLUMNS: &str = "id, user_id, show_id, hold_id, seat_ids, amount_minor, currency, status, created_at, \
     expires_at, updated_at, ticket_code, payment_reference, failure_reason, lock_synced";

impl PgRecords {
    /// Over a pool whose database is migrated (`crate::postgres`).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn order_from_row(row: &sqlx::postgres::PgRow) -> Result<Order> {
    let status: String = row.try_get("status")?;
    Ok(Order {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        show_id: row.try_get("show_id")?,
        hold_id: row.try_get("hold_id")?,
        seat_ids: row.try_get("seat_ids")?,
        amount_minor: row.try_get("amount_minor")?,
        currency: row.try_get::<String, _>("currency")?.trim().to_owned(),
        status: OrderStatus::parse(&status).ok_or_else(|| Error::Internal(format!("order status {status:?}")))?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        updated_at: row.try_get("updated_at")?,
        ticket_code: row.try_get("ticket_code")?,
        payment_reference: row.try_get("payment_reference")?,
        failure_reason: row.try_get("failure_reason")?,
        lock_synced: row.try_get("lock_synced")?,
    })
}

/// The order, its row locked until the transaction ends.
async fn lock_order(tx: &mut PgConnection, id: Uuid) -> Result<Order> {
    let row = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 FOR UPDATE"))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::not_found("order"))?;
    order_from_row(&row)
}

/// Books or frees the order's seats as its step says. Answers the seats
/// another order had already booked (then none is booked).
async fn write_seats(
    tx: &mut PgConnection,
    order: &Order,
    effect: SeatEffect,
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    match effect {
        SeatEffect::Book => {
            // The primary key (show, seat) decides: a seat another order
            // already booked is not inserted, and the sale fails whole.
            let inserted: Vec<String> = sqlx::query_scalar(
                "INSERT INTO booked_seats (show_id, seat_id, order_id, booked_at) \
                 SELECT $1, seat, $2, $3 FROM unnest($4::text[]) AS seat \
                 ON CONFLICT ON CONSTRAINT booked_seats_pkey DO NOTHING RETURNING seat_id",
            )
            .bind(&order.show_id)
            .bind(order.id)
            .bind(now)
            .bind(&order.seat_ids)
            .fetch_all(&mut *tx)
            .await?;
            if inserted.len() == order.seat_ids.len() {
                return Ok(Vec::new());
            }
            free_seats(tx, order.id).await?;
            Ok(order
                .seat_ids
                .iter()
                .filter(|s| !inserted.contains(s))
                .cloned()
                .collect())
        }
        SeatEffect::Free => {
            free_seats(tx, order.id).await?;
            Ok(Vec::new())
        }
        SeatEffect::Keep => Ok(Vec::new()),
    }
}

async fn free_seats(tx: &mut PgConnection, order: Uuid) -> Result<()> {
    sqlx::query("DELETE FROM booked_seats WHERE order_id = $1")
        .bind(order)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Writes the order's new state and its outbox event.
async fn write_order(tx: &mut PgConnection, next: &Order) -> Result<()> {
    sqlx::query(
        "UPDATE orders SET status = $2, updated_at = $3, ticket_code = $4, payment_reference = $5, \
         failure_reason = $6, lock_synced = $7 WHERE id = $1",
    )
    .bind(next.id)
    .bind(next.status.as_str())
    .bind(next.updated_at)
    .bind(&next.ticket_code)
    .bind(&next.payment_reference)
    .bind(&next.failure_reason)
    .bind(next.lock_synced)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO outbox (topic, payload) VALUES ($1, $2)")
        .bind(outbox_topic(next.status))
        .bind(outbox_payload(next))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

#[async_trait]
impl Records for PgRecords {
    async fn create_order(&self, o: &Order) -> Result<(Order, bool)> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO orders ({ORDER_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15) \
             ON CONFLICT DO NOTHING RETURNING {ORDER_COLUMNS}"
        ))
        .bind(o.id)
        .bind(&o.user_id)
        .bind(&o.show_id)
        .bind(&o.hold_id)
        .bind(&o.seat_ids)
        .bind(o.amount_minor)
        .bind(&o.currency)
        .bind(o.status.as_str())
        .bind(o.created_at)
        .bind(o.expires_at)
        .bind(o.updated_at)
        .bind(&o.ticket_code)
        .bind(&o.payment_reference)
        .bind(&o.failure_reason)
        .bind(o.lock_synced)
        .fetch_optional(&mut *tx)
        .await?;
        let result = match inserted {
            Some(row) => {
                let order = order_from_row(&row)?;
                sqlx::query("INSERT INTO outbox (topic, payload) VALUES ($1, $2)")
                    .bind(outbox_topic(order.status))
                    .bind(outbox_payload(&order))
                    .execute(&mut *tx)
                    .await?;
                (order, true)
            }
            None => {
                let row = sqlx::query(&format!(
                    "SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 OR hold_id = $2"
                ))
                .bind(o.id)
                .bind(&o.hold_id)
                .fetch_one(&mut *tx)
                .await?;
                (order_from_row(&row)?, false)
            }
        };
        tx.commit().await?;
        Ok(result)
    }

    async fn order(&self, id: Uuid) -> Result<Option<Order>> {
        let row = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    async fn order_by_hold(&self, hold_id: &str) -> Result<Option<Order>> {
        let row = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE hold_id = $1"))
            .bind(hold_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(order_from_row).transpose()
    }

    async fn apply(
        &self,
        id: Uuid,
        event: OrderEvent,
        now: DateTime<Utc>,
        payment_reference: Option<&str>,
    ) -> Result<Applied> {
        let mut tx = self.pool.begin().await?;
        let current = lock_order(&mut tx, id).await?;
        let step = match order::step(current.status, event, now >= current.expires_at) {
            Ok(Some(step)) => step,
            Ok(None) => return Ok(Applied::Unchanged(current)),
            Err(refusal) => return Ok(Applied::Refused(current, refusal)),
        };
        let conflicts = write_seats(&mut tx, &current, step.seats, now).await?;
        let next = order::settle(
            &current,
            event,
            step,
            now,
            payment_reference,
            &conflicts,
            &mut rand::rng(),
        );
        write_order(&mut tx, &next).await?;
        tx.commit().await?;
        Ok(Applied::settled(next, step, conflicts))
    }

    async fn mark_lock_synced(&self, id: Uuid, as_of: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE orders SET lock_synced = true WHERE id = $1 AND updated_at <= $2 AND NOT lock_synced")
            .bind(id)
            .bind(as_of)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn unsynced_orders(&self, older_than: DateTime<Utc>, limit: i64) -> Result<Vec<Order>> {
        let rows = sqlx::query(&format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE NOT lock_synced AND updated_at < $1 ORDER BY updated_at LIMIT $2"
        ))
        .bind(older_than)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(order_from_row).collect()
    }

    async fn due_orders(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<Uuid>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM orders WHERE status = 'PAYMENT_PENDING' AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn seats_ordered(&self, user: &str, show: &str, except_hold: &str) -> Result<usize> {
        let seats: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(cardinality(seat_ids)), 0)::bigint FROM orders \
             WHERE user_id = $1 AND show_id = $2 AND hold_id <> $3 \
             AND status IN ('PAYMENT_PENDING', 'CONFIRMED')",
        )
        .bind(user)
        .bind(show)
        .bind(except_hold)
        .fetch_one(&self.pool)
        .await?;
        Ok(seats.max(0) as usize)
    }

    async fn orders_of_user(&self, user: &str, limit: i64, cursor: Option<Cursor>) -> Result<Vec<Order>> {
        let rows =
            match cursor {
                None => sqlx::query(&format!(
                    "SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
                ))
                .bind(user)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?,
                Some(c) => {
                    sqlx::query(&format!(
                        "SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $1 AND (created_at, id) < ($3, $4) \
                     ORDER BY created_at DESC, id DESC LIMIT $2"
                    ))
                    .bind(user)
                    .bind(limit)
                    .bind(c.created_at)
                    .bind(c.id)
                    .fetch_all(&self.pool)
                    .await?
                }
            };
        rows.iter().map(order_from_row).collect()
    }

    async fn booked_seats(&self, show: &str) -> Result<Vec<(String, Uuid)>> {
        Ok(
            sqlx::query_as("SELECT seat_id, order_id FROM booked_seats WHERE show_id = $1")
                .bind(show)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn record_state(&self, show: &str) -> Result<RecordState> {
        let booked: Vec<(String, Uuid, DateTime<Utc>)> = sqlx::query_as(
            "SELECT b.seat_id, b.order_id, o.updated_at FROM booked_seats b JOIN orders o ON o.id = b.order_id \
             WHERE b.show_id = $1 ORDER BY b.seat_id",
        )
        .bind(show)
        .fetch_all(&self.pool)
        .await?;
        let pending = sqlx::query(&format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE show_id = $1 AND status = 'PAYMENT_PENDING' \
             ORDER BY created_at, id"
        ))
        .bind(show)
        .fetch_all(&self.pool)
        .await?;
        let pending: Vec<Order> = pending.iter().map(order_from_row).collect::<Result<_>>()?;
        // Lately: well past the rebuild's read margin, which is all they answer for.
        let ended: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(
            "SELECT id, updated_at FROM orders WHERE show_id = $1 AND status IN ('CANCELLED', 'FAILED', 'EXPIRED') \
             AND updated_at > now() - interval '1 minute' ORDER BY id",
        )
        .bind(show)
        .fetch_all(&self.pool)
        .await?;
        Ok(RecordState {
            ended: ended
                .into_iter()
                .map(|(id, at)| (id.to_string(), at.timestamp_micros()))
                .collect(),
            booked: booked
                .into_iter()
                .map(|(seat, order, at)| (seat, order.to_string(), at.timestamp_micros()))
                .collect(),
            pending: pending.iter().map(super::pending_lock).collect(),
            as_of: 0,
        })
    }

    async fn idempotent_response(&self, user: &str, key: &str) -> Result<Option<StoredResponse>> {
        idempotency::read(&self.pool, user, key).await
    }

    async fn store_idempotent_response(&self, user: &str, key: &str, r: &StoredResponse) -> Result<StoredResponse> {
        idempotency::store(&self.pool, user, key, r).await
    }

    async fn relay_outbox(&self, limit: i64, sink: &dyn EventSink) -> Result<usize> {
        outbox::relay(&self.pool, limit, sink).await
    }

    async fn prune(&self, keys_before: DateTime<Utc>, events_before: DateTime<Utc>, limit: i64) -> Result<u64> {
        // Bounded batches: the oldest rows by their index, never a long lock.
        let keys = sqlx::query(
            "DELETE FROM idempotency_keys WHERE ctid IN (SELECT ctid FROM idempotency_keys \
             WHERE created_at < $1 ORDER BY created_at LIMIT $2)",
        )
        .bind(keys_before)
        .bind(limit)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let events = sqlx::query(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox \
             WHERE relayed_at IS NOT NULL AND relayed_at < $1 ORDER BY relayed_at LIMIT $2)",
        )
        .bind(events_before)
        .bind(limit)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(keys + events)
    }

    async fn ping(&self) -> Result<()> {
        crate::postgres::ping(&self.pool).await
    }

    fn name(&self) -> &'static str {
        "postgres"
    }
}
