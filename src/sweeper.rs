//! Background loops, one task each, all stopped by one cancellation token:
//! - seat expiry: every show's deadline set, through the expire script (not
//!   keyspace notifications, which are lazy and node-local in a cluster);
//! - order expiry: PAYMENT_PENDING orders past `expiresAt`;
//! - reconciliation: orders whose seat change Redis has not been told of;
//! - the outbox relay to the event stream.
//! Every node runs them; each step is atomic and idempotent, so nodes racing
//! over the same show or order is harmless.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use tokio_util::sync::CancellationToken;

use crate::booking::{self, Booking};

/// Orders handled per pass of the order loops.
const ORDER_BATCH: i64 = 200;
/// An unsynced order younger than this is probably being synced by the
/// request that changed it.
const RECONCILE_AFTER: TimeDelta = TimeDelta::seconds(2);
/// Shows that started longer ago than this are no longer swept (holds on
/// them still expire on read).
const SWEEP_SHOWS_STARTED_WITHIN: TimeDelta = TimeDelta::days(2);

pub fn spawn(booking: Arc<Booking>, every: Duration, stop: CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
    vec![
        tokio::spawn(run(stop.clone(), every, booking.clone(), expire_seats)),
        tokio::spawn(run(stop.clone(), every, booking.clone(), expire_orders)),
        tokio::spawn(run(stop.clone(), every * 4, booking.clone(), reconcile)),
        tokio::spawn(run(stop, every, booking, relay_events)),
    ]
}

async fn run<F, Fut>(stop: CancellationToken, every: Duration, booking: Arc<Booking>, pass: F)
where
    F: Fn(Arc<Booking>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => pass(booking.clone()).await,
        }
    }
}

/// One pass of seat expiry over every show that can still sell.
pub async fn expire_seats(booking: Arc<Booking>) {
    let now = booking::now();
    for show in booking.catalog.shows() {
        if show.start_time < now - SWEEP_SHOWS_STARTED_WITHIN {
            continue;
        }
        match booking.locks.expire(&show.id, now.timestamp_millis()).await {
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
pub async fn expire_orders(booking: Arc<Booking>) {
    match booking.records.due_orders(booking::now(), ORDER_BATCH).await {
        Ok(ids) => {
            for id in ids {
                if let Err(e) = booking.expire_order(id).await {
                    tracing::warn!(order = %id, error = %e, "order expiry failed");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "order sweeper pass failed"),
    }
}

/// One pass of lock reconciliation.
pub async fn reconcile(booking: Arc<Booking>) {
    match booking
        .records
        .unsynced_orders(booking::now() - RECONCILE_AFTER, ORDER_BATCH)
        .await
    {
        Ok(orders) => {
            for order in orders {
                tracing::info!(order = %order.id, status = order.status.as_str(), "reconciling seat locks");
                booking.sync_locks(&order, Booking::effect_for(order.status)).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "reconciler pass failed"),
    }
}

/// One pass of the outbox relay.
pub async fn relay_events(booking: Arc<Booking>) {
    loop {
        match booking
            .records
            .relay_outbox(crate::events::RELAY_BATCH, booking.events.as_ref())
            .await
        {
            Ok(n) if n as i64 == crate::events::RELAY_BATCH => continue,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, "outbox relay failed; the events stay in the outbox");
                return;
            }
        }
    }
}
