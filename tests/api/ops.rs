//! The node's own routes: liveness, readiness (and which dependency is
//! down), and the metrics the contract lists.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_error, spawn_app, spawn_memory_app};

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    let ready: Value = app.get("/readyz", None).await.json().await.unwrap();
    assert_eq!(
        ready["checks"],
        json!({"redis": "ok", "redisPubsub": "ok", "postgres": "ok", "waitrooms": "ok"})
    );
    let show = app.a_show().await;
    let alice = app.token("alice").await;
    app.hold(&alice, &show, &["M1"]).await;
    let text = app.get("/metrics", None).await.text().await.unwrap();
    for name in [
        "seat_lock_attempts_total",
        "seat_lock_duration_seconds_bucket",
        "http_requests_total",
        "holds_expired_total",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
    assert!(text.contains("route=\"/api/v1/holds\""));
}

/// A fresh process (its own recorder, nothing happened yet) already lists
/// the contract's metrics that have no per-show label, so dashboards and
/// alerts see zeros, not gaps.
#[tokio::test]
async fn a_fresh_node_lists_the_contract_metrics_before_any_traffic() {
    let node = crate::helpers::Node::start(&[]).await;
    let text = reqwest::get(node.url("/metrics")).await.unwrap().text().await.unwrap();
    for series in [
        "seat_lock_attempts_total{result=\"held\"} 0",
        "seat_lock_duration_seconds_count 0",
        "holds_expired_total 0",
        "orders_total{status=\"CONFIRMED\"} 0",
        "orders_total{status=\"PAYMENT_PENDING\"} 0",
        "ws_connections{kind=\"seats\"} 0",
        "ws_connections{kind=\"queue\"} 0",
    ] {
        assert!(text.contains(series), "{series} missing from a fresh /metrics:\n{text}");
    }
}

#[tokio::test]
async fn readiness_names_a_dependency_that_goes_down() {
    let proxy = crate::helpers::Proxy::to("127.0.0.1:6379").await;
    let app = crate::helpers::spawn_app_with(|s| s.redis_url = Some(format!("redis://{}", proxy.addr))).await;
    assert_eq!(app.get("/readyz", None).await.status(), StatusCode::OK);
    proxy.cut();
    let body = assert_error(app.get("/readyz", None).await, 503, "SERVICE_UNAVAILABLE").await;
    assert_eq!(body["error"]["down"], json!(["redis"]));
    // Requests that need Redis answer 503 in the contract's shape, not a hang or a 500.
    let show = app.a_show().await;
    assert_error(
        app.get(&format!("/api/v1/shows/{show}/seatmap"), None).await,
        503,
        "SERVICE_UNAVAILABLE",
    )
    .await;
}

#[tokio::test]
async fn the_memory_app_reports_no_external_dependencies() {
    let app = spawn_memory_app().await;
    let ready: Value = app.get("/readyz", None).await.json().await.unwrap();
    assert_eq!(
        ready["checks"],
        json!({"redis": "not configured", "redisPubsub": "not configured", "postgres": "not configured", "waitrooms": "ok"})
    );
}
