//! One show's admission leader. Every node runs one per gated show; only the
//! holder of the show's lease admits, so the rate is global. Each `tick`
//! renews the lease when due, opens the lottery at `opensAt`, takes what
//! tokens the `governor` bucket has (at the configured rate, at most
//! `burst`), admits that many from the head of the queue in one script, and
//! now and then sweeps out shoppers who stopped waiting.
//!
//! Time comes from the `Clock` and tokio's clock (the bucket reads it too),
//! so a test pauses it and drives `tick` by hand.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

use super::engine::{Opening, StoredRoom, Tick, TickParams, WaitingRooms};
use crate::clock::Clock;
use crate::domain::{outlook, waitroom};
use crate::error::Result;
use crate::metrics as m;

/// Admission ticks: at most every 100 ms, and often enough that the bucket
/// is never more than half full between two ticks (a tick that finds it
/// full would waste the tokens that arrived meanwhile): burst / rate / 2.
pub const TICK_EVERY: Duration = Duration::from_millis(100);
/// The most one tick admits, whatever the burst: one admission script pops
/// and publishes at most this many ids (a few milliseconds of Redis), and
/// the rest of a big burst stays in the bucket for the next ticks. At one
/// tick per `TICK_EVERY` this still carries `MAX_RATE` a second.
pub const MAX_TICK_BATCH: u64 = 10_000;
const TICK_MIN: Duration = Duration::from_millis(10);
/// The leader's lease: renewed every second, lost three seconds after its
/// holder stops.
const LEASE_EVERY: Duration = Duration::from_secs(1);
pub const LEASE_TTL_MS: i64 = 3_000;
/// The window over which the admission rate is observed.
const RATE_WINDOW: Duration = Duration::from_secs(10);
/// Abandonment sweep interval and batch.
const ABANDON_EVERY: Duration = Duration::from_secs(1);
const ABANDON_BATCH: u64 = 1_000;
/// Lottery places written per script call at the opening.
const OPEN_CHUNK: usize = 5_000;
/// How often the leader re-reads the sale for its outlook estimate (one
/// script that reads the seat hash): every tick carries the latest.
pub const OBSERVE_EVERY: Duration = Duration::from_millis(500);

/// How often to tick for this rate and burst.
pub fn tick_period(rate: f64, burst: u32) -> Duration {
    Duration::from_secs_f64(burst as f64 / rate.max(1e-6) / 2.0).clamp(TICK_MIN, TICK_EVERY)
}

/// tokio's clock for `governor`, so the bucket stands still in paused tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl GovernorClock for TokioClock {
    type Instant = std::time::Instant;

    fn now(&self) -> Self::Instant {
        Instant::now().into_std()
    }
}

type Bucket = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<std::time::Instant>>;

/// A token bucket of `rate` per second holding at most `burst`.
fn bucket(rate: f64, burst: u32) -> Bucket {
    let period = Duration::from_secs_f64(1.0 / rate.max(1e-6));
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst);
    RateLimiter::direct_with_clock(quota, TokioClock)
}

pub struct Leader {
    show: String,
    engine: Arc<dyn WaitingRooms>,
    /// This process, in lease tokens.
    node: String,
    sellable: u64,
    abandon_after_ms: i64,
    clock: Clock,
    lease: Option<String>,
    last_lease: Option<Instant>,
    last_abandon: Instant,
    /// The bucket and the (rate, burst) it was made for: a new config
    /// starts a new one.
    bucket: Option<((u64, u32), Bucket)>,
    /// When the room last admitted (ms), by this leader or, read when it
    /// took over, by the one before: a new bucket (a takeover, a config
    /// change) holds only what refilled since, never a fresh burst. None:
    /// the room never admitted, and its first burst is whole.
    last_tick_ms: Option<i64>,
    /// Admissions of the last `RATE_WINDOW`, for the observed rate.
    window: VecDeque<(Instant, u64)>,
    started: Instant,
    /// How many the room could take at the last tick (max active, queue):
    /// tokens beyond it stay in the bucket.
    room_left: u64,
    /// The opening (its `opensAt`, or none) this leader has seen through:
    /// every entrant of its pre-queue placed.
    opened_for: Option<Option<DateTime<Utc>>>,
    /// Ticks made, for the tick id.
    ticks: u64,
    /// The latest outlook estimate (JSON) and when it was made.
    outlook: Option<String>,
    observed_at: Option<Instant>,
}

