//! Public catalog routes: movies, dates, shows, seat maps.

use std::collections::HashMap;

use axum::extract::State;
use axum::routing::get;
use axum::{Router, response::Json as JsonResponse};
use chrono::NaiveDate;
use serde_json::{Value, json};

use super::extract::{Path, Query};
use super::{AppState, views};
use crate::error::{Error, Result};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/movies", get(movies))
        .route("/api/v1/movies/{movie_id}", get(movie))
        .route("/api/v1/movies/{movie_id}/availability", get(availability))
        .route("/api/v1/movies/{movie_id}/shows", get(shows))
        .route("/api/v1/shows/{show_id}", get(show))
        .route("/api/v1/shows/{show_id}/seatmap", get(seat_map))
}

async fn movies(State(app): State<AppState>) -> JsonResponse<Value> {
    JsonResponse(json!({ "movies": app.booking.catalog.movies() }))
}

async fn movie(State(app): State<AppState>, Path(id): Path<String>) -> Result<JsonResponse<Value>> {
    let movie = app
        .booking
        .catalog
        .movie(&id)
        .ok_or_else(|| Error::not_found("movie"))?;
    Ok(JsonResponse(json!(movie)))
}

async fn availability(State(app): State<AppState>, Path(id): Path<String>) -> Result<JsonResponse<Value>> {
    let catalog = &app.booking.catalog;
    catalog.movie(&id).ok_or_else(|| Error::not_found("movie"))?;
    let dates: Vec<String> = catalog.dates_of_movie(&id).iter().map(|d| d.to_string()).collect();
    Ok(JsonResponse(json!({ "movieId": id, "dates": dates })))
}

async fn shows(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<JsonResponse<Value>> {
    let catalog = &app.booking.catalog;
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
        .map(|s| views::show(catalog, s))
        .collect();
    Ok(JsonResponse(json!({ "shows": shows })))
}

async fn show(State(app): State<AppState>, Path(id): Path<String>) -> Result<JsonResponse<Value>> {
    let show = app.booking.show(&id)?;
    let mut v = views::show(&app.booking.catalog, show);
    v["waitingRoom"] = Value::Bool(app.rooms.gated(&id).is_some());
    Ok(JsonResponse(v))
}

async fn seat_map(State(app): State<AppState>, Path(id): Path<String>) -> Result<JsonResponse<Value>> {
    let (version, seats) = app.booking.seat_map(&id).await?;
    Ok(JsonResponse(views::seat_map(&id, version, &seats)))
}
