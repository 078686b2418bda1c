//! Public catalog routes: movies, dates, shows.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::response::Json as JsonResponse;
use axum::routing::get;
use chrono::NaiveDate;
use serde_json::{Value, json};

use super::{Gates, views};
use crate::domain::catalog::Catalog;
use crate::error::{Error, Result};
use crate::http::extract::{KnownShow, Path, Query};

pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Catalog>: FromRef<S>,
    Arc<dyn Gates>: FromRef<S>,
{
    Router::new()
        .route("/api/v1/movies", get(movies))
        .route("/api/v1/movies/{movie_id}", get(movie))
        .route("/api/v1/movies/{movie_id}/availability", get(availability))
        .route("/api/v1/movies/{movie_id}/shows", get(shows))
        .route("/api/v1/shows/{show_id}", get(show))
}

async fn movies(State(catalog): State<Arc<Catalog>>) -> JsonResponse<Value> {
    JsonResponse(json!({ "movies": catalog.movies() }))
}

async fn movie(State(catalog): State<Arc<Catalog>>, Path(id): Path<String>) -> Result<JsonResponse<Value>> {
    let movie = catalog.movie(&id).ok_or_else(|| Error::not_found("movie"))?;
    Ok(JsonResponse(json!(movie)))
}

async fn availability(State(catalog): State<Arc<Catalog>>, Path(id): Path<String>) -> Result<JsonResponse<Value>> {
    catalog.movie(&id).ok_or_else(|| Error::not_found("movie"))?;
    let dates: Vec<String> = catalog.dates_of_movie(&id).iter().map(|d| d.to_string()).collect();
    Ok(JsonResponse(json!({ "movieId": id, "dates": dates })))
}

async fn shows(
    State(catalog): State<Arc<Catalog>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<JsonResponse<Value>> {
    catalog.movie(&id).ok_or_else(|| Error::not_found("movie"))?;
    let date = match q.get("date") {
        Some(d) => Some(
            NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| Error::BadRequest(format!("date {d:?} is not a date like 2026-11-25")))?,
        ),
        None => None,
    };
    let shows: Vec<Value> = catalog
        .shows_of_movie(&id)
        .filter(|s| date.is_none_or(|d| s.start_time.date_naive() == d))
        .map(|s| views::show(&catalog, s))
        .collect();
    Ok(JsonResponse(json!({ "shows": shows })))
}

async fn show(
    State(catalog): State<Arc<Catalog>>,
    State(gates): State<Arc<dyn Gates>>,
    KnownShow(show): KnownShow,
) -> JsonResponse<Value> {
    let mut v = views::show(&catalog, &show);
    v["waitingRoom"] = Value::Bool(gates.gated(&show.id));
    JsonResponse(v)
}
