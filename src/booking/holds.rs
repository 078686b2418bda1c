//! Holds and the seat map: the fast path of a sale, all on the seat locks.

use std::collections::HashSet;
use std::time::Instant;

use uuid::Uuid;

use super::locks::SeatLocks;
use super::{Booking, Hold, MapSeat, SeatMap, track};
use crate::domain::catalog::{Layout, Show};
use crate::domain::seats::{
    BestOutcome, HoldOutcome, HoldRecord, HoldStatus, Owner, ReleaseOutcome, SeatStatus, WaitStanding,
};
use crate::domain::{HoldId, ShowId};
use crate::error::{Error, Result, SeatList};
use crate::metrics as m;

/// What a hold asks for: these seats, or the best block of this many.
#[derive(Debug, Clone)]
pub enum HoldAsk {
    Seats(Vec<String>),
    Best(usize),
}

/// Why an engine's hold took nothing.
enum Picked {
    Conflict(Vec<String>),
    NotEnough(usize),
}

impl Booking {
    /// The seat map as of one version of one epoch.
    pub async fn seat_map(&self, show: &Show) -> Result<SeatMap> {
        let layout = self.layout(show)?;
        let snap = track(self.locks.snapshot(&show.id, self.clock.now_ms()).await?);
        let seats = layout
            .seats
            .iter()
            .map(|seat| {
                let id = seat.to_string();
                let status = if layout.is_unavailable(&id) {
                    SeatStatus::Unavailable
                } else {
                    snap.taken.get(&id).map(Owner::status).unwrap_or(SeatStatus::Available)
                };
                MapSeat {
                    id,
                    row: seat.row.clone(),
                    number: seat.number,
                    status,
                }
            })
            .collect();
        Ok(SeatMap {
            epoch: snap.epoch,
            version: snap.version,
            seats,
        })
    }

    /// Checks a seat list against the contract's rules (400 for each breach).
    fn check_seats(&self, layout: &Layout, seats: &[String]) -> Result<()> {
        if seats.is_empty() {
            return Err(Error::BadRequest("seatIds must name at least one seat".into()));
        }
        if seats.len() > self.limits.max_seats_per_hold {
            return Err(Error::BadRequest(format!(
                "at most {} seats per hold (MAX_SEATS_PER_HOLD)",
                self.limits.max_seats_per_hold
            )));
        }
        let mut seen = HashSet::new();
        for seat in seats {
            if !seen.insert(seat.as_str()) {
                return Err(Error::BadRequest(format!("seat {seat} is listed twice")));
            }
            if !layout.contains(seat) {
                return Err(Error::BadRequest(format!(
                    "seat {seat:?} is not on this show's seat map"
                )));
            }
        }
        Ok(())
    }

    /// Seats that can be sold now: on the map, not unavailable, not taken.
    fn available(layout: &Layout, taken: &HashSet<&str>) -> Vec<String> {
        layout
            .sellable()
            .map(|s| s.to_string())
            .filter(|s| !taken.contains(s.as_str()))
            .collect()
    }

