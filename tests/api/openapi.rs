//! The OpenAPI document at `/api/v1/openapi.json`: generated from the routes
//! that are served, so it lists the contract's routes, no route it does not
//! serve, one operation id each, and the shared error answers. (Whether the
//! answers match it is the fuzzer's job: scripts/api-fuzz.sh.)

use std::collections::HashSet;

use serde_json::Value;

use crate::helpers::{spawn_memory_app, start, test_settings};

/// Every HTTP route of the contract (`API.md`), as method and path.
const CONTRACT: &[(&str, &str)] = &[
    ("get", "/api/v1/movies"),
    ("get", "/api/v1/movies/{movie_id}"),
    ("get", "/api/v1/movies/{movie_id}/availability"),
    ("get", "/api/v1/movies/{movie_id}/shows"),
    ("get", "/api/v1/shows/{show_id}"),
    ("get", "/api/v1/shows/{show_id}/seatmap"),
    ("get", "/api/v1/shows/{show_id}/seats/ws"),
    ("post", "/api/v1/holds"),
    ("get", "/api/v1/holds/{hold_id}"),
    ("delete", "/api/v1/holds/{hold_id}"),
    ("post", "/api/v1/orders"),
    ("get", "/api/v1/orders"),
    ("get", "/api/v1/orders/{order_id}"),
    ("post", "/api/v1/orders/{order_id}/confirm-payment"),
    ("post", "/api/v1/orders/{order_id}/cancel"),
    ("put", "/api/v1/admin/waitrooms/{show_id}"),
    ("get", "/api/v1/admin/waitrooms/{show_id}"),
    ("delete", "/api/v1/admin/waitrooms/{show_id}"),
    ("post", "/api/v1/waitrooms/{show_id}/join"),
    ("get", "/api/v1/waitrooms/{show_id}/me"),
    ("delete", "/api/v1/waitrooms/{show_id}/me"),
    ("get", "/api/v1/waitrooms/{show_id}/ws"),
    ("get", "/api/v1/waitrooms/{show_id}/challenge"),
    ("post", "/api/v1/shows/{show_id}/waitlist"),
    ("get", "/api/v1/shows/{show_id}/waitlist/me"),
    ("delete", "/api/v1/shows/{show_id}/waitlist/me"),
    ("get", "/api/v1/shows/{show_id}/waitlist/ws"),
    ("get", "/api/v1/admin/waitlists/{show_id}"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
];

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ops.push((method.clone(), path.clone(), op));
        }
    }
    ops
}

#[tokio::test]
async fn the_document_lists_the_contract_with_one_id_per_operation_and_the_error_shape() {
    let app = spawn_memory_app().await;
    let res = app.get("/api/v1/openapi.json", None).await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let doc: Value = res.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    let ops = operations(&doc);
    let listed: HashSet<(&str, &str)> = ops.iter().map(|(m, p, _)| (m.as_str(), p.as_str())).collect();
    for (method, path) in CONTRACT {
        assert!(
            listed.contains(&(*method, *path)),
            "{method} {path} is not in the document"
        );
    }
    // The development token route is served here (no JWT_SECRET), so it is listed.
    assert!(listed.contains(&("post", "/api/v1/dev/token")));
    assert_eq!(
        ops.len(),
        CONTRACT.len() + 1,
        "a route the contract does not name: {listed:?}"
    );

    let ids: Vec<&str> = ops
        .iter()
        .map(|(_, _, op)| op["operationId"].as_str().unwrap())
        .collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "operation ids repeat: {ids:?}");

    for (method, path, op) in &ops {
        let answers = op["responses"].as_object().unwrap();
        for shared in ["429", "500", "503"] {
            assert!(answers.contains_key(shared), "{method} {path} lacks {shared}");
        }
        if op.get("security").is_some() {
            assert!(
                answers.contains_key("401"),
                "{method} {path} needs a token but lacks 401"
            );
        }
        for (status, answer) in answers {
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &answer["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(schema, "#/components/schemas/ErrorBody", "{method} {path} {status}");
            }
            // Every link leads to an operation that exists.
            for (name, link) in answer["links"].as_object().into_iter().flatten() {
                let to = link["operationId"].as_str().unwrap();
                assert!(unique.contains(to), "link {name} of {method} {path} leads to {to}");
            }
        }
    }
    let codes: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        codes.contains(&"SEAT_CONFLICT") && codes.contains(&"SHOW_STARTED"),
        "{codes:?}"
    );
}

#[tokio::test]
async fn a_route_that_is_not_served_is_not_documented() {
    let mut settings = test_settings();
    settings.redis_url = None;
    settings.jwt_secret = Some("a-real-secret-for-this-test".into());
    let app = start(settings).await;
    let doc = app.get_json("/api/v1/openapi.json", None).await;
    assert!(
        doc["paths"].get("/api/v1/dev/token").is_none(),
        "documented but not served"
    );
    let res = app
        .post("/api/v1/dev/token", None, serde_json::json!({"userId": "x"}))
        .await;
    assert_eq!(res.status(), 404);
}

/// `docs/openapi.json` is the served document, kept in the repository so
/// the contract can be read without running the server. After changing a
/// route: `UPDATE_OPENAPI=1 cargo test --test api openapi`.
#[tokio::test]
async fn the_copy_in_docs_is_the_served_document() {
    let app = spawn_memory_app().await;
    let served = app.get_json("/api/v1/openapi.json", None).await;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(path, serde_json::to_string_pretty(&served).unwrap() + "\n").unwrap();
    }
    let copy: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("docs/openapi.json"))
        .expect("docs/openapi.json is JSON");
    assert!(
        copy == served,
        "docs/openapi.json is out of date: run UPDATE_OPENAPI=1 cargo test --test api openapi"
    );
}
