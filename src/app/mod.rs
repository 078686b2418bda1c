//! The composition root: the only module that knows every feature. It
//! builds the engines, the features and their loops, the state and the
//! router, and binds the listener. `main` and the tests call exactly this;
//! nothing in the library imports it.

pub mod engines;
pub mod ops;
pub mod router;
pub mod saturation;
pub mod state;
pub mod upkeep;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::serve::{ListenerExt, TapIo};

use crate::http::guard::{ConnTimes, Guarded, GuardedListener};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::Tokens;
use crate::booking::loops::Loops;
use crate::booking::{Booking, Limits};
use crate::catalog::Gates;
use crate::catalog::store::CatalogStore;
use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::catalog::{Catalog, CatalogData};
use crate::http::extract::AuthState;
use crate::http::ratelimit::{self, Limiter};
use crate::live::hub::{FeedTuning, LINGER, SeatHub};
use crate::supervise;
use crate::waitroom::rooms::Rooms;
use crate::ws::{Budgets, SocketTimes, Sockets};
use engines::{Engines, Stores};
use state::{AppState, Health, Parts};

/// After SIGTERM, how long the node still answers (readiness 503, sockets
/// refused) before it stops accepting connections.
pub const DRAIN_NOTICE: Duration = Duration::from_secs(1);
/// A connection must send a complete request header this soon after it is
/// accepted (the contract: 10 s), or it is closed.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection with no byte either way for this long is closed (an idle
/// keep-alive connection; the contract: 60 s).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the service could not start; each names the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error("cannot reach Redis ({setting}): {cause}")]
    Redis { setting: &'static str, cause: String },
    #[error("cannot use Postgres (DATABASE_URL): {0}")]
    Postgres(String),
    #[error("catalog: {0}")]
    Catalog(String),
    #[error("cannot listen on {addr} (BIND): {cause}")]
    Bind { addr: SocketAddr, cause: String },
}

impl From<crate::catalog::load::LoadError> for StartError {
    fn from(e: crate::catalog::load::LoadError) -> Self {
        match e {
            crate::catalog::load::LoadError::File(m) => Self::Catalog(m),
            crate::catalog::load::LoadError::Store(e) => Self::Postgres(e.to_string()),
        }
    }
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    pub state: AppState,
}

/// Reads and validates a catalog file (`CATALOG`, `import-catalog`).
pub fn read_catalog_file(path: &std::path::Path) -> Result<CatalogData, StartError> {
    Ok(crate::catalog::load::read_file(path)?)
}

/// The catalog store of these settings, migrated (for `migrate` and
/// `import-catalog`).
pub async fn catalog_store(settings: &Settings) -> Result<Arc<dyn CatalogStore>, StartError> {
    Ok(engines::stores(settings).await?.catalog)
}

impl Application {
    /// Wires the service: stores, engines, the features on them, the state
    /// the routes share, then the loops; binds the listener before the
    /// loops start.
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        settings.validate().map_err(StartError::Config)?;
        warn_of_a_development_secret(&settings);
        let clock = Clock::system();
        let stores = engines::stores(&settings).await?;
        let engines = start_engines(&settings, clock, &stores).await?;
        let stop = CancellationToken::new();
        let features = Features::build(&settings, clock, &stores, &engines, &stop).await?;
        let state = app_state(&settings, &stores, &engines, &features);
        let listener = listen(settings.bind).map_err(|e| StartError::Bind {
            addr: settings.bind,
            cause: e.to_string(),
        })?;
        let tasks = spawn_loops(&settings, clock, stores, engines, features, &stop);
        Ok(Self {
            router: router::app(state.clone()),
            listener,
            stop,
            tasks,
            state,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Serves until `shutdown` resolves, then drains: readiness turns 503,
    /// every socket is told to reconnect (4500), no new connection is
    /// accepted, requests in flight finish, and the background loops stop,
    /// all within `SHUTDOWN_GRACE_SECONDS`.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let Self {
            listener,
            router,
            stop,
            tasks,
            state,
        } = self;
        let listener = guard(listener, &state.settings);
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let grace = Duration::from_secs(state.settings.shutdown_grace_seconds);
        let (began_tx, began_rx) = tokio::sync::oneshot::channel::<tokio::time::Instant>();
        let shutdown = drain_after(shutdown, &state, grace, began_tx);
        let server =
            std::future::IntoFuture::into_future(axum::serve(listener, service).with_graceful_shutdown(shutdown));
        let result = finish_within(grace, server, began_rx).await;
        stop.cancel();
        // Together, within one bound: a task slow to stop does not delay
        // the others' ends (nor the exit) by its own timeout each.
        let _ = tokio::time::timeout(Duration::from_secs(2), futures::future::join_all(tasks)).await;
        result
    }
}