    /// Holds seats of the show for `user`: the show must exist and not
    /// have started, the waiting room (if any) must have admitted the user;
    /// then the seats asked for, all free, or the best block of that many
    /// (`domain::best`), or nothing is held.
    pub async fn hold(&self, user: &str, show_id: &str, admission: Option<&str>, ask: HoldAsk) -> Result<Hold> {
        let show = self.show(show_id)?;
        if show.start_time <= self.clock.now() {
            return Err(Error::ShowStarted);
        }
        let show_id = ShowId::parse(&show.id).ok_or_else(|| Error::Internal("catalog show id".into()))?;
        let now_ms = self.clock.now_ms();
        match self.gate.check(&show_id, user, admission).await {
            Ok(()) => {}
            // A waiting-list offer counts as an admission: its holder may
            // pick other seats instead, as an admitted shopper may.
            Err(refused @ Error::AdmissionRequired(_)) => {
                let standing = self.locks.wait_standing(&show.id, now_ms, user).await?;
                if !matches!(standing, WaitStanding::Offered { .. }) {
                    return Err(refused);
                }
            }
            Err(e) => return Err(e),
        }
        let layout = self.layout(show)?;
        let hold_id = HoldId::new(&show_id, Uuid::now_v7());
        let ttl = self.limits.hold_ttl_ms;
        let started = Instant::now();
        let (result, seats) = match ask {
            HoldAsk::Seats(seats) => {
                self.check_seats(&layout, &seats)?;
                if seats.iter().any(|s| layout.is_unavailable(s)) {
                    metrics::counter!(m::SEAT_LOCK_ATTEMPTS, "result" => "conflict").increment(1);
                    return Err(self.unavailable_conflict(show, &layout, user, &seats, now_ms).await?);
                }
                let result = self
                    .locks
                    .hold(&show.id, now_ms, user, hold_id.as_str(), &seats, ttl)
                    .await
                    .map(|r| {
                        r.map(|out| match out {
                            HoldOutcome::Held { replaced, .. } => Ok(replaced),
                            HoldOutcome::Conflict { conflicts } => Err(Picked::Conflict(conflicts)),
                        })
                    });
                (result, seats)
            }
            HoldAsk::Best(quantity) => {
                if quantity == 0 || quantity > self.limits.max_seats_per_hold {
                    return Err(Error::BadRequest(format!(
                        "quantity must be from 1 to {} (MAX_SEATS_PER_HOLD)",
                        self.limits.max_seats_per_hold
                    )));
                }
                let mut picked = Vec::new();
                let result = self
                    .locks
                    .hold_best(&show.id, now_ms, user, hold_id.as_str(), quantity, layout.plan(), ttl)
                    .await
                    .map(|r| {
                        r.map(|out| match out {
                            BestOutcome::Held { replaced, seats, .. } => {
                                picked = seats;
                                Ok(replaced)
                            }
                            BestOutcome::NotEnough { largest_block } => Err(Picked::NotEnough(largest_block)),
                        })
                    });
                (result, picked)
            }
        };
        metrics::histogram!(m::SEAT_LOCK_DURATION).record(started.elapsed().as_secs_f64());
        let outcome = match result {
            Ok(reply) => track(reply),
            Err(e) => {
                metrics::counter!(m::SEAT_LOCK_ATTEMPTS, "result" => "error").increment(1);
                return Err(e);
            }
        };
        match outcome {
            Ok(replaced) => {
                metrics::counter!(m::SEAT_LOCK_ATTEMPTS, "result" => "held").increment(1);
                let record = HoldRecord {
                    user: user.to_owned(),
                    seats,
                    status: HoldStatus::Held,
                    created_ms: now_ms,
                    expires_ms: now_ms + ttl,
                    order_id: None,
                    order_created_ms: None,
                    order_expires_ms: None,
                    ended_ms: None,
                    replaced,
                    offer: false,
                };
                Ok(Hold {
                    id: hold_id,
                    record,
                    status: HoldStatus::Held,
                })
            }
            Err(Picked::Conflict(conflicts)) => {
                metrics::counter!(m::SEAT_LOCK_ATTEMPTS, "result" => "conflict").increment(1);
                Err(Error::SeatConflict {
                    conflicts,
                    available: self.board.available(show).await?,
                })
            }
            Err(Picked::NotEnough(largest_block)) => {
                metrics::counter!(m::SEAT_LOCK_ATTEMPTS, "result" => "not_enough").increment(1);
                Err(Error::NotEnoughSeats { largest_block })
            }
        }
    }

    /// The 409 for a request that names a permanently unavailable seat: it
    /// lists those and any seat another shopper has now.
    async fn unavailable_conflict(
        &self,
        show: &Show,
        layout: &Layout,
        user: &str,
        seats: &[String],
        now_ms: i64,
    ) -> Result<Error> {
        let snap = track(self.locks.snapshot(&show.id, now_ms).await?);
        let mut conflicts = Vec::new();
        for seat in seats {
            let taken_by_other = match snap.taken.get(seat) {
                Some(Owner::Hold(h)) => self
                    .locks
                    .hold_record(&show.id, h)
                    .await?
                    .is_none_or(|r| r.user != user),
                Some(_) => true,
                None => false,
            };
            if layout.is_unavailable(seat) || taken_by_other {
                conflicts.push(seat.clone());
            }
        }
        let taken: HashSet<&str> = snap.taken.keys().map(String::as_str).collect();
        Ok(Error::SeatConflict {
            conflicts,
            available: SeatList::new(&Self::available(layout, &taken)),
        })
    }

    /// The caller's hold; another user's is 404.
    pub async fn get_hold(&self, user: &str, hold_id: &HoldId) -> Result<Hold> {
        let record = match self
            .locks
            .hold_record(hold_id.show().as_str(), hold_id.as_str())
            .await?
        {
            Some(r) if r.user == user => r,
            Some(_) => return Err(Error::not_found("hold")),
            None => return Err(self.absent_hold(hold_id)),
        };
        let status = record.status_at(self.clock.now_ms());
        Ok(Hold {
            id: hold_id.clone(),
            record,
            status,
        })
    }

    pub async fn release(&self, user: &str, hold_id: &HoldId) -> Result<Hold> {
        let show = hold_id.show().as_str();
        match track(
            self.locks
                .release(show, self.clock.now_ms(), user, hold_id.as_str())
                .await?,
        ) {
            ReleaseOutcome::Released => self.get_hold(user, hold_id).await,
            ReleaseOutcome::NotFound => Err(self.unknown_hold(hold_id).await),
            ReleaseOutcome::NotActive(status) if status == "ORDERED" => Err(Error::HoldNotActive(
                "the hold has become an order; cancel the order instead".into(),
            )),
            ReleaseOutcome::NotActive(status) => Err(Error::HoldNotActive(format!("the hold is {status}"))),
        }
    }
}
