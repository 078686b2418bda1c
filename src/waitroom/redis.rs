//! The Redis waiting room: every step that moves shoppers is one script in
//! `lua/wr_*.lua`, which also publishes the event that moves positions.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use redis::{AsyncCommands, Script, Value};

use super::batch::JoinBatcher;
use super::engine::{
    Counters, Opening, RoomEvent, SaleCounts, Settled, Spend, Stand, Step, StoredRoom, Tick, TickParams, WaitingRooms,
};
use crate::domain::outlook;
use crate::error::{Error, Result};
use crate::redis::RedisHandle;
use crate::redis::keys::{Keys, RoomKeys};
use crate::redis::reply::ReplyReader;
use crate::redis::scripts::RoomScripts;

pub struct RedisWaitingRooms {
    redis: Arc<RedisHandle>,
    keys: Keys,
    scripts: RoomScripts,
    joins: JoinBatcher,
}

impl RedisWaitingRooms {
    pub fn new(redis: Arc<RedisHandle>, keys: Keys) -> Self {
        let scripts = RoomScripts::load();
        Self {
            joins: JoinBatcher::new(redis.clone(), keys.clone(), scripts.join.clone()),
            redis,
            keys,
            scripts,
        }
    }

    fn k(&self, show: &str) -> RoomKeys {
        self.keys.room(show)
    }

    fn publish(&self) -> &'static str {
        if self.redis.cluster { "SPUBLISH" } else { "PUBLISH" }
    }

    async fn run(&self, script: &Script, keys: &[&str], args: &[String]) -> Result<Value> {
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(*k);
        }
        for a in args {
            inv.arg(a);
        }
        let mut conn = self.redis.conn.clone();
        Ok(inv.invoke_async(&mut conn).await?)
    }
}

#[async_trait]
impl WaitingRooms for RedisWaitingRooms {
    async fn save(&self, show: &str, room: &StoredRoom) -> Result<()> {
        let k = self.k(show);
        let mut conn = self.redis.conn.clone();
        // The scripts read `opensAt` (ms; empty: none) and `preQueue` from
        // here: the pre-queue is decided by Redis TIME, not a node's clock.
        let opens = room
            .config
            .opens_at
            .map(|t| t.timestamp_millis().to_string())
            .unwrap_or_default();
        let mode = serde_json::to_value(room.config.pre_queue)?;
        let _: () = redis::cmd("HSET")
            .arg(&k.config)
            .arg("room")
            .arg(serde_json::to_string(room)?)
            .arg("opensAt")
            .arg(opens)
            .arg("preQueue")
            .arg(mode.as_str().unwrap_or("RANDOM"))
            .query_async(&mut conn)
            .await?;
        let _: () = conn.sadd(self.keys.room_index(), show).await?;
        self.rooms_changed().await
    }

    async fn rooms_version(&self) -> Result<Option<String>> {
        let mut conn = self.redis.conn.clone();
        Ok(conn.get(self.keys.ops("rooms-version")).await?)
    }

    async fn rooms_changed(&self) -> Result<()> {
        let mut conn = self.redis.conn.clone();
        let version = uuid::Uuid::new_v4().simple().to_string();
        let _: () = conn.set(self.keys.ops("rooms-version"), version).await?;
        Ok(())
    }

    async fn load(&self, show: &str) -> Result<Option<StoredRoom>> {
        let mut conn = self.redis.conn.clone();
        let (room, sold_out, rate): (Option<String>, Option<String>, Option<f64>) = redis::cmd("HMGET")
            .arg(self.k(show).config)
            .arg("room")
            .arg("soldOut")
            .arg("rate")
            .query_async(&mut conn)
            .await?;
        let Some(room) = room else { return Ok(None) };
        let mut room: StoredRoom = serde_json::from_str(&room)?;
        room.sold_out = sold_out.as_deref() == Some("1");
        room.observed_rate = rate.unwrap_or_default();
        Ok(Some(room))
    }

    async fn all(&self) -> Result<Vec<(String, StoredRoom)>> {
        let mut conn = self.redis.conn.clone();
        let shows: Vec<String> = conn.smembers(self.keys.room_index()).await?;
        let mut rooms = Vec::with_capacity(shows.len());
        for show in shows {
            match self.load(&show).await {
                Ok(Some(room)) => rooms.push((show, room)),
                Ok(None) => {}
                // One unreadable room must not hide the others.
                Err(Error::Internal(e)) => tracing::error!(%show, error = %e, "unreadable waiting room; skipped"),
                Err(e) => return Err(e),
            }
        }
        Ok(rooms)
    }

