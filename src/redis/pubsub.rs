//! One Redis pub/sub connection per node, shared by every show and feature:
//! a channel is one SUBSCRIBE (SSUBSCRIBE on Redis Cluster, so a show's
//! messages stay on its slot's shard) on it, taken when the node's first
//! local consumer arrives; payloads are routed to the channel's local
//! broadcast and parsed by that one consumer.
//!
//! A subscription connection that stops answering without closing (a host
//! gone behind a VIP, a partition) looks alive forever to a reader: the
//! connection is pinged every few seconds, and one that does not answer is
//! dropped like a closed one: every channel's stream ends, so each
//! consumer subscribes again (on a new connection) and re-reads what it
//! may have missed. On a Redis Cluster the subscriptions ride the cluster
//! connection itself: every master is pinged through it, and a master that
//! does not answer ends every channel's stream the same way (each consumer
//! subscribes again once the cluster has moved on, and re-reads).

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use redis::aio::PubSubSink;
use redis::{PushInfo, PushKind, Value};
use tokio::sync::{Mutex, broadcast, mpsc};

use crate::error::{Error, Result};
use crate::metrics as m;

/// How often the subscription connection is pinged, and how long it has to
/// answer: a silent one is replaced within about 5 s.
const PING_EVERY: Duration = Duration::from_secs(3);
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// Backoff bounds of reconnecting a lost subscription connection.
const RECONNECT_MIN: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_millis(500);

/// Messages a local receiver may fall behind by before it misses some (and
/// sees a gap in the sequence numbers inside them).
pub const CHANNEL_BUFFER: usize = 1024;

/// A message's payload, shared by every local receiver.
pub type Payload = Arc<str>;

type Routes = Arc<DashMap<String, broadcast::Sender<Payload>>>;

enum Backend {
    /// A dedicated RESP2 pub/sub connection; `None` until first use and
    /// after it is lost. A tokio mutex: connecting awaits under it.
    Single(Link),
    /// The cluster connection itself (RESP3): sharded subscriptions, pushes
    /// arrive on the channel given to the client builder (the same for a
    /// connection made again).
    Cluster { conn: Arc<super::Clustered> },
}

pub struct Subscriptions {
    backend: Backend,
    /// Channel name → the show's local channel.
    routes: Routes,
    /// When the last connection was found lost, until a new one is made.
    lost_at: Arc<std::sync::Mutex<Option<Instant>>>,
}

fn route(routes: &Routes, channel: &str, payload: &str) {
    if let Some(tx) = routes.get(channel) {
        let _ = tx.send(Payload::from(payload));
    }
}

impl Subscriptions {
    pub fn single(client: redis::Client) -> Self {
        let (routes, lost_at) = (Routes::default(), Arc::default());
        Self {
            backend: Backend::Single(Link {
                client,
                slot: Arc::default(),
                routes: Arc::clone(&routes),
                lost_at: Arc::clone(&lost_at),
            }),
            routes,
            lost_at,
        }
    }

