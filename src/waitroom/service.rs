//! The node's side of the waiting room: the config cache every request
//! reads (refreshed twice a second, so changes reach every node within one),
//! one admission loop per gated show (only the lease holder admits, with a
//! `governor` bucket at the configured rate), abandonment, the lottery
//! opening, admission tokens and the shape of what shoppers are told.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use dashmap::DashMap;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::hub::QueueHub;
use super::{Counters, Stand, Standing, StoredRoom, TickParams, WaitingRooms};
use crate::auth::Tokens;
use crate::booking::Booking;
use crate::domain::waitroom::{self, PreQueue, RoomPatch, eta_seconds};
use crate::error::{Error, Result};
use crate::metrics as m;

/// How often nodes re-read every room's config.
pub const REFRESH_EVERY: Duration = Duration::from_millis(500);
/// Admission ticks: at most every 100 ms, and often enough that the bucket
/// is never more than half full between two ticks (a tick that finds it
/// full would waste the tokens that arrived meanwhile): burst / rate / 2.
pub const TICK_EVERY: Duration = Duration::from_millis(100);
const TICK_MIN: Duration = Duration::from_millis(10);

fn tick_period(rate: f64, burst: u32) -> Duration {
    Duration::from_secs_f64(burst as f64 / rate.max(1e-6) / 2.0).clamp(TICK_MIN, TICK_EVERY)
}
/// The leader's lease: renewed every second, lost three seconds after its
/// holder stops.
const LEASE_EVERY: Duration = Duration::from_secs(1);
const LEASE_TTL_MS: i64 = 3_000;
/// The window over which the admission rate is observed.
const RATE_WINDOW: Duration = Duration::from_secs(10);
/// Abandonment sweep interval and batch.
const ABANDON_EVERY: Duration = Duration::from_secs(1);
const ABANDON_BATCH: u64 = 1_000;
/// Lottery places written per script call at the opening.
const OPEN_CHUNK: usize = 5_000;

pub struct Rooms {
    pub engine: Arc<dyn WaitingRooms>,
    pub hub: Arc<QueueHub>,
    booking: Arc<Booking>,
    tokens: Arc<Tokens>,
    cache: Arc<DashMap<String, StoredRoom>>,
    leaders: DashMap<String, CancellationToken>,
    /// This process, in lease tokens.
    node: String,
    abandon_after_ms: i64,
    stop: CancellationToken,
}

impl Rooms {
    pub fn new(
        engine: Arc<dyn WaitingRooms>,
        booking: Arc<Booking>,
        tokens: Arc<Tokens>,
        abandon_after: Duration,
        stop: CancellationToken,
    ) -> Arc<Self> {
        let cache: Arc<DashMap<String, StoredRoom>> = Arc::new(DashMap::new());
        let rates = cache.clone();
        let configured = Arc::new(move |show: &str| {
            rates
                .get(show)
                .filter(|r| !r.config.paused)
                .map(|r| r.config.admit_rate_per_second)
        });
        let hub = QueueHub::new(engine.clone(), tokens.clone(), configured);
        Arc::new(Self {
            engine,
            hub,
            booking,
            tokens,
            cache,
            leaders: DashMap::new(),
            node: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            abandon_after_ms: abandon_after.as_millis() as i64,
            stop,
        })
    }

    /// The show's room, if it is gated (from the cache).
    pub fn gated(&self, show: &str) -> Option<StoredRoom> {
        self.cache.get(show).map(|r| r.clone())
    }

    async fn room(&self, show: &str) -> Result<StoredRoom> {
        if let Some(r) = self.gated(show) {
            return Ok(r);
        }
        self.booking.show(show)?;
        self.engine
            .load(show)
            .await?
            .ok_or_else(|| Error::NotFound("this show has no waiting room".into()))
    }

    /// Holds on a gated show need the caller's admission token for it.
    pub fn check_admission(&self, show: &str, user: &str, token: Option<&str>) -> Result<()> {
        if self.gated(show).is_none() {
            return Ok(());
        }
        let token = token.ok_or_else(|| {
            Error::AdmissionRequired("this show has a waiting room: join it and send X-Admission-Token".into())
        })?;
        self.tokens.check_admission(token, user, show)
    }

