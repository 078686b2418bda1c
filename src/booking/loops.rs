//! Booking's background loops, one task each, all stopped by one
//! cancellation token:
//! - seat expiry (`sweeper`): through the expire script (not keyspace
//!   notifications, which are lazy and node-local in a cluster), on the
//!   shows that are due;
//! - changes: this node announces the shows it changed, and hears the
//!   others', so the sweeper and the figures look only at those;
//! - order expiry: PAYMENT_PENDING orders past `expiresAt`;
//! - reconciliation: orders whose seat change Redis has not been told of;
//! - the outbox relay to the event stream.
//!
//! Every node runs them; each step is atomic and idempotent, so nodes racing
//! over the same show or order is harmless. Seat expiry is swept by one node
//! at a time (a lease), so its cost does not grow with nodes × shows; one
//! show that fails never stops the pass for the others.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use futures::StreamExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Booking;
use super::events::{EventSink, RELAY_BATCH};
use super::locks::recovering::Recovering;
use super::sweeper::Sweeper;
use crate::domain::catalog::Catalog;
use crate::domain::order::effect_for;
use crate::metrics as m;
use crate::supervise::supervised;

/// Orders handled per pass of the order loops.
const ORDER_BATCH: i64 = 200;
/// An unsynced order younger than this is probably being synced by the
/// request that changed it.
const RECONCILE_AFTER: TimeDelta = TimeDelta::seconds(2);
/// The sweeper lease outlives this many passes: a sweeper that stops is
/// replaced within that.
const SWEEP_LEASE_PASSES: u32 = 3;
/// The waiting-list figures are refreshed once per this many passes.
const FIGURES_EVERY_PASSES: u32 = 10;
/// Shows whose due-check (and pass) run at once.
const SWEEP_CONCURRENCY: usize = 16;

/// Shows that started longer ago than this are no longer swept (holds on
/// them still expire on read).
const SWEEP_SHOWS_STARTED_WITHIN: TimeDelta = TimeDelta::days(2);

/// What the loops work on.
#[derive(Clone)]
pub struct Loops {
    /// This node, in the sweeper lease.
    pub node: String,
    pub booking: Arc<Booking>,
    pub catalog: Arc<Catalog>,
    pub locks: Arc<Recovering>,
    pub events: Arc<dyn EventSink>,
    pub sweeper: Arc<Sweeper>,
}

impl Loops {
    /// Starts every loop; seat and order expiry run `every`, reconciliation
    /// four times slower.
    pub fn spawn(self, every: Duration, stop: CancellationToken) -> Vec<JoinHandle<()>> {
        let (locks, heard) = (self.locks.clone(), stop.clone());
        let (handover, node, stopping) = (self.locks.clone(), self.node.clone(), stop.clone());
        vec![
            // At shutdown the sweeper's lease goes back at once: another
            // node sweeps from its next pass, not the lease's TTL later.
            tokio::spawn(async move {
                stopping.cancelled().await;
                if let Err(e) = handover.sweep_release(&node).await {
                    tracing::warn!(error = %e, "could not hand the sweeper's lease back");
                }
            }),
            each("seat sweeper", &stop, every, &self, move |l| l.expire_seats(every)),
            each("changed shows", &stop, every, &self, Self::announce_changes),
            supervised("changed shows heard", stop.clone(), move || {
                hear_changes(locks.clone(), heard.clone())
            }),
            each("order expiry", &stop, every, &self, Self::expire_orders),
            each("reconciler", &stop, every * 4, &self, Self::reconcile),
            each("outbox relay", &stop, every, &self, Self::relay_events),
            each(
                "waiting-list figures",
                &stop,
                every * FIGURES_EVERY_PASSES,
                &self,
                Self::waitlist_figures,
            ),
        ]
    }

    /// Shows that can still sell, as of `now`.
    fn live_shows(&self, now: chrono::DateTime<chrono::Utc>) -> Vec<String> {
        self.catalog
            .shows()
            .iter()
            .filter(|show| show.start_time >= now - SWEEP_SHOWS_STARTED_WITHIN)
            .map(|show| show.id.clone())
            .collect()
    }

    /// Refreshes the waiting-list metrics of the shows that changed since
    /// the last refresh (anywhere: the nodes announce their changes). The
    /// figures are the engine's (the scripts count offers wherever they are
    /// made), so every node reports the same: aggregate with max.
    pub async fn waitlist_figures(self) {
        let changed = self.locks.changed().take_for_figures();
        let mut shows = self.live_shows(self.booking.clock().now());
        shows.retain(|s| changed.contains(s));
        let this = &self;
        futures::stream::iter(shows)
            .for_each_concurrent(SWEEP_CONCURRENCY, |show| async move {
                match this.locks.wait_stats(&show).await {
                    Ok(s) if s.length + s.made > 0 => {
                        let label = show.clone();
                        metrics::gauge!(m::WAITLIST_LENGTH, "show" => label).set(s.length as f64);
                        for (outcome, n) in [
                            ("made", s.made),
                            ("taken", s.taken),
                            ("expired", s.expired),
                            ("declined", s.declined),
                        ] {
                            metrics::counter!(m::WAITLIST_OFFERS, "show" => show.clone(), "outcome" => outcome)
                                .absolute(n);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(%show, error = %e, "waiting-list figures unavailable"),
                }
            })
            .await;
    }

    /// One pass of seat expiry, if this node is the sweeper this round.
    pub async fn expire_seats(self, every: Duration) {
        let ttl_ms = (every * SWEEP_LEASE_PASSES).as_millis() as i64;
        match self.locks.sweep_turn(&self.node, ttl_ms).await {
            Ok(true) => {}
            Ok(false) => return self.sweeper.step_down(),
            Err(e) => {
                tracing::warn!(error = %e, "seat sweeper lease failed");
                return self.sweeper.step_down();
            }
        }
        let now = self.booking.clock().now();
        let live = self.live_shows(now);
        self.sweeper.pass(&self.locks, &live, now.timestamp_millis()).await;
    }

    /// Announces the shows this node changed since the last pass (one
    /// message), for the sweeper and the other nodes' figures.
    pub async fn announce_changes(self) {
        let mine = self.locks.changed().take_mine();
        if mine.is_empty() {
            return;
        }
        if let Err(e) = self.locks.announce_changed(&mine).await {
            // The sweeper's next full scan finds what this loses.
            tracing::debug!(error = %e, "could not announce changed shows");
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

/// Hears the shows other nodes changed, for this node's sweeper and
/// figures; takes the subscription again when it is lost.
async fn hear_changes(locks: Arc<Recovering>, stop: CancellationToken) {
    let mut wait = Duration::from_millis(100);
    loop {
        match locks.changed_elsewhere().await {
            Ok(mut heard) => {
                wait = Duration::from_millis(100);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        next = heard.next() => match next {
                            Some(shows) => locks.changed().heard(shows),
                            None => break,
                        },
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "could not hear changed shows"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => wait = (wait * 2).min(Duration::from_secs(5)),
        }
    }
}

/// One loop, `pass` every `every`, restarted if it panics.
fn each<F, Fut>(name: &'static str, stop: &CancellationToken, every: Duration, loops: &Loops, pass: F) -> JoinHandle<()>
where
    F: Fn(Loops) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (stop, loops) = (stop.clone(), loops.clone());
    supervised(name, stop.clone(), move || {
        run(stop.clone(), every, loops.clone(), pass.clone())
    })
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
