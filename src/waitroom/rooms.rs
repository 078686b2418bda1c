//! The node's side of the waiting room: the config cache every request
//! reads (checked twice a second with one light read of the rooms' version,
//! and re-read whole only when it moved, so changes reach every node within
//! one check and idle rooms cost nothing; a full re-read every 10 s besides),
//! one admission leader per gated show (`leader`), sockets' liveness, and
//! the room operations of the routes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use tokio_util::sync::CancellationToken;

use super::challenge::JoinProof;
use super::engine::{Settled, Stand, Standing, StoredRoom, WaitingRooms};
use super::hub::QueueHub;
use super::leader::{Leader, TICK_EVERY, tick_period};
use super::store::{DurableRoom, RoomStore};
use super::views::{self, RoomView, StandingView};
use crate::auth::Tokens;
use crate::clock::Clock;
use crate::domain::catalog::{Catalog, Show};
use crate::domain::outlook::Model;
use crate::domain::waitroom::{self, RoomPatch};
use crate::error::{Error, Result};
use crate::supervise::supervised;

/// How often nodes check the rooms' version (re-reading them if it moved).
pub const REFRESH_EVERY: Duration = Duration::from_millis(500);
/// How often nodes re-read every room whatever the version says: the
/// observed admission rate of rooms another node leads is at most this old.
pub const FULL_REFRESH_EVERY: Duration = Duration::from_secs(10);

pub struct Rooms {
    pub engine: Arc<dyn WaitingRooms>,
    /// Where configs are kept durably (Postgres), if anywhere.
    durable: Option<Arc<dyn RoomStore>>,
    /// Whether this node has read the rooms since it started. Until then it
    /// cannot tell gated shows from open ones: holds are 503, not ungated.
    loaded: AtomicBool,
    pub hub: Arc<QueueHub>,
    catalog: Arc<Catalog>,
    pub(super) tokens: Arc<Tokens>,
    cache: Arc<DashMap<String, StoredRoom>>,
    leaders: DashMap<String, CancellationToken>,
    /// The latest outlook estimate read per show, and when: `join` and `me`
    /// cost at most one read of it per show and node every `OUTLOOK_FRESH`.
    estimates: DashMap<String, (tokio::time::Instant, Arc<Model>)>,
    /// This process, in lease tokens.
    node: String,
    abandon_after: Duration,
    pub(super) clock: Clock,
    stop: CancellationToken,
}

fn new_generation() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Seats the show sells (0 for a show the catalog does not know).
fn sellable(catalog: &Catalog, show: &str) -> u64 {
    catalog
        .show(show)
        .and_then(|s| catalog.layout(&s.screen_id))
        .map(|l| l.sellable().count() as u64)
        .unwrap_or_default()
}

/// How long a node answers `join` and `me` from the estimate it read last.
const OUTLOOK_FRESH: Duration = Duration::from_millis(500);

fn no_room() -> Error {
    Error::NotFound("this show has no waiting room".into())
}

