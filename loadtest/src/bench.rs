//! Benchmarks measured in one run on one machine, against raw Redis as the
//! ceiling: holds against `redis-benchmark` running the same Lua script,
//! joins against raw ZADD, the time for one seat change to reach every
//! seat-map socket (several server and client processes, one Redis), and
//! memory per idle socket. Reports, not pass/fail tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::Rng;
use serde_json::{Value, json};
use showgate::auth::Tokens;
use showgate::config::DEV_JWT_SECRET;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::cost::{self, Meter};
use crate::flash::Step;
use crate::rawhttp;
use crate::server::Server;
use crate::swarm;

pub struct Ctx {
    pub redis_url: String,
    pub server_bin: PathBuf,
    pub seconds: u64,
    pub connections: usize,
}

fn redis_host_port(url: &str) -> (String, String) {
    let hp = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or("127.0.0.1:6379");
    let (h, p) = hp.rsplit_once(':').unwrap_or((hp, "6379"));
    (h.to_owned(), p.to_owned())
}

/// Runs redis-benchmark (`__rand_int__` in 0..keyspace) and answers
/// (requests/s, p50 ms, p99 ms).
async fn redis_benchmark(
    url: &str,
    clients: usize,
    requests: usize,
    keyspace: usize,
    args: &[&str],
) -> Result<(f64, f64, f64), String> {
    let (host, port) = redis_host_port(url);
    let out = tokio::process::Command::new("redis-benchmark")
        .args([
            "-h",
            &host,
            "-p",
            &port,
            "-c",
            &clients.to_string(),
            "-n",
            &requests.to_string(),
        ])
        .args(["-r", &keyspace.to_string(), "--csv"])
        .args(args)
        .output()
        .await
        .map_err(|e| format!("redis-benchmark: {e} (install redis-tools)"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().ok_or("redis-benchmark printed nothing")?;
    let cols: Vec<f64> = line
        .split("\",\"")
        .skip(1)
        .map(|c| c.trim_matches('"').parse().unwrap_or(0.0))
        .collect();
    match cols.as_slice() {
        [rps, _avg, _min, p50, _p95, p99, ..] => Ok((*rps, *p50, *p99)),
        _ => Err(format!("unexpected redis-benchmark output: {line}")),
    }
}

/// What one HTTP load measured.
struct Load {
    /// Answers (below 500) a second.
    rps: f64,
    /// Requests sent (answered or not), for costs per request.
    sent: u64,
    step: Arc<Step>,
    errors: u64,
    /// Share of the answers that were 409.
    conflict_share: f64,
}

/// Closed-loop (`rate` None: as fast as `connections` allow) or open-loop
/// (`rate` per second, latency from the scheduled send time) HTTP load.
async fn http_load<F>(addr: SocketAddr, connections: usize, seconds: u64, rate: Option<f64>, make: F) -> Load
where
    F: Fn(usize, u64) -> Vec<u8> + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let step = Arc::new(Step::new());
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let conflicts = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (make, step, done, errors, conflicts) = (
            make.clone(),
            step.clone(),
            done.clone(),
            errors.clone(),
            conflicts.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let period = rate.map(|r| Duration::from_secs_f64(connections as f64 / r));
            let mut next = Instant::now()
                + period
                    .map(|p| p.mul_f64(c as f64 / connections as f64))
                    .unwrap_or_default();
            let mut i = 0u64;
            let mut conn = rawhttp::Conn::new(addr);
            while Instant::now() < end {
                if period.is_some() {
                    tokio::time::sleep_until(next.into()).await;
                }
                let scheduled = if period.is_some() { next } else { Instant::now() };
                match conn.send(&make(c, i)).await {
                    Ok(status) if status < 500 => {
                        if status == 409 {
                            conflicts.fetch_add(1, Ordering::Relaxed);
                        }
                        step.record(scheduled.elapsed());
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                i += 1;
                if let Some(p) = period {
                    next += p;
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let secs = start.elapsed().as_secs_f64();
    let done = done.load(Ordering::Relaxed);
    Load {
        rps: done as f64 / secs,
        sent: done + errors.load(Ordering::Relaxed),
        step,
        errors: errors.load(Ordering::Relaxed),
        conflict_share: conflicts.load(Ordering::Relaxed) as f64 / done.max(1) as f64,
    }
}

/// The gateway's floor: `GET /healthz` (a bare route: no token, no
/// Redis) closed loop; its rate and CPU per request.
struct Floor {
    rps: f64,
    gateway_us: f64,
}

async fn healthz_cost(meter: &mut Meter, addr: SocketAddr, ctx: &Ctx) -> Result<Floor, String> {
    let health = rawhttp::request("GET", &addr.to_string(), "/healthz", "-", None);
    let r0 = meter.read().await?;
    let load = http_load(addr, ctx.connections, ctx.seconds.min(5), None, move |_, _| {
        health.clone()
    })
    .await;
    let c = cost::per_op(r0, meter.read().await?, load.sent);
    println!(
        "  GET /healthz floor: {:.0} req/s, gateway {:.1} µs per request",
        load.rps, c.gateway_us
    );
    Ok(Floor {
        rps: load.rps,
        gateway_us: c.gateway_us,
    })
}

async fn imax_shows(base: &str) -> Result<Vec<(String, Vec<String>)>, String> {
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    for movie in ["dune-3", "monsoon-heist", "kaalachakra", "paper-planets"] {
        let shows: Value = http
            .get(format!("{base}/api/v1/movies/{movie}/shows"))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        for s in shows["shows"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["screenId"] == "inox-imax" && crate::on_sale(s))
        {
            let id = s["id"].as_str().unwrap_or_default().to_owned();
            let map: Value = http
                .get(format!("{base}/api/v1/shows/{id}/seatmap"))
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            let seats = map["seats"]
                .as_array()
                .map(|s| {
                    s.iter()
                        .filter(|s| s["status"] == "AVAILABLE")
                        .filter_map(|s| s["id"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            out.push((id, seats));
        }
    }
    Ok(out)
}

/// A server on the bench's Redis under a key prefix of this run.
async fn bench_server(ctx: &Ctx) -> Result<(Server, String, String), String> {
    let prefix = format!("sgbench:{}:", std::process::id());
    let envs = [
        ("REDIS_URL".to_owned(), ctx.redis_url.clone()),
        ("REDIS_KEY_PREFIX".to_owned(), prefix.clone()),
    ];
    let server = Server::start(&ctx.server_bin, &envs).await?;
    let base = format!("http://{}", server.addr);
    Ok((server, base, prefix))
}

/// Drops every key of this run.
async fn clean_up(ctx: &Ctx, prefix: &str) {
    let Ok(client) = redis::Client::open(ctx.redis_url.as_str()) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let _ = redis::cmd("EVAL")
        .arg("for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end")
        .arg(0)
        .arg(format!("{prefix}*"))
        .query_async::<()>(&mut conn)
        .await;
}

/// Loads a script into Redis; answers its SHA.
async fn load_script(conn: &mut redis::aio::MultiplexedConnection, source: &str) -> Result<String, String> {
    redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(source)
        .query_async(conn)
        .await
        .map_err(|e| e.to_string())
}

/// The shoppers of one hold mix: each holds one random seat of the show at
/// a time (a new hold replaces their last), so the mix of answers follows
/// from how many there are against the show's 1,195 seats.
const MIXES: [(&str, usize); 2] = [("flash-sale mix", 2_000), ("mostly successful", 200)];

/// Hold requests of mix `mix`: one random seat of `seats` for one of
/// `shoppers` shoppers (the same shoppers for the same mix).
fn hold_requests(
    host: &str,
    show: String,
    seats: Vec<String>,
    mix: usize,
    shoppers: usize,
) -> impl Fn(usize, u64) -> Vec<u8> + Send + Sync + Clone + 'static {
    let tokens: Arc<Vec<String>> = Arc::new(
        (0..shoppers)
            .map(|c| {
                Tokens::new(DEV_JWT_SECRET)
                    .issue(&format!("bench-{mix}-{c}"), false, 3600)
                    .unwrap_or_default()
            })
            .collect(),
    );
    let (host, seats) = (host.to_owned(), Arc::new(seats));
    move |_c: usize, _i: u64| {
        let mut rng = rand::rng();
        let seat = &seats[rng.random_range(0..seats.len())];
        let user = &tokens[rng.random_range(0..tokens.len())];
        let body = format!(r#"{{"showId":"{show}","seatIds":["{seat}"]}}"#);
        rawhttp::request("POST", &host, "/api/v1/holds", user, Some(&body))
    }
}

pub async fn holds(ctx: &Ctx) -> Result<(), String> {
    let (server, base, prefix) = bench_server(ctx).await?;
    let _server = server;
    let mut conn = redis::Client::open(ctx.redis_url.as_str())
        .map_err(|e| e.to_string())?
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let shows = imax_shows(&base).await?;
    if shows.len() < MIXES.len() {
        return Err("not enough flash-sale shows".into());
    }
    let space = shows[0].1.len();
    let requests = 100_000;
    let mut meter = Meter::new(&ctx.redis_url, Some(_server.pid())).await?;

    // Ceiling 1: the seed document's lock script (a GET and a SET per seat),
    // one random seat of the show per call, as many shoppers as seats.
    let seed_sha = load_script(&mut conn, include_str!("../lua/seed_lock.lua")).await?;
    let seat_key = format!("{prefix}seed:seat:__rand_int__");
    let seed_args = [
        "EVALSHA",
        &seed_sha,
        "1",
        &seat_key,
        "user__rand_int__",
        "hold__rand_int__",
        "300",
    ];
    let r0 = meter.read().await?;
    let (seed_rps, seed_p50, seed_p99) = redis_benchmark(&ctx.redis_url, 50, requests, space, &seed_args).await?;
    let seed_cost = cost::per_op(r0, meter.read().await?, requests as u64);
    // The same script when every lock succeeds (a seat among ten million,
    // so always free): a GET and a SET EX each, the ceiling of a mix that
    // mostly succeeds.
    let fresh_key = format!("{prefix}seedfresh:seat:__rand_int__");
    let fresh_args = [
        "EVALSHA",
        &seed_sha,
        "1",
        &fresh_key,
        "user__rand_int__",
        "hold__rand_int__",
        "300",
    ];
    let r0 = meter.read().await?;
    let (fresh_rps, fresh_p50, fresh_p99) =
        redis_benchmark(&ctx.redis_url, 50, requests, 10_000_000, &fresh_args).await?;
    let fresh_cost = cost::per_op(r0, meter.read().await?, requests as u64);

    // Ceiling 2: this project's own hold script, the same shape.
    let source = concat!(
        include_str!("../../lua/common.lua"),
        include_str!("../../lua/seats_hold.lua")
    );
    let sha = load_script(&mut conn, source).await?;
    let k = showgate::redis::keys::Keys::new(format!("{prefix}raw:")).show("bench");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
        .to_string();
    let keys = k.script_keys();
    // The show's state exists (as after its first rebuild from Postgres).
    let _: () = redis::cmd("SET")
        .arg(keys[6])
        .arg("bench")
        .query_async(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    // Every common key (lua/common.lua), then the common and own ARGV.
    let count = keys.len().to_string();
    let mut args: Vec<&str> = vec!["EVALSHA", &sha, &count];
    args.extend(keys.iter().copied());
    args.extend([
        "bench",
        &k.channel,
        "PUBLISH",
        &now,
        "900000",
        "user:__rand_int__",
        "hold:__rand_int__",
        "300000",
        "A__rand_int__",
    ]);
    let r0 = meter.read().await?;
    let (raw_rps, raw_p50, raw_p99) = redis_benchmark(&ctx.redis_url, 50, requests, space, &args).await?;
    let raw_cost = cost::per_op(r0, meter.read().await?, requests as u64);
    println!("holds, ceilings (redis-benchmark, 50 clients, {space} seats and shoppers):");
    println!(
        "  the seed's lock script (GET + SET EX per seat): {seed_rps:.0} req/s, p50 {seed_p50:.2} ms, p99 {seed_p99:.2} ms"
    );
    println!(
        "  the seed's lock script, every lock succeeding: {fresh_rps:.0} req/s, p50 {fresh_p50:.2} ms, p99 {fresh_p99:.2} ms"
    );
    println!("  seats_hold.lua: {raw_rps:.0} req/s, p50 {raw_p50:.2} ms, p99 {raw_p99:.2} ms");
    println!(
        "  Redis CPU per call: the seed's script {:.1} µs ({:.1} µs when every lock succeeds), seats_hold.lua {:.1} µs",
        seed_cost.redis_us, fresh_cost.redis_us, raw_cost.redis_us
    );

    // The gateway's own floor: a bare route, the same client and connections.
    let addr = _server.addr;
    let host = addr.to_string();
    let healthz = healthz_cost(&mut meter, addr, ctx).await?;

    // showgate: POST /holds over HTTP, one fresh show per mix.
    let mut flash_rps = 0.0;
    for (i, (name, shoppers)) in MIXES.iter().enumerate() {
        let (show, seats) = shows[i].clone();
        let make = hold_requests(&host, show, seats, i, *shoppers);
        let r0 = meter.read().await?;
        let load = http_load(addr, ctx.connections, ctx.seconds, None, make).await;
        let c = cost::per_op(r0, meter.read().await?, load.sent);
        // A mix that mostly succeeds is held against the seed's script when every lock succeeds.
        let seed_floor = if i == 0 { seed_cost } else { fresh_cost };
        if i == 0 {
            flash_rps = load.rps;
        }
        println!(
            "holds, {name} ({shoppers} shoppers, {} connections, {} s): {:.0} req/s, {:.0}% answered 409, {} errors",
            ctx.connections,
            ctx.seconds,
            load.rps,
            100.0 * load.conflict_share,
            load.errors
        );
        println!(
            "  = {:.3} of the seed's script, {:.3} of it when every lock succeeds, {:.3} of seats_hold.lua raw",
            load.rps / seed_rps,
            load.rps / fresh_rps,
            load.rps / raw_rps
        );
        println!("{}", load.step.line("POST /holds (closed loop)"));
        println!(
            "  cost per hold: gateway {} of its /healthz; Redis {} of the seed's script, {} of seats_hold.lua raw",
            cost::against(c.gateway_us, healthz.gateway_us),
            cost::against(c.redis_us, seed_floor.redis_us),
            cost::against(c.redis_us, raw_cost.redis_us)
        );
    }

    // Latency at half the flash-sale rate, open loop: the same show and
    // shoppers as the flash-sale run, so the same mix of answers.
    let (show, seats) = shows[0].clone();
    let make = hold_requests(&host, show, seats, 0, MIXES[0].1);
    let half = flash_rps / 2.0;
    let load = http_load(addr, ctx.connections, ctx.seconds, Some(half), make).await;
    println!(
        "holds at half the flash-sale rate ({half:.0} req/s, open loop, latency from the scheduled send; {:.0}% answered 409):",
        100.0 * load.conflict_share
    );
    println!("{}  ({} errors)", load.step.line("POST /holds"), load.errors);
    clean_up(ctx, &prefix).await;
    Ok(())
}

/// More joins a second than this machine can answer: the number of
/// shoppers prepared per second of the run.
const JOINS_CEILING_PER_SECOND: usize = 80_000;

/// `per_conn` join requests, each of a new shopper, for each of
/// `connections`; signed on every core at once.
async fn join_requests(addr: SocketAddr, show: &str, connections: usize, per_conn: usize) -> Arc<Vec<Vec<Vec<u8>>>> {
    let host = Arc::new(addr.to_string());
    let path = Arc::new(format!("/api/v1/waitrooms/{show}/join"));
    let signers: Vec<_> = (0..connections)
        .map(|c| {
            let (host, path) = (host.clone(), path.clone());
            tokio::task::spawn_blocking(move || {
                let tokens = Tokens::new(DEV_JWT_SECRET);
                (0..per_conn)
                    .map(|i| {
                        let token = tokens.issue(&format!("j{c}-{i}"), false, 3600).unwrap_or_default();
                        rawhttp::request("POST", &host, &path, &token, None)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all = Vec::with_capacity(connections);
    for s in signers {
        all.push(s.await.unwrap_or_default());
    }
    Arc::new(all)
}

pub async fn joins(ctx: &Ctx) -> Result<(), String> {
    let (server, base, prefix) = bench_server(ctx).await?;
    let _server = server;
    let shows = imax_shows(&base).await?;
    let show = shows.first().map(|s| s.0.clone()).ok_or("no show")?;
    let admin = Tokens::new(DEV_JWT_SECRET)
        .issue("bench-ops", true, 3600)
        .map_err(|e| e.to_string())?;
    let http = reqwest::Client::new();
    http.put(format!("{base}/api/v1/admin/waitrooms/{show}"))
        .bearer_auth(admin)
        .json(&json!({"admitRatePerSecond": 1, "paused": true}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let zkey = format!("{prefix}raw:z");
    let mut meter = Meter::new(&ctx.redis_url, Some(_server.pid())).await?;
    let r0 = meter.read().await?;
    let (raw_rps, raw_p50, raw_p99) = redis_benchmark(
        &ctx.redis_url,
        50,
        300_000,
        100_000_000,
        &["ZADD", &zkey, "__rand_int__", "m:__rand_int__"],
    )
    .await?;
    let zadd_cost = cost::per_op(r0, meter.read().await?, 300_000);
    // Every request a new shopper: their requests are built before the
    // clock starts (signing a token per request would be the load
    // generator's CPU taken from the server), more than the run can send.
    let per_conn = (ctx.seconds as usize * JOINS_CEILING_PER_SECOND).div_ceil(ctx.connections);
    let addr = _server.addr;
    let requests = join_requests(addr, &show, ctx.connections, per_conn).await;
    let make = move |c: usize, i: u64| {
        let mine = &requests[c];
        mine[i as usize % mine.len()].clone()
    };
    let r0 = meter.read().await?;
    let Load {
        rps,
        step,
        errors,
        sent,
        ..
    } = http_load(addr, ctx.connections, ctx.seconds, None, make).await;
    let join_cost = cost::per_op(r0, meter.read().await?, sent);
    println!(
        "joins ({} connections, {} s, each a new shopper):",
        ctx.connections, ctx.seconds
    );
    println!("  redis-benchmark ZADD (50 clients): {raw_rps:.0} req/s, p50 {raw_p50:.2} ms, p99 {raw_p99:.2} ms");
    println!(
        "  showgate POST /waitrooms/{{show}}/join: {rps:.0} req/s = {:.0}% of raw ({errors} errors)",
        100.0 * rps / raw_rps
    );
    println!("{}", step.line("POST join"));
    // The server's own HTTP ceiling in the same run: a route that does
    // nothing (no token, no Redis), the same client and connections.
    let healthz = healthz_cost(&mut meter, addr, ctx).await?;
    println!(
        "  GET /healthz (the HTTP path alone): {:.0} req/s; joins = {:.2} of it",
        healthz.rps,
        rps / healthz.rps.max(1.0)
    );
    println!(
        "  cost per join: gateway {} of its /healthz; Redis {} of raw ZADD ({:.1} µs)",
        cost::against(join_cost.gateway_us, healthz.gateway_us),
        cost::against(join_cost.redis_us, zadd_cost.redis_us),
        zadd_cost.redis_us
    );
    if rps > 0.0 {
        println!("  at this rate 1,000,000 joins take {:.0} s", 1_000_000.0 / rps);
    }
    clean_up(ctx, &prefix).await;
    Ok(())
}

/// Who serves the sockets in a fan-out run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Showgate,
    /// The Node.js `ws` + `ioredis` peer (`loadtest/peers`).
    Node,
}

/// One fan-out run: milliseconds from the change to each socket's delta.
pub struct Fanout {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub received: usize,
}

/// One change reaching `total` seat-map sockets over `processes` server
/// processes (and as many client processes) on one Redis. For showgate the
/// change is a hold; for the Node peer a delta published on its channel.
pub async fn fanout(
    ctx: &Ctx,
    total: usize,
    processes: usize,
    target: Target,
    node_modules: Option<&std::path::Path>,
) -> Result<Fanout, String> {
    let processes = processes.max(total.div_ceil(19_000)).max(1);
    let prefix = format!("sgbench:{}:{total}:", std::process::id());
    let channel = format!("{prefix}peer-events");
    let mut servers = Vec::new();
    let mut peers = Vec::new();
    let mut addrs = Vec::new();
    match target {
        Target::Showgate => {
            let envs = vec![
                ("REDIS_URL".to_owned(), ctx.redis_url.clone()),
                ("REDIS_KEY_PREFIX".to_owned(), prefix.clone()),
                ("WS_PING_SECONDS".to_owned(), "600".to_owned()),
            ];
            for _ in 0..processes {
                let s = Server::start(&ctx.server_bin, &envs).await?;
                addrs.push(s.addr);
                servers.push(s);
            }
        }
        Target::Node => {
            let modules = node_modules.ok_or("the Node.js peer is not installed")?;
            for _ in 0..processes {
                let p = crate::peer::Peer::start(modules, &ctx.redis_url, &channel).await?;
                addrs.push(p.addr);
                peers.push(p);
            }
        }
    }
    // A show and seat of their own per run (the change must be a change).
    let (show, seat) = match target {
        Target::Showgate => {
            let shows = imax_shows(&format!("http://{}", addrs[0])).await?;
            let (show, seats) = shows.get(total % shows.len()).cloned().ok_or("no show")?;
            let seat = seats[total % seats.len()].clone();
            (show, seat)
        }
        Target::Node => ("peer".to_owned(), "A1".to_owned()),
    };
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut workers = Vec::new();
    for (n, addr) in addrs.iter().enumerate() {
        let count = total / processes + usize::from(n < total % processes);
        let mut child = tokio::process::Command::new(&exe)
            .args([
                "ws-worker",
                "--addr",
                &addr.to_string(),
                "--show",
                &show,
                "--sockets",
                &count.to_string(),
                "--worker",
                &n.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| e.to_string())?;
        let lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        workers.push((child, lines));
    }
    for (_, lines) in workers.iter_mut() {
        loop {
            match tokio::time::timeout(Duration::from_secs(300), lines.next_line()).await {
                Ok(Ok(Some(l))) if l.starts_with("READY") => break,
                Ok(Ok(Some(_))) => continue,
                _ => return Err("a worker did not get its sockets up in 300 s".into()),
            }
        }
    }
    let rss: u64 = servers.iter().map(Server::rss).sum::<u64>() + peers.iter().map(|p| p.rss()).sum::<u64>();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t0 = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default();
    match target {
        Target::Showgate => {
            let token = Tokens::new(DEV_JWT_SECRET)
                .issue(&format!("fanout-trigger-{total}"), false, 3600)
                .map_err(|e| e.to_string())?;
            let res = reqwest::Client::new()
                .post(format!("http://{}/api/v1/holds", addrs[0]))
                .bearer_auth(token)
                .json(&json!({"showId": show, "seatIds": [seat]}))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if res.status() != 201 {
                return Err(format!("the triggering hold answered {}", res.status()));
            }
        }
        Target::Node => {
            let mut conn = redis::Client::open(ctx.redis_url.as_str())
                .map_err(|e| e.to_string())?
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| e.to_string())?;
            let delta = json!({"showId": "peer", "epoch": "peer", "version": 1,
                "changes": [{"seatId": seat, "status": "HELD"}]});
            let receivers: i64 = redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(delta.to_string())
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            if receivers < processes as i64 {
                return Err(format!(
                    "only {receivers} of {processes} Node.js peers follow {channel}"
                ));
            }
        }
    }
    let mut lat: Vec<i64> = Vec::with_capacity(total);
    for (_, lines) in workers.iter_mut() {
        while let Ok(Ok(Some(l))) = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await {
            if let Some(json) = l.strip_prefix("TIMES ") {
                let times: Vec<i64> = serde_json::from_str(json).unwrap_or_default();
                lat.extend(times.into_iter().map(|t| t - t0));
                break;
            }
        }
    }
    lat.sort_unstable();
    let q = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    let result = Fanout {
        p50: q(0.5),
        p99: q(0.99),
        max: lat.last().copied().unwrap_or(0) as f64 / 1000.0,
        received: lat.len(),
    };
    println!(
        "fan-out to {total} sockets, {processes} server + {processes} client processes, one Redis, {}: {} received; p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; servers' RSS {:.0} MiB",
        match target {
            Target::Showgate => "showgate",
            Target::Node => "Node.js ws peer",
        },
        result.received,
        result.p50,
        result.p99,
        result.max,
        rss as f64 / 1048576.0
    );
    if target == Target::Showgate {
        clean_up(ctx, &prefix).await;
    }
    Ok(result)
}

/// A client process of the fan-out bench: opens sockets, says READY, then
/// prints when each socket received its first delta (epoch µs).
pub async fn worker(addr: std::net::SocketAddr, show: &str, sockets: usize) -> Result<(), String> {
    let times = Arc::new(std::sync::Mutex::new(Vec::with_capacity(sockets)));
    let snapshots = Arc::new(AtomicU64::new(0));
    let (t, s) = (times.clone(), snapshots.clone());
    let on: swarm::OnMessage = Arc::new(move |_, v, _| match v["type"].as_str() {
        Some("snapshot") => {
            s.fetch_add(1, Ordering::Relaxed);
        }
        Some("delta") => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_micros() as i64)
                .unwrap_or_default();
            t.lock().unwrap().push(now);
        }
        _ => {}
    });
    let tally = Arc::new(swarm::Tally::default());
    swarm::open(
        addr,
        &format!("/api/v1/shows/{show}/seats/ws"),
        sockets,
        tally.clone(),
        on,
        Duration::from_secs(600),
    )
    .await;
    swarm::wait_until(Duration::from_secs(120), || {
        snapshots.load(Ordering::Relaxed) as usize >= sockets
    })
    .await;
    println!("READY {}", snapshots.load(Ordering::Relaxed));
    let connected = tally.connected.load(Ordering::Relaxed) as usize;
    swarm::wait_until(Duration::from_secs(30), || times.lock().unwrap().len() >= connected).await;
    let list = times.lock().unwrap().clone();
    println!("TIMES {}", serde_json::to_string(&list).unwrap_or_default());
    Ok(())
}
