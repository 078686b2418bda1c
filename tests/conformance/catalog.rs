//! The catalog's store: in process and Postgres.

use std::sync::Arc;

use showgate::catalog::store::CatalogStore;

use super::common;

async fn the_catalog_round_trips(store: Arc<dyn CatalogStore>) {
    assert!(store.load().await.unwrap().is_none());
    let demo = showgate::domain::catalog::demo(chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap());
    store.save(&demo).await.unwrap();
    store.save(&demo).await.unwrap();
    let loaded = store.load().await.unwrap().unwrap();
    let catalog = showgate::domain::catalog::Catalog::new(loaded.clone()).unwrap();
    assert_eq!(loaded.shows.len(), demo.shows.len());
    for s in &demo.shows {
        assert_eq!(catalog.show(&s.id), Some(s));
    }
    assert_eq!(catalog.movie("dune-3"), demo.movies.iter().find(|m| m.id == "dune-3"));
}

macro_rules! catalog_cases {
    ($($case:ident),* $(,)?) => {
        mod memory_catalog {
            $( #[tokio::test] async fn $case() { super::$case(super::common::memory_catalog()).await } )*
        }
        mod postgres_catalog {
            $( #[tokio::test] async fn $case() { super::$case(super::common::pg_catalog().await).await } )*
        }
    };
}

catalog_cases!(the_catalog_round_trips);
