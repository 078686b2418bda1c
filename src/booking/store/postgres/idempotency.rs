//! `Idempotency-Key`s: the first response stored for a (user, key) wins;
//! `ON CONFLICT DO NOTHING` makes two racing requests agree on it.

use sqlx::PgPool;

use crate::booking::store::StoredResponse;
use crate::error::{Error, Result};

pub async fn read(pool: &PgPool, user: &str, key: &str) -> Result<Option<StoredResponse>> {
    let row: Option<(String, i16, serde_json::Value)> =
        sqlx::query_as("SELECT request_hash, status, body FROM idempotency_keys WHERE user_id = $1 AND key = $2")
            .bind(user)
            .bind(key)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(request_hash, status, body)| StoredResponse {
        request_hash,
        status: status as u16,
        body,
    }))
}

pub async fn store(pool: &PgPool, user: &str, key: &str, r: &StoredResponse) -> Result<StoredResponse> {
    sqlx::query(
        "INSERT INTO idempotency_keys (user_id, key, request_hash, status, body) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id, key) DO NOTHING",
    )
    .bind(user)
    .bind(key)
    .bind(&r.request_hash)
    .bind(r.status as i16)
    .bind(&r.body)
    .execute(pool)
    .await?;
    read(pool, user, key)
        .await?
        .ok_or_else(|| Error::Internal("idempotency row vanished".into()))
}
