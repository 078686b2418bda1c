//! Differential: random histories, both engines, identical answers.

use std::sync::Arc;

use showgate::booking::locks::{SeatEngine, cmd};
use showgate::domain::best::{self, RowPlan};
use showgate::domain::seats::{BestOutcome, ExtendOutcome, HoldOutcome, WaitJoin};

use super::common::{self};
use super::{SHOW, T0};

/// Runs the same random history of holds, releases, orders, bookings, order
/// releases, waiting-list joins and leaves, expiry passes and clock jumps
/// against the memory engine and the Redis scripts, and requires identical
/// answers and state (seats, holds, every user's waiting-list standing and
/// the list's figures) at every step.
async fn same_history_same_answers(redis: Arc<SeatEngine>, seed: u64) -> u64 {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    let memory = common::ready(common::memory_locks()).await;
    let redis = common::ready(redis).await;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut now = T0;
    let mut holds: Vec<(String, String)> = Vec::new(); // (user, hold)
    let mut orders: Vec<(String, String, Vec<String>)> = Vec::new(); // (order, hold, seats)
    for step in 0..60i64 {
        let user = format!("u{}", rng.random_range(0..4));
        let what = rng.random_range(0..11);
        let label = format!("seed {seed} step {step} action {what}");
        match what {
            0..=2 => {
                let n = rng.random_range(1..=3);
                let mut pick: Vec<String> = (0..n).map(|_| format!("A{}", rng.random_range(1..=6))).collect();
                pick.sort();
                pick.dedup();
                let id = format!("h{step}");
                let ttl = rng.random_range(1_000..400_000);
                let a = memory
                    .run(
                        SHOW,
                        now,
                        &cmd::Hold {
                            user: &user,
                            hold_id: &id,
                            seats: &pick,
                            ttl_ms: ttl,
                        },
                    )
                    .await
                    .unwrap();
                let b = redis
                    .run(
                        SHOW,
                        now,
                        &cmd::Hold {
                            user: &user,
                            hold_id: &id,
                            seats: &pick,
                            ttl_ms: ttl,
                        },
                    )
                    .await
                    .unwrap();
                match (&a.out, &b.out) {
                    (HoldOutcome::Conflict { conflicts: c1 }, HoldOutcome::Conflict { conflicts: c2 }) => {
                        assert_eq!((c1, a.version, a.expired), (c2, b.version, b.expired), "{label}");
                    }
                    _ => assert_eq!(a, b, "{label}"),
                }
                if matches!(a.out, HoldOutcome::Held { .. }) {
                    holds.push((user, id));
                }
            }
            8 => {
                // Best available over rows A (the seats the other holds
                // pick from) and B (B2 unavailable): the script and the
                // state machine must pick the same seats.
                let plan = best::plan(vec![
                    RowPlan {
                        row: "A".into(),
                        seats: 6,
                        unavailable: vec![],
                    },
                    RowPlan {
                        row: "B".into(),
                        seats: 6,
                        unavailable: vec![2],
                    },
                ]);
                let quantity = rng.random_range(1..=4);
                let id = format!("h{step}");
                let ttl = rng.random_range(1_000..400_000);
                let a = memory
                    .run(
                        SHOW,
                        now,
                        &cmd::HoldBest {
                            user: &user,
                            hold_id: &id,
                            quantity,
                            rows: &plan,
                            ttl_ms: ttl,
                        },
                    )
                    .await
                    .unwrap();
                let b = redis
                    .run(
                        SHOW,
                        now,
                        &cmd::HoldBest {
                            user: &user,
                            hold_id: &id,
                            quantity,
                            rows: &plan,
                            ttl_ms: ttl,
                        },
                    )
                    .await
                    .unwrap();
                assert_eq!(a, b, "{label}");
                if matches!(a.out, BestOutcome::Held { .. }) {
                    holds.push((user, id));
                }
            }
            9 => {
                // The waiting list keeps row A only: the seats the other
                // holds fight over, so offers happen often.
                let plan = vec![RowPlan {
                    row: "A".into(),
                    seats: 6,
                    unavailable: vec![],
                }];
                let quantity = rng.random_range(1..=4);
                let offer = format!("w{step}");
                let ttl = rng.random_range(1_000..200_000);
                let a = memory
                    .run(
                        SHOW,
                        now,
                        &cmd::JoinWaitlist {
                            user: &user,
                            quantity,
                            offer_id: &offer,
                            rows: &plan,
                            offer_ttl_ms: ttl,
                        },
                    )
                    .await
                    .unwrap();
                let b = redis
                    .run(
                        SHOW,
                        now,
                        &cmd::JoinWaitlist {
                            user: &user,
                            quantity,
                            offer_id: &offer,
                            rows: &plan,
                            offer_ttl_ms: ttl,
                        },
                    )
                    .await
                    .unwrap();
                assert_eq!(a, b, "{label}");
                if matches!(a.out, WaitJoin::Joined(_)) {
                    holds.push((user, offer));
                }
            }
            10 => {
                let a = memory
                    .run(SHOW, now, &cmd::LeaveWaitlist { user: &user })
                    .await
                    .unwrap();
                let b = redis.run(SHOW, now, &cmd::LeaveWaitlist { user: &user }).await.unwrap();
                assert_eq!(a, b, "{label}");
            }
            3 if !holds.is_empty() => {
                let (u, h) = holds[rng.random_range(0..holds.len())].clone();
                let a = memory
                    .run(SHOW, now, &cmd::Release { user: &u, hold_id: &h })
                    .await
                    .unwrap();
                let b = redis
                    .run(SHOW, now, &cmd::Release { user: &u, hold_id: &h })
                    .await
                    .unwrap();
                assert_eq!(a, b, "{label}");
            }
            4 if !holds.is_empty() => {
                let (u, h) = holds[rng.random_range(0..holds.len())].clone();
                let o = format!("o{step}");
                let ttl = rng.random_range(1_000..700_000);
                let a = memory
                    .run(
                        SHOW,
                        now,
                        &cmd::ExtendForOrder {
                            user: &u,
                            hold_id: &h,
                            order_id: &o,
                            order_ttl_ms: ttl,
                        },
                    )
                    .await
                    .unwrap();
                let b = redis
                    .run(
                        SHOW,
                        now,
                        &cmd::ExtendForOrder {
                            user: &u,
                            hold_id: &h,
                            order_id: &o,
                            order_ttl_ms: ttl,
                        },
                    )
                    .await
                    .unwrap();
                assert_eq!(a, b, "{label}");
                if matches!(a.out, ExtendOutcome::Attached(_)) {
                    let rec = memory.hold_record(SHOW, &h).await.unwrap().unwrap();
                    orders.push((o, h, rec.seats));
                }
            }
            5 if !orders.is_empty() => {
                let (o, h, s) = orders[rng.random_range(0..orders.len())].clone();
                let a = memory
                    .run(
                        SHOW,
                        now,
                        &cmd::Settle {
                            verdict: cmd::Verdict::Book,
                            order_id: &o,
                            hold_id: &h,
                            stamp: step,
                            seats: &s,
                        },
                    )
                    .await
                    .unwrap();
                let b = redis
                    .run(
                        SHOW,
                        now,
                        &cmd::Settle {
                            verdict: cmd::Verdict::Book,
                            order_id: &o,
                            hold_id: &h,
                            stamp: step,
                            seats: &s,
                        },
                    )
                    .await
                    .unwrap();
                assert_eq!(a, b, "{label}");
            }
            6 if !orders.is_empty() => {
                let (o, h, s) = orders.remove(rng.random_range(0..orders.len()));
                let a = memory
                    .run(
                        SHOW,
                        now,
                        &cmd::Settle {
                            verdict: cmd::Verdict::Release,
                            order_id: &o,
                            hold_id: &h,
                            stamp: step,
                            seats: &s,
                        },
                    )
                    .await
                    .unwrap();
                let b = redis
                    .run(
                        SHOW,
                        now,
                        &cmd::Settle {
                            verdict: cmd::Verdict::Release,
                            order_id: &o,
                            hold_id: &h,
                            stamp: step,
                            seats: &s,
                        },
                    )
                    .await
                    .unwrap();
                assert_eq!(a, b, "{label}");
            }
            _ => {
                now += rng.random_range(0..200_000);
                let a = memory.run(SHOW, now, &cmd::Expire).await.unwrap();
                let b = redis.run(SHOW, now, &cmd::Expire).await.unwrap();
                assert_eq!(a, b, "{label}");
            }
        }
        let a = memory.run(SHOW, now, &cmd::Snapshot).await.unwrap();
        let b = redis.run(SHOW, now, &cmd::Snapshot).await.unwrap();
        assert_eq!(a, b, "{label}: snapshots");
        for u in 0..4 {
            let u = format!("u{u}");
            assert_eq!(
                memory
                    .run(SHOW, now, &cmd::WaitlistStanding { user: &u })
                    .await
                    .map(|r| r.out)
                    .unwrap(),
                redis
                    .run(SHOW, now, &cmd::WaitlistStanding { user: &u })
                    .await
                    .map(|r| r.out)
                    .unwrap(),
                "{label}: {u}'s standing"
            );
        }
        assert_eq!(
            memory.wait_stats(SHOW).await.unwrap(),
            redis.wait_stats(SHOW).await.unwrap(),
            "{label}: the list's figures"
        );
        for (_, h) in &holds {
            assert_eq!(
                memory.hold_record(SHOW, h).await.unwrap(),
                redis.hold_record(SHOW, h).await.unwrap(),
                "{label}: {h}"
            );
        }
    }
    memory.wait_stats(SHOW).await.unwrap().made
}

#[tokio::test]
async fn random_histories_give_identical_answers_on_memory_and_redis() {
    let mut offers = 0;
    for seed in 0..40 {
        offers += same_history_same_answers(common::redis_locks(&common::unique_prefix()).await, seed).await;
    }
    assert!(
        offers > 20,
        "the histories exercise waiting-list offers ({offers} made)"
    );
}

#[tokio::test]
async fn random_histories_give_identical_answers_on_memory_and_redis_cluster() {
    let mut offers = 0;
    for seed in 100..120 {
        offers += same_history_same_answers(common::cluster_locks(&common::unique_prefix()).await, seed).await;
    }
    assert!(
        offers > 10,
        "the histories exercise waiting-list offers ({offers} made)"
    );
}
