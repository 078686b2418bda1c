//! The live seat stream: every hold, release, expiry, failure, cancellation
//! and booking reaches every open seat map.
//!
//! `hub` keeps one feed per show per node (in the `ws::registry`): one
//! engine subscription, a local replica of the show's seats, and a bounded
//! broadcast channel that feeds the sockets. `session` is one socket:
//! snapshot first, then deltas whose versions rise by exactly one; a socket
//! that falls behind its bounded queue gets a fresh snapshot instead of a
//! gap. `routes` is the socket's route.
//!
//! Live reads the catalog and booking's seat locks, nothing else.

pub mod hub;
pub mod routes;
pub mod session;
