//! showgate: a flash-sale gateway for movie-ticket booking.
//!
//! # Layout
//! Features over a shared floor, wired by one composition root.
//!
//! The root:
//! - `app`: builds everything (`Application::build`, shared by `main` and
//!   the tests), the state with its `FromRef` substates, the router that
//!   merges the features' routes, and the ops routes. Nothing imports it.
//!
//! The features, each in one folder with its routes, views, sockets,
//! engines and loops:
//! - `catalog`: movies, theatres, shows; where the catalog is stored and
//!   which one a node serves.
//! - `booking`: holds, orders, idempotency, the outbox; seat `locks` (Redis
//!   and memory side by side) and the `store` (Postgres and memory side by
//!   side); expiry and reconciliation loops; the admission `gate` it asks.
//! - `waitroom`: the virtual waiting room: the room engines, the admission
//!   leader (which also makes the outlook estimate and sets the funnel's
//!   gauges), the queue socket hub, and booking's gate implemented.
//! - `live`: the seat stream: one feed per show per node, one socket session.
//!
//! The floor, which knows no feature:
//! - `domain`: ids, money, the catalog, the seat-lock, order and queue
//!   rules, and the queue's outlook (each shopper's chance of a seat). No
//!   I/O, no clock: read these first.
//! - `redis`: the connection, pub/sub, key names and scripts; `postgres`:
//!   the pool and migrations.
//! - `ws`: the WebSocket upgrade, limits, close codes, session helpers and
//!   the per-show feed registry both socket hubs use.
//! - `http`: extractors that parse ids and known shows at the edge and turn
//!   every rejection into the contract's error; rate limits; time formats.
//! - `auth`, `config`, `error`, `metrics`, `clock`, `broadcast`, `supervise`
//!   (background tasks restarted after a panic).
//!
//! # Dependency rule
//! app → features → floor → domain. Between features only booking →
//! catalog, live → catalog and booking's board trait (which it
//! implements), and waitroom → catalog and booking's gate trait (which it
//! implements). No cycle, nothing upward:
//! features meet through small traits the asking side defines
//! (`booking::gate::AdmissionGate`, `booking::board::SeatBoard`,
//! `catalog::Gates`, `waitroom::SeatCount`, `live::source::SeatSource`),
//! and `app` wires booking's seat engine into live and the waiting room.

pub mod app;
pub mod auth;
pub mod booking;
pub mod broadcast;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod live;
pub mod metrics;
pub mod postgres;
pub mod redis;
pub mod supervise;
pub mod waitroom;
pub mod ws;
