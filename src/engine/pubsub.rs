//! One Redis pub/sub connection per node, shared by every show: a show is
//! one SUBSCRIBE on it, taken when the node's first viewer of the show
//! arrives, and its messages are routed to the show's local channel.

use std::sync::Arc;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use futures::StreamExt;
use futures::stream::BoxStream;
use redis::aio::PubSubSink;
use tokio::sync::{Mutex, broadcast};

use super::{EVENT_BUFFER, broadcast_stream};
use crate::domain::seats::SeatDelta;
use crate::error::{Error, Result};

pub struct Subscriptions {
    client: redis::Client,
    /// The live connection's command half; `None` until first use and after
    /// the connection is lost. A tokio mutex: connecting awaits under it.
    sink: Arc<Mutex<Option<PubSubSink>>>,
    /// Channel name → the show's local channel.
    routes: Arc<DashMap<String, broadcast::Sender<SeatDelta>>>,
}

impl Subscriptions {
    pub fn new(client: redis::Client) -> Self {
        Self {
            client,
            sink: Arc::new(Mutex::new(None)),
            routes: Arc::new(DashMap::new()),
        }
    }

    async fn sink(&self) -> Result<PubSubSink> {
        let mut slot = self.sink.lock().await;
        if let Some(sink) = slot.as_ref() {
            return Ok(sink.clone());
        }
        let (sink, mut stream) = self.client.get_async_pubsub().await?.split();
        let (routes, shared) = (self.routes.clone(), self.sink.clone());
        tokio::spawn(async move {
            while let Some(msg) = stream.next().await {
                let Some(tx) = routes.get(msg.get_channel_name()) else {
                    continue;
                };
                let Ok(payload) = msg.get_payload::<String>() else {
                    continue;
                };
                match serde_json::from_str::<SeatDelta>(&payload) {
                    Ok(delta) => {
                        let _ = tx.send(delta);
                    }
                    Err(e) => tracing::error!(error = %e, "undecodable seat delta"),
                }
            }
            tracing::warn!("redis pub/sub connection lost; subscribers will resubscribe");
            *shared.lock().await = None;
            // Dropping the senders ends every subscriber's stream.
            routes.clear();
        });
        *slot = Some(sink.clone());
        Ok(sink)
    }

    pub async fn subscribe(&self, channel: &str) -> Result<BoxStream<'static, SeatDelta>> {
        let (rx, fresh) = match self.routes.entry(channel.to_owned()) {
            Entry::Occupied(e) => (e.get().subscribe(), false),
            Entry::Vacant(v) => {
                let (tx, rx) = broadcast::channel(EVENT_BUFFER);
                v.insert(tx);
                (rx, true)
            }
        };
        if fresh {
            // The route exists before SUBSCRIBE is sent, so no message of the
            // channel can arrive unrouted.
            let result = match self.sink().await {
                Ok(mut sink) => sink.subscribe(channel).await.map_err(Error::from),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                self.routes.remove(channel);
                return Err(e);
            }
        }
        Ok(broadcast_stream(rx))
    }

    pub async fn unsubscribe(&self, channel: &str) -> Result<()> {
        if self.routes.remove(channel).is_some() {
            if let Some(mut sink) = self.sink.lock().await.clone() {
                sink.unsubscribe(channel).await?;
            }
        }
        Ok(())
    }

    /// Channels this node is subscribed to (for tests and metrics).
    pub fn channels(&self) -> usize {
        self.routes.len()
    }
}
