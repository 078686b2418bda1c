//! The catalog: movies, theatres with screens and seat layouts, shows. Loaded
//! once at start-up (from Postgres, a file or the demo) and read-only after,
//! so every request reads it without a lock.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use super::best::{self, RowPlan};
use super::ids::{SeatId, is_valid_id};
use super::money;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Movie {
    pub id: String,
    pub title: String,
    pub language: String,
    pub duration_minutes: u32,
    pub genres: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Theatre {
    pub id: String,
    pub name: String,
    pub city: String,
    pub screens: Vec<Screen>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Screen {
    pub id: String,
    pub name: String,
    /// Rows front to back, each with its number of seats (numbered from 1).
    pub rows: Vec<SeatRow>,
    /// Seats that exist on the map but are never sold (broken, reserved).
    #[serde(default)]
    pub unavailable: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeatRow {
    pub row: String,
    pub seats: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Show {
    pub id: String,
    pub movie_id: String,
    pub theatre_id: String,
    pub screen_id: String,
    pub start_time: DateTime<Utc>,
    /// Price per seat, a two-place decimal string.
    pub price: String,
    pub currency: String,
}

impl Show {
    /// The price per seat in minor units (validated when the catalog loads).
    pub fn price_minor(&self) -> i64 {
        money::parse_minor(&self.price).unwrap_or_default()
    }
}

/// The catalog as a file (`CATALOG`, `showgate import-catalog`) or a seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogData {
    pub movies: Vec<Movie>,
    pub theatres: Vec<Theatre>,
    pub shows: Vec<Show>,
}

/// A screen's seats in map order, with lookups.
#[derive(Debug)]
pub struct Layout {
    pub seats: Vec<SeatId>,
    labels: HashSet<String>,
    unavailable: HashSet<String>,
    /// The rows in best-available preference order (`domain::best`).
    plan: Vec<RowPlan>,
}

impl Layout {
    fn new(screen: &Screen) -> Result<Self, String> {
        let mut seats = Vec::new();
        let mut labels = HashSet::new();
        for r in &screen.rows {
            let probe = SeatId::parse(&format!("{}1", r.row));
            if probe.is_none() || r.seats == 0 || r.seats > 999 {
                return Err(format!(
                    "screen {}: bad row {:?} of {} seats",
                    screen.id, r.row, r.seats
                ));
            }
            for n in 1..=r.seats {
                let seat = SeatId::new(&r.row, n);
                if !labels.insert(seat.to_string()) {
                    return Err(format!("screen {}: seat {seat} appears twice", screen.id));
                }
                seats.push(seat);
            }
        }
        let unavailable: HashSet<String> = screen.unavailable.iter().cloned().collect();
        if let Some(bad) = unavailable.iter().find(|s| !labels.contains(*s)) {
            return Err(format!(
                "screen {}: unavailable seat {bad} is not on the map",
                screen.id
            ));
        }
        if seats.is_empty() {
            return Err(format!("screen {} has no seats", screen.id));
        }
        let rows = screen
            .rows
            .iter()
            .map(|r| RowPlan {
                row: r.row.clone(),
                seats: r.seats,
                unavailable: (1..=r.seats)
                    .filter(|n| unavailable.contains(&SeatId::new(&r.row, *n).to_string()))
                    .collect(),
            })
            .collect();
        Ok(Self {
            seats,
            labels,
            unavailable,
            plan: best::plan(rows),
        })
    }

    /// The rows in best-available preference order.
    pub fn plan(&self) -> &[RowPlan] {
        &self.plan
    }

    pub fn contains(&self, seat: &str) -> bool {
        self.labels.contains(seat)
    }

    pub fn is_unavailable(&self, seat: &str) -> bool {
        self.unavailable.contains(seat)
    }

    /// Seats that can ever be sold.
    pub fn sellable(&self) -> impl Iterator<Item = &SeatId> {
        self.seats.iter().filter(|s| !self.unavailable.contains(&s.to_string()))
    }

    /// The seats on sale now: sellable and not `taken`, in the layout's
    /// order. The one rule of "which seats are free", whatever says which
    /// are taken (the node's replica, or a fresh snapshot).
    pub fn free_seats(&self, taken: impl Fn(&str) -> bool) -> Vec<String> {
        self.sellable().map(|s| s.to_string()).filter(|s| !taken(s)).collect()
    }

    pub fn len(&self) -> usize {
        self.seats.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seats.is_empty()
    }
}

/// The loaded, validated catalog with its indexes.
#[derive(Debug)]
pub struct Catalog {
    pub data: CatalogData,
    movies: HashMap<String, usize>,
    shows: HashMap<String, usize>,
    /// Show indexes per movie, by start time.
    shows_by_movie: HashMap<String, Vec<usize>>,
    layouts: HashMap<String, Arc<Layout>>,
}

impl Catalog {
    /// Validates and indexes; the error names the first problem found.
    pub fn new(data: CatalogData) -> Result<Self, String> {
        let movies = index_movies(&data.movies)?;
        let (layouts, screen_theatre) = index_screens(&data.theatres)?;
        let mut shows = HashMap::new();
        let mut shows_by_movie: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, s) in data.shows.iter().enumerate() {
            check_show(s, &movies, &screen_theatre)?;
            if shows.insert(s.id.clone(), i).is_some() {
                return Err(format!("show {} appears twice", s.id));
            }
            shows_by_movie.entry(s.movie_id.clone()).or_default().push(i);
        }
        for list in shows_by_movie.values_mut() {
            list.sort_by_key(|&i| (data.shows[i].start_time, data.shows[i].id.clone()));
        }
        Ok(Self {
            data,
            movies,
            shows,
            shows_by_movie,
            layouts,
        })
    }

    pub fn movies(&self) -> &[Movie] {
        &self.data.movies
    }

    pub fn movie(&self, id: &str) -> Option<&Movie> {
        self.movies.get(id).map(|&i| &self.data.movies[i])
    }

    pub fn show(&self, id: &str) -> Option<&Show> {
        self.shows.get(id).map(|&i| &self.data.shows[i])
    }

    pub fn shows(&self) -> &[Show] {
        &self.data.shows
    }

    pub fn shows_of_movie(&self, movie: &str) -> impl Iterator<Item = &Show> {
        self.shows_by_movie
            .get(movie)
            .into_iter()
            .flatten()
            .map(|&i| &self.data.shows[i])
    }

    /// UTC dates on which the movie has at least one show, ascending.
    pub fn dates_of_movie(&self, movie: &str) -> Vec<NaiveDate> {
        let mut dates: Vec<NaiveDate> = self.shows_of_movie(movie).map(|s| s.start_time.date_naive()).collect();
        dates.dedup();
        dates
    }

    pub fn layout(&self, screen: &str) -> Option<Arc<Layout>> {
        self.layouts.get(screen).cloned()
    }
}

/// Movie indexes by id.
fn index_movies(movies: &[Movie]) -> Result<HashMap<String, usize>, String> {
    let mut index = HashMap::new();
    for (i, m) in movies.iter().enumerate() {
        check_id("movie", &m.id)?;
        if index.insert(m.id.clone(), i).is_some() {
            return Err(format!("movie {} appears twice", m.id));
        }
    }
    Ok(index)
}

/// Every screen's layout, and its theatre, by screen id.
type ScreenIndex = (HashMap<String, Arc<Layout>>, HashMap<String, String>);

fn index_screens(theatres: &[Theatre]) -> Result<ScreenIndex, String> {
    let mut layouts = HashMap::new();
    let mut screen_theatre = HashMap::new();
    let mut seen = HashSet::new();
    for t in theatres {
        check_id("theatre", &t.id)?;
        if !seen.insert(t.id.clone()) {
            return Err(format!("theatre {} appears twice", t.id));
        }
        for s in &t.screens {
            check_id("screen", &s.id)?;
            if layouts.insert(s.id.clone(), Arc::new(Layout::new(s)?)).is_some() {
                return Err(format!("screen {} appears twice", s.id));
            }
            screen_theatre.insert(s.id.clone(), t.id.clone());
        }
    }
    Ok((layouts, screen_theatre))
}

/// A show's id, movie, screen (in its theatre), price and currency.
fn check_show(
    s: &Show,
    movies: &HashMap<String, usize>,
    screen_theatre: &HashMap<String, String>,
) -> Result<(), String> {
    check_id("show", &s.id)?;
    if !movies.contains_key(&s.movie_id) {
        return Err(format!("show {}: unknown movie {}", s.id, s.movie_id));
    }
    if screen_theatre.get(&s.screen_id) != Some(&s.theatre_id) {
        return Err(format!(
            "show {}: screen {} is not in theatre {}",
            s.id, s.screen_id, s.theatre_id
        ));
    }
    if money::parse_minor(&s.price).is_none() {
        return Err(format!(
            "show {}: price {:?} is not a decimal like \"250.00\"",
            s.id, s.price
        ));
    }
    if s.currency.len() != 3 || !s.currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "show {}: currency {:?} is not an ISO 4217 code",
            s.id, s.currency
        ));
    }
    Ok(())
}

