//! A feed's tasks: its start, the loop that follows the engine (deltas in,
//! batches out, a probe now and then, resubscribe when lost), and the shard
//! passes that write each batch to the sockets.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{DeltaFate, Feed, PROBE_EVERY, RESUBSCRIBE_MAX, RESUBSCRIBE_MIN, Replica, Shard, State};
use crate::domain::catalog::Layout;
use crate::domain::seats::{Owner, SeatDelta};
use crate::error::Result;
use crate::live::conn::{Conn, Offered};
use crate::live::source::SeatSource;
use crate::metrics as m;

pub(super) async fn read(source: &dyn SeatSource, show: &str) -> Result<Replica> {
    let snap = source.snapshot(show).await?;
    let taken = snap
        .taken
        .iter()
        .map(|(seat, owner)| (seat.clone(), Owner::status(owner)))
        .collect();
    Ok(Replica {
        epoch: snap.epoch,
        version: snap.version,
        taken,
    })
}

/// What a feed is made of.
pub struct FeedParts {
    pub show: String,
    pub layout: Arc<Layout>,
    pub locks: Arc<dyn SeatSource>,
    pub batch_window: Duration,
    pub history_batches: usize,
    pub shards: usize,
}

/// Starts a feed: subscribes, reads, and runs it and its shard passes
/// until `stop`.
pub async fn start(parts: FeedParts, stop: CancellationToken) -> Result<Arc<Feed>> {
    // Subscribe before reading, so no delta falls between the two.
    let stream = parts.locks.subscribe(&parts.show).await?;
    let replica = read(parts.locks.as_ref(), &parts.show).await?;
    let shards: Vec<Shard> = (0..parts.shards.max(1))
        .map(|_| Shard {
            conns: Mutex::new(Vec::new()),
            latest: watch::channel(None).0,
        })
        .collect();
    let feed = Arc::new(Feed {
        show: parts.show,
        layout: parts.layout,
        state: Mutex::new(State {
            replica,
            synced_at: Instant::now(),
            generation: 1,
            batch: None,
            last_emit: None,
            history: VecDeque::new(),
            snapshot: None,
            rest: None,
            available: None,
        }),
        shards,
        next_shard: AtomicUsize::new(0),
        locks: parts.locks,
        batch_window: parts.batch_window,
        history_batches: parts.history_batches.max(1),
        merged: Mutex::new(HashMap::new()),
        applied: tokio::sync::Notify::new(),
    });
    metrics::gauge!(m::SEAT_FEEDS).increment(1.0);
    for i in 0..feed.shards.len() {
        tokio::spawn(pass_loop(feed.clone(), i, stop.clone()));
    }
    tokio::spawn(run(feed.clone(), stream, stop));
    Ok(feed)
}

/// One shard's writer: every batch to every socket of the shard. A shard
/// still busy with one batch when the next comes skips to the latest; its
/// sockets then catch up from the history.
async fn pass_loop(feed: Arc<Feed>, shard: usize, stop: CancellationToken) {
    let mut rx = feed.shards[shard].latest.subscribe();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            changed = rx.changed() => if changed.is_err() { break },
        }
        let Some(sent) = rx.borrow_and_update().clone() else {
            continue;
        };
        let conns: Vec<Arc<Conn>> = {
            let mut list = feed.shards[shard].conns.lock().unwrap_or_else(|p| p.into_inner());
            list.retain(|c| !c.is_closed());
            list.clone()
        };
        let mut written = 0u64;
        for conn in &conns {
            if conn.offer(sent.generation, sent.from, sent.to, &sent.frame) == Offered::Written {
                written += 1;
            }
            // A pass over thousands of sockets is thousands of writes: give
            // the worker back now and then (tokio's cooperative budget), so
            // the holds and joins on the same cores are not held up behind
            // a whole pass.
            tokio::task::consume_budget().await;
        }
        metrics::counter!(m::SEAT_STREAM_FRAMES).increment(written);
    }
    for conn in feed.shards[shard]
        .conns
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
    {
        conn.close();
        conn.wake.notify_one();
    }
}

