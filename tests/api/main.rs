//! End-to-end tests of the HTTP contract: the real app, real Redis, real
//! Postgres, real HTTP clients. One binary; each module one concern.

mod helpers;

mod abuse;
mod auth;
mod best;
mod challenge;
mod client_addr;
mod drain;
mod errors;
mod expiry;
mod failover;
mod journey;
mod live;
mod openapi;
mod ops;
mod outlook;
mod quiet_faults;
mod race;
mod recovery;
mod saturation;
mod seat_cap;
mod sweeping;
mod waitlist;
mod waitroom;
mod waitroom_scale;
