//! The `Idempotency-Key` protocol of order creation: the first response to
//! a (user, key) is stored with a hash of the request, and a repeat of the
//! same request answers it again (status and body); the same key with
//! another request is 422. Failures of ours (5xx) are not remembered: the
//! retry may succeed.

use std::future::Future;

use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::store::{Records, StoredResponse};
use crate::error::{Error, Result};

/// Longest `Idempotency-Key` accepted.
pub const MAX_KEY_LEN: usize = 255;

/// The request's key, if it sent one; a malformed key is 400.
pub fn key(headers: &HeaderMap) -> Result<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| Error::BadRequest("Idempotency-Key must be visible ASCII".into()))?;
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::BadRequest(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"
        )));
    }
    Ok(Some(key.to_owned()))
}

/// What identifies a request for its key: route and the body's meaning.
pub fn request_hash(route: &str, body: &str) -> String {
    Sha256::digest(format!("{route}\n{body}"))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs `attempt` unless `key` already has an answer, and remembers the
/// first answer (a success or a 4xx) for the key.
pub async fn once<F>(
    records: &dyn Records,
    user: &str,
    key: Option<String>,
    hash: String,
    attempt: F,
) -> Result<(StatusCode, Value)>
where
    F: Future<Output = Result<(StatusCode, Value)>>,
{
    if let Some(key) = &key
        && let Some(stored) = records.idempotent_response(user, key).await?
    {
        return replay(stored, &hash);
    }
    let (status, body) = match attempt.await {
        Ok(answer) => answer,
        Err(e) if e.status().is_server_error() => return Err(e),
        Err(e) if key.is_none() => return Err(e),
        Err(e) => (e.status(), e.body()),
    };
    let Some(key) = key else {
        return Ok((status, body));
    };
    let first = StoredResponse {
        request_hash: hash.clone(),
        status: status.as_u16(),
        body,
    };
    replay(records.store_idempotent_response(user, &key, &first).await?, &hash)
}

/// The first response to a key, or 422 when the key came with another request.
fn replay(stored: StoredResponse, hash: &str) -> Result<(StatusCode, Value)> {
    if stored.request_hash != hash {
        return Err(Error::IdempotencyMismatch);
    }
    let status = StatusCode::from_u16(stored.status).map_err(|_| Error::Internal("stored status".into()))?;
    Ok((status, stored.body))
}
