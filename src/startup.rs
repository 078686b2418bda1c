//! Building the application: engines, migrations, catalog, state, listener,
//! background loops. `main` and the tests call exactly this.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::Tokens;
use crate::booking::{Booking, Limits};
use crate::config::Settings;
use crate::domain::catalog::{self, Catalog, CatalogData};
use crate::domain::seats::LockTimes;
use crate::engine::SeatLocks;
use crate::engine::memory::MemorySeatLocks;
use crate::engine::redis::RedisSeatLocks;
use crate::engine::redis_conn::RedisHandle;
use crate::events::{EventSink, MemoryStream, RedisStream};
use crate::http::{self, AppState, Inner};
use crate::keys::Keys;
use crate::live::hub::{LINGER, SeatHub};
use crate::live::session::SocketTimes;
use crate::ratelimit::{self, Limiter, RateLimits};
use crate::records::Records;
use crate::records::memory::MemoryRecords;
use crate::records::postgres::PgRecords;
use crate::sweeper;
use crate::waitroom::WaitingRooms;
use crate::waitroom::memory::MemoryWaitingRooms;
use crate::waitroom::redis::RedisWaitingRooms;
use crate::waitroom::service::Rooms;

/// How long ended hold records stay readable (GET /holds/{id}).
pub const HOLD_RECORD_RETENTION: Duration = Duration::from_secs(3600);
/// How long an order's seat lock outlives the order's expiry when the record
/// never releases it (a crash between the lock and the order row).
pub const ORDER_LOCK_GRACE: Duration = Duration::from_secs(60);
/// A movie id of the demo catalog: its presence means the demo is in use.
const DEMO_MARKER_MOVIE: &str = "dune-3";

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

pub struct Application {
    listener: TcpListener,
    router: Router,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    pub state: AppState,
}

/// Seat locks, waiting rooms and the event stream.
pub type Engines = (Arc<dyn SeatLocks>, Arc<dyn WaitingRooms>, Arc<dyn EventSink>);

/// The seat locks, the waiting rooms and the event stream, on Redis (one
/// shared connection) or in process.
pub async fn engines(settings: &Settings) -> Result<Engines, StartError> {
    let times = LockTimes {
        retention_ms: HOLD_RECORD_RETENTION.as_millis() as i64,
        order_grace_ms: ORDER_LOCK_GRACE.as_millis() as i64,
    };
    if !settings.uses_redis() {
        let locks: Arc<dyn SeatLocks> = Arc::new(MemorySeatLocks::new(times));
        return Ok((
            locks.clone(),
            Arc::new(MemoryWaitingRooms::new(locks)),
            Arc::new(MemoryStream::default()),
        ));
    }
    let setting = if settings.redis_cluster_nodes.is_empty() {
        "REDIS_URL"
    } else {
        "REDIS_CLUSTER_NODES"
    };
    let handle = RedisHandle::connect(settings.redis_url.as_deref(), &settings.redis_cluster_nodes)
        .await
        .map_err(|e| StartError::Redis {
            setting,
            cause: e.to_string(),
        })?;
    let handle = Arc::new(handle);
    let keys = Keys::new(settings.redis_key_prefix.clone());
    let locks = RedisSeatLocks::new(handle.clone(), keys.clone(), times);
    locks.ping().await.map_err(|e| StartError::Redis {
        setting,
        cause: e.to_string(),
    })?;
    let stream = RedisStream::new(handle.clone(), keys.event_stream());
    Ok((
        Arc::new(locks),
        Arc::new(RedisWaitingRooms::new(handle, keys)),
        Arc::new(stream),
    ))
}

/// Connects to Postgres and runs the migrations, or answers the in-process store.
pub async fn records(settings: &Settings) -> Result<Arc<dyn Records>, StartError> {
    match &settings.database_url {
        None => Ok(Arc::new(MemoryRecords::new())),
        Some(url) => {
            let pg = PgRecords::connect(url)
                .await
                .map_err(|e| StartError::Postgres(e.to_string()))?;
            pg.migrate().await.map_err(|e| StartError::Postgres(e.to_string()))?;
            Ok(Arc::new(pg))
        }
    }
}

pub fn read_catalog_file(path: &std::path::Path) -> Result<CatalogData, StartError> {
    let text = std::fs::read_to_string(path).map_err(|e| StartError::Catalog(format!("{}: {e}", path.display())))?;
    let data: CatalogData =
        serde_json::from_str(&text).map_err(|e| StartError::Catalog(format!("{}: {e}", path.display())))?;
    Catalog::new(data.clone()).map_err(|e| StartError::Catalog(format!("{}: {e}", path.display())))?;
    Ok(data)
}

