//! Settings: every one an environment variable and a flag of the same name
//! (`HOLD_TTL_SECONDS` / `--hold-ttl-seconds`). Bad values stop start-up with
//! a message that names the setting.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use ipnet::IpNet;

pub const DEFAULT_HOLD_TTL_SECONDS: u64 = 300;
pub const DEFAULT_ORDER_TTL_SECONDS: u64 = 600;
pub const DEFAULT_MAX_SEATS_PER_HOLD: u32 = 10;
pub const DEFAULT_WAITLIST_OFFER_SECONDS: u64 = 120;
pub const DEFAULT_ABANDON_AFTER_SECONDS: u64 = 60;
pub const DEFAULT_RATE_LIMIT_USER_PER_SEC: u32 = 20;
pub const DEFAULT_RATE_LIMIT_IP_PER_SEC: u32 = 100;
/// Largest request body; anything larger is 413 `PAYLOAD_TOO_LARGE`.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// The development JWT secret, used only when `JWT_SECRET` is unset. Tokens
/// signed with it are worthless outside a developer's machine.
pub const DEV_JWT_SECRET: &str = "showgate-development-secret-do-not-use-in-production";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, global = true, env = "BIND", default_value = "0.0.0.0:8080")]
    pub bind: SocketAddr,

    /// Redis URL; unset (and no cluster) means the in-process memory engine.
    #[arg(long, global = true, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// Redis Cluster seed nodes, comma-separated (`redis://10.0.0.1:6379,...`).
    #[arg(long, global = true, env = "REDIS_CLUSTER_NODES", value_delimiter = ',')]
    pub redis_cluster_nodes: Vec<String>,

    /// Prefix of every Redis key and channel (several deployments or test runs can share one Redis).
    #[arg(long, global = true, env = "REDIS_KEY_PREFIX", default_value = "sg:")]
    pub redis_key_prefix: String,

    /// Postgres URL; unset means the in-process store.
    #[arg(long, global = true, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Longest a Postgres statement may run, and wait for a row lock (ms):
    /// past either it is cancelled and the caller answers 503, so one stuck
    /// lock cannot stall order expiry and the reconciler on every node.
    #[arg(long, global = true, env = "POSTGRES_STATEMENT_TIMEOUT_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub postgres_statement_timeout_ms: u64,

    #[arg(long, global = true, env = "POSTGRES_LOCK_TIMEOUT_MS", default_value_t = 1_000,
          value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub postgres_lock_timeout_ms: u64,

    /// HS256 secret for user and admission tokens; unset means the development secret.
    #[arg(long, global = true, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    #[arg(long, global = true, env = "HOLD_TTL_SECONDS", default_value_t = DEFAULT_HOLD_TTL_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub hold_ttl_seconds: u64,

    /// How long an ended hold's record (its tombstone) stays readable, at
    /// least (`GET /holds/{id}`, the 409 of an order on it); at most about
    /// twice this. The contract's 15 minutes is the default: lower it only
    /// to watch the records go in a test or a load test.
    #[arg(long, global = true, env = "HOLD_RECORD_RETENTION_SECONDS", default_value_t = 900,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub hold_record_retention_seconds: u64,

    #[arg(long, global = true, env = "ORDER_TTL_SECONDS", default_value_t = DEFAULT_ORDER_TTL_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub order_ttl_seconds: u64,

    #[arg(long, global = true, env = "MAX_SEATS_PER_HOLD", default_value_t = DEFAULT_MAX_SEATS_PER_HOLD,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_seats_per_hold: u32,

    /// Seats of one show one shopper may have across their active hold and
    /// their orders waiting for payment or paid (default: MAX_SEATS_PER_HOLD):
    /// one admission cannot lock a hall.
    #[arg(long, global = true, env = "MAX_SEATS_PER_USER_PER_SHOW",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_seats_per_user_per_show: Option<u32>,

    /// How long a seat offered to the next shopper on a show's waiting list
    /// stays theirs before it moves on.
    #[arg(long, global = true, env = "WAITLIST_OFFER_SECONDS", default_value_t = DEFAULT_WAITLIST_OFFER_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub waitlist_offer_seconds: u64,

    #[arg(long, global = true, env = "ABANDON_AFTER_SECONDS", default_value_t = DEFAULT_ABANDON_AFTER_SECONDS,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub abandon_after_seconds: u64,

    /// A catalog JSON file to serve instead of the demo catalog.
    #[arg(long, global = true, env = "CATALOG")]
    pub catalog: Option<PathBuf>,

    /// Where the pages are; served at `/`.
    #[arg(long, global = true, env = "STATIC_DIR", default_value = "static")]
    pub static_dir: PathBuf,

    /// Requests per second per user on authenticated routes (burst twice that); 0 turns it off.
    #[arg(long, global = true, env = "RATE_LIMIT_USER_PER_SEC", default_value_t = DEFAULT_RATE_LIMIT_USER_PER_SEC)]
    pub rate_limit_user_per_sec: u32,

    /// Requests per second per client IP on public routes (burst twice that); 0 turns it off.
    #[arg(long, global = true, env = "RATE_LIMIT_IP_PER_SEC", default_value_t = DEFAULT_RATE_LIMIT_IP_PER_SEC)]
    pub rate_limit_ip_per_sec: u32,

    /// How often the sweepers run (seat expiry, order expiry, lock reconciliation), in ms.
    #[arg(long, global = true, env = "SWEEP_INTERVAL_MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub sweep_interval_ms: u64,

    #[arg(long, global = true, env = "MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Batches of seat-stream history each feed keeps: a socket that fell
    /// behind by fewer is caught up with one merged delta, by more with a snapshot.
    #[arg(long, global = true, env = "WS_QUEUE_FRAMES", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub ws_queue_frames: u64,

    /// A seat socket gets at most one delta per this many milliseconds (the
    /// changes in between are merged); 0 sends each change at once.
    #[arg(long, global = true, env = "SEAT_STREAM_BATCH_MS", default_value_t = 50,
          value_parser = clap::value_parser!(u64).range(0..=5_000))]
    pub seat_stream_batch_ms: u64,

    /// Seat feeds (one per followed show) a node keeps at most; over it, a
    /// new one ends the feed idle longest (one with sockets never).
    #[arg(long, global = true, env = "SEAT_FEEDS_MAX", default_value_t = 1_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub seat_feeds_max: u64,

    /// Open WebSockets per node; more are refused with 503 at the handshake.
    #[arg(long, global = true, env = "WS_MAX_CONNECTIONS", default_value_t = 100_000)]
    pub ws_max_connections: usize,

    /// Seat-map sockets per node (default: 80 % of WS_MAX_CONNECTIONS, so
    /// seat maps can never take every place from the queue sockets).
    #[arg(long, global = true, env = "WS_MAX_SEAT_SOCKETS")]
    pub ws_max_seat_sockets: Option<usize>,

    /// Queue sockets per node (default: WS_MAX_CONNECTIONS).
    #[arg(long, global = true, env = "WS_MAX_QUEUE_SOCKETS")]
    pub ws_max_queue_sockets: Option<usize>,

    /// Sockets one client address may hold on a node; more are 429. 0: no cap.
    #[arg(long, global = true, env = "WS_MAX_PER_IP", default_value_t = 50)]
    pub ws_max_per_ip: usize,

    /// Proxies whose X-Forwarded-For is believed, as comma-separated CIDRs;
    /// behind them the client is the right-most untrusted address. Empty:
    /// the client is always the TCP peer.
    // Spelled `std::vec::Vec` so clap parses the whole list as one value
    // (`parse_trusted_proxies`) instead of taking the flag once per entry.
    #[arg(long, global = true, env = "TRUSTED_PROXIES", default_value = "", value_parser = parse_trusted_proxies)]
    pub trusted_proxies: std::vec::Vec<IpNet>,

    /// Seconds between server pings; a peer silent for three pings is closed.
    #[arg(long, global = true, env = "WS_PING_SECONDS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub ws_ping_seconds: u64,

    /// Kernel send buffer of each accepted connection, in bytes; 0 leaves the
    /// OS default (autotuned up to megabytes). A cap bounds what one slow
    /// client can pin in kernel memory; past it, its socket falls behind
    /// its queue and is resynced with a snapshot.
    #[arg(long, global = true, env = "TCP_SEND_BUFFER_BYTES", default_value_t = 0)]
    pub tcp_send_buffer_bytes: usize,

    /// On SIGTERM, how long in-flight requests may take before the process
    /// exits anyway (readiness turns 503 and sockets are told to reconnect at once).
    #[arg(long, global = true, env = "SHUTDOWN_GRACE_SECONDS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub shutdown_grace_seconds: u64,

    #[arg(long, global = true, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