    pub async fn put(self: &Arc<Self>, show: &str, patch: RoomPatch) -> Result<Value> {
        self.booking.show(show)?;
        let current = self.engine.load(show).await?;
        let config = patch
            .apply(current.as_ref().map(|c| &c.config))
            .map_err(Error::BadRequest)?;
        let seed = current
            .as_ref()
            .map(|c| c.seed.clone())
            .unwrap_or_else(|| waitroom::new_seed(&mut rand::rng()));
        let room = StoredRoom {
            config,
            seed,
            sold_out: current.as_ref().is_some_and(|c| c.sold_out),
            observed_rate: current.as_ref().map(|c| c.observed_rate).unwrap_or_default(),
        };
        self.engine.save(show, &room).await?;
        self.cache.insert(show.to_owned(), room);
        self.ensure_leader(show);
        self.admin_view(show).await
    }

    pub async fn remove(&self, show: &str) -> Result<()> {
        self.booking.show(show)?;
        if self.engine.load(show).await?.is_none() {
            return Err(Error::NotFound("this show has no waiting room".into()));
        }
        self.engine.remove(show).await?;
        self.forget(show).await;
        Ok(())
    }

    async fn forget(&self, show: &str) {
        self.cache.remove(show);
        if let Some((_, stop)) = self.leaders.remove(show) {
            stop.cancel();
        }
        self.hub.close(show).await;
    }

    /// The config, the lottery commitment and the live figures.
    pub async fn admin_view(&self, show: &str) -> Result<Value> {
        let room = self
            .engine
            .load(show)
            .await?
            .ok_or_else(|| Error::NotFound("this show has no waiting room".into()))?;
        let now = Utc::now();
        let c: Counters = self.engine.counters(show, now.timestamp_millis()).await?;
        let mut v = serde_json::to_value(&room.config)?;
        let opened = room.config.opens_at.is_none_or(|t| t <= now);
        let extra = json!({
            "showId": show,
            "queueLength": c.queue_length + c.pre_queue,
            "preQueueLength": c.pre_queue,
            "active": c.active,
            "joinedTotal": c.joined_total,
            "admittedTotal": c.admitted_total,
            "abandonedTotal": c.abandoned_total,
            "observedAdmitRate": (room.observed_rate * 100.0).round() / 100.0,
            "soldOut": room.sold_out,
            "leader": c.leader,
            "lotterySeedHash": waitroom::seed_hash(&room.seed),
            "lotterySeed": if opened { Some(room.seed.clone()) } else { None },
        });
        if let (Value::Object(a), Value::Object(b)) = (&mut v, extra) {
            a.extend(b);
        }
        Ok(v)
    }

    fn prequeue_now(room: &StoredRoom) -> bool {
        room.config.pre_queue == PreQueue::Random && room.config.opens_at.is_some_and(|t| t > Utc::now())
    }

    /// Joins (or reads, for polling) and answers the contract's shape.
    pub async fn stand(&self, show: &str, user: &str, create: bool) -> Result<Value> {
        let room = self.room(show).await?;
        let now = Utc::now().timestamp_millis();
        let stand = self
            .engine
            .join(show, user, now, Self::prequeue_now(&room), create, now)
            .await?;
        if stand.standing == Standing::None {
            return Err(Error::NotFound("you are not in this queue; join it first".into()));
        }
        self.shape(show, user, &room, &stand)
    }

    pub fn shape(&self, show: &str, user: &str, room: &StoredRoom, stand: &Stand) -> Result<Value> {
        let rate = if room.observed_rate > 0.0 {
            room.observed_rate
        } else if room.config.paused {
            0.0
        } else {
            room.config.admit_rate_per_second
        };
        Ok(match &stand.standing {
            Standing::Admitted { expires_ms } => json!({
                "state": "ADMITTED", "position": 0, "queueLength": Value::Null, "etaSeconds": 0,
                "admissionToken": self.tokens.admission(user, show, *expires_ms)?,
                "admissionExpiresAt": crate::http::views::time_ms(*expires_ms),
            }),
            Standing::Queued {
                position, queue_length, ..
            } => json!({
                "state": if room.sold_out { "SOLD_OUT" } else { "QUEUED" },
                "position": position, "queueLength": queue_length,
                "etaSeconds": eta_seconds(*position, rate),
            }),
            Standing::PreQueued { entrants } => json!({
                "state": "QUEUED", "position": Value::Null, "queueLength": entrants,
                "etaSeconds": room.config.opens_at.map(|t| (t - Utc::now()).num_seconds().max(0)),
                "opensAt": room.config.opens_at.map(crate::http::views::time),
                "preQueue": true,
            }),
            Standing::None => json!({"state": "NONE"}),
        })
    }

