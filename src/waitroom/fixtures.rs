//! Test fixtures the waiting room's unit tests share (and the app's).

use async_trait::async_trait;

use super::engine::{SeatCount, StoredRoom};
use crate::domain::waitroom::{PreQueue, RoomConfig};
use crate::error::Result;

/// A hall nobody has bought a seat of.
pub struct NothingSold;

#[async_trait]
impl SeatCount for NothingSold {
    async fn taken(&self, _show: &str, _now: i64) -> Result<(u64, u64)> {
        Ok((0, 0))
    }
}

/// An open FIFO room at 5/s, burst 5, ten active at most.
pub fn room() -> StoredRoom {
    StoredRoom {
        config: RoomConfig {
            admit_rate_per_second: 5.0,
            burst: 5,
            max_active: 10,
            admission_ttl_seconds: 600,
            opens_at: None,
            pre_queue: PreQueue::Fifo,
            paused: false,
            challenge_bits: 0,
        },
        seed: "seed".into(),
        sold_out: false,
        observed_rate: 0.0,
        generation: "g1".into(),
    }
}
