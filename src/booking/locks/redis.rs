//! The Redis engine: every state change is one Lua script from `lua/`, which
//! checks and writes all seats of a show atomically and publishes the delta
//! itself, so no change is ever unannounced. What each script takes and
//! answers is its command's (`cmd`); this runs them and keeps the rest.

use futures::StreamExt;
use futures::stream::BoxStream;
use redis::Value;
use std::sync::Arc;

use super::cmd::Head;
use super::{Due, Reply, SeatCommand};
use crate::domain::seats::{HoldRecord, LockTimes, SeatDelta, WaitStats};
use crate::error::{Error, Result};
use crate::redis::RedisHandle;
use crate::redis::keys::{Keys, ShowKeys};
use crate::redis::reply::ReplyReader;
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

    /// Runs the command's script with the common KEYS and ARGV, then its
    /// own, and reads the whole reply back.
    pub async fn run<C: SeatCommand>(&self, show: &str, now: i64, cmd: &C) -> Result<Reply<C::Out>> {
        let k = self.keys.show(show);
        let script = cmd.script(&self.scripts);
        let mut inv = script.prepare_invoke();
        for key in k.script_keys() {
            inv.key(key);
        }
        let charged = cmd.charged().zip(self.times.budget);
        if let Some((user, _)) = charged {
            inv.key(k.budget(user));
        }
        let publish = if self.redis.cluster { "SPUBLISH" } else { "PUBLISH" };
        inv.arg(show)
            .arg(&k.channel)
            .arg(publish)
            .arg(now)
            .arg(self.times.retention_ms);
        cmd.args(&mut inv, self.times);
        if let Some((_, budget)) = charged {
            inv.arg(budget.interval_us).arg(budget.burst);
        }
        let mut conn = self.redis.conn.clone();
        let reply: Value = inv.invoke_async(&mut conn).await?;
        let mut reply = ReplyReader::new(cmd.name(), reply)?;
        let head = Head::read(&mut reply)?;
        let out = C::decode(&head, &mut reply)?;
        reply.finish()?;
        Ok(Reply {
            out,
            version: head.version,
            epoch: head.epoch,
            expired: head.expired,
        })
    }

    fn show_keys(&self, show: &str) -> ShowKeys {
        self.keys.show(show)
    }

    pub async fn sweep_turn(&self, node: &str, ttl_ms: i64) -> Result<bool> {
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

    /// Hands the sweeper's lease back, if this node holds it.
    pub async fn sweep_release(&self, node: &str) -> Result<()> {
        let mut conn = self.redis.conn.clone();
        let _: i64 = crate::redis::scripts::lease_release()
            .key(self.keys.ops("seat-sweeper"))
            .arg(node)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    pub async fn next_due(&self, show: &str) -> Result<Due> {
        let k = self.keys.show(show);
        let mut conn = self.redis.conn.clone();
        // One round trip; the keys share the show's slot.
        let (has_state, first): (bool, Vec<(String, f64)>) = redis::pipe()
            .exists(&k.epoch)
            .zrange_withscores(&k.deadlines, 0, 0)
            .query_async(&mut conn)
            .await?;
        Ok(match first.first() {
            _ if !has_state => Due::Now,
            Some((_, at)) => Due::At(*at as i64),
            None => Due::Never,
        })
    }

    /// Redis's replication identity now (`master_replid`) and the one the
    /// seat state was last checked under; `None` on a Cluster (each master
    /// has its own: a failover there is found by the versions alone).
    pub async fn identity(&self) -> Result<Option<(String, Option<String>)>> {
        if self.redis.cluster {
            return Ok(None);
        }
        let mut conn = self.redis.conn.clone();
        let (info, stored): (String, Option<String>) = redis::pipe()
            .cmd("INFO")
            .arg("replication")
            .get(self.keys.ops("redis-identity"))
            .query_async(&mut conn)
            .await?;
        let replid = info
            .lines()
            .find_map(|l| l.strip_prefix("master_replid:"))
            .map(|v| v.trim().to_owned())
            .ok_or_else(|| Error::Internal("INFO replication without master_replid".into()))?;
        Ok(Some((replid, stored)))
    }

    pub async fn set_identity(&self, replid: &str) -> Result<()> {
        let mut conn = self.redis.conn.clone();
        let _: () = redis::cmd("SET")
            .arg(self.keys.ops("redis-identity"))
            .arg(replid)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    pub async fn position(&self, show: &str) -> Result<Option<(String, u64)>> {
        let k = self.keys.show(show);
        let mut conn = self.redis.conn.clone();
        // One MGET: the keys share the show's slot.
        let (epoch, version): (Option<String>, Option<u64>) = redis::cmd("MGET")
            .arg(&k.epoch)
            .arg(&k.version)
            .query_async(&mut conn)
            .await?;
        Ok(epoch.map(|e| (e, version.unwrap_or(0))))
    }

    pub async fn announce_changed(&self, shows: &[String]) -> Result<()> {
        let mut conn = self.redis.conn.clone();
        let publish = if self.redis.cluster { "SPUBLISH" } else { "PUBLISH" };
        let _: () = redis::cmd(publish)
            .arg(self.keys.ops("changed"))
            .arg(serde_json::to_string(shows)?)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    pub async fn changed_elsewhere(&self) -> Result<BoxStream<'static, Vec<String>>> {
        let payloads = self.redis.subscriptions.subscribe(&self.keys.ops("changed")).await?;
        Ok(payloads
            .filter_map(|p| async move { serde_json::from_str::<Vec<String>>(&p).ok() })
            .boxed())
    }

    pub async fn wait_stats(&self, show: &str) -> Result<WaitStats> {
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

    /// A hold's record, live or a tombstone (`hold_get` in `lua/common.lua`):
    /// one round trip, the keys share the show's slot.
    pub async fn hold_record(&self, show: &str, hold_id: &str) -> Result<Option<HoldRecord>> {
        let k = self.show_keys(show);
        let mut conn = self.redis.conn.clone();
        let (live, ended, old): (Option<String>, Option<String>, Option<String>) = redis::pipe()
            .hget(&k.holds, hold_id)
            .hget(&k.ended, hold_id)
            .hget(&k.ended_old, hold_id)
            .query_async(&mut conn)
            .await?;
        live.or(ended)
            .or(old)
            .map(|r| serde_json::from_str(&r).map_err(Error::from))
            .transpose()
    }

    pub async fn forget(&self, show: &str) -> Result<()> {
        let k = self.show_keys(show);
        // One command: every key of a show is in one Cluster slot.
        let mut conn = self.redis.conn.clone();
        let _: () = redis::cmd("UNLINK")
            .arg(&k.own_keys()[..])
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    pub async fn subscribe(&self, show: &str) -> Result<BoxStream<'static, SeatDelta>> {
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

    pub async fn unsubscribe(&self, show: &str) -> Result<()> {
        self.redis
            .subscriptions
            .unsubscribe(&self.show_keys(show).channel)
            .await
    }

    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.redis.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }
}
