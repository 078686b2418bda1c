//! The waiting list for returned seats: memory, Redis and Redis Cluster run
//! one story, step by step (`domain::seats::waitlist` is the rule).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use showgate::booking::locks::{SeatEngine, cmd};
use showgate::domain::best::RowPlan;
use showgate::domain::seats::{
    HoldOutcome, HoldStatus, OfferEnd, Owner, ReleaseOutcome, SeatStatus, WaitJoin, WaitStanding, WaitStats,
};

use super::common::{self, seats};
use super::{SHOW, T0, TTL};

const OFFER_TTL: i64 = 120_000;

/// One row of four seats: small enough to sell out by hand.
fn row_of_four() -> Vec<RowPlan> {
    vec![RowPlan {
        row: "A".into(),
        seats: 4,
        unavailable: vec![],
    }]
}

async fn join(locks: &Arc<SeatEngine>, now: i64, user: &str, q: usize) -> WaitJoin {
    let offer = format!("offer-{user}");
    locks
        .run(
            SHOW,
            now,
            &cmd::JoinWaitlist {
                user,
                quantity: q,
                offer_id: &offer,
                rows: &row_of_four(),
                offer_ttl_ms: OFFER_TTL,
            },
        )
        .await
        .unwrap()
        .out
}

async fn standing(locks: &Arc<SeatEngine>, now: i64, user: &str) -> WaitStanding {
    locks
        .run(SHOW, now, &cmd::WaitlistStanding { user })
        .await
        .map(|r| r.out)
        .unwrap()
}

fn waiting(position: u64, quantity: usize) -> WaitStanding {
    WaitStanding::Waiting { position, quantity }
}

