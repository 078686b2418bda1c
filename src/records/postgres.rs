//! The Postgres record. Each order transition is one transaction: lock the
//! order row, decide with `domain::order::step`, write booked seats (whose
//! primary key refuses a second sale), the order and an outbox event.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

use super::{Applied, Cursor, Order, Records, StoredResponse, outbox_payload, outbox_topic};
use crate::domain::catalog::{CatalogData, Movie, Screen, SeatRow, Show, Theatre};
use crate::domain::money;
use crate::domain::order::{self, OrderEvent, OrderStatus, SeatEffect};
use crate::error::{Error, Result};

/// Connections per node. Sale-night load is Redis-bound; Postgres sees one
/// write per order step, so a small pool per node keeps the server's
/// connection count sane when the gateway scales out.
pub const POOL_SIZE: u32 = 16;
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub struct PgRecords {
    pool: PgPool,
}

const ORDER_COLUMNS: &str = "id, user_id, show_id, hold_id, seat_ids, amount_minor, currency, status, created_at, \
     expires_at, updated_at, ticket_code, payment_reference, failure_reason, lock_synced";

impl PgRecords {
    /// Connects lazily checked: the first query proves the database answers.
    pub async fn connect(url: &str) -> Result<Self> {
        let opts = PgConnectOptions::from_str(url).map_err(|e| Error::Unavailable(format!("DATABASE_URL: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(opts)
            .await
            .map_err(|e| Error::Unavailable(format!("DATABASE_URL: {e}")))?;
        Ok(Self { pool })
    }

    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| Error::Internal(format!("migrations: {e}")))
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
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
        let row = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 FOR UPDATE"))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::not_found("order"))?;
        let current = order_from_row(&row)?;
        let step = match order::step(current.status, event, now >= current.expires_at) {
            Ok(Some(step)) => step,
            Ok(None) => return Ok(Applied::Unchanged(current)),
            Err(refusal) => return Ok(Applied::Refused(current, refusal)),
        };
        let mut next = current.clone();
        next.updated_at = super::micros(now);
        next.status = step.to;
        next.lock_synced = step.seats == SeatEffect::Keep && current.lock_synced;
        if matches!(event, OrderEvent::PaymentSucceeded | OrderEvent::PaymentFailed) {
            next.payment_reference = payment_reference.map(str::to_owned);
        }
        let mut conflicts = Vec::new();
        match step.seats {
            SeatEffect::Book => {
                // The primary key (show, seat) decides: a seat another order
                // already booked is not inserted, and the sale fails whole.
                let inserted: Vec<String> = sqlx::query_scalar(
                    "INSERT INTO booked_seats (show_id, seat_id, order_id, booked_at) \
                     SELECT $1, seat, $2, $3 FROM unnest($4::text[]) AS seat \
                     ON CONFLICT ON CONSTRAINT booked_seats_pkey DO NOTHING RETURNING seat_id",
                )
                .bind(&current.show_id)
                .bind(id)
                .bind(now)
                .bind(&current.seat_ids)
                .fetch_all(&mut *tx)
                .await?;
                if inserted.len() == current.seat_ids.len() {
                    next.ticket_code = Some(order::ticket_code(&mut rand::rng()));
                } else {
                    conflicts = current
                        .seat_ids
                        .iter()
                        .filter(|s| !inserted.contains(s))
                        .cloned()
                        .collect();
                    sqlx::query("DELETE FROM booked_seats WHERE order_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    next.status = OrderStatus::Failed;
                    next.failure_reason = Some("SEAT_CONFLICT".into());
                    next.lock_synced = false;
                }
            }
            SeatEffect::Free => {
                sqlx::query("DELETE FROM booked_seats WHERE order_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            SeatEffect::Keep => {}
        }
        sqlx::query(
            "UPDATE orders SET status = $2, updated_at = $3, ticket_code = $4, payment_reference = $5, \
             failure_reason = $6, lock_synced = $7 WHERE id = $1",
        )
        .bind(id)
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
            .bind(outbox_payload(&next))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if conflicts.is_empty() {
            Ok(Applied::Changed {
                order: next,
                effect: step.seats,
            })
        } else {
            Ok(Applied::SeatsTaken { order: next, conflicts })
        }
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

    async fn idempotent_response(&self, user: &str, key: &str) -> Result<Option<StoredResponse>> {
        let row: Option<(String, i16, serde_json::Value)> =
            sqlx::query_as("SELECT request_hash, status, body FROM idempotency_keys WHERE user_id = $1 AND key = $2")
                .bind(user)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(request_hash, status, body)| StoredResponse {
            request_hash,
            status: status as u16,
            body,
        }))
    }

    async fn store_idempotent_response(&self, user: &str, key: &str, r: &StoredResponse) -> Result<StoredResponse> {
        sqlx::query(
            "INSERT INTO idempotency_keys (user_id, key, request_hash, status, body) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id, key) DO NOTHING",
        )
        .bind(user)
        .bind(key)
        .bind(&r.request_hash)
        .bind(r.status as i16)
        .bind(&r.body)
        .execute(&self.pool)
        .await?;
        self.idempotent_response(user, key)
            .await?
            .ok_or_else(|| Error::Internal("idempotency row vanished".into()))
    }

    async fn relay_outbox(&self, limit: i64, sink: &dyn crate::events::EventSink) -> Result<usize> {
        let mut tx = self.pool.begin().await?;
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
        let events: Vec<crate::events::OutboxEvent> = rows
            .into_iter()
            .map(|(id, topic, payload)| crate::events::OutboxEvent { id, topic, payload })
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

    async fn load_catalog(&self) -> Result<Option<CatalogData>> {
        let movies: Vec<(String, String, String, i32, Vec<String>)> =
            sqlx::query_as("SELECT id, title, language, duration_minutes, genres FROM movies ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        if movies.is_empty() {
            return Ok(None);
        }
        let theatres: Vec<(String, String, String)> = sqlx::query_as("SELECT id, name, city FROM theatres ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        let screens: Vec<(String, String, String, serde_json::Value, Vec<String>)> =
            sqlx::query_as("SELECT id, theatre_id, name, seat_rows, unavailable FROM screens ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        let shows: Vec<(String, String, String, String, DateTime<Utc>, i64, String)> = sqlx::query_as(
            "SELECT id, movie_id, theatre_id, screen_id, start_time, price_minor, currency FROM shows ORDER BY start_time, id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut theatres: Vec<Theatre> = theatres
            .into_iter()
            .map(|(id, name, city)| Theatre {
                id,
                name,
                city,
                screens: Vec::new(),
            })
            .collect();
        for (id, theatre_id, name, rows, unavailable) in screens {
            let rows: Vec<SeatRow> = serde_json::from_value(rows)?;
            if let Some(t) = theatres.iter_mut().find(|t| t.id == theatre_id) {
                t.screens.push(Screen {
                    id,
                    name,
                    rows,
                    unavailable,
                });
            }
        }
        Ok(Some(CatalogData {
            movies: movies
                .into_iter()
                .map(|(id, title, language, minutes, genres)| Movie {
                    id,
                    title,
                    language,
                    duration_minutes: minutes.max(1) as u32,
                    genres,
                })
                .collect(),
            theatres,
            shows: shows
                .into_iter()
                .map(
                    |(id, movie_id, theatre_id, screen_id, start_time, price, currency)| Show {
                        id,
                        movie_id,
                        theatre_id,
                        screen_id,
                        start_time,
                        price: money::format_minor(price),
                        currency: currency.trim().to_owned(),
                    },
                )
                .collect(),
        }))
    }

    async fn save_catalog(&self, data: &CatalogData) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // One writer at a time: two nodes seeding at once must not race to
        // create the same partition.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('showgate.catalog'))")
            .execute(&mut *tx)
            .await?;
        for m in &data.movies {
            sqlx::query(
                "INSERT INTO movies (id, title, language, duration_minutes, genres) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, language = EXCLUDED.language, \
                 duration_minutes = EXCLUDED.duration_minutes, genres = EXCLUDED.genres",
            )
            .bind(&m.id)
            .bind(&m.title)
            .bind(&m.language)
            .bind(m.duration_minutes as i32)
            .bind(&m.genres)
            .execute(&mut *tx)
            .await?;
        }
        for t in &data.theatres {
            sqlx::query(
                "INSERT INTO theatres (id, name, city) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, city = EXCLUDED.city",
            )
            .bind(&t.id)
            .bind(&t.name)
            .bind(&t.city)
            .execute(&mut *tx)
            .await?;
            for s in &t.screens {
                sqlx::query(
                    "INSERT INTO screens (id, theatre_id, name, seat_rows, unavailable) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (id) DO UPDATE SET theatre_id = EXCLUDED.theatre_id, name = EXCLUDED.name, \
                     seat_rows = EXCLUDED.seat_rows, unavailable = EXCLUDED.unavailable",
                )
                .bind(&s.id)
                .bind(&t.id)
                .bind(&s.name)
                .bind(serde_json::to_value(&s.rows)?)
                .bind(&s.unavailable)
                .execute(&mut *tx)
                .await?;
            }
        }
        let mut months: Vec<NaiveDate> = data.shows.iter().map(|s| s.start_time.date_naive()).collect();
        months.sort();
        months.dedup();
        for d in months {
            sqlx::query("SELECT ensure_show_partition($1)")
                .bind(d)
                .execute(&mut *tx)
                .await?;
        }
        for s in &data.shows {
            // A show keeps its id when it moves: drop it from any other date.
            sqlx::query("DELETE FROM shows WHERE id = $1 AND show_date <> $2")
                .bind(&s.id)
                .bind(s.start_time.date_naive())
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO shows (id, show_date, movie_id, theatre_id, screen_id, start_time, price_minor, currency) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (show_date, id) DO UPDATE SET \
                 movie_id = EXCLUDED.movie_id, theatre_id = EXCLUDED.theatre_id, screen_id = EXCLUDED.screen_id, \
                 start_time = EXCLUDED.start_time, price_minor = EXCLUDED.price_minor, currency = EXCLUDED.currency",
            )
            .bind(&s.id)
            .bind(s.start_time.date_naive())
            .bind(&s.movie_id)
            .bind(&s.theatre_id)
            .bind(&s.screen_id)
            .bind(s.start_time)
            .bind(s.price_minor())
            .bind(&s.currency)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn name(&self) -> &'static str {
        "postgres"
    }
}
