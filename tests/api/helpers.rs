//! `spawn_app`: the real application on port 0 against real Redis and
//! Postgres (a unique key prefix and a fresh database per test), and a typed
//! client for the contract.

use std::net::SocketAddr;

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use showgate::app::Application;
use showgate::config::Settings;
use sqlx::PgPool;

#[path = "../common/mod.rs"]
pub mod common;

pub struct TestApp {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub db: Option<PgPool>,
    pub settings: Settings,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub fn test_settings() -> Settings {
    Settings {
        bind: "127.0.0.1:0".parse().unwrap(),
        redis_url: Some(common::redis_url()),
        redis_key_prefix: common::unique_prefix(),
        rate_limit_user_per_sec: 0,
        rate_limit_ip_per_sec: 0,
        // The tests open hundreds of sockets from 127.0.0.1; the per-address
        // cap has tests of its own.
        ws_max_per_ip: 0,
        sweep_interval_ms: 100,
        static_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/static").into(),
        ..Settings::default()
    }
}

/// The app on Redis and a fresh Postgres database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tune: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings();
    settings.database_url = Some(common::fresh_database().await);
    tune(&mut settings);
    start(settings).await
}

/// The app on the in-process engines (no Redis, no Postgres).
pub async fn spawn_memory_app() -> TestApp {
    spawn_memory_app_with(|_| {}).await
}

pub async fn spawn_memory_app_with(tune: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings();
    settings.redis_url = None;
    tune(&mut settings);
    start(settings).await
}