impl Leader {
    pub fn new(
        show: &str,
        engine: Arc<dyn WaitingRooms>,
        node: &str,
        sellable: u64,
        abandon_after: Duration,
        clock: Clock,
    ) -> Self {
        Self {
            show: show.to_owned(),
            engine,
            node: node.to_owned(),
            sellable,
            abandon_after_ms: abandon_after.as_millis() as i64,
            clock,
            lease: None,
            last_lease: None,
            last_abandon: Instant::now(),
            bucket: None,
            last_tick_ms: None,
            window: VecDeque::new(),
            started: Instant::now(),
            room_left: u64::MAX,
            opened_for: None,
            ticks: 0,
            outlook: None,
            observed_at: None,
        }
    }

    /// Whether this node held the lease at its last tick.
    pub fn leads(&self) -> bool {
        self.lease.is_some()
    }

    /// One tick of the room as configured now. Answers what the admission
    /// step did and the observed rate, when this node leads and the room is
    /// open.
    pub async fn tick(&mut self, room: &StoredRoom) -> Option<(Tick, f64)> {
        if self.last_lease.is_none_or(|t| t.elapsed() >= LEASE_EVERY) {
            self.renew_lease().await;
        }
        let token = self.lease.clone()?;
        let now = self.clock.now();
        if room.config.opens_at.is_some_and(|t| t > now) {
            return None;
        }
        // Whatever the mode now (a room switched from RANDOM to FIFO still
        // has its pre-queue), an opening is seen through before anyone is
        // admitted; the scripts decide by the shared clock, and refuse a
        // stale leader.
        if self.opened_for != Some(room.config.opens_at) && !self.see_opening_through(room, &token).await {
            return None;
        }
        let result = self.admit(room, &token, now).await;
        self.abandon_if_due(now).await;
        result
    }

