//! showgate: a flash-sale gateway for movie-ticket booking.
//!
//! # Layout
//! - `domain`: ids, money, the catalog, and the seat-lock and order state
//!   machines. No I/O, no clock: read these first.
//! - `engine`: seat locks behind one trait, `SeatLocks`, with a Redis
//!   implementation (Lua scripts in `lua/`) and an in-process one.
//! - `records`: orders, booked seats, idempotency keys, outbox and catalog
//!   behind `Records`, in Postgres or in process.
//! - `booking`: the pipeline that keeps locks and record consistent.
//! - `live`: the seat stream: one feed per show per node, one socket session.
//! - `waitroom`: the virtual waiting room: queue, admission leader, positions.
//! - `sweeper`: seat expiry, order expiry and lock reconciliation loops.
//! - `http`: one router per feature; `http::extract` turns every rejection
//!   into the contract's error; `http::views` builds the response JSON.
//! - `keys`, `lua`: Redis key names and the scripts, each built in one place.
//! - `auth`, `ratelimit`, `metrics`, `config`, `error`: the cross-cutting parts.
//! - `startup`: `Application::build`, shared by `main` and the tests.

pub mod auth;
pub mod booking;
pub mod config;
pub mod domain;
pub mod engine;
pub mod error;
pub mod events;
pub mod http;
pub mod keys;
pub mod live;
pub mod lua;
pub mod metrics;
pub mod ratelimit;
pub mod records;
pub mod startup;
pub mod sweeper;
pub mod waitroom;
