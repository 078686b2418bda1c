//! Redis, shared by every feature: one handle over a single Redis or a Redis
//! Cluster (so the engines run the same commands and scripts on both), the
//! node's one pub/sub connection, every key name and every script.
//! Nothing here knows what a hold or a queue is.

pub mod keys;
pub mod pubsub;
pub mod scripts;

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::error::{Error, Result};
use pubsub::Subscriptions;

/// How long one Redis command may take before the request gives up with 503.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A cloneable multiplexed connection: clones share one socket (or one per
/// cluster node), so handlers clone it freely.
#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// Where Redis is, and a connection to it.
pub struct RedisHandle {
    pub conn: RedisConn,
    /// The node's one pub/sub connection.
    pub subscriptions: Subscriptions,
    pub cluster: bool,
}

impl RedisHandle {
    /// Connects to `REDIS_CLUSTER_NODES` if given, else to `REDIS_URL`.
    pub async fn connect(url: Option<&str>, cluster_nodes: &[String]) -> Result<Self> {
        if !cluster_nodes.is_empty() {
            let (push_tx, push_rx) = tokio::sync::mpsc::unbounded_channel();
            let client = redis::cluster::ClusterClientBuilder::new(cluster_nodes.to_vec())
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(RESPONSE_TIMEOUT)
                // RESP3 carries sharded pub/sub on the same connections.
                .use_protocol(redis::ProtocolVersion::RESP3)
                .push_sender(push_tx)
                .build()
                .map_err(|e| Error::Unavailable(format!("REDIS_CLUSTER_NODES: {e}")))?;
            let conn = client
                .get_async_connection()
                .await
                .map_err(|e| Error::Unavailable(format!("REDIS_CLUSTER_NODES: {e}")))?;
            let subscriptions = Subscriptions::cluster(conn.clone(), push_rx);
            return Ok(Self {
                conn: RedisConn::Cluster(conn),
                subscriptions,
                cluster: true,
            });
        }
        let url = url.ok_or_else(|| Error::Internal("no Redis configured".into()))?;
        let client = redis::Client::open(url).map_err(|e| Error::Unavailable(format!("REDIS_URL: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(|e| Error::Unavailable(format!("REDIS_URL: {e}")))?;
        Ok(Self {
            conn: RedisConn::Single(conn),
            subscriptions: Subscriptions::single(client),
            cluster: false,
        })
    }
}
