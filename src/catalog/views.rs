//! The catalog's JSON shapes.

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::catalog::{Catalog, Movie, Show};
use crate::http::time::time;

#[derive(Serialize, ToSchema)]
pub struct MovieList {
    pub movies: Vec<Movie>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Availability {
    pub movie_id: String,
    /// Dates with at least one show, ascending.
    pub dates: Vec<NaiveDate>,
}

#[derive(Serialize, ToSchema)]
pub struct ShowList {
    pub shows: Vec<ShowView>,
}

/// A show as the contract lists it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShowView {
    pub id: String,
    pub movie_id: String,
    pub theatre_id: String,
    pub screen_id: String,
    #[schema(format = DateTime)]
    pub start_time: String,
    /// The price of one seat, a decimal string with two places.
    #[schema(example = "500.00")]
    pub price: String,
    #[schema(example = "INR")]
    pub currency: String,
    pub theatre_name: Option<String>,
    pub city: Option<String>,
    pub screen_name: Option<String>,
    pub total_seats: Option<usize>,
    /// Whether the show has a waiting room (only on `GET /shows/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub waiting_room: Option<bool>,
}

pub fn show(catalog: &Catalog, s: &Show) -> ShowView {
    let layout = catalog.layout(&s.screen_id);
    let theatre = catalog.data.theatres.iter().find(|t| t.id == s.theatre_id);
    let screen = theatre.and_then(|t| t.screens.iter().find(|sc| sc.id == s.screen_id));
    ShowView {
        id: s.id.clone(),
        movie_id: s.movie_id.clone(),
        theatre_id: s.theatre_id.clone(),
        screen_id: s.screen_id.clone(),
        start_time: time(s.start_time),
        price: s.price.clone(),
        currency: s.currency.clone(),
        theatre_name: theatre.map(|t| t.name.clone()),
        city: theatre.map(|t| t.city.clone()),
        screen_name: screen.map(|sc| sc.name.clone()),
        total_seats: layout.map(|l| l.len()),
        waiting_room: None,
    }
}
