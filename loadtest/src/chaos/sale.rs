//! The sale the faults land on: shoppers join the room and wait on a
//! queue socket (polling only when it is down), and once admitted hold best
//! available, wait on the list when the hall is full, order, pay or fail
//! or walk away, and some cancel. Each shopper is a new user: the queue's
//! order is checked over all of them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rand::Rng;
use reqwest::Method;
use serde_json::{Value, json};
use showgate::auth::Tokens;
use tokio_tungstenite::tungstenite::Message;

use super::api::Api;
use super::ledger::{Admission, Expect, Join, Ledger, PaidOrder, wall_ms};

pub struct Sale {
    pub api: Api,
    pub ledger: Arc<Ledger>,
    pub tokens: Arc<Tokens>,
    pub show: String,
    pub admission_ttl_ms: i64,
    pub stop: Arc<AtomicBool>,
    pub next_user: AtomicUsize,
}

/// How a wait in the queue ended.
enum Waited {
    Admitted(String),
    GaveUp,
}

/// A queued shopper waits this long for admission, then leaves.
const QUEUE_PATIENCE: Duration = Duration::from_secs(45);
/// A socket that stays up must tell its shopper of an admission within
/// this long of the server making it (the contract's 10 s to notice a
/// silent connection, and its replacement).
const TOLD_WITHIN: Duration = Duration::from_secs(15);

impl Sale {
    /// One shopper after another on `slot` until the sale stops.
    pub async fn shop(self: Arc<Self>, slot: usize) {
        while !self.stop.load(Ordering::Relaxed) {
            let n = self.next_user.fetch_add(1, Ordering::Relaxed);
            let user = format!("chaos-{n}");
            let Ok(token) = self.tokens.issue(&user, false, 3_600) else {
                return;
            };
            if let Err(e) = self.one(slot, &user, &token).await {
                self.ledger.count("shopper gave up (no answer for 30 s)");
                tracing_line(&format!("{user}: {e}"));
            }
        }
    }

    async fn one(&self, slot: usize, user: &str, token: &str) -> Result<(), String> {
        let path = format!("/api/v1/waitrooms/{}/join", self.show);
        let started_ms = wall_ms();
        let (status, _) = self
            .api
            .call(slot, Method::POST, &path, Some(token), None, None)
            .await?;
        if status != 200 && status != 201 {
            self.ledger.count("join refused");
            return Ok(());
        }
        self.ledger.with(|b| {
            b.joins.push(Join {
                user: user.to_owned(),
                started_ms,
                done_ms: wall_ms(),
            })
        });
        match self.wait_admitted(slot, user, token).await? {
            Waited::GaveUp => {
                let me = format!("/api/v1/waitrooms/{}/me", self.show);
                self.api
                    .call(slot, Method::DELETE, &me, Some(token), None, None)
                    .await?;
                self.ledger.with(|b| b.left.insert(user.to_owned(), wall_ms()));
                self.ledger.count("left the queue unadmitted");
                Ok(())
            }
            Waited::Admitted(admission) => {
                let bought = self.buy(slot, token, &admission).await?;
                if !bought {
                    // Gives the room its place back for the next shopper.
                    let me = format!("/api/v1/waitrooms/{}/me", self.show);
                    self.api
                        .call(slot, Method::DELETE, &me, Some(token), None, None)
                        .await?;
                }
                Ok(())
            }
        }
    }

