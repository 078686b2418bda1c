//! The OpenAPI document's frame: what every route shares (the error shape,
//! the bearer scheme, the answers any route can give). Each route documents
//! itself beside its handler with `#[utoipa::path]`, and each feature's
//! router registers handler and document together (`utoipa_axum::routes!`),
//! so the document lists exactly the routes that are served.

use std::sync::Arc;

use axum::Extension;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, HeaderBuilder, OpenApi, Ref, RefOr};
use utoipa::{Modify, PartialSchema, ToSchema};

use crate::error::CODES;

/// `{"error": {...}}`: every 4xx and 5xx answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// One error. Some codes carry more fields (listed here); clients should
/// ignore fields they do not know.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// For people, not for programs: match on `code`.
    pub message: String,
    /// `SEAT_CONFLICT`: the seats asked for that are taken.
    #[schema(nullable = false)]
    pub conflicts: Option<Vec<String>>,
    /// `SEAT_CONFLICT`: every seat of the show available now.
    #[schema(nullable = false)]
    pub available: Option<Vec<String>>,
    /// `RATE_LIMITED`: the same as the `Retry-After` header.
    #[schema(nullable = false)]
    pub retry_after_seconds: Option<u64>,
    /// `NOT_ENOUGH_SEATS`: the most adjacent free seats any row has.
    #[schema(nullable = false)]
    pub largest_block: Option<u64>,
    /// `SEATS_AVAILABLE`: how many seats of the show can be held now.
    #[schema(nullable = false)]
    pub free_seats: Option<u64>,
    /// `SERVICE_UNAVAILABLE` from `/readyz`: what is down.
    #[schema(nullable = false)]
    pub down: Option<Vec<String>>,
}

/// The machine-readable error code (the list is `error::CODES`).
pub struct ErrorCode;

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("INTERNAL")
    }
}

impl PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(CODES.iter().copied()))
            .examples([serde_json::json!("SEAT_CONFLICT")])
            .into()
    }
}

impl ToSchema for ErrorCode {}

/// The document's frame: title, version, the bearer scheme.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "showgate",
        description = "A flash-sale gateway for movie tickets: catalog, seat holds, orders, a virtual \
waiting room, and live seat maps. WebSocket protocols and the semantics this document cannot \
state are in docs/api.md, docs/seat-stream.md and docs/queue-socket.md.",
        license(name = "MIT OR Apache-2.0"),
    ),
    tags(
        (name = "catalog", description = "Movies, shows and seat maps (public)"),
        (name = "holds", description = "Atomic seat holds"),
        (name = "orders", description = "Orders and mock payment"),
        (name = "waiting room", description = "The queue in front of a gated show"),
        (name = "admin", description = "Operators' waiting-room settings (admin token)"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    ),
    components(schemas(ErrorBody)),
    modifiers(&Frame),
)]
pub struct Frame;

impl Modify for Frame {
    fn modify(&self, api: &mut OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.bearer_format = Some("JWT".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
    }
}

/// The answers every route may give whatever it does, added to each
/// operation once the routes are in: 429 and 503 (and 500, which is a bug
/// but still has the shape); 401 where a token is needed; 400 and 413
/// where a body is read.
pub fn add_shared_answers(api: &mut OpenApi) {
    operations(api).for_each(add_to);
}

/// Every operation of the document (the routes use these four methods).
fn operations(api: &mut OpenApi) -> impl Iterator<Item = &mut Operation> {
    api.paths.paths.values_mut().flat_map(|item| {
        [
            item.get.as_mut(),
            item.post.as_mut(),
            item.put.as_mut(),
            item.delete.as_mut(),
        ]
        .into_iter()
        .flatten()
    })
}

fn add_to(op: &mut Operation) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_body = op.request_body.is_some();
    let mut add = |code: &str, text: &str| {
        op.responses
            .responses
            .entry(code.to_owned())
            .or_insert_with(|| RefOr::T(error_answer(code, text)));
    };
    if secured {
        add("401", "No valid bearer token");
    }
    if has_body {
        add("400", "Malformed JSON, a wrong type or a missing field");
        add("413", "The body is larger than the server takes");
        add("408", "The body did not arrive within 10 s of the request");
    }
    add("429", "Rate limited; retry after `Retry-After` seconds");
    add("500", "A bug (the message never carries internals)");
    add("503", "A backing service is unavailable; retry shortly");
}

