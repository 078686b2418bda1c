//! Recovery on every seat engine: a show with no state refuses until it is
//! rebuilt from the record; a rebuild puts the record back over holds under a
//! new epoch; late and repeated order changes change nothing; a retried hold
//! answers the first run.

use std::sync::Arc;

use futures::StreamExt;
use showgate::booking::locks::{SeatEngine, cmd};
use showgate::domain::seats::{HoldOutcome, Owner, PendingLock, RecordState};
use showgate::error::Error;

use super::common::{self, seats};
use super::{SHOW, T0, TTL};

fn record() -> RecordState {
    RecordState {
        booked: vec![("A1".into(), "o1".into(), 7)],
        pending: vec![PendingLock {
            order_id: "o2".into(),
            hold_id: "h9".into(),
            user: "carol".into(),
            seats: seats(&["D1", "D2"]),
            created_ms: T0,
            expires_ms: T0 + 600_000,
            stamp: 8,
        }],
        ended: vec![],
        as_of: 0,
    }
}

async fn a_show_with_no_state_refuses_until_it_is_built_from_the_record(locks: Arc<SeatEngine>) {
    let refused = locks
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
        .await;
    assert!(matches!(refused, Err(Error::StateMissing(_))), "{refused:?}");
    assert!(matches!(
        locks.run(SHOW, T0, &cmd::Snapshot).await,
        Err(Error::StateMissing(_))
    ));
    let built = locks
        .run(
            SHOW,
            T0,
            &cmd::Rebuild {
                seen: "",
                epoch: "e1",
                record: &record(),
            },
        )
        .await
        .unwrap();
    assert_eq!((built.out, built.epoch.as_str()), (true, "e1"));
    let snap = locks.run(SHOW, T0, &cmd::Snapshot).await.unwrap().out;
    assert_eq!(snap.epoch, "e1");
    assert_eq!(snap.taken["A1"], Owner::Booked("o1".into()));
    assert_eq!(snap.taken["D2"], Owner::Order("o2".into()));
    // The booked and the pending seats cannot be taken.
    let r = locks
        .run(
            SHOW,
            T0,
            &cmd::Hold {
                user: "alice",
                hold_id: "h1",
                seats: &seats(&["A1", "D1", "E1"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    assert!(matches!(r.out, HoldOutcome::Conflict { ref conflicts, .. } if conflicts == &seats(&["A1", "D1"])));
    // The pending order's hold record is back: its order can still be paid.
    let rec = locks.hold_record(SHOW, "h9").await.unwrap().unwrap();
    assert_eq!((rec.user.as_str(), rec.order_id.as_deref()), ("carol", Some("o2")));
    let paid = locks
        .run(
            SHOW,
            T0 + 1,
            &cmd::Settle {
                verdict: cmd::Verdict::Book,
                order_id: "o2",
                hold_id: "h9",
                stamp: 9,
                seats: &seats(&["D1", "D2"]),
            },
        )
        .await
        .unwrap();
    assert!(paid.out);
    assert_eq!(
        locks.run(SHOW, T0 + 1, &cmd::Snapshot).await.unwrap().out.taken["D1"],
        Owner::Booked("o2".into())
    );
}

async fn a_rebuild_puts_the_record_back_over_holds_under_a_new_epoch(locks: Arc<SeatEngine>) {
    locks
        .run(
            SHOW,
            T0,
            &cmd::Rebuild {
                seen: "",
                epoch: "e1",
                record: &RecordState::default(),
            },
        )
        .await
        .unwrap();
    let mut deltas = locks.subscribe(SHOW).await.unwrap();
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
                user: "bob",
                hold_id: "h2",
                seats: &seats(&["B1"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    // Only the epoch the caller saw is rebuilt: a second node's rebuild is a no-op.
    let stale = locks
        .run(
            SHOW,
            T0 + 1,
            &cmd::Rebuild {
                seen: "e0",
                epoch: "e9",
                record: &record(),
            },
        )
        .await
        .unwrap();
    assert_eq!((stale.out, stale.epoch.as_str()), (false, "e1"));
    let r = locks
        .run(
            SHOW,
            T0 + 1,
            &cmd::Rebuild {
                seen: "e1",
                epoch: "e2",
                record: &record(),
            },
        )
        .await
        .unwrap();
    assert_eq!((r.out, r.epoch.as_str(), r.version), (true, "e2", 3));
    let snap = locks.run(SHOW, T0 + 1, &cmd::Snapshot).await.unwrap().out;
    assert_eq!(
        snap.taken.get("A2"),
        None,
        "alice's hold stood on a sold seat: released whole"
    );
    assert_eq!(snap.taken["B1"], Owner::Hold("h2".into()), "other holds stay");
    let ended = locks.hold_record(SHOW, "h1").await.unwrap().unwrap();
    assert_eq!(ended.status, showgate::domain::seats::HoldStatus::Released);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let d = tokio::time::timeout(std::time::Duration::from_secs(5), deltas.next())
            .await
            .unwrap()
            .unwrap();
        seen.push((d.epoch, d.version));
    }
    assert_eq!(seen, vec![("e1".into(), 1), ("e1".into(), 2), ("e2".into(), 3)]);
}

async fn a_rebuild_keeps_what_changed_after_the_record_was_read(locks: Arc<SeatEngine>) {
    let locks = common::ready(locks).await;
    // o1 was booked (stamp 10) after the record was read (as of 5): the
    // rebuild must not free it. o2 was pending in the record (stamp 8) but
    // cancelled since (stamp 9): the rebuild must not lock its seat again.
    locks
        .run(
            SHOW,
            T0,
            &cmd::Settle {
                verdict: cmd::Verdict::Book,
                order_id: "o1",
                hold_id: "h1",
                stamp: 10,
                seats: &seats(&["A1"]),
            },
        )
        .await
        .unwrap();
    locks
        .run(
            SHOW,
            T0,
            &cmd::Settle {
                verdict: cmd::Verdict::Release,
                order_id: "o2",
                hold_id: "h2",
                stamp: 9,
                seats: &seats(&["D1"]),
            },
        )
        .await
        .unwrap();
    let stale = RecordState {
        booked: vec![],
        pending: vec![PendingLock {
            order_id: "o2".into(),
            hold_id: "h2".into(),
            user: "carol".into(),
            seats: seats(&["D1"]),
            created_ms: T0,
            expires_ms: T0 + 600_000,
            stamp: 8,
        }],
        ended: vec![],
        as_of: 5,
    };
    assert!(
        locks
            .run(
                SHOW,
                T0,
                &cmd::Rebuild {
                    seen: "e1",
                    epoch: "e2",
                    record: &stale
                }
            )
            .await
            .unwrap()
            .out
    );
    let snap = locks.run(SHOW, T0, &cmd::Snapshot).await.unwrap().out;
    assert_eq!(snap.taken.get("A1"), Some(&Owner::Booked("o1".into())));
    assert_eq!(snap.taken.get("D1"), None);
}

async fn late_and_repeated_order_changes_change_nothing(locks: Arc<SeatEngine>) {
    let locks = common::ready(locks).await;
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
                order_ttl_ms: 600_000,
            },
        )
        .await
        .unwrap();
    // Cancelled (stamp 20) before the payment's book (stamp 10) reached the locks.
    assert!(
        locks
            .run(
                SHOW,
                T0,
                &cmd::Settle {
                    verdict: cmd::Verdict::Release,
                    order_id: "o1",
                    hold_id: "h1",
                    stamp: 20,
                    seats: &seats(&["A1"])
                }
            )
            .await
            .unwrap()
            .out
    );
    let late = locks
        .run(
            SHOW,
            T0,
            &cmd::Settle {
                verdict: cmd::Verdict::Book,
                order_id: "o1",
                hold_id: "h1",
                stamp: 10,
                seats: &seats(&["A1"]),
            },
        )
        .await
        .unwrap();
    assert!(!late.out);
    assert!(locks.run(SHOW, T0, &cmd::Snapshot).await.unwrap().out.taken.is_empty());
    let again = locks
        .run(
            SHOW,
            T0,
            &cmd::Settle {
                verdict: cmd::Verdict::Release,
                order_id: "o1",
                hold_id: "h1",
                stamp: 20,
                seats: &seats(&["A1"]),
            },
        )
        .await
        .unwrap();
    assert!(!again.out);
}

async fn a_retried_hold_answers_the_first_run_and_keeps_the_seats(locks: Arc<SeatEngine>) {
    let locks = common::ready(locks).await;
    locks
        .run(
            SHOW,
            T0,
            &cmd::Hold {
                user: "alice",
                hold_id: "h0",
                seats: &seats(&["A9"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    let first = locks
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
    let again = locks
        .run(
            SHOW,
            T0 + 1,
            &cmd::Hold {
                user: "alice",
                hold_id: "h1",
                seats: &seats(&["A1"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    assert_eq!(first.out, again.out);
    assert_eq!(first.version, again.version, "the retry changed nothing");
    assert_eq!(
        locks.run(SHOW, T0 + 1, &cmd::Snapshot).await.unwrap().out.taken["A1"],
        Owner::Hold("h1".into())
    );
}

async fn a_booking_a_lagging_replica_kept_is_freed_when_the_record_has_its_order_ended(locks: Arc<SeatEngine>) {
    let locks = common::ready(locks).await;
    // o1 booked (stamp 10) and since cancelled (stamp 20): the release was
    // lost with a replica that lagged, which still books A1. The record was
    // read with a margin (as of 5), so the booking looks newer than the
    // read; the record's own word on o1 frees it (found by `sg-load chaos`).
    // o3 booked (stamp 12) is not in the record at all: kept (booked after the read).
    for (order, hold, seat, stamp) in [("o1", "h1", "A1", 10), ("o3", "h3", "A3", 12)] {
        locks
            .run(
                SHOW,
                T0,
                &cmd::Settle {
                    verdict: cmd::Verdict::Book,
                    order_id: order,
                    hold_id: hold,
                    stamp,
                    seats: &seats(&[seat]),
                },
            )
            .await
            .unwrap();
    }
    let record = RecordState {
        booked: vec![],
        pending: vec![],
        ended: vec![("o1".into(), 20)],
        as_of: 5,
    };
    assert!(
        locks
            .run(
                SHOW,
                T0,
                &cmd::Rebuild {
                    seen: "e1",
                    epoch: "e2",
                    record: &record
                }
            )
            .await
            .unwrap()
            .out
    );
    let snap = locks.run(SHOW, T0, &cmd::Snapshot).await.unwrap().out;
    assert_eq!(snap.taken.get("A1"), None, "ended since the booking: freed");
    assert_eq!(snap.taken.get("A3"), Some(&Owner::Booked("o3".into())));
}

macro_rules! recovery_cases {
    ($($case:ident),* $(,)?) => {
        mod memory_recovery {
            $( #[tokio::test] async fn $case() { super::$case(super::common::memory_locks()).await } )*
        }
        mod redis_recovery {
            $( #[tokio::test] async fn $case() {
                super::$case(super::common::redis_locks(&super::common::unique_prefix()).await).await
            } )*
        }
        mod redis_cluster_recovery {
            $( #[tokio::test] async fn $case() {
                super::$case(super::common::cluster_locks(&super::common::unique_prefix()).await).await
            } )*
        }
    };
}

recovery_cases!(
    a_show_with_no_state_refuses_until_it_is_built_from_the_record,
    a_rebuild_puts_the_record_back_over_holds_under_a_new_epoch,
    late_and_repeated_order_changes_change_nothing,
    a_rebuild_keeps_what_changed_after_the_record_was_read,
    a_booking_a_lagging_replica_kept_is_freed_when_the_record_has_its_order_ended,
    a_retried_hold_answers_the_first_run_and_keeps_the_seats,
);