    async fn remove(&self, show: &str) -> Result<()> {
        let k = self.k(show);
        let mut conn = self.redis.conn.clone();
        let _: () = conn.srem(self.keys.room_index(), show).await?;
        // One DEL per key: on a cluster they share a slot, but keep it plain.
        for key in k.all() {
            let _: () = conn.del(key).await?;
        }
        self.rooms_changed().await
    }

    /// Through the batcher: the show's joins that arrive while its
    /// previous call is in flight go as one script call (`batch`).
    async fn join(&self, show: &str, user: &str, now: i64, create: bool, seen_until: i64) -> Result<Stand> {
        self.joins.join(show, user, now, create, seen_until, None).await
    }

    async fn join_spending(
        &self,
        show: &str,
        user: &str,
        now: i64,
        seen_until: i64,
        challenge: &Spend,
    ) -> Result<Stand> {
        let spend = Some(challenge.clone());
        self.joins.join(show, user, now, true, seen_until, spend).await
    }

    async fn leave(&self, show: &str, users: &[String], counter: &str) -> Result<u64> {
        if users.is_empty() {
            return Ok(0);
        }
        let k = self.k(show);
        let mut args = vec![
            k.channel.clone(),
            self.publish().into(),
            counter.to_owned(),
            "0".into(),
            "0".into(),
        ];
        args.extend(users.iter().cloned());
        let v = self.run(&self.scripts.leave, &k.leave_keys(), &args).await?;
        redis::from_redis_value(v).map_err(|e| Error::Internal(format!("wr_leave reply: {e}")))
    }

    async fn abandon(&self, show: &str, cutoff: i64, limit: u64) -> Result<u64> {
        let k = self.k(show);
        let args = vec![
            k.channel.clone(),
            self.publish().into(),
            "abandoned".into(),
            cutoff.to_string(),
            limit.to_string(),
        ];
        let v = self.run(&self.scripts.leave, &k.leave_keys(), &args).await?;
        redis::from_redis_value(v).map_err(|e| Error::Internal(format!("wr_leave reply: {e}")))
    }

    async fn touch(&self, show: &str, users: &[String], until: i64) -> Result<()> {
        let k = self.k(show);
        let mut conn = self.redis.conn.clone();
        for chunk in users.chunks(1000) {
            // XX: only shoppers still waiting; one pipelined round trip per chunk.
            let mut cmd = redis::cmd("ZADD");
            cmd.arg(&k.seen).arg("XX");
            for u in chunk {
                cmd.arg(until).arg(u);
            }
            let _: () = cmd.query_async(&mut conn).await?;
        }
        Ok(())
    }

    async fn lease(&self, show: &str, node: &str, ttl_ms: i64) -> Result<Option<String>> {
        let k = self.k(show);
        let v = self
            .run(
                &self.scripts.lease,
                &k.lease_keys(),
                &[node.to_owned(), ttl_ms.to_string()],
            )
            .await?;
        redis::from_redis_value(v).map_err(|e| Error::Internal(format!("wr_lease reply: {e}")))
    }

