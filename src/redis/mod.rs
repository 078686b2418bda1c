//! Redis, shared by every feature: one handle over a single Redis or a Redis
//! Cluster (so the engines run the same commands and scripts on both), the
//! node's one pub/sub connection, every key name and every script.
//! Nothing here knows what a hold or a queue is.

pub mod keys;
pub mod pubsub;
pub mod reply;
pub mod scripts;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::error::{Error, Result};
use pubsub::Subscriptions;

/// How long one Redis command may take before the request gives up with 503
/// (the contract: an outage is a 503 within 2 s, never a hang).
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(1500);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A cloneable multiplexed connection: clones share one socket (or one per
/// cluster node), so handlers clone it freely.
#[derive(Clone)]
pub enum RedisConn {
    Single(Arc<Single>),
    Cluster(Arc<Clustered>),
}

/// A Redis Cluster connection that is replaced when a master goes silent:
/// the client re-learns the cluster from `MOVED` answers and closed
/// sockets, and a master that stops answering without closing (a host
/// gone behind a partition, a stopped process) gives neither, so without
/// this its slots would answer 503 long after its replica took over.
pub struct Clustered {
    client: redis::cluster::ClusterClient,
    /// A std lock: held only to clone or swap the connection.
    current: RwLock<ClusterConnection>,
    replacing: AtomicBool,
    /// When the connection was last replaced: at most one replacement per
    /// `REPLACE_EVERY` (a failover's timeouts come in bursts).
    replaced_at: std::sync::Mutex<Option<std::time::Instant>>,
    /// Told after each replacement (the subscriptions move to the new one).
    on_replaced: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
}

const REPLACE_EVERY: Duration = Duration::from_secs(2);

impl Clustered {
    pub fn conn(&self) -> ClusterConnection {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Runs `f` after every replacement (set once).
    pub fn on_replaced(&self, f: impl Fn() + Send + Sync + 'static) {
        let _ = self.on_replaced.set(Box::new(f));
    }

    /// Makes a new connection (a fresh view of the cluster, new sockets)
    /// and puts it in place, unless one was made within `REPLACE_EVERY`.
    pub async fn replace(&self) {
        if self.replacing.swap(true, Ordering::AcqRel) {
            return;
        }
        let recent = self
            .replaced_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|at| at.elapsed() < REPLACE_EVERY);
        if !recent {
            match self.client.get_async_connection().await {
                Ok(fresh) => {
                    tracing::warn!("redis cluster connection replaced (a master stopped answering)");
                    *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
                    *self.replaced_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(std::time::Instant::now());
                    if let Some(f) = self.on_replaced.get() {
                        f();
                    }
                }
                Err(e) => tracing::warn!(error = %e, "redis cluster reconnect failed; the next failure retries"),
            }
        }
        self.replacing.store(false, Ordering::Release);
    }

    /// After a command: one that timed out may have met a silent master.
    fn check(self: &Arc<Self>, timed_out: bool) {
        if timed_out {
            let this = self.clone();
            tokio::spawn(async move { this.replace().await });
        }
    }
}

/// One Redis behind a connection manager that is replaced when the server
/// turns out to be a replica (`READONLY` after a failover): the manager
/// reconnects only when its socket drops, and a demoted master keeps the
/// socket open, so without this the writes would fail for good.
pub struct Single {
    client: redis::Client,
    config: ConnectionManagerConfig,
    /// A std lock: held only to clone or swap the manager, never across an await.
    current: RwLock<ConnectionManager>,
    reconnecting: AtomicBool,
}

impl Single {
    fn manager(&self) -> ConnectionManager {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// After a reply, replaces the manager if Redis said it is read-only
    /// (an error reply arrives as a value and becomes an error later), or if
    /// a command timed out and a `PING` on the same connection does too:
    /// the manager reconnects only when its socket drops, and a connection
    /// gone silent (a host gone behind a VIP, a partition) never drops.
    fn check(self: &Arc<Self>, readonly: bool, timed_out: bool) {
        if !(readonly || timed_out) || self.reconnecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let silent = if readonly {
                tracing::warn!("redis answered READONLY (a failover?); reconnecting");
                true
            } else {
                let mut conn = this.manager();
                let ping = redis::cmd("PING");
                let answer = tokio::time::timeout(RESPONSE_TIMEOUT, ping.query_async::<Value>(&mut conn)).await;
                let silent = !matches!(answer, Ok(Ok(_)));
                if silent {
                    tracing::warn!("redis connection stopped answering; reconnecting");
                }
                silent
            };
            if silent {
                match ConnectionManager::new_with_config(this.client.clone(), this.config.clone()).await {
                    Ok(fresh) => *this.current.write().unwrap_or_else(|p| p.into_inner()) = fresh,
                    Err(e) => tracing::warn!(error = %e, "redis reconnect failed; the next failure retries"),
                }
            }
            this.reconnecting.store(false, Ordering::Release);
        });
    }
}

