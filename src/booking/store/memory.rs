//! The in-process record: one mutex over plain maps. Same rules as Postgres:
//! one order per hold, a seat booked by at most one order, first response per
//! idempotency key wins.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Applied, Cursor, Order, Records, StoredResponse};
use crate::booking::events::{EventSink, OutboxEvent};
use crate::domain::order::{self, OrderEvent, OrderStatus, SeatEffect};
use crate::domain::seats::RecordState;
use crate::error::Result;

#[derive(Default)]
struct State {
    orders: HashMap<Uuid, Order>,
    by_hold: HashMap<String, Uuid>,
    booked: HashMap<(String, String), Uuid>,
    /// The first response per key, and when it was stored.
    idempotency: HashMap<(String, String), (StoredResponse, DateTime<Utc>)>,
    /// Event id → (event, when it was relayed), in the order written.
    outbox: BTreeMap<i64, (OutboxEvent, Option<DateTime<Utc>>)>,
    last_event: i64,
}

impl State {
    fn emit(&mut self, order: &Order) {
        self.last_event += 1;
        let event = OutboxEvent {
            id: self.last_event,
            topic: super::outbox_topic(order.status).to_owned(),
            payload: super::outbox_payload(order),
        };
        self.outbox.insert(event.id, (event, None));
    }
}

#[derive(Default)]
pub struct MemoryRecords {
    /// A std mutex: nothing awaits while it is held.
    state: Mutex<State>,
}

impl MemoryRecords {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Records for MemoryRecords {
    async fn create_order(&self, order: &Order) -> Result<(Order, bool)> {
        let mut s = self.lock();
        if let Some(existing) = s
            .orders
            .get(&order.id)
            .or_else(|| s.by_hold.get(&order.hold_id).and_then(|id| s.orders.get(id)))
        {
            return Ok((existing.clone(), false));
        }
        s.by_hold.insert(order.hold_id.clone(), order.id);
        s.orders.insert(order.id, order.clone());
        s.emit(order);
        Ok((order.clone(), true))
    }

    async fn order(&self, id: Uuid) -> Result<Option<Order>> {
        Ok(self.lock().orders.get(&id).cloned())
    }

    async fn order_by_hold(&self, hold_id: &str) -> Result<Option<Order>> {
        let s = self.lock();
        Ok(s.by_hold.get(hold_id).and_then(|id| s.orders.get(id)).cloned())
    }

    async fn apply(
        &self,
        id: Uuid,
        event: OrderEvent,
        now: DateTime<Utc>,
        payment_reference: Option<&str>,
    ) -> Result<Applied> {
        let mut guard = self.lock();
        let s = &mut *guard;
        let Some(current) = s.orders.get(&id).cloned() else {
            return Err(crate::error::Error::not_found("order"));
        };
        let step = match order::step(current.status, event, now >= current.expires_at) {
            Ok(Some(step)) => step,
            Ok(None) => return Ok(Applied::Unchanged(current)),
            Err(refusal) => return Ok(Applied::Refused(current, refusal)),
        };
        let mut conflicts = Vec::new();
        if step.seats == SeatEffect::Book {
            conflicts = current
                .seat_ids
                .iter()
                .filter(|seat| {
                    s.booked
                        .get(&(current.show_id.clone(), (*seat).clone()))
                        .is_some_and(|o| *o != id)
                })
                .cloned()
                .collect();
        }
        let next = order::settle(
            &current,
            event,
            step,
            now,
            payment_reference,
            &conflicts,
            &mut rand::rng(),
        );
        if conflicts.is_empty() {
            for seat in &current.seat_ids {
                let key = (current.show_id.clone(), seat.clone());
                match step.seats {
                    SeatEffect::Book => {
                        s.booked.insert(key, id);
                    }
                    SeatEffect::Free if s.booked.get(&key) == Some(&id) => {
                        s.booked.remove(&key);
                    }
                    _ => {}
                }
            }
        }
        s.orders.insert(id, next.clone());
        s.emit(&next);
        Ok(Applied::settled(next, step, conflicts))
    }

    async fn mark_lock_synced(&self, id: Uuid, as_of: DateTime<Utc>) -> Result<()> {
        if let Some(o) = self.lock().orders.get_mut(&id)
            && o.updated_at <= as_of
        {
            o.lock_synced = true;
        }
        Ok(())
    }

    async fn unsynced_orders(&self, older_than: DateTime<Utc>, limit: i64) -> Result<Vec<Order>> {
        let s = self.lock();
        let mut list: Vec<Order> = s
            .orders
            .values()
            .filter(|o| !o.lock_synced && o.updated_at < older_than)
            .cloned()
            .collect();
        list.sort_by_key(|o| o.updated_at);
        list.truncate(limit.max(0) as usize);
        Ok(list)
    }

