//! One feed per show per node, for any kind of feed (the seat stream's, the
//! queue's). A feed starts with the node's first viewer of the show, is
//! shared by every later one, and stops a moment (`linger`) after the last
//! leaves, so a page reload does not tear it down and build it again. The
//! feed's own task sees `stop` and lets go of what it holds (its
//! subscription).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use crate::error::Result;

/// A running feed and its bookkeeping.
pub struct Slot<F> {
    pub show: String,
    pub feed: F,
    viewers: AtomicUsize,
    /// When the last viewer left (tokio's clock, ms since the registry
    /// began), and whether a task is already waiting out the linger: one
    /// per slot, however many short viewers (REST reads, a conflict's
    /// seat list) come and go.
    left_ms: AtomicU64,
    ending: AtomicBool,
    /// Cancelled when the feed is dropped from the registry.
    pub stop: CancellationToken,
}

impl<F> Slot<F> {
    pub fn viewers(&self) -> usize {
        self.viewers.load(Ordering::Acquire)
    }
}

/// The feeds of one kind on this node, by show.
pub struct Registry<F> {
    /// A `OnceCell` per show: concurrent first viewers start one feed, the
    /// others wait for it.
    slots: DashMap<String, Arc<OnceCell<Arc<Slot<F>>>>>,
    linger: Duration,
    /// Feeds kept at most: a new one lets the longest idle go first.
    cap: usize,
    began: tokio::time::Instant,
}

/// A viewer's hold on a feed; the last one out schedules the feed's end.
pub struct Viewer<F: Send + Sync + 'static> {
    pub slot: Arc<Slot<F>>,
    registry: Arc<Registry<F>>,
}

impl<F: Send + Sync + 'static> Viewer<F> {
    pub fn feed(&self) -> &F {
        &self.slot.feed
    }
}

impl<F: Send + Sync + 'static> Drop for Viewer<F> {
    fn drop(&mut self) {
        if self.slot.viewers.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        self.slot.left_ms.store(self.registry.now_ms(), Ordering::Release);
        if self.slot.ending.swap(true, Ordering::AcqRel) {
            return; // a task is waiting out the linger already
        }
        let (registry, slot) = (self.registry.clone(), self.slot.clone());
        tokio::spawn(async move {
            // Until the feed has had no viewer for a whole linger.
            loop {
                let idle_until = slot.left_ms.load(Ordering::Acquire) + registry.linger.as_millis() as u64;
                let now = registry.now_ms();
                if slot.viewers() > 0 || now >= idle_until {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(idle_until - now)).await;
            }
            slot.ending.store(false, Ordering::Release);
            if slot.viewers() == 0 {
                registry.drop_if_idle(&slot.show);
            }
        });
    }
}

