//! Joins to Redis in batches: the joins (and polls) of one show that arrive
//! while the show's previous join call is in flight go to Redis together,
//! as one `wr_join.lua` call. A lone join waits for nothing (the batch is
//! whatever is queued when the call goes out); under a stampede the calls
//! grow, and Redis runs one script, one opening check and one round trip
//! for many shoppers instead of one each. Arrival order within a show is
//! kept: a batch is sent in the order its joins arrived, and a show has one
//! call in flight at a time.

use crate::supervise::watched;
use std::sync::Arc;

use dashmap::DashMap;
use redis::{Script, Value};
use tokio::sync::{mpsc, oneshot};

use super::engine::{Spend, Stand, Standing};
use crate::error::{Error, Result};
use crate::redis::RedisHandle;
use crate::redis::keys::{Keys, RoomKeys};
use crate::redis::reply::ReplyReader;

/// Most shoppers in one script call: it stays short on Redis (a few
/// microseconds each), so nothing else waits long behind it.
pub const MAX_BATCH: usize = 128;
/// Joins a show may have queued on a node before callers wait to queue.
const QUEUE: usize = 4096;

struct Pending {
    user: String,
    now: i64,
    create: bool,
    until: i64,
    spend: Option<Spend>,
    reply: oneshot::Sender<Result<Stand>>,
}

pub struct JoinBatcher {
    redis: Arc<RedisHandle>,
    keys: Keys,
    script: Script,
    shows: DashMap<String, mpsc::Sender<Pending>>,
}

impl JoinBatcher {
    pub fn new(redis: Arc<RedisHandle>, keys: Keys, script: Script) -> Self {
        Self {
            redis,
            keys,
            script,
            shows: DashMap::new(),
        }
    }

    pub async fn join(
        &self,
        show: &str,
        user: &str,
        now: i64,
        create: bool,
        until: i64,
        spend: Option<Spend>,
    ) -> Result<Stand> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            user: user.to_owned(),
            now,
            create,
            until,
            spend,
            reply,
        };
        self.queue(show)
            .send(pending)
            .await
            .map_err(|_| Error::Internal("the join batcher stopped".into()))?;
        answer
            .await
            .map_err(|_| Error::Internal("the join batcher dropped a join".into()))?
    }

    /// The show's queue, and its worker the first time. The worker ends when
    /// the batcher is dropped (its sender goes with the map).
    fn queue(&self, show: &str) -> mpsc::Sender<Pending> {
        if let Some(tx) = self.shows.get(show)
            && !tx.is_closed()
        {
            return tx.clone();
        }
        // None yet, or its worker died (a panic, logged and counted): a new one.
        let mut entry = self.shows.entry(show.to_owned()).or_insert_with(|| self.start(show));
        if entry.is_closed() {
            *entry = self.start(show);
        }
        entry.clone()
    }

    fn start(&self, show: &str) -> mpsc::Sender<Pending> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let worker = Worker {
            redis: self.redis.clone(),
            keys: self.keys.room(show),
            script: self.script.clone(),
        };
        watched("join batcher", worker.run(rx));
        tx
    }
}

struct Worker {
    redis: Arc<RedisHandle>,
    keys: RoomKeys,
    script: Script,
}

impl Worker {
    async fn run(self, mut rx: mpsc::Receiver<Pending>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = rx.recv().await {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
            match self.call(&batch).await {
                Ok(answers) => {
                    for (p, answer) in batch.drain(..).zip(answers) {
                        let _ = p.reply.send(stand(answer));
                    }
                }
                Err(e) => {
                    for p in batch.drain(..) {
                        let _ = p.reply.send(Err(copy(&e)));
                    }
                }
            }
        }
    }

    async fn call(&self, batch: &[Pending]) -> Result<Vec<Value>> {
        let k = &self.keys;
        let mut inv = self.script.prepare_invoke();
        for key in k.join_keys() {
            inv.key(key);
        }
        // The spent-challenge keys follow the nine, one per shopper who
        // spends one; each shopper's ARGV names theirs by its index.
        let mut next_key = k.join_keys().len() + 1;
        for p in batch {
            inv.arg(&p.user)
                .arg(p.now)
                .arg(if p.create { "1" } else { "0" })
                .arg(p.until);
            match &p.spend {
                Some(spend) => {
                    inv.key(k.spent_key(&spend.id));
                    inv.arg(next_key).arg(spend.until_ms.max(1));
                    next_key += 1;
                }
                None => {
                    inv.arg(0).arg(0);
                }
            }
        }
        let mut conn = self.redis.conn.clone();
        let mut r = ReplyReader::new("wr_join", inv.invoke_async(&mut conn).await?)?;
        let answers = batch.iter().map(|_| r.next_value()).collect::<Result<Vec<_>>>()?;
        r.finish()?;
        Ok(answers)
    }
}

/// One error for every join of a failed call.
fn copy(e: &Error) -> Error {
    match e {
        Error::Internal(m) => Error::Internal(m.clone()),
        other => Error::Unavailable(other.to_string()),
    }
}

/// One shopper's answer (`lua/wr_join.lua`'s reply).
fn stand(answer: Value) -> Result<Stand> {
    let mut r = ReplyReader::new("wr_join", answer)?;
    let (standing, seq) = match r.next_text()?.as_str() {
        "ADMITTED" => {
            let expires_ms = r.next_as::<f64>()? as i64;
            let seq = r.next_as()?;
            (
                Standing::Admitted {
                    expires_ms,
                    queue_length: r.next_as()?,
                },
                seq,
            )
        }
        "PREQUEUED" => (Standing::PreQueued { entrants: r.next_as()? }, r.next_as()?),
        "QUEUED" => (
            Standing::Queued {
                score: r
                    .next_text()?
                    .parse()
                    .map_err(|_| Error::Internal("wr_join: queue score".into()))?,
                position: r.next_as()?,
                queue_length: r.next_as()?,
            },
            r.next_as()?,
        ),
        _ => (Standing::None, r.next_as()?),
    };
    r.finish()?;
    Ok(Stand { standing, seq })
}