    /// `ok`, or `reconnecting` while a lost subscription connection has not
    /// been replaced (for `/readyz` and `redis_pubsub_up`).
    pub fn status(&self) -> &'static str {
        match *self.lost_at.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(_) => "reconnecting",
            None => "ok",
        }
    }

    /// Routes the cluster connection's pushes; `pushes` is the receiver of
    /// the push sender the cluster client was built with.
    pub fn cluster(conn: Arc<super::Clustered>, mut pushes: mpsc::UnboundedReceiver<PushInfo>) -> Self {
        let routes = Routes::default();
        // Subscriptions made on a replaced connection are gone with it:
        // every stream ends, so each consumer subscribes on the new one.
        let replaced = routes.clone();
        conn.on_replaced(move || {
            metrics::counter!(m::PUBSUB_LOST).increment(1);
            replaced.clear();
        });
        let table = routes.clone();
        tokio::spawn(async move {
            while let Some(push) = pushes.recv().await {
                match push.kind {
                    PushKind::SMessage | PushKind::Message => {
                        if let [Value::BulkString(channel), Value::BulkString(payload), ..] = push.data.as_slice() {
                            route(
                                &table,
                                &String::from_utf8_lossy(channel),
                                &String::from_utf8_lossy(payload),
                            );
                        }
                    }
                    PushKind::Disconnection => {
                        // Messages may have been lost: end every stream so
                        // each feed resubscribes and re-reads its show.
                        tracing::warn!("redis cluster connection dropped; seat feeds will resync");
                        metrics::counter!(m::PUBSUB_LOST).increment(1);
                        table.clear();
                    }
                    _ => {}
                }
            }
        });
        let lost_at = Arc::default();
        tokio::spawn(watch_cluster(Arc::clone(&conn), Arc::clone(&lost_at)));
        Self {
            backend: Backend::Cluster { conn },
            routes,
            lost_at,
        }
    }

    pub async fn subscribe(&self, channel: &str) -> Result<BoxStream<'static, Payload>> {
        let (rx, fresh) = match self.routes.entry(channel.to_owned()) {
            Entry::Occupied(e) => (e.get().subscribe(), false),
            Entry::Vacant(v) => {
                let (tx, rx) = broadcast::channel(CHANNEL_BUFFER);
                v.insert(tx);
                (rx, true)
            }
        };
        if fresh {
            // The route exists before the subscription is sent, so no message
            // of the channel can arrive unrouted.
            let result = match &self.backend {
                Backend::Single(link) => match link.sink().await {
                    // Bounded: on a connection gone silent the confirmation never comes.
                    Ok(mut sink) => {
                        match tokio::time::timeout(super::RESPONSE_TIMEOUT, sink.subscribe(channel)).await {
                            Ok(r) => r.map_err(Error::from),
                            Err(_) => Err(Error::Unavailable("redis pub/sub: subscribing timed out".into())),
                        }
                    }
                    Err(e) => Err(e),
                },
                Backend::Cluster { conn } => conn.conn().ssubscribe(channel).await.map_err(Error::from),
            };
            if let Err(e) = result {
                self.routes.remove(channel);
                return Err(e);
            }
        }
        Ok(crate::broadcast::lossy_stream(rx))
    }

    pub async fn unsubscribe(&self, channel: &str) -> Result<()> {
        if self.routes.remove(channel).is_none() {
            return Ok(());
        }
        match &self.backend {
            Backend::Single(link) => {
                if let Some(mut sink) = link.slot.lock().await.clone() {
                    sink.unsubscribe(channel).await?;
                }
            }
            Backend::Cluster { conn } => conn.conn().sunsubscribe(channel).await?,
        }
        Ok(())
    }

    /// Channels this node is subscribed to.
    pub fn channels(&self) -> usize {
        self.routes.len()
    }
}

/// The single Redis's subscription connection: made on first use, read by
/// one task, pinged by another, and made again at once when lost.
#[derive(Clone)]
struct Link {
    client: redis::Client,
    /// `None` until first use and after it is lost. A tokio mutex:
    /// connecting awaits under it.
    slot: Arc<Mutex<Option<PubSubSink>>>,
    routes: Routes,
    lost_at: Arc<std::sync::Mutex<Option<Instant>>>,
}

