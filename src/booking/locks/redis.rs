//! The Redis engine: every state change is one Lua script from `lua/`, which
//! checks and writes all seats of a show atomically and publishes the delta
//! itself, so no change is ever unannounced.

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use redis::{AsyncCommands, Script, Value};
use std::sync::Arc;

use super::{GC_BATCH, Reply, SeatLocks};
use crate::domain::best::RowPlan;
use crate::domain::seats::{
    BestOutcome, ExtendOutcome, HoldOutcome, HoldRecord, LockTimes, OfferEnd, OrderLock, Owner, RecordState,
    ReleaseOutcome, SeatDelta, SeatSnapshot, WaitJoin, WaitStanding, WaitStats,
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

    /// `book` and `release_order`: one order's seats, fenced by its stamp.
    #[allow(clippy::too_many_arguments)]
    async fn settle(
        &self,
        script: &Script,
        show: &str,
        now: i64,
        order_id: &str,
        hold_id: &str,
        stamp: i64,
        seats: &[String],
    ) -> Result<Reply<bool>> {
        let stamp = stamp.to_string();
        let mut args = vec![order_id, hold_id, &stamp];
        args.extend(seats.iter().map(String::as_str));
        let items = self.run(script, show, now, &args).await?;
        reply(&items, applied(&items)?)
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
            Value::Array(items) if items.len() >= 3 => Ok(items),
            other => Err(Error::Internal(format!("seat script answered {other:?}"))),
        }
    }

    fn show_keys(&self, show: &str) -> ShowKeys {
        self.keys.show(show)
    }
}

/// The common head of every reply: {expired, version, epoch, ...}.
fn reply<T>(items: &[Value], out: T) -> Result<Reply<T>> {
    Ok(Reply {
        out,
        expired: int(&items[0])? as u32,
        version: int(&items[1])? as u64,
        epoch: text(items.get(2))?,
    })
}

/// Where a script's own answer starts, after the common head.
const HEAD: usize = 3;

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
        order_id: text(items.get(HEAD + 1))?,
        expires_ms: int(items.get(HEAD + 2).unwrap_or(&Value::Nil))?,
        created_ms: int(items.get(HEAD + 3).unwrap_or(&Value::Nil))?,
    })
}

fn not_active(items: &[Value]) -> Result<String> {
    text(items.get(HEAD + 1))
}

/// A waiting-list standing, as `lua/common.lua`'s `standing` answers it,
/// from `items[at..]`.
fn standing(items: &[Value], at: usize) -> Result<WaitStanding> {
    let item = |i: usize| items.get(at + i).unwrap_or(&Value::Nil);
    Ok(match text(items.get(at))?.as_str() {
        "WAITING" => WaitStanding::Waiting {
            position: int(item(1))? as u64,
            quantity: int(item(2))? as usize,
        },
        "OFFERED" => WaitStanding::Offered {
            hold_id: text(items.get(at + 1))?,
            expires_ms: int(item(2))?,
            seats: texts(items.get(at + 3))?,
        },
        "ENDED" => WaitStanding::Ended {
            hold_id: text(items.get(at + 1))?,
            end: match text(items.get(at + 2))?.as_str() {
                "ACCEPTED" => OfferEnd::Accepted(text(items.get(at + 3))?),
                "RELEASED" => OfferEnd::Released,
                _ => OfferEnd::Expired,
            },
            seats: texts(items.get(at + 4))?,
        },
        _ => WaitStanding::None,
    })
}

/// A show's plan as the waiting-list scripts keep it:
/// `[[label, seats, "unavailable numbers"], ...]`.
fn plan_json(rows: &[RowPlan]) -> Result<String> {
    let rows: Vec<(&str, u16, String)> = rows
        .iter()
        .map(|r| {
            let off: Vec<String> = r.unavailable.iter().map(u16::to_string).collect();
            (r.row.as_str(), r.seats, off.join(","))
        })
        .collect();
    Ok(serde_json::to_string(&rows)?)
}

