//! Events for other systems (`booking.confirmed`, ...). They are written to
//! the outbox in the same transaction as the change, and relayed from there
//! to a Redis Stream (or an in-process log), so none is lost: a relay that
//! fails leaves them in the outbox for the next pass.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::error::Result;
use crate::redis::RedisHandle;

/// Entries the stream keeps, approximately (`XADD MAXLEN ~`).
pub const STREAM_MAX_LEN: usize = 1_000_000;
/// Events one relay pass moves.
pub const RELAY_BATCH: i64 = 500;

#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    /// The outbox row id: increasing, so consumers can de-duplicate.
    pub id: i64,
    pub topic: String,
    pub payload: serde_json::Value,
}

#[async_trait]
pub trait EventSink: Send + Sync + 'static {
    async fn append(&self, events: &[OutboxEvent]) -> Result<()>;
}

/// A Redis Stream; each entry has fields `id`, `topic` and `payload` (JSON).
pub struct RedisStream {
    redis: Arc<RedisHandle>,
    pub key: String,
}

impl RedisStream {
    pub fn new(redis: Arc<RedisHandle>, key: String) -> Self {
        Self { redis, key }
    }
}

#[async_trait]
impl EventSink for RedisStream {
    async fn append(&self, events: &[OutboxEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for e in events {
            pipe.cmd("XADD")
                .arg(&self.key)
                .arg("MAXLEN")
                .arg("~")
                .arg(STREAM_MAX_LEN)
                .arg("*")
                .arg("id")
                .arg(e.id)
                .arg("topic")
                .arg(&e.topic)
                .arg("payload")
                .arg(e.payload.to_string())
                .ignore();
        }
        let mut conn = self.redis.conn.clone();
        let _: () = pipe.query_async(&mut conn).await?;
        Ok(())
    }
}

/// The in-process log: the last events, for the memory engine and tests.
#[derive(Default)]
pub struct MemoryStream {
    events: Mutex<VecDeque<OutboxEvent>>,
}

impl MemoryStream {
    const KEEP: usize = 10_000;

    pub fn events(&self) -> Vec<OutboxEvent> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

#[async_trait]
impl EventSink for MemoryStream {
    async fn append(&self, events: &[OutboxEvent]) -> Result<()> {
        let mut log = self.events.lock().unwrap_or_else(|p| p.into_inner());
        for e in events {
            log.push_back(e.clone());
            if log.len() > Self::KEEP {
                log.pop_front();
            }
        }
        Ok(())
    }
}
