//! The catalog in Postgres: movies, theatres, screens and shows (partitioned
//! by show date), so every node serves the same one.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgPool};

use super::store::CatalogStore;
use crate::domain::catalog::{CatalogData, Movie, Screen, SeatRow, Show, Theatre};
use crate::domain::money;
use crate::error::Result;

pub struct PgCatalog {
    pool: PgPool,
}

impl PgCatalog {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl CatalogStore for PgCatalog {
    async fn load(&self) -> Result<Option<CatalogData>> {
        let movies = load_movies(&self.pool).await?;
        if movies.is_empty() {
            return Ok(None);
        }
        let theatres = load_theatres(&self.pool).await?;
        let shows = load_shows(&self.pool).await?;
        Ok(Some(CatalogData {
            movies,
            theatres,
            shows,
        }))
    }

    async fn save(&self, data: &CatalogData) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // One writer at a time: two nodes seeding at once must not race to
        // create the same partition.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('showgate.catalog'))")
            .execute(&mut *tx)
            .await?;
        save_movies(&mut tx, &data.movies).await?;
        save_theatres(&mut tx, &data.theatres).await?;
        save_shows(&mut tx, &data.shows).await?;
        tx.commit().await?;
        Ok(())
    }

    fn shared(&self) -> bool {
        true
    }
}

async fn load_movies(pool: &PgPool) -> Result<Vec<Movie>> {
    let movies: Vec<(String, String, String, i32, Vec<String>)> =
        sqlx::query_as("SELECT id, title, language, duration_minutes, genres FROM movies ORDER BY id")
            .fetch_all(pool)
            .await?;
    Ok(movies
        .into_iter()
        .map(|(id, title, language, minutes, genres)| Movie {
            id,
            title,
            language,
            duration_minutes: minutes.max(1) as u32,
            genres,
        })
        .collect())
}

/// The theatres, each with its screens.
async fn load_theatres(pool: &PgPool) -> Result<Vec<Theatre>> {
    let theatres: Vec<(String, String, String)> = sqlx::query_as("SELECT id, name, city FROM theatres ORDER BY id")
        .fetch_all(pool)
        .await?;
    let screens: Vec<(String, String, String, serde_json::Value, Vec<String>)> =
        sqlx::query_as("SELECT id, theatre_id, name, seat_rows, unavailable FROM screens ORDER BY id")
            .fetch_all(pool)
            .await?;
    let mut theatres: Vec<Theatre> = theatres
        .into_iter()
        .map(|(id, name, city)| Theatre {
            id,
            name,
            city,
            screens: Vec::new(),
        })
        .collect();
    for (id, theatre_id, name, rows, unavailable) in screens {
        let rows: Vec<SeatRow> = serde_json::from_value(rows)?;
        if let Some(t) = theatres.iter_mut().find(|t| t.id == theatre_id) {
            t.screens.push(Screen {
                id,
                name,
                rows,
                unavailable,
            });
        }
    }
    Ok(theatres)
}

/// A `shows` row: id, movie, theatre, screen, start time, price in minor
/// units, currency.
type ShowRow = (String, String, String, String, DateTime<Utc>, i64, String);

async fn load_shows(pool: &PgPool) -> Result<Vec<Show>> {
    let shows: Vec<ShowRow> = sqlx::query_as(
        "SELECT id, movie_id, theatre_id, screen_id, start_time, price_minor, currency FROM shows ORDER BY start_time, id",
    )
    .fetch_all(pool)
    .await?;
    Ok(shows
        .into_iter()
        .map(
            |(id, movie_id, theatre_id, screen_id, start_time, price, currency)| Show {
                id,
                movie_id,
                theatre_id,
                screen_id,
                start_time,
                price: money::format_minor(price),
                currency: currency.trim().to_owned(),
            },
        )
        .collect())
}

async fn save_movies(tx: &mut PgConnection, movies: &[Movie]) -> Result<()> {
    for m in movies {
        sqlx::query(
            "INSERT INTO movies (id, title, language, duration_minutes, genres) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, language = EXCLUDED.language, \
             duration_minutes = EXCLUDED.duration_minutes, genres = EXCLUDED.genres",
        )
        .bind(&m.id)
        .bind(&m.title)
        .bind(&m.language)
        .bind(m.duration_minutes as i32)
        .bind(&m.genres)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// The theatres and their screens.
async fn save_theatres(tx: &mut PgConnection, theatres: &[Theatre]) -> Result<()> {
    for t in theatres {
        sqlx::query(
            "INSERT INTO theatres (id, name, city) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, city = EXCLUDED.city",
        )
        .bind(&t.id)
        .bind(&t.name)
        .bind(&t.city)
        .execute(&mut *tx)
        .await?;
        for s in &t.screens {
            sqlx::query(
                "INSERT INTO screens (id, theatre_id, name, seat_rows, unavailable) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (id) DO UPDATE SET theatre_id = EXCLUDED.theatre_id, name = EXCLUDED.name, \
                 seat_rows = EXCLUDED.seat_rows, unavailable = EXCLUDED.unavailable",
            )
            .bind(&s.id)
            .bind(&t.id)
            .bind(&s.name)
            .bind(serde_json::to_value(&s.rows)?)
            .bind(&s.unavailable)
            .execute(&mut *tx)
            .await?;
        }
    }
    Ok(())
}

/// The shows, in the partitions of their dates (made first).
async fn save_shows(tx: &mut PgConnection, shows: &[Show]) -> Result<()> {
    let mut months: Vec<NaiveDate> = shows.iter().map(|s| s.start_time.date_naive()).collect();
    months.sort();
    months.dedup();
    for d in months {
        sqlx::query("SELECT ensure_show_partition($1)")
            .bind(d)
            .execute(&mut *tx)
            .await?;
    }
    for s in shows {
        // A show keeps its id when it moves: drop it from any other date.
        sqlx::query("DELETE FROM shows WHERE id = $1 AND show_date <> $2")
            .bind(&s.id)
            .bind(s.start_time.date_naive())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO shows (id, show_date, movie_id, theatre_id, screen_id, start_time, price_minor, currency) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (show_date, id) DO UPDATE SET \
             movie_id = EXCLUDED.movie_id, theatre_id = EXCLUDED.theatre_id, screen_id = EXCLUDED.screen_id, \
             start_time = EXCLUDED.start_time, price_minor = EXCLUDED.price_minor, currency = EXCLUDED.currency",
        )
        .bind(&s.id)
        .bind(s.start_time.date_naive())
        .bind(&s.movie_id)
        .bind(&s.theatre_id)
        .bind(&s.screen_id)
        .bind(s.start_time)
        .bind(s.price_minor())
        .bind(&s.currency)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}
