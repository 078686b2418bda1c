//! Abuse: what a few accounts and anonymous clients can cost the shared
//! Redis, beside honest shoppers. Two nodes on a Redis of the run's own;
//! phases, measured one after the other in one run:
//!
//! 1. idle: nobody calls (the nodes' own background work);
//! 2. junk: requests naming unknown shows, malformed and too old hold ids,
//!    which must cost Redis nothing over idle;
//! 3. honest: shoppers from their own loopback addresses (127.0.0.2..)
//!    holding at a stated rate, alone;
//! 4. abuse: the same shoppers while ten accounts hold as fast as they are
//!    let on both nodes, anonymous clients read every show's seat map on
//!    every node, and one address loops seat-socket handshakes;
//! 5. (with `--watch-fallback`) after: how long until Redis gives the abuse's
//!    memory back (the tombstones' retention).
//!
//! The report: Redis `used_memory` growth, commands/s and CPU per phase, the
//! honest shoppers' hold p99 alone and under the abuse, and what each abuser
//! was answered.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use showgate::auth::Tokens;
use showgate::config::DEV_JWT_SECRET;

use crate::server::Server;

#[derive(clap::Args)]
pub struct Params {
    /// Seconds of the abuse, and of the honest shoppers alone before it.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Honest holds a second (20 shoppers from 127.0.0.2-21 together).
    #[arg(long, default_value_t = 20.0)]
    pub honest_rate: f64,
    /// Abusing accounts (at most 10: each holds six seats of its own).
    #[arg(long, default_value_t = 10)]
    pub accounts: usize,
    /// The nodes' HOLD_RECORD_RETENTION_SECONDS.
    #[arg(long, default_value_t = 900)]
    pub retention_seconds: u64,
    /// After the abuse, wait until Redis gives its memory back (up to twice the retention).
    #[arg(long)]
    pub watch_fallback: bool,
    #[arg(long, default_value = "target/release/showgate")]
    pub server_bin: PathBuf,
}

/// Redis's own figures at one moment.
#[derive(Debug, Clone, Copy)]
struct RedisFigures {
    used_memory: i64,
    commands: u64,
    cpu_secs: f64,
}

/// One phase's cost to Redis.
struct PhaseCost {
    name: &'static str,
    secs: f64,
    before: RedisFigures,
    after: RedisFigures,
}

impl PhaseCost {
    fn commands_per_sec(&self) -> f64 {
        (self.after.commands - self.before.commands) as f64 / self.secs
    }
    fn cpu_share(&self) -> f64 {
        (self.after.cpu_secs - self.before.cpu_secs) / self.secs
    }
    fn memory_growth(&self) -> i64 {
        self.after.used_memory - self.before.used_memory
    }
}

