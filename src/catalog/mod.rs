//! The catalog: movies, theatres, screens and shows. The rules and the demo
//! data are in `domain::catalog`; this feature stores the catalog
//! (`store`, `postgres`), chooses which one a node serves (`load`), and
//! answers the public browse routes (`routes`, `views`).
//!
//! Other features read the catalog as `Arc<Catalog>`; none writes it.

pub mod load;
pub mod postgres;
pub mod routes;
pub mod store;
pub mod views;

/// Whether a show has a waiting room, for the show's page. The waiting room
/// implements it; the catalog only asks.
pub trait Gates: Send + Sync + 'static {
    fn gated(&self, show: &str) -> bool;
}

/// No show has a waiting room (tools and tests without one).
pub struct NoGates;

impl Gates for NoGates {
    fn gated(&self, _show: &str) -> bool {
        false
    }
}
