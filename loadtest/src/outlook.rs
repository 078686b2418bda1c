//! `sg-load flash-sale --outlook`: is the honest queue honest? Three gated
//! sales of one hall (undersubscribed ½×, balanced 1.2×, oversubscribed 10×)
//! with shoppers whose behaviour is drawn from stated distributions; each
//! waits on a queue socket and keeps the last outlook it was told before
//! its admission (or before the sale ended for it); then whether it got a
//! seat (held one when its turn came). The calibration report (`calibration`) per sale, and exit 1 when a
//! target is missed.
//!
//! The shoppers, on purpose not the server's prior (so the estimate must
//! learn from the sale):
//! - 5 % give up while queued, 2–30 s after joining (`DELETE …/me`);
//! - 15 % of those admitted buy nothing (the admission lapses: 30 s here);
//! - the rest think 0.3–2 s, then ask for the best N seats, N = 1…6 with
//!   P = .10 .30 .20 .30 .05 .05 (mean 3.05); a smaller block if N do not
//!   fit (`largestBlock`), a retry each second (5 at most) while every
//!   seat is held; then order and pay (5 % of payments fail, their seats
//!   come back).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rand::Rng;
use serde_json::{Value, json};
use showgate::auth::Tokens;
use showgate::config::DEV_JWT_SECRET;
use tokio::sync::{Mutex, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use crate::calibration::{self, Told};
use crate::server::Server;

pub struct Params {
    pub redis_url: String,
    pub server_bin: std::path::PathBuf,
    /// The sales to run (all three by default).
    pub sales: Vec<Sale>,
    /// Seconds one sale may take at most.
    pub max_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Sale {
    Undersubscribed,
    Balanced,
    Oversubscribed,
}

impl Sale {
    /// Demand over seats. "Balanced" asks for a fifth more than the hall:
    /// it just sells out, so the back of the line may or may not get seats
    /// (at exactly 1.0 walk-aways and failed payments leave seats over, and
    /// everyone gets one).
    fn ratio(self) -> f64 {
        match self {
            Self::Undersubscribed => 0.5,
            Self::Balanced => 1.2,
            Self::Oversubscribed => 10.0,
        }
    }

    fn rate(self) -> f64 {
        match self {
            Self::Oversubscribed => 60.0,
            _ => 30.0,
        }
    }
}

const GIVE_UP: f64 = 0.05;
const WALK: f64 = 0.15;
const SEATS: [(u64, f64); 6] = [(1, 0.10), (2, 0.30), (3, 0.20), (4, 0.30), (5, 0.05), (6, 0.05)];
const PAYMENT_FAILS: f64 = 0.05;
const ADMISSION_TTL_SECONDS: u64 = 30;

/// Seats one joiner takes on average: the shoppers' own behaviour.
fn seats_per_joiner() -> f64 {
    let mean: f64 = SEATS.iter().map(|(n, p)| *n as f64 * p).sum();
    (1.0 - GIVE_UP) * (1.0 - WALK) * mean
}

fn draw_seats(rng: &mut impl Rng) -> u64 {
    let mut x: f64 = rng.random();
    for (n, p) in SEATS {
        if x < p {
            return n;
        }
        x -= p;
    }
    SEATS[SEATS.len() - 1].0
}

/// What a shopper is, drawn before the sale.
#[derive(Debug, Clone, Copy)]
enum Kind {
    GivesUp { after: Duration },
    Walks,
    Buys { seats: u64, think: Duration },
}

fn draw_kind(rng: &mut impl Rng) -> Kind {
    if rng.random_bool(GIVE_UP) {
        Kind::GivesUp {
            after: Duration::from_millis(rng.random_range(2_000..30_000)),
        }
    } else if rng.random_bool(WALK) {
        Kind::Walks
    } else {
        Kind::Buys {
            seats: draw_seats(rng),
            think: Duration::from_millis(rng.random_range(300..2_000)),
        }
    }
}

struct Sim {
    http: reqwest::Client,
    base: String,
    addr: std::net::SocketAddr,
    show: String,
    tokens: Tokens,
    /// Buyers' records.
    told: Mutex<Vec<Told>>,
    /// Shoppers not done yet.
    open: AtomicUsize,
    stop: tokio_util::sync::CancellationToken,
}

pub async fn run(p: Params) -> Result<(), String> {
    let mut failed = Vec::new();
    for sale in &p.sales {
        let told = run_sale(&p, *sale).await?;
        let misses = report(*sale, &told);
        failed.extend(misses.into_iter().map(|m| format!("{sale:?}: {m}")));
    }
    if failed.is_empty() {
        println!("\noutlook calibration: every target met");
        Ok(())
    } else {
        Err(format!("outlook calibration missed:\n  {}", failed.join("\n  ")))
    }
}

async fn run_sale(p: &Params, sale: Sale) -> Result<Vec<Told>, String> {
    let run_id = format!("ol{}", chrono::Utc::now().timestamp_millis() % 1_000_000_000);
    let envs = vec![
        ("REDIS_URL".to_owned(), p.redis_url.clone()),
        ("REDIS_KEY_PREFIX".to_owned(), format!("sgload:{run_id}:")),
        ("ABANDON_AFTER_SECONDS".to_owned(), "600".to_owned()),
        ("WS_PING_SECONDS".to_owned(), "60".to_owned()),
    ];
    let server = Server::start(&p.server_bin, &envs).await?;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .map_err(|e| e.to_string())?;
    let tokens = Tokens::new(DEV_JWT_SECRET);
    let admin = tokens.issue("loadtest-ops", true, 3600).map_err(|e| e.to_string())?;
    let show = crate::flash::future_show(&http, &base, "inox-imax").await?;
    let map: Value = crate::flash::get_json(&http, &format!("{base}/api/v1/shows/{show}/seatmap"), None).await?;
    let seats = map["seats"]
        .as_array()
        .map_or(0, |s| s.iter().filter(|s| s["status"] == "AVAILABLE").count());
    let shoppers = (sale.ratio() * seats as f64 / seats_per_joiner()).round() as usize;
    let room_url = format!("{base}/api/v1/admin/waitrooms/{show}");
    let room = json!({"admitRatePerSecond": sale.rate(), "burst": (sale.rate() / 10.0).ceil() as u64,
        "maxActive": 100_000, "admissionTtlSeconds": ADMISSION_TTL_SECONDS, "paused": true});
    let put = http
        .put(&room_url)
        .bearer_auth(&admin)
        .json(&room)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !put.status().is_success() {
        return Err(format!("configuring the room: {}", put.status()));
    }
    println!(
        "\n== {sale:?}: {shoppers} shoppers for {seats} seats ({:.1} seats a joiner: demand {:.1}× the hall), admission {}/s",
        seats_per_joiner(),
        sale.ratio(),
        sale.rate()
    );
    let sim = Arc::new(Sim {
        http: http.clone(),
        base: base.clone(),
        addr: server.addr,
        show: show.clone(),
        tokens,
        told: Mutex::new(Vec::new()),
        open: AtomicUsize::new(shoppers),
        stop: tokio_util::sync::CancellationToken::new(),
    });
    // Everyone joins and opens a socket while the room is paused, in order.
    let started = Instant::now();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(shoppers.max(1));
    let gate = Arc::new(Semaphore::new(64));
    let mut tasks = Vec::with_capacity(shoppers);
    for i in 0..shoppers {
        let kind = draw_kind(&mut rand::rng());
        let (sim, ready, gate) = (sim.clone(), ready_tx.clone(), gate.clone());
        let permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
        let user = format!("{run_id}-s{i}");
        tasks.push(tokio::spawn(async move {
            shopper(sim, user, kind, permit, ready).await;
        }));
    }
    drop(ready_tx);
    for _ in 0..shoppers {
        if ready_rx.recv().await.is_none() {
            break;
        }
    }
    println!(
        "  joined and waiting in {:.1} s; admission opens",
        started.elapsed().as_secs_f64()
    );
    let open = http
        .put(&room_url)
        .bearer_auth(&admin)
        .json(&json!({"paused": false}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !open.status().is_success() {
        return Err(format!("opening the room: {}", open.status()));
    }
    let sale_started = Instant::now();
    let deadline = sale_started + Duration::from_secs(p.max_seconds);
    while sim.open.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let left = sim.open.load(Ordering::Acquire);
    sim.stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
    let room: Value = crate::flash::get_json(&http, &room_url, Some(&admin)).await?;
    println!(
        "  sale over in {:.1} s{}; funnel {}; seats left {}",
        sale_started.elapsed().as_secs_f64(),
        if left > 0 {
            format!(" (time limit: {left} shoppers unresolved)")
        } else {
            String::new()
        },
        room["funnel"],
        room["seatsLeft"]
    );
    drop(server);
    let told = std::mem::take(&mut *sim.told.lock().await);
    Ok(told)
}

/// One shopper's sale: join, wait on the socket, and act as drawn.
async fn shopper(
    sim: Arc<Sim>,
    user: String,
    kind: Kind,
    permit: tokio::sync::OwnedSemaphorePermit,
    ready: tokio::sync::mpsc::Sender<()>,
) {
    let done = || sim.open.fetch_sub(1, Ordering::AcqRel);
    let token = sim.tokens.issue(&user, false, 3600).unwrap_or_default();
    let joined = post(
        &sim,
        &token,
        None,
        &format!("/api/v1/waitrooms/{}/join", sim.show),
        json!({}),
    )
    .await;
    let mut last = joined.ok().and_then(|(_, v)| told_of(&v["outlook"]));
    let path = format!("/api/v1/waitrooms/{}/ws?access_token={token}", sim.show);
    let ws = tokio_tungstenite::client_async(format!("ws://{}{path}", sim.addr), connect(&sim).await).await;
    drop(permit);
    let _ = ready.send(()).await;
    let Ok((mut ws, _)) = ws else {
        done();
        return;
    };
    let give_up_at = match kind {
        Kind::GivesUp { after } => tokio::time::Instant::now() + after,
        _ => tokio::time::Instant::now() + Duration::from_secs(86_400),
    };
    let admission = loop {
        let msg = tokio::select! {
            _ = sim.stop.cancelled() => break None,
            _ = tokio::time::sleep_until(give_up_at) => {
                let url = format!("{}/api/v1/waitrooms/{}/me", sim.base, sim.show);
                let _ = sim.http.delete(url).bearer_auth(&token).send().await;
                break None;
            }
            m = ws.next() => m,
        };
        let Some(Ok(Message::Text(text))) = msg else {
            if matches!(msg, Some(Ok(_))) {
                continue;
            }
            break None;
        };
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        match v["type"].as_str() {
            Some("position") => last = told_of(&v["outlook"]).or(last),
            Some("admitted") => break v["admissionToken"].as_str().map(str::to_owned),
            Some("soldOut") => break None,
            _ => break None,
        }
    };
    let _ = ws.close(None).await;
    let got = match (kind, &admission) {
        (Kind::Buys { seats, think }, Some(admission)) => {
            tokio::time::sleep(think).await;
            buy(&sim, &token, admission, seats).await
        }
        _ => false,
    };
    // Buyers are scored, whether or not their turn came.
    if let (Kind::Buys { .. }, Some(mut told)) = (kind, last) {
        told.got = got;
        sim.told.lock().await.push(told);
    }
    done();
}

async fn connect(sim: &Sim) -> tokio::net::TcpStream {
    loop {
        match tokio::net::TcpStream::connect(sim.addr).await {
            Ok(s) => return s,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

fn told_of(o: &Value) -> Option<Told> {
    Some(Told {
        chance: o["chance"].as_f64()?,
        band: o["band"].as_str()?.to_owned(),
        seats_left: o["seatsLeft"].as_i64().unwrap_or(0),
        ahead: o["aheadOfYou"].as_u64(),
        got: false,
    })
}

async fn post(
    sim: &Sim,
    token: &str,
    admission: Option<&str>,
    path: &str,
    body: Value,
) -> Result<(u16, Value), String> {
    let mut req = sim
        .http
        .post(format!("{}{path}", sim.base))
        .bearer_auth(token)
        .json(&body);
    if let Some(a) = admission {
        req = req.header("X-Admission-Token", a);
    }
    let res = req.send().await.map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    Ok((status, res.json().await.unwrap_or(Value::Null)))
}

/// Best N (or the largest block left), order, pay. Answers whether the
/// shopper held seats.
async fn buy(sim: &Sim, token: &str, admission: &str, mut seats: u64) -> bool {
    let mut waits = 0;
    let hold = loop {
        let body = json!({"showId": sim.show, "quantity": seats});
        let Ok((status, v)) = post(sim, token, Some(admission), "/api/v1/holds", body).await else {
            return false;
        };
        match (status, v["error"]["code"].as_str()) {
            (201, _) => break v["holdId"].as_str().map(str::to_owned),
            (409, Some("NOT_ENOUGH_SEATS")) => match v["error"]["largestBlock"].as_u64() {
                Some(block) if block > 0 => seats = block.min(seats),
                _ if waits < 5 && !sim.stop.is_cancelled() => {
                    // Every seat held: some may come back.
                    waits += 1;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                _ => break None,
            },
            _ => break None,
        }
    };
    // A seat was free when their turn came: what the outlook forecast.
    // Paying is the shopper's own affair (a failed payment's seats come
    // back to the sale all the same).
    let Some(hold) = hold else { return false };
    let Ok((201 | 200, order)) = post(sim, token, None, "/api/v1/orders", json!({"holdId": hold})).await else {
        return false;
    };
    let Some(order) = order["orderId"].as_str() else {
        return false;
    };
    let fails = rand::rng().random_bool(PAYMENT_FAILS);
    let outcome = if fails { "FAILURE" } else { "SUCCESS" };
    let body = json!({"paymentReference": format!("sim-{order}"), "outcome": outcome});
    let _ = post(
        sim,
        token,
        None,
        &format!("/api/v1/orders/{order}/confirm-payment"),
        body,
    )
    .await;
    true
}

/// One calibration table: buyers, mean told chance and share who got seats.
fn print_table(by: &str, rows: Vec<calibration::Row>) {
    println!("  {by:<10} {:>6} {:>10} {:>10}", "buyers", "told", "got");
    for r in rows {
        println!(
            "  {:<10} {:>6} {:>9.1}% {:>9.1}%",
            r.label,
            r.n,
            r.mean_told * 100.0,
            r.share_got * 100.0
        );
    }
}

/// Prints the sale's calibration; answers the targets it missed.
fn report(sale: Sale, told: &[Told]) -> Vec<String> {
    let rate = calibration::base_rate(told);
    println!("  buyers scored: {} (got a seat: {:.1} %)", told.len(), rate * 100.0);
    print_table("band", calibration::by_band(told));
    print_table(
        "decile",
        calibration::by_decile(told).into_iter().filter(|r| r.n > 0).collect(),
    );
    println!(
        "  ECE {:.3}   Brier: outlook {:.4}, seats ≥ 2 × ahead {:.4}, base rate {:.4}",
        calibration::ece(told),
        calibration::brier(told, |t| t.chance),
        calibration::brier(told, calibration::rule_of_two),
        calibration::brier(told, |_| rate)
    );
    let misses = calibration::failures(told, sale == Sale::Undersubscribed);
    for m in &misses {
        println!("  MISSED: {m}");
    }
    misses
}