impl Rooms {
    pub fn new(
        engine: Arc<dyn WaitingRooms>,
        durable: Option<Arc<dyn RoomStore>>,
        catalog: Arc<Catalog>,
        tokens: Arc<Tokens>,
        abandon_after: Duration,
        clock: Clock,
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
        let (rooms, shows) = (cache.clone(), catalog.clone());
        let prior = Arc::new(move |show: &str| {
            let rate = rooms
                .get(show)
                .filter(|r| !r.config.paused)
                .map_or(0.0, |r| r.observed_rate.max(r.config.admit_rate_per_second));
            Model::prior(clock.now_ms(), sellable(&shows, show), rate, 0)
        });
        let hub = QueueHub::new(engine.clone(), tokens.clone(), configured, prior, clock);
        Arc::new(Self {
            engine,
            durable,
            loaded: AtomicBool::new(false),
            hub,
            catalog,
            tokens,
            cache,
            leaders: DashMap::new(),
            estimates: DashMap::new(),
            node: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()),
            abandon_after,
            clock,
            stop,
        })
    }

    /// The show's room, if it is gated (from the cache).
    pub fn gated(&self, show: &str) -> Option<StoredRoom> {
        self.cache.get(show).map(|r| r.clone())
    }

    /// Whether the rooms have been read since start-up (see `loaded`).
    pub fn loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    pub(super) async fn room(&self, show: &str) -> Result<StoredRoom> {
        if let Some(r) = self.gated(show) {
            return Ok(r);
        }
        self.engine.load(show).await?.ok_or_else(no_room)
    }

    pub async fn put(self: &Arc<Self>, show: &Show, patch: RoomPatch) -> Result<RoomView> {
        let current = self.engine.load(&show.id).await?;
        let config = patch
            .apply(current.as_ref().map(|c| &c.config))
            .map_err(Error::BadRequest)?;
        // A new opening always draws a new seed: the old one may have been
        // revealed (a room without an opening shows its seed), and a known
        // seed would tell everyone the lottery's order.
        let new_opening =
            config.opens_at.is_some() && current.as_ref().map(|c| c.config.opens_at) != Some(config.opens_at);
        let seed = match &current {
            Some(c) if !new_opening => c.seed.clone(),
            _ => waitroom::new_seed(&mut rand::rng()),
        };
        let room = StoredRoom {
            config,
            seed,
            sold_out: current.as_ref().is_some_and(|c| c.sold_out),
            observed_rate: current.as_ref().map(|c| c.observed_rate).unwrap_or_default(),
            generation: current
                .as_ref()
                .map(|c| c.generation.clone())
                .unwrap_or_else(new_generation),
        };
        // The durable copy first: a room Redis has is always one Postgres has.
        if let Some(durable) = &self.durable {
            durable
                .save(&DurableRoom {
                    show: show.id.clone(),
                    config: room.config.clone(),
                    seed: room.seed.clone(),
                })
                .await?;
        }
        self.engine.save(&show.id, &room).await?;
        self.cache.insert(show.id.clone(), room);
        self.ensure_leader(&show.id);
        self.admin_view(show).await
    }

    pub async fn remove(&self, show: &Show) -> Result<()> {
        let durable = match &self.durable {
            Some(d) => d.all().await?.iter().any(|r| r.show == show.id),
            None => false,
        };
        if !durable && self.engine.load(&show.id).await?.is_none() {
            return Err(no_room());
        }
        if let Some(d) = &self.durable {
            d.remove(&show.id).await?;
        }
        self.engine.remove(&show.id).await?;
        self.forget(&show.id);
        Ok(())
    }

    fn forget(&self, show: &str) {
        self.cache.remove(show);
        self.estimates.remove(show);
        if let Some((_, stop)) = self.leaders.remove(show) {
            stop.cancel();
        }
        self.hub.close(show);
    }

    /// The config, the lottery commitment and the live figures.
    pub async fn admin_view(&self, show: &Show) -> Result<RoomView> {
        let room = self.engine.load(&show.id).await?.ok_or_else(no_room)?;
        let now = self.clock.now();
        let ms = now.timestamp_millis();
        let counters = self.engine.counters(&show.id, ms).await?;
        let ttl_ms = room.config.admission_ttl_seconds as i64 * 1000;
        let sale = self.engine.sale_counts(&show.id, ms, ttl_ms).await?;
        let model = self.estimate(&show.id).await;
        Ok(views::admin(&show.id, &room, &counters, &sale, &model, now))
    }

    /// The show's outlook estimate, read at most every `OUTLOOK_FRESH`.
    pub async fn estimate(&self, show: &str) -> Arc<Model> {
        if let Some(e) = self.estimates.get(show)
            && e.0.elapsed() < OUTLOOK_FRESH
        {
            return e.1.clone();
        }
        let model = Arc::new(self.hub.model(show).await);
        self.estimates
            .insert(show.to_owned(), (tokio::time::Instant::now(), model.clone()));
        model
    }

    /// Joins (`create`, through the room's proof of work) or reads (for
    /// polling) and answers the contract's shape.
    pub async fn stand(
        &self,
        show: &Show,
        user: &str,
        create: bool,
        proof: Option<&JoinProof>,
    ) -> Result<StandingView> {
        let room = self.room(&show.id).await?;
        let spend = match create {
            true => self.check_proof(&room, show, user, proof).await?,
            false => None,
        };
        let now = self.clock.now();
        let ms = now.timestamp_millis();
        let stand = match &spend {
            Some(challenge) => {
                let stand = self.engine.join_spending(&show.id, user, ms, ms, challenge).await?;
                if stand.standing == Standing::None {
                    return Err(Error::ChallengeFailed(
                        "this challenge has been used: get a new one".into(),
                    ));
                }
                stand
            }
            None => self.engine.join(&show.id, user, ms, create, ms).await?,
        };
        let model = self.estimate(&show.id).await;
        views::standing(&room, &stand.standing, now, &model, |expires_ms| {
            self.tokens.admission(user, &show.id, expires_ms)
        })
    }

    /// Leaves the queue, or gives up an admission: either way the shopper's
    /// place and token are gone.
    pub async fn leave(&self, show: &Show, user: &str) -> Result<bool> {
        self.room(&show.id).await?;
        // Out of the queue first, then out of the admitted set: a tick that
        // admits the shopper between the two still ends in neither.
        let queued = self.engine.leave(&show.id, &[user.to_owned()], "left").await? > 0;
        let admitted = self
            .engine
            .active_until(&show.id, user)
            .await?
            .is_some_and(|until| until > self.clock.now_ms());
        if admitted {
            let ttl_ms = self.room(&show.id).await?.config.admission_ttl_seconds as i64 * 1000;
            let now = self.clock.now_ms();
            self.engine
                .end_active(&show.id, user, Settled::Walked, now, ttl_ms)
                .await?;
        }
        Ok(queued || admitted)
    }

    /// A socket's join: queued (idempotently) and marked seen while it lives.
    pub async fn socket_join(&self, show: &str, user: &str) -> Result<Stand> {
        let room = self.room(show).await?;
        let now = self.clock.now_ms();
        let until = now + self.abandon_after.as_millis() as i64;
        // Where the room asks for a proof of work, the socket follows a
        // place won by `join`; it never makes one.
        let create = room.config.challenge_bits == 0;
        let stand = self.engine.join(show, user, now, create, until).await?;
        if stand.standing == Standing::None {
            return Err(Error::ChallengeRequired);
        }
        Ok(stand)
    }

    /// A socket closed: the shopper's absence starts counting now.
    pub async fn socket_left(&self, show: &str, user: &str) {
        let now = self.clock.now_ms();
        let _ = self.engine.touch(show, &[user.to_owned()], now).await;
    }

    /// Starts the background loops: config refresh and socket liveness.
    pub fn spawn(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        let (refresh, liveness, handover) = (self.clone(), self.clone(), self.clone());
        vec![
            // At shutdown each admission lease this node holds goes back at
            // once: admission pauses for a tick, not for the lease's TTL.
            tokio::spawn(async move {
                handover.stop.cancelled().await;
                let shows: Vec<String> = handover.leaders.iter().map(|e| e.key().clone()).collect();
                for show in shows {
                    if let Err(e) = handover.engine.release_lease(&show, &handover.node).await {
                        tracing::warn!(%show, error = %e, "could not hand the admission lease back");
                    }
                }
            }),
            supervised("waiting-room refresh", self.stop.clone(), move || {
                refresh.clone().refresh_loop()
            }),
            supervised("queue-socket liveness", self.stop.clone(), move || {
                liveness.clone().liveness_loop()
            }),
        ]
    }

    async fn refresh_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        // The version the cache was read at, and when it was read whole.
        let mut read_at: Option<Option<String>> = None;
        let mut full_at = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let version = match self.engine.rooms_version().await {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(error = %e, "waiting-room version unreadable");
                    continue;
                }
            };
            // No version while rooms are known: Redis lost it (and maybe
            // the rooms), whatever this node last read.
            let lost = version.is_none() && !self.cache.is_empty();
            let stale = lost || read_at.as_ref() != Some(&version) || full_at.elapsed() >= FULL_REFRESH_EVERY;
            if !stale {
                continue;
            }
            match self.refresh().await {
                Ok(()) => {
                    read_at = Some(version);
                    full_at = tokio::time::Instant::now();
                }
                Err(e) => tracing::warn!(error = %e, "waiting-room refresh failed"),
            }
        }
    }

    /// Reads every room into the cache (re-seeding Redis from the durable
    /// copy where it lost one), starts leaders for new rooms and forgets the
    /// removed ones. The first success marks the node loaded.
    pub async fn refresh(self: &Arc<Self>) -> Result<()> {
        let rooms = match &self.durable {
            None => self.engine.all().await?,
            Some(durable) => self.reseeded(durable.as_ref()).await?,
        };
        let live: HashSet<String> = rooms.iter().map(|(s, _)| s.clone()).collect();
        for (show, room) in rooms {
            if self.catalog.show(&show).is_none() {
                continue;
            }
            let reborn = self
                .cache
                .get(&show)
                .is_some_and(|old| old.generation != room.generation);
            self.cache.insert(show.clone(), room);
            if reborn {
                tracing::warn!(%show, "waiting room came back without its queue; placing its sockets again");
                self.hub.requeue(&show);
            }
            self.ensure_leader(&show);
        }
        let gone: Vec<String> = self
            .cache
            .iter()
            .map(|e| e.key().clone())
            .filter(|s| !live.contains(s))
            .collect();
        for show in gone {
            self.forget(&show);
        }
        self.loaded.store(true, Ordering::Release);
        Ok(())
    }

    /// The durable rooms with their live figures from Redis; a room Redis
    /// lost is saved there again, one Redis no longer should have is removed.
    async fn reseeded(&self, durable: &dyn RoomStore) -> Result<Vec<(String, StoredRoom)>> {
        let wanted = durable.all().await?;
        let mut live: HashMap<String, StoredRoom> = self.engine.all().await?.into_iter().collect();
        let mut rooms = Vec::with_capacity(wanted.len());
        for d in wanted {
            let room = match live.remove(&d.show) {
                Some(mut r) => {
                    r.config = d.config;
                    r.seed = d.seed;
                    r
                }
                None => {
                    let room = StoredRoom {
                        config: d.config,
                        seed: d.seed,
                        sold_out: false,
                        observed_rate: 0.0,
                        generation: new_generation(),
                    };
                    tracing::warn!(show = %d.show, "waiting room missing from Redis; re-seeded from Postgres");
                    self.engine.save(&d.show, &room).await?;
                    room
                }
            };
            rooms.push((d.show, room));
        }
        for show in live.keys() {
            self.engine.remove(show).await?;
        }
        Ok(rooms)
    }

    /// Sockets keep their shoppers "seen": every third of the abandonment
    /// time, one pipelined touch per show for all of this node's sockets.
    async fn liveness_loop(self: Arc<Self>) {
        let every = (self.abandon_after / 3).max(Duration::from_secs(1));
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let until = self.clock.now_ms() + self.abandon_after.as_millis() as i64;
            for (show, users) in self.hub.live_users().await {
                if let Err(e) = self.engine.touch(&show, &users, until).await {
                    tracing::warn!(%show, error = %e, "queue liveness touch failed");
                }
            }
        }
    }

    /// Whether the show has started: admission is over for it.
    fn started(&self, show: &str) -> bool {
        self.catalog.show(show).is_none_or(|s| s.start_time <= self.clock.now())
    }

    fn ensure_leader(self: &Arc<Self>, show: &str) {
        if self.leaders.contains_key(show) || self.started(show) {
            return;
        }
        let stop = self.stop.child_token();
        self.leaders.insert(show.to_owned(), stop.clone());
        let (rooms, show) = (self.clone(), show.to_owned());
        supervised("waiting-room leader", stop.clone(), move || {
            rooms.clone().lead(show.clone(), stop.clone())
        });
    }

    /// Runs the show's leader at the pace its config asks for.
    async fn lead(self: Arc<Self>, show: String, stop: CancellationToken) {
        let sellable = sellable(&self.catalog, &show);
        let mut leader = Leader::new(
            &show,
            self.engine.clone(),
            &self.node,
            sellable,
            self.abandon_after,
            self.clock,
        );
        let mut period = TICK_EVERY;
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            if self.started(&show) {
                // Admission is over once the show starts: the leader stops.
                self.leaders.remove(&show);
                return;
            }
            let Some(room) = self.gated(&show) else { continue };
            if let Some((t, observed)) = leader.tick(&room).await
                && let Some(mut cached) = self.cache.get_mut(&show)
            {
                let flipped = cached.sold_out != t.sold_out;
                cached.sold_out = t.sold_out;
                cached.observed_rate = observed;
                drop(cached);
                if flipped && let Err(e) = self.engine.rooms_changed().await {
                    // The other nodes' next full re-read sees it.
                    tracing::warn!(%show, error = %e, "could not tell the nodes the room's sold-out flag flipped");
                }
            }
            let wanted = tick_period(room.config.admit_rate_per_second, room.config.burst);
            if wanted != period {
                period = wanted;
                tick = tokio::time::interval(period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::demo;
    use crate::waitroom::fixtures::{NothingSold, room};
    use crate::waitroom::memory::MemoryWaitingRooms;

    #[tokio::test]
    async fn a_leader_stops_when_its_show_starts() {
        let clock = Clock::system();
        let mut data = demo(clock.now().date_naive());
        data.shows[0].start_time = clock.now() + chrono::TimeDelta::milliseconds(1500);
        let show = data.shows[0].id.clone();
        let catalog = Arc::new(Catalog::new(data).unwrap());
        let engine: Arc<dyn WaitingRooms> = Arc::new(MemoryWaitingRooms::new(Arc::new(NothingSold), clock));
        engine.save(&show, &room()).await.unwrap();
        let stop = CancellationToken::new();
        let rooms = Rooms::new(
            engine,
            None,
            catalog,
            Arc::new(Tokens::new("secret")),
            Duration::from_secs(60),
            clock,
            stop.clone(),
        );
        rooms.refresh().await.unwrap();
        assert!(rooms.leaders.contains_key(&show), "a gated show on sale has a leader");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(
            !rooms.leaders.contains_key(&show),
            "admission is over once the show starts"
        );
        stop.cancel();
    }
}
