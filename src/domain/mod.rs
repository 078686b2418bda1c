//! Domain types and state machines. Nothing here does I/O or reads a clock:
//! time comes in as an argument, so every rule is testable on its own.

pub mod best;
pub mod catalog;
pub mod ids;
pub mod lua;
pub mod money;
pub mod order;
pub mod outlook;
pub mod pow;
pub mod seats;
pub mod waitroom;

pub use ids::{HoldId, SeatId, ShowId};
