//! The virtual waiting room: shoppers queue per show, watch their position
//! live, and are admitted at the rate ops set.
//!
//! - `engine`: the storage and atomic steps of a room behind `WaitingRooms`,
//!   with `redis` (scripts `lua/wr_*.lua`; `batch` sends a show's concurrent
//!   joins as one script call) and `memory` side by side.
//! - `rooms`: the node's side: config cache, one `leader` per gated show (a
//!   lease per show, a `governor` bucket), liveness, the routes' operations.
//! - `hub` keeps each node's queue sockets' positions exact from events;
//!   `socket` is one queue socket.
//! - `store`: room configs kept durably in Postgres, re-seeded into Redis.
//! - `routes`, `views`: the HTTP side. `gate`: the admission gate booking
//!   asks, implemented here.
//!
//! The waiting room reads the catalog and implements booking's gate; it
//! knows nothing else of booking.

pub mod batch;
pub mod challenge;
pub mod engine;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod gate;
pub mod hub;
pub mod leader;
pub mod memory;
pub mod redis;
pub mod rooms;
pub mod routes;
pub mod socket;
pub mod store;
pub mod views;

pub use engine::{SeatCount, WaitingRooms};
