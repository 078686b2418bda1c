//! `sg-load`: load tests and benchmarks for showgate. Every run targets
//! loopback only, is bounded in users and time, and stops by itself.

mod abuse;
mod bench;
mod bots;
mod calibration;
mod chaos;
mod churn;
mod cost;
mod flash;
mod journey;
mod outlook;
mod peer;
mod rawhttp;
mod server;
mod stampede;
mod swarm;
mod wire;
// The test suite's real-process helpers (a TCP proxy that can cut, silence
// and pause, a Redis and a Cluster of one's own), shared with the soak.
#[allow(dead_code)]
#[path = "../../tests/common/own_cluster.rs"]
mod own_cluster;
#[allow(dead_code)]
#[path = "../../tests/common/own_redis.rs"]
mod own_redis;
#[allow(dead_code)]
#[path = "../../tests/common/proxy.rs"]
mod proxy;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "sg-load", about = "showgate load tests and benchmarks (loopback only)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Benchmarks against raw Redis in the same run: holds, joins, fan-out, memory per socket.
    Bench {
        /// Which parts: holds, joins, fanout, memory (comma-separated), or all.
        #[arg(long, default_value = "all", value_delimiter = ',')]
        parts: Vec<String>,
        /// Fan-out runs: sockets, or sockets/processes (`20000/2`).
        #[arg(long, default_value = "10000/1,20000/2,40000/3", value_delimiter = ',')]
        fanout: Vec<String>,
        /// Also measure the Node.js `ws` + `ioredis` peer (`loadtest/peers`) in the same run.
        #[arg(long)]
        peer: bool,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
        redis_url: String,
        #[arg(long, default_value = "target/release/showgate")]
        server_bin: PathBuf,
    },
    /// Churn: holds at a paced rate on one show while N seat-map sockets watch.
    Churn {
        #[arg(long, default_value_t = 10_000)]
        sockets: usize,
        /// Client processes for the sockets (each holds at most ~19,000).
        #[arg(long, default_value_t = 1)]
        processes: usize,
        /// Holds offered per second.
        #[arg(long, default_value_t = 1_000.0)]
        rate: f64,
        #[arg(long, default_value_t = 15)]
        seconds: u64,
        /// Shoppers re-holding one random seat each time.
        #[arg(long, default_value_t = 200)]
        shoppers: usize,
        /// Redis for the server; unset: the memory engine.
        #[arg(long)]
        redis_url: Option<String>,
        #[arg(long, default_value = "target/release/showgate")]
        server_bin: PathBuf,
    },
    /// Queue-socket stampede: N shoppers open their waiting-room sockets at once over several
    /// server and client processes; time to each first position, and exact places after.
    Stampede {
        #[arg(long, default_value_t = 20_000)]
        sockets: usize,
        /// Server processes on the one Redis.
        #[arg(long, default_value_t = 2)]
        nodes: usize,
        /// Client processes (each holds at most ~19,000 sockets).
        #[arg(long, default_value_t = 2)]
        processes: usize,
        #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
        redis_url: String,
        #[arg(long, default_value = "target/release/showgate")]
        server_bin: PathBuf,
    },
    /// (internal) A client process of the stampede.
    #[command(hide = true)]
    StampedeWorker {
        #[arg(long, value_delimiter = ',')]
        addrs: Vec<std::net::SocketAddr>,
        #[arg(long)]
        show: String,
        #[arg(long)]
        from: usize,
        #[arg(long)]
        count: usize,
    },
    /// (internal) A watcher process of the churn scenario.
    #[command(hide = true)]
    ChurnWorker {
        #[arg(long)]
        addr: std::net::SocketAddr,
        #[arg(long)]
        show: String,
        #[arg(long)]
        sockets: usize,
    },
    /// (internal) A client process of the fan-out benchmark.
    #[command(hide = true)]
    WsWorker {
        #[arg(long)]
        addr: std::net::SocketAddr,
        #[arg(long)]
        show: String,
        #[arg(long)]
        sockets: usize,
        #[arg(long)]
        worker: usize,
    },
    /// The HTTP journey as Goose scenarios (browse; join, poll, hold, order, pay) against a server.
    Journey {
        /// Base URL of a running showgate (loopback only); unset starts one (memory engine).
        #[arg(long)]
        host: Option<String>,
        #[arg(long, default_value_t = 50)]
        users: usize,
        #[arg(long, default_value_t = 25)]
        hatch_rate: usize,
        /// Seconds to run (the run stops by itself).
        #[arg(long, default_value_t = 20)]
        seconds: usize,
        /// Gate the flash-sale show with a waiting room at this rate first.
        #[arg(long)]
        gate_rate: Option<f64>,
        #[arg(long, default_value = "target/release/showgate")]
        server_bin: PathBuf,
    },
    /// The flash sale: N join a gated show, M wait on sockets, admission at R/s, the admitted buy.
    FlashSale {
        #[arg(long, default_value_t = 10_000)]
        shoppers: usize,
        #[arg(long, default_value_t = 2_000)]
        sockets: usize,
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// Server processes on one Redis.
        #[arg(long, default_value_t = 2)]
        nodes: usize,
        /// The admission phase stops after this many seconds at most.
        #[arg(long, default_value_t = 60)]
        max_seconds: u64,
        /// Joins in flight at once.
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
        #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
        redis_url: String,
        /// An existing, empty Postgres database for the servers (double bookings are checked there).
        #[arg(long, env = "DATABASE_URL")]
        database_url: Option<String>,
        #[arg(long, default_value = "target/release/showgate")]
        server_bin: PathBuf,
        /// Shoppers ask for "best available: 2" instead of clicking two seats.
        #[arg(long)]
        best: bool,
        /// Instead: the outlook's calibration. Sales of one hall with shoppers drawn from stated
        /// distributions; each buyer's last outlook before admission against whether they got a
        /// seat; fails unless the calibration targets hold (the other options but --redis-url,
        /// --server-bin and --max-seconds are ignored).
        #[arg(long)]
        outlook: bool,
        /// With --outlook: the sales to run.
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "undersubscribed,balanced,oversubscribed"
        )]
        sales: Vec<outlook::Sale>,
    },
    /// Bots vs the queue: on a gated sale whose seats come back, admitted shoppers wait on the
    /// waiting list while bots that never queued try every door; fails unless bots get no seat
    /// and every returned pair goes to the first waiter in line.
    BotsVsQueue {
        /// Admitted shoppers: half hold a pair each, half wait for one.
        #[arg(long, default_value_t = 40)]
        shoppers: usize,
        #[arg(long, default_value_t = 20)]
        bots: usize,
        #[arg(long, value_enum, default_value = "redis")]
        engine: bots::Engine,
        #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
        redis_url: String,
        #[arg(
            long,
            env = "REDIS_CLUSTER_NODES",
            default_value = "redis://127.0.0.1:7101,redis://127.0.0.1:7102,redis://127.0.0.1:7103"
        )]
        cluster_nodes: String,
        #[arg(long, default_value = "target/release/showgate")]
        server_bin: PathBuf,
    },
    /// Abuse: ten accounts holding as fast as they are let on two nodes, anonymous probes of
    /// every show on every node and a handshake loop, beside honest shoppers; reports what it
    /// costs Redis (memory, commands, CPU) and the honest shoppers' hold p99 alone and beside it.
    Abuse(abuse::Params),
    /// Chaos soak: a flash sale on 2-3 gateways, Redis (or a Cluster) and Postgres while faults
    /// are injected in turn (Redis killed, restarted empty, failed over to a lagging replica,
    /// connections silenced, Postgres paused, a gateway SIGKILLed or drained); checks that
    /// nothing is sold twice or lost and every seat map ends equal to Postgres.
    Chaos(chaos::Params),
    /// Server memory per idle seat-map socket: RSS before and after opening N sockets.
    WsIdle {
        /// Sockets to open (one process holds at most ~19,900).
        #[arg(long, default_value_t = 10_000)]
        sockets: usize,
        /// The showgate binary to start (build it with `cargo build --release`).
        #[arg(long, default_value = "target/release/showgate")]
        server_bin: PathBuf,
        /// Redis for the server; unset runs it on the memory engine.
        #[arg(long, env = "REDIS_URL")]
        redis_url: Option<String>,
        /// Screen of the watched show: `pvr-forum-1` (140 seats, ~5 KB snapshot)
        /// or `inox-imax` (1,200 seats, ~40 KB snapshot).
        #[arg(long, default_value = "pvr-forum-1")]
        screen: String,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench {
            parts,
            fanout,
            peer,
            seconds,
            connections,
            redis_url,
            server_bin,
        } => {
            bench_cmd(BenchArgs {
                parts,
                fanout,
                peer,
                seconds: seconds.clamp(1, 600),
                connections: connections.clamp(1, 2048),
                redis_url,
                server_bin,
            })
            .await
        }
        Command::Churn {
            sockets,
            processes,
            rate,
            seconds,
            shoppers,
            redis_url,
            server_bin,
        } => match redis_url.as_deref().map(loopback).transpose() {
            Err(e) => Err(e),
            Ok(redis_url) => {
                churn::run(churn::Params {
                    sockets: sockets.min(200_000),
                    processes: processes.clamp(1, 16),
                    rate: rate.clamp(1.0, 100_000.0),
                    seconds: seconds.clamp(1, 600),
                    shoppers: shoppers.clamp(1, 100_000),
                    redis_url,
                    server_bin,
                })
                .await
            }
        },
        Command::Stampede {
            sockets,
            nodes,
            processes,
            redis_url,
            server_bin,
        } => match loopback(&redis_url) {
            Err(e) => Err(e),
            Ok(redis_url) => {
                stampede::run(stampede::Params {
                    sockets: sockets.clamp(1, 60_000),
                    nodes: nodes.clamp(1, 4),
                    processes: processes.clamp(1, 8),
                    redis_url,
                    server_bin,
                })
                .await
            }
        },
        Command::StampedeWorker {
            addrs,
            show,
            from,
            count,
        } => {
            if addrs.iter().any(|a| !a.ip().is_loopback()) {
                Err("loopback only".into())
            } else {
                stampede::worker(addrs, &show, from, count.min(19_000)).await
            }
        }
        Command::ChurnWorker { addr, show, sockets } => {
            if !addr.ip().is_loopback() {
                Err("loopback only".into())
            } else {
                churn::worker(addr, &show, sockets.min(19_000)).await
            }
        }
        Command::WsWorker {
            addr,
            show,
            sockets,
            worker: _,
        } => {
            if !addr.ip().is_loopback() {
                Err("loopback only".into())
            } else {
                bench::worker(addr, &show, sockets.min(19_000)).await
            }
        }
        Command::Journey {
            host,
            users,
            hatch_rate,
            seconds,
            gate_rate,
            server_bin,
        } => {
            journey_cmd(
                host,
                users.min(10_000),
                hatch_rate,
                seconds.min(3600),
                gate_rate,
                server_bin,
            )
            .await
        }
        Command::FlashSale {
            max_seconds,
            redis_url,
            server_bin,
            outlook: true,
            sales,
            ..
        } => match loopback(&redis_url) {
            Err(e) => Err(e),
            Ok(redis_url) => {
                outlook::run(outlook::Params {
                    redis_url,
                    server_bin,
                    sales,
                    max_seconds: max_seconds.clamp(30, 1800),
                })
                .await
            }
        },
        Command::FlashSale {
            shoppers,
            sockets,
            rate,
            nodes,
            max_seconds,
            concurrency,
            redis_url,
            database_url,
            server_bin,
            best,
            ..
        } => {
            if shoppers > 1_000_000 || sockets > shoppers || sockets > 19_000 * nodes.max(1) {
                Err("at most 1,000,000 shoppers, sockets ≤ shoppers, and ≤ 19,000 sockets per node".into())
            } else {
                match loopback(&redis_url) {
                    Err(e) => Err(e),
                    Ok(redis_url) => {
                        flash::run(flash::Params {
                            shoppers,
                            sockets,
                            rate,
                            nodes: nodes.clamp(1, 8),
                            max_seconds: max_seconds.min(1800),
                            concurrency: concurrency.clamp(1, 4096),
                            redis_url,
                            database_url,
                            server_bin,
                            best,
                        })
                        .await
                    }
                }
            }
        }
        Command::BotsVsQueue {
            shoppers,
            bots,
            engine,
            redis_url,
            cluster_nodes,
            server_bin,
        } => {
            let nodes: Result<Vec<String>, String> = cluster_nodes.split(',').map(loopback).collect();
            match (shoppers, loopback(&redis_url), nodes) {
                (s, _, _) if !(2..=2_000).contains(&s) || bots > 1_000 => {
                    Err("bots-vs-queue takes 2 to 2,000 shoppers and at most 1,000 bots".into())
                }
                (_, Err(e), _) | (_, _, Err(e)) => Err(e),
                (_, Ok(redis_url), Ok(nodes)) => {
                    bots::run(bots::Params {
                        shoppers,
                        bots,
                        engine,
                        redis_url,
                        cluster_nodes: nodes.join(","),
                        server_bin,
                    })
                    .await
                }
            }
        }
        Command::Abuse(p) => {
            if !(1..=3_600).contains(&p.seconds)
                || !(1..=10).contains(&p.accounts)
                || !(0.1..=500.0).contains(&p.honest_rate)
            {
                Err("abuse takes 1 to 3,600 seconds, 1 to 10 accounts and 0.1 to 500 honest holds a second".into())
            } else {
                abuse::run(p).await
            }
        }
        Command::Chaos(p) => chaos::run(p).await,
        Command::WsIdle {
            sockets,
            server_bin,
            redis_url,
            screen,
        } => ws_idle(sockets, server_bin, redis_url, &screen).await.map(|_| ()),
    };
    if let Err(e) = result {
        eprintln!("sg-load: {e}");
        std::process::exit(1);
    }
}