    async fn due_orders(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<Uuid>> {
        let s = self.lock();
        let mut due: Vec<&Order> = s
            .orders
            .values()
            .filter(|o| o.status == OrderStatus::PaymentPending && o.expires_at <= now)
            .collect();
        due.sort_by_key(|o| o.expires_at);
        Ok(due.into_iter().take(limit.max(0) as usize).map(|o| o.id).collect())
    }

    async fn seats_ordered(&self, user: &str, show: &str, except_hold: &str) -> Result<usize> {
        let s = self.lock();
        Ok(s.orders
            .values()
            .filter(|o| o.user_id == user && o.show_id == show && o.hold_id != except_hold)
            .filter(|o| matches!(o.status, OrderStatus::PaymentPending | OrderStatus::Confirmed))
            .map(|o| o.seat_ids.len())
            .sum())
    }

    async fn orders_of_user(&self, user: &str, limit: i64, cursor: Option<Cursor>) -> Result<Vec<Order>> {
        let s = self.lock();
        let mut list: Vec<Order> = s
            .orders
            .values()
            .filter(|o| o.user_id == user)
            .filter(|o| cursor.is_none_or(|c| (o.created_at, o.id) < (c.created_at, c.id)))
            .cloned()
            .collect();
        list.sort_by_key(|o| std::cmp::Reverse((o.created_at, o.id)));
        list.truncate(limit.max(0) as usize);
        Ok(list)
    }

    async fn booked_seats(&self, show: &str) -> Result<Vec<(String, Uuid)>> {
        let s = self.lock();
        Ok(s.booked
            .iter()
            .filter(|((sh, _), _)| sh == show)
            .map(|((_, seat), o)| (seat.clone(), *o))
            .collect())
    }

    async fn record_state(&self, show: &str) -> Result<RecordState> {
        let s = self.lock();
        let mut booked: Vec<(String, String, i64)> = s
            .booked
            .iter()
            .filter(|((sh, _), _)| sh == show)
            .filter_map(|((_, seat), id)| {
                let o = s.orders.get(id)?;
                Some((seat.clone(), id.to_string(), o.updated_at.timestamp_micros()))
            })
            .collect();
        booked.sort();
        let mut pending: Vec<&Order> = s
            .orders
            .values()
            .filter(|o| o.show_id == show && o.status == OrderStatus::PaymentPending)
            .collect();
        pending.sort_by_key(|o| (o.created_at, o.id));
        // Every ended order (the in-process store is small and short-lived).
        let mut ended: Vec<(String, i64)> = s
            .orders
            .values()
            .filter(|o| {
                o.show_id == show
                    && matches!(
                        o.status,
                        OrderStatus::Cancelled | OrderStatus::Failed | OrderStatus::Expired
                    )
            })
            .map(|o| (o.id.to_string(), o.updated_at.timestamp_micros()))
            .collect();
        ended.sort();
        Ok(RecordState {
            ended,
            booked,
            pending: pending.into_iter().map(super::pending_lock).collect(),
            as_of: 0,
        })
    }

    async fn idempotent_response(&self, user: &str, key: &str) -> Result<Option<StoredResponse>> {
        Ok(self
            .lock()
            .idempotency
            .get(&(user.to_owned(), key.to_owned()))
            .map(|(r, _)| r.clone()))
    }

    async fn store_idempotent_response(
        &self,
        user: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<StoredResponse> {
        let mut s = self.lock();
        // The store's own bookkeeping time, for pruning only.
        let at = Utc::now();
        Ok(s.idempotency
            .entry((user.to_owned(), key.to_owned()))
            .or_insert_with(|| (response.clone(), at))
            .0
            .clone())
    }

    async fn relay_outbox(&self, limit: i64, sink: &dyn EventSink) -> Result<usize> {
        let batch: Vec<OutboxEvent> = {
            let s = self.lock();
            s.outbox
                .values()
                .filter(|(_, relayed)| relayed.is_none())
                .take(limit.max(0) as usize)
                .map(|(e, _)| e.clone())
                .collect()
        };
        if batch.is_empty() {
            return Ok(0);
        }
        sink.append(&batch).await?;
        let mut s = self.lock();
        let at = Utc::now();
        for e in &batch {
            if let Some(slot) = s.outbox.get_mut(&e.id) {
                slot.1 = Some(at);
            }
        }
        Ok(batch.len())
    }

    async fn prune(&self, keys_before: DateTime<Utc>, events_before: DateTime<Utc>, limit: i64) -> Result<u64> {
        let mut s = self.lock();
        let limit = limit.max(0) as usize;
        let mut old: Vec<((String, String), DateTime<Utc>)> = s
            .idempotency
            .iter()
            .filter(|(_, (_, at))| *at < keys_before)
            .map(|(k, (_, at))| (k.clone(), *at))
            .collect();
        old.sort_by_key(|(_, at)| *at);
        old.truncate(limit);
        for (k, _) in &old {
            s.idempotency.remove(k);
        }
        let relayed: Vec<i64> = s
            .outbox
            .iter()
            .filter(|(_, (_, at))| at.is_some_and(|at| at < events_before))
            .map(|(id, _)| *id)
            .take(limit)
            .collect();
        for id in &relayed {
            s.outbox.remove(id);
        }
        Ok((old.len() + relayed.len()) as u64)
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}
