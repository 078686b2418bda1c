//! `sg-load chaos`: a flash sale on two or three gateways, a Redis (a
//! primary with a replica behind one address, or a Cluster) and Postgres,
//! while a scheduler kills, restarts, fails over, silences and pauses them
//! in turn. After each fault a probe measures how long until a seat held
//! through every gateway shows on every gateway's open seat map; at the end
//! the run checks what must survive any fault:
//!
//! - no seat sold twice (Postgres), and every order a shopper was told is
//!   confirmed still is, with the same seats (or cancelled, if they did);
//! - every seat's final state the same on every gateway's seat map and in
//!   every open seat socket, and equal to Postgres: booked seats `BOOKED`,
//!   every other seat (held, offered, ordered and left) back `AVAILABLE`;
//! - seat sockets never sent a gap or another epoch's delta;
//! - within each room epoch the queue admitted in the order of joining and
//!   nobody twice, and an open queue socket told its shopper of admission;
//! - no answer was a 500 (503 while a dependency is down is retried).
//!
//! Loopback only, bounded in time; it stops by itself.

mod api;
mod faults;
mod ledger;
mod rig;
mod sale;
mod verdict;
mod viewers;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use showgate::auth::Tokens;
use showgate::config::DEV_JWT_SECRET;

use self::api::Api;
pub use self::faults::Fault;
use self::ledger::{Expect, Ledger, wall_ms};
pub use self::rig::Backend;
use self::rig::{Rig, Settings};
use self::sale::Sale;
use self::viewers::SharedView;

const SALE: &str = "chaos-sale";
const PROBE: &str = "chaos-probe";
/// The gateways' clocks for the run: short, so that every hold, offer and
/// unpaid order ends within the settling time.
const HOLD_TTL_SECONDS: u64 = 20;
const ORDER_TTL_SECONDS: u64 = 30;
const OFFER_SECONDS: u64 = 15;
const ADMISSION_TTL_SECONDS: u64 = 90;

#[derive(clap::Args)]
pub struct Params {
    /// Seconds of sale under faults (the settling and the verdict come after).
    #[arg(long, default_value_t = 120)]
    pub seconds: u64,
    /// Seconds between the starts of two faults.
    #[arg(long, default_value_t = 20)]
    pub fault_every: u64,
    #[arg(long, value_enum, default_value = "redis")]
    pub backend: Backend,
    /// The faults to take in turn (default: every one the backend allows).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub faults: Vec<Fault>,
    /// Gateways (2 or 3).
    #[arg(long, default_value_t = 3)]
    pub gateways: usize,
    /// Shoppers at once (each a new user after the last one's visit).
    #[arg(long, default_value_t = 40)]
    pub shoppers: usize,
    /// Open seat maps of the sale per gateway.
    #[arg(long, default_value_t = 3)]
    pub viewers: usize,
    /// Seats in the hall (rows of 20).
    #[arg(long, default_value_t = 200)]
    pub seats: usize,
    /// The room's admissions a second.
    #[arg(long, default_value_t = 5.0)]
    pub admit_rate: f64,
    /// The Postgres server (a database of the run's own is made and dropped).
    #[arg(
        long,
        env = "TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    pub postgres: String,
    #[arg(long, default_value = "target/release/showgate")]
    pub server_bin: PathBuf,
}

/// One injected fault and what it cost.
struct FaultRun {
    fault: Fault,
    at_s: f64,
    /// From the fault's start until a probe held a seat through every
    /// gateway and every gateway's seat socket showed it (None: not within 60 s).
    recovered: Option<Duration>,
    /// Requests of shoppers that got no answer or a 5xx meanwhile (retried),
    /// and of those, the ones without any answer.
    shopper_failures: usize,
    unanswered: usize,
    window_ms: (i64, i64),
}

