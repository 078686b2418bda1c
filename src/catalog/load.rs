//! Which catalog a node serves: `CATALOG` if given, else the demo for today.
//! With a shared store (Postgres) the catalog is stored there and read back,
//! so every node serves the same one; the demo is (re)seeded only into an
//! empty store or one that already holds the demo, never over an imported
//! catalog.

use std::path::Path;

use chrono::NaiveDate;

use super::store::CatalogStore;
use crate::domain::catalog::{self, Catalog, CatalogData};

/// A movie id of the demo catalog: its presence means the demo is in use.
const DEMO_MARKER_MOVIE: &str = "dune-3";

/// Why a catalog could not be read or stored.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file named by `CATALOG` (or `import-catalog`) is unreadable or invalid.
    #[error("{0}")]
    File(String),
    /// The store did not answer.
    #[error("{0}")]
    Store(crate::error::Error),
}

/// Reads and validates a catalog file.
pub fn read_file(path: &Path) -> Result<CatalogData, LoadError> {
    let at = |e: &dyn std::fmt::Display| LoadError::File(format!("{}: {e}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| at(&e))?;
    let data: CatalogData = serde_json::from_str(&text).map_err(|e| at(&e))?;
    Catalog::new(data.clone()).map_err(|e| at(&e))?;
    Ok(data)
}

/// The catalog to serve from `file` (if given) or the demo of `today`.
pub async fn load(file: Option<&Path>, store: &dyn CatalogStore, today: NaiveDate) -> Result<Catalog, LoadError> {
    let given = file.map(read_file).transpose()?;
    let data = match given {
        Some(data) => {
            store.save(&data).await.map_err(LoadError::Store)?;
            data
        }
        None => {
            let stored = store.load().await.map_err(LoadError::Store)?;
            let demo_in_use = stored
                .as_ref()
                .is_none_or(|c| c.movies.iter().any(|m| m.id == DEMO_MARKER_MOVIE));
            if demo_in_use {
                store.save(&catalog::demo(today)).await.map_err(LoadError::Store)?;
            }
            store
                .load()
                .await
                .map_err(LoadError::Store)?
                .unwrap_or_else(|| catalog::demo(today))
        }
    };
    let data = if store.shared() {
        store.load().await.map_err(LoadError::Store)?.unwrap_or(data)
    } else {
        data
    };
    Catalog::new(data).map_err(LoadError::File)
}
