//! Seat locks: memory, Redis and Redis Cluster.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use showgate::booking::locks::{SeatEngine, cmd};
use showgate::domain::best::{self, RowPlan};
use showgate::domain::seats::{BestOutcome, ExtendOutcome, HoldOutcome, HoldStatus, Owner, ReleaseOutcome, SeatStatus};

use super::common::{self, seats};
use super::{SHOW, T0, TTL};

async fn a_hold_is_all_or_nothing(locks: Arc<SeatEngine>) {
    let r = locks
        .run(
            SHOW,
            T0,
            &cmd::Hold {
                user: "alice",
                hold_id: "h1",
                seats: &seats(&["A1", "A2"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    assert_eq!(held(&r.out), (1, None));
    let HoldOutcome::Held { record, .. } = &r.out else {
        unreachable!()
    };
    assert_eq!(
        (
            record.user.as_str(),
            &record.seats,
            record.created_ms,
            record.expires_ms,
            record.status
        ),
        ("alice", &seats(&["A1", "A2"]), T0, T0 + TTL, HoldStatus::Held),
        "the answer is the hold as stored"
    );
    assert_eq!(Some(record), locks.hold_record(SHOW, "h1").await.unwrap().as_ref());
    let r = locks
        .run(
            SHOW,
            T0,
            &cmd::Hold {
                user: "bob",
                hold_id: "h2",
                seats: &seats(&["A3", "A2"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    match r.out {
        HoldOutcome::Conflict { conflicts } => {
            assert_eq!(conflicts, seats(&["A2"]));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(r.version, 1, "a conflict changes nothing");
    let snap = locks.run(SHOW, T0, &cmd::Snapshot).await.unwrap().out;
    assert!(!snap.taken.contains_key("A3"), "no seat of a failed hold is locked");
    assert_eq!(snap.taken["A1"], Owner::Hold("h1".into()));
}

async fn a_users_new_hold_replaces_the_old_and_its_seats_are_no_conflict(locks: Arc<SeatEngine>) {
    locks
        .run(
            SHOW,
            T0,
            &cmd::Hold {
                user: "alice",
                hold_id: "h1",
                seats: &seats(&["A1", "A2"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    let r = locks
        .run(
            SHOW,
            T0 + 1,
            &cmd::Hold {
                user: "alice",
                hold_id: "h2",
                seats: &seats(&["A2", "A3"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    assert_eq!(held(&r.out), (2, Some("h1".to_owned())));
    let snap = locks.run(SHOW, T0 + 2, &cmd::Snapshot).await.unwrap().out;
    let mut taken: Vec<_> = snap.taken.keys().cloned().collect();
    taken.sort();
    assert_eq!(taken, seats(&["A2", "A3"]));
    assert_eq!(
        locks.hold_record(SHOW, "h1").await.unwrap().unwrap().status,
        HoldStatus::Released
    );
}

async fn a_failed_hold_leaves_the_previous_hold_untouched(locks: Arc<SeatEngine>) {
    locks
        .run(
            SHOW,
            T0,
            &cmd::Hold {
                user: "alice",
                hold_id: "h1",
                seats: &seats(&["A1"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    locks
        .run(
            SHOW,
            T0,
            &cmd::Hold {
                user: "bob",
                hold_id: "h2",
                seats: &seats(&["B1"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    let r = locks
        .run(
            SHOW,
            T0,
            &cmd::Hold {
                user: "alice",
                hold_id: "h3",
                seats: &seats(&["B1", "C1"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    assert!(matches!(r.out, HoldOutcome::Conflict { .. }));
    let rec = locks.hold_record(SHOW, "h1").await.unwrap().unwrap();
    assert_eq!(rec.status, HoldStatus::Held);
    assert!(locks.hold_record(SHOW, "h3").await.unwrap().is_none());
}

async fn release_frees_seats_once(locks: Arc<SeatEngine>) {
    locks
        .run(
            SHOW,
            T0,
            &cmd::Hold {
                user: "alice",
                hold_id: "h1",
                seats: &seats(&["A1"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        locks
            .run(
                SHOW,
                T0,
                &cmd::Release {
                    user: "bob",
                    hold_id: "h1"
                }
            )
            .await
            .unwrap()
            .out,
        ReleaseOutcome::NotFound
    );
    let r = locks
        .run(
            SHOW,
            T0,
            &cmd::Release {
                user: "alice",
                hold_id: "h1",
            },
        )
        .await
        .unwrap();
    assert_eq!((r.out, r.version), (ReleaseOutcome::Released, 2));
    let again = locks
        .run(
            SHOW,
            T0,
            &cmd::Release {
                user: "alice",
                hold_id: "h1",
            },
        )
        .await
        .unwrap();
    assert_eq!(again.out, ReleaseOutcome::NotActive("RELEASED".into()));
    assert!(locks.run(SHOW, T0, &cmd::Snapshot).await.unwrap().out.taken.is_empty());
}

async fn holds_expire_at_their_deadline(locks: Arc<SeatEngine>) {
    locks
        .run(
            SHOW,
            T0,
            &cmd::Hold {
                user: "alice",
                hold_id: "h1",
                seats: &seats(&["A1", "A2"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    let before = locks.run(SHOW, T0 + TTL - 1, &cmd::Snapshot).await.unwrap();
    assert_eq!(before.out.taken.len(), 2);
    let after = locks.run(SHOW, T0 + TTL, &cmd::Snapshot).await.unwrap();
    assert!(after.out.taken.is_empty());
    assert_eq!((after.version, after.expired), (2, 1));
    let rec = locks.hold_record(SHOW, "h1").await.unwrap().unwrap();
    assert_eq!(rec.status, HoldStatus::Expired);
    // Another shopper takes the seats at once.
    let r = locks
        .run(
            SHOW,
            T0 + TTL,
            &cmd::Hold {
                user: "bob",
                hold_id: "h2",
                seats: &seats(&["A1"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    assert!(matches!(r.out, HoldOutcome::Held { version: 3, .. }));
    // The record is kept for the retention (as a tombstone), and dropped
    // within twice it.
    let r = common::TIMES.retention_ms;
    let swept = locks.run(SHOW, T0 + TTL + r - 1, &cmd::Expire).await.unwrap().out;
    assert_eq!(swept.tombstones, 2, "h1's and bob's, which expired since");
    assert!(locks.hold_record(SHOW, "h1").await.unwrap().is_some());
    locks.run(SHOW, T0 + TTL + r, &cmd::Expire).await.unwrap();
    let rec = locks.hold_record(SHOW, "h1").await.unwrap().unwrap();
    assert_eq!((rec.status, rec.user.as_str()), (HoldStatus::Expired, "alice"));
    let swept = locks.run(SHOW, T0 + TTL + 2 * r, &cmd::Expire).await.unwrap().out;
    assert!(locks.hold_record(SHOW, "h1").await.unwrap().is_none());
    assert_eq!(swept.tombstones, 0);
}

async fn an_expired_hold_cannot_become_an_order(locks: Arc<SeatEngine>) {
    locks
        .run(
            SHOW,
            T0,
            &cmd::Hold {
                user: "alice",
                hold_id: "h1",
                seats: &seats(&["A1"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    let r = locks
        .run(
            SHOW,
            T0 + TTL,
            &cmd::ExtendForOrder {
                user: "alice",
                hold_id: "h1",
                order_id: "o1",
                order_ttl_ms: 600_000,
            },
        )
        .await
        .unwrap();
    assert_eq!(r.out, ExtendOutcome::Expired);
    let r = locks
        .run(
            SHOW,
            T0 + TTL,
            &cmd::ExtendForOrder {
                user: "bob",
                hold_id: "h1",
                order_id: "o1",
                order_ttl_ms: 600_000,
            },
        )
        .await
        .unwrap();
    assert_eq!(r.out, ExtendOutcome::NotFound);
}

async fn an_order_keeps_its_seats_past_the_hold_ttl(locks: Arc<SeatEngine>) {
    locks
        .run(
            SHOW,
            T0,
            &cmd::Hold {
                user: "alice",
                hold_id: "h1",
                seats: &seats(&["A1", "A2"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    let r = locks
        .run(
            SHOW,
            T0 + 10,
            &cmd::ExtendForOrder {
                user: "alice",
                hold_id: "h1",
                order_id: "o1",
                order_ttl_ms: 600_000,
            },
        )
        .await
        .unwrap();
    let ExtendOutcome::Attached(lock) = r.out else {
        panic!("expected attached, got {:?}", r.out)
    };
    assert_eq!((lock.created_ms, lock.expires_ms), (T0 + 10, T0 + 600_010));
    assert_eq!(r.version, 1, "seats stay HELD: no delta");
    let again = locks
        .run(
            SHOW,
            T0 + 20,
            &cmd::ExtendForOrder {
                user: "alice",
                hold_id: "h1",
                order_id: "o2",
                order_ttl_ms: 600_000,
            },
        )
        .await
        .unwrap();
    assert_eq!(again.out, ExtendOutcome::Existing(lock));
    let snap = locks.run(SHOW, T0 + TTL + 1, &cmd::Snapshot).await.unwrap().out;
    assert_eq!(snap.taken["A1"], Owner::Order("o1".into()));
    assert_eq!(
        locks
            .run(
                SHOW,
                T0,
                &cmd::Release {
                    user: "alice",
                    hold_id: "h1"
                }
            )
            .await
            .unwrap()
            .out,
        ReleaseOutcome::NotActive("ORDERED".into())
    );
    // A new hold by the same user leaves the order alone.
    let r = locks
        .run(
            SHOW,
            T0 + 30,
            &cmd::Hold {
                user: "alice",
                hold_id: "h2",
                seats: &seats(&["A3"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    assert_eq!(held(&r.out), (2, None));
    assert_eq!(
        locks.run(SHOW, T0 + 31, &cmd::Snapshot).await.unwrap().out.taken.len(),
        3
    );
}

async fn booking_and_releasing_an_order(locks: Arc<SeatEngine>) {
    locks
        .run(
            SHOW,
            T0,
            &cmd::Hold {
                user: "alice",
                hold_id: "h1",
                seats: &seats(&["A1", "A2"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    locks
        .run(
            SHOW,
            T0,
            &cmd::ExtendForOrder {
                user: "alice",
                hold_id: "h1",
                order_id: "o1",
                order_ttl_ms: 1000,
            },
        )
        .await
        .unwrap();
    let r = locks
        .run(
            SHOW,
            T0 + 1,
            &cmd::Settle {
                verdict: cmd::Verdict::Book,
                order_id: "o1",
                hold_id: "h1",
                stamp: 1,
                seats: &seats(&["A1", "A2"]),
            },
        )
        .await
        .unwrap();
    assert_eq!((r.out, r.version), (true, 2));
    // Long past the order's expiry and grace, booked seats stay booked.
    let snap = locks.run(SHOW, T0 + 10_000_000, &cmd::Snapshot).await.unwrap();
    assert_eq!(snap.out.taken["A2"], Owner::Booked("o1".into()));
    assert_eq!(snap.version, 2);
    let r = locks
        .run(
            SHOW,
            T0 + 10_000_001,
            &cmd::Settle {
                verdict: cmd::Verdict::Release,
                order_id: "o1",
                hold_id: "h1",
                stamp: 2,
                seats: &seats(&["A1", "A2"]),
            },
        )
        .await
        .unwrap();
    assert_eq!((r.out, r.version), (true, 3));
    assert!(
        locks
            .run(SHOW, T0 + 10_000_002, &cmd::Snapshot)
            .await
            .unwrap()
            .out
            .taken
            .is_empty()
    );
    // Releasing again (a retry, the same order state) changes nothing.
    let r = locks
        .run(
            SHOW,
            T0 + 10_000_003,
            &cmd::Settle {
                verdict: cmd::Verdict::Release,
                order_id: "o1",
                hold_id: "h1",
                stamp: 2,
                seats: &seats(&["A1", "A2"]),
            },
        )
        .await
        .unwrap();
    assert_eq!((r.out, r.version), (false, 3));
}

async fn an_order_lock_nobody_settles_is_freed_after_grace(locks: Arc<SeatEngine>) {
    locks
        .run(
            SHOW,
            T0,
            &cmd::Hold {
                user: "alice",
                hold_id: "h1",
                seats: &seats(&["A1"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    locks
        .run(
            SHOW,
            T0,
            &cmd::ExtendForOrder {
                user: "alice",
                hold_id: "h1",
                order_id: "o1",
                order_ttl_ms: 1000,
            },
        )
        .await
        .unwrap();
    let grace = common::TIMES.order_grace_ms;
    assert_eq!(
        locks
            .run(SHOW, T0 + 1000 + grace - 1, &cmd::Snapshot)
            .await
            .unwrap()
            .out
            .taken
            .len(),
        1
    );
    assert!(
        locks
            .run(SHOW, T0 + 1000 + grace, &cmd::Snapshot)
            .await
            .unwrap()
            .out
            .taken
            .is_empty()
    );
}

async fn subscribers_see_every_delta_in_version_order(locks: Arc<SeatEngine>) {
    let mut events = locks.subscribe(SHOW).await.unwrap();
    locks
        .run(
            SHOW,
            T0,
            &cmd::Hold {
                user: "alice",
                hold_id: "h1",
                seats: &seats(&["A1", "A2"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    locks
        .run(
            SHOW,
            T0,
            &cmd::Hold {
                user: "alice",
                hold_id: "h2",
                seats: &seats(&["A2", "A3"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    locks
        .run(
            SHOW,
            T0,
            &cmd::Hold {
                user: "bob",
                hold_id: "h3",
                seats: &seats(&["A3"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap(); // conflict: no delta
    locks
        .run(
            SHOW,
            T0,
            &cmd::ExtendForOrder {
                user: "alice",
                hold_id: "h2",
                order_id: "o1",
                order_ttl_ms: 600_000,
            },
        )
        .await
        .unwrap(); // no status change
    locks
        .run(
            SHOW,
            T0,
            &cmd::Settle {
                verdict: cmd::Verdict::Book,
                order_id: "o1",
                hold_id: "h2",
                stamp: 1,
                seats: &seats(&["A2", "A3"]),
            },
        )
        .await
        .unwrap();
    locks
        .run(
            SHOW,
            T0,
            &cmd::Hold {
                user: "bob",
                hold_id: "h4",
                seats: &seats(&["B1"]),
                ttl_ms: 1,
            },
        )
        .await
        .unwrap();
    locks.run(SHOW, T0 + 1, &cmd::Expire).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..5 {
        let d = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("delta in time")
            .unwrap();
        assert_eq!(d.show_id, SHOW);
        got.push((
            d.version,
            d.changes
                .iter()
                .map(|c| (c.seat_id.clone(), c.status))
                .collect::<Vec<_>>(),
        ));
    }
    use SeatStatus::*;
    assert_eq!(
        got,
        vec![
            (1, vec![("A1".into(), Held), ("A2".into(), Held)]),
            (2, vec![("A3".into(), Held), ("A1".into(), Available)]),
            (3, vec![("A2".into(), Booked), ("A3".into(), Booked)]),
            (4, vec![("B1".into(), Held)]),
            (5, vec![("B1".into(), Available)]),
        ]
    );
}

async fn a_hold_that_lost_a_seat_to_a_late_booking_cannot_become_an_order(locks: Arc<SeatEngine>) {
    // alice's order lock is forgotten (freed after grace), bob holds the seat,
    // then alice's stale payment books it anyway: the record decides.
    locks
        .run(
            SHOW,
            T0,
            &cmd::Hold {
                user: "alice",
                hold_id: "h1",
                seats: &seats(&["A1"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    locks
        .run(
            SHOW,
            T0,
            &cmd::ExtendForOrder {
                user: "alice",
                hold_id: "h1",
                order_id: "o1",
                order_ttl_ms: 1000,
            },
        )
        .await
        .unwrap();
    let later = T0 + 1000 + common::TIMES.order_grace_ms;
    locks
        .run(
            SHOW,
            later,
            &cmd::Hold {
                user: "bob",
                hold_id: "h2",
                seats: &seats(&["A1", "A2"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    locks
        .run(
            SHOW,
            later,
            &cmd::Settle {
                verdict: cmd::Verdict::Book,
                order_id: "o1",
                hold_id: "h1",
                stamp: 1,
                seats: &seats(&["A1"]),
            },
        )
        .await
        .unwrap();
    let r = locks
        .run(
            SHOW,
            later + 1,
            &cmd::ExtendForOrder {
                user: "bob",
                hold_id: "h2",
                order_id: "o2",
                order_ttl_ms: 600_000,
            },
        )
        .await
        .unwrap();
    assert_eq!(r.out, ExtendOutcome::NotActive("RELEASED".into()));
    let snap = locks.run(SHOW, later + 2, &cmd::Snapshot).await.unwrap().out;
    assert_eq!(snap.taken.len(), 1, "bob's other seat is given back");
    assert_eq!(snap.taken["A1"], Owner::Booked("o1".into()));
}

async fn shows_are_independent(locks: Arc<SeatEngine>) {
    locks
        .run(
            "show-a",
            T0,
            &cmd::Hold {
                user: "alice",
                hold_id: "h1",
                seats: &seats(&["A1"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    let r = locks
        .run(
            "show-b",
            T0,
            &cmd::Hold {
                user: "bob",
                hold_id: "h2",
                seats: &seats(&["A1"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    assert_eq!(held(&r.out), (1, None));
}

/// Three rows of six seats, B2 unavailable, in preference order (B, C, A).
fn small_plan() -> Vec<RowPlan> {
    best::plan(
        ["A", "B", "C"]
            .iter()
            .map(|r| RowPlan {
                row: (*r).into(),
                seats: 6,
                unavailable: if *r == "B" { vec![2] } else { vec![] },
            })
            .collect(),
    )
}

async fn best_available_picks_by_the_rule_in_one_step(locks: Arc<SeatEngine>) {
    let plan = small_plan();
    let best = |user: &'static str, id: &'static str, q: usize| {
        let (locks, plan) = (locks.clone(), plan.clone());
        async move {
            locks
                .run(
                    SHOW,
                    T0,
                    &cmd::HoldBest {
                        user,
                        hold_id: id,
                        quantity: q,
                        rows: &plan,
                        ttl_ms: TTL,
                    },
                )
                .await
                .unwrap()
        }
    };
    // Row B first; B2 is unavailable, so B3-B4 sits nearest the middle
    // without stranding a seat.
    let r = best("alice", "h1", 2).await;
    assert_eq!(picked(&r.out), (1, None, seats(&["B3", "B4"])));
    // A retry of the same hold answers the same seats and changes nothing.
    let again = best("alice", "h1", 2).await;
    assert_eq!((again.out, again.version), (r.out.clone(), 1));
    // Her own seats count as free: her new pick takes them again (no seat
    // changes status, so the version stays).
    let r = best("alice", "h2", 2).await;
    assert_eq!(picked(&r.out), (1, Some("h1".to_owned()), seats(&["B3", "B4"])));
    // Bob gets the pair left in row B (B5-B6), not B1 alone.
    let r = best("bob", "h3", 2).await;
    assert!(
        matches!(r.out, BestOutcome::Held { ref record, .. } if record.seats == ["B5", "B6"]),
        "{:?}",
        r.out
    );
    // Three together no longer fit in row B: row C, from its left end
    // (its middle blocks would strand a seat).
    let r = best("carol", "h4", 3).await;
    assert!(
        matches!(r.out, BestOutcome::Held { ref record, .. } if record.seats == ["C1", "C2", "C3"]),
        "{:?}",
        r.out
    );
    // Seven never fit: nothing changes, and the largest block is row A's six.
    let before = locks.run(SHOW, T0, &cmd::Snapshot).await.unwrap();
    let r = best("dave", "h5", 7).await;
    assert_eq!(r.out, BestOutcome::NotEnough { largest_block: 6 });
    assert_eq!(r.version, before.version);
    let snap = locks.run(SHOW, T0, &cmd::Snapshot).await.unwrap().out;
    assert_eq!(snap.taken.len(), 7, "B3 B4 B5 B6 C1 C2 C3");
}

macro_rules! seat_lock_cases {
    ($($case:ident),* $(,)?) => {
        mod memory_seat_locks {
            $( #[tokio::test] async fn $case() { super::$case(super::common::ready(super::common::memory_locks()).await).await } )*
        }
        mod redis_seat_locks {
            $( #[tokio::test] async fn $case() {
                super::$case(super::common::ready(super::common::redis_locks(&super::common::unique_prefix()).await).await).await
            } )*
        }
        /// The same scripts on a three-master Redis Cluster: every key of a
        /// show in one slot, deltas over sharded pub/sub.
        mod redis_cluster_seat_locks {
            $( #[tokio::test] async fn $case() {
                super::$case(super::common::ready(super::common::cluster_locks(&super::common::unique_prefix()).await).await).await
            } )*
        }
    };
}

seat_lock_cases!(
    a_hold_is_all_or_nothing,
    best_available_picks_by_the_rule_in_one_step,
    a_users_new_hold_replaces_the_old_and_its_seats_are_no_conflict,
    a_failed_hold_leaves_the_previous_hold_untouched,
    release_frees_seats_once,
    holds_expire_at_their_deadline,
    an_expired_hold_cannot_become_an_order,
    an_order_keeps_its_seats_past_the_hold_ttl,
    booking_and_releasing_an_order,
    an_order_lock_nobody_settles_is_freed_after_grace,
    subscribers_see_every_delta_in_version_order,
    a_hold_that_lost_a_seat_to_a_late_booking_cannot_become_an_order,
    shows_are_independent,
);

/// A hold's version and the hold it replaced.
fn held(out: &HoldOutcome) -> (u64, Option<String>) {
    match out {
        HoldOutcome::Held { version, record } => (*version, record.replaced.clone()),
        other => panic!("not held: {other:?}"),
    }
}

/// A best-available hold's version, the hold it replaced and its seats.
fn picked(out: &BestOutcome) -> (u64, Option<String>, Vec<String>) {
    match out {
        BestOutcome::Held { version, record } => (*version, record.replaced.clone(), record.seats.clone()),
        other => panic!("nothing picked: {other:?}"),
    }
}
