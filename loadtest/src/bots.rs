//! Bots vs the queue: a gated sale whose seats come back. Admitted shoppers
//! hold every seat, the rest of the admitted wait on the waiting list in
//! order, and bots that never queued try every door at once: holds by id
//! and best available, the waiting list, and a borrowed admission token.
//! Then the holders give their seats back one pair at a time. The report
//! says who got each returned seat; the run fails unless bots got none and
//! every pair went to the first waiter in line.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use showgate::auth::Tokens;
use showgate::config::DEV_JWT_SECRET;

use crate::server::Server;

const SHOW: &str = "bots-1";

/// Which engine the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    Memory,
    Redis,
    Cluster,
}

pub struct Params {
    /// Admitted shoppers: half hold a pair each, half wait for a pair.
    pub shoppers: usize,
    pub bots: usize,
    pub engine: Engine,
    pub redis_url: String,
    pub cluster_nodes: String,
    pub server_bin: PathBuf,
}

/// What the bots got, by door and answer.
#[derive(Default)]
struct Tally {
    answers: BTreeMap<(&'static str, u16), u64>,
    /// Seats a bot was ever given (must stay empty).
    seats: Vec<String>,
}

pub async fn run(p: Params) -> Result<(), String> {
    let holders = (p.shoppers / 2).max(1);
    let waiters = holders;
    let catalog = write_catalog(holders * 2)?;
    let server = Server::start(&p.server_bin, &server_env(&p, &catalog)).await?;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let tokens = Tokens::new(DEV_JWT_SECRET);
    let token = |u: &str| tokens.issue(u, false, 3600).map_err(|e| e.to_string());
    let admin = tokens.issue("bots-ops", true, 3600).map_err(|e| e.to_string())?;
    println!(
        "sg-load bots-vs-queue: {holders} holders, {waiters} waiters, {} bots, {:?} engine",
        p.bots, p.engine
    );

    // The room first, then every honest shopper admitted while seats are free.
    let room = json!({"admitRatePerSecond": 1000, "burst": 1000, "maxActive": 100_000});
    call(
        &http,
        "PUT",
        &format!("{base}/api/v1/admin/waitrooms/{SHOW}"),
        &admin,
        None,
        Some(room),
    )
    .await?;
    let users: Vec<String> = (0..holders + waiters).map(|i| format!("shopper-{i:04}")).collect();
    let mut passes = Vec::with_capacity(users.len());
    for u in &users {
        passes.push(admitted(&http, &base, &token(u)?).await?);
    }
    let holds = hold_every_pair(&http, &base, &users[..holders], &passes[..holders], &token).await?;
    for (i, u) in users[holders..].iter().enumerate() {
        let joined = call_waitlist(&http, &base, &token(u)?, Some(&passes[holders + i])).await?;
        if joined.0 != 201 || joined.1["position"] != json!(i + 1) {
            return Err(format!("waiter {u} joined as {joined:?}"));
        }
    }

    // The bots try every door while the pairs come back.
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let borrowed = passes[holders].clone();
    let mut bots = Vec::new();
    for b in 0..p.bots {
        let (http, base, stop, tally, borrowed) = (
            http.clone(),
            base.clone(),
            stop.clone(),
            tally.clone(),
            borrowed.clone(),
        );
        let t = token(&format!("bot-{b:03}"))?;
        let seats = holders * 2;
        bots.push(tokio::spawn(async move {
            bot(http, base, t, borrowed, seats, stop, tally).await
        }));
    }
    let mut problems = Vec::new();
    let started = Instant::now();
    for (i, (holder, hold)) in users[..holders].iter().zip(&holds).enumerate() {
        let released = call(
            &http,
            "DELETE",
            &format!("{base}/api/v1/holds/{}", hold.0),
            &token(holder)?,
            None,
            None,
        )
        .await?;
        if released.0 != 200 {
            problems.push(format!("{holder} could not give back {}: {released:?}", hold.0));
            continue;
        }
        let waiter = &users[holders + i];
        let mut expected = hold.1.clone();
        expected.sort();
        match offered(&http, &base, &token(waiter)?).await? {
            Some(seats) if seats == expected => {}
            other => problems.push(format!(
                "{waiter} (first in line) was offered {other:?}, not {:?}",
                hold.1
            )),
        }
    }
    let returned_in = started.elapsed();
    stop.store(true, Ordering::Release);
    for b in bots {
        let _ = b.await;
    }
    let tally = tally.lock().map_err(|_| "tally poisoned")?;
    report(&tally, holders, returned_in);
    if !tally.seats.is_empty() {
        problems.push(format!("bots got seats: {:?}", tally.seats));
    }
    drop(server);
    if problems.is_empty() {
        println!("  every returned seat went to the first waiter who fits; bots got 0 seats");
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

fn server_env(p: &Params, catalog: &std::path::Path) -> Vec<(String, String)> {
    let prefix = format!("sgbots:{}:", uuid_like());
    let mut env = vec![
        ("CATALOG".to_owned(), catalog.display().to_string()),
        ("HOLD_TTL_SECONDS".to_owned(), "300".to_owned()),
        ("WAITLIST_OFFER_SECONDS".to_owned(), "120".to_owned()),
        ("REDIS_KEY_PREFIX".to_owned(), prefix),
    ];
    match p.engine {
        Engine::Memory => {}
        Engine::Redis => env.push(("REDIS_URL".to_owned(), p.redis_url.clone())),
        Engine::Cluster => env.push(("REDIS_CLUSTER_NODES".to_owned(), p.cluster_nodes.clone())),
    }
    env
}

/// A run-unique id (time and process), for the Redis key prefix.
fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos:x}{:x}", std::process::id())
}

/// One hall of one row with `seats` seats, one show tomorrow.
fn write_catalog(seats: usize) -> Result<PathBuf, String> {
    let start = chrono::Utc::now() + chrono::Duration::hours(24);
    let doc = json!({
        "movies": [{"id": "bots-movie", "title": "Bots vs the Queue", "language": "English", "durationMinutes": 90, "genres": ["Drama"]}],
        "theatres": [{"id": "bots-hall", "name": "Bots Hall", "city": "Pune",
            "screens": [{"id": "bots-1", "name": "Screen 1", "rows": [{"row": "A", "seats": seats}]}]}],
        "shows": [{"id": SHOW, "movieId": "bots-movie", "theatreId": "bots-hall", "screenId": "bots-1",
            "startTime": start.to_rfc3339(), "price": "250.00", "currency": "INR"}],
    });
    let path = std::env::temp_dir().join(format!("sg-bots-{}.json", uuid_like()));
    std::fs::write(&path, doc.to_string()).map_err(|e| e.to_string())?;
    Ok(path)
}

async fn call(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    token: &str,
    pass: Option<&str>,
    body: Option<Value>,
) -> Result<(u16, Value), String> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let mut req = http.request(method, url).bearer_auth(token);
    if let Some(p) = pass {
        req = req.header("X-Admission-Token", p);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = res.status().as_u16();
    Ok((status, res.json().await.unwrap_or(Value::Null)))
}

async fn call_waitlist(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    pass: Option<&str>,
) -> Result<(u16, Value), String> {
    let url = format!("{base}/api/v1/shows/{SHOW}/waitlist");
    call(http, "POST", &url, token, pass, Some(json!({"quantity": 2}))).await
}

/// Joins the room and waits for the admission; answers its token.
async fn admitted(http: &reqwest::Client, base: &str, token: &str) -> Result<String, String> {
    let join = call(
        http,
        "POST",
        &format!("{base}/api/v1/waitrooms/{SHOW}/join"),
        token,
        None,
        Some(json!({})),
    )
    .await?;
    if join.0 != 200 {
        return Err(format!("join: {join:?}"));
    }
    for _ in 0..200 {
        let me = call(
            http,
            "GET",
            &format!("{base}/api/v1/waitrooms/{SHOW}/me"),
            token,
            None,
            None,
        )
        .await?;
        if me.1["state"] == "ADMITTED" {
            return me.1["admissionToken"]
                .as_str()
                .map(str::to_owned)
                .ok_or("no token".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err("a shopper was not admitted within 10 s".into())
}

/// Each holder holds the next pair with their admission: the show sells out.
async fn hold_every_pair(
    http: &reqwest::Client,
    base: &str,
    holders: &[String],
    passes: &[String],
    token: &impl Fn(&str) -> Result<String, String>,
) -> Result<Vec<(String, Vec<String>)>, String> {
    let mut holds = Vec::with_capacity(holders.len());
    for (i, (u, pass)) in holders.iter().zip(passes).enumerate() {
        let seats = vec![format!("A{}", 2 * i + 1), format!("A{}", 2 * i + 2)];
        let body = json!({"showId": SHOW, "seatIds": seats});
        let res = call(
            http,
            "POST",
            &format!("{base}/api/v1/holds"),
            &token(u)?,
            Some(pass),
            Some(body),
        )
        .await?;
        let id = res.1["holdId"].as_str().ok_or(format!("hold for {u}: {res:?}"))?;
        holds.push((id.to_owned(), seats));
    }
    Ok(holds)
}

/// The waiter's offer, once made (5 s at most): its seats, sorted.
async fn offered(http: &reqwest::Client, base: &str, token: &str) -> Result<Option<Vec<String>>, String> {
    for _ in 0..100 {
        let me = call(
            http,
            "GET",
            &format!("{base}/api/v1/shows/{SHOW}/waitlist/me"),
            token,
            None,
            None,
        )
        .await?;
        if me.1["state"] == "OFFERED" {
            let mut seats: Vec<String> = serde_json::from_value(me.1["seatIds"].clone()).unwrap_or_default();
            seats.sort();
            return Ok(Some(seats));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(None)
}

/// One bot: every door in turn, as fast as answers come, until `stop`.
async fn bot(
    http: reqwest::Client,
    base: String,
    token: String,
    borrowed: String,
    seats: usize,
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
) {
    let holds = format!("{base}/api/v1/holds");
    let mut turn = 0usize;
    while !stop.load(Ordering::Acquire) {
        let pair = {
            let a = 1 + (turn * 7) % seats.max(2);
            json!([format!("A{a}"), format!("A{}", a % seats.max(2) + 1)])
        };
        let (door, answer) = match turn % 4 {
            0 => (
                "hold by id",
                call(
                    &http,
                    "POST",
                    &holds,
                    &token,
                    None,
                    Some(json!({"showId": SHOW, "seatIds": pair})),
                )
                .await,
            ),
            1 => (
                "best available",
                call(
                    &http,
                    "POST",
                    &holds,
                    &token,
                    None,
                    Some(json!({"showId": SHOW, "quantity": 2})),
                )
                .await,
            ),
            2 => ("waiting list", call_waitlist(&http, &base, &token, None).await),
            _ => (
                "borrowed pass",
                call(
                    &http,
                    "POST",
                    &holds,
                    &token,
                    Some(&borrowed),
                    Some(json!({"showId": SHOW, "seatIds": pair})),
                )
                .await,
            ),
        };
        turn += 1;
        let Ok((status, body)) = answer else { continue };
        let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
        *t.answers.entry((door, status)).or_default() += 1;
        if status == 201 {
            if let Some(list) = body["seatIds"].as_array() {
                t.seats
                    .extend(list.iter().filter_map(|s| s.as_str().map(str::to_owned)));
            } else {
                t.seats.push(format!("{door}: {body}"));
            }
        }
    }
}

fn report(t: &Tally, holders: usize, returned_in: Duration) {
    println!(
        "  {} pairs given back one at a time in {:.1} s while the bots tried:",
        holders,
        returned_in.as_secs_f64()
    );
    for ((door, status), n) in &t.answers {
        println!("    {door:<16} {status}: {n}");
    }
    println!("  seats to bots: {}", t.seats.len());
}