/// The catalog to serve: `CATALOG` if given, else the demo for today. With
/// Postgres the catalog is stored there and read back, so every node serves
/// the same one; the demo is (re)seeded only into an empty database or one
/// that already holds the demo, never over an imported catalog.
async fn load_catalog(settings: &Settings, records: &dyn Records) -> Result<Catalog, StartError> {
    let db = |e: crate::error::Error| StartError::Postgres(e.to_string());
    let given = settings.catalog.as_deref().map(read_catalog_file).transpose()?;
    let data = match given {
        Some(data) => {
            records.save_catalog(&data).await.map_err(db)?;
            data
        }
        None => {
            let stored = records.load_catalog().await.map_err(db)?;
            let demo_in_use = stored
                .as_ref()
                .is_none_or(|c| c.movies.iter().any(|m| m.id == DEMO_MARKER_MOVIE));
            if demo_in_use {
                records
                    .save_catalog(&catalog::demo(chrono::Utc::now().date_naive()))
                    .await
                    .map_err(db)?;
            }
            records
                .load_catalog()
                .await
                .map_err(db)?
                .unwrap_or_else(|| catalog::demo(chrono::Utc::now().date_naive()))
        }
    };
    let data = if records.name() == "postgres" {
        records.load_catalog().await.map_err(db)?.unwrap_or(data)
    } else {
        data
    };
    Catalog::new(data).map_err(StartError::Catalog)
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartError> {
        settings.validate().map_err(StartError::Config)?;
        if settings.dev_secret() {
            tracing::warn!(
                "JWT_SECRET is not set: using the built-in DEVELOPMENT secret. Anyone can mint tokens, \
                 and POST /api/v1/dev/token is open. Set JWT_SECRET for anything but a developer machine."
            );
        }
        let (locks, waitrooms, events) = engines(&settings).await?;
        let records = records(&settings).await?;
        let catalog = Arc::new(load_catalog(&settings, records.as_ref()).await?);
        tracing::info!(
            seat_engine = locks.name(),
            record = records.name(),
            movies = catalog.movies().len(),
            shows = catalog.shows().len(),
            "engines ready"
        );
        let booking = Arc::new(Booking {
            catalog,
            locks,
            records,
            waitrooms: waitrooms.clone(),
            events,
            limits: Limits {
                hold_ttl_ms: settings.hold_ttl_seconds as i64 * 1000,
                order_ttl_ms: settings.order_ttl_seconds as i64 * 1000,
                max_seats_per_hold: settings.max_seats_per_hold as usize,
            },
        });
        let hub = SeatHub::new(booking.clone(), settings.ws_queue_frames as usize, LINGER);
        let tokens = Arc::new(Tokens::new(settings.jwt_secret()));
        let stop = CancellationToken::new();
        let rooms = Rooms::new(
            waitrooms,
            booking.clone(),
            tokens.clone(),
            Duration::from_secs(settings.abandon_after_seconds),
            stop.clone(),
        );
        let ping = Duration::from_secs(settings.ws_ping_seconds);
        let state = AppState(Arc::new(Inner {
            hub,
            socket_times: SocketTimes {
                ping_every: ping,
                dead_after: ping * 3,
                send_timeout: Duration::from_secs(10),
            },
            sessions: CancellationToken::new(),
            ws_slots: Arc::new(tokio::sync::Semaphore::new(settings.ws_max_connections)),
            booking: booking.clone(),
            tokens,
            rooms: rooms.clone(),
            rate_limits: RateLimits {
                per_user: Limiter::new(settings.rate_limit_user_per_sec),
                per_ip: Limiter::new(settings.rate_limit_ip_per_sec),
            },
            metrics: crate::metrics::install(),
            settings: settings.clone(),
        }));
        let listener = TcpListener::bind(settings.bind).await.map_err(|e| StartError::Bind {
            addr: settings.bind,
            cause: e.to_string(),
        })?;
        let mut tasks = sweeper::spawn(booking, Duration::from_millis(settings.sweep_interval_ms), stop.clone());
        tasks.push(tokio::spawn(forget_idle_callers(state.clone(), stop.clone())));
        tasks.extend(rooms.spawn());
        Ok(Self {
            router: http::app(state.clone()),
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

    /// Serves until `shutdown` resolves, then drains requests in flight and
    /// stops the background loops.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let Self {
            listener,
            router,
            stop,
            tasks,
            state,
        } = self;
        let send_buffer = state.settings.tcp_send_buffer_bytes;
        let listener = listener.tap_io(move |tcp| {
            // Deltas are small and latency is the product: no Nagle delay.
            let _ = tcp.set_nodelay(true);
            if send_buffer > 0 {
                let _ = socket2::SockRef::from(&*tcp).set_send_buffer_size(send_buffer);
            }
        });
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let sessions = state.sessions.clone();
        // Upgraded sockets are not tracked by graceful shutdown: tell them to
        // close ("reconnect") first, then drain HTTP.
        let shutdown = async move {
            shutdown.await;
            sessions.cancel();
        };
        let result = axum::serve(listener, service).with_graceful_shutdown(shutdown).await;
        stop.cancel();
        for t in tasks {
            let _ = t.await;
        }
        result
    }
}

async fn forget_idle_callers(state: AppState, stop: CancellationToken) {
    let mut tick = tokio::time::interval(ratelimit::FORGET_EVERY);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {
                state.rate_limits.per_user.forget_idle();
                state.rate_limits.per_ip.forget_idle();
            }
        }
    }
}
