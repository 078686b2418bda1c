//! The shopper's HTTP journey as Goose scenarios: browsers read the catalog
//! and seat maps; buyers join the show's waiting room, poll until admitted,
//! hold seats, order and pay. Goose reports p50/p95/p99 per step.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use goose::config::GooseConfiguration;
use goose::prelude::*;
use rand::Rng;
use serde_json::{Value, json};

/// What the scenarios need to know about the target, shared by every user.
#[derive(Clone)]
pub struct Target {
    pub show: String,
    pub movie: String,
    pub gated: bool,
    /// Sellable seats of the show, for random picks.
    pub seats: Arc<Vec<String>>,
    pub next_user: Arc<AtomicUsize>,
    pub run: String,
}

static TARGET: std::sync::OnceLock<Target> = std::sync::OnceLock::new();

fn target() -> &'static Target {
    TARGET.get().expect("the target is set before the attack starts")
}

#[derive(Clone)]
struct Shopper {
    token: String,
    admission: Option<String>,
}

async fn json_of(resp: goose::goose::GooseResponse) -> Option<Value> {
    resp.response.ok()?.json::<Value>().await.ok()
}

async fn browse(user: &mut GooseUser) -> TransactionResult {
    let t = target();
    user.get_named("/api/v1/movies", "browse: movies").await?;
    user.get_named(&format!("/api/v1/movies/{}/availability", t.movie), "browse: dates")
        .await?;
    user.get_named(&format!("/api/v1/movies/{}/shows", t.movie), "browse: shows")
        .await?;
    user.get_named(&format!("/api/v1/shows/{}/seatmap", t.show), "browse: seat map")
        .await?;
    Ok(())
}

async fn sign_in(user: &mut GooseUser) -> TransactionResult {
    let t = target();
    let n = t.next_user.fetch_add(1, Ordering::Relaxed);
    let body = json!({"userId": format!("{}-goose-{n}", t.run)});
    let resp = user.post_json("/api/v1/dev/token", &body).await?;
    let token = json_of(resp)
        .await
        .and_then(|v| v["token"].as_str().map(str::to_owned))
        .unwrap_or_default();
    user.set_session_data(Shopper { token, admission: None });
    Ok(())
}

async fn send(
    user: &mut GooseUser,
    method: GooseMethod,
    path: &str,
    name: &'static str,
    body: Option<Value>,
) -> Result<Option<Value>, Box<TransactionError>> {
    let (token, admission) = match user.get_session_data::<Shopper>() {
        Some(s) => (s.token.clone(), s.admission.clone()),
        None => return Ok(None),
    };
    let mut rb = user.get_request_builder(&method, path)?.bearer_auth(token);
    if let Some(a) = admission {
        rb = rb.header("X-Admission-Token", a);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let req = GooseRequest::builder()
        .method(method)
        .path(path)
        .name(name)
        .set_request_builder(rb)
        .build();
    Ok(json_of(user.request(req).await?).await)
}

async fn buy(user: &mut GooseUser) -> TransactionResult {
    let t = target();
    if t.gated {
        let path = format!("/api/v1/waitrooms/{}/join", t.show);
        send(user, GooseMethod::Post, &path, "queue: join", None).await?;
        let me = format!("/api/v1/waitrooms/{}/me", t.show);
        for _ in 0..600 {
            let v = send(user, GooseMethod::Get, &me, "queue: poll", None).await?;
            match v.as_ref().and_then(|v| v["state"].as_str()) {
                Some("ADMITTED") => {
                    let token = v.as_ref().and_then(|v| v["admissionToken"].as_str()).map(str::to_owned);
                    if let Some(s) = user.get_session_data_mut::<Shopper>() {
                        s.admission = token;
                    }
                    break;
                }
                Some("SOLD_OUT") | None => return Ok(()),
                _ => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
            }
        }
    }
    let seats: Vec<String> = {
        let mut rng = rand::rng();
        let n = rng.random_range(1..=2);
        (0..n)
            .map(|_| t.seats[rng.random_range(0..t.seats.len())].clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    let hold = send(
        user,
        GooseMethod::Post,
        "/api/v1/holds",
        "buy: hold",
        Some(json!({"showId": t.show, "seatIds": seats})),
    )
    .await?;
    let Some(hold_id) = hold.as_ref().and_then(|h| h["holdId"].as_str()).map(str::to_owned) else {
        return Ok(());
    };
    let order = send(
        user,
        GooseMethod::Post,
        "/api/v1/orders",
        "buy: order",
        Some(json!({"holdId": hold_id})),
    )
    .await?;
    let Some(order_id) = order.as_ref().and_then(|o| o["orderId"].as_str()).map(str::to_owned) else {
        return Ok(());
    };
    let path = format!("/api/v1/orders/{order_id}/confirm-payment");
    send(
        user,
        GooseMethod::Post,
        &path,
        "buy: pay",
        Some(json!({"paymentReference": "load", "outcome": "SUCCESS"})),
    )
    .await?;
    Ok(())
}

/// Runs the journey: `users` Goose users (3 browsers to 1 buyer), started at
/// `hatch_rate` per second, for `seconds`.
pub async fn run(
    host: &str,
    t: Target,
    users: usize,
    hatch_rate: usize,
    seconds: usize,
) -> Result<GooseMetrics, String> {
    let _ = TARGET.set(t);
    let attack = GooseAttack::initialize_with_config(GooseConfiguration::default())
        .map_err(|e| e.to_string())?
        .register_scenario(
            scenario!("Browser")
                .set_weight(3)
                .map_err(|e| e.to_string())?
                .register_transaction(transaction!(browse)),
        )
        .register_scenario(
            scenario!("Buyer")
                .set_weight(1)
                .map_err(|e| e.to_string())?
                .register_transaction(transaction!(sign_in).set_on_start())
                .register_transaction(transaction!(buy)),
        )
        .set_default(GooseDefault::Host, host)
        .and_then(|a| a.set_default(GooseDefault::Users, users))
        .and_then(|a| a.set_default(GooseDefault::IncreaseRate, hatch_rate.to_string().as_str()))
        .and_then(|a| a.set_default(GooseDefault::RunTime, seconds))
        .and_then(|a| a.set_default(GooseDefault::Quiet, 1))
        .map_err(|e| e.to_string())?;
    attack.execute().await.map_err(|e| e.to_string())
}