    /// Takes or keeps the room's lease.
    async fn renew_lease(&mut self) {
        self.last_lease = Some(Instant::now());
        let was_leading = self.lease.is_some();
        self.lease = match self.engine.lease(&self.show, &self.node, LEASE_TTL_MS).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(show = %self.show, error = %e, "admission lease failed");
                None
            }
        };
        if self.lease.is_some() && !was_leading {
            self.take_over_bucket().await;
        }
    }

    /// The bucket is the room's, not this node's: a new leader starts from
    /// what the last one left (refilled since), never a full burst.
    async fn take_over_bucket(&mut self) {
        let now = self.clock.now_ms();
        match self.engine.counters(&self.show, now).await {
            Ok(c) => {
                self.bucket = None;
                self.last_tick_ms = c.last_tick_ms;
            }
            Err(e) => {
                tracing::warn!(show = %self.show, error = %e, "could not read the room; not leading yet");
                self.lease = None;
            }
        }
    }

    /// Places the pre-queue of the room's opening. Answers whether the
    /// opening is seen through, so admission may go on.
    async fn see_opening_through(&mut self, room: &StoredRoom, token: &str) -> bool {
        match self.open_pre_queue(room, token).await {
            Ok(Some(true)) => {
                self.opened_for = Some(room.config.opens_at);
                true
            }
            Ok(Some(false)) => false,
            Ok(None) => {
                self.lease = None;
                false
            }
            Err(e) => {
                tracing::warn!(show = %self.show, error = %e, "pre-queue opening failed");
                false
            }
        }
    }

    /// Admits what the bucket allows from the head of the queue.
    async fn admit(&mut self, room: &StoredRoom, token: &str, now: DateTime<Utc>) -> Option<(Tick, f64)> {
        let tokens = self.take_tokens(room);
        let observed = self.observed_rate();
        if self.observed_at.is_none_or(|t| t.elapsed() >= OBSERVE_EVERY) {
            self.observe(room, now.timestamp_millis(), observed).await;
        }
        self.ticks += 1;
        let params = TickParams {
            tick_id: format!("{token}/{}", self.ticks),
            now: now.timestamp_millis(),
            max: tokens,
            ttl_ms: room.config.admission_ttl_seconds as i64 * 1000,
            sellable: self.sellable,
            max_active: room.config.max_active as u64,
            paused: room.config.paused,
            observed_rate: observed,
            outlook: self.outlook.clone(),
        };
        match self.engine.admit(&self.show, token, params).await {
            Ok(Some(t)) => {
                self.last_tick_ms = Some(now.timestamp_millis());
                self.admitted(room, &t);
                Some((t, observed))
            }
            Ok(None) => {
                self.lease = None;
                None
            }
            Err(e) => {
                tracing::warn!(show = %self.show, error = %e, "admission tick failed");
                None
            }
        }
    }

    /// Reads what the sale has shown and makes the outlook estimate every
    /// node answers its shoppers from; sets the funnel's gauges. A failed
    /// read keeps the last estimate.
    async fn observe(&mut self, room: &StoredRoom, now: i64, observed_rate: f64) {
        self.observed_at = Some(Instant::now());
        let ttl_ms = room.config.admission_ttl_seconds as i64 * 1000;
        let counts = match self.engine.sale_counts(&self.show, now, ttl_ms).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(show = %self.show, error = %e, "sale counts unreadable; the outlook stays as it was");
                return;
            }
        };
        let rate = if room.config.paused {
            0.0
        } else if observed_rate > 0.0 {
            observed_rate
        } else {
            room.config.admit_rate_per_second
        };
        let model = outlook::Model::new(&outlook::Observations {
            at_ms: now,
            sellable: self.sellable,
            booked: counts.booked,
            held: counts.held,
            pending_by_age: counts.pending_by_age.clone(),
            held_seats_total: counts.held_seats,
            bought: counts.bought.clone(),
            buy_times: counts.buy_times.clone(),
            walked: counts.walked,
            buy_ms_sum: counts.buy_ms_sum,
            admitted_total: counts.admitted,
            gave_up_total: counts.gave_up,
            queue_length: counts.queue_length,
            rate,
            sold_out: room.sold_out || (self.sellable > 0 && counts.booked >= self.sellable),
        });
        crate::waitroom::views::sale_gauges(&self.show, &counts, &model);
        match serde_json::to_string(&model) {
            Ok(json) => self.outlook = Some(json),
            Err(e) => tracing::error!(show = %self.show, error = %e, "outlook estimate unwritable"),
        }
    }

    /// Tokens for this tick: no more than the room can take.
    fn take_tokens(&mut self, room: &StoredRoom) -> u64 {
        let key = (room.config.admit_rate_per_second.to_bits(), room.config.burst);
        if self.bucket.as_ref().is_none_or(|(k, _)| *k != key) {
            let fresh = bucket(room.config.admit_rate_per_second, room.config.burst);
            if let Some(last) = self.last_tick_ms {
                let since = (self.clock.now_ms() - last).max(0) as f64 / 1000.0;
                let refilled = (since * room.config.admit_rate_per_second).floor() as u64;
                let spent = (room.config.burst as u64).saturating_sub(refilled);
                if let Some(n) = NonZeroU32::new(spent as u32) {
                    let _ = fresh.check_n(n);
                }
            }
            self.bucket = Some((key, fresh));
        }
        let Some((_, bucket)) = self.bucket.as_ref() else {
            return 0;
        };
        let mut tokens = 0u64;
        if !room.config.paused {
            let most = self.room_left.min(room.config.burst as u64).min(MAX_TICK_BATCH);
            while tokens < most && bucket.check().is_ok() {
                tokens += 1;
            }
        }
        tokens
    }

    fn observed_rate(&mut self) -> f64 {
        while self.window.front().is_some_and(|(t, _)| t.elapsed() > RATE_WINDOW) {
            self.window.pop_front();
        }
        let span = self
            .started
            .elapsed()
            .min(RATE_WINDOW)
            .as_secs_f64()
            .max(TICK_EVERY.as_secs_f64());
        self.window.iter().map(|(_, n)| *n).sum::<u64>() as f64 / span
    }

    fn admitted(&mut self, room: &StoredRoom, t: &Tick) {
        let n = t.admitted.len() as u64;
        self.window.push_back((Instant::now(), n));
        self.room_left = (room.config.max_active as u64)
            .saturating_sub(t.active)
            .min(t.queue_length);
        if t.available <= 0 {
            self.room_left = 0;
        }
        let show = self.show.clone();
        metrics::gauge!(m::WAITROOM_QUEUE_LENGTH, "show" => show.clone()).set(t.queue_length as f64);
        metrics::gauge!(m::WAITROOM_ACTIVE, "show" => show.clone()).set(t.active as f64);
        metrics::counter!(m::WAITROOM_ADMITTED, "show" => show).increment(n);
    }

    async fn abandon_if_due(&mut self, now: DateTime<Utc>) {
        if self.last_abandon.elapsed() < ABANDON_EVERY {
            return;
        }
        self.last_abandon = Instant::now();
        let cutoff = now.timestamp_millis() - self.abandon_after_ms;
        if let Err(e) = self.engine.abandon(&self.show, cutoff, ABANDON_BATCH).await {
            tracing::warn!(show = %self.show, error = %e, "abandonment sweep failed");
        }
    }

    /// Places the pre-queue in lottery order, behind everyone queued before
    /// the opening and ahead of everyone after it (the block's places were
    /// reserved when the opening began). Answers whether the opening is
    /// done (`Some(false)`: not yet time by the shared clock, or entrants
    /// are left for the next tick), `None` when this node lost the lease.
    async fn open_pre_queue(&self, room: &StoredRoom, token: &str) -> Result<Option<bool>> {
        let (base, pending) = match self.engine.open_begin(&self.show, token).await? {
            Opening::Stale => return Ok(None),
            Opening::Wait => return Ok(Some(false)),
            Opening::Open { base, pending } => (base, pending),
        };
        if pending == 0 {
            return Ok(Some(true));
        }
        let entrants = self.engine.entrants(&self.show).await?;
        let total = entrants.len();
        let ranked: Vec<(u64, String)> = waitroom::lottery_order(&room.seed, entrants)
            .into_iter()
            .enumerate()
            .map(|(rank, user)| (rank as u64, user))
            .collect();
        let mut left = pending;
        for chunk in ranked.chunks(OPEN_CHUNK) {
            match self.engine.open(&self.show, token, base, chunk).await? {
                Some((_, still)) => left = still,
                None => return Ok(None),
            }
        }
        tracing::info!(show = %self.show, entrants = total, left, "pre-queue opened by lottery");
        Ok(Some(left == 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::waitroom::{PreQueue, RoomConfig};
    use crate::waitroom::engine::Standing;
    use crate::waitroom::fixtures::NothingSold;
    use crate::waitroom::memory::MemoryWaitingRooms;

    const T0: i64 = 1_800_000_000_000;

    fn room(rate: f64, burst: u32, opens_at: Option<DateTime<Utc>>, pre_queue: PreQueue) -> StoredRoom {
        StoredRoom {
            config: RoomConfig {
                admit_rate_per_second: rate,
                burst,
                max_active: 1_000,
                admission_ttl_seconds: 600,
                opens_at,
                pre_queue,
                paused: false,
                challenge_bits: 0,
            },
            seed: "seed".into(),
            sold_out: false,
            observed_rate: 0.0,
            generation: String::new(),
        }
    }

    async fn engine_with_queue(clock: Clock, users: u32) -> Arc<dyn WaitingRooms> {
        let engine: Arc<dyn WaitingRooms> = Arc::new(MemoryWaitingRooms::new(Arc::new(NothingSold), clock));
        engine.save("s", &room(10.0, 5, None, PreQueue::Fifo)).await.unwrap();
        for i in 0..users {
            let now = clock.now_ms();
            engine.join("s", &format!("u{i}"), now, true, now).await.unwrap();
        }
        engine
    }

    fn leader(engine: &Arc<dyn WaitingRooms>, node: &str, clock: Clock) -> Leader {
        Leader::new("s", engine.clone(), node, 100, Duration::from_secs(60), clock)
    }

    #[tokio::test(start_paused = true)]
    async fn the_leader_admits_a_burst_then_the_rate_in_queue_order() {
        let clock = Clock::following_tokio(T0);
        let engine = engine_with_queue(clock, 50).await;
        let mut a = leader(&engine, "node-a", clock);
        let r = room(10.0, 5, None, PreQueue::Fifo);
        let (first, _) = a.tick(&r).await.unwrap();
        assert_eq!(first.admitted, vec!["u0", "u1", "u2", "u3", "u4"]);
        let mut total = first.admitted.len();
        for _ in 0..10 {
            tokio::time::advance(Duration::from_millis(100)).await;
            total += a.tick(&r).await.map_or(0, |(t, _)| t.admitted.len());
        }
        assert_eq!(total, 15, "a burst of 5, then 10 a second for one second");
        let (_, observed) = a.tick(&r).await.unwrap();
        assert!(observed > 10.0, "observed {observed}/s over the first second");
    }

    #[tokio::test(start_paused = true)]
    async fn a_huge_burst_is_admitted_over_several_ticks_never_in_one_script() {
        let clock = Clock::following_tokio(T0);
        let engine = engine_with_queue(clock, 12_000).await;
        let mut a = leader(&engine, "node-a", clock);
        let mut r = room(100_000.0, 1_000_000, None, PreQueue::Fifo);
        r.config.max_active = 1_000_000;
        let (first, _) = a.tick(&r).await.unwrap();
        assert_eq!(first.admitted.len() as u64, MAX_TICK_BATCH);
        assert_eq!(first.admitted[0], "u0");
        let mut total = first.admitted.len();
        while total < 12_000 {
            tokio::time::advance(TICK_EVERY).await;
            let (t, _) = a.tick(&r).await.unwrap();
            assert!(t.admitted.len() as u64 <= MAX_TICK_BATCH);
            assert!(!t.admitted.is_empty(), "the bucket still held tokens");
            total += t.admitted.len();
        }
        assert_eq!(total, 12_000, "everyone, in two ticks");
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_lease_holder_admits_and_another_node_takes_over_when_it_stops() {
        let clock = Clock::following_tokio(T0);
        let engine = engine_with_queue(clock, 50).await;
        let r = room(10.0, 5, None, PreQueue::Fifo);
        let (mut a, mut b) = (leader(&engine, "node-a", clock), leader(&engine, "node-b", clock));
        assert_eq!(a.tick(&r).await.unwrap().0.admitted.len(), 5);
        for _ in 0..20 {
            tokio::time::advance(Duration::from_millis(100)).await;
            a.tick(&r).await;
            assert!(b.tick(&r).await.is_none(), "b must not admit while a leads");
        }
        assert!(a.leads() && !b.leads());
        // a stops; its lease lapses after LEASE_TTL_MS.
        let mut took_over = None;
        for step in 0..50 {
            tokio::time::advance(Duration::from_millis(100)).await;
            if let Some((t, _)) = b.tick(&r).await {
                took_over = Some((step, t.admitted.len()));
                break;
            }
        }
        let (step, admitted) = took_over.expect("b took over");
        assert!(
            (20..=40).contains(&step),
            "took over after about the lease's 3 s, at step {step}"
        );
        assert!(admitted > 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_handover_never_hands_out_a_second_burst() {
        let clock = Clock::following_tokio(T0);
        let engine = engine_with_queue(clock, 100).await;
        // A big burst and a slow rate: an extra burst would show at once.
        let r = room(1.0, 10, None, PreQueue::Fifo);
        let (mut a, mut b) = (leader(&engine, "node-a", clock), leader(&engine, "node-b", clock));
        let started = Instant::now();
        let mut total = a.tick(&r).await.unwrap().0.admitted.len();
        assert_eq!(total, 10, "the room's first burst");
        for _ in 0..20 {
            tokio::time::advance(Duration::from_millis(100)).await;
            total += a.tick(&r).await.map_or(0, |(t, _)| t.admitted.len());
            assert!(b.tick(&r).await.is_none());
        }
        // a stops; b takes over when the lease lapses.
        let first = loop {
            tokio::time::advance(Duration::from_millis(100)).await;
            if let Some((t, _)) = b.tick(&r).await {
                break t.admitted.len();
            }
        };
        total += first;
        let bound = (started.elapsed().as_secs_f64() * 1.0).floor() as usize + 10;
        assert!(
            first <= 4,
            "b started with {first} tokens, not what refilled since a's last tick"
        );
        assert!(
            total <= bound,
            "{total} admitted, more than rate × time + one burst ({bound})"
        );
        // And from then on, the rate.
        for _ in 0..30 {
            tokio::time::advance(Duration::from_millis(100)).await;
            total += b.tick(&r).await.map_or(0, |(t, _)| t.admitted.len());
        }
        let bound = started.elapsed().as_secs_f64().floor() as usize + 10;
        assert!(total <= bound, "{total} > {bound}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_config_change_mid_sale_does_not_hand_out_a_fresh_burst() {
        let clock = Clock::following_tokio(T0);
        let engine = engine_with_queue(clock, 100).await;
        let mut a = leader(&engine, "node-a", clock);
        assert_eq!(
            a.tick(&room(1.0, 10, None, PreQueue::Fifo))
                .await
                .unwrap()
                .0
                .admitted
                .len(),
            10
        );
        // Ops raise the rate and the burst: the new bucket starts from what
        // refilled since the last tick, at the new rate.
        let raised = room(2.0, 20, None, PreQueue::Fifo);
        tokio::time::advance(Duration::from_millis(100)).await;
        let next = a.tick(&raised).await.map_or(0, |(t, _)| t.admitted.len());
        assert!(next <= 1, "{next} admitted right after the change");
        let mut total = 10 + next;
        for _ in 0..20 {
            tokio::time::advance(Duration::from_millis(100)).await;
            total += a.tick(&raised).await.map_or(0, |(t, _)| t.admitted.len());
        }
        // 2.1 s at 2/s after the first burst.
        assert!((13..=15).contains(&total), "{total}");
    }

    #[tokio::test(start_paused = true)]
    async fn nobody_is_admitted_before_the_opening_then_the_lottery_goes_first() {
        let clock = Clock::following_tokio(T0);
        let engine: Arc<dyn WaitingRooms> = Arc::new(MemoryWaitingRooms::new(Arc::new(NothingSold), clock));
        let opens = crate::clock::from_ms(T0 + 5_000);
        let r = room(100.0, 10, Some(opens), PreQueue::Random);
        engine.save("s", &r).await.unwrap();
        let early: Vec<String> = (0..3).map(|i| format!("early{i}")).collect();
        for u in &early {
            engine.join("s", u, T0, true, T0).await.unwrap();
        }
        let mut a = leader(&engine, "node-a", clock);
        assert!(a.tick(&r).await.is_none(), "closed until opensAt");
        assert!(a.leads());
        tokio::time::advance(Duration::from_millis(5_000)).await;
        // Joins after the opening, before the leader's next tick: behind
        // the lottery block all the same.
        let now = T0 + 5_000;
        let late = engine.join("s", "late", now, true, now).await.unwrap();
        assert!(matches!(late.standing, Standing::Queued { .. }), "{late:?}");
        let (t, _) = a.tick(&r).await.unwrap();
        let mut expected = waitroom::lottery_order(&r.seed, early);
        expected.push("late".into());
        assert_eq!(t.admitted, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pre_queue_switched_to_fifo_or_with_its_opening_cleared_is_not_stranded() {
        let clock = Clock::following_tokio(T0);
        let engine: Arc<dyn WaitingRooms> = Arc::new(MemoryWaitingRooms::new(Arc::new(NothingSold), clock));
        let r = room(100.0, 10, Some(crate::clock::from_ms(T0 + 60_000)), PreQueue::Random);
        engine.save("s", &r).await.unwrap();
        for u in ["p1", "p2"] {
            engine.join("s", u, T0, true, T0).await.unwrap();
        }
        // Ops switch to FIFO and clear the opening: the lottery's entrants
        // open at once, ahead of anyone who joins from now on.
        let fifo = room(100.0, 10, None, PreQueue::Fifo);
        engine.save("s", &fifo).await.unwrap();
        engine.join("s", "after", T0, true, T0).await.unwrap();
        let mut a = leader(&engine, "node-a", clock);
        let (t, _) = a.tick(&fifo).await.unwrap();
        let mut expected = waitroom::lottery_order(&fifo.seed, vec!["p1".into(), "p2".into()]);
        expected.push("after".into());
        assert_eq!(t.admitted, expected);
        assert_eq!(engine.counters("s", T0).await.unwrap().pre_queue, 0);
    }
}
