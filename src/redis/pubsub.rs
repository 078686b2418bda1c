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
//! may have missed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use redis::aio::PubSubSink;
use redis::cluster_async::ClusterConnection;
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
    Single {
        client: redis::Client,
        sink: Arc<Mutex<Option<PubSubSink>>>,
    },
    /// The cluster connection itself (RESP3): sharded subscriptions, pushes
    /// arrive on the channel given to the client builder.
    Cluster { conn: ClusterConnection },
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
        Self {
            backend: Backend::Single {
                client,
                sink: Arc::new(Mutex::new(None)),
            },
            routes: Routes::default(),
            lost_at: Arc::default(),
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
    pub fn cluster(conn: ClusterConnection, mut pushes: mpsc::UnboundedReceiver<PushInfo>) -> Self {
        let routes = Routes::default();
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
                        table.clear();
                    }
                    _ => {}
                }
            }
        });
        Self {
            backend: Backend::Cluster { conn },
            routes,
            lost_at: Arc::default(),
        }
    }

    /// The connection, made if there is none (boxed: a lost one's reader
    /// makes the next).
    fn single_sink(
        client: redis::Client,
        slot: Arc<Mutex<Option<PubSubSink>>>,
        routes: Routes,
        lost_at: Arc<std::sync::Mutex<Option<Instant>>>,
    ) -> futures::future::BoxFuture<'static, Result<PubSubSink>> {
        async move {
            let mut guard = slot.lock().await;
            if let Some(sink) = guard.as_ref() {
                return Ok(sink.clone());
            }
            let pubsub = tokio::time::timeout(super::CONNECT_TIMEOUT, client.get_async_pubsub())
                .await
                .map_err(|_| Error::Unavailable("redis pub/sub: connecting timed out".into()))??;
            let (sink, mut stream) = pubsub.split();
            let lost = tokio_util::sync::CancellationToken::new();
            let (table, shared, gone) = (routes.clone(), slot.clone(), lost.clone());
            let (since, again) = (lost_at.clone(), client.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = gone.cancelled() => break,
                        msg = stream.next() => match msg {
                            Some(msg) => {
                                if let Ok(payload) = msg.get_payload::<String>() {
                                    route(&table, msg.get_channel_name(), &payload);
                                }
                            }
                            None => break,
                        },
                    }
                }
                tracing::warn!("redis pub/sub connection lost; seat feeds will resubscribe");
                metrics::counter!(m::PUBSUB_LOST).increment(1);
                metrics::gauge!(m::PUBSUB_UP).set(0.0);
                *since.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                gone.cancel();
                *shared.lock().await = None;
                // Dropping the senders ends every subscriber's stream.
                table.clear();
                // A new connection at once, not when the next consumer asks:
                // "reconnecting" lasts as long as Redis cannot be reached.
                let mut wait = RECONNECT_MIN;
                while Self::single_sink(again.clone(), shared.clone(), table.clone(), since.clone())
                    .await
                    .is_err()
                {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(RECONNECT_MAX);
                }
            });
            let mut pinger = sink.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = lost.cancelled() => return,
                        _ = tokio::time::sleep(PING_EVERY) => {}
                    }
                    // Any answer will do (subscribed, PING answers a list).
                    let answered = tokio::time::timeout(PING_TIMEOUT, pinger.ping::<Value>()).await;
                    if !matches!(answered, Ok(Ok(_))) {
                        tracing::warn!("redis pub/sub connection stopped answering; replacing it");
                        lost.cancel();
                        return;
                    }
                }
            });
            *lost_at.lock().unwrap_or_else(|p| p.into_inner()) = None;
            metrics::gauge!(m::PUBSUB_UP).set(1.0);
            *guard = Some(sink.clone());
            Ok(sink)
        }
        .boxed()
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
                Backend::Single { client, sink } => {
                    match Self::single_sink(client.clone(), sink.clone(), self.routes.clone(), self.lost_at.clone())
                        .await
                    {
                        // Bounded: on a connection gone silent the confirmation never comes.
                        Ok(mut sink) => {
                            match tokio::time::timeout(super::RESPONSE_TIMEOUT, sink.subscribe(channel)).await {
                                Ok(r) => r.map_err(Error::from),
                                Err(_) => Err(Error::Unavailable("redis pub/sub: subscribing timed out".into())),
                            }
                        }
                        Err(e) => Err(e),
                    }
                }
                Backend::Cluster { conn } => conn.clone().ssubscribe(channel).await.map_err(Error::from),
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
            Backend::Single { sink, .. } => {
                if let Some(mut sink) = sink.lock().await.clone() {
                    sink.unsubscribe(channel).await?;
                }
            }
            Backend::Cluster { conn } => conn.clone().sunsubscribe(channel).await?,
        }
        Ok(())
    }

    /// Channels this node is subscribed to.
    pub fn channels(&self) -> usize {
        self.routes.len()
    }
}