pub fn check(p: &Params) -> Result<(), String> {
    if !(10..=7_200).contains(&p.seconds) || !(5..=600).contains(&p.fault_every) {
        return Err("chaos takes 10 to 7,200 seconds and a fault every 5 to 600 seconds".into());
    }
    if !(2..=3).contains(&p.gateways) || !(1..=500).contains(&p.shoppers) || p.viewers > 50 {
        return Err("chaos takes 2 or 3 gateways, 1 to 500 shoppers and at most 50 viewers per gateway".into());
    }
    if !(20..=2_000).contains(&p.seats) || !(0.1..=1_000.0).contains(&p.admit_rate) {
        return Err("chaos takes 20 to 2,000 seats and 0.1 to 1,000 admissions a second".into());
    }
    if let Some(f) = p.faults.iter().find(|f| !f.applies_to(p.backend)) {
        return Err(format!("{f:?} cannot be done to a {:?} backend", p.backend));
    }
    Ok(())
}

pub async fn run(p: Params) -> Result<(), String> {
    check(&p)?;
    let kinds: Vec<Fault> = if p.faults.is_empty() {
        Fault::ALL.into_iter().filter(|f| f.applies_to(p.backend)).collect()
    } else {
        p.faults.clone()
    };
    let catalog = write_catalog(p.seats)?;
    let gateway_env = vec![
        ("HOLD_TTL_SECONDS".to_owned(), HOLD_TTL_SECONDS.to_string()),
        ("ORDER_TTL_SECONDS".to_owned(), ORDER_TTL_SECONDS.to_string()),
        ("WAITLIST_OFFER_SECONDS".to_owned(), OFFER_SECONDS.to_string()),
        ("SHUTDOWN_GRACE_SECONDS".to_owned(), "5".to_owned()),
        ("ABANDON_AFTER_SECONDS".to_owned(), "30".to_owned()),
    ];
    let mut rig = Rig::start(Settings {
        backend: p.backend,
        gateways: p.gateways,
        postgres: &p.postgres,
        server_bin: &p.server_bin,
        catalog: &catalog,
        show: SALE,
        gateway_env,
    })
    .await?;
    let outcome = soak(&p, &kinds, &mut rig).await;
    rig.finish().await;
    let _ = std::fs::remove_file(&catalog);
    outcome
}