fn applied(items: &[Value]) -> Result<bool> {
    Ok(int(items.get(HEAD).unwrap_or(&Value::Nil))? == 1)
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
        let out = if int(&items[HEAD])? == 1 {
            let prev = text(items.get(HEAD + 1))?;
            HoldOutcome::Held {
                version: int(&items[1])? as u64,
                replaced: (!prev.is_empty()).then_some(prev),
            }
        } else {
            HoldOutcome::Conflict {
                conflicts: texts(items.get(HEAD + 1))?,
            }
        };
        reply(&items, out)
    }

    async fn hold_best(
        &self,
        show: &str,
        now: i64,
        user: &str,
        hold_id: &str,
        quantity: usize,
        rows: &[RowPlan],
        ttl_ms: i64,
    ) -> Result<Reply<BestOutcome>> {
        let (ttl, quantity_arg) = (ttl_ms.to_string(), quantity.to_string());
        let plan: Vec<(String, String)> = rows
            .iter()
            .map(|r| {
                let off: Vec<String> = r.unavailable.iter().map(u16::to_string).collect();
                (r.seats.to_string(), off.join(","))
            })
            .collect();
        let mut args = vec![user, hold_id, &ttl, &quantity_arg];
        for (row, (seats, off)) in rows.iter().zip(&plan) {
            args.extend([row.row.as_str(), seats.as_str(), off.as_str()]);
        }
        let items = self.run(&self.scripts.hold_best, show, now, &args).await?;
        let out = if int(&items[HEAD])? == 1 {
            let prev = text(items.get(HEAD + 1))?;
            BestOutcome::Held {
                version: int(&items[1])? as u64,
                replaced: (!prev.is_empty()).then_some(prev),
                seats: texts(items.get(HEAD + 2))?,
            }
        } else {
            BestOutcome::NotEnough {
                largest_block: int(items.get(HEAD + 1).unwrap_or(&Value::Nil))? as usize,
            }
        };
        reply(&items, out)
    }

    async fn release(&self, show: &str, now: i64, user: &str, hold_id: &str) -> Result<Reply<ReleaseOutcome>> {
        let items = self.run(&self.scripts.release, show, now, &[user, hold_id]).await?;
        let out = match text(items.get(HEAD))?.as_str() {
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
        let out = match text(items.get(HEAD))?.as_str() {
            "ATTACHED" => ExtendOutcome::Attached(order_lock(&items)?),
            "EXISTING" => ExtendOutcome::Existing(order_lock(&items)?),
            "NOT_FOUND" => ExtendOutcome::NotFound,
            "EXPIRED" => ExtendOutcome::Expired,
            _ => ExtendOutcome::NotActive(not_active(&items)?),
        };
        reply(&items, out)
    }

    async fn book(
        &self,
        show: &str,
        now: i64,
        order_id: &str,
        hold_id: &str,
        stamp: i64,
        seats: &[String],
    ) -> Result<Reply<bool>> {
        self.settle(&self.scripts.book, show, now, order_id, hold_id, stamp, seats)
            .await
    }

    async fn release_order(
        &self,
        show: &str,
        now: i64,
        order_id: &str,
        hold_id: &str,
        stamp: i64,
        seats: &[String],
    ) -> Result<Reply<bool>> {
        self.settle(&self.scripts.release_order, show, now, order_id, hold_id, stamp, seats)
            .await
    }

    async fn rebuild(
        &self,
        show: &str,
        now: i64,
        seen: &str,
        epoch: &str,
        record: &RecordState,
    ) -> Result<Reply<bool>> {
        let grace = self.times.order_grace_ms.to_string();
        let state = serde_json::to_string(record)?;
        let items = self
            .run(&self.scripts.rebuild, show, now, &[seen, epoch, &grace, &state])
            .await?;
        reply(&items, applied(&items)?)
    }

    async fn expire(&self, show: &str, now: i64) -> Result<Reply<bool>> {
        let limit = GC_BATCH.to_string();
        let items = self.run(&self.scripts.expire, show, now, &[&limit]).await?;
        let more = int(items.get(HEAD + 1).unwrap_or(&Value::Nil))? == 1;
        reply(&items, more)
    }

    async fn sweep_turn(&self, node: &str, ttl_ms: i64) -> Result<bool> {
        let lease = self.keys.ops("seat-sweeper");
        let mut conn = self.redis.conn.clone();
        let won: Option<String> = redis::cmd("SET")
            .arg(&lease)
            .arg(node)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms)
            .query_async(&mut conn)
            .await?;
        if won.is_some() {
            return Ok(true);
        }
        // Ours already: renew it. (Two nodes sweeping for a moment, if the
        // lease lapses between the GET and the PEXPIRE, is harmless: every
        // pass is idempotent.)
        let holder: Option<String> = redis::cmd("GET").arg(&lease).query_async(&mut conn).await?;
        if holder.as_deref() == Some(node) {
            let _: () = redis::cmd("PEXPIRE")
                .arg(&lease)
                .arg(ttl_ms)
                .query_async(&mut conn)
                .await?;
            return Ok(true);
        }
        Ok(false)
    }

    async fn sweep_due(&self, show: &str, now: i64) -> Result<bool> {
        let k = self.keys.show(show);
        let mut conn = self.redis.conn.clone();
        // One round trip; the keys share the show's slot.
        let (has_state, deadline, gc): (bool, Vec<String>, Vec<String>) = redis::pipe()
            .exists(&k.epoch)
            .zrangebyscore_limit(&k.deadlines, "-inf", now, 0, 1)
            .zrangebyscore_limit(&k.gc, "-inf", now, 0, 1)
            .query_async(&mut conn)
            .await?;
        Ok(!has_state || !deadline.is_empty() || !gc.is_empty())
    }

    async fn wait_join(
        &self,
        show: &str,
        now: i64,
        user: &str,
        quantity: usize,
        offer_id: &str,
        rows: &[RowPlan],
        offer_ttl_ms: i64,
    ) -> Result<Reply<WaitJoin>> {
        let (quantity, ttl, plan) = (quantity.to_string(), offer_ttl_ms.to_string(), plan_json(rows)?);
        let items = self
            .run(
                &self.scripts.wait_join,
                show,
                now,
                &[user, &quantity, offer_id, &ttl, &plan],
            )
            .await?;
        let out = match text(items.get(HEAD))?.as_str() {
            "JOINED" => WaitJoin::Joined(standing(&items, HEAD + 1)?),
            "ALREADY" => WaitJoin::Already(standing(&items, HEAD + 1)?),
            _ => WaitJoin::SeatsAvailable {
                free: int(items.get(HEAD + 1).unwrap_or(&Value::Nil))? as usize,
            },
        };
        reply(&items, out)
    }

    async fn wait_standing(&self, show: &str, now: i64, user: &str) -> Result<WaitStanding> {
        let items = self.run(&self.scripts.wait_standing, show, now, &[user]).await?;
        standing(&items, HEAD)
    }

    async fn wait_leave(&self, show: &str, now: i64, user: &str) -> Result<Reply<WaitStanding>> {
        let items = self.run(&self.scripts.wait_leave, show, now, &[user]).await?;
        reply(&items, standing(&items, HEAD)?)
    }

    async fn wait_stats(&self, show: &str) -> Result<WaitStats> {
        let k = self.keys.show(show);
        let mut conn = self.redis.conn.clone();
        let (length, counts): (u64, Vec<Option<u64>>) = redis::pipe()
            .zcard(&k.waiters)
            .cmd("HMGET")
            .arg(&k.waitlist)
            .arg(&["made", "taken", "expired", "declined"][..])
            .query_async(&mut conn)
            .await?;
        let n = |i: usize| counts.get(i).copied().flatten().unwrap_or(0);
        Ok(WaitStats {
            length,
            made: n(0),
            taken: n(1),
            expired: n(2),
            declined: n(3),
        })
    }

    async fn snapshot(&self, show: &str, now: i64) -> Result<Reply<SeatSnapshot>> {
        let items = self.run(&self.scripts.snapshot, show, now, &[]).await?;
        let flat = texts(items.get(HEAD))?;
        let mut taken = std::collections::HashMap::with_capacity(flat.len() / 2);
        for pair in flat.chunks_exact(2) {
            let owner = Owner::parse(&pair[1]).ok_or_else(|| Error::Internal(format!("seat owner {:?}", pair[1])))?;
            taken.insert(pair[0].clone(), owner);
        }
        let version = int(&items[1])? as u64;
        let epoch = text(items.get(2))?;
        reply(&items, SeatSnapshot { epoch, version, taken })
    }

    async fn hold_record(&self, show: &str, hold_id: &str) -> Result<Option<HoldRecord>> {
        let mut conn = self.redis.conn.clone();
        let raw: Option<String> = conn.hget(self.show_keys(show).holds, hold_id).await?;
        raw.map(|r| serde_json::from_str(&r).map_err(Error::from)).transpose()
    }

    async fn forget(&self, show: &str) -> Result<()> {
        let k = self.show_keys(show);
        // One command: every key of a show is in one Cluster slot.
        let mut conn = self.redis.conn.clone();
        let _: () = redis::cmd("UNLINK")
            .arg(&k.script_keys()[..])
            .query_async(&mut conn)
            .await?;
        Ok(())
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
