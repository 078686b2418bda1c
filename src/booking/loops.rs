//! Booking's background loops, one task each, all stopped by one
//! cancellation token:
//! - seat expiry: every show's deadline set, through the expire script (not
//!   keyspace notifications, which are lazy and node-local in a cluster);
//! - order expiry: PAYMENT_PENDING orders past `expiresAt`;
//! - reconciliation: orders whose seat change Redis has not been told of;
//! - the outbox relay to the event stream.
//!
//! Every node runs them; each step is atomic and idempotent, so nodes racing
//! over the same show or order is harmless.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Booking;
use super::events::{EventSink, RELAY_BATCH};
use super::locks::SeatLocks;
use crate::domain::catalog::Catalog;
use crate::domain::order::effect_for;

/// Orders handled per pass of the order loops.
const ORDER_BATCH: i64 = 200;
/// An unsynced order younger than this is probably being synced by the
/// request that changed it.
const RECONCILE_AFTER: TimeDelta = TimeDelta::seconds(2);
/// Shows that started longer ago than this are no longer swept (holds on
/// them still expire on read).
const SWEEP_SHOWS_STARTED_WITHIN: TimeDelta = TimeDelta::days(2);

/// What the loops work on.
#[derive(Clone)]
pub struct Loops {
    pub booking: Arc<Booking>,
    pub catalog: Arc<Catalog>,
    pub locks: Arc<dyn SeatLocks>,
    pub events: Arc<dyn EventSink>,
}

impl Loops {
    /// Starts every loop; seat and order expiry run `every`, reconciliation
    /// four times slower.
    pub fn spawn(self, every: Duration, stop: CancellationToken) -> Vec<JoinHandle<()>> {
        vec![
            tokio::spawn(run(stop.clone(), every, self.clone(), Self::expire_seats)),
            tokio::spawn(run(stop.clone(), every, self.clone(), Self::expire_orders)),
            tokio::spawn(run(stop.clone(), every * 4, self.clone(), Self::reconcile)),
            tokio::spawn(run(stop, every, self, Self::relay_events)),
        ]
    }

    /// One pass of seat expiry over every show that can still sell.
    pub async fn expire_seats(self) {
        let now = self.booking.clock().now();
        for show in self.catalog.shows() {
            if show.start_time < now - SWEEP_SHOWS_STARTED_WITHIN {
                continue;
            }
            match self.locks.expire(&show.id, now.timestamp_millis()).await {
                Ok(reply) if reply.expired > 0 => {
                    metrics::counter!(crate::metrics::HOLDS_EXPIRED).increment(reply.expired as u64);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "seat sweeper pass failed");
                    return;
                }
            }
        }
    }

    /// One pass of order expiry.
    pub async fn expire_orders(self) {
        let now = self.booking.clock().now();
        match self.booking.records().due_orders(now, ORDER_BATCH).await {
            Ok(ids) => {
                for id in ids {
                    if let Err(e) = self.booking.expire_order(id).await {
                        tracing::warn!(order = %id, error = %e, "order expiry failed");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "order sweeper pass failed"),
        }
    }

    /// One pass of lock reconciliation.
    pub async fn reconcile(self) {
        let before = self.booking.clock().now() - RECONCILE_AFTER;
        match self.booking.records().unsynced_orders(before, ORDER_BATCH).await {
            Ok(orders) => {
                for order in orders {
                    tracing::info!(order = %order.id, status = order.status.as_str(), "reconciling seat locks");
                    self.booking.sync_locks(&order, effect_for(order.status)).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "reconciler pass failed"),
        }
    }

    /// One pass of the outbox relay: batches until the outbox is drained.
    pub async fn relay_events(self) {
        loop {
            match self
                .booking
                .records()
                .relay_outbox(RELAY_BATCH, self.events.as_ref())
                .await
            {
                Ok(n) if n as i64 == RELAY_BATCH => continue,
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox relay failed; the events stay in the outbox");
                    return;
                }
            }
        }
    }
}

async fn run<F, Fut>(stop: CancellationToken, every: Duration, loops: Loops, pass: F)
where
    F: Fn(Loops) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => pass(loops.clone()).await,
        }
    }
}
