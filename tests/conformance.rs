//! One suite, two engines of each kind: every case runs against the memory
//! seat locks and the Redis (Lua) ones, and against the in-process record and
//! Postgres. If the two implementations of a trait ever disagree, a case here
//! fails on one of them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use futures::StreamExt;
use showgate::domain::order::{OrderEvent, OrderStatus, Refusal, SeatEffect};
use showgate::domain::seats::{ExtendOutcome, HoldOutcome, HoldStatus, Owner, ReleaseOutcome, SeatStatus};
use showgate::engine::SeatLocks;
use showgate::records::{Applied, Cursor, Order, Records, StoredResponse};
use uuid::Uuid;

use common::seats;

const SHOW: &str = "show-1";
const TTL: i64 = 300_000;
const T0: i64 = 1_800_000_000_000;

// ---- seat locks -----------------------------------------------------------

async fn a_hold_is_all_or_nothing(locks: Arc<dyn SeatLocks>) {
    let r = locks
        .hold(SHOW, T0, "alice", "h1", &seats(&["A1", "A2"]), TTL)
        .await
        .unwrap();
    assert_eq!(
        r.out,
        HoldOutcome::Held {
            version: 1,
            replaced: None
        }
    );
    let r = locks
        .hold(SHOW, T0, "bob", "h2", &seats(&["A3", "A2"]), TTL)
        .await
        .unwrap();
    match r.out {
        HoldOutcome::Conflict { conflicts, mut taken } => {
            taken.sort();
            assert_eq!(conflicts, seats(&["A2"]));
            assert_eq!(taken, seats(&["A1", "A2"]));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(r.version, 1, "a conflict changes nothing");
    let snap = locks.snapshot(SHOW, T0).await.unwrap().out;
    assert!(!snap.taken.contains_key("A3"), "no seat of a failed hold is locked");
    assert_eq!(snap.taken["A1"], Owner::Hold("h1".into()));
}

async fn a_users_new_hold_replaces_the_old_and_its_seats_are_no_conflict(locks: Arc<dyn SeatLocks>) {
    locks
        .hold(SHOW, T0, "alice", "h1", &seats(&["A1", "A2"]), TTL)
        .await
        .unwrap();
    let r = locks
        .hold(SHOW, T0 + 1, "alice", "h2", &seats(&["A2", "A3"]), TTL)
        .await
        .unwrap();
    assert_eq!(
        r.out,
        HoldOutcome::Held {
            version: 2,
            replaced: Some("h1".into())
        }
    );
    let snap = locks.snapshot(SHOW, T0 + 2).await.unwrap().out;
    let mut taken: Vec<_> = snap.taken.keys().cloned().collect();
    taken.sort();
    assert_eq!(taken, seats(&["A2", "A3"]));
    assert_eq!(
        locks.hold_record(SHOW, "h1").await.unwrap().unwrap().status,
        HoldStatus::Released
    );
}

async fn a_failed_hold_leaves_the_previous_hold_untouched(locks: Arc<dyn SeatLocks>) {
    locks.hold(SHOW, T0, "alice", "h1", &seats(&["A1"]), TTL).await.unwrap();
    locks.hold(SHOW, T0, "bob", "h2", &seats(&["B1"]), TTL).await.unwrap();
    let r = locks
        .hold(SHOW, T0, "alice", "h3", &seats(&["B1", "C1"]), TTL)
        .await
        .unwrap();
    assert!(matches!(r.out, HoldOutcome::Conflict { .. }));
    let rec = locks.hold_record(SHOW, "h1").await.unwrap().unwrap();
    assert_eq!(rec.status, HoldStatus::Held);
    assert!(locks.hold_record(SHOW, "h3").await.unwrap().is_none());
}

async fn release_frees_seats_once(locks: Arc<dyn SeatLocks>) {
    locks.hold(SHOW, T0, "alice", "h1", &seats(&["A1"]), TTL).await.unwrap();
    assert_eq!(
        locks.release(SHOW, T0, "bob", "h1").await.unwrap().out,
        ReleaseOutcome::NotFound
    );
    let r = locks.release(SHOW, T0, "alice", "h1").await.unwrap();
    assert_eq!((r.out, r.version), (ReleaseOutcome::Released, 2));
    let again = locks.release(SHOW, T0, "alice", "h1").await.unwrap();
    assert_eq!(again.out, ReleaseOutcome::NotActive("RELEASED".into()));
    assert!(locks.snapshot(SHOW, T0).await.unwrap().out.taken.is_empty());
}

async fn holds_expire_at_their_deadline(locks: Arc<dyn SeatLocks>) {
    locks
        .hold(SHOW, T0, "alice", "h1", &seats(&["A1", "A2"]), TTL)
        .await
        .unwrap();
    let before = locks.snapshot(SHOW, T0 + TTL - 1).await.unwrap();
    assert_eq!(before.out.taken.len(), 2);
    let after = locks.snapshot(SHOW, T0 + TTL).await.unwrap();
    assert!(after.out.taken.is_empty());
    assert_eq!((after.version, after.expired), (2, 1));
    let rec = locks.hold_record(SHOW, "h1").await.unwrap().unwrap();
    assert_eq!(rec.status, HoldStatus::Expired);
    // Another shopper takes the seats at once.
    let r = locks
        .hold(SHOW, T0 + TTL, "bob", "h2", &seats(&["A1"]), TTL)
        .await
        .unwrap();
    assert!(matches!(r.out, HoldOutcome::Held { version: 3, .. }));
    // The record is dropped once retention runs out.
    locks
        .expire(SHOW, T0 + TTL + common::TIMES.retention_ms + 1)
        .await
        .unwrap();
    assert!(locks.hold_record(SHOW, "h1").await.unwrap().is_none());
}

async fn an_expired_hold_cannot_become_an_order(locks: Arc<dyn SeatLocks>) {
    locks.hold(SHOW, T0, "alice", "h1", &seats(&["A1"]), TTL).await.unwrap();
    let r = locks
        .extend_for_order(SHOW, T0 + TTL, "alice", "h1", "o1", 600_000)
        .await
        .unwrap();
    assert_eq!(r.out, ExtendOutcome::Expired);
    let r = locks
        .extend_for_order(SHOW, T0 + TTL, "bob", "h1", "o1", 600_000)
        .await
        .unwrap();
    assert_eq!(r.out, ExtendOutcome::NotFound);
}

async fn an_order_keeps_its_seats_past_the_hold_ttl(locks: Arc<dyn SeatLocks>) {
    locks
        .hold(SHOW, T0, "alice", "h1", &seats(&["A1", "A2"]), TTL)
        .await
        .unwrap();
    let r = locks
        .extend_for_order(SHOW, T0 + 10, "alice", "h1", "o1", 600_000)
        .await
        .unwrap();
    let ExtendOutcome::Attached(lock) = r.out else {
        panic!("expected attached, got {:?}", r.out)
    };
    assert_eq!((lock.created_ms, lock.expires_ms), (T0 + 10, T0 + 600_010));
    assert_eq!(r.version, 1, "seats stay HELD: no delta");
    let again = locks
        .extend_for_order(SHOW, T0 + 20, "alice", "h1", "o2", 600_000)
        .await
        .unwrap();
    assert_eq!(again.out, ExtendOutcome::Existing(lock));
    let snap = locks.snapshot(SHOW, T0 + TTL + 1).await.unwrap().out;
    assert_eq!(snap.taken["A1"], Owner::Order("o1".into()));
    assert_eq!(
        locks.release(SHOW, T0, "alice", "h1").await.unwrap().out,
        ReleaseOutcome::NotActive("ORDERED".into())
    );
    // A new hold by the same user leaves the order alone.
    let r = locks
        .hold(SHOW, T0 + 30, "alice", "h2", &seats(&["A3"]), TTL)
        .await
        .unwrap();
    assert_eq!(
        r.out,
        HoldOutcome::Held {
            version: 2,
            replaced: None
        }
    );
    assert_eq!(locks.snapshot(SHOW, T0 + 31).await.unwrap().out.taken.len(), 3);
}

async fn booking_and_releasing_an_order(locks: Arc<dyn SeatLocks>) {
    locks
        .hold(SHOW, T0, "alice", "h1", &seats(&["A1", "A2"]), TTL)
        .await
        .unwrap();
    locks
        .extend_for_order(SHOW, T0, "alice", "h1", "o1", 1000)
        .await
        .unwrap();
    let r = locks
        .book(SHOW, T0 + 1, "o1", "h1", &seats(&["A1", "A2"]))
        .await
        .unwrap();
    assert_eq!(r.version, 2);
    // Long past the order's expiry and grace, booked seats stay booked.
    let snap = locks.snapshot(SHOW, T0 + 10_000_000).await.unwrap();
    assert_eq!(snap.out.taken["A2"], Owner::Booked("o1".into()));
    assert_eq!(snap.version, 2);
    let r = locks
        .release_order(SHOW, T0 + 10_000_001, "o1", "h1", &seats(&["A1", "A2"]))
        .await
        .unwrap();
    assert_eq!(r.version, 3);
    assert!(
        locks
            .snapshot(SHOW, T0 + 10_000_002)
            .await
            .unwrap()
            .out
            .taken
            .is_empty()
    );
    // Releasing again changes nothing.
    let r = locks
        .release_order(SHOW, T0 + 10_000_003, "o1", "h1", &seats(&["A1", "A2"]))
        .await
        .unwrap();
    assert_eq!(r.version, 3);
}

async fn an_order_lock_nobody_settles_is_freed_after_grace(locks: Arc<dyn SeatLocks>) {
    locks.hold(SHOW, T0, "alice", "h1", &seats(&["A1"]), TTL).await.unwrap();
    locks
        .extend_for_order(SHOW, T0, "alice", "h1", "o1", 1000)
        .await
        .unwrap();
    let grace = common::TIMES.order_grace_ms;
    assert_eq!(
        locks
            .snapshot(SHOW, T0 + 1000 + grace - 1)
            .await
            .unwrap()
            .out
            .taken
            .len(),
        1
    );
    assert!(
        locks
            .snapshot(SHOW, T0 + 1000 + grace)
            .await
            .unwrap()
            .out
            .taken
            .is_empty()
    );
}

async fn subscribers_see_every_delta_in_version_order(locks: Arc<dyn SeatLocks>) {
    let mut events = locks.subscribe(SHOW).await.unwrap();
    locks
        .hold(SHOW, T0, "alice", "h1", &seats(&["A1", "A2"]), TTL)
        .await
        .unwrap();
    locks
        .hold(SHOW, T0, "alice", "h2", &seats(&["A2", "A3"]), TTL)
        .await
        .unwrap();
    locks.hold(SHOW, T0, "bob", "h3", &seats(&["A3"]), TTL).await.unwrap(); // conflict: no delta
    locks
        .extend_for_order(SHOW, T0, "alice", "h2", "o1", 600_000)
        .await
        .unwrap(); // no status change
    locks.book(SHOW, T0, "o1", "h2", &seats(&["A2", "A3"])).await.unwrap();
    locks.hold(SHOW, T0, "bob", "h4", &seats(&["B1"]), 1).await.unwrap();
    locks.expire(SHOW, T0 + 1).await.unwrap();
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

async fn a_hold_that_lost_a_seat_to_a_late_booking_cannot_become_an_order(locks: Arc<dyn SeatLocks>) {
    // alice's order lock is forgotten (freed after grace), bob holds the seat,
    // then alice's stale payment books it anyway: the record decides.
    locks.hold(SHOW, T0, "alice", "h1", &seats(&["A1"]), TTL).await.unwrap();
    locks
        .extend_for_order(SHOW, T0, "alice", "h1", "o1", 1000)
        .await
        .unwrap();
    let later = T0 + 1000 + common::TIMES.order_grace_ms;
    locks
        .hold(SHOW, later, "bob", "h2", &seats(&["A1", "A2"]), TTL)
        .await
        .unwrap();
    locks.book(SHOW, later, "o1", "h1", &seats(&["A1"])).await.unwrap();
    let r = locks
        .extend_for_order(SHOW, later + 1, "bob", "h2", "o2", 600_000)
        .await
        .unwrap();
    assert_eq!(r.out, ExtendOutcome::NotActive("RELEASED".into()));
    let snap = locks.snapshot(SHOW, later + 2).await.unwrap().out;
    assert_eq!(snap.taken.len(), 1, "bob's other seat is given back");
    assert_eq!(snap.taken["A1"], Owner::Booked("o1".into()));
}

async fn shows_are_independent(locks: Arc<dyn SeatLocks>) {
    locks
        .hold("show-a", T0, "alice", "h1", &seats(&["A1"]), TTL)
        .await
        .unwrap();
    let r = locks
        .hold("show-b", T0, "bob", "h2", &seats(&["A1"]), TTL)
        .await
        .unwrap();
    assert_eq!(
        r.out,
        HoldOutcome::Held {
            version: 1,
            replaced: None
        }
    );
}

macro_rules! seat_lock_cases {
    ($($case:ident),* $(,)?) => {
        mod memory_seat_locks {
            $( #[tokio::test] async fn $case() { super::$case(super::common::memory_locks()).await } )*
        }
        mod redis_seat_locks {
            $( #[tokio::test] async fn $case() {
                super::$case(super::common::redis_locks(&super::common::unique_prefix()).await).await
            } )*
        }
        /// The same scripts on a three-master Redis Cluster: every key of a
        /// show in one slot, deltas over sharded pub/sub.
        mod redis_cluster_seat_locks {
            $( #[tokio::test] async fn $case() {
                super::$case(super::common::cluster_locks(&super::common::unique_prefix()).await).await
            } )*
        }
    };
}

seat_lock_cases!(
    a_hold_is_all_or_nothing,
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

// ---- records --------------------------------------------------------------

fn order(user: &str, hold: &str, seat_ids: &[&str], created: chrono::DateTime<Utc>) -> Order {
    let created = showgate::records::micros(created);
    Order {
        id: Uuid::new_v4(),
        user_id: user.into(),
        show_id: SHOW.into(),
        hold_id: hold.into(),
        seat_ids: seats(seat_ids),
        amount_minor: 25_000 * seat_ids.len() as i64,
        currency: "INR".into(),
        status: OrderStatus::PaymentPending,
        created_at: created,
        expires_at: created + TimeDelta::minutes(10),
        updated_at: created,
        ticket_code: None,
        payment_reference: None,
        failure_reason: None,
        lock_synced: true,
    }
}

async fn one_order_per_hold(records: Arc<dyn Records>) {
    let o = order("alice", "h1", &["A1"], Utc::now());
    let (stored, created) = records.create_order(&o).await.unwrap();
    assert!(created);
    assert_eq!(stored, o);
    let mut again = order("alice", "h1", &["A1"], Utc::now());
    again.id = Uuid::new_v4();
    let (stored, created) = records.create_order(&again).await.unwrap();
    assert!(!created);
    assert_eq!(stored.id, o.id);
    assert_eq!(records.order_by_hold("h1").await.unwrap().unwrap().id, o.id);
}

async fn payment_books_seats_and_a_second_sale_is_refused(records: Arc<dyn Records>) {
    let now = Utc::now();
    let a = order("alice", "h1", &["A1", "A2"], now);
    let b = order("bob", "h2", &["A2", "A3"], now);
    records.create_order(&a).await.unwrap();
    records.create_order(&b).await.unwrap();
    let Applied::Changed {
        order: confirmed,
        effect,
    } = records
        .apply(a.id, OrderEvent::PaymentSucceeded, now, Some("pay-1"))
        .await
        .unwrap()
    else {
        panic!("confirm must change the order")
    };
    assert_eq!((confirmed.status, effect), (OrderStatus::Confirmed, SeatEffect::Book));
    assert!(confirmed.ticket_code.as_deref().is_some_and(|c| c.starts_with("SG-")));
    assert!(!confirmed.lock_synced);
    match records
        .apply(b.id, OrderEvent::PaymentSucceeded, now, None)
        .await
        .unwrap()
    {
        Applied::SeatsTaken { order, conflicts } => {
            assert_eq!(conflicts, seats(&["A2"]));
            assert_eq!(order.status, OrderStatus::Failed);
        }
        other => panic!("a second sale of A2 must be refused, got {other:?}"),
    }
    let mut booked = records.booked_seats(SHOW).await.unwrap();
    booked.sort();
    assert_eq!(booked, vec![("A1".into(), a.id), ("A2".into(), a.id)]);
    // Repeating the confirmation answers the same order.
    assert!(matches!(
        records.apply(a.id, OrderEvent::PaymentSucceeded, now, None).await.unwrap(),
        Applied::Unchanged(o) if o.ticket_code == confirmed.ticket_code
    ));
}

async fn cancelling_a_confirmed_order_unbooks_its_seats(records: Arc<dyn Records>) {
    let now = Utc::now();
    let a = order("alice", "h1", &["A1"], now);
    records.create_order(&a).await.unwrap();
    records
        .apply(a.id, OrderEvent::PaymentSucceeded, now, None)
        .await
        .unwrap();
    let Applied::Changed { order, effect } = records.apply(a.id, OrderEvent::Cancel, now, None).await.unwrap() else {
        panic!("cancel must change the order")
    };
    assert_eq!((order.status, effect), (OrderStatus::Cancelled, SeatEffect::Free));
    assert!(records.booked_seats(SHOW).await.unwrap().is_empty());
    assert!(matches!(
        records
            .apply(a.id, OrderEvent::PaymentSucceeded, now, None)
            .await
            .unwrap(),
        Applied::Refused(_, Refusal::InvalidState)
    ));
}

async fn pending_orders_expire_and_refuse_payment(records: Arc<dyn Records>) {
    let then = Utc::now() - TimeDelta::minutes(11);
    let a = order("alice", "h1", &["A1"], then);
    records.create_order(&a).await.unwrap();
    let now = Utc::now();
    assert_eq!(records.due_orders(now, 10).await.unwrap(), vec![a.id]);
    assert!(matches!(
        records
            .apply(a.id, OrderEvent::PaymentSucceeded, now, None)
            .await
            .unwrap(),
        Applied::Refused(_, Refusal::Expired)
    ));
    let Applied::Changed { order, .. } = records.apply(a.id, OrderEvent::Expire, now, None).await.unwrap() else {
        panic!("expiry must change the order")
    };
    assert_eq!(order.status, OrderStatus::Expired);
    assert!(records.due_orders(now, 10).await.unwrap().is_empty());
    let unsynced = records.unsynced_orders(now + TimeDelta::seconds(1), 10).await.unwrap();
    assert_eq!(unsynced.iter().map(|o| o.id).collect::<Vec<_>>(), vec![a.id]);
    records.mark_lock_synced(a.id, order.updated_at).await.unwrap();
    assert!(
        records
            .unsynced_orders(now + TimeDelta::seconds(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn history_pages_newest_first(records: Arc<dyn Records>) {
    let base = Utc::now();
    let mut ids = Vec::new();
    for i in 0..5 {
        let o = order("alice", &format!("h{i}"), &["A1"], base + TimeDelta::seconds(i));
        records.create_order(&o).await.unwrap();
        ids.push(o.id);
    }
    records.create_order(&order("bob", "hb", &["B1"], base)).await.unwrap();
    let page1 = records.orders_of_user("alice", 2, None).await.unwrap();
    assert_eq!(page1.iter().map(|o| o.id).collect::<Vec<_>>(), vec![ids[4], ids[3]]);
    let last = page1.last().unwrap();
    let cursor = Cursor {
        created_at: last.created_at,
        id: last.id,
    };
    let page2 = records.orders_of_user("alice", 10, Some(cursor)).await.unwrap();
    assert_eq!(
        page2.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![ids[2], ids[1], ids[0]]
    );
}

async fn the_first_idempotent_response_wins(records: Arc<dyn Records>) {
    let first = StoredResponse {
        request_hash: "h1".into(),
        status: 201,
        body: serde_json::json!({"n": 1}),
    };
    let second = StoredResponse {
        request_hash: "h2".into(),
        status: 200,
        body: serde_json::json!({"n": 2}),
    };
    assert_eq!(
        records.store_idempotent_response("alice", "k", &first).await.unwrap(),
        first
    );
    assert_eq!(
        records.store_idempotent_response("alice", "k", &second).await.unwrap(),
        first
    );
    assert_eq!(records.idempotent_response("alice", "k").await.unwrap(), Some(first));
    assert_eq!(records.idempotent_response("bob", "k").await.unwrap(), None);
}

async fn the_catalog_round_trips(records: Arc<dyn Records>) {
    assert!(records.load_catalog().await.unwrap().is_none());
    let demo = showgate::domain::catalog::demo(chrono::NaiveDate::from_ymd_opt(2026, 11, 25).unwrap());
    records.save_catalog(&demo).await.unwrap();
    records.save_catalog(&demo).await.unwrap();
    let loaded = records.load_catalog().await.unwrap().unwrap();
    let catalog = showgate::domain::catalog::Catalog::new(loaded.clone()).unwrap();
    assert_eq!(loaded.shows.len(), demo.shows.len());
    for s in &demo.shows {
        assert_eq!(catalog.show(&s.id), Some(s));
    }
    assert_eq!(catalog.movie("dune-3"), demo.movies.iter().find(|m| m.id == "dune-3"));
}

struct FailingSink;

#[async_trait::async_trait]
impl showgate::events::EventSink for FailingSink {
    async fn append(&self, _: &[showgate::events::OutboxEvent]) -> showgate::error::Result<()> {
        Err(showgate::error::Error::Unavailable("the stream is down".into()))
    }
}

async fn outbox_events_are_relayed_once_in_order_and_kept_when_the_sink_fails(records: Arc<dyn Records>) {
    let now = Utc::now();
    let a = order("alice", "h1", &["A1"], now);
    records.create_order(&a).await.unwrap();
    records
        .apply(a.id, OrderEvent::PaymentSucceeded, now, None)
        .await
        .unwrap();
    assert!(records.relay_outbox(10, &FailingSink).await.is_err());
    let sink = showgate::events::MemoryStream::default();
    assert_eq!(records.relay_outbox(1, &sink).await.unwrap(), 1);
    assert_eq!(records.relay_outbox(10, &sink).await.unwrap(), 1);
    assert_eq!(
        records.relay_outbox(10, &sink).await.unwrap(),
        0,
        "nothing is relayed twice"
    );
    let events = sink.events();
    let topics: Vec<&str> = events.iter().map(|e| e.topic.as_str()).collect();
    assert_eq!(topics, vec!["order.created", "booking.confirmed"]);
    assert!(events[0].id < events[1].id);
    assert_eq!(events[1].payload["orderId"], serde_json::json!(a.id));
    assert_eq!(events[1].payload["status"], "CONFIRMED");
}

macro_rules! record_cases {
    ($($case:ident),* $(,)?) => {
        mod memory_records {
            $( #[tokio::test] async fn $case() { super::$case(super::common::memory_records()).await } )*
        }
        mod postgres_records {
            $( #[tokio::test] async fn $case() { super::$case(super::common::pg_records().await).await } )*
        }
    };
}

record_cases!(
    one_order_per_hold,
    payment_books_seats_and_a_second_sale_is_refused,
    cancelling_a_confirmed_order_unbooks_its_seats,
    pending_orders_expire_and_refuse_payment,
    history_pages_newest_first,
    the_first_idempotent_response_wins,
    the_catalog_round_trips,
    outbox_events_are_relayed_once_in_order_and_kept_when_the_sink_fails,
);

// ---- differential: random histories, both engines, identical answers -------

/// Runs the same random history of holds, releases, orders, bookings, order
/// releases, expiry passes and clock jumps against the memory engine and the
/// Redis scripts, and requires identical answers and state at every step.
async fn same_history_same_answers(redis: Arc<dyn SeatLocks>, seed: u64) {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    let memory = common::memory_locks();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut now = T0;
    let mut holds: Vec<(String, String)> = Vec::new(); // (user, hold)
    let mut orders: Vec<(String, String, Vec<String>)> = Vec::new(); // (order, hold, seats)
    for step in 0..60 {
        let user = format!("u{}", rng.random_range(0..4));
        let what = rng.random_range(0..8);
        let label = format!("seed {seed} step {step} action {what}");
        match what {
            0..=2 => {
                let n = rng.random_range(1..=3);
                let mut pick: Vec<String> = (0..n).map(|_| format!("A{}", rng.random_range(1..=6))).collect();
                pick.sort();
                pick.dedup();
                let id = format!("h{step}");
                let ttl = rng.random_range(1_000..400_000);
                let a = memory.hold(SHOW, now, &user, &id, &pick, ttl).await.unwrap();
                let b = redis.hold(SHOW, now, &user, &id, &pick, ttl).await.unwrap();
                match (&a.out, &b.out) {
                    (
                        HoldOutcome::Conflict {
                            conflicts: c1,
                            taken: t1,
                        },
                        HoldOutcome::Conflict {
                            conflicts: c2,
                            taken: t2,
                        },
                    ) => {
                        let (mut t1, mut t2) = (t1.clone(), t2.clone());
                        t1.sort();
                        t2.sort();
                        assert_eq!(
                            (c1, t1, a.version, a.expired),
                            (c2, t2, b.version, b.expired),
                            "{label}"
                        );
                    }
                    _ => assert_eq!(a, b, "{label}"),
                }
                if matches!(a.out, HoldOutcome::Held { .. }) {
                    holds.push((user, id));
                }
            }
            3 if !holds.is_empty() => {
                let (u, h) = holds[rng.random_range(0..holds.len())].clone();
                let a = memory.release(SHOW, now, &u, &h).await.unwrap();
                let b = redis.release(SHOW, now, &u, &h).await.unwrap();
                assert_eq!(a, b, "{label}");
            }
            4 if !holds.is_empty() => {
                let (u, h) = holds[rng.random_range(0..holds.len())].clone();
                let o = format!("o{step}");
                let ttl = rng.random_range(1_000..700_000);
                let a = memory.extend_for_order(SHOW, now, &u, &h, &o, ttl).await.unwrap();
                let b = redis.extend_for_order(SHOW, now, &u, &h, &o, ttl).await.unwrap();
                assert_eq!(a, b, "{label}");
                if matches!(a.out, ExtendOutcome::Attached(_)) {
                    let rec = memory.hold_record(SHOW, &h).await.unwrap().unwrap();
                    orders.push((o, h, rec.seats));
                }
            }
            5 if !orders.is_empty() => {
                let (o, h, s) = orders[rng.random_range(0..orders.len())].clone();
                let a = memory.book(SHOW, now, &o, &h, &s).await.unwrap();
                let b = redis.book(SHOW, now, &o, &h, &s).await.unwrap();
                assert_eq!(a, b, "{label}");
            }
            6 if !orders.is_empty() => {
                let (o, h, s) = orders.remove(rng.random_range(0..orders.len()));
                let a = memory.release_order(SHOW, now, &o, &h, &s).await.unwrap();
                let b = redis.release_order(SHOW, now, &o, &h, &s).await.unwrap();
                assert_eq!(a, b, "{label}");
            }
            _ => {
                now += rng.random_range(0..200_000);
                let a = memory.expire(SHOW, now).await.unwrap();
                let b = redis.expire(SHOW, now).await.unwrap();
                assert_eq!(a, b, "{label}");
            }
        }
        let a = memory.snapshot(SHOW, now).await.unwrap();
        let b = redis.snapshot(SHOW, now).await.unwrap();
        assert_eq!(a, b, "{label}: snapshots");
        for (_, h) in &holds {
            assert_eq!(
                memory.hold_record(SHOW, h).await.unwrap(),
                redis.hold_record(SHOW, h).await.unwrap(),
                "{label}: {h}"
            );
        }
    }
}

#[tokio::test]
async fn random_histories_give_identical_answers_on_memory_and_redis() {
    for seed in 0..40 {
        same_history_same_answers(common::redis_locks(&common::unique_prefix()).await, seed).await;
    }
}

#[tokio::test]
async fn random_histories_give_identical_answers_on_memory_and_redis_cluster() {
    for seed in 100..120 {
        same_history_same_answers(common::cluster_locks(&common::unique_prefix()).await, seed).await;
    }
}

// ---- waiting rooms ------------------------------------------------------------

use showgate::domain::waitroom::{PreQueue, RoomConfig};
use showgate::waitroom::{RoomEvent, Stand, Standing, StoredRoom, TickParams, WaitingRooms};

type Rooms = (Arc<dyn SeatLocks>, Arc<dyn WaitingRooms>);

fn room() -> StoredRoom {
    StoredRoom {
        config: RoomConfig {
            admit_rate_per_second: 10.0,
            burst: 10,
            max_active: 3,
            admission_ttl_seconds: 600,
            opens_at: None,
            pre_queue: PreQueue::Fifo,
            paused: false,
        },
        seed: "seed".into(),
        sold_out: false,
        observed_rate: 0.0,
    }
}

fn tick(now: i64, max: u64) -> TickParams {
    TickParams {
        now,
        max,
        ttl_ms: 60_000,
        sellable: 100,
        max_active: 3,
        paused: false,
        observed_rate: 1.0,
    }
}

fn position(s: &Stand) -> u64 {
    match s.standing {
        Standing::Queued { position, .. } => position,
        ref other => panic!("not queued: {other:?}"),
    }
}

async fn joining_twice_keeps_the_place(r: Rooms) {
    let (_, rooms) = r;
    rooms.save(SHOW, &room()).await.unwrap();
    assert_eq!(position(&rooms.join(SHOW, "a", T0, false, true, T0).await.unwrap()), 1);
    assert_eq!(position(&rooms.join(SHOW, "b", T0, false, true, T0).await.unwrap()), 2);
    assert_eq!(position(&rooms.join(SHOW, "a", T0, false, true, T0).await.unwrap()), 1);
    let none = rooms.join(SHOW, "c", T0, false, false, T0).await.unwrap();
    assert_eq!(none.standing, Standing::None);
    let c = rooms.counters(SHOW, T0).await.unwrap();
    assert_eq!((c.queue_length, c.joined_total), (2, 2));
    assert_eq!(rooms.load(SHOW).await.unwrap().unwrap().config, room().config);
    assert_eq!(rooms.all().await.unwrap().len(), 1);
}

async fn admission_takes_the_head_within_max_active_and_only_for_the_lease_holder(r: Rooms) {
    let (_, rooms) = r;
    rooms.save(SHOW, &room()).await.unwrap();
    let mut events = rooms.subscribe(SHOW).await.unwrap();
    for u in ["a", "b", "c", "d", "e"] {
        rooms.join(SHOW, u, T0, false, true, T0).await.unwrap();
    }
    let token = rooms
        .lease(SHOW, "node-1", 60_000)
        .await
        .unwrap()
        .expect("a free lease");
    assert_eq!(
        rooms.lease(SHOW, "node-2", 60_000).await.unwrap(),
        None,
        "one leader at a time"
    );
    assert_eq!(
        rooms.lease(SHOW, "node-1", 60_000).await.unwrap().as_deref(),
        Some(token.as_str()),
        "renewal keeps the token"
    );
    assert_eq!(
        rooms.admit(SHOW, "node-2/999", tick(T0, 2)).await.unwrap(),
        None,
        "a stale token admits nobody"
    );
    let t = rooms.admit(SHOW, &token, tick(T0, 2)).await.unwrap().unwrap();
    assert_eq!(
        (t.admitted.clone(), t.queue_length, t.active),
        (vec!["a".to_owned(), "b".to_owned()], 3, 2)
    );
    let t = rooms.admit(SHOW, &token, tick(T0, 5)).await.unwrap().unwrap();
    assert_eq!(t.admitted, vec!["c".to_owned()], "never past maxActive");
    assert_eq!(
        rooms.join(SHOW, "a", T0, false, true, T0).await.unwrap().standing,
        Standing::Admitted {
            expires_ms: T0 + 60_000
        }
    );
    rooms.end_active(SHOW, "a").await.unwrap();
    let t = rooms.admit(SHOW, &token, tick(T0, 5)).await.unwrap().unwrap();
    assert_eq!(t.admitted, vec!["d".to_owned()], "a used admission frees a place");
    // Admissions expire and free their places too.
    let t = rooms.admit(SHOW, &token, tick(T0 + 60_000, 5)).await.unwrap().unwrap();
    assert_eq!((t.admitted.clone(), t.active), (vec!["e".to_owned()], 1));
    let mut seen = Vec::new();
    for _ in 0..4 {
        match tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap()
            .unwrap()
        {
            RoomEvent::Tick { seq, admitted, .. } => seen.push((seq, admitted.len())),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        seen,
        vec![(1, 2), (2, 1), (3, 1), (4, 1)],
        "one event per tick; the stale one published nothing"
    );
}

async fn paused_rooms_and_rooms_with_nothing_to_sell_admit_nobody(r: Rooms) {
    let (locks, rooms) = r;
    rooms.save(SHOW, &room()).await.unwrap();
    rooms.join(SHOW, "a", T0, false, true, T0).await.unwrap();
    let token = rooms.lease(SHOW, "n", 60_000).await.unwrap().unwrap();
    let paused = TickParams {
        paused: true,
        ..tick(T0, 5)
    };
    assert!(
        rooms
            .admit(SHOW, &token, paused)
            .await
            .unwrap()
            .unwrap()
            .admitted
            .is_empty()
    );
    // Two sellable seats, both held: nothing to sell, not sold out.
    locks
        .hold(SHOW, T0, "x", "h1", &seats(&["A1", "A2"]), TTL)
        .await
        .unwrap();
    let full = TickParams {
        sellable: 2,
        ..tick(T0, 5)
    };
    let t = rooms.admit(SHOW, &token, full).await.unwrap().unwrap();
    assert!(t.admitted.is_empty() && !t.sold_out && t.available == 0);
    // Booked for good: sold out.
    locks
        .extend_for_order(SHOW, T0, "x", "h1", "o1", 600_000)
        .await
        .unwrap();
    locks.book(SHOW, T0, "o1", "h1", &seats(&["A1", "A2"])).await.unwrap();
    let t = rooms.admit(SHOW, &token, full).await.unwrap().unwrap();
    assert!(t.sold_out && t.admitted.is_empty());
    assert!(rooms.load(SHOW).await.unwrap().unwrap().sold_out);
}

async fn leaving_and_abandonment_publish_the_scores_that_left(r: Rooms) {
    let (_, rooms) = r;
    rooms.save(SHOW, &room()).await.unwrap();
    let mut events = rooms.subscribe(SHOW).await.unwrap();
    let sa = rooms.join(SHOW, "a", T0, false, true, T0).await.unwrap();
    rooms.join(SHOW, "b", T0, false, true, T0 + 10_000).await.unwrap();
    rooms.join(SHOW, "c", T0, false, true, T0).await.unwrap();
    let Standing::Queued { score: score_a, .. } = sa.standing else {
        panic!()
    };
    assert_eq!(rooms.leave(SHOW, &["a".to_owned()], "left").await.unwrap(), 1);
    assert_eq!(rooms.leave(SHOW, &["a".to_owned()], "left").await.unwrap(), 0);
    // c was last seen at T0, b is seen until T0 + 10 s.
    assert_eq!(rooms.abandon(SHOW, T0 + 5_000, 100).await.unwrap(), 1);
    let (seq, length, ranks) = rooms.ranks(SHOW, &["b".to_owned(), "c".to_owned()]).await.unwrap();
    assert_eq!((seq, length), (2, 1));
    assert_eq!(ranks[0].map(|r| r.1), Some(0));
    assert_eq!(ranks[1], None);
    let first = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first,
        RoomEvent::Left {
            seq: 1,
            scores: vec![score_a],
            queue_length: 2
        }
    );
    let second = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        second,
        RoomEvent::Left {
            seq: 2,
            queue_length: 1,
            ..
        }
    ));
    assert_eq!(rooms.counters(SHOW, T0).await.unwrap().abandoned_total, 1);
    // Touching a shopper keeps them.
    rooms.touch(SHOW, &["b".to_owned()], T0 + 100_000).await.unwrap();
    assert_eq!(rooms.abandon(SHOW, T0 + 50_000, 100).await.unwrap(), 0);
}

async fn the_pre_queue_opens_ahead_of_later_arrivals(r: Rooms) {
    let (_, rooms) = r;
    rooms.save(SHOW, &room()).await.unwrap();
    for u in ["p1", "p2", "p3"] {
        let s = rooms.join(SHOW, u, T0, true, true, T0).await.unwrap();
        assert!(matches!(s.standing, Standing::PreQueued { .. }));
    }
    let mut pre = rooms.pre_queued(SHOW).await.unwrap();
    pre.sort();
    assert_eq!(pre, vec!["p1", "p2", "p3"]);
    // An arrival while the opening is under way queues behind it.
    assert_eq!(
        position(&rooms.join(SHOW, "late", T0, false, true, T0).await.unwrap()),
        1
    );
    assert_eq!(
        rooms
            .open(SHOW, -3.0, &["p2".to_owned(), "p3".to_owned(), "p1".to_owned()])
            .await
            .unwrap(),
        3
    );
    let ranks = rooms
        .ranks(
            SHOW,
            &["p2".to_owned(), "p3".to_owned(), "p1".to_owned(), "late".to_owned()],
        )
        .await
        .unwrap()
        .2;
    assert_eq!(ranks.iter().map(|r| r.unwrap().1).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    assert!(rooms.pre_queued(SHOW).await.unwrap().is_empty());
    rooms.remove(SHOW).await.unwrap();
    assert!(rooms.load(SHOW).await.unwrap().is_none());
}

macro_rules! room_cases {
    ($($case:ident),* $(,)?) => {
        mod memory_rooms {
            $( #[tokio::test] async fn $case() { super::$case(super::common::memory_rooms()).await } )*
        }
        mod redis_rooms {
            $( #[tokio::test] async fn $case() {
                super::$case(super::common::redis_rooms(&super::common::unique_prefix()).await).await
            } )*
        }
    };
}

room_cases!(
    joining_twice_keeps_the_place,
    admission_takes_the_head_within_max_active_and_only_for_the_lease_holder,
    paused_rooms_and_rooms_with_nothing_to_sell_admit_nobody,
    leaving_and_abandonment_publish_the_scores_that_left,
    the_pre_queue_opens_ahead_of_later_arrivals,
);
