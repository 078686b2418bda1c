//! Holds: the fast path of a sale, all on the seat locks. A hold is admitted
//! (the show, the room's gate), locked (one engine command), then answered.

use std::collections::HashSet;
use std::time::Instant;

use uuid::Uuid;

use super::gate::Progress;
use super::locks::cmd;
use super::{Booking, Hold, track};
use crate::domain::catalog::{Layout, Show};
use crate::domain::seats::{BestOutcome, HoldOutcome, HoldRecord, ReleaseOutcome, WaitStanding};
use crate::domain::{HoldId, ShowId};
use crate::error::{Error, Result};
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

/// What one hold request is, once admitted and checked.
struct Request<'a> {
    show: &'a Show,
    layout: &'a Layout,
    user: &'a str,
    hold_id: &'a HoldId,
    now_ms: i64,
}

impl Booking {
    /// Holds seats of the show for `user`: the show must exist and not
    /// have started, the waiting room (if any) must have admitted the user;
    /// then the seats asked for, all free, or the best block of that many
    /// (`domain::best`), or nothing is held.
    pub async fn hold(&self, user: &str, show_id: &str, admission: Option<&str>, ask: HoldAsk) -> Result<Hold> {
        let (show, show_id) = self.admit(user, show_id, admission).await?;
        let layout = self.layout(show)?;
        self.check_ask(&layout, &ask)?;
        let hold_id = HoldId::new(&show_id, Uuid::now_v7());
        let wanted = match &ask {
            HoldAsk::Seats(seats) => seats.len(),
            HoldAsk::Best(quantity) => *quantity,
        };
        self.check_seat_cap_at_hold(user, &show.id, hold_id.as_str(), wanted)
            .await?;
        let req = Request {
            show,
            layout: &layout,
            user,
            hold_id: &hold_id,
            now_ms: self.clock.now_ms(),
        };
        if let HoldAsk::Seats(seats) = &ask
            && seats.iter().any(|s| layout.is_unavailable(s))
        {
            metrics::counter!(m::SEAT_LOCK_ATTEMPTS, "result" => "conflict").increment(1);
            return Err(self.unavailable_conflict(&req, seats).await?);
        }
        let started = Instant::now();
        let locked = self.lock(&req, &ask).await;
        metrics::histogram!(m::SEAT_LOCK_DURATION).record(started.elapsed().as_secs_f64());
        let answered = self.answer(&req, locked).await;
        if self.gate.gated(&show.id) {
            self.count_admitted(&show.id, user, &answered).await;
        }
        answered
    }

    /// An admitted shopper's hold, for the sale's funnel and the alert that
    /// admission outpaces the seats (most admitted holds finding none).
    async fn count_admitted(&self, show: &str, user: &str, answered: &Result<Hold>) {
        let result = match answered {
            Ok(_) => "held",
            Err(Error::SeatConflict { .. }) => "conflict",
            Err(Error::NotEnoughSeats { .. }) => "not_enough_seats",
            Err(_) => return,
        };
        metrics::counter!(m::WAITROOM_ADMITTED_HOLDS, "show" => show.to_owned(), "result" => result).increment(1);
        if let Ok(hold) = answered {
            let seats = hold.record.seats.len() as u64;
            self.gate.progressed(show, user, Progress::Held { seats }).await;
        }
    }