impl Link {
    /// The connection, made if there is none (boxed: a lost one's reader
    /// makes the next).
    fn sink(&self) -> futures::future::BoxFuture<'static, Result<PubSubSink>> {
        let link = self.clone();
        async move {
            let mut guard = link.slot.lock().await;
            if let Some(sink) = guard.as_ref() {
                return Ok(sink.clone());
            }
            let pubsub = tokio::time::timeout(super::CONNECT_TIMEOUT, link.client.get_async_pubsub())
                .await
                .map_err(|_| Error::Unavailable("redis pub/sub: connecting timed out".into()))??;
            let (sink, stream) = pubsub.split();
            let lost = tokio_util::sync::CancellationToken::new();
            tokio::spawn(link.clone().read(stream, lost.clone()));
            tokio::spawn(ping(sink.clone(), lost));
            *link.lost_at.lock().unwrap_or_else(|p| p.into_inner()) = None;
            metrics::gauge!(m::PUBSUB_UP).set(1.0);
            *guard = Some(sink.clone());
            Ok(sink)
        }
        .boxed()
    }

    /// Routes the connection's messages until it ends or `lost` says it
    /// went silent; then ends every channel's stream (each consumer
    /// subscribes again and re-reads) and makes a new connection at once:
    /// "reconnecting" lasts only as long as Redis cannot be reached.
    async fn read(self, mut stream: redis::aio::PubSubStream, lost: tokio_util::sync::CancellationToken) {
        loop {
            tokio::select! {
                _ = lost.cancelled() => break,
                msg = stream.next() => match msg {
                    Some(msg) => {
                        if let Ok(payload) = msg.get_payload::<String>() {
                            route(&self.routes, msg.get_channel_name(), &payload);
                        }
                    }
                    None => break,
                },
            }
        }
        tracing::warn!("redis pub/sub connection lost; seat feeds will resubscribe");
        metrics::counter!(m::PUBSUB_LOST).increment(1);
        metrics::gauge!(m::PUBSUB_UP).set(0.0);
        *self.lost_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        lost.cancel();
        *self.slot.lock().await = None;
        // Dropping the senders ends every subscriber's stream.
        self.routes.clear();
        let mut wait = RECONNECT_MIN;
        while self.sink().await.is_err() {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(RECONNECT_MAX);
        }
    }
}

/// Pings the connection every few seconds; one that does not answer in
/// time is declared lost (`lost`), as if it had closed.
async fn ping(mut sink: PubSubSink, lost: tokio_util::sync::CancellationToken) {
    loop {
        tokio::select! {
            _ = lost.cancelled() => return,
            _ = tokio::time::sleep(PING_EVERY) => {}
        }
        // Any answer will do (subscribed, PING answers a list).
        let answered = tokio::time::timeout(PING_TIMEOUT, sink.ping::<Value>()).await;
        if !matches!(answered, Ok(Ok(_))) {
            tracing::warn!("redis pub/sub connection stopped answering; replacing it");
            lost.cancel();
            return;
        }
    }
}

/// The cluster connection's liveness: every master pinged through it every
/// few seconds. One that does not answer in time (stopped, partitioned,
/// failing over) may hold subscriptions that will never deliver, and the
/// client would keep sending its slots there: the connection is made
/// again, every channel's stream ends, so each consumer subscribes again
/// on the new one and re-reads; "reconnecting" until every master answers.
async fn watch_cluster(cluster: Arc<super::Clustered>, lost_at: Arc<std::sync::Mutex<Option<Instant>>>) {
    use redis::cluster_routing::{MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo};
    metrics::gauge!(m::PUBSUB_UP).set(1.0);
    loop {
        tokio::time::sleep(PING_EVERY).await;
        let every_master =
            RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, Some(ResponsePolicy::AllSucceeded)));
        let mut conn = cluster.conn();
        let answered = tokio::time::timeout(PING_TIMEOUT, conn.route_command(redis::cmd("PING"), every_master)).await;
        let fine = matches!(answered, Ok(Ok(_)));
        let was_lost = lost_at.lock().unwrap_or_else(|p| p.into_inner()).is_some();
        if !fine {
            if !was_lost {
                tracing::warn!("a redis cluster master stopped answering; replacing the connection");
                metrics::gauge!(m::PUBSUB_UP).set(0.0);
                *lost_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            }
            // A new connection learns the cluster afresh (the replica that
            // took over); the subscriptions follow it (`on_replaced`).
            cluster.replace().await;
        } else if was_lost {
            tracing::info!("every redis cluster master answers again");
            metrics::gauge!(m::PUBSUB_UP).set(1.0);
            *lost_at.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }
}