    /// Waits on a queue socket; polls `me` every 5 s (the socket's own word
    /// is the one taken while it is up: a poll that finds the shopper admitted
    /// 15 s before an open socket says so is a broken promise).
    async fn wait_admitted(&self, slot: usize, user: &str, token: &str) -> Result<Waited, String> {
        let until = Instant::now() + QUEUE_PATIENCE;
        let me = format!("/api/v1/waitrooms/{}/me", self.show);
        let mut socket = None;
        let mut socket_since = Instant::now();
        let mut polled_admitted: Option<(Instant, String, i64)> = None;
        let mut next_poll = Instant::now() + Duration::from_secs(5);
        loop {
            if Instant::now() > until || self.stop.load(Ordering::Relaxed) {
                return Ok(Waited::GaveUp);
            }
            if socket.is_none()
                && let Some(addr) = self.api.nodes.pick(slot)
            {
                let url = format!("ws://{addr}/api/v1/waitrooms/{}/ws?access_token={token}", self.show);
                if let Ok(Ok((ws, _))) =
                    tokio::time::timeout(Duration::from_secs(3), tokio_tungstenite::connect_async(url)).await
                {
                    socket = Some(ws);
                    socket_since = Instant::now();
                }
            }
            let wait = next_poll.saturating_duration_since(Instant::now());
            let message = match socket.as_mut() {
                Some(ws) => tokio::time::timeout(wait, ws.next()).await.ok(),
                None => {
                    tokio::time::sleep(wait.min(Duration::from_millis(300))).await;
                    None
                }
            };
            match message {
                Some(Some(Ok(Message::Text(text)))) => {
                    let v: Value = serde_json::from_str(&text).unwrap_or_default();
                    if v["type"] == "admitted" {
                        let token = v["admissionToken"].as_str().unwrap_or_default().to_owned();
                        self.admitted(user, v["expiresAt"].as_str(), true);
                        return Ok(Waited::Admitted(token));
                    }
                }
                Some(Some(Ok(_))) => {}
                // Closed (a drained node's 4500, a killed one): reconnect.
                Some(None) | Some(Some(Err(_))) => socket = None,
                None => {}
            }
            if Instant::now() < next_poll {
                continue;
            }
            next_poll = Instant::now() + Duration::from_secs(5);
            let (status, v) = self.api.call(slot, Method::GET, &me, Some(token), None, None).await?;
            match (status, v["state"].as_str()) {
                (200, Some("ADMITTED")) => {
                    let tick = v["admissionExpiresAt"].as_str().and_then(parse_ms).unwrap_or_default();
                    let token = v["admissionToken"].as_str().unwrap_or_default().to_owned();
                    let first = polled_admitted.get_or_insert((Instant::now(), token, tick));
                    let (seen, token) = (first.0, first.1.clone());
                    if socket.is_none() {
                        self.admitted(user, v["admissionExpiresAt"].as_str(), false);
                        return Ok(Waited::Admitted(token));
                    }
                    if seen.elapsed() >= TOLD_WITHIN && socket_since <= seen {
                        self.ledger.violation(format!(
                            "{user}: admitted (so says GET me) but its open queue socket had not said so {} s later",
                            seen.elapsed().as_secs()
                        ));
                        self.admitted(user, v["admissionExpiresAt"].as_str(), false);
                        return Ok(Waited::Admitted(token));
                    }
                }
                (200, Some("QUEUED" | "SOLD_OUT")) => {}
                // The place is gone (Redis lost it, nobody requeued it): join again.
                _ => {
                    self.ledger.count("joined again (place lost)");
                    let join = format!("/api/v1/waitrooms/{}/join", self.show);
                    self.api
                        .call(slot, Method::POST, &join, Some(token), None, None)
                        .await?;
                }
            }
        }
    }

    fn admitted(&self, user: &str, expires_at: Option<&str>, via_socket: bool) {
        let tick_ms = expires_at.and_then(parse_ms).unwrap_or_default() - self.admission_ttl_ms;
        self.ledger.with(|b| {
            b.admissions.push(Admission {
                user: user.to_owned(),
                tick_ms,
            })
        });
        self.ledger.count(if via_socket {
            "admitted, told by the socket"
        } else {
            "admitted, found by polling"
        });
    }