    /// The show, if it is on sale and the user may buy: admitted by the
    /// waiting room, or holding a waiting-list offer (which counts as an
    /// admission: its holder may pick other seats instead).
    async fn admit(&self, user: &str, show_id: &str, admission: Option<&str>) -> Result<(&Show, ShowId)> {
        let show = self.show(show_id)?;
        if show.start_time <= self.clock.now() {
            return Err(Error::ShowStarted);
        }
        let show_id = ShowId::parse(&show.id).ok_or_else(|| Error::Internal("catalog show id".into()))?;
        match self.gate.check(&show_id, user, admission).await {
            Ok(()) => Ok((show, show_id)),
            Err(refused @ Error::AdmissionRequired(_)) => {
                let standing = self
                    .locks
                    .run(&show.id, self.clock.now_ms(), &cmd::WaitlistStanding { user })
                    .await?
                    .out;
                match standing {
                    WaitStanding::Offered { .. } => Ok((show, show_id)),
                    _ => Err(refused),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Checks what is asked against the contract's rules (400 for each breach).
    fn check_ask(&self, layout: &Layout, ask: &HoldAsk) -> Result<()> {
        let max = self.limits.max_seats_per_hold;
        match ask {
            HoldAsk::Best(quantity) if *quantity == 0 || *quantity > max => Err(Error::BadRequest(format!(
                "quantity must be from 1 to {max} (MAX_SEATS_PER_HOLD)"
            ))),
            HoldAsk::Best(_) => Ok(()),
            HoldAsk::Seats(seats) => self.check_seats(layout, seats),
        }
    }

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

    /// One engine command: the seats asked for, or the best block.
    async fn lock(&self, req: &Request<'_>, ask: &HoldAsk) -> Result<Result<HoldRecord, Picked>> {
        let (user, hold_id, ttl_ms) = (req.user, req.hold_id.as_str(), self.limits.hold_ttl_ms);
        let show = req.show.id.as_str();
        Ok(match ask {
            HoldAsk::Seats(seats) => {
                let hold = cmd::Hold {
                    user,
                    hold_id,
                    seats,
                    ttl_ms,
                };
                match track(self.locks.run(show, req.now_ms, &hold).await?) {
                    HoldOutcome::Held { record, .. } => Ok(record),
                    HoldOutcome::Conflict { conflicts } => Err(Picked::Conflict(conflicts)),
                }
            }
            HoldAsk::Best(quantity) => {
                let best = cmd::HoldBest {
                    user,
                    hold_id,
                    quantity: *quantity,
                    rows: req.layout.plan(),
                    ttl_ms,
                };
                match track(self.locks.run(show, req.now_ms, &best).await?) {
                    BestOutcome::Held { record, .. } => Ok(record),
                    BestOutcome::NotEnough { largest_block } => Err(Picked::NotEnough(largest_block)),
                }
            }
        })
    }

    /// The hold as stored, or the contract's 409 for why there is none.
    async fn answer(&self, req: &Request<'_>, locked: Result<Result<HoldRecord, Picked>>) -> Result<Hold> {
        let result = |r: &'static str| metrics::counter!(m::SEAT_LOCK_ATTEMPTS, "result" => r).increment(1);
        match locked {
            Err(e) => {
                result("error");
                Err(e)
            }
            Ok(Ok(record)) => {
                result("held");
                Ok(Hold {
                    id: req.hold_id.clone(),
                    status: record.status_at(req.now_ms),
                    record,
                })
            }
            Ok(Err(Picked::Conflict(conflicts))) => {
                result("conflict");
                Err(Error::SeatConflict {
                    conflicts,
                    available: self.board.available(req.show).await?,
                })
            }
            Ok(Err(Picked::NotEnough(largest_block))) => {
                result("not_enough");
                Err(Error::NotEnoughSeats { largest_block })
            }
        }
    }

    /// The 409 for a request that names a permanently unavailable seat: it
    /// lists those and any seat held or booked now, both read from this
    /// node's replica of the show (as the conflict answer's `available` is),
    /// so such a request costs the shared engine nothing.
    async fn unavailable_conflict(&self, req: &Request<'_>, seats: &[String]) -> Result<Error> {
        let taken = self.board.taken_of(req.show, seats).await?;
        let conflicts = seats
            .iter()
            .filter(|s| req.layout.is_unavailable(s) || taken.contains(s))
            .cloned()
            .collect();
        Ok(Error::SeatConflict {
            conflicts,
            available: self.board.available(req.show).await?,
        })
    }

    /// The caller's hold; another user's is 404.
    pub async fn get_hold(&self, user: &str, hold_id: &HoldId) -> Result<Hold> {
        self.known_hold(hold_id)?;
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
        self.known_hold(hold_id)?;
        let show = hold_id.show().as_str();
        let release = cmd::Release {
            user,
            hold_id: hold_id.as_str(),
        };
        match track(self.locks.run(show, self.clock.now_ms(), &release).await?) {
            ReleaseOutcome::Released => self.get_hold(user, hold_id).await,
            ReleaseOutcome::NotFound => Err(self.unknown_hold(hold_id).await),
            ReleaseOutcome::NotActive(status) if status == "ORDERED" => Err(Error::HoldNotActive(
                "the hold has become an order; cancel the order instead".into(),
            )),
            ReleaseOutcome::NotActive(status) => Err(Error::HoldNotActive(format!("the hold is {status}"))),
        }
    }
}
