//! The Redis engine: every state change is one Lua script from `lua/`, which
//! checks and writes all seats of a show atomically and publishes the delta
//! itself, so no change is ever unannounced.

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use redis::{AsyncCommands, Script, Value};
use std::sync::Arc;

use super::{GC_BATCH, Reply, SeatLocks};
use crate::domain::seats::{
    ExtendOutcome, HoldOutcome, HoldRecord, LockTimes, OrderLock, Owner, ReleaseOutcome, SeatDelta, SeatSnapshot,
};
use crate::error::{Error, Result};
use crate::redis::RedisHandle;
use crate::redis::keys::{Keys, ShowKeys};
use crate::redis::scripts::Scripts;

pub struct RedisSeatLocks {
    redis: Arc<RedisHandle>,
    keys: Keys,
    scripts: Arc<Scripts>,
    times: LockTimes,
}

impl RedisSeatLocks {
    pub fn new(redis: Arc<RedisHandle>, keys: Keys, times: LockTimes) -> Self {
        Self {
            redis,
            keys,
            scripts: Arc::new(Scripts::load()),
            times,
        }
    }

    /// Runs a seat script with the common KEYS and ARGV, then `args`.
    async fn run(&self, script: &Script, show: &str, now: i64, args: &[&str]) -> Result<Vec<Value>> {
        let k = self.keys.show(show);
        let mut inv = script.prepare_invoke();
        for key in k.script_keys() {
            inv.key(key);
        }
        let publish = if self.redis.cluster { "SPUBLISH" } else { "PUBLISH" };
        inv.arg(show)
            .arg(&k.channel)
            .arg(publish)
            .arg(now)
            .arg(self.times.retention_ms);
        for a in args {
            inv.arg(*a);
        }
        let mut conn = self.redis.conn.clone();
        let reply: Value = inv.invoke_async(&mut conn).await?;
        match reply {
            Value::Array(items) if items.len() >= 2 => Ok(items),
            other => Err(Error::Internal(format!("seat script answered {other:?}"))),
        }
    }

    fn show_keys(&self, show: &str) -> ShowKeys {
        self.keys.show(show)
    }
}

fn reply<T>(items: &[Value], out: T) -> Result<Reply<T>> {
    Ok(Reply {
        out,
        expired: int(&items[0])? as u32,
        version: int(&items[1])? as u64,
    })
}

fn int(v: &Value) -> Result<i64> {
    redis::from_redis_value_ref(v).map_err(|e| Error::Internal(format!("seat script reply: {e}")))
}

fn text(v: Option<&Value>) -> Result<String> {
    let v = v.ok_or_else(|| Error::Internal("seat script reply too short".into()))?;
    redis::from_redis_value_ref(v).map_err(|e| Error::Internal(format!("seat script reply: {e}")))
}

fn texts(v: Option<&Value>) -> Result<Vec<String>> {
    let v = v.ok_or_else(|| Error::Internal("seat script reply too short".into()))?;
    redis::from_redis_value_ref(v).map_err(|e| Error::Internal(format!("seat script reply: {e}")))
}

fn order_lock(items: &[Value]) -> Result<OrderLock> {
    Ok(OrderLock {
        order_id: text(items.get(3))?,
        expires_ms: int(items.get(4).unwrap_or(&Value::Nil))?,
        created_ms: int(items.get(5).unwrap_or(&Value::Nil))?,
    })
}

fn not_active(items: &[Value]) -> Result<String> {
    text(items.get(3))
}

#[async_trait]
impl SeatLocks for RedisSeatLocks {
    async fn hold(
        &self,
        show: &str,
        now: i64,
        user: &str,
        hold_id: &str,
        seats: &[String],
        ttl_ms: i64,
    ) -> Result<Reply<HoldOutcome>> {
        let ttl = ttl_ms.to_string();
        let mut args = vec![user, hold_id, &ttl];
        args.extend(seats.iter().map(String::as_str));
        let items = self.run(&self.scripts.hold, show, now, &args).await?;
        let out = if int(&items[2])? == 1 {
            let prev = text(items.get(3))?;
            HoldOutcome::Held {
                version: int(&items[1])? as u64,
                replaced: (!prev.is_empty()).then_some(prev),
            }
        } else {
            HoldOutcome::Conflict {
                conflicts: texts(items.get(3))?,
                taken: texts(items.get(4))?,
            }
        };
        reply(&items, out)
    }

