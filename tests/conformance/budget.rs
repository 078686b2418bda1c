//! Each user's budget of seat-changing calls per show, kept with the show's
//! seats so every node spends the same one: the same refusals on every
//! engine, before anything changes.

use std::sync::Arc;

use showgate::booking::locks::{SeatEngine, cmd};
use showgate::domain::seats::{Budget, HoldOutcome, LockTimes, ReleaseOutcome};
use showgate::error::Error;

use super::common::{self, seats};
use super::{SHOW, T0, TTL};

/// 5 calls a second, a burst of 10.
const TIMES: LockTimes = LockTimes {
    budget: Some(Budget {
        interval_us: 200_000,
        burst: 10,
    }),
    ..common::TIMES
};

async fn hold(
    locks: &SeatEngine,
    show: &str,
    user: &str,
    id: &str,
    seat: &str,
    now: i64,
) -> Result<HoldOutcome, Error> {
    let seats = seats(&[seat]);
    let hold = cmd::Hold {
        user,
        hold_id: id,
        seats: &seats,
        ttl_ms: TTL,
    };
    locks.run(show, now, &hold).await.map(|r| r.out)
}

async fn a_users_seat_changing_calls_are_limited_per_show_before_anything_changes(locks: Arc<SeatEngine>) {
    // Holds and releases spend one budget: a burst of ten, then one call
    // per 200 ms.
    for i in 0..5 {
        let out = hold(&locks, SHOW, "mallory", &format!("h{i}"), &format!("A{}", i + 1), T0).await;
        assert!(matches!(out, Ok(HoldOutcome::Held { .. })), "{out:?}");
        let release = cmd::Release {
            user: "mallory",
            hold_id: &format!("h{i}"),
        };
        assert_eq!(
            locks.run(SHOW, T0, &release).await.unwrap().out,
            ReleaseOutcome::Released
        );
    }
    let before = locks.run(SHOW, T0, &cmd::Snapshot).await.unwrap();
    let refused = hold(&locks, SHOW, "mallory", "h9", "B1", T0 + 199).await;
    assert!(
        matches!(refused, Err(Error::RateLimited { retry_after_secs: 1 })),
        "{refused:?}"
    );
    let after = locks.run(SHOW, T0 + 199, &cmd::Snapshot).await.unwrap();
    assert_eq!(
        (after.version, after.out.taken.len()),
        (before.version, 0),
        "a refused call changes nothing"
    );
    assert!(locks.hold_record(SHOW, "h9").await.unwrap().is_none());
    // Others are not refused: another user, the same user on another show.
    assert!(matches!(
        hold(&locks, SHOW, "alice", "a1", "C1", T0 + 199).await,
        Ok(HoldOutcome::Held { .. })
    ));
    let other = "show-2";
    assert!(matches!(
        hold(&locks, other, "mallory", "m1", "A1", T0 + 199).await,
        Ok(HoldOutcome::Held { .. })
    ));
    // One interval after the burst, one more call passes, and only one.
    assert!(matches!(
        hold(&locks, SHOW, "mallory", "h10", "B1", T0 + 200).await,
        Ok(HoldOutcome::Held { .. })
    ));
    assert!(matches!(
        hold(&locks, SHOW, "mallory", "h11", "B2", T0 + 200).await,
        Err(Error::RateLimited { .. })
    ));
}

mod memory {
    #[tokio::test]
    async fn a_users_seat_changing_calls_are_limited_per_show_before_anything_changes() {
        let locks = super::common::ready(super::common::memory_locks_with(super::TIMES)).await;
        super::a_users_seat_changing_calls_are_limited_per_show_before_anything_changes(locks).await
    }
}

mod redis {
    #[tokio::test]
    async fn a_users_seat_changing_calls_are_limited_per_show_before_anything_changes() {
        let prefix = super::common::unique_prefix();
        let locks = super::common::ready(super::common::redis_locks_with(&prefix, super::TIMES).await).await;
        super::a_users_seat_changing_calls_are_limited_per_show_before_anything_changes(locks).await
    }
}

mod redis_cluster {
    #[tokio::test]
    async fn a_users_seat_changing_calls_are_limited_per_show_before_anything_changes() {
        let prefix = super::common::unique_prefix();
        let locks = super::common::ready(super::common::cluster_locks_with(&prefix, super::TIMES).await).await;
        super::a_users_seat_changing_calls_are_limited_per_show_before_anything_changes(locks).await
    }
}