impl Default for Settings {
    /// The defaults of every setting, as the flags declare them, ignoring the
    /// environment (tests start from this). Written once: in the attributes.
    fn default() -> Self {
        use clap::{CommandFactory, FromArgMatches, Parser};
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            settings: Settings,
        }
        let matches = Defaults::command()
            .mut_args(|arg| arg.env(None))
            .try_get_matches_from(["showgate"])
            .expect("every setting has a default or is optional");
        Defaults::from_arg_matches(&matches)
            .expect("the defaults parse")
            .settings
    }
}

impl Settings {
    /// Checks what the types cannot; the error names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(url) = &self.redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("unix://"))
        {
            return Err(format!(
                "REDIS_URL must start with redis://, rediss:// or unix:// (got {url:?})"
            ));
        }
        for node in &self.redis_cluster_nodes {
            if !(node.starts_with("redis://") || node.starts_with("rediss://")) {
                return Err(format!(
                    "REDIS_CLUSTER_NODES entries must start with redis:// (got {node:?})"
                ));
            }
        }
        if let Some(url) = &self.database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err("DATABASE_URL must start with postgres:// or postgresql://".into());
        }
        if let Some(secret) = &self.jwt_secret
            && secret.is_empty()
        {
            return Err("JWT_SECRET is set but empty; unset it for development or set a real secret".into());
        }
        if self.redis_key_prefix.contains(['{', '}']) {
            return Err("REDIS_KEY_PREFIX must not contain '{' or '}' (they are hash-tag syntax)".into());
        }
        if self.max_body_bytes < 1024 {
            return Err("MAX_BODY_BYTES must be at least 1024".into());
        }
        if let Some(path) = &self.catalog
            && !path.is_file()
        {
            return Err(format!("CATALOG {} is not a readable file", path.display()));
        }
        Ok(())
    }

    pub fn uses_redis(&self) -> bool {
        self.redis_url.is_some() || !self.redis_cluster_nodes.is_empty()
    }

    pub fn dev_secret(&self) -> bool {
        self.jwt_secret.is_none()
    }

    pub fn jwt_secret(&self) -> &str {
        self.jwt_secret.as_deref().unwrap_or(DEV_JWT_SECRET)
    }
}

