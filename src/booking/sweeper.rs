//! The seat sweeper: expires holds, serves waiting lists with what comes
//! back, and retires tombstones, on every show when it comes due. One node
//! at a time sweeps (a lease), so its cost does not grow with nodes; and it
//! keeps each show's next due time (the expire script answers it), so a
//! pass looks only at shows that are due or changed since the last pass
//! (`ChangedShows`: this node's commands and the other nodes' announcements),
//! never at every show of the catalog. A slow full scan, and a scan
//! whenever a node becomes the sweeper, catch what an announcement lost.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;

use super::locks::recovering::{Recovering, Why};
use super::locks::{Due, cmd};
use crate::metrics as m;

/// Shows looked at (or swept) at once.
const CONCURRENCY: usize = 16;
/// Expiry calls per show and pass, at most: with waiters each frees up to
/// `SWEEP_BUDGET_WITH_WAITERS` seats, so a pass frees at least 512.
const EXPIRE_CALLS_PER_PASS: usize = 32;
/// Every show's due time is read again this often (one light command per
/// show), in case an announcement of a change was lost.
pub const FULL_SCAN_EVERY: Duration = Duration::from_secs(30);
/// How often the sweeper compares Redis's replication identity with the one
/// the seat state was checked under.
pub const IDENTITY_EVERY: Duration = Duration::from_secs(1);

/// The sweeper's knowledge, kept while this node holds the lease.
#[derive(Default)]
pub struct Sweeper {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Show → when it is next due (ms); shows with nothing due are absent.
    due: HashMap<String, i64>,
    /// When every show was last read; `None` when this node was not the
    /// sweeper at its last pass (it knows nothing yet).
    scanned: Option<Instant>,
    /// When Redis's replication identity was last checked.
    identified: Option<Instant>,
}

impl Sweeper {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This node is not the sweeper (any more): what it knew goes stale.
    pub fn step_down(&self) {
        let mut st = self.state();
        st.due.clear();
        st.scanned = None;
        st.identified = None;
    }

    /// A failover to a replica that lagged loses writes no live node may
    /// remember (a restarted node, a show nobody follows): no version tells.
    /// Redis's replication identity does: the seat state is checked under
    /// one (kept in Redis, so a replica carries the old master's), and a
    /// master with another identity rebuilds every show from the record.
    async fn check_identity(&self, locks: &Recovering, live: &[String]) {
        let due = self.state().identified.is_none_or(|at| at.elapsed() >= IDENTITY_EVERY);
        if !due {
            return;
        }
        self.state().identified = Some(Instant::now());
        let (now, stored) = match locks.identity().await {
            Ok(Some(identity)) => identity,
            Ok(None) => return,
            Err(e) => return tracing::warn!(error = %e, "could not read Redis's replication identity"),
        };
        if let Some(old) = stored.as_deref().filter(|old| *old != now) {
            tracing::warn!(%old, new = %now, shows = live.len(), "Redis's replication identity changed (a failover?); rebuilding every show from the record");
            let failed = futures::stream::iter(live.to_vec())
                .map(|show: String| async move { locks.rebuild(&show, Why::Failover).await.is_err() })
                .buffer_unordered(CONCURRENCY)
                .filter(|failed| futures::future::ready(*failed))
                .count()
                .await;
            if failed > 0 {
                // Checked again next time: the identity is kept until all are done.
                return tracing::warn!(failed, "some shows could not be rebuilt after the failover; retrying");
            }
        }
        if stored.is_none() {
            // Redis lost the key, so maybe everything (restarted empty):
            // every show is read this pass, and a lost one rebuilt.
            self.state().scanned = None;
        }
        if stored.as_deref() != Some(now.as_str())
            && let Err(e) = locks.set_identity(&now).await
        {
            tracing::warn!(error = %e, "could not record Redis's replication identity");
        }
    }

    /// One pass over `live` (the shows that can still sell), at `now_ms`.
    pub async fn pass(&self, locks: &Recovering, live: &[String], now_ms: i64) {
        self.check_identity(locks, live).await;
        let changed = locks.changed().take_for_sweep();
        let full = self.state().scanned.is_none_or(|at| at.elapsed() >= FULL_SCAN_EVERY);
        let look: Vec<&String> = if full {
            self.state().scanned = Some(Instant::now());
            live.iter().collect()
        } else {
            live.iter().filter(|s| changed.contains(*s)).collect()
        };
        let why = if full { "scan" } else { "changed" };
        metrics::counter!(m::SWEEP_SHOWS, "why" => why).increment(look.len() as u64);
        futures::stream::iter(look)
            .for_each_concurrent(CONCURRENCY, |show| async move {
                match locks.next_due(show).await {
                    Ok(due) => self.schedule(show, due, now_ms),
                    Err(e) => tracing::warn!(%show, error = %e, "seat sweeper could not read the show"),
                }
            })
            .await;
        let due: Vec<String> = {
            let st = self.state();
            live.iter()
                .filter(|s| st.due.get(*s).is_some_and(|at| *at <= now_ms))
                .cloned()
                .collect()
        };
        metrics::counter!(m::SWEEP_SHOWS, "why" => "due").increment(due.len() as u64);
        futures::stream::iter(due)
            .for_each_concurrent(
                CONCURRENCY,
                |show| async move { self.sweep(locks, &show, now_ms).await },
            )
            .await;
        let overdue = self.state().due.values().min().map_or(0, |at| (now_ms - at).max(0));
        metrics::gauge!(m::SWEEP_OVERDUE).set(overdue as f64 / 1000.0);
    }

    fn schedule(&self, show: &str, due: Due, now_ms: i64) {
        let mut st = self.state();
        match due {
            Due::Now => st.due.insert(show.to_owned(), now_ms),
            Due::At(at) => st.due.insert(show.to_owned(), at),
            Due::Never => st.due.remove(show),
        };
    }

    /// Expiry on one due show: again while holds are still due (with
    /// waiters a call frees a bounded number of seats), up to a bound per
    /// pass; the next pass goes on.
    async fn sweep(&self, locks: &Recovering, show: &str, now_ms: i64) {
        for _ in 0..EXPIRE_CALLS_PER_PASS {
            match locks.run(show, now_ms, &cmd::Expire).await {
                Ok(reply) => {
                    if reply.expired > 0 {
                        metrics::counter!(m::HOLDS_EXPIRED).increment(reply.expired as u64);
                    }
                    let swept = reply.out;
                    metrics::gauge!(m::HOLD_TOMBSTONES, "show" => show.to_owned()).set(swept.tombstones as f64);
                    if swept.more {
                        continue;
                    }
                    let due = swept.next_due.map_or(Due::Never, Due::At);
                    self.schedule(show, due, now_ms);
                    return;
                }
                Err(e) => {
                    tracing::warn!(%show, error = %e, "seat sweeper pass failed for the show");
                    return;
                }
            }
        }
    }
}
