//! Where the catalog is kept between runs: Postgres (`postgres`) or this
//! process.

use std::sync::Mutex;

use async_trait::async_trait;

use crate::domain::catalog::CatalogData;
use crate::error::Result;

#[async_trait]
pub trait CatalogStore: Send + Sync + 'static {
    async fn load(&self) -> Result<Option<CatalogData>>;

    /// Upserts every movie, theatre, screen and show of `data`.
    async fn save(&self, data: &CatalogData) -> Result<()>;

    /// Whether every node reads the same store (and so the same catalog).
    fn shared(&self) -> bool;
}

/// The in-process store, for the memory engine.
#[derive(Default)]
pub struct MemoryCatalog {
    /// A std mutex: nothing awaits while it is held.
    data: Mutex<Option<CatalogData>>,
}

#[async_trait]
impl CatalogStore for MemoryCatalog {
    async fn load(&self) -> Result<Option<CatalogData>> {
        Ok(self.data.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    async fn save(&self, data: &CatalogData) -> Result<()> {
        let mut slot = self.data.lock().unwrap_or_else(|p| p.into_inner());
        let merged = match slot.take() {
            None => data.clone(),
            Some(mut old) => {
                upsert(&mut old.movies, &data.movies, |m| m.id.clone());
                upsert(&mut old.theatres, &data.theatres, |t| t.id.clone());
                upsert(&mut old.shows, &data.shows, |s| s.id.clone());
                old
            }
        };
        *slot = Some(merged);
        Ok(())
    }

    fn shared(&self) -> bool {
        false
    }
}

fn upsert<T: Clone>(into: &mut Vec<T>, from: &[T], key: impl Fn(&T) -> String) {
    for item in from {
        match into.iter_mut().find(|x| key(x) == key(item)) {
            Some(slot) => *slot = item.clone(),
            None => into.push(item.clone()),
        }
    }
}