struct BenchArgs {
    parts: Vec<String>,
    fanout: Vec<String>,
    peer: bool,
    seconds: u64,
    connections: usize,
    redis_url: String,
    server_bin: PathBuf,
}

/// `20000/2` → (20000, 2); `20000` → (20000, as many processes as it needs).
fn fanout_spec(spec: &str) -> Result<(usize, usize), String> {
    let bad = || format!("--fanout takes sockets or sockets/processes, not {spec:?}");
    let (n, p) = spec.split_once('/').unwrap_or((spec, "0"));
    let n: usize = n.trim().parse().map_err(|_| bad())?;
    let p: usize = p.trim().parse().map_err(|_| bad())?;
    Ok((
        n.min(200_000),
        if p == 0 { n.div_ceil(17_000).max(1) } else { p.min(16) },
    ))
}

async fn bench_cmd(a: BenchArgs) -> Result<(), String> {
    let ctx = bench::Ctx {
        redis_url: loopback(&a.redis_url)?,
        server_bin: a.server_bin.clone(),
        seconds: a.seconds,
        connections: a.connections,
    };
    let all = a.parts.iter().any(|p| p == "all");
    let want = |p: &str| all || a.parts.iter().any(|x| x == p);
    println!(
        "sg-load bench on {} cores; server {}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        a.server_bin.display()
    );
    let modules = if a.peer && (want("fanout") || want("memory")) {
        Some(peer::install().await?)
    } else {
        None
    };
    if want("holds") {
        bench::holds(&ctx).await?;
    }
    if want("joins") {
        bench::joins(&ctx).await?;
    }
    if want("fanout") {
        for spec in &a.fanout {
            let (n, p) = fanout_spec(spec)?;
            let ours = bench::fanout(&ctx, n, p, bench::Target::Showgate, None).await?;
            if let Some(m) = &modules {
                let theirs = bench::fanout(&ctx, n, p, bench::Target::Node, Some(m)).await?;
                println!(
                    "  {n}/{p}: showgate p99 {:.1} ms vs Node.js {:.1} ms = {:.2}x",
                    ours.p99,
                    theirs.p99,
                    ours.p99 / theirs.p99.max(0.001)
                );
            }
        }
    }
    if want("memory") {
        let ours = ws_idle(10_000, a.server_bin, Some(ctx.redis_url.clone()), "pvr-forum-1").await?;
        if let Some(m) = &modules {
            let theirs = peer_idle(10_000, m, &ctx.redis_url).await?;
            println!(
                "  memory per idle socket: showgate {ours:.0} bytes vs Node.js {theirs:.0} bytes = {:.2}x",
                ours / theirs.max(1.0)
            );
        }
    }
    Ok(())
}