    /// An admitted shopper's purchase; answers whether an order was paid.
    async fn buy(&self, slot: usize, token: &str, admission: &str) -> Result<bool, String> {
        let (mut quantity, choice, pay) = {
            let mut rng = rand::rng();
            (
                rng.random_range(1..=4u64),
                rng.random_range(0..100u32),
                rng.random_range(0..100u32),
            )
        };
        let mut hold = None;
        for _ in 0..3 {
            let body = json!({"showId": self.show, "quantity": quantity});
            let (status, v) = self
                .api
                .call(
                    slot,
                    Method::POST,
                    "/api/v1/holds",
                    Some(token),
                    Some(admission),
                    Some(&body),
                )
                .await?;
            match (status, v["error"]["code"].as_str()) {
                (201, _) => {
                    self.ledger.count("hold 201");
                    hold = Some(v);
                    break;
                }
                (409, Some("NOT_ENOUGH_SEATS")) => {
                    self.ledger.count("hold 409 NOT_ENOUGH_SEATS");
                    // Fewer seats together, as a shopper would take them.
                    let largest = v["error"]["largestBlock"].as_u64().unwrap_or(0);
                    if largest > 0 {
                        quantity = quantity.min(largest);
                        continue;
                    }
                    match self.wait_listed(slot, token, admission, quantity).await? {
                        Some(offer) => {
                            hold = Some(offer);
                            break;
                        }
                        None => continue,
                    }
                }
                (403, _) => {
                    // Redis lost the room's admissions: back to the queue.
                    self.ledger.count("hold 403 (admission lost with Redis)");
                    return Ok(false);
                }
                (s, _) => {
                    self.unexpected("hold", s, &v);
                    return Ok(false);
                }
            }
        }
        let Some(hold) = hold else { return Ok(false) };
        let hold_id = hold["holdId"].as_str().unwrap_or_default().to_owned();
        if choice < 10 {
            let path = format!("/api/v1/holds/{hold_id}");
            let (s, v) = self
                .api
                .call(slot, Method::DELETE, &path, Some(token), None, None)
                .await?;
            self.count_or_flag("release", s, &v, &[200, 409]);
            return Ok(false);
        }
        if choice < 20 {
            self.ledger.count("hold left to expire");
            return Ok(false);
        }
        let body = json!({"holdId": hold_id});
        let (s, order) = self
            .api
            .call(slot, Method::POST, "/api/v1/orders", Some(token), None, Some(&body))
            .await?;
        if s == 409 {
            self.ledger.count("order 409 (hold ended or lost)");
            return Ok(false);
        }
        if s != 200 && s != 201 {
            self.unexpected("order", s, &order);
            return Ok(false);
        }
        self.ledger.count("order placed");
        let order_id = order["orderId"].as_str().unwrap_or_default().to_owned();
        if pay >= 85 {
            self.ledger.count("order left to expire");
            return Ok(false);
        }
        let outcome = if pay < 75 { "SUCCESS" } else { "FAILURE" };
        let path = format!("/api/v1/orders/{order_id}/confirm-payment");
        let body = json!({"outcome": outcome, "paymentReference": format!("chaos-{order_id}")});
        let (s, paid) = self
            .api
            .call(slot, Method::POST, &path, Some(token), None, Some(&body))
            .await?;
        if s == 409 {
            // The seats went to someone else while Redis was rebuilt, or
            // the order expired during the fault: failed whole.
            self.ledger.count("payment 409");
            return Ok(false);
        }
        if s != 200 {
            self.unexpected("payment", s, &paid);
            return Ok(false);
        }
        if paid["status"] != "CONFIRMED" {
            self.ledger.count("payment failed (as asked)");
            return Ok(false);
        }
        self.ledger.count("order confirmed");
        let seats: Vec<String> = paid["seatIds"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        self.ledger.with(|b| {
            b.paid.insert(
                order_id.clone(),
                PaidOrder {
                    seats,
                    expect: Expect::Confirmed,
                },
            )
        });
        if choice >= 70 {
            // Changed their mind: the seats come back to the sale.
            let think = rand::rng().random_range(1_000..5_000);
            tokio::time::sleep(Duration::from_millis(think)).await;
            let path = format!("/api/v1/orders/{order_id}/cancel");
            self.ledger.with(|b| {
                if let Some(o) = b.paid.get_mut(&order_id) {
                    o.expect = Expect::ConfirmedOrCancelled;
                }
            });
            let (s, v) = self
                .api
                .call(slot, Method::POST, &path, Some(token), None, None)
                .await?;
            if s == 200 && v["status"] == "CANCELLED" {
                self.ledger.count("order cancelled");
                self.ledger.with(|b| {
                    if let Some(o) = b.paid.get_mut(&order_id) {
                        o.expect = Expect::Cancelled;
                    }
                });
            } else {
                self.unexpected("cancel", s, &v);
            }
        }
        Ok(true)
    }

    /// On the waiting list until an offer comes (answered as the hold it
    /// is) or 20 s pass; None: try holding again, or give up.
    async fn wait_listed(
        &self,
        slot: usize,
        token: &str,
        admission: &str,
        quantity: u64,
    ) -> Result<Option<Value>, String> {
        let path = format!("/api/v1/shows/{}/waitlist", self.show);
        let body = json!({"quantity": quantity});
        let (s, v) = self
            .api
            .call(slot, Method::POST, &path, Some(token), Some(admission), Some(&body))
            .await?;
        match (s, v["error"]["code"].as_str()) {
            (200 | 201, _) => self.ledger.count("waitlist joined"),
            (409, Some("SEATS_AVAILABLE")) => {
                self.ledger.count("waitlist 409 SEATS_AVAILABLE");
                return Ok(None);
            }
            (403, _) => {
                self.ledger.count("waitlist 403 (admission lost with Redis)");
                return Ok(None);
            }
            _ => {
                self.unexpected("waitlist join", s, &v);
                return Ok(None);
            }
        }
        let me = format!("{path}/me");
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until && !self.stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let (s, v) = self.api.call(slot, Method::GET, &me, Some(token), None, None).await?;
            if s == 200 && v["state"] == "OFFERED" {
                self.ledger.count("waitlist offer");
                return Ok(Some(v));
            }
        }
        self.api
            .call(slot, Method::DELETE, &me, Some(token), None, None)
            .await?;
        // An offer made as we left is still ours: it expires unclaimed.
        Ok(None)
    }

    fn count_or_flag(&self, step: &str, status: u16, v: &Value, fine: &[u16]) {
        if fine.contains(&status) {
            self.ledger.count(match step {
                "release" if status == 200 => "hold released",
                _ => "release 409 (already ended)",
            });
        } else {
            self.unexpected(step, status, v);
        }
    }

    /// A 5xx is a broken promise (503s were already retried); other
    /// answers are counted by their code.
    fn unexpected(&self, step: &str, status: u16, v: &Value) {
        if status >= 500 {
            self.ledger.violation(format!("{step} answered {status}: {v}"));
        } else {
            let code = v["error"]["code"].as_str().unwrap_or("");
            self.ledger.count(&format!("{step} {status} {code}"));
        }
    }
}

fn parse_ms(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

fn tracing_line(line: &str) {
    eprintln!("chaos: {line}");
}
