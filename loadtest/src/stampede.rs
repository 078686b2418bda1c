//! The queue-socket stampede: N shoppers open their waiting-room sockets at
//! the same moment, spread over several server processes (one Redis) and
//! several client processes (a process holds at most ~19,000 sockets). Each
//! socket joins the queue by opening; what is measured is how long each
//! waits for its first position, and whether every place is exact once the
//! stampede settles (the positions are a permutation of 1..N).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use showgate::auth::Tokens;
use showgate::config::DEV_JWT_SECRET;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::flash::Step;
use crate::server::Server;
use crate::swarm;

pub struct Params {
    pub sockets: usize,
    pub nodes: usize,
    pub processes: usize,
    pub redis_url: String,
    pub server_bin: PathBuf,
}

/// A first position later than this is a miss (issue #10's bound).
const FIRST_POSITION_WITHIN: Duration = Duration::from_secs(2);

pub async fn run(p: Params) -> Result<(), String> {
    let prefix = format!("sgstampede:{}:", std::process::id());
    let envs = vec![
        ("REDIS_URL".to_owned(), p.redis_url.clone()),
        ("REDIS_KEY_PREFIX".to_owned(), prefix),
        ("WS_MAX_PER_IP".to_owned(), "0".to_owned()),
        ("RATE_LIMIT_USER_PER_SEC".to_owned(), "0".to_owned()),
        ("WS_PING_SECONDS".to_owned(), "600".to_owned()),
        ("ABANDON_AFTER_SECONDS".to_owned(), "600".to_owned()),
    ];
    let mut servers = Vec::new();
    for _ in 0..p.nodes {
        servers.push(Server::start(&p.server_bin, &envs).await?);
    }
    let base = format!("http://{}", servers[0].addr);
    let http = reqwest::Client::new();
    let show = crate::flash_sale_show(&base).await?;
    // A paused room: nobody is admitted, so every place stays put.
    let admin = Tokens::new(DEV_JWT_SECRET)
        .issue("stampede-ops", true, 3600)
        .map_err(|e| e.to_string())?;
    let res = http
        .put(format!("{base}/api/v1/admin/waitrooms/{show}"))
        .bearer_auth(&admin)
        .json(&json!({"admitRatePerSecond": 1, "paused": true, "preQueue": "FIFO"}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !res.status().is_success() {
        return Err(format!("room: {}", res.status()));
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await; // every node knows the room

    let addrs: Vec<String> = servers.iter().map(|s| s.addr.to_string()).collect();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let processes = p.processes.max(p.sockets.div_ceil(19_000)).max(1);
    let mut workers = Vec::new();
    let mut from = 0;
    for n in 0..processes {
        let count = p.sockets / processes + usize::from(n < p.sockets % processes);
        let mut child = tokio::process::Command::new(&exe)
            .args(["stampede-worker", "--addrs", &addrs.join(","), "--show", &show])
            .args(["--from", &from.to_string(), "--count", &count.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| e.to_string())?;
        from += count;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        workers.push((child, stdin, lines));
    }
    // Every worker has its tokens and paths ready; then all go at once.
    for (_, _, lines) in workers.iter_mut() {
        wait_for(lines, "READY", Duration::from_secs(60)).await?;
    }
    for (_, stdin, _) in workers.iter_mut() {
        stdin.write_all(b"GO\n").await.map_err(|e| e.to_string())?;
        stdin.flush().await.map_err(|e| e.to_string())?;
    }
    let step = Step::new();
    let (mut connected, mut first, mut within) = (0u64, 0u64, 0u64);
    let mut positions = Vec::with_capacity(p.sockets);
    for (_, _, lines) in workers.iter_mut() {
        let line = wait_for(lines, "RESULT ", Duration::from_secs(300)).await?;
        let r: Value = serde_json::from_str(line.trim_start_matches("RESULT ")).map_err(|e| e.to_string())?;
        connected += r["connected"].as_u64().unwrap_or(0);
        for ms in r["firstMs"].as_array().into_iter().flatten().filter_map(Value::as_f64) {
            first += 1;
            if ms <= FIRST_POSITION_WITHIN.as_secs_f64() * 1000.0 {
                within += 1;
            }
            step.record(Duration::from_secs_f64(ms / 1000.0));
        }
        positions.extend(r["last"].as_array().into_iter().flatten().filter_map(Value::as_u64));
    }
    positions.sort_unstable();
    let exact = positions.len() == p.sockets && positions.iter().enumerate().all(|(i, &pos)| pos == i as u64 + 1);
    println!(
        "stampede: {} queue sockets opened at once over {} server and {processes} client processes, show {show}",
        p.sockets, p.nodes
    );
    println!(
        "  connected {connected}, a first position on {first}; {within} within {:?}",
        FIRST_POSITION_WITHIN
    );
    println!("{}", step.line("first position"));
    println!(
        "  settled positions: {} of {} sockets, {}",
        positions.len(),
        p.sockets,
        if exact {
            "exactly 1..N, each once"
        } else {
            "NOT a permutation of 1..N"
        }
    );
    drop(servers);
    Ok(())
}

async fn wait_for(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    prefix: &str,
    limit: Duration,
) -> Result<String, String> {
    loop {
        match tokio::time::timeout(limit, lines.next_line()).await {
            Ok(Ok(Some(l))) if l.starts_with(prefix) => return Ok(l),
            Ok(Ok(Some(_))) => continue,
            _ => return Err(format!("a worker did not say {prefix:?} within {limit:?}")),
        }
    }
}

/// A client process: `count` shoppers (`from`..), each opening a queue
/// socket to one of the nodes when told "GO"; reports each socket's time
/// to its first position and its position once the stampede has settled.
pub async fn worker(addrs: Vec<std::net::SocketAddr>, show: &str, from: usize, count: usize) -> Result<(), String> {
    let tokens = Tokens::new(DEV_JWT_SECRET);
    let mut by_node: Vec<Vec<(usize, String)>> = vec![Vec::new(); addrs.len()];
    for i in 0..count {
        let user = from + i;
        let token = tokens
            .issue(&format!("stampede-{user}"), false, 3600)
            .map_err(|e| e.to_string())?;
        by_node[user % addrs.len()].push((i, format!("/api/v1/waitrooms/{show}/ws?access_token={token}")));
    }
    println!("READY");
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(l)) = stdin.next_line().await {
        if l == "GO" {
            break;
        }
    }
    let go = Instant::now();
    const NONE: u64 = u64::MAX;
    let first_us: Arc<Vec<AtomicU64>> = Arc::new((0..count).map(|_| AtomicU64::new(NONE)).collect());
    let last: Arc<Vec<AtomicU64>> = Arc::new((0..count).map(|_| AtomicU64::new(0)).collect());
    let tally = Arc::new(swarm::Tally::default());
    let mut opens = Vec::new();
    for (node, paths) in by_node.into_iter().enumerate() {
        let (ids, paths): (Vec<usize>, Vec<String>) = paths.into_iter().unzip();
        let ids = Arc::new(ids);
        let (first_us, last, ids) = (first_us.clone(), last.clone(), ids.clone());
        let on: swarm::OnMessage = Arc::new(move |k, v, at| {
            if v["type"] != "position" {
                return;
            }
            let Some(pos) = v["position"].as_u64() else { return };
            let i = ids[k];
            let _ = first_us[i].compare_exchange(
                NONE,
                at.duration_since(go).as_micros() as u64,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            last[i].store(pos, Ordering::Release);
        });
        opens.push(swarm::open_paths(
            addrs[node],
            paths,
            tally.clone(),
            on,
            Duration::from_secs(600),
        ));
    }
    futures::future::join_all(opens).await;
    // Settle: every socket has a first position, then positions stop moving.
    swarm::wait_until(Duration::from_secs(30), || {
        first_us.iter().all(|f| f.load(Ordering::Acquire) != NONE)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let first: Vec<f64> = first_us
        .iter()
        .map(|f| f.load(Ordering::Acquire))
        .filter(|&f| f != NONE)
        .map(|us| us as f64 / 1000.0)
        .collect();
    let positions: Vec<u64> = last
        .iter()
        .map(|p| p.load(Ordering::Acquire))
        .filter(|&p| p > 0)
        .collect();
    let result = json!({
        "connected": tally.connected.load(Ordering::Relaxed),
        "firstMs": first,
        "last": positions,
    });
    println!("RESULT {result}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(())
}
