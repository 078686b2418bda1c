//! The booking pipeline: catalog checks, seat locks and the record, in the
//! order that keeps them consistent. Locks first (fast, atomic, shared by all
//! nodes), the record second (the truth about sales); when the record has
//! changed what an order owns, the locks follow, and the reconciler retries
//! any that did not (`Order::lock_synced`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::catalog::{Catalog, Layout, Show};
use crate::domain::ids::{self, ShowId};
use crate::domain::order::{OrderEvent, OrderStatus, Refusal, SeatEffect};
use crate::domain::seats::{
    ExtendOutcome, HoldOutcome, HoldRecord, HoldStatus, OrderLock, Owner, ReleaseOutcome, SeatStatus,
};
use crate::engine::{Reply, SeatLocks};
use crate::error::{Error, Result};
use crate::metrics as m;
use crate::records::{Applied, Cursor, Order, Records};

/// Limits of the booking rules, from settings.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub hold_ttl_ms: i64,
    pub order_ttl_ms: i64,
    pub max_seats_per_hold: usize,
}

/// A hold as the contract shows it.
#[derive(Debug, Clone)]
pub struct Hold {
    pub id: String,
    pub show_id: String,
    pub record: HoldRecord,
    pub status: HoldStatus,
}

/// One seat of the seat map.
#[derive(Debug, Clone)]
pub struct MapSeat {
    pub id: String,
    pub row: String,
    pub number: u16,
    pub status: SeatStatus,
}

pub struct Booking {
    pub catalog: Arc<Catalog>,
    pub locks: Arc<dyn SeatLocks>,
    pub records: Arc<dyn Records>,
    /// Told when an order is confirmed: the shopper's admission is used up.
    pub waitrooms: Arc<dyn crate::waitroom::WaitingRooms>,
    /// Where the outbox is relayed (a Redis Stream, or in process).
    pub events: Arc<dyn crate::events::EventSink>,
    pub limits: Limits,
}

/// Wall-clock now, in the millisecond precision Redis scripts use.
pub fn now() -> DateTime<Utc> {
    from_ms(Utc::now().timestamp_millis())
}

pub fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn track<T>(reply: Reply<T>) -> T {
    if reply.expired > 0 {
        metrics::counter!(m::HOLDS_EXPIRED).increment(reply.expired as u64);
    }
    reply.out
}

impl Booking {
    pub fn show(&self, id: &str) -> Result<&Show> {
        self.catalog.show(id).ok_or_else(|| Error::not_found("show"))
    }

    fn layout(&self, show: &Show) -> Result<Arc<Layout>> {
        self.catalog
            .layout(&show.screen_id)
            .ok_or_else(|| Error::Internal(format!("no layout for {}", show.screen_id)))
    }