/// Memory per idle socket of the Node.js peer, measured like `ws_idle`.
async fn peer_idle(sockets: usize, modules: &std::path::Path, redis_url: &str) -> Result<f64, String> {
    let peer = peer::Peer::start(modules, redis_url, &format!("sgidle:{}:events", std::process::id())).await?;
    let tally = Arc::new(swarm::Tally::default());
    let noop: swarm::OnMessage = Arc::new(|_, _, _| {});
    let path = "/api/v1/shows/peer/seats/ws";
    let hold = Duration::from_secs(120);
    swarm::open(peer.addr, path, 200, tally.clone(), noop.clone(), hold).await;
    swarm::wait_until(Duration::from_secs(10), || {
        tally.messages.load(Ordering::Relaxed) >= 200
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = peer.rss();
    swarm::open(peer.addr, path, sockets, tally.clone(), noop, hold).await;
    swarm::wait_until(Duration::from_secs(60), || {
        tally.messages.load(Ordering::Relaxed) >= (sockets + 200) as u64
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = peer.rss();
    let connected = tally.connected.load(Ordering::Relaxed).saturating_sub(200).max(1);
    let per = after.saturating_sub(before) as f64 / connected as f64;
    println!(
        "ws-idle (Node.js ws peer): {connected} idle sockets; RSS before {:.1} MiB, after {:.1} MiB; {per:.0} bytes per socket",
        before as f64 / 1048576.0,
        after as f64 / 1048576.0
    );
    Ok(per)
}

/// Load tests target this machine only.
fn loopback(url: &str) -> Result<String, String> {
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split(['/', ':'])
        .next()
        .unwrap_or_default();
    if host == "localhost" || host.starts_with("127.") {
        Ok(url.to_owned())
    } else {
        Err(format!("{url}: load tests run against loopback addresses only"))
    }
}

async fn journey_cmd(
    host: Option<String>,
    users: usize,
    hatch_rate: usize,
    seconds: usize,
    gate_rate: Option<f64>,
    bin: PathBuf,
) -> Result<(), String> {
    let _server;
    let host = match host {
        Some(h) => loopback(&h)?,
        None => {
            _server = server::Server::start(&bin, &[]).await?;
            format!("http://{}", _server.addr)
        }
    };
    let shows = get_json(&format!("{host}/api/v1/movies/dune-3/shows")).await?;
    let show = shows["shows"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["screenId"] == "inox-imax" && on_sale(s)))
        .and_then(|s| s["id"].as_str())
        .ok_or("no flash-sale show")?
        .to_owned();
    let map = get_json(&format!("{host}/api/v1/shows/{show}/seatmap")).await?;
    let seats: Vec<String> = map["seats"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter(|s| s["status"] == "AVAILABLE")
                .filter_map(|s| s["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if let Some(rate) = gate_rate {
        let admin = showgate::auth::Tokens::new(showgate::config::DEV_JWT_SECRET)
            .issue("loadtest-ops", true, 3600)
            .map_err(|e| e.to_string())?;
        let res = reqwest::Client::new()
            .put(format!("{host}/api/v1/admin/waitrooms/{show}"))
            .bearer_auth(admin)
            .json(&serde_json::json!({"admitRatePerSecond": rate, "maxActive": 1_000_000}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !res.status().is_success() {
            return Err(format!("gating the show: {}", res.status()));
        }
    }
    let target = journey::Target {
        show,
        movie: "dune-3".into(),
        gated: gate_rate.is_some(),
        seats: Arc::new(seats),
        next_user: Arc::default(),
        run: format!("j{}", std::process::id()),
    };
    let metrics = journey::run(&host, target, users, hatch_rate, seconds).await?;
    println!("{metrics}");
    println!("journey: {users} users for {seconds} s against {host}");
    Ok(())
}

async fn ws_idle(sockets: usize, bin: PathBuf, redis_url: Option<String>, screen: &str) -> Result<f64, String> {
    if sockets > 19_000 {
        return Err("one process holds at most ~19,900 sockets; run several processes for more".into());
    }
    let mut envs = vec![("WS_PING_SECONDS".to_owned(), "600".to_owned())];
    if let Some(url) = &redis_url {
        envs.push(("REDIS_URL".into(), url.clone()));
        envs.push(("REDIS_KEY_PREFIX".into(), format!("sgload:{}:", std::process::id())));
    }
    let server = server::Server::start(&bin, &envs).await?;
    let http = format!("http://{}", server.addr);
    let show = show_on(&http, screen).await?;
    let path = format!("/api/v1/shows/{show}/seats/ws");
    let tally = Arc::new(swarm::Tally::default());
    let noop: swarm::OnMessage = Arc::new(|_, _, _| {});
    let hold = Duration::from_secs(120);

    // Warm up: the feed, the allocator and the runtime's first sockets.
    swarm::open(server.addr, &path, 200, tally.clone(), noop.clone(), hold).await;
    swarm::wait_until(Duration::from_secs(10), || {
        tally.messages.load(Ordering::Relaxed) >= 200
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = server.rss();

    swarm::open(server.addr, &path, sockets, tally.clone(), noop, hold).await;
    let want = (sockets + 200) as u64;
    let all = swarm::wait_until(Duration::from_secs(60), || {
        tally.messages.load(Ordering::Relaxed) >= want
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = server.rss();
    let connected = tally.connected.load(Ordering::Relaxed) - 200;
    println!(
        "ws-idle: {connected} idle seat-map sockets on {show} (each got its snapshot: {all}), engine {}",
        if redis_url.is_some() { "redis" } else { "memory" }
    );
    println!(
        "  server RSS before {:.1} MiB, after {:.1} MiB",
        before as f64 / 1048576.0,
        after as f64 / 1048576.0
    );
    println!(
        "  server memory per idle socket: {:.0} bytes ({:.2} KiB)",
        (after.saturating_sub(before)) as f64 / connected.max(1) as f64,
        (after.saturating_sub(before)) as f64 / connected.max(1) as f64 / 1024.0
    );
    println!("  failed sockets: {}", tally.failed.load(Ordering::Relaxed));
    Ok((after.saturating_sub(before)) as f64 / connected.max(1) as f64)
}

/// A show of the demo catalog on `screen`.
async fn show_on(http: &str, screen: &str) -> Result<String, String> {
    let body = get_json(&format!("{http}/api/v1/movies/dune-3/shows")).await?;
    body["shows"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["screenId"] == screen && on_sale(s)))
        .and_then(|s| s["id"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| "no demo show found".into())
}

/// The first on-sale show of Dune on the 1,200-seat IMAX screen (the demo
/// catalog's flash-sale show) of the server at `base`.
pub async fn flash_sale_show(base: &str) -> Result<String, String> {
    let shows: serde_json::Value = reqwest::get(format!("{base}/api/v1/movies/dune-3/shows"))
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    shows["shows"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["screenId"] == "inox-imax" && on_sale(s)))
        .and_then(|s| s["id"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| "no flash-sale show".to_owned())
}

/// Whether a show of the catalog starts more than an hour from now (still on sale).
pub fn on_sale(show: &serde_json::Value) -> bool {
    show["startTime"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| t > chrono::Utc::now() + chrono::TimeDelta::hours(1))
}

/// A minimal HTTP/1.1 GET over one TCP connection (loopback only).
async fn get_json(url: &str) -> Result<serde_json::Value, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").ok_or("http only")?;
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut s = tokio::net::TcpStream::connect(host).await.map_err(|e| e.to_string())?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).ok_or("no body")?;
    serde_json::from_str(body).map_err(|e| format!("{e}: {body:.200}"))
}
