//! The flash-sale scenario: N shoppers join a gated show at full speed, M of
//! them wait on live queue sockets, the rest poll, admission runs at R per
//! second, admitted shoppers race for the seats and pay. Then a report.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use rand::Rng;
use serde_json::{Value, json};
use showgate::auth::Tokens;
use showgate::config::DEV_JWT_SECRET;
use tokio::sync::Semaphore;

use crate::server::Server;
use crate::swarm;

/// A socket shopper's admission: (tick time from expiresAt - ttl, admission token, received at).
type Admission = (i64, String, i64);

pub struct Params {
    pub shoppers: usize,
    pub sockets: usize,
    pub rate: f64,
    pub nodes: usize,
    pub max_seconds: u64,
    pub concurrency: usize,
    pub redis_url: String,
    pub database_url: Option<String>,
    pub server_bin: std::path::PathBuf,
    /// Shoppers ask for "best available: 2" instead of clicking two seats.
    pub best: bool,
}

/// Latencies of one step, in microseconds.
pub struct Step(Mutex<Histogram<u64>>);

impl Step {
    pub fn new() -> Self {
        Self(Mutex::new(
            Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid bounds"),
        ))
    }
    pub fn record(&self, d: Duration) {
        let _ = self.0.lock().unwrap().record(d.as_micros().max(1) as u64);
    }
    pub fn line(&self, name: &str) -> String {
        let h = self.0.lock().unwrap();
        if h.is_empty() {
            return format!("  {name:<28} n=0");
        }
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        format!(
            "  {name:<28} n={:<8} p50 {:>8.2} ms  p95 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms",
            h.len(),
            ms(0.5),
            ms(0.95),
            ms(0.99),
            h.max() as f64 / 1000.0
        )
    }
}

fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

