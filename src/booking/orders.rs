//! Orders: from a hold to a ticket (or to the seats' return). The record
//! decides; the locks follow (`sync_locks`), and the reconciler retries any
//! that did not.

use uuid::Uuid;

use super::gate::Progress;
use super::locks::cmd;
use super::locks::recovering::Why;
use super::store::{Applied, Cursor, Order};
use super::{Booking, track};
use crate::clock::from_ms;
use crate::domain::HoldId;
use crate::domain::catalog::Show;
use crate::domain::order::{OrderEvent, OrderStatus, Refusal, SeatEffect};
use crate::domain::seats::{ExtendOutcome, OrderLock};
use crate::error::{Error, Result};
use crate::metrics as m;

impl Booking {
    /// Creates the order for a hold, or answers the one it already became.
    /// `true` when this call created it.
    pub async fn create_order(&self, user: &str, hold: &HoldId) -> Result<(Order, bool)> {
        self.known_hold(hold)?;
        let hold_id = hold.as_str();
        if let Some(existing) = self.records.order_by_hold(hold_id).await? {
            if existing.user_id != user {
                return Err(Error::not_found("hold"));
            }
            return Ok((self.settle_if_due(existing).await?, false));
        }
        let show = self.show(hold.show().as_str())?;
        if let Some(rec) = self.locks.hold_record(&show.id, hold_id).await?
            && rec.user == user
        {
            self.check_seat_cap(user, &show.id, hold_id, rec.seats.len()).await?;
        }
        let order_id = Uuid::new_v4();
        let now_ms = self.clock.now_ms();
        let order = order_id.to_string();
        let extend = cmd::ExtendForOrder {
            user,
            hold_id,
            order_id: &order,
            order_ttl_ms: self.limits.order_ttl_ms,
        };
        let outcome = track(self.locks.run(&show.id, now_ms, &extend).await?);
        let lock = match outcome {
            ExtendOutcome::Attached(lock) | ExtendOutcome::Existing(lock) => lock,
            ExtendOutcome::NotFound => return Err(self.unknown_hold(hold).await),
            ExtendOutcome::Expired => return Err(Error::HoldExpired),
            ExtendOutcome::NotActive(status) => {
                return Err(Error::HoldNotActive(format!("the hold is {status}")));
            }
        };
        // The lock names the order; if an earlier attempt locked it but never
        // wrote the record (a crash, Postgres down), this writes it now.
        let record = self
            .locks
            .hold_record(&show.id, hold_id)
            .await?
            .ok_or_else(|| Error::not_found("hold"))?;
        let order = self.new_order(user, show, hold_id, record.seats, &lock)?;
        let (order, created) = self.records.create_order(&order).await?;
        if order.user_id != user {
            return Err(Error::not_found("hold"));
        }
        if created {
            metrics::counter!(m::ORDERS, "status" => OrderStatus::PaymentPending.as_str()).increment(1);
            self.gate.progressed(&show.id, user, Progress::Ordered).await;
        }
        Ok((order, created))
    }

    fn new_order(&self, user: &str, show: &Show, hold_id: &str, seats: Vec<String>, lock: &OrderLock) -> Result<Order> {
        let id = Uuid::parse_str(&lock.order_id).map_err(|_| Error::Internal("order id in lock".into()))?;
        let created = from_ms(lock.created_ms);
        Ok(Order {
            id,
            user_id: user.to_owned(),
            show_id: show.id.clone(),
            hold_id: hold_id.to_owned(),
            amount_minor: show.price_minor() * seats.len() as i64,
            seat_ids: seats,
            currency: show.currency.clone(),
            status: OrderStatus::PaymentPending,
            created_at: created,
            expires_at: from_ms(lock.expires_ms),
            updated_at: created,
            ticket_code: None,
            payment_reference: None,
            failure_reason: None,
            lock_synced: true,
        })
    }

    /// The caller's order (admins see any); expiry applied if due.
    pub async fn order(&self, user: &str, admin: bool, id: Uuid) -> Result<Order> {
        let order = self.owned_order(user, admin, id).await?;
        self.settle_if_due(order).await
    }

    async fn owned_order(&self, user: &str, admin: bool, id: Uuid) -> Result<Order> {
        let order = self.records.order(id).await?.ok_or_else(|| Error::not_found("order"))?;
        if order.user_id != user && !admin {
            return Err(Error::not_found("order"));
        }
        Ok(order)
    }

    /// A PAYMENT_PENDING order past its expiry is expired on read, so every
    /// answer agrees with `expiresAt` whatever the sweeper has done yet.
    async fn settle_if_due(&self, order: Order) -> Result<Order> {
        if order.status == OrderStatus::PaymentPending && self.clock.now() >= order.expires_at {
            return self.expire_order(order.id).await;
        }
        Ok(order)
    }