/// The feed's life: deltas in, batches out, a probe now and then,
/// resubscribe when lost; when stopped, it lets go of its subscription.
async fn run(feed: Arc<Feed>, stream: BoxStream<'static, SeatDelta>, stop: CancellationToken) {
    follow(&feed, stream, &stop).await;
    metrics::gauge!(m::SEAT_FEEDS).decrement(1.0);
    if let Err(e) = feed.locks.unsubscribe(&feed.show).await {
        tracing::warn!(show = %feed.show, error = %e, "unsubscribe failed");
    }
}

async fn follow(feed: &Feed, mut stream: BoxStream<'static, SeatDelta>, stop: &CancellationToken) {
    let mut probe = tokio::time::interval(PROBE_EVERY);
    probe.tick().await;
    // The engine's version seen ahead of ours at the last probe: resync only
    // if we are still behind it one probe later (deltas may be in flight).
    let mut ahead: Option<u64> = None;
    // Deltas arriving are the proof the subscription lives: no probe then.
    let mut last_delta: Option<Instant> = None;
    loop {
        let due = feed.batch_due();
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = async { tokio::time::sleep_until(due.unwrap_or_else(Instant::now)).await }, if due.is_some() => {
                feed.emit();
            }
            next = stream.next() => match next {
                Some(delta) => match feed.apply(delta) {
                    // Only a delta that moved the replica is proof the feed
                    // follows the show (no probe needed meanwhile).
                    DeltaFate::Applied => last_delta = Some(Instant::now()),
                    DeltaFate::Stale => {}
                    DeltaFate::Resync => {
                        feed.emit();
                        feed.resync().await;
                    }
                    DeltaFate::WentBack => {
                        if let Err(e) = feed.locks.went_back(&feed.show).await {
                            tracing::warn!(show = %feed.show, error = %e, "rebuilding a show that went back failed");
                        }
                        feed.emit();
                        feed.resync().await;
                    }
                },
                None => {
                    let Some(again) = resubscribe(feed, stop).await else { return };
                    stream = again;
                    feed.emit();
                    feed.resync().await;
                }
            },
            _ = probe.tick() => {
                ahead = if last_delta.is_some_and(|at| at.elapsed() < PROBE_EVERY) {
                    None
                } else {
                    probe_once(feed, ahead).await
                };
            }
        }
    }
}

/// Takes the show's subscription again after it was lost, backing off
/// between tries; `None` when the feed stops first.
async fn resubscribe(feed: &Feed, stop: &CancellationToken) -> Option<BoxStream<'static, SeatDelta>> {
    let mut wait = RESUBSCRIBE_MIN;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return None,
            _ = tokio::time::sleep(wait) => {}
        }
        match feed.locks.subscribe(&feed.show).await {
            Ok(s) => return Some(s),
            Err(e) => {
                tracing::warn!(show = %feed.show, error = %e, "resubscribe failed");
                wait = (wait * 2).min(RESUBSCRIBE_MAX);
            }
        }
    }
}

/// One probe of the engine, one light read of its epoch and version (a
/// snapshot only on a mismatch): resyncs when the show was rebuilt, went
/// back, lost its state, or stayed ahead of the replica since the last
/// probe; answers the version to check against at the next one.
async fn probe_once(feed: &Feed, ahead: Option<u64>) -> Option<u64> {
    let (epoch, ours) = feed.position();
    if ahead.is_some_and(|v| ours < v) {
        feed.emit();
        feed.resync().await;
        return None;
    }
    match feed.locks.position(&feed.show).await {
        // Rebuilt, gone back, or lost: resync now (the read rebuilds it).
        Ok(None) => {
            feed.emit();
            feed.resync().await;
            None
        }
        Ok(Some((e, v))) if e != epoch || v < ours => {
            if e == epoch
                && let Err(err) = feed.locks.went_back(&feed.show).await
            {
                tracing::warn!(show = %feed.show, error = %err, "rebuilding a show that went back failed");
            }
            feed.emit();
            feed.resync().await;
            None
        }
        Ok(Some((_, v))) if v > ours => Some(v),
        _ => None,
    }
}