fn warn_of_a_development_secret(settings: &Settings) {
    if settings.dev_secret() {
        tracing::warn!(
            "JWT_SECRET is not set: using the built-in DEVELOPMENT secret. Anyone can mint tokens, \
             and POST /api/v1/dev/token is open. Set JWT_SECRET for anything but a developer machine."
        );
    }
}

/// The engines over `stores`, with the clock checked against Redis once.
async fn start_engines(settings: &Settings, clock: Clock, stores: &Stores) -> Result<Engines, StartError> {
    let engines = engines::engines(settings, clock, stores.records.clone()).await?;
    if let Some(redis) = &engines.redis
        && let Err(e) = upkeep::sync_clock(redis).await
    {
        tracing::warn!(error = %e, "could not check the clock against Redis yet");
    }
    Ok(engines)
}

/// The features over the engines: the catalog, the waiting rooms, the live
/// seat maps, booking, and the callers' rate limits.
struct Features {
    catalog: Arc<Catalog>,
    rooms: Arc<Rooms>,
    seat_hub: Arc<SeatHub>,
    booking: Arc<Booking>,
    auth: AuthState,
    per_ip: Arc<Limiter<IpAddr>>,
}

impl Features {
    async fn build(
        settings: &Settings,
        clock: Clock,
        stores: &Stores,
        engines: &Engines,
        stop: &CancellationToken,
    ) -> Result<Self, StartError> {
        let catalog = load_catalog(settings, clock, stores, engines).await?;
        engines.locks.only_for(catalog.clone());
        let tokens = Arc::new(Tokens::new(settings.jwt_secret()));
        let rooms = Rooms::new(
            engines.waitrooms.clone(),
            stores.rooms.clone(),
            catalog.clone(),
            tokens.clone(),
            Duration::from_secs(settings.abandon_after_seconds),
            clock,
            stop.clone(),
        );
        // Know the gated shows before serving; if the rooms cannot be read
        // now, holds are 503 until the refresh loop can.
        if let Err(e) = rooms.refresh().await {
            tracing::warn!(error = %e, "waiting rooms not loaded at start-up; holds wait for them");
        }
        let seat_hub = SeatHub::new(catalog.clone(), engines.locks.clone(), feed_tuning(settings), LINGER);
        let booking = Arc::new(Booking::new(
            catalog.clone(),
            engines.locks.clone(),
            stores.records.clone(),
            rooms.clone(),
            seat_hub.clone(),
            limits(settings),
            clock,
        ));
        let auth = AuthState {
            tokens,
            per_user: Arc::new(Limiter::new(settings.rate_limit_user_per_sec)),
        };
        let per_ip = Arc::new(Limiter::new(settings.rate_limit_ip_per_sec));
        Ok(Self {
            catalog,
            rooms,
            seat_hub,
            booking,
            auth,
            per_ip,
        })
    }
}

/// The catalog to serve (`CATALOG`, the stored one, or the demo).
async fn load_catalog(
    settings: &Settings,
    clock: Clock,
    stores: &Stores,
    engines: &Engines,
) -> Result<Arc<Catalog>, StartError> {
    let today = clock.now().date_naive();
    let catalog: Arc<Catalog> =
        Arc::new(crate::catalog::load::load(settings.catalog.as_deref(), stores.catalog.as_ref(), today).await?);
    tracing::info!(
        seat_engine = engines.locks.name(),
        record = stores.records.name(),
        movies = catalog.movies().len(),
        shows = catalog.shows().len(),
        "engines ready"
    );
    Ok(catalog)
}

