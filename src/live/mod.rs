//! The live seat stream: every hold, release, expiry, failure, cancellation
//! and booking reaches every open seat map.
//!
//! `hub` keeps one feed per show per node: one engine subscription, a local
//! replica of the show's seats, and a bounded broadcast channel that feeds
//! the sockets. `session` is one socket: snapshot first, then deltas whose
//! versions rise by exactly one; a socket that falls behind its bounded queue
//! gets a fresh snapshot instead of a gap. `close` names the close codes.

pub mod close;
pub mod hub;
pub mod session;
pub mod upgrade;