/// Answers by status, per kind of caller.
type Tally = Arc<Mutex<BTreeMap<(&'static str, u16), u64>>>;

fn count(tally: &Tally, who: &'static str, status: u16) {
    *tally
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry((who, status))
        .or_default() += 1;
}

pub async fn run(p: Params) -> Result<(), String> {
    let redis = OwnRedis::start()?;
    let retention = p.retention_seconds.to_string();
    let env = vec![
        ("REDIS_URL".to_owned(), redis.url()),
        ("HOLD_RECORD_RETENTION_SECONDS".to_owned(), retention),
    ];
    // The nodes' limits as shipped: the abuse meets the defences it would meet.
    let env = with_default_limits(env);
    let nodes = [
        Server::start(&p.server_bin, &env).await?,
        Server::start(&p.server_bin, &env).await?,
    ];
    let bases: Vec<String> = nodes.iter().map(|n| format!("http://{}", n.addr)).collect();
    let mut conn = redis.connect().await?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let shows = all_shows(&http, &bases[0]).await?;
    // The sale: the last show of the week (on sale whatever the hour).
    let sale = shows.last().cloned().ok_or("the catalog has no show")?;
    println!(
        "sg-load abuse: two nodes on a Redis of its own, {} accounts, honest shoppers at {}/s, {} s phases, tombstones kept {} s",
        p.accounts, p.honest_rate, p.seconds, p.retention_seconds
    );
    // Every show's state built, the nodes settled.
    for show in &shows {
        let _ = http
            .get(format!("{}/api/v1/shows/{show}/seatmap", bases[0]))
            .send()
            .await;
    }
    tokio::time::sleep(Duration::from_secs(6)).await;

    let idle_secs = 5.0;
    let idle = measure(&mut conn, "idle", || {
        tokio::time::sleep(Duration::from_secs_f64(idle_secs))
    })
    .await?;
    let junk_count = 600;
    let junk_started = Instant::now();
    let junk = measure(&mut conn, "junk ids", || async {
        junk_requests(&http, &bases, &sale, junk_count).await;
        // The same length as the idle window, so the two compare.
        let left = Duration::from_secs_f64(idle_secs).saturating_sub(junk_started.elapsed());
        tokio::time::sleep(left).await;
    })
    .await?;

    let tokens = Tokens::new(DEV_JWT_SECRET);
    let tally: Tally = Arc::default();
    let alone = honest(&bases, &sale, &tokens, p.honest_rate, p.seconds, &tally).await;
    let honest_alone = measure(&mut conn, "honest alone", || async {
        tokio::time::sleep(Duration::from_secs(p.seconds)).await
    })
    .await?;
    let alone = alone.await.map_err(|e| e.to_string())?;

    let stop = Arc::new(AtomicBool::new(false));
    let mut abusers = Vec::new();
    for a in 0..p.accounts {
        let token = tokens
            .issue(&format!("abuser-{a:02}"), false, 3600)
            .map_err(|e| e.to_string())?;
        abusers.push(tokio::spawn(hold_loop(
            http.clone(),
            bases.clone(),
            sale.clone(),
            a,
            token,
            stop.clone(),
            tally.clone(),
        )));
    }
    abusers.push(tokio::spawn(probe_loop(
        bases.clone(),
        shows.clone(),
        stop.clone(),
        tally.clone(),
    )));
    for node in &nodes {
        abusers.push(tokio::spawn(handshake_loop(
            node.addr,
            sale.clone(),
            stop.clone(),
            tally.clone(),
        )));
    }
    let beside = honest(&bases, &sale, &tokens, p.honest_rate, p.seconds, &tally).await;
    let abuse = measure(&mut conn, "abuse + honest", || async {
        tokio::time::sleep(Duration::from_secs(p.seconds)).await
    })
    .await?;
    stop.store(true, Ordering::Relaxed);
    for a in abusers {
        let _ = a.await;
    }
    let beside = beside.await.map_err(|e| e.to_string())?;

    println!();
    println!("| phase | seconds | Redis commands/s | Redis CPU (share of a core) | used_memory growth |");
    println!("|---|---|---|---|---|");
    for ph in [&idle, &junk, &honest_alone, &abuse] {
        println!(
            "| {} | {:.1} | {:.0} | {:.1} % | {:+.2} MB |",
            ph.name,
            ph.secs,
            ph.commands_per_sec(),
            ph.cpu_share() * 100.0,
            ph.memory_growth() as f64 / 1e6
        );
    }
    let extra = (junk.commands_per_sec() - idle.commands_per_sec()) * junk.secs;
    println!();
    println!(
        "junk ids: {junk_count} requests (unknown shows, malformed and too old hold ids) cost Redis {extra:.0} commands over the idle window's"
    );
    println!(
        "honest holds: alone {} (p99 {:.1} ms), beside the abuse {} (p99 {:.1} ms): {:.2}x",
        alone.len(),
        alone.value_at_quantile(0.99) as f64 / 1000.0,
        beside.len(),
        beside.value_at_quantile(0.99) as f64 / 1000.0,
        beside.value_at_quantile(0.99) as f64 / alone.value_at_quantile(0.99).max(1) as f64
    );
    println!("answers by caller and status:");
    for ((who, status), n) in tally.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        println!("  {who:<10} {status}: {n}");
    }
    let growth = abuse.memory_growth();
    println!(
        "abuse: Redis used_memory grew {:.2} MB in {} s",
        growth as f64 / 1e6,
        p.seconds
    );
    if p.watch_fallback {
        watch_fallback(&mut conn, abuse.before.used_memory, growth, p.retention_seconds).await?;
    }
    drop(nodes);
    Ok(())
}

/// The nodes' rate limits at their shipped defaults (`Server::start` turns
/// them off for the other scenarios).
fn with_default_limits(mut env: Vec<(String, String)>) -> Vec<(String, String)> {
    let d = |v: u32| v.to_string();
    env.push((
        "RATE_LIMIT_USER_PER_SEC".into(),
        d(showgate::config::DEFAULT_RATE_LIMIT_USER_PER_SEC),
    ));
    env.push((
        "RATE_LIMIT_IP_PER_SEC".into(),
        d(showgate::config::DEFAULT_RATE_LIMIT_IP_PER_SEC),
    ));
    env.push(("WS_MAX_PER_IP".into(), "50".into()));
    env
}

async fn measure<F, Fut>(
    conn: &mut redis::aio::MultiplexedConnection,
    name: &'static str,
    phase: F,
) -> Result<PhaseCost, String>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let before = figures(conn).await?;
    let started = Instant::now();
    phase().await;
    let secs = started.elapsed().as_secs_f64();
    let after = figures(conn).await?;
    Ok(PhaseCost {
        name,
        secs,
        before,
        after,
    })
}

