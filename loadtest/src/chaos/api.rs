//! How a shopper's app calls the gateways during the soak: through the
//! balancer's choice of a live node, again on a closed connection or a 503
//! (as an app retries a spinner), and every such failure written down with
//! its time so each fault's cost to shoppers can be counted.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::rig::Nodes;

/// A failure a shopper saw: when (ms into the run) and what (0: no answer).
#[derive(Debug, Clone, Copy)]
pub struct Failure {
    pub at_ms: u64,
    pub status: u16,
}

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    pub nodes: Arc<Nodes>,
    pub started: Instant,
    failures: Arc<Mutex<Vec<Failure>>>,
}

/// How long one step keeps trying through faults before giving up.
const PATIENCE: Duration = Duration::from_secs(30);

impl Api {
    pub fn new(nodes: Arc<Nodes>, started: Instant) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            http,
            nodes,
            started,
            failures: Arc::default(),
        })
    }

    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub fn failures(&self) -> Vec<Failure> {
        self.failures.lock().unwrap().clone()
    }

    fn failed(&self, status: u16) {
        let at_ms = self.now_ms();
        self.failures.lock().unwrap().push(Failure { at_ms, status });
    }

    /// One call, on `slot`'s node or the next live one; a missing answer,
    /// 502, 503 or 504 is written down and tried again (on the next node)
    /// for up to 30 s. Answers the status and the JSON body (Null if none).
    pub async fn call(
        &self,
        slot: usize,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        admission: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(u16, Value), String> {
        let deadline = Instant::now() + PATIENCE;
        let mut attempt = 0;
        loop {
            if Instant::now() > deadline {
                return Err(format!("{method} {path}: no answer through the faults for 30 s"));
            }
            let Some(addr) = self.nodes.pick(slot + attempt) else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            attempt += 1;
            let mut req = self.http.request(method.clone(), format!("http://{addr}{path}"));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            if let Some(a) = admission {
                req = req.header("X-Admission-Token", a);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            match req.send().await {
                Ok(res) if matches!(res.status().as_u16(), 502..=504) => {
                    self.failed(res.status().as_u16());
                }
                Ok(res) => {
                    let status = res.status().as_u16();
                    if status >= 500 {
                        self.failed(status);
                    }
                    let body = res.json::<Value>().await.unwrap_or(Value::Null);
                    return Ok((status, body));
                }
                Err(_) => self.failed(0),
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
}