    async fn release_lease(&self, show: &str, node: &str) -> Result<()> {
        let k = self.k(show);
        let mut conn = self.redis.conn.clone();
        let _: i64 = self
            .scripts
            .lease_release
            .key(&k.lease)
            .arg(format!("{node}/"))
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn admit(&self, show: &str, token: &str, p: TickParams) -> Result<Option<Tick>> {
        let k = self.k(show);
        let args = [
            token.to_owned(),
            p.now.to_string(),
            p.max.to_string(),
            p.ttl_ms.to_string(),
            p.sellable.to_string(),
            p.max_active.to_string(),
            if p.paused { "1" } else { "0" }.into(),
            format!("{:.3}", p.observed_rate),
            k.channel.clone(),
            self.publish().into(),
            p.tick_id.clone(),
            p.outlook.clone().unwrap_or_default(),
        ];
        let reply = self.run(&self.scripts.admit, &k.admit_keys(), &args).await?;
        let mut r = ReplyReader::new("wr_admit", reply)?;
        if r.next_int()? != 1 {
            return Ok(None);
        }
        let _admitted_count = r.next_int()?;
        let (queue_length, active, available) = (r.next_as()?, r.next_as()?, r.next_as()?);
        let (sold_out, seq) = (r.next_int()? == 1, r.next_as()?);
        let mut admitted = Vec::with_capacity(r.remaining());
        while r.remaining() > 0 {
            admitted.push(r.next_text()?);
        }
        Ok(Some(Tick {
            admitted,
            queue_length,
            active,
            available,
            sold_out,
            seq,
        }))
    }

    async fn open_begin(&self, show: &str, token: &str) -> Result<Opening> {
        let k = self.k(show);
        let reply = self
            .run(&self.scripts.open_begin, &k.open_begin_keys(), &[token.to_owned()])
            .await?;
        let mut r = ReplyReader::new("wr_open_begin", reply)?;
        let opening = match r.next_text()?.as_str() {
            "STALE" => Opening::Stale,
            "WAIT" => {
                let _opens_at = r.next_text()?;
                Opening::Wait
            }
            _ => Opening::Open {
                base: r
                    .next_text()?
                    .parse()
                    .map_err(|_| Error::Internal("wr_open_begin: opening base".into()))?,
                pending: r.next_as()?,
            },
        };
        r.finish()?;
        Ok(opening)
    }

    async fn entrants(&self, show: &str) -> Result<Vec<String>> {
        let mut conn = self.redis.conn.clone();
        Ok(conn.smembers(self.k(show).entrants).await?)
    }

    async fn open(&self, show: &str, token: &str, base: i64, ranked: &[(u64, String)]) -> Result<Option<(u64, u64)>> {
        let k = self.k(show);
        let mut args = vec![
            token.to_owned(),
            base.to_string(),
            k.channel.clone(),
            self.publish().into(),
        ];
        for (rank, user) in ranked {
            args.push(rank.to_string());
            args.push(user.clone());
        }
        let reply = self.run(&self.scripts.open, &k.open_keys(), &args).await?;
        let mut r = ReplyReader::new("wr_open", reply)?;
        let moved = r.next_int()?;
        if moved < 0 {
            return Ok(None);
        }
        let left = r.next_as()?;
        r.finish()?;
        Ok(Some((moved as u64, left)))
    }

    /// One `GET`, no script.
    async fn event_seq(&self, show: &str) -> Result<u64> {
        let mut conn = self.redis.conn.clone();
        let seq: Option<u64> = conn.get(self.k(show).events).await?;
        Ok(seq.unwrap_or(0))
    }

    async fn ranks(&self, show: &str, users: &[String]) -> Result<(u64, u64, Vec<Option<(f64, u64)>>)> {
        let k = self.k(show);
        let reply = self.run(&self.scripts.ranks, &k.ranks_keys(), users).await?;
        let mut r = ReplyReader::new("wr_ranks", reply)?;
        let (seq, length): (u64, u64) = (r.next_as()?, r.next_as()?);
        let mut out = Vec::with_capacity(users.len());
        for _ in users {
            let score: Option<String> = r.next_as()?;
            let rank: Option<u64> = r.next_as()?;
            out.push(match (score.and_then(|s| s.parse::<f64>().ok()), rank) {
                (Some(s), Some(r)) => Some((s, r)),
                _ => None,
            });
        }
        r.finish()?;
        Ok((seq, length, out))
    }

    async fn end_active(&self, show: &str, user: &str, how: Settled, now: i64, ttl_ms: i64) -> Result<()> {
        let k = self.k(show);
        let seats = match how {
            Settled::Bought { seats } => seats.clamp(1, outlook::MAX_SEATS as u64),
            Settled::Walked => 0,
        };
        let mut args = vec![user.to_owned(), seats.to_string(), now.to_string(), ttl_ms.to_string()];
        args.extend(outlook::AGE_BOUNDS_MS.iter().map(i64::to_string));
        self.run(&self.scripts.settle, &k.settle_keys(), &args).await?;
        Ok(())
    }

    /// A set per step, so each shopper counts once; held seats counted
    /// besides (one pipeline, same slot).
    async fn progressed(&self, show: &str, user: &str, step: Step) -> Result<()> {
        let k = self.k(show);
        let mut conn = self.redis.conn.clone();
        match step {
            Step::Held { seats } => {
                let _: () = redis::pipe()
                    .sadd(&k.held, user)
                    .ignore()
                    .hincr(&k.stats, "heldSeats", seats)
                    .ignore()
                    .query_async(&mut conn)
                    .await?;
            }
            Step::Ordered => {
                let _: () = conn.sadd(&k.ordered, user).await?;
            }
        }
        Ok(())
    }

    async fn sale_counts(&self, show: &str, now: i64, ttl_ms: i64) -> Result<SaleCounts> {
        let k = self.k(show);
        let mut args = vec![now.to_string(), ttl_ms.to_string()];
        args.extend(outlook::AGE_BOUNDS_MS.iter().map(i64::to_string));
        let reply = self.run(&self.scripts.observe, &k.observe_keys(), &args).await?;
        let mut r = ReplyReader::new("wr_observe", reply)?;
        let mut c = SaleCounts {
            booked: r.next_as()?,
            held: r.next_as()?,
            held_shoppers: r.next_as()?,
            ordered_shoppers: r.next_as()?,
            queue_length: r.next_as()?,
            buy_times: vec![0; outlook::AGE_BUCKETS],
            ..SaleCounts::default()
        };
        for _ in 0..outlook::AGE_BUCKETS {
            c.pending_by_age.push(r.next_as()?);
        }
        if r.next_text()? != "stats" {
            return Err(Error::Internal("wr_observe: reply out of step".into()));
        }
        while r.remaining() >= 2 {
            let (field, value) = (r.next_text()?, r.next_text()?);
            let n: u64 = value.parse().unwrap_or_default();
            let indexed = |prefix: &str| field.strip_prefix(prefix).and_then(|x| x.parse::<usize>().ok());
            match field.as_str() {
                "walked" => c.walked = n,
                "heldSeats" => c.held_seats = n,
                "buyMs" => c.buy_ms_sum = n,
                "joined" => c.joined = n,
                "admitted" => c.admitted = n,
                "left" | "abandoned" => c.gave_up += n,
                _ => {
                    if let Some(seats) = indexed("bought:").filter(|s| (1..=outlook::MAX_SEATS).contains(s)) {
                        if c.bought.len() <= seats {
                            c.bought.resize(seats + 1, 0);
                        }
                        c.bought[seats] = n;
                    } else if let Some(b) = indexed("buyIn:").filter(|b| *b < outlook::AGE_BUCKETS) {
                        c.buy_times[b] = n;
                    }
                }
            }
        }
        r.finish()?;
        Ok(c)
    }

    async fn outlook(&self, show: &str) -> Result<Option<String>> {
        let mut conn = self.redis.conn.clone();
        Ok(conn.hget(self.k(show).config, "outlook").await?)
    }

    async fn active_until(&self, show: &str, user: &str) -> Result<Option<i64>> {
        let mut conn = self.redis.conn.clone();
        let score: Option<f64> = conn.zscore(self.k(show).admitted, user).await?;
        Ok(score.map(|s| s as i64))
    }

    async fn counters(&self, show: &str, now: i64) -> Result<Counters> {
        let k = self.k(show);
        let mut conn = self.redis.conn.clone();
        let mut pipe = redis::pipe();
        pipe.zcard(&k.queue)
            .scard(&k.pre)
            .zcount(&k.admitted, now + 1, "+inf")
            .hget(&k.stats, "joined")
            .hget(&k.stats, "admitted")
            .hget(&k.stats, "abandoned")
            .get(&k.lease)
            .hget(&k.stats, "lastTickAt");
        #[allow(clippy::type_complexity)]
        let (queue_length, pre_queue, active, joined, admitted, abandoned, leader, last_tick_ms): (
            u64,
            u64,
            u64,
            Option<u64>,
            Option<u64>,
            Option<u64>,
            Option<String>,
            Option<i64>,
        ) = pipe.query_async(&mut conn).await?;
        Ok(Counters {
            queue_length,
            pre_queue,
            active,
            joined_total: joined.unwrap_or_default(),
            admitted_total: admitted.unwrap_or_default(),
            abandoned_total: abandoned.unwrap_or_default(),
            leader,
            last_tick_ms,
        })
    }

    async fn subscribe(&self, show: &str) -> Result<BoxStream<'static, RoomEvent>> {
        let payloads = self.redis.subscriptions.subscribe(&self.k(show).channel).await?;
        Ok(payloads
            .filter_map(|p| async move {
                serde_json::from_str::<RoomEvent>(&p)
                    .map_err(|e| tracing::error!(error = %e, payload = %p, "undecodable waiting-room event"))
                    .ok()
            })
            .boxed())
    }

    async fn unsubscribe(&self, show: &str) -> Result<()> {
        self.redis.subscriptions.unsubscribe(&self.k(show).channel).await
    }
}