async fn soak(p: &Params, kinds: &[Fault], rig: &mut Rig) -> Result<(), String> {
    let started = Instant::now();
    let tokens = Arc::new(Tokens::new(DEV_JWT_SECRET));
    let api = Api::new(rig.nodes.clone(), started)?;
    let probe_api = Api::new(rig.nodes.clone(), started)?;
    let admin = tokens.issue("chaos-ops", true, 7_200).map_err(|e| e.to_string())?;
    let room = json!({"admitRatePerSecond": p.admit_rate, "burst": p.admit_rate.ceil() as u64,
        "maxActive": p.shoppers.div_ceil(2).max(2), "admissionTtlSeconds": ADMISSION_TTL_SECONDS});
    let (s, v) = api
        .call(
            0,
            Method::PUT,
            &format!("/api/v1/admin/waitrooms/{SALE}"),
            Some(&admin),
            None,
            Some(&room),
        )
        .await?;
    if s != 200 {
        return Err(format!("configuring the room: {s} {v}"));
    }
    println!(
        "sg-load chaos: {} gateways on {:?} + Postgres, {} shoppers at once, {} seat maps per gateway, {} seats, admission {}/s; {} s of sale, a fault every {} s: {:?}",
        p.gateways, p.backend, p.shoppers, p.viewers, p.seats, p.admit_rate, p.seconds, p.fault_every, kinds
    );

    let ledger = Arc::new(Ledger::default());
    let watching = Arc::new(AtomicBool::new(false));
    let stop_views = Arc::new(AtomicBool::new(false));
    let mut sale_views: Vec<(usize, SharedView)> = Vec::new();
    let mut probe_views: Vec<(usize, SharedView)> = Vec::new();
    for slot in 0..p.gateways {
        for _ in 0..p.viewers {
            let v = viewers::follow(rig.nodes.clone(), slot, SALE.into(), ledger.clone(), stop_views.clone());
            sale_views.push((slot, v));
        }
        let v = viewers::follow(
            rig.nodes.clone(),
            slot,
            PROBE.into(),
            ledger.clone(),
            stop_views.clone(),
        );
        probe_views.push((slot, v));
    }
    let probe_seats = seat_ids(&api, PROBE).await?;

    let sale = Arc::new(Sale {
        api: api.clone(),
        ledger: ledger.clone(),
        tokens: tokens.clone(),
        show: SALE.into(),
        admission_ttl_ms: ADMISSION_TTL_SECONDS as i64 * 1_000,
        stop: watching.clone(),
        next_user: AtomicUsize::new(0),
    });
    let shoppers: Vec<_> = (0..p.shoppers)
        .map(|i| tokio::spawn(sale.clone().shop(i % p.gateways)))
        .collect();

    let plan = faults::schedule(
        kinds,
        Duration::from_secs(p.seconds),
        Duration::from_secs(p.fault_every),
    );
    let mut runs = Vec::new();
    let mut probe_round = 0usize;
    for (n, (at, fault)) in plan.into_iter().enumerate() {
        tokio::time::sleep_until((started + at).into()).await;
        let t0 = Instant::now();
        let w0 = wall_ms();
        let from_ms = api.now_ms();
        let what = rig.inject(fault, n).await?;
        let recovered = probe(&probe_api, &tokens, &probe_views, &probe_seats, &mut probe_round, t0).await;
        let until_ms = api.now_ms();
        let failed: Vec<api::Failure> = api
            .failures()
            .into_iter()
            .filter(|f| (from_ms..=until_ms).contains(&f.at_ms))
            .collect();
        let shopper_failures = failed.len();
        let unanswered = failed.iter().filter(|f| f.status == 0).count();
        println!(
            "  {:>6.1} s  {fault:?}: {what}; {}; shoppers saw {shopper_failures} failed tries ({unanswered} unanswered)",
            at.as_secs_f64(),
            match recovered {
                Some(d) => format!(
                    "seat held through every gateway, on every seat map, {:.1} s after",
                    d.as_secs_f64()
                ),
                None => "NOT recovered within 60 s".to_owned(),
            }
        );
        runs.push(FaultRun {
            fault,
            at_s: at.as_secs_f64(),
            recovered,
            shopper_failures,
            unanswered,
            window_ms: (w0, wall_ms()),
        });
    }
    tokio::time::sleep_until((started + Duration::from_secs(p.seconds)).into()).await;

    // The sale ends: shoppers finish the step they are on and leave.
    watching.store(true, Ordering::Relaxed);
    for s in shoppers {
        let _ = tokio::time::timeout(Duration::from_secs(60), s).await;
    }
    let end_ms = wall_ms();
    println!(
        "  sale over at {:.0} s; settling (holds, offers and unpaid orders end)",
        started.elapsed().as_secs_f64()
    );
    let pool = sqlx::PgPool::connect(&rig.database_url)
        .await
        .map_err(|e| e.to_string())?;
    let settled = settle(&api, &pool, &sale_views).await?;
    stop_views.store(true, Ordering::Relaxed);

    let mut violations = ledger.with(|b| b.violations.clone());
    violations.extend(settled.broken.iter().cloned());
    violations.extend(sold_twice(&pool).await?);
    violations.extend(orders_kept(&pool, &ledger).await?);
    let losses: Vec<(i64, i64)> = runs
        .iter()
        .filter(|r| r.fault.loses_redis_data(p.backend))
        .map(|r| r.window_ms)
        .collect();
    let queue = ledger.with(|b| verdict::queue_breaks(&b.joins, &b.admissions, &b.left, &losses, end_ms));
    violations.extend(queue);
    for r in &runs {
        if r.recovered.is_none() {
            violations.push(format!("{:?} at {:.0} s: not recovered within 60 s", r.fault, r.at_s));
        }
    }
    report(p, &runs, &ledger, &settled, &violations, started.elapsed());
    if violations.is_empty() {
        Ok(())
    } else {
        Err(format!("{} invariant violation(s)", violations.len()))
    }
}

