//! The state machine on its own: each step's answer and delta.

use super::*;
use proptest::prelude::*;

const T: LockTimes = LockTimes {
    retention_ms: 3_600_000,
    order_grace_ms: 60_000,
    budget: None,
};
const TTL: i64 = 300_000;

/// A hold's version and the hold it replaced.
fn held(out: &HoldOutcome) -> (u64, Option<String>) {
    match out {
        HoldOutcome::Held { version, record } => (*version, record.replaced.clone()),
        other => panic!("not held: {other:?}"),
    }
}

fn at(now: i64) -> At<'static> {
    At {
        show: "s",
        now,
        times: T,
    }
}

fn seats(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A show whose state has been built (empty) under epoch "e1".
fn built() -> ShowSeats {
    let mut s = ShowSeats::default();
    assert!(s.rebuild(at(0), "", "e1", &RecordState::default()).0);
    s
}

#[test]
fn a_hold_locks_every_seat_and_bumps_the_version_once() {
    let mut s = ShowSeats::default();
    let (out, fx) = s.hold(at(0), "u1", "h1", &seats(&["A1", "A2"]), TTL);
    assert_eq!(held(&out), (1, None));
    let delta = fx.delta.unwrap();
    assert_eq!(delta.version, 1);
    assert_eq!(delta.changes.len(), 2);
    assert!(delta.changes.iter().all(|c| c.status == SeatStatus::Held));
}

#[test]
fn a_conflict_changes_nothing_and_names_the_conflicting_seats() {
    let mut s = ShowSeats::default();
    s.hold(at(0), "u1", "h1", &seats(&["A1"]), TTL);
    let (out, fx) = s.hold(at(1), "u2", "h2", &seats(&["A1", "A2"]), TTL);
    assert_eq!(
        out,
        HoldOutcome::Conflict {
            conflicts: seats(&["A1"])
        }
    );
    assert!(fx.delta.is_none());
    assert!(!s.owners().contains_key("A2"));
}

#[test]
fn a_new_hold_replaces_the_users_previous_one_atomically() {
    let mut s = ShowSeats::default();
    s.hold(at(0), "u1", "h1", &seats(&["A1", "A2"]), TTL);
    let (out, fx) = s.hold(at(1), "u1", "h2", &seats(&["A2", "A3"]), TTL);
    assert_eq!(held(&out), (2, Some("h1".to_owned())));
    let delta = fx.delta.unwrap();
    assert_eq!(
        delta.changes,
        vec![
            SeatChange {
                seat_id: "A3".into(),
                status: SeatStatus::Held
            },
            SeatChange {
                seat_id: "A1".into(),
                status: SeatStatus::Available
            },
        ]
    );
    assert_eq!(s.hold_record("h1").unwrap().status, HoldStatus::Released);
    assert_eq!(s.owners()["A2"], Owner::Hold("h2".into()));
}

#[test]
fn expiry_frees_seats_at_the_deadline_and_keeps_the_record_for_the_retention() {
    let mut s = ShowSeats::default();
    s.hold(at(0), "u1", "h1", &seats(&["A1"]), TTL);
    assert_eq!(s.hold_record("h1").unwrap().status_at(TTL - 1), HoldStatus::Held);
    assert_eq!(s.hold_record("h1").unwrap().status_at(TTL), HoldStatus::Expired);
    let (snap, fx) = s.snapshot(at(TTL));
    assert!(snap.taken.is_empty());
    assert_eq!(fx.expired_holds, 1);
    assert_eq!(snap.version, 2);
    assert_eq!(s.hold_record("h1").unwrap().status, HoldStatus::Expired);
    let (swept, fx) = s.expire(at(TTL + T.retention_ms - 1));
    assert!(fx.delta.is_none());
    assert_eq!(
        swept.next_due,
        Some(TTL + T.retention_ms),
        "its generation retires then"
    );
    assert_eq!(swept.tombstones, 1);
    let (swept, _) = s.expire(at(TTL + T.retention_ms));
    assert_eq!(
        s.hold_record("h1").unwrap().status,
        HoldStatus::Expired,
        "retired, still read"
    );
    assert_eq!(swept.next_due, Some(TTL + 2 * T.retention_ms));
    let (swept, _) = s.expire(at(TTL + 2 * T.retention_ms));
    assert!(s.hold_record("h1").is_none());
    assert_eq!((swept.next_due, swept.tombstones), (None, 0), "nothing left to do");
}

#[test]
fn an_ordered_hold_keeps_its_seats_past_the_hold_ttl_and_is_not_the_active_hold() {
    let mut s = ShowSeats::default();
    s.hold(at(0), "u1", "h1", &seats(&["A1"]), TTL);
    let (out, _) = s.extend_for_order(at(10), "u1", "h1", "o1", 600_000);
    assert_eq!(
        out,
        ExtendOutcome::Attached(OrderLock {
            order_id: "o1".into(),
            created_ms: 10,
            expires_ms: 600_010
        })
    );
    let (snap, _) = s.snapshot(at(TTL + 1));
    assert_eq!(snap.taken["A1"], Owner::Order("o1".into()));
    // A new hold by the same user leaves the order's seats alone.
    let (out, _) = s.hold(at(TTL + 2), "u1", "h2", &seats(&["A1"]), TTL);
    assert!(matches!(out, HoldOutcome::Conflict { .. }));
    let (out, _) = s.extend_for_order(at(20), "u1", "h1", "o2", 600_000);
    assert!(matches!(out, ExtendOutcome::Existing(l) if l.order_id == "o1"));
    assert_eq!(
        s.release(at(30), "u1", "h1").0,
        ReleaseOutcome::NotActive("ORDERED".into())
    );
}

#[test]
fn booking_and_releasing_an_order_publish_one_change_each() {
    let mut s = ShowSeats::default();
    s.hold(at(0), "u1", "h1", &seats(&["A1", "A2"]), TTL);
    s.extend_for_order(at(1), "u1", "h1", "o1", 600_000);
    let (applied, fx) = s.book(at(2), "o1", "h1", 2, &seats(&["A1", "A2"]));
    assert!(applied);
    let delta = fx.delta.unwrap();
    assert_eq!(delta.version, 2);
    assert!(delta.changes.iter().all(|c| c.status == SeatStatus::Booked));
    // Far past the order's expiry a booked seat stays booked.
    let (snap, _) = s.snapshot(at(10_000_000));
    assert_eq!(snap.taken.len(), 2);
    let (applied, fx) = s.release_order(at(10_000_001), "o1", "h1", 3, &seats(&["A1", "A2"]));
    assert!(applied);
    let delta = fx.delta.unwrap();
    assert_eq!((delta.version, delta.changes.len()), (3, 2));
}

#[test]
fn a_late_or_repeated_order_change_changes_nothing() {
    let mut s = built();
    s.hold(at(0), "u1", "h1", &seats(&["A1"]), TTL);
    s.extend_for_order(at(1), "u1", "h1", "o1", 600_000);
    // Cancelled (stamp 20) before the payment's book (stamp 10) arrives.
    assert!(s.release_order(at(2), "o1", "h1", 20, &seats(&["A1"])).0);
    let (applied, fx) = s.book(at(3), "o1", "h1", 10, &seats(&["A1"]));
    assert!(!applied && fx.delta.is_none());
    assert!(s.owners().is_empty(), "a cancelled order's seat is never left booked");
    // The same change twice: the second is a no-op.
    assert!(!s.release_order(at(4), "o1", "h1", 20, &seats(&["A1"])).0);
}

#[test]
fn a_retried_hold_answers_the_first_run_and_keeps_the_seats() {
    let mut s = built();
    s.hold(at(0), "u1", "h0", &seats(&["A9"]), TTL);
    let first = s.hold(at(1), "u1", "h1", &seats(&["A1"]), TTL).0;
    let again = s.hold(at(2), "u1", "h1", &seats(&["A1"]), TTL);
    assert_eq!(held(&first), (2, Some("h0".to_owned())));
    assert_eq!(held(&again.0), (2, Some("h0".to_owned())));
    assert_eq!(first, again.0, "a retry answers the hold as the first run stored it");
    assert!(again.1.delta.is_none());
    assert_eq!(s.owners().get("A1"), Some(&Owner::Hold("h1".into())));
}

#[test]
fn a_rebuild_puts_the_record_back_over_holds_and_starts_an_epoch() {
    let mut s = ShowSeats::default();
    assert!(!s.has_state());
    assert!(s.rebuild(at(0), "", "e1", &RecordState::default()).0);
    s.hold(at(1), "u1", "h1", &seats(&["A1", "A2"]), TTL);
    s.hold(at(1), "u2", "h2", &seats(&["B1"]), TTL);
    s.book(at(2), "gone", "hx", 5, &seats(&["C1"]));
    let record = RecordState {
        booked: vec![("A1".into(), "o1".into(), 7)],
        pending: vec![PendingLock {
            order_id: "o2".into(),
            hold_id: "h9".into(),
            user: "u9".into(),
            seats: vec!["D1".into()],
            created_ms: 1,
            expires_ms: 1_000,
            stamp: 8,
        }],
        ended: vec![],
        // Read after "gone" was booked (stamp 5): its booking is stale.
        as_of: 6,
    };
    // Only the epoch the caller saw may be rebuilt.
    assert!(!s.rebuild(at(3), "stale", "e2", &record).0);
    let (rebuilt, fx) = s.rebuild(at(3), "e1", "e2", &record);
    assert!(rebuilt);
    assert_eq!(s.epoch(), "e2");
    let owners = s.owners();
    assert_eq!(owners.get("A1"), Some(&Owner::Booked("o1".into())));
    assert_eq!(owners.get("A2"), None, "the hold on A1 was released whole");
    assert_eq!(owners.get("B1"), Some(&Owner::Hold("h2".into())), "other holds stay");
    assert_eq!(owners.get("C1"), None, "a booking the record does not know is freed");
    assert_eq!(owners.get("D1"), Some(&Owner::Order("o2".into())));
    assert_eq!(s.hold_record("h9").unwrap().order_id.as_deref(), Some("o2"));
    let delta = fx.delta.unwrap();
    assert_eq!(delta.epoch, "e2");
    // A stale message about o1 changes nothing; the pending order's lock
    // is freed by the sweep after its expiry plus grace.
    assert!(!s.release_order(at(4), "o1", "", 7, &seats(&["A1"])).0);
    assert_eq!(s.snapshot(at(1_000 + T.order_grace_ms)).0.taken.get("D1"), None);
}

#[test]
fn a_booking_a_lagging_replica_kept_is_freed_when_the_record_has_its_order_ended_since() {
    // o1 was booked (stamp 10) and cancelled (stamp 20); the state rebuilt
    // from a replica that lost the release still books it. The record was
    // read with a margin (as_of 5), so the booking looks newer than the
    // read: only the record's own word on o1 frees it.
    let mut s = ShowSeats::default();
    assert!(s.rebuild(at(0), "", "e1", &RecordState::default()).0);
    s.book(at(1), "o1", "h1", 10, &seats(&["A1"]));
    s.book(at(1), "o2", "h2", 10, &seats(&["A2"]));
    let record = RecordState {
        ended: vec![("o1".into(), 20)],
        as_of: 5,
        ..RecordState::default()
    };
    assert!(s.rebuild(at(2), "e1", "e2", &record).0);
    let owners = s.owners();
    assert_eq!(owners.get("A1"), None, "ended since: freed");
    assert_eq!(
        owners.get("A2"),
        Some(&Owner::Booked("o2".into())),
        "booked after the read: kept"
    );
    // An ended state older than the lock's (a newer booking of the order) does not free it.
    let mut s = ShowSeats::default();
    assert!(s.rebuild(at(0), "", "e1", &RecordState::default()).0);
    s.book(at(1), "o3", "h3", 30, &seats(&["B1"]));
    let record = RecordState {
        ended: vec![("o3".into(), 20)],
        as_of: 5,
        ..RecordState::default()
    };
    assert!(s.rebuild(at(2), "e1", "e2", &record).0);
    assert_eq!(s.owners().get("B1"), Some(&Owner::Booked("o3".into())));
}

#[test]
fn an_order_lock_the_store_forgot_is_freed_after_grace() {
    let mut s = ShowSeats::default();
    s.hold(at(0), "u1", "h1", &seats(&["A1"]), TTL);
    s.extend_for_order(at(0), "u1", "h1", "o1", 1000);
    assert_eq!(s.snapshot(at(1000 + T.order_grace_ms - 1)).0.taken.len(), 1);
    assert!(s.snapshot(at(1000 + T.order_grace_ms)).0.taken.is_empty());
}

#[derive(Debug, Clone)]
enum Action {
    Hold(u8, Vec<u8>),
    Release(u8),
    Order(u8),
    Book(u8),
    Free(u8),
    Tick(u32),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (0u8..4, proptest::collection::btree_set(0u8..6, 1..4))
            .prop_map(|(u, s)| Action::Hold(u, s.into_iter().collect())),
        (0u8..4).prop_map(Action::Release),
        (0u8..4).prop_map(Action::Order),
        (0u8..4).prop_map(Action::Book),
        (0u8..4).prop_map(Action::Free),
        (0u32..400_000).prop_map(Action::Tick),
    ]
}