fn is_readonly_error(e: &redis::RedisError) -> bool {
    e.code() == Some("READONLY")
}

fn is_readonly(v: &Value) -> bool {
    matches!(v, Value::ServerError(e) if e.code() == "READONLY")
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(single) => {
                let (single, mut conn) = (single.clone(), single.manager());
                Box::pin(async move {
                    let result = conn.send_packed_command(cmd).await;
                    let timed_out = result.as_ref().is_err_and(|e| e.is_timeout());
                    single.check(result.as_ref().map_or_else(is_readonly_error, is_readonly), timed_out);
                    result
                })
            }
            Self::Cluster(clustered) => {
                let (clustered, mut conn) = (clustered.clone(), clustered.conn());
                Box::pin(async move {
                    let result = conn.req_packed_command(cmd).await;
                    clustered.check(result.as_ref().is_err_and(|e| e.is_timeout()));
                    result
                })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(single) => {
                let (single, mut conn) = (single.clone(), single.manager());
                Box::pin(async move {
                    let result = conn.send_packed_commands(cmd, offset, count).await;
                    let readonly = match &result {
                        Ok(values) => values.iter().any(is_readonly),
                        Err(e) => is_readonly_error(e),
                    };
                    single.check(readonly, result.as_ref().is_err_and(|e| e.is_timeout()));
                    result
                })
            }
            Self::Cluster(clustered) => {
                let (clustered, mut conn) = (clustered.clone(), clustered.conn());
                Box::pin(async move {
                    let result = conn.req_packed_commands(cmd, offset, count).await;
                    clustered.check(result.as_ref().is_err_and(|e| e.is_timeout()));
                    result
                })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(single) => single.manager().get_db(),
            Self::Cluster(clustered) => clustered.conn().get_db(),
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
    /// Redis `TIME` in milliseconds: the one clock every node agrees on.
    pub async fn time_ms(&self) -> Result<i64> {
        let mut conn = self.conn.clone();
        let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(&mut conn).await?;
        Ok(secs * 1000 + micros / 1000)
    }

    /// Connects to `REDIS_CLUSTER_NODES` if given, else to `REDIS_URL`.
    pub async fn connect(url: Option<&str>, cluster_nodes: &[String]) -> Result<Self> {
        if !cluster_nodes.is_empty() {
            let (push_tx, push_rx) = tokio::sync::mpsc::unbounded_channel();
            let client = redis::cluster::ClusterClientBuilder::new(cluster_nodes.to_vec())
                .connection_timeout(CONNECT_TIMEOUT)
                .response_timeout(RESPONSE_TIMEOUT)
                // A few quick retries ride over a MOVED or a slot refresh;
                // a failover in progress is a 503 the client retries, not a
                // request that hangs for seconds. Scripts are safe to retry.
                .retries(4)
                .min_retry_wait(50)
                .max_retry_wait(400)
                // RESP3 carries sharded pub/sub on the same connections.
                .use_protocol(redis::ProtocolVersion::RESP3)
                .push_sender(push_tx)
                .build()
                .map_err(|e| Error::Unavailable(format!("REDIS_CLUSTER_NODES: {e}")))?;
            let conn = client
                .get_async_connection()
                .await
                .map_err(|e| Error::Unavailable(format!("REDIS_CLUSTER_NODES: {e}")))?;
            let clustered = Arc::new(Clustered {
                client,
                current: RwLock::new(conn),
                replacing: AtomicBool::new(false),
                replaced_at: std::sync::Mutex::new(None),
                on_replaced: std::sync::OnceLock::new(),
            });
            let subscriptions = Subscriptions::cluster(clustered.clone(), push_rx);
            return Ok(Self {
                conn: RedisConn::Cluster(clustered),
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
        let conn = ConnectionManager::new_with_config(client.clone(), config.clone())
            .await
            .map_err(|e| Error::Unavailable(format!("REDIS_URL: {e}")))?;
        Ok(Self {
            conn: RedisConn::Single(Arc::new(Single {
                client: client.clone(),
                config,
                current: RwLock::new(conn),
                reconnecting: AtomicBool::new(false),
            })),
            subscriptions: Subscriptions::single(client),
            cluster: false,
        })
    }
}