/// Rounds until one passes (or 60 s from `t0`): through each live gateway,
/// hold a seat of the probe show and wait until every gateway's probe
/// socket shows it `HELD`, then let it go. Answers the time from `t0`.
async fn probe(
    api: &Api,
    tokens: &Tokens,
    views: &[(usize, SharedView)],
    seats: &[String],
    round: &mut usize,
    t0: Instant,
) -> Option<Duration> {
    let limit = t0 + Duration::from_secs(60);
    while Instant::now() < limit {
        if probe_round(api, tokens, views, seats, round, limit).await {
            return Some(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

async fn probe_round(
    api: &Api,
    tokens: &Tokens,
    views: &[(usize, SharedView)],
    seats: &[String],
    round: &mut usize,
    limit: Instant,
) -> bool {
    let live = api.nodes.live();
    if live.len() < api.nodes.len() {
        return false; // a gateway is still on its way back
    }
    for (slot, _) in live {
        *round += 1;
        let seat = &seats[*round % seats.len()];
        let Ok(token) = tokens.issue(&format!("chaos-probe-{slot}"), false, 600) else {
            return false;
        };
        let body = json!({"showId": PROBE, "seatIds": [seat]});
        let Ok((201, hold)) = api
            .call(slot, Method::POST, "/api/v1/holds", Some(&token), None, Some(&body))
            .await
        else {
            return false;
        };
        let shown = async {
            loop {
                let all = views.iter().all(|(_, v)| {
                    let v = v.lock().unwrap();
                    v.in_sync && v.seats.get(seat).is_some_and(|s| s == "HELD")
                });
                if all || Instant::now() > limit {
                    return all;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        .await;
        let id = hold["holdId"].as_str().unwrap_or_default();
        let _ = api
            .call(
                slot,
                Method::DELETE,
                &format!("/api/v1/holds/{id}"),
                Some(&token),
                None,
                None,
            )
            .await;
        if !shown {
            return false;
        }
    }
    true
}

/// The end state after the sale.
struct Settled {
    took: Option<Duration>,
    booked: usize,
    broken: Vec<String>,
}

/// Waits until every gateway's seat map and every open seat socket equal
/// Postgres (booked seats `BOOKED`, all else `AVAILABLE`), for as long as
/// the longest hold, offer and unpaid order can last and a minute more.
async fn settle(api: &Api, pool: &sqlx::PgPool, views: &[(usize, SharedView)]) -> Result<Settled, String> {
    let t0 = Instant::now();
    let limit = Duration::from_secs(HOLD_TTL_SECONDS.max(ORDER_TTL_SECONDS).max(OFFER_SECONDS) + 60);
    loop {
        let booked: Vec<String> = sqlx::query_scalar("SELECT seat_id FROM booked_seats WHERE show_id = $1")
            .bind(SALE)
            .fetch_all(pool)
            .await
            .map_err(|e| e.to_string())?;
        let booked: std::collections::HashSet<String> = booked.into_iter().collect();
        let want = |seat: &str| if booked.contains(seat) { "BOOKED" } else { "AVAILABLE" };
        let mut broken = Vec::new();
        for (slot, addr) in api.nodes.live() {
            let path = format!("/api/v1/shows/{SALE}/seatmap");
            match api.call(slot, Method::GET, &path, None, None, None).await {
                Ok((200, map)) => {
                    let wrong: Vec<String> = map["seats"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|s| s["status"].as_str() != Some(want(s["id"].as_str().unwrap_or_default())))
                        .map(|s| {
                            format!(
                                "{}={}",
                                s["id"].as_str().unwrap_or("?"),
                                s["status"].as_str().unwrap_or("?")
                            )
                        })
                        .collect();
                    if !wrong.is_empty() {
                        broken.push(format!(
                            "gateway {slot} ({addr}) seat map differs from Postgres: {}",
                            head(&wrong)
                        ));
                    }
                }
                other => broken.push(format!("gateway {slot}: seat map answered {other:?}")),
            }
        }
        for (i, (slot, view)) in views.iter().enumerate() {
            let v = view.lock().unwrap().clone();
            let wrong: Vec<String> = v
                .seats
                .iter()
                .filter(|(seat, status)| status.as_str() != want(seat))
                .map(|(seat, status)| format!("{seat}={status}"))
                .collect();
            if !v.in_sync {
                broken.push(format!("seat socket {i} on gateway {slot} is not in step"));
            } else if !wrong.is_empty() || v.seats.len() < booked.len() {
                broken.push(format!(
                    "seat socket {i} on gateway {slot} differs from Postgres: {}",
                    head(&wrong)
                ));
            }
        }
        if broken.is_empty() || t0.elapsed() > limit {
            return Ok(Settled {
                took: broken.is_empty().then(|| t0.elapsed()),
                booked: booked.len(),
                broken,
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn head(items: &[String]) -> String {
    let mut shown: Vec<&str> = items.iter().take(8).map(String::as_str).collect();
    if items.len() > 8 {
        shown.push("...");
    }
    format!("{} seat(s): {}", items.len(), shown.join(" "))
}

/// Seats in two confirmed orders, or booked twice (Postgres is the judge).
async fn sold_twice(pool: &sqlx::PgPool) -> Result<Vec<String>, String> {
    let doubles: Vec<String> = sqlx::query_scalar(
        "SELECT seat FROM orders, unnest(seat_ids) AS seat WHERE show_id = $1 AND status = 'CONFIRMED' GROUP BY seat HAVING count(*) > 1",
    )
    .bind(SALE)
    .fetch_all(pool)
    .await
    .map_err(|e| e.to_string())?;
    Ok(doubles
        .into_iter()
        .map(|s| format!("seat {s} is in two confirmed orders"))
        .collect())
}

/// Every order a shopper was told is confirmed is still confirmed with the
/// same seats (or cancelled, where the shopper cancelled it).
async fn orders_kept(pool: &sqlx::PgPool, ledger: &Ledger) -> Result<Vec<String>, String> {
    let paid = ledger.with(|b| b.paid.clone());
    let ids: Vec<uuid::Uuid> = paid.keys().filter_map(|k| k.parse().ok()).collect();
    let rows: Vec<(uuid::Uuid, String, Vec<String>)> =
        sqlx::query_as("SELECT id, status, seat_ids FROM orders WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(pool)
            .await
            .map_err(|e| e.to_string())?;
    let found: HashMap<String, (String, Vec<String>)> = rows
        .into_iter()
        .map(|(id, status, seats)| (id.to_string(), (status, seats)))
        .collect();
    let booked: Vec<(uuid::Uuid, String)> =
        sqlx::query_as("SELECT order_id, seat_id FROM booked_seats WHERE show_id = $1")
            .bind(SALE)
            .fetch_all(pool)
            .await
            .map_err(|e| e.to_string())?;
    let mut owner: HashMap<String, String> = HashMap::new();
    for (order, seat) in booked {
        owner.insert(seat, order.to_string());
    }
    let mut out = Vec::new();
    for (id, order) in &paid {
        let Some((status, seats)) = found.get(id) else {
            out.push(format!("confirmed order {id} is gone from Postgres"));
            continue;
        };
        let fine = match order.expect {
            Expect::Confirmed => status == "CONFIRMED",
            Expect::Cancelled => status == "CANCELLED",
            Expect::ConfirmedOrCancelled => status == "CONFIRMED" || status == "CANCELLED",
        };
        if !fine {
            out.push(format!(
                "order {id} is {status}, the shopper was told {:?}",
                order.expect
            ));
        }
        let (mut told, mut kept) = (order.seats.clone(), seats.clone());
        told.sort();
        kept.sort();
        if told != kept {
            out.push(format!("order {id} has seats {kept:?}, the shopper was told {told:?}"));
        }
        if status == "CONFIRMED" && seats.iter().any(|s| owner.get(s) != Some(id)) {
            out.push(format!("confirmed order {id}'s seats are not all booked to it"));
        }
    }
    Ok(out)
}

async fn seat_ids(api: &Api, show: &str) -> Result<Vec<String>, String> {
    let (s, map) = api
        .call(
            0,
            Method::GET,
            &format!("/api/v1/shows/{show}/seatmap"),
            None,
            None,
            None,
        )
        .await?;
    let seats: Vec<String> = map["seats"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect();
    if s != 200 || seats.is_empty() {
        return Err(format!("the seat map of {show} answered {s}"));
    }
    Ok(seats)
}

fn report(p: &Params, runs: &[FaultRun], ledger: &Ledger, settled: &Settled, violations: &[String], took: Duration) {
    println!("\nfaults ({} injected):", runs.len());
    println!(
        "  {:<24} {:>5} {:>14} {:>14} {:>16} {:>11}",
        "fault", "times", "recovered p50", "recovered max", "shopper retries", "unanswered"
    );
    let mut by_kind: BTreeMap<Fault, Vec<&FaultRun>> = BTreeMap::new();
    for r in runs {
        by_kind.entry(r.fault).or_default().push(r);
    }
    for (kind, rs) in &by_kind {
        let mut secs: Vec<f64> = rs.iter().filter_map(|r| r.recovered.map(|d| d.as_secs_f64())).collect();
        secs.sort_by(f64::total_cmp);
        let p50 = secs.get(secs.len() / 2).map_or("-".to_owned(), |s| format!("{s:.1} s"));
        let max = if secs.len() == rs.len() {
            secs.last().map_or("-".to_owned(), |s| format!("{s:.1} s"))
        } else {
            "not recovered".to_owned()
        };
        let retries: usize = rs.iter().map(|r| r.shopper_failures).sum();
        let unanswered: usize = rs.iter().map(|r| r.unanswered).sum();
        println!(
            "  {:<24} {:>5} {:>14} {:>14} {:>16} {:>11}",
            format!("{kind:?}"),
            rs.len(),
            p50,
            max,
            retries,
            unanswered
        );
    }
    println!("\nthe sale (on {:?}, {} gateways):", p.backend, p.gateways);
    ledger.with(|b| {
        println!("  shoppers joined {}, admitted {}", b.joins.len(), b.admissions.len());
        for (what, n) in &b.counts {
            println!("  {what:<48} {n}");
        }
        let cancelled = b.paid.values().filter(|o| o.expect == Expect::Cancelled).count();
        println!(
            "  orders paid {} (cancelled later by their shopper: {cancelled})",
            b.paid.len()
        );
    });
    println!(
        "  end: {} seats booked in Postgres; every gateway's map and {} seat sockets agreed with it {}",
        settled.booked,
        p.viewers * p.gateways,
        match settled.took {
            Some(d) => format!("{:.1} s after the sale ended", d.as_secs_f64()),
            None => "NEVER".to_owned(),
        }
    );
    println!("\ninvariant violations: {}", violations.len());
    for v in violations.iter().take(40) {
        println!("  - {v}");
    }
    println!("run took {:.0} s", took.as_secs_f64());
}

/// One hall of rows of 20, a sale show and a probe show tomorrow.
fn write_catalog(seats: usize) -> Result<PathBuf, String> {
    let rows: Vec<Value> = (0..seats.div_ceil(20))
        .map(|r| {
            let row = char::from(b'A' + (r % 26) as u8).to_string().repeat(r / 26 + 1);
            json!({"row": row, "seats": (seats - r * 20).min(20)})
        })
        .collect();
    let start = chrono::Utc::now() + chrono::Duration::hours(24);
    let later = start + chrono::Duration::hours(4);
    let doc = json!({
        "movies": [{"id": "chaos-movie", "title": "Chaos Night", "language": "English", "durationMinutes": 120, "genres": ["Thriller"]}],
        "theatres": [{"id": "chaos-hall", "name": "Chaos Hall", "city": "Pune",
            "screens": [{"id": "chaos-1", "name": "Screen 1", "rows": rows}]}],
        "shows": [
            {"id": SALE, "movieId": "chaos-movie", "theatreId": "chaos-hall", "screenId": "chaos-1",
             "startTime": start.to_rfc3339(), "price": "300.00", "currency": "INR"},
            {"id": PROBE, "movieId": "chaos-movie", "theatreId": "chaos-hall", "screenId": "chaos-1",
             "startTime": later.to_rfc3339(), "price": "300.00", "currency": "INR"}],
    });
    let path = std::env::temp_dir().join(format!("sg-chaos-{}.json", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, doc.to_string()).map_err(|e| e.to_string())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hall_has_rows_of_twenty_and_the_rest() {
        let path = write_catalog(45).unwrap();
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        std::fs::remove_file(path).unwrap();
        let rows = doc["theatres"][0]["screens"][0]["rows"].as_array().unwrap();
        let seats: Vec<u64> = rows.iter().map(|r| r["seats"].as_u64().unwrap()).collect();
        assert_eq!(seats, [20, 20, 5]);
        assert_eq!(rows[2]["row"], "C");
    }
}