pub async fn run(p: Params) -> Result<(), String> {
    let run_id = format!("fs{}", epoch_ms() % 1_000_000_000);
    let prefix = format!("sgload:{run_id}:");
    let mut envs = vec![
        ("REDIS_URL".to_owned(), p.redis_url.clone()),
        ("REDIS_KEY_PREFIX".to_owned(), prefix.clone()),
        ("ABANDON_AFTER_SECONDS".to_owned(), "600".to_owned()),
        ("WS_PING_SECONDS".to_owned(), "60".to_owned()),
    ];
    if let Some(db) = &p.database_url {
        envs.push(("DATABASE_URL".into(), db.clone()));
    }
    let mut nodes = Vec::new();
    for _ in 0..p.nodes.max(1) {
        nodes.push(Server::start(&p.server_bin, &envs).await?);
    }
    let bases: Vec<String> = nodes.iter().map(|n| format!("http://{}", n.addr)).collect();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(p.concurrency)
        .build()
        .map_err(|e| e.to_string())?;
    let tokens = Arc::new(Tokens::new(DEV_JWT_SECRET));
    let admin = tokens.issue("loadtest-ops", true, 3600).map_err(|e| e.to_string())?;
    let show = future_show(&http, &bases[0], "inox-imax").await?;
    let map: Value = get_json(&http, &format!("{}/api/v1/shows/{show}/seatmap", bases[0]), None).await?;
    let sellable: Vec<String> = map["seats"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter(|s| s["status"] == "AVAILABLE")
                .filter_map(|s| s["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let room_url = format!("{}/api/v1/admin/waitrooms/{show}", bases[0]);
    let burst = (p.rate / 10.0).ceil().max(1.0) as u64;
    let put = http.put(&room_url).bearer_auth(&admin).json(&json!({"admitRatePerSecond": p.rate, "burst": burst, "maxActive": 1_000_000, "admissionTtlSeconds": 600, "paused": true})).send().await.map_err(|e| e.to_string())?;
    if !put.status().is_success() {
        return Err(format!("configuring the room: {}", put.status()));
    }
    let rss_before: u64 = nodes.iter().map(Server::rss).sum();
    println!(
        "flash-sale {run_id}: {} shoppers ({} on sockets), admission {}/s, {} node(s), show {show} with {} seats for sale",
        p.shoppers,
        p.sockets,
        p.rate,
        nodes.len(),
        sellable.len()
    );

    // 1. Joins at full speed.
    let join_step = Arc::new(Step::new());
    let failed = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(Semaphore::new(p.concurrency));
    let started = Instant::now();
    let mut handles = Vec::with_capacity(p.shoppers);
    for i in 0..p.shoppers {
        let permit = gate.clone().acquire_owned().await.map_err(|e| e.to_string())?;
        let (http, tokens, step, failed) = (http.clone(), tokens.clone(), join_step.clone(), failed.clone());
        let url = format!("{}/api/v1/waitrooms/{show}/join", bases[i % bases.len()]);
        let user = format!("{run_id}-u{i}");
        handles.push(tokio::spawn(async move {
            let _permit = permit;
            let token = tokens.issue(&user, false, 3600).unwrap_or_default();
            let t = Instant::now();
            match http.post(&url).bearer_auth(token).send().await {
                Ok(r) if r.status().is_success() => step.record(t.elapsed()),
                _ => {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    let join_secs = started.elapsed().as_secs_f64();

    // 2. The first M shoppers in line wait on sockets, spread over the nodes.
    let admitted_at: Arc<Mutex<HashMap<usize, Admission>>> = Arc::default();
    let tally = Arc::new(swarm::Tally::default());
    let per_node = p.sockets.div_ceil(nodes.len());
    for (n, node) in nodes.iter().enumerate() {
        let lo = n * per_node;
        let hi = ((n + 1) * per_node).min(p.sockets);
        if lo >= hi {
            continue;
        }
        let record = admitted_at.clone();
        let toks: Vec<String> = (lo..hi)
            .map(|i| tokens.issue(&format!("{run_id}-u{i}"), false, 3600).unwrap_or_default())
            .collect();
        let on: swarm::OnMessage = Arc::new(move |i, v, _| {
            if v["type"] == "admitted" {
                let token = v["admissionToken"].as_str().unwrap_or_default().to_owned();
                let expires = v["expiresAt"].as_str().and_then(parse_ms).unwrap_or_default();
                record.lock().unwrap().insert(lo + i, (expires, token, epoch_ms()));
            }
        });
        let paths: Vec<String> = toks
            .iter()
            .map(|t| format!("/api/v1/waitrooms/{show}/ws?access_token={t}"))
            .collect();
        swarm::open_paths(
            node.addr,
            paths,
            tally.clone(),
            on,
            Duration::from_secs(p.max_seconds + 60),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_sockets: u64 = nodes.iter().map(Server::rss).sum();

    // 3. Admission opens; admitted shoppers race for the seats.
    let hold_step = Arc::new(Step::new());
    let order_step = Arc::new(Step::new());
    let pay_step = Arc::new(Step::new());
    let notify_step = Arc::new(Step::new());
    let sold = Arc::new(AtomicU64::new(0));
    let conflicts = Arc::new(AtomicU64::new(0));
    http.put(&room_url)
        .bearer_auth(&admin)
        .json(&json!({"paused": false}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let opened = Instant::now();
    let room0: Value = get_json(&http, &room_url, Some(&admin)).await?;
    let a0 = room0["admittedTotal"].as_u64().unwrap_or_default();
    let mut buyers: HashMap<usize, bool> = HashMap::new();
    let mut poll_cursor = p.sockets;
    let seats = Arc::new(sellable.clone());
    let ttl_ms = 600_000i64;
    let mut racing = Vec::new();
    while opened.elapsed() < Duration::from_secs(p.max_seconds) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Socket shoppers who were told they are in.
        let ready: Vec<(usize, Admission)> = admitted_at
            .lock()
            .unwrap()
            .iter()
            .filter(|(i, _)| !buyers.contains_key(i))
            .map(|(i, v)| (*i, v.clone()))
            .collect();
        for (i, (expires, token, received)) in ready {
            buyers.insert(i, true);
            notify_step.record(Duration::from_millis((received - (expires - ttl_ms)).max(0) as u64));
            racing.push(tokio::spawn(race(
                http.clone(),
                bases[i % bases.len()].clone(),
                show.clone(),
                tokens.issue(&format!("{run_id}-u{i}"), false, 3600).unwrap_or_default(),
                token,
                seats.clone(),
                [hold_step.clone(), order_step.clone(), pay_step.clone()],
                sold.clone(),
                conflicts.clone(),
                p.best,
            )));
        }
        // Polling shoppers: those next in line beyond the sockets poll.
        let room: Value = get_json(&http, &room_url, Some(&admin)).await?;
        let admitted_total = room["admittedTotal"].as_u64().unwrap_or_default() as usize;
        while poll_cursor < p.shoppers && poll_cursor < admitted_total {
            let i = poll_cursor;
            poll_cursor += 1;
            let user = tokens.issue(&format!("{run_id}-u{i}"), false, 3600).unwrap_or_default();
            let me: Value = match http
                .get(format!("{}/api/v1/waitrooms/{show}/me", bases[i % bases.len()]))
                .bearer_auth(&user)
                .send()
                .await
            {
                Ok(r) => r.json().await.unwrap_or_default(),
                Err(_) => continue,
            };
            if me["state"] == "ADMITTED" {
                let adm = me["admissionToken"].as_str().unwrap_or_default().to_owned();
                racing.push(tokio::spawn(race(
                    http.clone(),
                    bases[i % bases.len()].clone(),
                    show.clone(),
                    user,
                    adm,
                    seats.clone(),
                    [hold_step.clone(), order_step.clone(), pay_step.clone()],
                    sold.clone(),
                    conflicts.clone(),
                    p.best,
                )));
            }
        }
        if room["soldOut"] == true || (room["queueLength"] == 0 && admitted_total >= p.shoppers) {
            break;
        }
    }
    let window = opened.elapsed().as_secs_f64();
    let room1: Value = get_json(&http, &room_url, Some(&admin)).await?;
    for r in racing {
        let _ = tokio::time::timeout(Duration::from_secs(30), r).await;
    }
    let a1 = room1["admittedTotal"].as_u64().unwrap_or_default();
    let map: Value = get_json(&http, &format!("{}/api/v1/shows/{show}/seatmap", bases[0]), None).await?;
    let booked = map["seats"]
        .as_array()
        .map(|s| s.iter().filter(|s| s["status"] == "BOOKED").count())
        .unwrap_or_default();

    println!(
        "\njoins: {} in {:.2} s = {:.0} joins/s ({} failed)",
        p.shoppers,
        join_secs,
        p.shoppers as f64 / join_secs,
        failed.load(Ordering::Relaxed)
    );
    println!(
        "admission: {} admitted in {:.1} s = {:.2}/s observed, {} configured (server's view: {}/s)",
        a1 - a0,
        window,
        (a1 - a0) as f64 / window,
        p.rate,
        room1["observedAdmitRate"]
    );
    println!(
        "sockets: {} connected, {} failed",
        tally.connected.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed)
    );
    println!("per step:");
    for (name, step) in [
        ("join", &join_step),
        ("admission tick → socket", &notify_step),
        ("hold", &hold_step),
        ("order", &order_step),
        ("pay", &pay_step),
    ] {
        println!("{}", step.line(name));
    }
    println!(
        "seats ({}): {} sold of {} for sale ({} holds answered 409 on the way){}",
        if p.best {
            "best available, 2 together"
        } else {
            "clicking 2 seats"
        },
        booked,
        sellable.len(),
        conflicts.load(Ordering::Relaxed),
        if room1["soldOut"] == true {
            format!("; sold out {window:.1} s after admission opened")
        } else {
            String::new()
        }
    );
    if let Some(db) = &p.database_url {
        let pool = sqlx::PgPool::connect(db).await.map_err(|e| e.to_string())?;
        let doubles: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT seat FROM orders, unnest(seat_ids) AS seat WHERE show_id = $1 AND status = 'CONFIRMED' GROUP BY seat HAVING count(*) > 1) d",
        )
        .bind(&show)
        .fetch_one(&pool)
        .await
        .map_err(|e| e.to_string())?;
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM booked_seats WHERE show_id = $1")
            .bind(&show)
            .fetch_one(&pool)
            .await
            .map_err(|e| e.to_string())?;
        println!(
            "postgres: {rows} booked seat rows, {} confirmed-seat double bookings (must be 0)",
            doubles
        );
        if doubles != 0 || rows as usize != booked {
            return Err(format!("double bookings: {doubles}, rows {rows} vs seat map {booked}"));
        }
    }
    let rss_after: u64 = nodes.iter().map(Server::rss).sum();
    println!(
        "server RSS: {:.1} MiB before, {:.1} MiB with the sockets, {:.1} MiB at the end; {:.0} bytes per socket",
        rss_before as f64 / 1048576.0,
        rss_sockets as f64 / 1048576.0,
        rss_after as f64 / 1048576.0,
        rss_sockets.saturating_sub(rss_before) as f64 / p.sockets.max(1) as f64
    );
    Ok(())
}

/// GET a JSON document, with a bearer token if given.
/// A demo show of Dune 3 on this screen that has not started.
pub(crate) async fn future_show(http: &reqwest::Client, base: &str, screen: &str) -> Result<String, String> {
    let shows: Value = get_json(http, &format!("{base}/api/v1/movies/dune-3/shows"), None).await?;
    let now = chrono_now();
    Ok(shows["shows"]
        .as_array()
        .and_then(|s| {
            s.iter()
                .find(|s| s["screenId"] == screen && s["startTime"].as_str().is_some_and(|t| t > now.as_str()))
        })
        .and_then(|s| s["id"].as_str())
        .ok_or("no future flash-sale show in the demo catalog")?
        .to_owned())
}

pub(crate) async fn get_json(http: &reqwest::Client, url: &str, token: Option<&str>) -> Result<Value, String> {
    let mut req = http.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())
}

#[allow(clippy::too_many_arguments)]
async fn race(
    http: reqwest::Client,
    base: String,
    show: String,
    user: String,
    admission: String,
    seats: Arc<Vec<String>>,
    steps: [Arc<Step>; 3],
    sold: Arc<AtomicU64>,
    conflicts: Arc<AtomicU64>,
    best: bool,
) {
    // Best available: two seats together, or as many together as are left.
    let mut quantity = 2u64;
    let mut want: Vec<String> = {
        let mut rng = rand::rng();
        let a = rng.random_range(0..seats.len());
        vec![seats[a].clone(), seats[(a + 1) % seats.len()].clone()]
    };
    for _ in 0..3 {
        let t = Instant::now();
        let res = match http
            .post(format!("{base}/api/v1/holds"))
            .bearer_auth(&user)
            .header("X-Admission-Token", &admission)
            .json(&if best {
                json!({"showId": show, "quantity": quantity})
            } else {
                json!({"showId": show, "seatIds": want})
            })
            .send()
            .await
        {
            Ok(r) => r,
            Err(_) => return,
        };
        steps[0].record(t.elapsed());
        let status = res.status();
        let body: Value = res.json().await.unwrap_or_default();
        if status == 409 && best {
            conflicts.fetch_add(1, Ordering::Relaxed);
            quantity = quantity.min(body["error"]["largestBlock"].as_u64().unwrap_or(0));
            if quantity == 0 {
                return;
            }
            continue;
        }
        if status == 409 {
            conflicts.fetch_add(1, Ordering::Relaxed);
            let avail: Vec<String> = body["error"]["available"]
                .as_array()
                .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            if avail.is_empty() {
                return;
            }
            let a = rand::rng().random_range(0..avail.len());
            want = avail[a..(a + 2).min(avail.len())].to_vec();
            continue;
        }
        let Some(hold) = body["holdId"].as_str() else { return };
        let got = body["seatIds"].as_array().map_or(want.len(), Vec::len);
        let t = Instant::now();
        let order: Value = match http
            .post(format!("{base}/api/v1/orders"))
            .bearer_auth(&user)
            .json(&json!({"holdId": hold}))
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => return,
        };
        steps[1].record(t.elapsed());
        let Some(id) = order["orderId"].as_str() else { return };
        let t = Instant::now();
        let paid: Value = match http
            .post(format!("{base}/api/v1/orders/{id}/confirm-payment"))
            .bearer_auth(&user)
            .json(&json!({"outcome": "SUCCESS"}))
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => return,
        };
        steps[2].record(t.elapsed());
        if paid["status"] == "CONFIRMED" {
            sold.fetch_add(got as u64, Ordering::Relaxed);
        }
        return;
    }
}

fn chrono_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn parse_ms(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_expiry_times_parse_to_epoch_millis() {
        assert_eq!(parse_ms("1970-01-01T00:00:01.500Z"), Some(1500));
        assert_eq!(parse_ms("not a time"), None);
    }
}