    async fn release(&self, show: &str, now: i64, user: &str, hold_id: &str) -> Result<Reply<ReleaseOutcome>> {
        let items = self.run(&self.scripts.release, show, now, &[user, hold_id]).await?;
        let out = match text(items.get(2))?.as_str() {
            "RELEASED" => ReleaseOutcome::Released,
            "NOT_FOUND" => ReleaseOutcome::NotFound,
            _ => ReleaseOutcome::NotActive(not_active(&items)?),
        };
        reply(&items, out)
    }

    async fn extend_for_order(
        &self,
        show: &str,
        now: i64,
        user: &str,
        hold_id: &str,
        order_id: &str,
        order_ttl_ms: i64,
    ) -> Result<Reply<ExtendOutcome>> {
        let (ttl, grace) = (order_ttl_ms.to_string(), self.times.order_grace_ms.to_string());
        let items = self
            .run(
                &self.scripts.extend_for_order,
                show,
                now,
                &[user, hold_id, order_id, &ttl, &grace],
            )
            .await?;
        let out = match text(items.get(2))?.as_str() {
            "ATTACHED" => ExtendOutcome::Attached(order_lock(&items)?),
            "EXISTING" => ExtendOutcome::Existing(order_lock(&items)?),
            "NOT_FOUND" => ExtendOutcome::NotFound,
            "EXPIRED" => ExtendOutcome::Expired,
            _ => ExtendOutcome::NotActive(not_active(&items)?),
        };
        reply(&items, out)
    }

    async fn book(&self, show: &str, now: i64, order_id: &str, hold_id: &str, seats: &[String]) -> Result<Reply<()>> {
        let mut args = vec![order_id, hold_id];
        args.extend(seats.iter().map(String::as_str));
        let items = self.run(&self.scripts.book, show, now, &args).await?;
        reply(&items, ())
    }

    async fn release_order(
        &self,
        show: &str,
        now: i64,
        order_id: &str,
        hold_id: &str,
        seats: &[String],
    ) -> Result<Reply<()>> {
        let mut args = vec![order_id, hold_id];
        args.extend(seats.iter().map(String::as_str));
        let items = self.run(&self.scripts.release_order, show, now, &args).await?;
        reply(&items, ())
    }

    async fn expire(&self, show: &str, now: i64) -> Result<Reply<()>> {
        let limit = GC_BATCH.to_string();
        let items = self.run(&self.scripts.expire, show, now, &[&limit]).await?;
        reply(&items, ())
    }

    async fn snapshot(&self, show: &str, now: i64) -> Result<Reply<SeatSnapshot>> {
        let items = self.run(&self.scripts.snapshot, show, now, &[]).await?;
        let flat = texts(items.get(2))?;
        let mut taken = std::collections::HashMap::with_capacity(flat.len() / 2);
        for pair in flat.chunks_exact(2) {
            let owner = Owner::parse(&pair[1]).ok_or_else(|| Error::Internal(format!("seat owner {:?}", pair[1])))?;
            taken.insert(pair[0].clone(), owner);
        }
        let version = int(&items[1])? as u64;
        reply(&items, SeatSnapshot { version, taken })
    }

    async fn hold_record(&self, show: &str, hold_id: &str) -> Result<Option<HoldRecord>> {
        let mut conn = self.redis.conn.clone();
        let raw: Option<String> = conn.hget(self.show_keys(show).holds, hold_id).await?;
        raw.map(|r| serde_json::from_str(&r).map_err(Error::from)).transpose()
    }

    async fn subscribe(&self, show: &str) -> Result<BoxStream<'static, SeatDelta>> {
        let payloads = self
            .redis
            .subscriptions
            .subscribe(&self.show_keys(show).channel)
            .await?;
        Ok(payloads
            .filter_map(|p| async move {
                serde_json::from_str::<SeatDelta>(&p)
                    .map_err(|e| tracing::error!(error = %e, "undecodable seat delta"))
                    .ok()
            })
            .boxed())
    }

    async fn unsubscribe(&self, show: &str) -> Result<()> {
        self.redis
            .subscriptions
            .unsubscribe(&self.show_keys(show).channel)
            .await
    }

    async fn ping(&self) -> Result<()> {
        let mut conn = self.redis.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    fn name(&self) -> &'static str {
        "redis"
    }
}
