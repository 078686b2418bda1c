//! The churn scenario: shoppers re-holding seats of one show at a paced
//! rate while N seat-map sockets watch it. It measures what a sale night
//! does to the stream: holds offered and made, hold latency during the
//! churn, frames and bytes per socket, re-snapshots, contiguity, how long
//! after the churn every socket is at the final version, and the server's
//! CPU per delivered frame.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::Rng;
use serde_json::{Value, json};
use showgate::auth::Tokens;
use showgate::config::DEV_JWT_SECRET;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::flash::Step;
use crate::server::Server;
use crate::swarm;

pub struct Params {
    pub sockets: usize,
    pub processes: usize,
    pub rate: f64,
    pub seconds: u64,
    pub shoppers: usize,
    pub redis_url: Option<String>,
    pub server_bin: PathBuf,
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

pub async fn run(p: Params) -> Result<(), String> {
    let mut envs = vec![("WS_PING_SECONDS".to_owned(), "600".to_owned())];
    if let Some(url) = &p.redis_url {
        envs.push(("REDIS_URL".into(), url.clone()));
        envs.push(("REDIS_KEY_PREFIX".into(), format!("sgchurn:{}:", std::process::id())));
    }
    let server = Server::start(&p.server_bin, &envs).await?;
    let base = format!("http://{}", server.addr);
    let show = crate::flash_sale_show(&base).await?;
    let map: Value = reqwest::get(format!("{base}/api/v1/shows/{show}/seatmap"))
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let seats: Vec<String> = map["seats"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["status"] == "AVAILABLE")
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect();

    // The watchers, over client processes of their own.
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let processes = p.processes.max(p.sockets.div_ceil(19_000)).max(1);
    let mut workers = Vec::new();
    for n in 0..processes {
        let count = p.sockets / processes + usize::from(n < p.sockets % processes);
        let mut child = tokio::process::Command::new(&exe)
            .args(["churn-worker", "--addr", &server.addr.to_string(), "--show", &show])
            .args(["--sockets", &count.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| e.to_string())?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        workers.push((child, stdin, lines));
    }
    for (_, _, lines) in workers.iter_mut() {
        loop {
            match tokio::time::timeout(Duration::from_secs(300), lines.next_line()).await {
                Ok(Ok(Some(l))) if l.starts_with("READY") => break,
                Ok(Ok(Some(_))) => continue,
                _ => return Err("a worker did not get its sockets up in 300 s".into()),
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The churn: holds at a fixed pace, each from a random shopper for a random seat.
    let tokens = Tokens::new(DEV_JWT_SECRET);
    let shoppers: Arc<Vec<String>> = Arc::new(
        (0..p.shoppers)
            .map(|i| tokens.issue(&format!("churner-{i}"), false, 3600).unwrap_or_default())
            .collect(),
    );
    let seats = Arc::new(seats);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(p.shoppers)
        .build()
        .map_err(|e| e.to_string())?;
    let (made, conflicts, errors) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let step = Arc::new(Step::new());
    // Two more viewers that count bytes on the wire: one offering
    // permessage-deflate as browsers do, one not.
    let started = Instant::now();
    let (agreed, deflated) = crate::wire::watch(server.addr, &show, true, started).await?;
    let (_, plain) = crate::wire::watch(server.addr, &show, false, started).await?;
    let cpu0 = crate::cost::process_cpu(server.pid());
    // Open loop on a schedule, not a ticker: the timer's millisecond grain
    // would drop ticks at 1,000/s, so each wake-up sends every hold now due.
    let mut pace = tokio::time::interval(Duration::from_millis(1));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut offered = 0u64;
    let mut inflight = Vec::new();
    let churn = Duration::from_secs(p.seconds);
    while started.elapsed() < churn {
        let due = (started.elapsed().as_secs_f64() * p.rate) as u64;
        if offered >= due {
            pace.tick().await;
            continue;
        }
        offered += 1;
        let (who, seat) = {
            let mut rng = rand::rng();
            (rng.random_range(0..shoppers.len()), rng.random_range(0..seats.len()))
        };
        let (http, shoppers, seats, base, show) = (
            http.clone(),
            shoppers.clone(),
            seats.clone(),
            base.clone(),
            show.clone(),
        );
        let (made, conflicts, errors, step) = (made.clone(), conflicts.clone(), errors.clone(), step.clone());
        inflight.push(tokio::spawn(async move {
            let t = Instant::now();
            let res = http
                .post(format!("{base}/api/v1/holds"))
                .bearer_auth(&shoppers[who])
                .json(&json!({"showId": show, "seatIds": [seats[seat]]}))
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            step.record(t.elapsed());
            match res.map(|r| r.status().as_u16()) {
                Ok(201) => made.fetch_add(1, Ordering::Relaxed),
                Ok(409) => conflicts.fetch_add(1, Ordering::Relaxed),
                _ => errors.fetch_add(1, Ordering::Relaxed),
            };
        }));
    }
    for h in inflight {
        let _ = h.await;
    }
    let churn_secs = started.elapsed().as_secs_f64();
    let t_end = now_us();
    let map: Value = reqwest::get(format!("{base}/api/v1/shows/{show}/seatmap"))
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let final_version = map["version"].as_u64().unwrap_or(0);
    for (_, stdin, _) in workers.iter_mut() {
        stdin
            .write_all(format!("END {t_end} {final_version}\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut totals: HashMap<&str, u64> = HashMap::new();
    let mut drains: Vec<i64> = Vec::new();
    for (_, _, lines) in workers.iter_mut() {
        while let Ok(Ok(Some(l))) = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await {
            if let Some(stats) = l.strip_prefix("STATS ") {
                let v: Value = serde_json::from_str(stats).map_err(|e| e.to_string())?;
                for k in ["sockets", "frames", "bytes", "snapshots", "gaps", "reached", "busiest"] {
                    let x = v[k].as_u64().unwrap_or(0);
                    let e = totals.entry(k).or_default();
                    *e = if k == "busiest" { (*e).max(x) } else { *e + x };
                }
                drains.extend(v["drains"].as_array().into_iter().flatten().filter_map(Value::as_i64));
                break;
            }
        }
    }
    let cpu1 = crate::cost::process_cpu(server.pid());
    let (user, kernel) = (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1);
    let cpu = user + kernel;
    drains.sort_unstable();
    let q = |p: f64| {
        drains
            .get(((drains.len() as f64 * p) as usize).min(drains.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    let t = |k: &str| totals.get(k).copied().unwrap_or(0);
    let frames = t("frames");
    let per_socket_per_s = frames as f64 / t("sockets").max(1) as f64 / churn_secs;
    println!(
        "churn on {show}: {} sockets over {processes} client processes, {} shoppers, {:.0} holds/s offered for {:.1} s",
        t("sockets"),
        p.shoppers,
        p.rate,
        churn_secs
    );
    let answered = made.load(Ordering::Relaxed) + conflicts.load(Ordering::Relaxed);
    println!(
        "  holds: {offered} offered ({:.0}/s), {answered} answered ({:.0}%: {} held, {} taken by another shopper), {} errors or timeouts",
        offered as f64 / churn_secs,
        100.0 * answered as f64 / offered.max(1) as f64,
        made.load(Ordering::Relaxed),
        conflicts.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
    );
    println!("{}", step.line("  hold during the churn"));
    println!(
        "  stream: {frames} delta frames, {:.1} per socket per second (busiest socket {:.1}/s), {:.0} bytes per socket; {} re-snapshots; {} gaps",
        per_socket_per_s,
        t("busiest") as f64 / churn_secs,
        t("bytes") as f64 / t("sockets").max(1) as f64,
        t("snapshots"),
        t("gaps")
    );
    println!(
        "  after the churn: {} of {} sockets at the final version {final_version}; drain p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        t("reached"),
        t("sockets"),
        q(0.5),
        q(0.99),
        drains.last().copied().unwrap_or(0) as f64 / 1000.0
    );
    // The snapshot came in the first second: counted from the second after.
    let secs = churn_secs.ceil() as usize;
    let (d, pl) = (deflated.seconds(1, secs), plain.seconds(1, secs));
    let mean = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len().max(1) as f64;
    println!(
        "  bytes on the wire to one viewer: plain {:.0} B/s (busiest 10 s {:.0} B/s); offering permessage-deflate ({}) {:.0} B/s (busiest 10 s {:.0} B/s) = {:.2} of plain",
        mean(&pl),
        crate::wire::busiest(&pl, 10),
        if agreed { "agreed" } else { "NOT agreed" },
        mean(&d),
        crate::wire::busiest(&d, 10),
        mean(&d) / mean(&pl).max(1.0)
    );
    let per_frame = |s: f64| s * 1e6 / frames.max(1) as f64;
    println!(
        "  server CPU {cpu:.2} s for {frames} delivered frames: {:.2} µs per frame (holds included): user {:.2} µs, kernel {:.2} µs",
        per_frame(cpu),
        per_frame(user),
        per_frame(kernel)
    );
    Ok(())
}

/// A watcher process: sockets that check contiguity and count what they
/// get; after "END <t_end µs> <final version>" on stdin, they report.
pub async fn worker(addr: std::net::SocketAddr, show: &str, sockets: usize) -> Result<(), String> {
    #[derive(Default, Clone)]
    struct Seen {
        version: u64,
        epoch: String,
        frames: u64,
        snapshots: u64,
        gaps: u64,
        last_us: i64,
        started: bool,
    }
    let state: Arc<Vec<Mutex<Seen>>> = Arc::new((0..sockets).map(|_| Mutex::new(Seen::default())).collect());
    /// The fields a watcher checks; the rest (the seats, the changes) is skipped unread.
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        #[serde(rename = "fromVersion")]
        from: Option<u64>,
        version: u64,
        epoch: Option<&'a str>,
    }
    let st = state.clone();
    let on: swarm::OnText = Arc::new(move |i, text, _| {
        let Ok(v) = serde_json::from_str::<Head>(text) else {
            return;
        };
        let mut s = st[i].lock().unwrap();
        match v.kind {
            "snapshot" => {
                if s.started {
                    s.snapshots += 1;
                }
                s.started = true;
                s.version = v.version;
                s.epoch = v.epoch.unwrap_or_default().to_owned();
            }
            "delta" => {
                if v.from.unwrap_or(v.version) != s.version + 1 || v.epoch != Some(s.epoch.as_str()) {
                    s.gaps += 1;
                }
                s.version = v.version;
                s.frames += 1;
            }
            _ => return,
        }
        s.last_us = now_us();
    });
    let tally = Arc::new(swarm::Tally::default());
    let paths = vec![format!("/api/v1/shows/{show}/seats/ws"); sockets];
    swarm::open_with(
        addr,
        paths,
        tally.clone(),
        swarm::Handler::Text(on),
        Duration::from_secs(900),
    )
    .await;
    swarm::wait_until(Duration::from_secs(120), || {
        state.iter().all(|s| s.lock().unwrap().started)
    })
    .await;
    println!("READY");
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let line = stdin.next_line().await.map_err(|e| e.to_string())?.ok_or("no END")?;
    let mut parts = line.split_whitespace().skip(1);
    let t_end: i64 = parts.next().and_then(|x| x.parse().ok()).ok_or("END needs a time")?;
    let final_version: u64 = parts.next().and_then(|x| x.parse().ok()).ok_or("END needs a version")?;
    swarm::wait_until(Duration::from_secs(10), || {
        state.iter().all(|s| s.lock().unwrap().version >= final_version)
    })
    .await;
    let seen: Vec<Seen> = state.iter().map(|s| s.lock().unwrap().clone()).collect();
    let reached: Vec<&Seen> = seen.iter().filter(|s| s.version >= final_version).collect();
    let drains: Vec<i64> = reached.iter().map(|s| (s.last_us - t_end).max(0)).collect();
    let stats = json!({
        "sockets": seen.len(),
        "frames": seen.iter().map(|s| s.frames).sum::<u64>(),
        "bytes": tally.bytes.load(Ordering::Relaxed),
        "snapshots": seen.iter().map(|s| s.snapshots).sum::<u64>(),
        "gaps": seen.iter().map(|s| s.gaps).sum::<u64>(),
        "busiest": seen.iter().map(|s| s.frames).max().unwrap_or(0),
        "reached": reached.len(),
        "drains": drains,
    });
    println!("STATS {stats}");
    Ok(())
}