async fn returned_seats_go_to_waiters_in_order_and_never_show_available(locks: Arc<SeatEngine>) {
    let t = T0;
    for (user, hold, list) in [
        ("alice", "h1", &["A1", "A2"][..]),
        ("bob", "h2", &["A3"]),
        ("cat", "h3", &["A4"]),
    ] {
        let r = locks
            .run(
                SHOW,
                t,
                &cmd::Hold {
                    user,
                    hold_id: hold,
                    seats: &seats(list),
                    ttl_ms: TTL,
                },
            )
            .await
            .unwrap();
        assert!(matches!(r.out, HoldOutcome::Held { .. }));
    }
    // Sold out: carol waits for two, dave for one, erin for two.
    assert_eq!(join(&locks, t, "carol", 2).await, WaitJoin::Joined(waiting(1, 2)));
    assert_eq!(join(&locks, t, "dave", 1).await, WaitJoin::Joined(waiting(2, 1)));
    assert_eq!(join(&locks, t, "erin", 2).await, WaitJoin::Joined(waiting(3, 2)));
    // Joining again keeps the place and the quantity.
    assert_eq!(join(&locks, t, "carol", 4).await, WaitJoin::Already(waiting(1, 2)));

    // Alice gives her pair back: it goes straight to carol, in the same step.
    let mut events = locks.subscribe(SHOW).await.unwrap();
    let r = locks
        .run(
            SHOW,
            t + 1,
            &cmd::Release {
                user: "alice",
                hold_id: "h1",
            },
        )
        .await
        .unwrap();
    assert_eq!(r.out, ReleaseOutcome::Released);
    let delta = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("a delta in time")
        .unwrap();
    let changes: Vec<(String, SeatStatus)> = delta.changes.iter().map(|c| (c.seat_id.clone(), c.status)).collect();
    assert_eq!(
        changes,
        vec![("A1".into(), SeatStatus::Held), ("A2".into(), SeatStatus::Held)],
        "the returned seats are never published as AVAILABLE"
    );
    let offered = WaitStanding::Offered {
        hold_id: "offer-carol".into(),
        seats: seats(&["A1", "A2"]),
        expires_ms: t + 1 + OFFER_TTL,
    };
    assert_eq!(standing(&locks, t + 1, "carol").await, offered);
    assert_eq!(join(&locks, t + 1, "carol", 2).await, WaitJoin::Already(offered));
    let rec = locks.hold_record(SHOW, "offer-carol").await.unwrap().unwrap();
    assert_eq!(
        (rec.user.as_str(), rec.status, rec.offer),
        ("carol", HoldStatus::Held, true)
    );
    assert_eq!(standing(&locks, t + 1, "dave").await, waiting(1, 1));
    assert_eq!(standing(&locks, t + 1, "erin").await, waiting(2, 2));

    // Carol lets it run out: dave (one seat) is the first the pair can
    // serve... and erin, who wants two, cannot have the one left.
    let late = t + 1 + OFFER_TTL;
    assert_eq!(
        standing(&locks, late, "carol").await,
        WaitStanding::Ended {
            hold_id: "offer-carol".into(),
            seats: seats(&["A1", "A2"]),
            end: OfferEnd::Expired
        },
        "an offer past its TTL reads as over before any sweep"
    );
    let r = locks.run(SHOW, late, &cmd::Expire).await.unwrap();
    assert_eq!(r.expired, 1);
    let dave = WaitStanding::Offered {
        hold_id: "offer-dave".into(),
        seats: seats(&["A2"]),
        expires_ms: late + OFFER_TTL,
    };
    assert_eq!(
        standing(&locks, late, "dave").await,
        dave,
        "the best single seat of A1-A2"
    );
    assert_eq!(standing(&locks, late, "erin").await, waiting(1, 2));
    let snap = locks.run(SHOW, late, &cmd::Snapshot).await.unwrap().out;
    assert_eq!(snap.taken.get("A1"), None, "a seat no waiter can use is on sale");

    // Dave buys his: the offer was taken.
    let ordered = locks
        .run(
            SHOW,
            late + 1,
            &cmd::ExtendForOrder {
                user: "dave",
                hold_id: "offer-dave",
                order_id: "o-dave",
                order_ttl_ms: 600_000,
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        ordered.out,
        showgate::domain::seats::ExtendOutcome::Attached(_)
    ));
    assert!(matches!(
        standing(&locks, late + 1, "dave").await,
        WaitStanding::Ended { end: OfferEnd::Accepted(ref o), .. } if o == "o-dave"
    ));

    // Bob gives A3 back: with A1 that makes two for erin, not side by side.
    locks
        .run(
            SHOW,
            late + 2,
            &cmd::Release {
                user: "bob",
                hold_id: "h2",
            },
        )
        .await
        .unwrap();
    let erin = WaitStanding::Offered {
        hold_id: "offer-erin".into(),
        seats: seats(&["A1", "A3"]),
        expires_ms: late + 2 + OFFER_TTL,
    };
    assert_eq!(standing(&locks, late + 2, "erin").await, erin);

    // Erin leaves the list: her offer is given back, and with nobody
    // waiting its seats are on sale.
    let r = locks
        .run(SHOW, late + 3, &cmd::LeaveWaitlist { user: "erin" })
        .await
        .unwrap();
    assert_eq!(r.out, erin);
    let snap = locks.run(SHOW, late + 3, &cmd::Snapshot).await.unwrap().out;
    assert_eq!(
        (snap.taken.get("A1"), snap.taken.get("A3")),
        (None, None),
        "nobody waits: the seats are available"
    );
    assert_eq!(
        locks
            .run(SHOW, late + 3, &cmd::LeaveWaitlist { user: "erin" })
            .await
            .unwrap()
            .out,
        WaitStanding::None,
        "leaving twice: she is not on the list"
    );

    // Two seats are free: a join for two is told to buy them; for three, it waits.
    assert_eq!(
        join(&locks, late + 4, "frank", 2).await,
        WaitJoin::SeatsAvailable { free: 2 }
    );
    assert_eq!(standing(&locks, late + 4, "frank").await, WaitStanding::None);
    assert_eq!(
        join(&locks, late + 4, "frank", 3).await,
        WaitJoin::Joined(waiting(1, 3))
    );

    assert_eq!(
        locks.wait_stats(SHOW).await.unwrap(),
        WaitStats {
            length: 1,
            made: 3,
            taken: 1,
            expired: 1,
            declined: 1
        }
    );
}