fn feed_tuning(settings: &Settings) -> FeedTuning {
    FeedTuning {
        batch_window: Duration::from_millis(settings.seat_stream_batch_ms),
        history_batches: settings.ws_queue_frames as usize,
        max_feeds: settings.seat_feeds_max as usize,
    }
}

fn limits(settings: &Settings) -> Limits {
    Limits {
        hold_ttl_ms: settings.hold_ttl_seconds as i64 * 1000,
        order_ttl_ms: settings.order_ttl_seconds as i64 * 1000,
        max_seats_per_hold: settings.max_seats_per_hold as usize,
        max_seats_per_user_per_show: settings
            .max_seats_per_user_per_show
            .unwrap_or(settings.max_seats_per_hold) as usize,
        offer_ttl_ms: settings.waitlist_offer_seconds as i64 * 1000,
        hold_id_lifetime_ms: hold_id_lifetime(settings).as_millis() as i64,
    }
}

/// How long after it is minted a hold can still have a record: a hold (or
/// an offer) that becomes an order at its last moment, the order's lock to
/// its end, then the record's retention (its tombstone's generation is
/// dropped within twice that).
fn hold_id_lifetime(settings: &Settings) -> Duration {
    let hold = settings.hold_ttl_seconds.max(settings.waitlist_offer_seconds);
    let retention = Duration::from_secs(settings.hold_record_retention_seconds);
    Duration::from_secs(hold + settings.order_ttl_seconds) + engines::ORDER_LOCK_GRACE + 2 * retention
}

/// What every route shares.
fn app_state(settings: &Settings, stores: &Stores, engines: &Engines, features: &Features) -> AppState {
    let gates: Arc<dyn Gates> = features.rooms.clone();
    AppState::new(Parts {
        catalog: features.catalog.clone(),
        gates,
        booking: features.booking.clone(),
        rooms: features.rooms.clone(),
        seat_hub: features.seat_hub.clone(),
        sockets: Sockets::new(
            socket_budgets(settings),
            SocketTimes::pinging_every(Duration::from_secs(settings.ws_ping_seconds)),
        ),
        auth: features.auth.clone(),
        per_ip: features.per_ip.clone(),
        health: Health {
            locks: engines.locks.clone(),
            records: stores.records.clone(),
            rooms: features.rooms.clone(),
            draining: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            redis: engines.redis.clone(),
        },
        metrics: crate::metrics::install(),
        settings: Arc::new(settings.clone()),
    })
}

/// The socket budgets of these settings.
fn socket_budgets(settings: &Settings) -> Budgets {
    let total = settings.ws_max_connections;
    Budgets {
        total,
        // Unset, seat maps get 80 % of the sockets, so they can never take
        // every place from the queue sockets.
        seats: settings.ws_max_seat_sockets.unwrap_or(total - total / 5),
        queue: settings.ws_max_queue_sockets.unwrap_or(total),
        per_ip: settings.ws_max_per_ip,
    }
}

/// Starts every background loop; they run until `stop` is cancelled.
fn spawn_loops(
    settings: &Settings,
    clock: Clock,
    stores: Stores,
    engines: Engines,
    features: Features,
    stop: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    let Features {
        catalog,
        rooms,
        booking,
        auth,
        per_ip,
        ..
    } = features;
    let cleanup = upkeep::Cleanup {
        records: stores.records.clone(),
        locks: engines.locks.clone(),
        rooms: rooms.clone(),
        catalog: catalog.clone(),
        clock,
    };
    // This process in the nodes' shared leases (sweeper, Redis figures).
    let node = uuid::Uuid::new_v4().to_string();
    let loops = Loops {
        node: node.clone(),
        booking,
        catalog,
        locks: engines.locks,
        events: engines.events,
        sweeper: Arc::default(),
    };
    let mut tasks = loops.spawn(Duration::from_millis(settings.sweep_interval_ms), stop.clone());
    tasks.push(supervise::supervised("cleanup", stop.clone(), {
        let stop = stop.clone();
        move || cleanup.clone().run(stop.clone())
    }));
    let saturation = saturation::Saturation {
        pool: stores.pool.clone(),
        redis: engines.redis.clone(),
        keys: crate::redis::keys::Keys::new(settings.redis_key_prefix.clone()),
        node,
    };
    tasks.push(supervise::supervised("saturation figures", stop.clone(), {
        let stop = stop.clone();
        move || saturation.clone().run(stop.clone())
    }));
    if let Some(redis) = engines.redis {
        tasks.push(supervise::supervised("clock check", stop.clone(), {
            let stop = stop.clone();
            move || upkeep::clock_loop(redis.clone(), stop.clone())
        }));
    }
    tasks.push(supervise::supervised("idle callers forgotten", stop.clone(), {
        let stop = stop.clone();
        move || forget_idle_callers(auth.clone(), per_ip.clone(), stop.clone())
    }));
    tasks.extend(rooms.spawn());
    tasks
}