/// `used_memory`, every command so far (less these INFO calls) and Redis's CPU.
async fn figures(conn: &mut redis::aio::MultiplexedConnection) -> Result<RedisFigures, String> {
    let info: String = redis::cmd("INFO")
        .arg("everything")
        .query_async(conn)
        .await
        .map_err(|e| e.to_string())?;
    let field = |name: &str| -> Option<&str> {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    let commands: u64 = info
        .lines()
        .filter(|l| l.starts_with("cmdstat_") && !l.starts_with("cmdstat_info:"))
        .filter_map(|l| l.split("calls=").nth(1)?.split(',').next()?.parse::<u64>().ok())
        .sum();
    let cpu = |k| field(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    Ok(RedisFigures {
        used_memory: field("used_memory").and_then(|v| v.parse().ok()).unwrap_or(0),
        commands,
        cpu_secs: cpu("used_cpu_sys") + cpu("used_cpu_user"),
    })
}

async fn all_shows(http: &reqwest::Client, base: &str) -> Result<Vec<String>, String> {
    let movies: Value = get_json(http, &format!("{base}/api/v1/movies")).await?;
    let mut shows = Vec::new();
    for m in movies["movies"].as_array().ok_or("no movies")? {
        let id = m["id"].as_str().ok_or("a movie without an id")?;
        let list: Value = get_json(http, &format!("{base}/api/v1/movies/{id}/shows")).await?;
        for s in list["shows"].as_array().ok_or("no shows")? {
            shows.push(s["id"].as_str().ok_or("a show without an id")?.to_owned());
        }
    }
    Ok(shows)
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    http.get(url)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())
}

/// Requests naming what does not exist: each must be answered without Redis.
async fn junk_requests(http: &reqwest::Client, bases: &[String], sale: &str, n: usize) {
    let tokens = Tokens::new(DEV_JWT_SECRET);
    let token = tokens.issue("junk", false, 3600).unwrap_or_default();
    let old = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, 1_600_000_000, 0)).simple();
    let paths = [
        "/api/v1/shows/no-such-show/seatmap".to_owned(),
        format!("/api/v1/holds/no-such-show.{}", uuid::Uuid::now_v7().simple()),
        format!("/api/v1/holds/{sale}.not-a-uuid"),
        format!("/api/v1/holds/{sale}.{old}"),
        "/api/v1/shows/no-such-show/waitlist/me".to_owned(),
    ];
    for i in 0..n {
        let url = format!("{}{}", bases[i % bases.len()], paths[i % paths.len()]);
        let req = if i % 2 == 0 { http.get(url) } else { http.delete(url) };
        let _ = req.bearer_auth(&token).send().await;
    }
}

/// Honest shoppers: each from its own loopback address, one hold at a time,
/// together at `rate` a second, on rows the abusers do not touch; answers the
/// latency of every hold (µs).
async fn honest(
    bases: &[String],
    sale: &str,
    tokens: &Tokens,
    rate: f64,
    seconds: u64,
    tally: &Tally,
) -> tokio::task::JoinHandle<Histogram<u64>> {
    let shoppers = 20usize;
    let mut clients = Vec::new();
    for i in 0..shoppers {
        let addr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i as u8));
        let http = reqwest::Client::builder()
            .local_address(addr)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let token = tokens.issue(&format!("honest-{i:02}"), false, 3600).unwrap_or_default();
        clients.push((http, token));
    }
    let (bases, sale, tally) = (bases.to_vec(), sale.to_owned(), tally.clone());
    tokio::spawn(async move {
        let mut hist = Histogram::<u64>::new(3).expect("histogram");
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.1)));
        let end = Instant::now() + Duration::from_secs(seconds);
        let mut i = 0usize;
        let mut inflight = futures::stream::FuturesUnordered::new();
        while Instant::now() < end {
            tokio::select! {
                _ = tick.tick() => {
                    let shopper = i % shoppers;
                    let (http, token) = clients[shopper].clone();
                    let url = format!("{}/api/v1/holds", bases[i % bases.len()]);
                    // A seat of the shopper's own in rows H and I, away from
                    // the abusers' rows (every demo hall has 10 to 25 rows
                    // of 12 or more): each hold replaces the shopper's last.
                    let seat = format!("{}{}", if shopper < 10 { 'H' } else { 'I' }, shopper % 10 + 1);
                    let body = json!({"showId": sale, "seatIds": [seat]});
                    inflight.push(async move {
                        let t = Instant::now();
                        let status = http.post(url).bearer_auth(token).json(&body).send().await.map(|r| r.status().as_u16()).unwrap_or(0);
                        (status, t.elapsed())
                    });
                    i += 1;
                }
                Some((status, took)) = inflight.next(), if !inflight.is_empty() => {
                    count(&tally, "honest", status);
                    let _ = hist.record(took.as_micros() as u64);
                }
            }
        }
        while let Some((status, took)) = inflight.next().await {
            count(&tally, "honest", status);
            let _ = hist.record(took.as_micros() as u64);
        }
        hist
    })
}

