//! How full the node's shared dependencies are, for the dashboards and the
//! alerts (`k8s/base/prometheusrule.yaml`): the Postgres pool's connections
//! in use, and Redis memory against its `maxmemory`.
//!
//! Redis memory is read by one node at a time: each round, the node that
//! wins a short lease runs `INFO memory` (on every master of a cluster) and
//! leaves the figures in Redis; every node exports what it finds there. So
//! a hundred gateways cost Redis one `INFO` per round, not a hundred.

use std::sync::Arc;
use std::time::Duration;

use redis::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::metrics as m;
use crate::redis::RedisHandle;
use crate::redis::keys::Keys;

/// How often the figures are refreshed.
pub const EVERY: Duration = Duration::from_secs(15);
/// The figures outlive a few missed rounds, then vanish rather than lie.
const FIGURES_TTL: Duration = Duration::from_secs(60);

/// What the loop watches.
#[derive(Clone)]
pub struct Saturation {
    pub pool: Option<PgPool>,
    pub redis: Option<Arc<RedisHandle>>,
    pub keys: Keys,
    /// This node's name in the reader lease (any unique string).
    pub node: String,
}

impl Saturation {
    pub async fn run(self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.pass().await;
        }
    }

    /// One round: the pool from this process, Redis from the shared figures.
    pub async fn pass(&self) {
        if let Some(pool) = &self.pool {
            let size = pool.size() as f64;
            let idle = pool.num_idle() as f64;
            metrics::gauge!(m::DB_POOL_IN_USE).set((size - idle).max(0.0));
            metrics::gauge!(m::DB_POOL_MAX).set(pool.options().get_max_connections() as f64);
        }
        if let Some(redis) = &self.redis {
            match self.redis_memory(redis).await {
                Ok(Some(mem)) => {
                    metrics::gauge!(m::REDIS_MEMORY_USED).set(mem.used as f64);
                    metrics::gauge!(m::REDIS_MEMORY_MAX).set(mem.max as f64);
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "could not read Redis memory"),
            }
        }
    }

    /// This round's figures: read them if this node wins the lease, else
    /// take what the last reader left (None before anyone has read).
    pub async fn redis_memory(&self, redis: &RedisHandle) -> Result<Option<Memory>> {
        let (lease, figures) = (self.keys.ops("redis-memory-reader"), self.keys.ops("redis-memory"));
        let mut conn = redis.conn.clone();
        let won: Option<String> = redis::cmd("SET")
            .arg(&lease)
            .arg(&self.node)
            .arg("NX")
            .arg("PX")
            .arg(EVERY.as_millis() as u64 - 1_000)
            .query_async(&mut conn)
            .await?;
        if won.is_some() {
            let info: Value = redis::cmd("INFO").arg("memory").query_async(&mut conn).await?;
            if let Some(mem) = fullest(&info_texts(&info)) {
                let _: () = redis::cmd("SET")
                    .arg(&figures)
                    .arg(format!("{} {}", mem.used, mem.max))
                    .arg("PX")
                    .arg(FIGURES_TTL.as_millis() as u64)
                    .query_async(&mut conn)
                    .await?;
                return Ok(Some(mem));
            }
        }
        let text: Option<String> = redis::cmd("GET").arg(&figures).query_async(&mut conn).await?;
        Ok(text.as_deref().and_then(Memory::parse_pair))
    }
}

/// One Redis server's memory, in bytes; `max` is 0 when it has no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    pub used: u64,
    pub max: u64,
}

impl Memory {
    /// From the text of `INFO memory`.
    pub fn from_info(info: &str) -> Option<Self> {
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':')?.parse::<u64>().ok())
        };
        Some(Self {
            used: field("used_memory")?,
            max: field("maxmemory").unwrap_or(0),
        })
    }

    fn parse_pair(s: &str) -> Option<Self> {
        let (used, max) = s.split_once(' ')?;
        Some(Self {
            used: used.parse().ok()?,
            max: max.parse().ok()?,
        })
    }

    /// How full, for comparing servers; a server with no limit ranks by
    /// nothing (it cannot run out before its machine does).
    fn fill(&self) -> f64 {
        if self.max == 0 {
            0.0
        } else {
            self.used as f64 / self.max as f64
        }
    }
}

/// The texts of an `INFO` answer: one from a single Redis, one per master
/// from a cluster (a map of node address to text).
fn info_texts(v: &Value) -> Vec<String> {
    match v {
        Value::BulkString(b) => vec![String::from_utf8_lossy(b).into_owned()],
        Value::VerbatimString { text, .. } => vec![text.clone()],
        Value::SimpleString(s) => vec![s.clone()],
        Value::Map(pairs) => pairs.iter().flat_map(|(_, v)| info_texts(v)).collect(),
        Value::Array(items) => items.iter().flat_map(info_texts).collect(),
        _ => Vec::new(),
    }
}

/// The server nearest its limit (the one an alert must see), or the
/// biggest when none has a limit.
fn fullest(texts: &[String]) -> Option<Memory> {
    texts
        .iter()
        .filter_map(|t| Memory::from_info(t))
        .max_by(|a, b| a.fill().total_cmp(&b.fill()).then(a.used.cmp(&b.used)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\nused_memory_rss:2000000\r\nmaxmemory:4194304\r\nmaxmemory_human:4.00M\r\n";

    #[test]
    fn reads_used_and_max_and_not_their_lookalikes() {
        assert_eq!(
            Memory::from_info(INFO),
            Some(Memory {
                used: 1_048_576,
                max: 4_194_304
            })
        );
        assert_eq!(Memory::from_info("# Memory\r\nused_memory_rss:5\r\n"), None);
    }

    #[test]
    fn a_cluster_reports_the_master_nearest_its_limit() {
        let cluster = Value::Map(vec![
            (
                Value::BulkString(b"127.0.0.1:7101".to_vec()),
                Value::BulkString(b"used_memory:900\r\nmaxmemory:1000\r\n".to_vec()),
            ),
            (
                Value::BulkString(b"127.0.0.1:7102".to_vec()),
                Value::BulkString(b"used_memory:5000\r\nmaxmemory:100000\r\n".to_vec()),
            ),
        ]);
        assert_eq!(fullest(&info_texts(&cluster)), Some(Memory { used: 900, max: 1000 }));
        let unlimited = Value::BulkString(b"used_memory:7\r\nmaxmemory:0\r\n".to_vec());
        assert_eq!(fullest(&info_texts(&unlimited)), Some(Memory { used: 7, max: 0 }));
    }

    #[test]
    fn the_shared_figures_round_trip() {
        assert_eq!(Memory::parse_pair("12 34"), Some(Memory { used: 12, max: 34 }));
        assert_eq!(Memory::parse_pair("12"), None);
    }
}
