//! The in-process engine: `domain::seats::ShowSeats` per show behind a mutex,
//! deltas on a tokio broadcast channel per show. One node, no set-up.

use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use futures::stream::BoxStream;
use tokio::sync::broadcast;

use super::{EVENT_BUFFER, Reply, SeatCommand};
use crate::broadcast::lossy_stream;
use crate::domain::seats::{At, HoldRecord, LockTimes, SeatDelta, ShowSeats, WaitStats};
use crate::error::{Error, Result};

struct Show {
    /// A std mutex: no `.await` happens while it is held, and every step
    /// is a few map updates.
    seats: Mutex<ShowSeats>,
    events: broadcast::Sender<SeatDelta>,
}

impl Show {
    fn seats(&self) -> std::sync::MutexGuard<'_, ShowSeats> {
        self.seats.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Told of each offer the in-process engine makes: on a gated show the
/// offer is its waiter's admission (the scripts write it themselves).
pub trait OfferAdmissions: Send + Sync {
    fn offered(&self, show: &str, user: &str, until_ms: i64);
}

pub struct MemorySeatLocks {
    shows: DashMap<String, Arc<Show>>,
    times: LockTimes,
    admissions: Option<Arc<dyn OfferAdmissions>>,
}

impl MemorySeatLocks {
    pub fn new(times: LockTimes) -> Self {
        Self {
            shows: DashMap::new(),
            times,
            admissions: None,
        }
    }

    /// The same engine, telling `admissions` of every offer it makes.
    pub fn admitting(self, admissions: Arc<dyn OfferAdmissions>) -> Self {
        Self {
            admissions: Some(admissions),
            ..self
        }
    }

    fn show(&self, id: &str) -> Arc<Show> {
        if let Some(s) = self.shows.get(id) {
            return s.clone();
        }
        self.shows
            .entry(id.to_owned())
            .or_insert_with(|| {
                Arc::new(Show {
                    seats: Mutex::new(ShowSeats::default()),
                    events: broadcast::channel(EVENT_BUFFER).0,
                })
            })
            .clone()
    }

    /// Runs the command's step under the show's lock and publishes its
    /// delta before the lock is released, so subscribers see deltas in
    /// version order. A show with no state refuses, as the scripts do.
    pub fn run<C: SeatCommand>(&self, id: &str, now: i64, cmd: &C) -> Result<Reply<C::Out>> {
        let show = self.show(id);
        let mut seats = show.seats();
        if C::NEEDS_STATE && !seats.has_state() {
            return Err(Error::StateMissing(id.to_owned()));
        }
        let at = At {
            show: id,
            now,
            times: self.times,
        };
        if let Some(user) = cmd.charged() {
            seats.charge(at, user).map_err(Error::rate_limited_ms)?;
        }
        let (out, fx) = cmd.step(&mut seats, at);
        if let Some(delta) = fx.delta {
            // No receiver is fine: nobody is watching this show.
            let _ = show.events.send(delta);
        }
        let reply = Reply {
            out,
            version: seats.version(),
            epoch: seats.epoch().to_owned(),
            expired: fx.expired_holds,
        };
        // Told after the show's lock is released: the rooms take their own.
        drop(seats);
        if let Some(admissions) = &self.admissions {
            for (user, until) in &fx.offers {
                admissions.offered(id, user, *until);
            }
        }
        Ok(reply)
    }

    pub fn position(&self, show: &str) -> Option<(String, u64)> {
        let show = self.show(show);
        let seats = show.seats();
        seats.has_state().then(|| (seats.epoch().to_owned(), seats.version()))
    }

    pub fn next_due(&self, show: &str) -> super::Due {
        let show = self.show(show);
        let seats = show.seats();
        if !seats.has_state() {
            return super::Due::Now;
        }
        seats.next_due().map_or(super::Due::Never, super::Due::At)
    }

    pub fn wait_stats(&self, show: &str) -> WaitStats {
        self.show(show).seats().wait_stats()
    }

    pub fn hold_record(&self, show: &str, hold_id: &str) -> Option<HoldRecord> {
        self.show(show).seats().hold_record(hold_id)
    }

    pub fn forget(&self, show: &str) {
        self.shows.remove(show);
    }

    pub fn subscribe(&self, show: &str) -> BoxStream<'static, SeatDelta> {
        lossy_stream(self.show(show).events.subscribe())
    }
}
