//! The waiting list for returned seats: join, where one stands, leave, and
//! the list's figures. The list lives with the show's seat locks (one
//! script, one slot), because handing a returned seat to the next waiter
//! must happen in the same atomic step that frees it
//! (`domain::seats::waitlist`).
//!
//! Every call the feature makes to the seat locks is in this file, so the
//! engine's API can change in one place. Around it:
//! - `routes`: the HTTP handlers (join, read, leave, the socket, ops' figures).
//! - `socket`: one waiting-list socket (protocol: docs/waitlist-socket.md),
//!   tested on channels.
//! - `views`: the JSON shapes, of the answers and of the socket's messages.

pub mod routes;
mod socket;
mod views;

use uuid::Uuid;

use super::locks::cmd;
use super::{Booking, track};
use crate::domain::order::OrderStatus;
use crate::domain::seats::{OfferEnd, WaitJoin, WaitStanding, WaitStats};
use crate::domain::{HoldId, ShowId};
use crate::error::{Error, Result};
use crate::metrics as m;

/// What a join answered: where the shopper stands, and whether they are new
/// on the list (201) or were on it already (200).
pub struct Joined {
    pub standing: WaitStanding,
    pub created: bool,
}

impl Booking {
    /// Puts `user` on the show's waiting list for `quantity` seats. 409
    /// `SEATS_AVAILABLE` when that many can be held now.
    pub async fn wait_join(&self, user: &str, show_id: &str, admission: Option<&str>, quantity: u64) -> Result<Joined> {
        let show = self.show(show_id)?;
        if show.start_time <= self.clock.now() {
            return Err(Error::ShowStarted);
        }
        let max = self.limits.max_seats_per_hold;
        let quantity = usize::try_from(quantity).unwrap_or(usize::MAX);
        if quantity == 0 || quantity > max {
            return Err(Error::BadRequest(format!(
                "quantity must be from 1 to {max} (MAX_SEATS_PER_HOLD)"
            )));
        }
        let show_id = ShowId::parse(&show.id).ok_or_else(|| Error::Internal("catalog show id".into()))?;
        if self.gate.gated(&show.id) {
            self.refuse_after_an_order(user, &show.id).await?;
        }
        // The same gate as a hold's (it also refuses while the rooms are unknown).
        self.gate.check(&show_id, user, admission).await?;
        self.check_seat_cap(user, &show.id, "", quantity).await?;
        let layout = self.layout(show)?;
        // The id the offer's hold will have: minted here, where ids are
        // unguessable, and kept with the waiter until an offer is made.
        let offer_id = HoldId::new(&show_id, Uuid::now_v7());
        let join = cmd::JoinWaitlist {
            user,
            quantity,
            offer_id: offer_id.as_str(),
            rows: layout.plan(),
            offer_ttl_ms: self.limits.offer_ttl_ms,
        };
        let reply = self.locks.run(&show.id, self.clock.now_ms(), &join).await?;
        match track(reply) {
            WaitJoin::Joined(standing) => {
                metrics::counter!(m::WAITLIST_JOINS).increment(1);
                Ok(Joined {
                    standing,
                    created: true,
                })
            }
            WaitJoin::Already(standing) => Ok(Joined {
                standing,
                created: false,
            }),
            WaitJoin::SeatsAvailable { free } => Err(Error::SeatsAvailable { free_seats: free }),
        }
    }

    /// On a gated show the list is a way to the seats for admitted shoppers
    /// only, once: a shopper whose offer became an order that still stands
    /// (waiting for payment, or paid) may not join again (409).
    async fn refuse_after_an_order(&self, user: &str, show: &str) -> Result<()> {
        let standing = cmd::WaitlistStanding { user };
        let WaitStanding::Ended {
            end: OfferEnd::Accepted(order),
            ..
        } = self.locks.run(show, self.clock.now_ms(), &standing).await?.out
        else {
            return Ok(());
        };
        let Ok(order) = Uuid::parse_str(&order) else {
            return Ok(());
        };
        match self.records.order(order).await? {
            Some(o) if matches!(o.status, OrderStatus::PaymentPending | OrderStatus::Confirmed) => {
                Err(Error::InvalidState(
                    "your offer on this show's waiting list became an order: the list serves each admitted shopper once"
                        .into(),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Where `user` stands on the show's list; 404 when they never joined
    /// (or their last offer's record is gone).
    pub async fn wait_standing(&self, user: &str, show_id: &str) -> Result<WaitStanding> {
        let show = self.show(show_id)?;
        let standing = cmd::WaitlistStanding { user };
        match self.locks.run(&show.id, self.clock.now_ms(), &standing).await?.out {
            WaitStanding::None => Err(Error::NotFound("you are not on this show's waiting list".into())),
            standing => Ok(standing),
        }
    }

    /// Takes `user` off the list, giving back a live offer (its seats go to
    /// the next waiter); answers where they stood. 404 when they were
    /// neither waiting nor holding an offer.
    pub async fn wait_leave(&self, user: &str, show_id: &str) -> Result<WaitStanding> {
        let show = self.show(show_id)?;
        let leave = cmd::LeaveWaitlist { user };
        match track(self.locks.run(&show.id, self.clock.now_ms(), &leave).await?) {
            WaitStanding::None => Err(Error::NotFound("you are not on this show's waiting list".into())),
            standing => Ok(standing),
        }
    }

    /// The show's list: how long, and what became of its offers.
    pub async fn wait_stats(&self, show_id: &str) -> Result<WaitStats> {
        let show = self.show(show_id)?;
        self.locks.wait_stats(&show.id).await
    }
}