    pub async fn expire_order(&self, id: Uuid) -> Result<Order> {
        match self
            .records
            .apply(id, OrderEvent::Expire, self.clock.now(), None)
            .await?
        {
            Applied::Changed { order, effect } => {
                metrics::counter!(m::ORDERS, "status" => order.status.as_str()).increment(1);
                self.sync_locks(&order, effect).await;
                Ok(order)
            }
            Applied::Unchanged(o) | Applied::Refused(o, _) | Applied::SeatsTaken { order: o, .. } => Ok(o),
        }
    }

    pub async fn confirm_payment(&self, user: &str, id: Uuid, success: bool, reference: Option<&str>) -> Result<Order> {
        let order = self.owned_order(user, false, id).await?;
        let event = if success {
            OrderEvent::PaymentSucceeded
        } else {
            OrderEvent::PaymentFailed
        };
        match self.records.apply(order.id, event, self.clock.now(), reference).await? {
            Applied::Changed { order, effect } => {
                metrics::counter!(m::ORDERS, "status" => order.status.as_str()).increment(1);
                self.sync_locks(&order, effect).await;
                if order.status == OrderStatus::Confirmed {
                    let seats = order.seat_ids.len() as u64;
                    self.gate
                        .progressed(&order.show_id, &order.user_id, Progress::Paid { seats })
                        .await;
                }
                Ok(order)
            }
            Applied::Unchanged(order) => Ok(order),
            Applied::Refused(order, Refusal::Expired) => {
                if order.status == OrderStatus::PaymentPending {
                    self.expire_order(order.id).await?;
                }
                Err(Error::OrderExpired)
            }
            Applied::Refused(order, Refusal::InvalidState) => {
                Err(Error::InvalidState(format!("the order is {}", order.status.as_str())))
            }
            Applied::SeatsTaken { order, conflicts } => {
                metrics::counter!(m::ORDERS, "status" => order.status.as_str()).increment(1);
                self.sync_locks(&order, SeatEffect::Free).await;
                // The locks had lost the seats to this order: give them back
                // to their real owner before answering.
                if let Err(e) = self.locks.rebuild(&order.show_id, Why::SeatsTaken).await {
                    tracing::warn!(show = %order.show_id, error = %e, "rebuild after a lost lock failed");
                }
                // A fresh read: the replica may not have the rebuild yet.
                let show = self.show(&order.show_id)?;
                let snap = track(self.locks.run(&show.id, self.clock.now_ms(), &cmd::Snapshot).await?);
                let available = self.layout(show)?.free_seats(|s| snap.taken.contains_key(s));
                Err(Error::SeatConflict {
                    conflicts,
                    available: crate::error::SeatList::new(&available),
                })
            }
        }
    }

    pub async fn cancel(&self, user: &str, admin: bool, id: Uuid) -> Result<Order> {
        let order = self.owned_order(user, admin, id).await?;
        match self
            .records
            .apply(order.id, OrderEvent::Cancel, self.clock.now(), None)
            .await?
        {
            Applied::Changed { order, effect } => {
                metrics::counter!(m::ORDERS, "status" => order.status.as_str()).increment(1);
                self.sync_locks(&order, effect).await;
                Ok(order)
            }
            Applied::Unchanged(order) | Applied::SeatsTaken { order, .. } => Ok(order),
            Applied::Refused(order, _) => Err(Error::InvalidState(format!("the order is {}", order.status.as_str()))),
        }
    }

    pub async fn orders_of(&self, user: &str, limit: i64, cursor: Option<Cursor>) -> Result<Vec<Order>> {
        let mut list = self.records.orders_of_user(user, limit, cursor).await?;
        for order in &mut list {
            if order.status == OrderStatus::PaymentPending && self.clock.now() >= order.expires_at {
                *order = self.expire_order(order.id).await?;
            }
        }
        Ok(list)
    }

    /// Makes the locks follow the record. A failure is logged and left to the
    /// reconciler: the record has already decided. The change carries the
    /// order state's stamp, so a late one (a reconciler's old read, a retry)
    /// never overrides a newer state; a refused one means the locks already
    /// follow this state or a newer one.
    pub async fn sync_locks(&self, order: &Order, effect: SeatEffect) {
        let now_ms = self.clock.now_ms();
        let oid = order.id.to_string();
        let stamp = order.updated_at.timestamp_micros();
        let verdict = match effect {
            SeatEffect::Keep => return,
            SeatEffect::Book => cmd::Verdict::Book,
            SeatEffect::Free => cmd::Verdict::Release,
        };
        let settle = cmd::Settle {
            verdict,
            order_id: &oid,
            hold_id: &order.hold_id,
            stamp,
            seats: &order.seat_ids,
        };
        let result = self.locks.run(&order.show_id, now_ms, &settle).await;
        match result {
            Ok(reply) => {
                track(reply);
                if let Err(e) = self.records.mark_lock_synced(order.id, order.updated_at).await {
                    tracing::warn!(order = %order.id, error = %e, "could not mark the lock synced; the reconciler will");
                }
            }
            Err(e) => {
                tracing::warn!(order = %order.id, error = %e, "seat locks not updated; the reconciler will retry")
            }
        }
    }
}