async fn an_offer_replaces_the_waiters_own_hold_and_frees_a_waiters_place_on_leave(locks: Arc<SeatEngine>) {
    let t = T0;
    locks
        .run(
            SHOW,
            t,
            &cmd::Hold {
                user: "alice",
                hold_id: "h1",
                seats: &seats(&["A1", "A2", "A3"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    locks
        .run(
            SHOW,
            t + 1,
            &cmd::Hold {
                user: "bob",
                hold_id: "h2",
                seats: &seats(&["A4"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    // Bob holds one seat but wants two: he waits, keeping his hold.
    assert_eq!(join(&locks, t, "bob", 2).await, WaitJoin::Joined(waiting(1, 2)));
    assert_eq!(join(&locks, t, "carol", 1).await, WaitJoin::Joined(waiting(2, 1)));
    // Alice's hold expires: bob's offer is a block of two and replaces his
    // single seat, which then goes to carol, all in one step.
    let r = locks.run(SHOW, t + TTL, &cmd::Expire).await.unwrap();
    assert_eq!(r.expired, 1);
    let snap = locks.run(SHOW, t + TTL, &cmd::Snapshot).await.unwrap().out;
    let owner = |s: &str| snap.taken.get(s).cloned();
    assert_eq!(owner("A2"), Some(Owner::Hold("offer-bob".into())));
    assert_eq!(owner("A3"), Some(Owner::Hold("offer-bob".into())));
    assert!(
        [owner("A1"), owner("A4")].contains(&Some(Owner::Hold("offer-carol".into()))),
        "carol has one of the two left: {snap:?}"
    );
    assert_eq!(
        locks.hold_record(SHOW, "h2").await.unwrap().unwrap().status,
        HoldStatus::Released
    );
    // A waiter who leaves gives up the place; the one behind moves up.
    assert_eq!(join(&locks, t + TTL, "dave", 4).await, WaitJoin::Joined(waiting(1, 4)));
    assert_eq!(join(&locks, t + TTL, "erin", 4).await, WaitJoin::Joined(waiting(2, 4)));
    assert_eq!(
        locks
            .run(SHOW, t + TTL, &cmd::LeaveWaitlist { user: "dave" })
            .await
            .unwrap()
            .out,
        waiting(1, 4)
    );
    assert_eq!(standing(&locks, t + TTL, "erin").await, waiting(1, 4));
    assert_eq!(locks.wait_stats(SHOW).await.unwrap().length, 1);
}

/// A burst of returned seats, more than one step may offer: the holds made
/// in a sale's first second all run out together. The sweeper's calls free
/// them in turns, each turn's seats offered in the same step, so every
/// waiter is served before any seat shows AVAILABLE.
async fn a_burst_of_expiries_is_offered_in_turns_and_no_offered_seat_shows_available(locks: Arc<SeatEngine>) {
    let t = T0;
    let plan: Vec<RowPlan> = ["A", "B", "C", "D", "E"]
        .iter()
        .map(|row| RowPlan {
            row: (*row).into(),
            seats: 12,
            unavailable: vec![],
        })
        .collect();
    let all: Vec<String> = plan
        .iter()
        .flat_map(|r| (1..=12).map(move |k| format!("{}{k}", r.row)))
        .collect();
    for (i, seat) in all.iter().enumerate() {
        let r = locks
            .run(
                SHOW,
                t,
                &cmd::Hold {
                    user: &format!("buyer{i}"),
                    hold_id: &format!("h{i}"),
                    seats: std::slice::from_ref(seat),
                    ttl_ms: TTL,
                },
            )
            .await
            .unwrap();
        assert!(matches!(r.out, HoldOutcome::Held { .. }), "{seat}");
    }
    let waiters: u64 = 40;
    for i in 0..waiters {
        let user = format!("waiter{i}");
        let joined = locks
            .run(
                SHOW,
                t,
                &cmd::JoinWaitlist {
                    user: &user,
                    quantity: 1,
                    offer_id: &format!("offer-{i}"),
                    rows: &plan,
                    offer_ttl_ms: OFFER_TTL,
                },
            )
            .await
            .unwrap()
            .out;
        assert_eq!(joined, WaitJoin::Joined(waiting(i + 1, 1)));
    }
    let mut events = locks.subscribe(SHOW).await.unwrap();

    // All 60 holds are due at once; the sweeper calls until none is.
    let due = t + TTL;
    let mut calls = 0;
    let mut expired = 0;
    loop {
        let r = locks.run(SHOW, due, &cmd::Expire).await.unwrap();
        calls += 1;
        expired += r.expired;
        if !r.out.more {
            break;
        }
        assert!(calls < 20, "the sweep ends");
    }
    assert_eq!(expired, 60);
    assert!(calls > 1, "with waiters one call frees a bounded number of seats");

    let stats = locks.wait_stats(SHOW).await.unwrap();
    assert_eq!((stats.length, stats.made), (0, 40), "every waiter was offered a seat");
    let snap = locks.run(SHOW, due, &cmd::Snapshot).await.unwrap().out;
    let mut offered = std::collections::HashSet::new();
    for i in 0..waiters {
        match standing(&locks, due, &format!("waiter{i}")).await {
            WaitStanding::Offered { seats, .. } => {
                assert_eq!(seats.len(), 1);
                assert_eq!(snap.taken.get(&seats[0]), Some(&Owner::Hold(format!("offer-{i}"))));
                assert!(offered.insert(seats[0].clone()), "{} offered twice", seats[0]);
            }
            other => panic!("waiter{i}: {other:?}"),
        }
    }
    assert_eq!(snap.taken.len(), 40, "the 20 seats nobody waits for are on sale");

    // The stream: an offered seat is never AVAILABLE; the rest end AVAILABLE.
    let mut last = std::collections::HashMap::new();
    let mut seen_available = std::collections::HashSet::new();
    while last.len() < 60 {
        let delta = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("every seat's change in time")
            .unwrap();
        for c in delta.changes {
            if c.status == SeatStatus::Available {
                seen_available.insert(c.seat_id.clone());
            }
            last.insert(c.seat_id, c.status);
        }
    }
    assert!(
        seen_available.is_disjoint(&offered),
        "offered seats published AVAILABLE: {:?}",
        seen_available.intersection(&offered).collect::<Vec<_>>()
    );
    assert_eq!(seen_available.len(), 20);
    assert_eq!(last.values().filter(|s| **s == SeatStatus::Held).count(), 40);
}

async fn hold(locks: &Arc<SeatEngine>, now: i64, user: &str, id: &str, list: &[&str], ttl: i64) -> HoldOutcome {
    let seats = seats(list);
    let hold = cmd::Hold {
        user,
        hold_id: id,
        seats: &seats,
        ttl_ms: ttl,
    };
    locks.run(SHOW, now, &hold).await.unwrap().out
}

/// A seat that comes back is offered before the request that finds it free
/// can take it: a hold by id or a best-available pick running first at the
/// expiry instant gets none of it, and a waiter's own request wins for that
/// waiter (their own hold stands, the offer goes to the next waiter).
async fn seats_freed_inside_a_request_go_to_the_list_first(locks: Arc<SeatEngine>) {
    let t = T0;
    assert!(matches!(
        hold(&locks, t, "alice", "h1", &["A1", "A2"], TTL).await,
        HoldOutcome::Held { .. }
    ));
    let bob_ttl = TTL + 2 * OFFER_TTL;
    assert!(matches!(
        hold(&locks, t, "bob", "h2", &["A3", "A4"], bob_ttl).await,
        HoldOutcome::Held { .. }
    ));
    assert_eq!(join(&locks, t, "carol", 2).await, WaitJoin::Joined(waiting(1, 2)));
    assert_eq!(join(&locks, t, "dave", 2).await, WaitJoin::Joined(waiting(2, 2)));
    // Alice's hold runs out; eve's request by id is the first step to see it.
    let r = hold(&locks, t + TTL, "eve", "h3", &["A1", "A2"], TTL).await;
    assert_eq!(
        r,
        HoldOutcome::Conflict {
            conflicts: seats(&["A1", "A2"])
        }
    );
    let owner = |snap: &showgate::domain::seats::SeatSnapshot, s: &str| snap.taken.get(s).cloned();
    let snap = locks.run(SHOW, t + TTL, &cmd::Snapshot).await.unwrap().out;
    assert_eq!(owner(&snap, "A1"), Some(Owner::Hold("offer-carol".into())));
    // Carol's offer runs out unclaimed; frank's best-available pick is the
    // first step to see it: dave gets the pair, frank nothing.
    let at = t + TTL + OFFER_TTL;
    let best = cmd::HoldBest {
        user: "frank",
        hold_id: "h4",
        quantity: 2,
        rows: &row_of_four(),
        ttl_ms: TTL,
    };
    let r = locks.run(SHOW, at, &best).await.unwrap().out;
    assert_eq!(r, showgate::domain::seats::BestOutcome::NotEnough { largest_block: 0 });
    let snap = locks.run(SHOW, at, &cmd::Snapshot).await.unwrap().out;
    assert_eq!(owner(&snap, "A2"), Some(Owner::Hold("offer-dave".into())));
    // Gina and hal wait. Dave's offer and bob's hold run out together, and
    // the first step to see it is gina's own request for one seat: a pair
    // goes to hal, not to her, and her own hold stands.
    assert_eq!(join(&locks, at, "gina", 2).await, WaitJoin::Joined(waiting(1, 2)));
    assert_eq!(join(&locks, at, "hal", 2).await, WaitJoin::Joined(waiting(2, 2)));
    let back = at + OFFER_TTL;
    assert_eq!(back, t + bob_ttl, "bob's hold is due too");
    let r = hold(&locks, back, "gina", "h5", &["A4"], TTL).await;
    let HoldOutcome::Held { record, .. } = r else {
        panic!("gina's own request wins for her: {r:?}")
    };
    assert_eq!((record.status, record.seats), (HoldStatus::Held, seats(&["A4"])));
    let snap = locks.run(SHOW, back, &cmd::Snapshot).await.unwrap().out;
    assert_eq!(owner(&snap, "A4"), Some(Owner::Hold("h5".into())), "{snap:?}");
    let hal = Some(Owner::Hold("offer-hal".into()));
    assert_eq!(
        ["A1", "A2", "A3"].iter().filter(|s| owner(&snap, s) == hal).count(),
        2,
        "hal's pair: {snap:?}"
    );
    assert_eq!(
        standing(&locks, back, "gina").await,
        waiting(1, 2),
        "still waiting for two"
    );
}

macro_rules! waitlist_cases {
    ($($case:ident),* $(,)?) => {
        mod memory_waitlist {
            $( #[tokio::test] async fn $case() { super::$case(super::common::ready(super::common::memory_locks()).await).await } )*
        }
        mod redis_waitlist {
            $( #[tokio::test] async fn $case() {
                super::$case(super::common::ready(super::common::redis_locks(&super::common::unique_prefix()).await).await).await
            } )*
        }
        mod redis_cluster_waitlist {
            $( #[tokio::test] async fn $case() {
                super::$case(super::common::ready(super::common::cluster_locks(&super::common::unique_prefix()).await).await).await
            } )*
        }
    };
}

waitlist_cases!(
    returned_seats_go_to_waiters_in_order_and_never_show_available,
    an_offer_replaces_the_waiters_own_hold_and_frees_a_waiters_place_on_leave,
    a_burst_of_expiries_is_offered_in_turns_and_no_offered_seat_shows_available,
    seats_freed_inside_a_request_go_to_the_list_first,
);