/// The listener with the connection timeouts, and the socket options of
/// every accepted connection.
fn guard(
    listener: TcpListener,
    settings: &Settings,
) -> TapIo<GuardedListener, impl FnMut(&mut Guarded<TcpStream>) + Send + 'static> {
    let send_buffer = settings.tcp_send_buffer_bytes;
    let times = ConnTimes {
        header: HEADER_TIMEOUT,
        // Sockets are pinged, so they are never idle this long unless
        // pings are set slower than the keep-alive timeout.
        idle: IDLE_TIMEOUT.max(Duration::from_secs(settings.ws_ping_seconds * 2)),
    };
    GuardedListener::new(listener, times).tap_io(move |io| {
        let tcp = io.get_ref();
        // Deltas are small and latency is the product: no Nagle delay.
        let _ = tcp.set_nodelay(true);
        if send_buffer > 0 {
            let _ = socket2::SockRef::from(tcp).set_send_buffer_size(send_buffer);
        }
    })
}

/// The server's shutdown signal: once `shutdown` resolves, readiness turns
/// 503 and every socket is told to reconnect (upgraded sockets are not
/// tracked by graceful shutdown), the moment is sent on `began`, and after a
/// short notice HTTP drains.
fn drain_after<F: Future<Output = ()>>(
    shutdown: F,
    state: &AppState,
    grace: Duration,
    began: tokio::sync::oneshot::Sender<tokio::time::Instant>,
) -> impl Future<Output = ()> + use<F> {
    let sessions = state.sockets.shutdown.clone();
    let draining = state.health.draining.clone();
    async move {
        shutdown.await;
        tracing::info!("draining: not ready, sockets told to reconnect, requests in flight finishing");
        draining.store(true, std::sync::atomic::Ordering::Release);
        sessions.cancel();
        let _ = began.send(tokio::time::Instant::now());
        // A moment in which probes see 503 and new sockets are refused,
        // before the listener closes and in-flight requests finish.
        tokio::time::sleep(DRAIN_NOTICE.min(grace / 4)).await;
    }
}

/// Runs `server` to its end, or, once the drain began, for at most `grace`.
async fn finish_within(
    grace: Duration,
    server: impl Future<Output = std::io::Result<()>>,
    began: tokio::sync::oneshot::Receiver<tokio::time::Instant>,
) -> std::io::Result<()> {
    tokio::pin!(server);
    let mut began = Box::pin(began);
    // Once the drain begins, requests have the grace period to finish.
    tokio::select! {
        r = &mut server => r,
        Ok(at) = &mut began => match tokio::time::timeout_at(at + grace, &mut server).await {
            Ok(r) => r,
            Err(_) => {
                tracing::warn!(?grace, "requests still in flight at the end of the grace period; exiting");
                Ok(())
            }
        },
    }
}

async fn forget_idle_callers(auth: AuthState, per_ip: Arc<Limiter<std::net::IpAddr>>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(ratelimit::FORGET_EVERY);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {
                auth.per_user.forget_idle();
                per_ip.forget_idle();
            }
        }
    }
}

/// Connections the kernel queues while the node accepts (capped by
/// `net.core.somaxconn`). tokio's default of 1,024 overflows when thousands
/// of queue sockets open at once, and a dropped SYN costs its shopper a
/// one-second retransmit.
const LISTEN_BACKLOG: i32 = 4_096;

fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket.into())
}