pub async fn start(settings: Settings) -> TestApp {
    let app = Application::build(settings.clone()).await.expect("the app builds");
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let db = match &settings.database_url {
        Some(url) => Some(PgPool::connect(url).await.unwrap()),
        None => None,
    };
    TestApp {
        addr,
        http: reqwest::Client::new(),
        db,
        settings,
        _stop: stop,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// GET a JSON body (any status).
    pub async fn get_json(&self, path: &str, token: Option<&str>) -> Value {
        self.get(path, token).await.json().await.unwrap()
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        let mut req = self.http.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.http
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn token_owned(&self, user: String) -> String {
        self.token(&user).await
    }

    /// A token for `user` from the development route.
    pub async fn token(&self, user: &str) -> String {
        self.token_as(user, false).await
    }

    pub async fn token_as(&self, user: &str, admin: bool) -> String {
        let res = self
            .post("/api/v1/dev/token", None, json!({"userId": user, "admin": admin}))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned()
    }

    pub async fn hold(&self, token: &str, show: &str, seats: &[&str]) -> Response {
        self.post("/api/v1/holds", Some(token), json!({"showId": show, "seatIds": seats}))
            .await
    }

    pub async fn order(&self, token: &str, hold_id: &str) -> Response {
        self.post("/api/v1/orders", Some(token), json!({"holdId": hold_id}))
            .await
    }

    /// The usual preamble of a test about an order: `seats` held for the
    /// token's user, then the hold ordered (both must succeed). The order
    /// awaits payment.
    pub async fn pending_order(&self, token: &str, show: &str, seats: &[&str]) -> PendingOrder {
        let res = self.hold(token, show, seats).await;
        assert_eq!(res.status(), StatusCode::CREATED, "the hold on {seats:?} is made");
        let hold: Value = res.json().await.unwrap();
        let res = self.order(token, hold["holdId"].as_str().unwrap()).await;
        assert_eq!(res.status(), StatusCode::CREATED, "the order of {seats:?} is made");
        let order: Value = res.json().await.unwrap();
        PendingOrder { hold, order }
    }

    pub async fn pay(&self, token: &str, order_id: &str, outcome: &str) -> Response {
        let body = json!({"paymentReference": format!("pay-{order_id}"), "outcome": outcome});
        self.post(&format!("/api/v1/orders/{order_id}/confirm-payment"), Some(token), body)
            .await
    }

    pub async fn seat_map(&self, show: &str) -> Value {
        let res = self.get(&format!("/api/v1/shows/{show}/seatmap"), None).await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    /// The show's seats AVAILABLE now, in seat-map order.
    pub async fn available_seats(&self, show: &str) -> Vec<String> {
        self.seat_map(show).await["seats"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["status"] == "AVAILABLE")
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    }

    pub async fn seat_status(&self, show: &str, seat: &str) -> String {
        let map = self.seat_map(show).await;
        map["seats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == seat)
            .unwrap()["status"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A show of the demo catalog with a small screen, and the flash-sale one.
    /// The first seat of the show that is on sale now.
    pub async fn available_seat(&self, show: &str) -> String {
        let map = self.seat_map(show).await;
        map["seats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["status"] == "AVAILABLE")
            .expect("a free seat")["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn a_show(&self) -> String {
        self.show_on("pvr-forum-1").await
    }

    pub async fn big_show(&self) -> String {
        self.show_on("inox-imax").await
    }

    async fn show_on(&self, screen: &str) -> String {
        let res: Value = self.get("/api/v1/movies", None).await.json().await.unwrap();
        for m in res["movies"].as_array().unwrap() {
            let shows: Value = self
                .get(&format!("/api/v1/movies/{}/shows", m["id"].as_str().unwrap()), None)
                .await
                .json()
                .await
                .unwrap();
            if let Some(s) = shows["shows"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["screenId"] == screen && starts_later(s))
            {
                return s["id"].as_str().unwrap().to_owned();
            }
        }
        panic!("no show on {screen}")
    }
}

/// An order awaiting payment, and the hold it was made from, both as the
/// API answered them (`TestApp::pending_order`).
pub struct PendingOrder {
    pub hold: Value,
    pub order: Value,
}

impl PendingOrder {
    /// The order's id.
    pub fn id(&self) -> &str {
        self.order["orderId"].as_str().unwrap()
    }

    pub fn hold_id(&self) -> &str {
        self.hold["holdId"].as_str().unwrap()
    }
}

/// Whether a show starts more than an hour from now: the tests sell seats
/// of shows still on sale.
fn starts_later(show: &Value) -> bool {
    show["startTime"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .is_some_and(|t| t > chrono::Utc::now() + chrono::TimeDelta::hours(1))
}

/// Asserts the contract's error shape and code; answers the body.
pub async fn assert_error(res: Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "status for {code}");
    let body: Value = res.json().await.expect("error bodies are JSON");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}

pub use common::proxy::Proxy;

pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl TestApp {
    pub async fn ws(&self, path: &str) -> Ws {
        ws_connect(self.addr, path).await
    }
}

pub async fn ws_connect(addr: SocketAddr, path: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}{path}"))
        .await
        .expect("websocket handshake");
    ws
}

/// The next JSON message, skipping pings; panics after 5 s of silence.
pub async fn next_json<S>(ws: &mut S) -> Value
where
    S: futures::Stream<Item = Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
{
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
            .expect("the socket is open")
            .expect("a readable message");
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// A showgate server in its own process (the binary), for multi-node tests.
pub struct Node {
    pub addr: SocketAddr,
    /// Killed when the node is dropped.
    _child: tokio::process::Child,
}

impl Node {
    pub async fn start(envs: &[(&str, String)]) -> Node {
        use tokio::io::AsyncBufReadExt;
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_showgate"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BIND", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env("RATE_LIMIT_USER_PER_SEC", "0")
            .env("RATE_LIMIT_IP_PER_SEC", "0")
            .env("WS_MAX_PER_IP", "0")
            .env("STATIC_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/static"))
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start showgate");
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["fields"]["message"] == "showgate listening"
                {
                    return v["fields"]["addr"].as_str().unwrap().parse::<SocketAddr>().unwrap();
                }
            }
            panic!("showgate exited before listening")
        })
        .await
        .expect("showgate listens within 30 s");
        // Keep draining its logs so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Node { addr, _child: child }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A GET's JSON body.
    pub async fn read_json(&self, path: &str) -> Value {
        reqwest::get(self.url(path)).await.unwrap().json().await.unwrap()
    }

    /// A development token for `user`, minted by this node.
    pub async fn token(&self, user: &str) -> String {
        self.token_as(user, false).await
    }

    pub async fn token_as(&self, user: &str, admin: bool) -> String {
        let v: Value = reqwest::Client::new()
            .post(self.url("/api/v1/dev/token"))
            .json(&serde_json::json!({"userId": user, "admin": admin}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["token"].as_str().unwrap().to_owned()
    }

    /// Puts the show's waiting room (as ops) through this node.
    pub async fn put_room(&self, show: &str, body: Value) {
        let res = reqwest::Client::new()
            .put(self.url(&format!("/api/v1/admin/waitrooms/{show}")))
            .bearer_auth(self.token_as("ops", true).await)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }

    /// The ids of the flash-sale movie's shows, in time order (the last of
    /// the week is on sale whatever the hour).
    pub async fn shows(&self) -> Vec<String> {
        self.read_json("/api/v1/movies/dune-3/shows").await["shows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Sends SIGTERM, as an orchestrator would.
    pub fn terminate(&self) {
        let pid = self._child.id().expect("the node runs").to_string();
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits for the process to exit; answers whether it did within `limit`.
    pub async fn exited_within(&mut self, limit: std::time::Duration) -> bool {
        tokio::time::timeout(limit, self._child.wait()).await.is_ok()
    }
}