    /// The seat map as of one version.
    pub async fn seat_map(&self, show_id: &str) -> Result<(u64, Vec<MapSeat>)> {
        let show = self.show(show_id)?;
        let layout = self.layout(show)?;
        let snap = track(self.locks.snapshot(&show.id, now().timestamp_millis()).await?);
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
        Ok((snap.version, seats))
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

    pub async fn hold(&self, user: &str, show_id: &str, seats: Vec<String>) -> Result<Hold> {
        let show = self.show(show_id)?;
        let layout = self.layout(show)?;
        self.check_seats(&layout, &seats)?;
        let now_ms = now().timestamp_millis();
        if seats.iter().any(|s| layout.is_unavailable(s)) {
            metrics::counter!(m::SEAT_LOCK_ATTEMPTS, "result" => "conflict").increment(1);
            return Err(self.unavailable_conflict(show, &layout, user, &seats, now_ms).await?);
        }
        let show_id = ShowId::parse(&show.id).ok_or_else(|| Error::Internal("catalog show id".into()))?;
        let hold_id = ids::hold_id(&show_id, Uuid::new_v4());
        let started = Instant::now();
        let result = self
            .locks
            .hold(&show.id, now_ms, user, &hold_id, &seats, self.limits.hold_ttl_ms)
            .await;
        metrics::histogram!(m::SEAT_LOCK_DURATION).record(started.elapsed().as_secs_f64());
        let outcome = match result {
            Ok(reply) => track(reply),
            Err(e) => {
                metrics::counter!(m::SEAT_LOCK_ATTEMPTS, "result" => "error").increment(1);
                return Err(e);
            }
        };
        match outcome {
            HoldOutcome::Held { .. } => {
                metrics::counter!(m::SEAT_LOCK_ATTEMPTS, "result" => "held").increment(1);
                let record = HoldRecord {
                    user: user.to_owned(),
                    seats,
                    status: HoldStatus::Held,
                    created_ms: now_ms,
                    expires_ms: now_ms + self.limits.hold_ttl_ms,
                    order_id: None,
                    order_created_ms: None,
                    order_expires_ms: None,
                    ended_ms: None,
                };
                Ok(Hold {
                    id: hold_id,
                    show_id: show.id.clone(),
                    record,
                    status: HoldStatus::Held,
                })
            }
            HoldOutcome::Conflict { conflicts, taken } => {
                metrics::counter!(m::SEAT_LOCK_ATTEMPTS, "result" => "conflict").increment(1);
                let taken: HashSet<&str> = taken.iter().map(String::as_str).collect();
                Err(Error::SeatConflict {
                    conflicts,
                    available: Self::available(&layout, &taken),
                })
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
            available: Self::available(layout, &taken),
        })
    }

    /// The caller's hold; another user's is 404.
    pub async fn get_hold(&self, user: &str, hold_id: &str) -> Result<Hold> {
        let show = ids::show_of_hold(hold_id).ok_or_else(|| Error::not_found("hold"))?;
        let record = self
            .locks
            .hold_record(show.as_str(), hold_id)
            .await?
            .filter(|r| r.user == user);
        let record = record.ok_or_else(|| Error::not_found("hold"))?;
        let status = record.status_at(now().timestamp_millis());
        Ok(Hold {
            id: hold_id.to_owned(),
            show_id: show.to_string(),
            record,
            status,
        })
    }

    pub async fn release(&self, user: &str, hold_id: &str) -> Result<Hold> {
        let show = ids::show_of_hold(hold_id).ok_or_else(|| Error::not_found("hold"))?;
        match track(
            self.locks
                .release(show.as_str(), now().timestamp_millis(), user, hold_id)
                .await?,
        ) {
            ReleaseOutcome::Released => self.get_hold(user, hold_id).await,
            ReleaseOutcome::NotFound => Err(Error::not_found("hold")),
            ReleaseOutcome::NotActive(status) if status == "ORDERED" => Err(Error::HoldNotActive(
                "the hold has become an order; cancel the order instead".into(),
            )),
            ReleaseOutcome::NotActive(status) => Err(Error::HoldNotActive(format!("the hold is {status}"))),
        }
    }

    /// Creates the order for a hold, or answers the one it already became.
    /// `true` when this call created it.
    pub async fn create_order(&self, user: &str, hold_id: &str) -> Result<(Order, bool)> {
        let show_id = ids::show_of_hold(hold_id).ok_or_else(|| Error::not_found("hold"))?;
        if let Some(existing) = self.records.order_by_hold(hold_id).await? {
            if existing.user_id != user {
                return Err(Error::not_found("hold"));
            }
            return Ok((self.settle_if_due(existing).await?, false));
        }
        let show = self.show(show_id.as_str())?;
        let order_id = Uuid::new_v4();
        let now_ms = now().timestamp_millis();
        let outcome = track(
            self.locks
                .extend_for_order(
                    &show.id,
                    now_ms,
                    user,
                    hold_id,
                    &order_id.to_string(),
                    self.limits.order_ttl_ms,
                )
                .await?,
        );
        let lock = match outcome {
            ExtendOutcome::Attached(lock) | ExtendOutcome::Existing(lock) => lock,
            ExtendOutcome::NotFound => return Err(Error::not_found("hold")),
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
    pub async fn order(&self, user: &str, admin: bool, id: &str) -> Result<Order> {
        let order = self.owned_order(user, admin, id).await?;
        self.settle_if_due(order).await
    }

    async fn owned_order(&self, user: &str, admin: bool, id: &str) -> Result<Order> {
        let id = Uuid::parse_str(id).map_err(|_| Error::not_found("order"))?;
        let order = self.records.order(id).await?.ok_or_else(|| Error::not_found("order"))?;
        if order.user_id != user && !admin {
            return Err(Error::not_found("order"));
        }
        Ok(order)
    }

    /// A PAYMENT_PENDING order past its expiry is expired on read, so every
    /// answer agrees with `expiresAt` whatever the sweeper has done yet.
    async fn settle_if_due(&self, order: Order) -> Result<Order> {
        if order.status == OrderStatus::PaymentPending && now() >= order.expires_at {
            return self.expire_order(order.id).await;
        }
        Ok(order)
    }

    pub async fn expire_order(&self, id: Uuid) -> Result<Order> {
        match self.records.apply(id, OrderEvent::Expire, now(), None).await? {
            Applied::Changed { order, effect } => {
                metrics::counter!(m::ORDERS, "status" => order.status.as_str()).increment(1);
                self.sync_locks(&order, effect).await;
                Ok(order)
            }
            Applied::Unchanged(o) | Applied::Refused(o, _) | Applied::SeatsTaken { order: o, .. } => Ok(o),
        }
    }

    pub async fn confirm_payment(&self, user: &str, id: &str, success: bool, reference: Option<&str>) -> Result<Order> {
        let order = self.owned_order(user, false, id).await?;
        let event = if success {
            OrderEvent::PaymentSucceeded
        } else {
            OrderEvent::PaymentFailed
        };
        match self.records.apply(order.id, event, now(), reference).await? {
            Applied::Changed { order, effect } => {
                metrics::counter!(m::ORDERS, "status" => order.status.as_str()).increment(1);
                self.sync_locks(&order, effect).await;
                if order.status == OrderStatus::Confirmed {
                    if let Err(e) = self.waitrooms.end_active(&order.show_id, &order.user_id).await {
                        tracing::warn!(order = %order.id, error = %e, "could not end the shopper's admission");
                    }
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
                let (_, map) = self.seat_map(&order.show_id).await?;
                let available = map
                    .into_iter()
                    .filter(|s| s.status == SeatStatus::Available)
                    .map(|s| s.id)
                    .collect();
                Err(Error::SeatConflict { conflicts, available })
            }
        }
    }

    pub async fn cancel(&self, user: &str, admin: bool, id: &str) -> Result<Order> {
        let order = self.owned_order(user, admin, id).await?;
        match self.records.apply(order.id, OrderEvent::Cancel, now(), None).await? {
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
            if order.status == OrderStatus::PaymentPending && now() >= order.expires_at {
                *order = self.expire_order(order.id).await?;
            }
        }
        Ok(list)
    }

    /// Makes the locks follow the record. A failure is logged and left to the
    /// reconciler: the record has already decided.
    pub async fn sync_locks(&self, order: &Order, effect: SeatEffect) {
        let now_ms = now().timestamp_millis();
        let oid = order.id.to_string();
        let result = match effect {
            SeatEffect::Keep => return,
            SeatEffect::Book => {
                self.locks
                    .book(&order.show_id, now_ms, &oid, &order.hold_id, &order.seat_ids)
                    .await
            }
            SeatEffect::Free => {
                self.locks
                    .release_order(&order.show_id, now_ms, &oid, &order.hold_id, &order.seat_ids)
                    .await
            }
        };
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

    /// What the locks must do for an order in its current status.
    pub fn effect_for(status: OrderStatus) -> SeatEffect {
        match status {
            OrderStatus::Confirmed => SeatEffect::Book,
            OrderStatus::PaymentPending => SeatEffect::Keep,
            OrderStatus::Failed | OrderStatus::Expired | OrderStatus::Cancelled => SeatEffect::Free,
        }
    }
}