impl<F: Send + Sync + 'static> Registry<F> {
    pub fn new(linger: Duration) -> Arc<Self> {
        Self::capped(linger, usize::MAX)
    }

    /// At most `cap` feeds: over it, starting one ends the feed that has
    /// been idle longest (one with viewers is never ended for room).
    pub fn capped(linger: Duration, cap: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: DashMap::new(),
            linger,
            cap: cap.max(1),
            began: tokio::time::Instant::now(),
        })
    }

    /// Ends the longest-idle feed but `show`'s while there are more than the cap.
    fn make_room(&self, show: &str) {
        while self.slots.len() > self.cap {
            let idlest = self
                .slots
                .iter()
                .filter(|e| e.key() != show)
                .filter_map(|e| e.value().get().cloned())
                .filter(|slot| slot.viewers() == 0)
                .min_by_key(|slot| slot.left_ms.load(Ordering::Acquire));
            let Some(slot) = idlest else { return };
            self.drop_if_idle(&slot.show);
        }
    }

    fn now_ms(&self) -> u64 {
        self.began.elapsed().as_millis() as u64
    }

    /// Joins the show's feed, starting it with `start` if this node has none.
    /// `start` is given the feed's stop token. A feed that fails to start is
    /// forgotten, so the next viewer tries again.
    pub async fn join<S, Fut>(self: &Arc<Self>, show: &str, start: S) -> Result<Viewer<F>>
    where
        S: Fn(CancellationToken) -> Fut,
        Fut: Future<Output = Result<F>>,
    {
        loop {
            let cell = self.slots.entry(show.to_owned()).or_default().clone();
            if cell.get().is_none() {
                self.make_room(show);
            }
            let started = cell
                .get_or_try_init(|| async {
                    let stop = CancellationToken::new();
                    let feed = start(stop.clone()).await?;
                    Ok::<_, crate::error::Error>(Arc::new(Slot {
                        show: show.to_owned(),
                        feed,
                        viewers: AtomicUsize::new(0),
                        left_ms: AtomicU64::new(0),
                        ending: AtomicBool::new(false),
                        stop,
                    }))
                })
                .await;
            let slot = match started {
                Ok(slot) => slot.clone(),
                Err(e) => {
                    self.slots.remove_if(show, |_, c| Arc::ptr_eq(c, &cell));
                    return Err(e);
                }
            };
            slot.viewers.fetch_add(1, Ordering::AcqRel);
            let viewer = Viewer {
                slot,
                registry: self.clone(),
            };
            if viewer.slot.stop.is_cancelled() {
                // It ended between lookup and join: start over with a new one.
                continue;
            }
            return Ok(viewer);
        }
    }

    fn drop_if_idle(&self, show: &str) {
        let removed = self
            .slots
            .remove_if(show, |_, cell| cell.get().is_none_or(|slot| slot.viewers() == 0));
        if let Some(slot) = removed.and_then(|(_, cell)| cell.get().cloned()) {
            slot.stop.cancel();
        }
    }

    /// Drops the show's feed now, whoever watches it, and answers it so the
    /// caller can tell its viewers why.
    pub fn close(&self, show: &str) -> Option<Arc<Slot<F>>> {
        let slot = self.slots.remove(show).and_then(|(_, cell)| cell.get().cloned())?;
        slot.stop.cancel();
        Some(slot)
    }

    /// Every running feed.
    pub fn slots(&self) -> Vec<Arc<Slot<F>>> {
        self.slots.iter().filter_map(|e| e.value().get().cloned()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[tokio::test(start_paused = true)]
    async fn viewers_share_one_feed_which_ends_a_linger_after_the_last_leaves() {
        let registry: Arc<Registry<u32>> = Registry::new(Duration::from_secs(5));
        let starts = AtomicU32::new(0);
        let start = |_stop| async { Ok(starts.fetch_add(1, Ordering::SeqCst)) };
        let a = registry.join("s", start).await.unwrap();
        let b = registry.join("s", start).await.unwrap();
        assert_eq!((*a.feed(), *b.feed(), a.slot.viewers()), (0, 0, 2));
        let stop = a.slot.stop.clone();
        drop(a);
        drop(b);
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(!stop.is_cancelled(), "a reload within the linger keeps the feed");
        let c = registry.join("s", start).await.unwrap();
        assert_eq!(*c.feed(), 0);
        drop(c);
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(stop.is_cancelled());
        assert!(registry.slots().is_empty());
        let d = registry.join("s", start).await.unwrap();
        assert_eq!(*d.feed(), 1, "a new viewer starts a new feed");
    }

    #[tokio::test(start_paused = true)]
    async fn over_the_cap_a_new_feed_lets_the_longest_idle_one_go() {
        let registry: Arc<Registry<u32>> = Registry::capped(Duration::from_secs(60), 2);
        let start = |_stop| async { Ok(0) };
        let a = registry.join("a", start).await.unwrap();
        let (a_stop, _) = (a.slot.stop.clone(), ());
        drop(a);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let b = registry.join("b", start).await.unwrap();
        let b_stop = b.slot.stop.clone();
        drop(b);
        let watched = registry.join("w", start).await.unwrap();
        assert!(a_stop.is_cancelled(), "a, idle longest, made room");
        assert!(!b_stop.is_cancelled());
        let _d = registry.join("d", start).await.unwrap();
        assert!(b_stop.is_cancelled(), "then b");
        let _e = registry.join("e", start).await.unwrap();
        assert!(
            !watched.slot.stop.is_cancelled(),
            "a feed with viewers is never ended for room"
        );
        assert_eq!(
            registry.slots().len(),
            3,
            "over the cap only while every feed is watched"
        );
    }

    #[tokio::test]
    async fn a_feed_that_fails_to_start_is_tried_again() {
        let registry: Arc<Registry<u32>> = Registry::new(Duration::from_secs(5));
        let failing = |_stop| async { Err(crate::error::Error::Unavailable("down".into())) };
        assert!(registry.join("s", failing).await.is_err());
        let v = registry.join("s", |_stop| async { Ok(7) }).await.unwrap();
        assert_eq!(*v.feed(), 7);
        let closed = registry.close("s").unwrap();
        assert!(closed.stop.is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn short_viewers_coming_and_going_keep_the_feed_until_a_linger_after_the_last() {
        let registry: Arc<Registry<u32>> = Registry::new(Duration::from_secs(5));
        let starts = AtomicU32::new(0);
        let start = |_stop| async { Ok(starts.fetch_add(1, Ordering::SeqCst)) };
        let first = registry.join("s", start).await.unwrap();
        let stop = first.slot.stop.clone();
        drop(first);
        // A conflict's seat list every 100 ms for 12 s: one feed all along.
        for _ in 0..120 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let v = registry.join("s", start).await.unwrap();
            assert_eq!(*v.feed(), 0);
        }
        assert!(!stop.is_cancelled());
        tokio::time::sleep(Duration::from_millis(4_900)).await;
        assert!(!stop.is_cancelled(), "not before a whole linger without viewers");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(stop.is_cancelled());
        assert_eq!(starts.load(Ordering::SeqCst), 1);
    }
}