/// One abusing account: a one-seat hold that replaces its last (six seats
/// of its own, so every hold it is let make succeeds and leaves a record),
/// on both nodes in turn, as fast as the answers come.
async fn hold_loop(
    http: reqwest::Client,
    bases: Vec<String>,
    sale: String,
    account: usize,
    token: String,
    stop: Arc<AtomicBool>,
    tally: Tally,
) {
    let row = ['B', 'C', 'D', 'F', 'G'][account % 5];
    let first = (account / 5 % 2) * 6 + 1;
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let seat = format!("{row}{}", first + i % 6);
        let res = http
            .post(format!("{}/api/v1/holds", bases[i % bases.len()]))
            .bearer_auth(&token)
            .json(&json!({"showId": sale, "seatIds": [seat]}))
            .send()
            .await;
        i += 1;
        match res {
            Ok(r) => {
                count(&tally, "abuser", r.status().as_u16());
                if r.status() == 429 {
                    // Spin a little anyway: an attacker does not wait long.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Err(_) => count(&tally, "abuser", 0),
        }
    }
}

/// Anonymous clients reading every show's seat map on every node, round
/// after round, from one address.
async fn probe_loop(bases: Vec<String>, shows: Vec<String>, stop: Arc<AtomicBool>, tally: Tally) {
    let http = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 100)))
        .build()
        .unwrap_or_default();
    while !stop.load(Ordering::Relaxed) {
        for base in &bases {
            for show in &shows {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let status = http
                    .get(format!("{base}/api/v1/shows/{show}/seatmap"))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                count(&tally, "probe", status);
            }
        }
    }
}

/// Seat-socket handshakes in a loop from one address: each reads its
/// snapshot and closes.
async fn handshake_loop(addr: std::net::SocketAddr, sale: String, stop: Arc<AtomicBool>, tally: Tally) {
    use tokio_tungstenite::tungstenite::Error as WsError;
    let url = format!("ws://{addr}/api/v1/shows/{sale}/seats/ws");
    while !stop.load(Ordering::Relaxed) {
        // From 127.0.0.101: the handshake's client address.
        let socket = tokio::net::TcpSocket::new_v4().and_then(|s| {
            s.bind((Ipv4Addr::new(127, 0, 0, 101), 0).into())?;
            Ok(s)
        });
        let Ok(socket) = socket else { return };
        let Ok(tcp) = socket.connect(addr).await else {
            count(&tally, "handshake", 0);
            continue;
        };
        match tokio_tungstenite::client_async(url.as_str(), tcp).await {
            Ok((mut ws, _)) => {
                count(&tally, "handshake", 101);
                let _ = ws.next().await;
                let _ = ws.close(None).await;
            }
            Err(WsError::Http(res)) => {
                count(&tally, "handshake", res.status().as_u16());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(_) => count(&tally, "handshake", 0),
        }
    }
}

/// Waits for Redis to give the abuse's memory back: within twice the
/// retention of its end (tombstones go a generation at a time).
async fn watch_fallback(
    conn: &mut redis::aio::MultiplexedConnection,
    baseline: i64,
    growth: i64,
    retention_seconds: u64,
) -> Result<(), String> {
    let started = Instant::now();
    let limit = Duration::from_secs(2 * retention_seconds + 30);
    loop {
        let now = figures(conn).await?.used_memory;
        let left = now - baseline;
        if left <= growth / 10 {
            println!(
                "after: used_memory back within 10 % of the growth ({:+.2} MB over the baseline) {:.0} s after the abuse ended",
                left as f64 / 1e6,
                started.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if started.elapsed() > limit {
            return Err(format!(
                "used_memory still {:+.2} MB over the baseline {} s after the abuse",
                left as f64 / 1e6,
                limit.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// A Redis of the run's own (no persistence), so its figures are the run's.
struct OwnRedis {
    port: u16,
    child: std::process::Child,
    dir: PathBuf,
}

impl OwnRedis {
    fn start() -> Result<Self, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let dir = std::env::temp_dir().join(format!("sg-load-abuse-{port}"));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}"))?;
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(Self { port, child, dir });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("redis-server did not listen".into())
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn connect(&self) -> Result<redis::aio::MultiplexedConnection, String> {
        redis::Client::open(self.url())
            .map_err(|e| e.to_string())?
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
