//! Public catalog routes: movies, dates, shows.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::response::Json as JsonResponse;
use chrono::NaiveDate;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::views::{Availability, MovieList, ShowList, ShowView};
use super::{Gates, views};
use crate::domain::catalog::{Catalog, Movie};
use crate::error::{Error, Result};
use crate::http::extract::{KnownShow, Path, Query};
use crate::http::openapi::ErrorBody;

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Catalog>: FromRef<S>,
    Arc<dyn Gates>: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(movies))
        .routes(routes!(movie))
        .routes(routes!(availability))
        .routes(routes!(shows))
        .routes(routes!(show))
}

#[utoipa::path(get, path = "/api/v1/movies", operation_id = "listMovies", tag = "catalog",
    responses((status = 200, description = "Every movie", body = MovieList)))]
async fn movies(State(catalog): State<Arc<Catalog>>) -> JsonResponse<MovieList> {
    JsonResponse(MovieList {
        movies: catalog.movies().to_vec(),
    })
}

#[utoipa::path(get, path = "/api/v1/movies/{movie_id}", operation_id = "getMovie", tag = "catalog",
    params(("movie_id" = String, Path, description = "A movie's id")),
    responses(
        (status = 200, description = "The movie", body = Movie),
        (status = 404, description = "No such movie", body = ErrorBody),
    ))]
async fn movie(State(catalog): State<Arc<Catalog>>, Path(id): Path<String>) -> Result<JsonResponse<Movie>> {
    let movie = catalog.movie(&id).ok_or_else(|| Error::not_found("movie"))?;
    Ok(JsonResponse(movie.clone()))
}

#[utoipa::path(get, path = "/api/v1/movies/{movie_id}/availability", operation_id = "getAvailability", tag = "catalog",
    params(("movie_id" = String, Path, description = "A movie's id")),
    responses(
        (status = 200, description = "The dates with at least one show", body = Availability),
        (status = 404, description = "No such movie", body = ErrorBody),
    ))]
async fn availability(
    State(catalog): State<Arc<Catalog>>,
    Path(id): Path<String>,
) -> Result<JsonResponse<Availability>> {
    catalog.movie(&id).ok_or_else(|| Error::not_found("movie"))?;
    Ok(JsonResponse(Availability {
        dates: catalog.dates_of_movie(&id),
        movie_id: id,
    }))
}

#[utoipa::path(get, path = "/api/v1/movies/{movie_id}/shows", operation_id = "listShows", tag = "catalog",
    params(
        ("movie_id" = String, Path, description = "A movie's id"),
        ("date" = Option<NaiveDate>, Query, description = "Only the shows starting on this date (UTC), `YYYY-MM-DD`"),
    ),
    responses(
        (status = 200, description = "The movie's shows", body = ShowList),
        (status = 400, description = "`date` is not a date", body = ErrorBody),
        (status = 404, description = "No such movie", body = ErrorBody),
    ))]
async fn shows(
    State(catalog): State<Arc<Catalog>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<JsonResponse<ShowList>> {
    catalog.movie(&id).ok_or_else(|| Error::not_found("movie"))?;
    let date = match q.get("date") {
        Some(d) => Some(
            NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| Error::BadRequest(format!("date {d:?} is not a date like 2026-11-25")))?,
        ),
        None => None,
    };
    let shows = catalog
        .shows_of_movie(&id)
        .filter(|s| date.is_none_or(|d| s.start_time.date_naive() == d))
        .map(|s| views::show(&catalog, s))
        .collect();
    Ok(JsonResponse(ShowList { shows }))
}

#[utoipa::path(get, path = "/api/v1/shows/{show_id}", operation_id = "getShow", tag = "catalog",
    params(("show_id" = String, Path, description = "A show's id")),
    responses(
        (status = 200, description = "The show, with `waitingRoom`", body = ShowView),
        (status = 404, description = "No such show", body = ErrorBody),
    ))]
async fn show(
    State(catalog): State<Arc<Catalog>>,
    State(gates): State<Arc<dyn Gates>>,
    KnownShow(show): KnownShow,
) -> JsonResponse<ShowView> {
    let mut v = views::show(&catalog, &show);
    v.waiting_room = Some(gates.gated(&show.id));
    JsonResponse(v)
}
