//! The catalog's JSON shapes.

use serde_json::{Value, json};

use crate::domain::catalog::{Catalog, Show};
use crate::http::time::time;

/// A show as the contract lists it (`waitingRoom` is added by the show's route).
pub fn show(catalog: &Catalog, s: &Show) -> Value {
    let layout = catalog.layout(&s.screen_id);
    let theatre = catalog.data.theatres.iter().find(|t| t.id == s.theatre_id);
    let screen = theatre.and_then(|t| t.screens.iter().find(|sc| sc.id == s.screen_id));
    json!({
        "id": s.id,
        "movieId": s.movie_id,
        "theatreId": s.theatre_id,
        "screenId": s.screen_id,
        "startTime": time(s.start_time),
        "price": s.price,
        "currency": s.currency,
        "theatreName": theatre.map(|t| t.name.as_str()),
        "city": theatre.map(|t| t.city.as_str()),
        "screenName": screen.map(|sc| sc.name.as_str()),
        "totalSeats": layout.map(|l| l.len()),
    })
}
