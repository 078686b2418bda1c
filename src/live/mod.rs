//! The live seat stream: every hold, release, expiry, failure, cancellation
//! and booking reaches every open seat map.
//!
//! - `hub`: one feed per show per node (kept in `ws::registry`), for seat
//!   sockets and REST readers alike.
//! - `feed`: the replica of the show's seats, batched deltas
//!   (`SEAT_STREAM_BATCH_MS`), a short history, and the write passes that
//!   put each batch's one frame into every socket.
//! - `conn`: one socket's write side (a non-blocking write from the pass,
//!   or a queue for the socket's task); `session`: the socket's task.
//! - `views`: the stream's JSON and the REST map, built once per version.
//! - `routes`: the socket and `GET /shows/{id}/seatmap`.
//! - `source`: what live asks of the seat engine (`SeatSource`).
//!
//! Live reads the catalog and its `SeatSource`, nothing else.

pub mod conn;
pub mod feed;
pub mod hub;
pub mod routes;
pub mod session;
pub mod source;
pub mod views;