proptest! {
    /// Whatever the interleaving: versions rise by one per delta, a seat's
    /// owner is a live hold or order, every user has at most one active
    /// hold, and replaying the deltas over the start gives the state.
    #[test]
    fn deltas_replay_to_the_state(actions in proptest::collection::vec(action(), 1..60)) {
        let mut s = ShowSeats::default();
        let mut now = 0i64;
        let mut stamp = 0i64;
        let mut replay: HashMap<String, SeatStatus> = HashMap::new();
        let mut version = 0u64;
        let mut last_hold: HashMap<u8, String> = HashMap::new();
        let mut orders: HashMap<u8, (String, String, Vec<String>)> = HashMap::new();
        for (n, a) in actions.into_iter().enumerate() {
            let fx = match a {
                Action::Hold(u, ss) => {
                    let id = format!("h{n}");
                    let list: Vec<String> = ss.iter().map(|i| format!("A{}", i + 1)).collect();
                    let (out, fx) = s.hold(at(now), &format!("u{u}"), &id, &list, TTL);
                    if matches!(out, HoldOutcome::Held { .. }) { last_hold.insert(u, id); }
                    fx
                }
                Action::Release(u) => match last_hold.get(&u) {
                    Some(h) => s.release(at(now), &format!("u{u}"), h).1,
                    None => Effects::default(),
                },
                Action::Order(u) => match last_hold.get(&u).cloned() {
                    Some(h) => {
                        let oid = format!("o{n}");
                        let (out, fx) = s.extend_for_order(at(now), &format!("u{u}"), &h, &oid, 600_000);
                        if let ExtendOutcome::Attached(_) = out {
                            let seats = s.hold_record(&h).unwrap().seats;
                            orders.insert(u, (oid, h, seats));
                        }
                        fx
                    }
                    None => Effects::default(),
                },
                Action::Book(u) => match orders.get(&u) {
                    Some((o, h, ss)) => { stamp += 1; s.book(at(now), o, h, stamp, ss).1 }
                    None => Effects::default(),
                },
                Action::Free(u) => match orders.remove(&u) {
                    Some((o, h, ss)) => { stamp += 1; s.release_order(at(now), &o, &h, stamp, &ss).1 }
                    None => Effects::default(),
                },
                Action::Tick(ms) => { now += ms as i64; s.expire(at(now)).1 }
            };
            if let Some(d) = fx.delta {
                prop_assert_eq!(d.version, version + 1);
                version = d.version;
                for c in d.changes {
                    if c.status == SeatStatus::Available { replay.remove(&c.seat_id); } else { replay.insert(c.seat_id, c.status); }
                }
            }
            let actual: HashMap<String, SeatStatus> = s.owners().iter().map(|(k, o)| (k.clone(), o.status())).collect();
            prop_assert_eq!(&actual, &replay);
            let mut active = std::collections::HashSet::new();
            for (user, hold) in &s.users {
                let rec = &s.holds[hold];
                prop_assert_eq!(&rec.user, user);
                prop_assert!(rec.status == HoldStatus::Held && rec.order_id.is_none());
                prop_assert!(active.insert(user.clone()));
            }
            for owner in s.owners().values() {
                if let Owner::Hold(h) = owner {
                    prop_assert_eq!(s.holds[h].status, HoldStatus::Held);
                    prop_assert!(s.holds[h].expires_ms > now);
                }
            }
        }
    }
}