/// Where an answer's ids lead (OpenAPI links): `(from operation, status,
/// to operation, parameters, request body)`. Readers see the journey, and
/// the fuzzer's stateful phase walks it (movies → shows → seat map → hold
/// → order → payment) instead of guessing ids.
type LinkSpec = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    Option<fn() -> serde_json::Value>,
);

const MOVIE: &[(&str, &str)] = &[("movie_id", "$response.body#/movies/0/id")];
const SHOW: &[(&str, &str)] = &[("show_id", "$response.body#/shows/0/id")];
const ROOM: &[(&str, &str)] = &[("show_id", "$response.body#/showId")];
const HOLD: &[(&str, &str)] = &[("hold_id", "$response.body#/holdId")];
const ORDER: &[(&str, &str)] = &[("order_id", "$response.body#/orderId")];

const LINKS: &[LinkSpec] = &[
    ("listMovies", "200", "getMovie", MOVIE, None),
    ("listMovies", "200", "getAvailability", MOVIE, None),
    ("listMovies", "200", "listShows", MOVIE, None),
    ("listShows", "200", "getShow", SHOW, None),
    ("listShows", "200", "getSeatMap", SHOW, None),
    ("listShows", "200", "putWaitingRoom", SHOW, None),
    ("listShows", "200", "joinQueue", SHOW, None),
    (
        "getSeatMap",
        "200",
        "createHold",
        &[],
        Some(|| serde_json::json!({"showId": "$response.body#/showId", "seatIds": ["$response.body#/seats/2/id"]})),
    ),
    ("putWaitingRoom", "200", "getWaitingRoom", ROOM, None),
    ("putWaitingRoom", "200", "joinQueue", ROOM, None),
    ("putWaitingRoom", "200", "deleteWaitingRoom", ROOM, None),
    ("createHold", "201", "getHold", HOLD, None),
    ("createHold", "201", "releaseHold", HOLD, None),
    (
        "createHold",
        "201",
        "createOrder",
        &[],
        Some(|| serde_json::json!({"holdId": "$response.body#/holdId"})),
    ),
    ("createOrder", "201", "getOrder", ORDER, None),
    ("createOrder", "201", "confirmPayment", ORDER, None),
    ("createOrder", "201", "cancelOrder", ORDER, None),
];

/// Adds `LINKS` to the answers they start from.
pub fn add_links(api: &mut OpenApi) {
    for (from, status, to, params, body) in LINKS {
        let Some(op) = operation_mut(api, from) else { continue };
        let Some(RefOr::T(answer)) = op.responses.responses.get_mut(*status) else {
            continue;
        };
        let mut link = LinkBuilder::new().operation_id(*to);
        for (name, value) in *params {
            link = link.parameter(*name, *value);
        }
        if let Some(body) = body {
            link = link.request_body(Some(body()));
        }
        answer.links.insert((*to).to_owned(), RefOr::T(link.build()));
    }
}

fn operation_mut<'a>(api: &'a mut OpenApi, id: &str) -> Option<&'a mut Operation> {
    operations(api).find(|op| op.operation_id.as_deref() == Some(id))
}

/// An error answer with the shared shape (429 also names `Retry-After`).
pub fn error_answer(code: &str, text: &str) -> Response {
    let mut b = ResponseBuilder::new().description(text).content(
        "application/json",
        Content::new(Some(Ref::from_schema_name("ErrorBody"))),
    );
    if code == "429" {
        b = b.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(u64::schema()))
                .description(Some("Seconds to wait before trying again"))
                .build(),
        );
    }
    b.build()
}

/// The document as served: rendered once when the router is built.
#[derive(Clone)]
pub struct Document(pub Arc<str>);

#[utoipa::path(get, path = "/api/v1/openapi.json", operation_id = "getOpenApi", tag = "operations",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json", body = Object)))]
pub async fn serve(Extension(doc): Extension<Document>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], doc.0.to_string())
}