/// `TRUSTED_PROXIES`: comma-separated CIDRs (a bare address is a /32 or
/// /128); empty is none.
pub fn parse_trusted_proxies(s: &str) -> Result<Vec<IpNet>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<IpNet>()
                .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("TRUSTED_PROXIES: {p:?} is not a CIDR or an address"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_from_the_flags_and_ignore_the_environment() {
        // SAFETY: tests in this binary do not read this variable concurrently.
        unsafe { std::env::set_var("HOLD_TTL_SECONDS", "7") };
        let s = Settings::default();
        unsafe { std::env::remove_var("HOLD_TTL_SECONDS") };
        assert_eq!(s.hold_ttl_seconds, DEFAULT_HOLD_TTL_SECONDS);
        assert_eq!(s.bind, SocketAddr::from(([0, 0, 0, 0], 8080)));
        assert_eq!((s.ws_queue_frames, s.sweep_interval_ms), (256, 500));
        assert_eq!(
            (s.hold_record_retention_seconds, s.seat_feeds_max),
            (15 * 60, 1_000),
            "the contract's 15 minutes"
        );
        assert!(s.redis_url.is_none() && s.redis_cluster_nodes.is_empty());
    }

    #[test]
    fn bad_settings_name_themselves() {
        let s = Settings {
            redis_url: Some("localhost:6379".into()),
            ..Settings::default()
        };
        assert!(s.validate().unwrap_err().contains("REDIS_URL"));
        let s = Settings {
            database_url: Some("mysql://x".into()),
            ..Settings::default()
        };
        assert!(s.validate().unwrap_err().contains("DATABASE_URL"));
        let s = Settings {
            jwt_secret: Some(String::new()),
            ..Settings::default()
        };
        assert!(s.validate().unwrap_err().contains("JWT_SECRET"));
        let s = Settings {
            catalog: Some("/nonexistent.json".into()),
            ..Settings::default()
        };
        assert!(s.validate().unwrap_err().contains("CATALOG"));
        assert!(Settings::default().validate().is_ok());
    }

    #[test]
    fn bad_proxy_lists_are_refused_with_the_culprit() {
        assert_eq!(parse_trusted_proxies("").unwrap(), Vec::<IpNet>::new());
        assert_eq!(Settings::default().trusted_proxies, Vec::<IpNet>::new());
        assert_eq!(
            parse_trusted_proxies(" 10.0.0.1 ,, 10.0.0.0/8").unwrap(),
            vec!["10.0.0.1/32".parse::<IpNet>().unwrap(), "10.0.0.0/8".parse().unwrap()]
        );
        let err = parse_trusted_proxies("10.0.0.0/8,nope").unwrap_err();
        assert!(err.contains("nope"), "{err}");
        assert!(parse_trusted_proxies("10.0.0.0/33").is_err());
    }
}