    pub async fn leave(&self, show: &str, user: &str) -> Result<bool> {
        self.room(show).await?;
        Ok(self.engine.leave(show, &[user.to_owned()], "left").await? > 0)
    }

    /// A socket's join: queued (idempotently) and marked seen while it lives.
    pub async fn socket_join(&self, show: &str, user: &str) -> Result<Stand> {
        let room = self.room(show).await?;
        let now = Utc::now().timestamp_millis();
        self.engine
            .join(
                show,
                user,
                now,
                Self::prequeue_now(&room),
                true,
                now + self.abandon_after_ms,
            )
            .await
    }

    /// A socket closed: the shopper's absence starts counting now.
    pub async fn socket_left(&self, show: &str, user: &str) {
        let now = Utc::now().timestamp_millis();
        let _ = self.engine.touch(show, &[user.to_owned()], now).await;
    }

    /// Starts the background loops: config refresh and socket liveness.
    pub fn spawn(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        vec![
            tokio::spawn(self.clone().refresh_loop()),
            tokio::spawn(self.clone().liveness_loop()),
        ]
    }

    async fn refresh_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self.engine.all().await {
                Ok(rooms) => {
                    let live: std::collections::HashSet<String> = rooms.iter().map(|(s, _)| s.clone()).collect();
                    for (show, room) in rooms {
                        if self.booking.catalog.show(&show).is_none() {
                            continue;
                        }
                        self.cache.insert(show.clone(), room);
                        self.ensure_leader(&show);
                    }
                    let gone: Vec<String> = self
                        .cache
                        .iter()
                        .map(|e| e.key().clone())
                        .filter(|s| !live.contains(s))
                        .collect();
                    for show in gone {
                        self.forget(&show).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "waiting-room refresh failed"),
            }
        }
    }

    /// Sockets keep their shoppers "seen": every third of the abandonment
    /// time, one pipelined touch per show for all of this node's sockets.
    async fn liveness_loop(self: Arc<Self>) {
        let every = Duration::from_millis((self.abandon_after_ms / 3).max(1_000) as u64);
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let until = Utc::now().timestamp_millis() + self.abandon_after_ms;
            for (show, users) in self.hub.live_users().await {
                if let Err(e) = self.engine.touch(&show, &users, until).await {
                    tracing::warn!(%show, error = %e, "queue liveness touch failed");
                }
            }
        }
    }

    fn ensure_leader(self: &Arc<Self>, show: &str) {
        if self.leaders.contains_key(show) {
            return;
        }
        let stop = self.stop.child_token();
        self.leaders.insert(show.to_owned(), stop.clone());
        tokio::spawn(self.clone().lead(show.to_owned(), stop));
    }

    /// One show's admission loop. Every node runs it; only the holder of the
    /// show's lease admits, so the rate is global.
    async fn lead(self: Arc<Self>, show: String, stop: CancellationToken) {
        let sellable = self
            .booking
            .catalog
            .show(&show)
            .and_then(|s| self.booking.catalog.layout(&s.screen_id))
            .map(|l| l.sellable().count() as u64)
            .unwrap_or_default();
        let mut period = TICK_EVERY;
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut lease: Option<String> = None;
        let mut last_lease: Option<Instant> = None;
        let mut last_abandon = Instant::now();
        let mut bucket: Option<((u64, u32), DefaultDirectRateLimiter)> = None;
        let mut window: VecDeque<(Instant, u64)> = VecDeque::new();
        let started = Instant::now();
        let mut room_left: u64 = u64::MAX;
        let mut opened_for: Option<chrono::DateTime<Utc>> = None;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let Some(room) = self.gated(&show) else { continue };
            if last_lease.is_none_or(|t| t.elapsed() >= LEASE_EVERY) {
                last_lease = Some(Instant::now());
                lease = match self.engine.lease(&show, &self.node, LEASE_TTL_MS).await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(%show, error = %e, "admission lease failed");
                        None
                    }
                };
            }
            let Some(token) = lease.clone() else { continue };
            let now = Utc::now();
            if room.config.opens_at.is_some_and(|t| t > now) {
                continue;
            }
            if room.config.pre_queue == PreQueue::Random && opened_for != Some(room.config.opens_at.unwrap_or_default())
            {
                match self.open_lottery(&show, &room).await {
                    Ok(()) => opened_for = Some(room.config.opens_at.unwrap_or_default()),
                    Err(e) => {
                        tracing::warn!(%show, error = %e, "lottery opening failed");
                        continue;
                    }
                }
            }
            // The bucket follows the config: a new rate or burst starts a new one.
            let key = (room.config.admit_rate_per_second.to_bits(), room.config.burst);
            if bucket.as_ref().is_none_or(|(k, _)| *k != key) {
                bucket = Some((key, limiter(room.config.admit_rate_per_second, room.config.burst)));
                let wanted = tick_period(room.config.admit_rate_per_second, room.config.burst);
                if wanted != period {
                    period = wanted;
                    tick = tokio::time::interval(period);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                }
            }
            let Some((_, limiter)) = bucket.as_ref() else { continue };
            let mut tokens = 0u64;
            if !room.config.paused {
                while tokens < room_left.min(room.config.burst as u64) && limiter.check().is_ok() {
                    tokens += 1;
                }
            }
            while window.front().is_some_and(|(t, _)| t.elapsed() > RATE_WINDOW) {
                window.pop_front();
            }
            let span = started
                .elapsed()
                .min(RATE_WINDOW)
                .as_secs_f64()
                .max(TICK_EVERY.as_secs_f64());
            let observed = window.iter().map(|(_, n)| *n).sum::<u64>() as f64 / span;
            let params = TickParams {
                now: now.timestamp_millis(),
                max: tokens,
                ttl_ms: room.config.admission_ttl_seconds as i64 * 1000,
                sellable,
                max_active: room.config.max_active as u64,
                paused: room.config.paused,
                observed_rate: observed,
            };
            match self.engine.admit(&show, &token, params).await {
                Ok(Some(t)) => {
                    let n = t.admitted.len() as u64;
                    window.push_back((Instant::now(), n));
                    room_left = (room.config.max_active as u64)
                        .saturating_sub(t.active)
                        .min(t.queue_length);
                    if t.available <= 0 {
                        room_left = 0;
                    }
                    metrics::gauge!(m::WAITROOM_QUEUE_LENGTH, "show" => show.clone()).set(t.queue_length as f64);
                    metrics::gauge!(m::WAITROOM_ACTIVE, "show" => show.clone()).set(t.active as f64);
                    metrics::counter!(m::WAITROOM_ADMITTED, "show" => show.clone()).increment(n);
                    if let Some(mut cached) = self.cache.get_mut(&show) {
                        cached.sold_out = t.sold_out;
                        cached.observed_rate = observed;
                    }
                }
                Ok(None) => lease = None,
                Err(e) => tracing::warn!(%show, error = %e, "admission tick failed"),
            }
            if last_abandon.elapsed() >= ABANDON_EVERY {
                last_abandon = Instant::now();
                let cutoff = now.timestamp_millis() - self.abandon_after_ms;
                if let Err(e) = self.engine.abandon(&show, cutoff, ABANDON_BATCH).await {
                    tracing::warn!(%show, error = %e, "abandonment sweep failed");
                }
            }
        }
    }

    /// Places the RANDOM pre-queue in lottery order, ahead of everyone who
    /// arrived after the opening.
    async fn open_lottery(&self, show: &str, room: &StoredRoom) -> Result<()> {
        let entrants = self.engine.pre_queued(show).await?;
        if entrants.is_empty() {
            return Ok(());
        }
        let order = waitroom::lottery_order(&room.seed, entrants);
        let base = -(order.len() as f64);
        for (i, chunk) in order.chunks(OPEN_CHUNK).enumerate() {
            self.engine.open(show, base + (i * OPEN_CHUNK) as f64, chunk).await?;
        }
        tracing::info!(%show, entrants = order.len(), "pre-queue opened by lottery");
        Ok(())
    }
}

/// A token bucket of `rate` per second holding at most `burst`.
fn limiter(rate: f64, burst: u32) -> DefaultDirectRateLimiter {
    let period = Duration::from_secs_f64(1.0 / rate.max(1e-6));
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst);
    RateLimiter::direct(quota)
}