fn check_id(kind: &str, id: &str) -> Result<(), String> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(format!("{kind} id {id:?} must match [A-Za-z0-9_-]{{1,64}}"))
    }
}

/// Days of demo shows, today included.
pub const DEMO_DAYS: u64 = 8;

/// The demo catalog: four movies, two theatres, four screens (one IMAX of
/// 1,200 seats for flash-sale tests), four shows a day per screen today and
/// on each of the next seven days (late in the day today's shows have all
/// started; the next seven are whole). Ids are derived from dates, so every
/// node that starts on the same day seeds the same catalog.
pub fn demo(today: NaiveDate) -> CatalogData {
    let movie = |id: &str, title: &str, language: &str, minutes, genres: &[&str]| Movie {
        id: id.into(),
        title: title.into(),
        language: language.into(),
        duration_minutes: minutes,
        genres: genres.iter().map(|g| g.to_string()).collect(),
    };
    let movies = vec![
        movie("dune-3", "Dune: Part Three", "English", 166, &["Sci-Fi", "Adventure"]),
        movie(
            "monsoon-heist",
            "The Monsoon Heist",
            "Hindi",
            142,
            &["Thriller", "Crime"],
        ),
        movie("kaalachakra", "Kaalachakra", "Kannada", 151, &["Drama", "Fantasy"]),
        movie(
            "paper-planets",
            "Paper Planets",
            "English",
            98,
            &["Animation", "Family"],
        ),
    ];
    let rows = |count: u8, seats: u16| -> Vec<SeatRow> {
        (0..count)
            .map(|i| SeatRow {
                row: ((b'A' + i) as char).to_string(),
                seats,
            })
            .collect()
    };
    let screen = |id: &str, name: &str, rows: Vec<SeatRow>, unavailable: &[&str]| Screen {
        id: id.into(),
        name: name.into(),
        rows,
        unavailable: unavailable.iter().map(|s| s.to_string()).collect(),
    };
    let theatres = vec![
        Theatre {
            id: "pvr-forum".into(),
            name: "PVR Forum Mall".into(),
            city: "Bengaluru".into(),
            screens: vec![
                screen("pvr-forum-1", "Audi 1", rows(10, 14), &["A1", "A14", "J7"]),
                screen("pvr-forum-2", "Audi 2", rows(10, 12), &["E6"]),
            ],
        },
        Theatre {
            id: "inox-megaplex".into(),
            name: "INOX Megaplex".into(),
            city: "Mumbai".into(),
            screens: vec![
                screen("inox-imax", "IMAX", rows(25, 48), &["A1", "A2", "A47", "A48", "M24"]),
                screen("inox-2", "Screen 2", rows(12, 12), &["L1", "L12"]),
            ],
        },
    ];
    // 10:00, 13:30, 17:00 and 20:30 in India, as UTC.
    let times = [(4, 30), (8, 0), (11, 30), (15, 0)];
    let screens = [
        ("pvr-forum", "pvr-forum-1", "250.00"),
        ("pvr-forum", "pvr-forum-2", "220.00"),
        ("inox-megaplex", "inox-imax", "500.00"),
        ("inox-megaplex", "inox-2", "240.00"),
    ];
    let mut shows = Vec::new();
    for day in 0..DEMO_DAYS {
        let date = today.checked_add_days(Days::new(day)).unwrap_or(today);
        for (si, (theatre, screen, price)) in screens.iter().enumerate() {
            for (ti, (h, m)) in times.iter().enumerate() {
                let time = NaiveTime::from_hms_opt(*h, *m, 0).unwrap_or_default();
                let start = date.and_time(time).and_utc();
                let movie = &movies[(day as usize + si + ti) % movies.len()];
                shows.push(Show {
                    id: format!("{screen}-{}-{:02}{:02}", date.format("%Y%m%d"), h, m),
                    movie_id: movie.id.clone(),
                    theatre_id: theatre.to_string(),
                    screen_id: screen.to_string(),
                    start_time: start,
                    price: price.to_string(),
                    currency: "INR".into(),
                });
            }
        }
    }
    CatalogData {
        movies,
        theatres,
        shows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
    }

    #[test]
    fn the_demo_catalog_meets_the_contract() {
        let cat = Catalog::new(demo(today())).unwrap();
        assert!(cat.movies().len() >= 3);
        for m in cat.movies() {
            assert_eq!(
                cat.dates_of_movie(&m.id).len(),
                8,
                "{} has shows today and on each of the next 7 days",
                m.id
            );
        }
        for t in &cat.data.theatres {
            for s in &t.screens {
                let layout = cat.layout(&s.id).unwrap();
                assert!(layout.len() >= 100);
                assert!(!s.unavailable.is_empty());
            }
        }
        assert!(
            cat.shows()
                .iter()
                .any(|s| cat.layout(&s.screen_id).unwrap().len() >= 1000)
        );
    }

    #[test]
    fn bad_catalogs_are_refused_with_a_reason() {
        let mut data = demo(today());
        data.shows[0].price = "12.345".into();
        assert!(Catalog::new(data).unwrap_err().contains("price"));
        let mut data = demo(today());
        data.theatres[0].screens[0].unavailable.push("Z99".into());
        assert!(Catalog::new(data).unwrap_err().contains("Z99"));
        let mut data = demo(today());
        data.shows[1].id = data.shows[0].id.clone();
        assert!(Catalog::new(data).unwrap_err().contains("twice"));
        let mut data = demo(today());
        data.shows[0].movie_id = "nope".into();
        assert!(Catalog::new(data).unwrap_err().contains("unknown movie"));
    }
}
