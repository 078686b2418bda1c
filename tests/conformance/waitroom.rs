//! Waiting rooms: memory and Redis.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use showgate::booking::locks::{SeatEngine, cmd};

use super::common::{self, seats};
use super::{SHOW, T0, TTL};

use showgate::domain::outlook::{AGE_BUCKETS, Model, Observations, age_bucket};
use showgate::domain::waitroom::{self, PreQueue, RoomConfig};
use showgate::waitroom::engine::{
    Opening, RoomEvent, SaleCounts, Settled, Spend, Stand, Standing, Step, StoredRoom, TickParams, WaitingRooms,
};

type Rooms = (Arc<SeatEngine>, Arc<dyn WaitingRooms>);

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
            challenge_bits: 0,
        },
        seed: "seed".into(),
        sold_out: false,
        observed_rate: 0.0,
        generation: String::new(),
    }
}

/// A tick with an id no other tick of the run has.
fn tick(now: i64, max: u64) -> TickParams {
    static TICKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    TickParams {
        tick_id: format!("t{}", TICKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
        now,
        max,
        ttl_ms: 60_000,
        sellable: 100,
        max_active: 3,
        paused: false,
        observed_rate: 1.0,
        outlook: None,
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
    assert_eq!(position(&rooms.join(SHOW, "a", T0, true, T0).await.unwrap()), 1);
    assert_eq!(position(&rooms.join(SHOW, "b", T0, true, T0).await.unwrap()), 2);
    assert_eq!(position(&rooms.join(SHOW, "a", T0, true, T0).await.unwrap()), 1);
    let none = rooms.join(SHOW, "c", T0, false, T0).await.unwrap();
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
        rooms.join(SHOW, u, T0, true, T0).await.unwrap();
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
    assert_eq!(rooms.counters(SHOW, T0).await.unwrap().last_tick_ms, None);
    let t = rooms.admit(SHOW, &token, tick(T0, 2)).await.unwrap().unwrap();
    assert_eq!(
        (t.admitted.clone(), t.queue_length, t.active),
        (vec!["a".to_owned(), "b".to_owned()], 3, 2)
    );
    assert_eq!(
        rooms.counters(SHOW, T0).await.unwrap().last_tick_ms,
        Some(T0),
        "when the room last admitted, for the next leader's bucket"
    );
    let t = rooms.admit(SHOW, &token, tick(T0, 5)).await.unwrap().unwrap();
    assert_eq!(t.admitted, vec!["c".to_owned()], "never past maxActive");
    // Admitted, and told how many still wait.
    assert_eq!(
        rooms.join(SHOW, "a", T0, true, T0).await.unwrap().standing,
        Standing::Admitted {
            expires_ms: T0 + 60_000,
            queue_length: rooms.counters(SHOW, T0).await.unwrap().queue_length,
        }
    );
    assert_eq!(rooms.active_until(SHOW, "a").await.unwrap(), Some(T0 + 60_000));
    assert_eq!(rooms.active_until(SHOW, "d").await.unwrap(), None, "still queued");
    rooms
        .end_active(SHOW, "a", Settled::Bought { seats: 2 }, T0, 60_000)
        .await
        .unwrap();
    assert_eq!(rooms.active_until(SHOW, "a").await.unwrap(), None, "used up");
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
    rooms.join(SHOW, "a", T0, true, T0).await.unwrap();
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
        .run(
            SHOW,
            T0,
            &cmd::Hold {
                user: "x",
                hold_id: "h1",
                seats: &seats(&["A1", "A2"]),
                ttl_ms: TTL,
            },
        )
        .await
        .unwrap();
    let full = TickParams {
        sellable: 2,
        ..tick(T0, 5)
    };
    let t = rooms.admit(SHOW, &token, full.clone()).await.unwrap().unwrap();
    assert!(t.admitted.is_empty() && !t.sold_out && t.available == 0);
    // Booked for good: sold out.
    locks
        .run(
            SHOW,
            T0,
            &cmd::ExtendForOrder {
                user: "x",
                hold_id: "h1",
                order_id: "o1",
                order_ttl_ms: 600_000,
            },
        )
        .await
        .unwrap();
    locks
        .run(
            SHOW,
            T0,
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
    let t = rooms
        .admit(
            SHOW,
            &token,
            TickParams {
                sellable: 2,
                ..tick(T0, 5)
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert!(t.sold_out && t.admitted.is_empty());
    assert!(rooms.load(SHOW).await.unwrap().unwrap().sold_out);
}

async fn a_tick_run_twice_admits_nobody_the_second_time(r: Rooms) {
    let (_, rooms) = r;
    rooms.save(SHOW, &room()).await.unwrap();
    for u in ["a", "b", "c"] {
        rooms.join(SHOW, u, T0, true, T0).await.unwrap();
    }
    let token = rooms.lease(SHOW, "node-1", 3_000).await.unwrap().unwrap();
    let mut events = rooms.subscribe(SHOW).await.unwrap();
    let once = tick(T0, 1);
    let first = rooms.admit(SHOW, &token, once.clone()).await.unwrap().unwrap();
    let again = rooms.admit(SHOW, &token, once).await.unwrap().unwrap();
    assert_eq!(
        (first.admitted, again.admitted),
        (vec!["a".to_string()], Vec::<String>::new())
    );
    assert_eq!(
        (again.seq, again.queue_length),
        (first.seq, 2),
        "the retry published nothing"
    );
    let next = rooms.admit(SHOW, &token, tick(T0, 1)).await.unwrap().unwrap();
    assert_eq!(next.admitted, vec!["b".to_string()]);
    let seqs: Vec<u64> = [events.next().await.unwrap(), events.next().await.unwrap()]
        .iter()
        .map(RoomEvent::seq)
        .collect();
    assert_eq!(seqs, vec![first.seq, next.seq]);
}

async fn leaving_and_abandonment_publish_the_scores_that_left(r: Rooms) {
    let (_, rooms) = r;
    rooms.save(SHOW, &room()).await.unwrap();
    let mut events = rooms.subscribe(SHOW).await.unwrap();
    let sa = rooms.join(SHOW, "a", T0, true, T0).await.unwrap();
    rooms.join(SHOW, "b", T0, true, T0 + 10_000).await.unwrap();
    rooms.join(SHOW, "c", T0, true, T0).await.unwrap();
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

fn real_now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The pre-queue is decided by the engine's shared clock (Redis TIME), not
/// by the `now` a node passes: a node whose clock runs ahead still puts an
/// early joiner into the pre-queue, and one whose clock lags never strands
/// a joiner who comes after the opening. The opening is the lease holder's,
/// places the lottery block behind everyone queued before it and ahead of
/// everyone after, and is safe to run again.
async fn the_pre_queue_is_decided_by_the_shared_clock(r: Rooms) {
    let (_, rooms) = r;
    rooms.save(SHOW, &room()).await.unwrap();
    assert_eq!(position(&rooms.join(SHOW, "first", T0, true, T0).await.unwrap()), 1);
    let opens_at = real_now_ms() + 1_500;
    let mut random = room();
    random.config.pre_queue = PreQueue::Random;
    random.config.opens_at = chrono::DateTime::from_timestamp_millis(opens_at);
    rooms.save(SHOW, &random).await.unwrap();
    let ahead = opens_at + 3_600_000; // a node an hour fast
    for u in ["p1", "p2", "p3"] {
        let s = rooms.join(SHOW, u, ahead, true, ahead).await.unwrap();
        assert!(matches!(s.standing, Standing::PreQueued { .. }), "{u}: {s:?}");
    }
    let token = rooms.lease(SHOW, "node-1", 60_000).await.unwrap().unwrap();
    assert_eq!(rooms.open_begin(SHOW, &token).await.unwrap(), Opening::Wait);
    tokio::time::sleep(Duration::from_millis((opens_at - real_now_ms()).max(0) as u64 + 50)).await;

    let behind = opens_at - 3_600_000; // a node an hour slow
    assert_eq!(
        position(&rooms.join(SHOW, "late", behind, true, behind).await.unwrap()),
        2,
        "after the opening nobody enters the pre-queue"
    );
    assert_eq!(rooms.open_begin(SHOW, "node-2/99").await.unwrap(), Opening::Stale);
    let Opening::Open { base, pending } = rooms.open_begin(SHOW, &token).await.unwrap() else {
        panic!("the opening begins once the shared clock reaches opensAt")
    };
    assert_eq!(pending, 3);
    let order = waitroom::lottery_order("seed", rooms.entrants(SHOW).await.unwrap());
    let ranked: Vec<(u64, String)> = order.iter().cloned().enumerate().map(|(i, u)| (i as u64, u)).collect();
    assert_eq!(rooms.open(SHOW, "node-2/99", base, &ranked).await.unwrap(), None);
    // In two chunks, the second one twice (a retry): nothing moves twice.
    assert_eq!(
        rooms.open(SHOW, &token, base, &ranked[..1]).await.unwrap(),
        Some((1, 2))
    );
    assert_eq!(
        rooms.open(SHOW, &token, base, &ranked[1..]).await.unwrap(),
        Some((2, 0))
    );
    assert_eq!(
        rooms.open(SHOW, &token, base, &ranked[1..]).await.unwrap(),
        Some((0, 0))
    );
    assert_eq!(
        rooms.open_begin(SHOW, &token).await.unwrap(),
        Opening::Open { base, pending: 0 },
        "resuming a finished opening finds nothing to do"
    );
    let mut expected = vec!["first".to_owned()];
    expected.extend(order);
    expected.push("late".to_owned());
    let ranks = rooms.ranks(SHOW, &expected).await.unwrap().2;
    assert_eq!(
        ranks.iter().map(|r| r.unwrap().1).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4],
        "before the opening, the lottery block in lottery order, after the opening"
    );
    assert_eq!(rooms.counters(SHOW, T0).await.unwrap().pre_queue, 0);
    rooms.remove(SHOW).await.unwrap();
    assert!(rooms.load(SHOW).await.unwrap().is_none());
}

/// A solved challenge is spent by the join that makes a place with it, in
/// that join's own step: a join that never ran (a failed request) leaves it
/// for the retry, a shopper already placed does not spend it, and once spent
/// it makes no place again.
async fn a_challenge_is_spent_by_the_join_that_makes_a_place(r: Rooms) {
    let (_, rooms) = r;
    rooms.save(SHOW, &room()).await.unwrap();
    let until = real_now_ms() + 60_000;
    let c1 = Spend {
        id: "c1".into(),
        until_ms: until,
    };
    let a = rooms.join_spending(SHOW, "a", T0, T0, &c1).await.unwrap();
    assert_eq!(position(&a), 1, "the join that spends it is placed");
    // Placed already: the same join again keeps the place, spending nothing new.
    assert_eq!(position(&rooms.join_spending(SHOW, "a", T0, T0, &c1).await.unwrap()), 1);
    // Out of the queue, the spent challenge does not put her back.
    rooms.leave(SHOW, &["a".to_owned()], "left").await.unwrap();
    let again = rooms.join_spending(SHOW, "a", T0, T0, &c1).await.unwrap();
    assert_eq!(again.standing, Standing::None, "spent");
    assert_eq!(rooms.counters(SHOW, T0).await.unwrap().queue_length, 0);
    // A challenge no join used (the request failed before it) still places.
    let c2 = Spend {
        id: "c2".into(),
        until_ms: until,
    };
    assert_eq!(position(&rooms.join_spending(SHOW, "a", T0, T0, &c2).await.unwrap()), 1);
    // Spent per show: c1 on another show's room is unspent.
    rooms.save("show-2", &room()).await.unwrap();
    let other = rooms.join_spending("show-2", "a", T0, T0, &c1).await.unwrap();
    assert_eq!(position(&other), 1, "per show");
}

/// On a gated show an offer from the waiting list is its waiter's
/// admission: counted once in `active` until the offer runs out. On an
/// ungated show an offer admits nobody.
async fn an_offer_on_a_gated_show_is_its_waiters_admission(r: Rooms) {
    let (locks, rooms) = r;
    rooms.save(SHOW, &room()).await.unwrap();
    let row = vec![showgate::domain::best::RowPlan {
        row: "A".into(),
        seats: 2,
        unavailable: vec![],
    }];
    for show in [SHOW, "show-2"] {
        let all = seats(&["A1", "A2"]);
        let hold = cmd::Hold {
            user: "alice",
            hold_id: "h1",
            seats: &all,
            ttl_ms: TTL,
        };
        locks.run(show, T0, &hold).await.unwrap();
        let join = cmd::JoinWaitlist {
            user: "carol",
            quantity: 2,
            offer_id: "offer-carol",
            rows: &row,
            offer_ttl_ms: 120_000,
        };
        locks.run(show, T0, &join).await.unwrap();
        let release = cmd::Release {
            user: "alice",
            hold_id: "h1",
        };
        locks.run(show, T0 + 1, &release).await.unwrap();
    }
    assert_eq!(rooms.active_until(SHOW, "carol").await.unwrap(), Some(T0 + 1 + 120_000));
    assert_eq!(rooms.counters(SHOW, T0 + 2).await.unwrap().active, 1, "counted once");
    assert_eq!(
        rooms.active_until("show-2", "carol").await.unwrap(),
        None,
        "no room, no admission"
    );
}

/// What the outlook learns from: settled admissions (bought n seats and how
/// long after admission, walked, lapsed), the funnel's steps (once per
/// shopper), seats booked and held, admissions older than the deciding
/// window; and the estimate a tick carries is kept and published with it.
async fn the_sale_counts_what_the_outlook_learns_from(r: Rooms) {
    let (locks, rooms) = r;
    rooms.save(SHOW, &room()).await.unwrap();
    let mut events = rooms.subscribe(SHOW).await.unwrap();
    for u in ["a", "b", "c", "d", "e"] {
        rooms.join(SHOW, u, T0, true, T0).await.unwrap();
    }
    rooms.leave(SHOW, &["e".to_owned()], "left").await.unwrap();
    let token = rooms.lease(SHOW, "n", 60_000).await.unwrap().unwrap();
    let t = rooms.admit(SHOW, &token, tick(T0, 3)).await.unwrap().unwrap();
    assert_eq!(t.admitted, ["a", "b", "c"]);
    // a buys 3 seats 4 s after admission (twice: a retried confirmation
    // counts once); b walks away; c's admission lapses later.
    for _ in 0..2 {
        rooms
            .end_active(SHOW, "a", Settled::Bought { seats: 3 }, T0 + 4_000, 60_000)
            .await
            .unwrap();
    }
    rooms
        .end_active(SHOW, "b", Settled::Walked, T0 + 5_000, 60_000)
        .await
        .unwrap();
    for step in [Step::Held { seats: 3 }, Step::Held { seats: 3 }, Step::Ordered] {
        rooms.progressed(SHOW, "a", step).await.unwrap();
    }
    rooms.progressed(SHOW, "b", Step::Held { seats: 1 }).await.unwrap();
    // One seat booked, two held.
    let held = cmd::Hold {
        user: "x",
        hold_id: "h1",
        seats: &seats(&["A1", "A2"]),
        ttl_ms: TTL,
    };
    locks.run(SHOW, T0, &held).await.unwrap();
    let booked = cmd::Hold {
        user: "y",
        hold_id: "h2",
        seats: &seats(&["B1"]),
        ttl_ms: TTL,
    };
    locks.run(SHOW, T0, &booked).await.unwrap();
    let order = cmd::ExtendForOrder {
        user: "y",
        hold_id: "h2",
        order_id: "o2",
        order_ttl_ms: 600_000,
    };
    locks.run(SHOW, T0, &order).await.unwrap();
    let settle = cmd::Settle {
        verdict: cmd::Verdict::Book,
        order_id: "o2",
        hold_id: "h2",
        stamp: 1,
        seats: &seats(&["B1"]),
    };
    locks.run(SHOW, T0, &settle).await.unwrap();

    let c = rooms.sale_counts(SHOW, T0 + 10_000, 60_000).await.unwrap();
    let mut bought = vec![0; 4];
    bought[3] = 1;
    // c, admitted at T0, is 10 s old; a bought 4 s after admission.
    let mut pending_by_age = vec![0; AGE_BUCKETS];
    pending_by_age[age_bucket(10_000)] = 1;
    let mut buy_times = vec![0; AGE_BUCKETS];
    buy_times[age_bucket(4_000)] = 1;
    assert_eq!(
        c,
        SaleCounts {
            booked: 1,
            held: 2,
            pending_by_age,
            bought: bought.clone(),
            buy_times,
            held_seats: 7,
            walked: 1,
            buy_ms_sum: 4_000,
            joined: 5,
            admitted: 3,
            gave_up: 1,
            held_shoppers: 2,
            ordered_shoppers: 1,
            queue_length: 1,
        }
    );
    assert_eq!((c.paid(), c.pending()), (1, 1));
    let later = rooms.sale_counts(SHOW, T0 + 40_000, 60_000).await.unwrap();
    assert_eq!(later.pending_by_age[age_bucket(40_000)], 1, "older now");

    // The estimate a tick carries is kept and published with it.
    let model = Model::new(&Observations {
        at_ms: T0 + 10_000,
        sellable: 100,
        booked: c.booked,
        held: c.held,
        bought: c.bought.clone(),
        walked: c.walked,
        pending_by_age: c.pending_by_age.clone(),
        buy_times: c.buy_times.clone(),
        ..Observations::default()
    });
    let json = serde_json::to_string(&model).unwrap();
    let with = TickParams {
        outlook: Some(json.clone()),
        ..tick(T0 + 61_000, 0)
    };
    rooms.admit(SHOW, &token, with).await.unwrap().unwrap();
    assert_eq!(rooms.outlook(SHOW).await.unwrap().as_deref(), Some(json.as_str()));
    let mut last = None;
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(2), events.next()).await {
        if let RoomEvent::Tick { outlook, .. } = e {
            last = Some(outlook);
        }
        if last.as_ref().is_some_and(|o| o.is_some()) {
            break;
        }
    }
    assert_eq!(last.flatten().map(|m| *m), Some(model), "published with the tick");
    // The tick at T0 + 61 s found c's admission lapsed: bought nothing.
    let after = rooms.sale_counts(SHOW, T0 + 61_000, 60_000).await.unwrap();
    assert_eq!((after.pending(), after.walked, after.bought), (0, 2, bought));
    // A shopper who holds seats is no longer counted as deciding.
    rooms.join(SHOW, "f", T0 + 61_000, true, T0 + 61_000).await.unwrap();
    let t = rooms.admit(SHOW, &token, tick(T0 + 61_000, 5)).await.unwrap().unwrap();
    assert!(t.admitted.contains(&"f".to_owned()), "{t:?}");
    let before = rooms.sale_counts(SHOW, T0 + 62_000, 60_000).await.unwrap().pending();
    rooms.progressed(SHOW, "f", Step::Held { seats: 2 }).await.unwrap();
    let after = rooms.sale_counts(SHOW, T0 + 62_000, 60_000).await.unwrap();
    assert_eq!((after.pending(), after.held_seats), (before - 1, 9));
}

macro_rules! room_cases {
    ($($case:ident),* $(,)?) => {
        mod memory_rooms {
            $( #[tokio::test] async fn $case() { super::$case(super::common::memory_rooms().await).await } )*
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
    a_tick_run_twice_admits_nobody_the_second_time,
    leaving_and_abandonment_publish_the_scores_that_left,
    the_pre_queue_is_decided_by_the_shared_clock,
    a_challenge_is_spent_by_the_join_that_makes_a_place,
    an_offer_on_a_gated_show_is_its_waiters_admission,
    the_sale_counts_what_the_outlook_learns_from,
);
