//! The seat scripts: `seats_hold`, `seats_release`, `seats_expire`,
//! `seats_extend_for_order`, `seats_book` / `seats_release_order`,
//! `seats_snapshot` and `seats_rebuild`; their retries, their refusal of a
//! show with no state, and the hash tag of every key they write.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use redis::AsyncCommands;
use showgate::error::Result;
use showgate::redis::reply::ReplyReader;

use crate::{Fixture, NOW, RETENTION, head};

#[tokio::test]
async fn seats_hold_locks_every_seat_records_the_hold_and_publishes_one_delta() -> Result<()> {
    let f = Fixture::new().await;
    let mut pubsub = f.client.get_async_pubsub().await.unwrap();
    pubsub.subscribe(&f.keys.channel).await.unwrap();
    let mut messages = pubsub.into_on_message();

    let mut reply = f
        .run(&f.scripts.hold, NOW, &["alice", "h1", "300000", "A1", "A2"])
        .await;
    let (expired, version, epoch) = head(&mut reply)?;
    assert_eq!((expired, version, epoch, reply.next_int()?), (0, 1, "e1".into(), 1));
    let answered: serde_json::Value = serde_json::from_str(&reply.next_text()?).unwrap();
    reply.finish()?;
    assert_eq!(answered, f.hold_json("h1").await, "the reply is the record as stored");
    assert_eq!(answered.get("p"), None, "no previous hold");

    let (seats, _, deadlines, version) = f.state().await;
    assert_eq!(
        seats,
        BTreeMap::from([("A1".into(), "H:h1".into()), ("A2".into(), "H:h1".into())])
    );
    assert_eq!(deadlines, vec![("h1".into(), (NOW + 300_000) as f64)]);
    assert_eq!(version, Some(1));
    let rec = f.hold_json("h1").await;
    assert_eq!(rec["u"], "alice");
    assert_eq!(rec["st"], "HELD");
    assert_eq!(rec["e"].as_i64(), Some(NOW + 300_000));
    let mut c = f.conn.clone();
    let active: String = c.hget(&f.keys.users, "alice").await.unwrap();
    assert_eq!(active, "h1");

    let msg = tokio::time::timeout(Duration::from_secs(5), messages.next())
        .await
        .unwrap()
        .unwrap();
    let delta: serde_json::Value = serde_json::from_str(&msg.get_payload::<String>().unwrap()).unwrap();
    assert_eq!(
        delta,
        serde_json::json!({"showId": "s1", "epoch": "e1", "version": 1, "changes": [
            {"seatId": "A1", "status": "HELD"}, {"seatId": "A2", "status": "HELD"}]})
    );
    Ok(())
}

#[tokio::test]
async fn seats_hold_with_a_conflict_writes_nothing_and_names_the_seats() -> Result<()> {
    let f = Fixture::new().await;
    f.run(&f.scripts.hold, NOW, &["alice", "h1", "300000", "A1"]).await;
    f.run(&f.scripts.hold, NOW, &["bob", "h2", "300000", "B1"]).await;
    let before = f.state().await;
    let mut reply = f.run(&f.scripts.hold, NOW, &["bob", "h3", "300000", "C1", "A1"]).await;
    head(&mut reply)?;
    assert_eq!(reply.next_int()?, 0);
    assert_eq!(reply.next_list()?, vec!["A1"]);
    assert_eq!(
        reply.remaining(),
        0,
        "only the seats asked for: O(seats asked), not O(show)"
    );
    reply.finish()?;
    assert_eq!(f.state().await, before, "a failed hold leaves every key as it was");
    Ok(())
}

#[tokio::test]
async fn seats_hold_by_the_same_user_moves_the_hold_in_one_step() -> Result<()> {
    let f = Fixture::new().await;
    f.run(&f.scripts.hold, NOW, &["alice", "h1", "300000", "A1", "A2"])
        .await;
    let mut reply = f
        .run(&f.scripts.hold, NOW + 5, &["alice", "h2", "300000", "A2", "A3"])
        .await;
    let (_, version, _) = head(&mut reply)?;
    let held = reply.next_int()?;
    let answered: serde_json::Value = serde_json::from_str(&reply.next_text()?).unwrap();
    reply.finish()?;
    assert_eq!((version, held, &answered["p"]), (2, 1, &serde_json::json!("h1")));
    let (seats, _, deadlines, _) = f.state().await;
    assert_eq!(
        seats,
        BTreeMap::from([("A2".into(), "H:h2".into()), ("A3".into(), "H:h2".into())])
    );
    assert_eq!(deadlines.len(), 1);
    assert_eq!(f.hold_json("h1").await["st"], "RELEASED");
    Ok(())
}

#[tokio::test]
async fn seats_expire_frees_due_holds_then_drops_their_tombstones_a_generation_at_a_time() -> Result<()> {
    let f = Fixture::new().await;
    f.run(&f.scripts.hold, NOW, &["alice", "h1", "1000", "A1"]).await;
    f.run(&f.scripts.hold, NOW, &["bob", "h2", "5000", "B1"]).await;
    let f = &f;
    let expire = |now: i64| async move {
        let mut reply = f.run(&f.scripts.expire, now, &[]).await;
        let (expired, version, _) = head(&mut reply).unwrap();
        let swept = (
            reply.next_int().unwrap(),
            reply.next_int().unwrap(),
            reply.next_int().unwrap(),
        );
        reply.finish().unwrap();
        (expired, version, swept)
    };
    assert_eq!(
        expire(NOW + 999).await,
        (0, 2, (0, NOW + 1000, 0)),
        "nothing is due before the deadline, which it names"
    );
    assert_eq!(
        expire(NOW + 1000).await,
        (1, 3, (0, NOW + 5000, 1)),
        "one expired: its tombstone is kept"
    );
    let (seats, holds, _, _) = f.state().await;
    assert_eq!(seats, BTreeMap::from([("B1".into(), "H:h2".into())]));
    assert!(!holds.contains_key("h1"), "the live records are the live holds'");
    let rec = f.hold_json("h1").await;
    assert_eq!(
        (
            rec["st"].as_str(),
            rec["t"].as_i64(),
            rec["u"].as_str(),
            rec["s"].clone()
        ),
        (
            Some("EXPIRED"),
            Some(NOW + 1000),
            Some("alice"),
            serde_json::json!(["A1"])
        )
    );
    let mut c = f.conn.clone();
    let active: Option<String> = c.hget(&f.keys.users, "alice").await.unwrap();
    assert_eq!(active, None);
    // bob's hold expires too; both tombstones are in the generation that
    // began with alice's, which retires one retention on and is dropped
    // one retention after that.
    assert_eq!(expire(NOW + 5000).await, (1, 4, (0, NOW + 1000 + RETENTION, 2)));
    assert_eq!(
        expire(NOW + 1000 + RETENTION).await,
        (0, 4, (0, NOW + 1000 + 2 * RETENTION, 2))
    );
    assert_eq!(
        f.hold_json("h2").await["st"].as_str(),
        Some("EXPIRED"),
        "retired, still read"
    );
    let retired: bool = c.exists(&f.keys.ended_old).await.unwrap();
    assert!(retired);
    assert_eq!(expire(NOW + 1000 + 2 * RETENTION).await, (0, 4, (0, -1, 0)));
    let left: i64 = c
        .exists(&[&f.keys.ended, &f.keys.ended_old, &f.keys.deadlines][..])
        .await
        .unwrap();
    assert_eq!(left, 0, "no tombstone, generation or deadline is left");
    Ok(())
}

#[tokio::test]
async fn seats_extend_for_order_moves_the_lock_to_the_order() -> Result<()> {
    let f = Fixture::new().await;
    f.run(&f.scripts.hold, NOW, &["alice", "h1", "300000", "A1"]).await;
    let mut reply = f
        .run(
            &f.scripts.extend_for_order,
            NOW + 10,
            &["alice", "h1", "o1", "600000", "60000"],
        )
        .await;
    head(&mut reply)?;
    assert_eq!(reply.next_text()?, "ATTACHED");
    assert_eq!(
        (reply.next_text()?, reply.next_int()?, reply.next_int()?),
        ("o1".into(), NOW + 600_010, NOW + 10)
    );
    reply.finish()?;
    let (seats, _, deadlines, version) = f.state().await;
    assert_eq!(seats["A1"], "O:o1");
    assert_eq!(
        deadlines,
        vec![("h1".into(), (NOW + 660_010) as f64)],
        "freed at order expiry plus grace"
    );
    assert_eq!(version, Some(1), "the seat stays HELD: no new version");
    let mut c = f.conn.clone();
    let active: Option<String> = c.hget(&f.keys.users, "alice").await.unwrap();
    assert_eq!(active, None, "an ordered hold is no longer the user's active hold");
    let mut reply = f
        .run(
            &f.scripts.extend_for_order,
            NOW + 20,
            &["alice", "h1", "o2", "600000", "60000"],
        )
        .await;
    head(&mut reply)?;
    assert_eq!(
        (reply.next_text()?, reply.next_text()?),
        ("EXISTING".into(), "o1".into())
    );
    let (_expires, _created) = (reply.next_int()?, reply.next_int()?);
    reply.finish()?;
    let mut reply = f
        .run(
            &f.scripts.extend_for_order,
            NOW + 20,
            &["mallory", "h1", "o3", "600000", "60000"],
        )
        .await;
    head(&mut reply)?;
    assert_eq!(reply.next_text()?, "NOT_FOUND");
    reply.finish()?;
    Ok(())
}

#[tokio::test]
async fn seats_book_and_release_order_touch_only_the_orders_seats() -> Result<()> {
    let f = Fixture::new().await;
    f.run(&f.scripts.hold, NOW, &["alice", "h1", "300000", "A1", "A2"])
        .await;
    f.run(&f.scripts.hold, NOW, &["bob", "h2", "300000", "B1"]).await;
    f.run(
        &f.scripts.extend_for_order,
        NOW,
        &["alice", "h1", "o1", "600000", "60000"],
    )
    .await;
    let mut reply = f.run(&f.scripts.book, NOW, &["o1", "h1", "10", "A1", "A2"]).await;
    let (_, version, _) = head(&mut reply)?;
    assert_eq!((version, reply.next_int()?), (3, 1));
    reply.finish()?;
    let (seats, _, deadlines, _) = f.state().await;
    assert_eq!((seats["A1"].as_str(), seats["A2"].as_str()), ("B:o1", "B:o1"));
    assert_eq!(
        deadlines.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        vec!["h2"]
    );
    // Releasing order o1 with a seat it never had leaves that seat alone.
    let mut reply = f
        .run(&f.scripts.release_order, NOW, &["o1", "h1", "20", "A1", "A2", "B1"])
        .await;
    let (_, version, _) = head(&mut reply)?;
    assert_eq!((version, reply.next_int()?), (4, 1));
    reply.finish()?;
    let (seats, _, _, _) = f.state().await;
    assert_eq!(seats, BTreeMap::from([("B1".into(), "H:h2".into())]));
    Ok(())
}

#[tokio::test]
async fn seats_release_answers_each_outcome() -> Result<()> {
    let f = Fixture::new().await;
    f.run(&f.scripts.hold, NOW, &["alice", "h1", "300000", "A1"]).await;
    let mut reply = f.run(&f.scripts.release, NOW, &["bob", "h1"]).await;
    head(&mut reply)?;
    assert_eq!(reply.next_text()?, "NOT_FOUND");
    reply.finish()?;
    let mut reply = f.run(&f.scripts.release, NOW, &["alice", "h1"]).await;
    let (_, version, _) = head(&mut reply)?;
    assert_eq!((reply.next_text()?, version), ("RELEASED".into(), 2));
    reply.finish()?;
    let mut reply = f.run(&f.scripts.release, NOW, &["alice", "h1"]).await;
    head(&mut reply)?;
    assert_eq!(
        (reply.next_text()?, reply.next_text()?),
        ("NOT_ACTIVE".into(), "RELEASED".into())
    );
    reply.finish()?;
    f.run(&f.scripts.hold, NOW, &["alice", "h2", "10", "A1"]).await;
    let mut reply = f.run(&f.scripts.release, NOW + 10, &["alice", "h2"]).await;
    let (expired, _, _) = head(&mut reply)?;
    let _outcome = reply.next_text()?;
    assert_eq!(
        (expired, reply.next_text()?),
        (1, "EXPIRED".into()),
        "expired by the in-line sweep"
    );
    reply.finish()?;
    Ok(())
}

#[tokio::test]
async fn seats_snapshot_sweeps_first_so_a_version_means_one_state() -> Result<()> {
    let f = Fixture::new().await;
    f.run(&f.scripts.hold, NOW, &["alice", "h1", "100", "A1"]).await;
    f.run(&f.scripts.hold, NOW, &["bob", "h2", "300000", "B1"]).await;
    let mut reply = f.run(&f.scripts.snapshot, NOW + 100, &[]).await;
    let (expired, version, _) = head(&mut reply)?;
    assert_eq!((expired, version), (1, 3));
    assert_eq!(reply.next_list()?, vec!["B1", "H:h2"]);
    reply.finish()?;
    Ok(())
}

#[tokio::test]
async fn every_key_a_script_writes_is_under_the_shows_hash_tag() {
    let f = Fixture::new().await;
    f.run(&f.scripts.hold, NOW, &["alice", "h1", "100", "A1"]).await;
    f.run(
        &f.scripts.extend_for_order,
        NOW,
        &["alice", "h1", "o1", "600000", "60000"],
    )
    .await;
    f.run(&f.scripts.book, NOW, &["o1", "h1", "1", "A1"]).await;
    f.run(&f.scripts.release_order, NOW, &["o1", "h1", "2", "A1"]).await;
    f.run(&f.scripts.expire, NOW + 1, &[]).await;
    f.run(&f.scripts.hold, NOW + 2, &["bob", "h2", "300000", "B1"]).await;
    let mut c = f.conn.clone();
    let keys: Vec<String> = c.keys(format!("{}*", f.prefix)).await.unwrap();
    assert_eq!(
        keys.len(),
        8,
        "seats, holds, users, deadlines, ended, version, epoch, stamps: {keys:?}"
    );
    let tag = format!("{}{{show:s1}}:", f.prefix);
    for k in &keys {
        assert!(k.starts_with(&tag), "{k} is outside the show's hash tag");
    }
}

#[tokio::test]
async fn every_seat_script_refuses_a_show_with_no_state() {
    let f = Fixture::bare().await;
    for (script, args) in [
        (&f.scripts.hold, vec!["alice", "h1", "300000", "A1"]),
        (&f.scripts.release, vec!["alice", "h1"]),
        (
            &f.scripts.extend_for_order,
            vec!["alice", "h1", "o1", "600000", "60000"],
        ),
        (&f.scripts.book, vec!["o1", "h1", "1", "A1"]),
        (&f.scripts.release_order, vec!["o1", "h1", "1", "A1"]),
        (&f.scripts.expire, vec!["10"]),
        (&f.scripts.snapshot, vec![]),
    ] {
        let e = f.run_err(script, NOW, &args).await;
        assert_eq!(e.code(), Some("NOSTATE"), "{e}");
    }
    let mut c = f.conn.clone();
    let keys: Vec<String> = c.keys(format!("{}*", f.prefix)).await.unwrap();
    assert!(keys.is_empty(), "a refusal writes nothing: {keys:?}");
}

#[tokio::test]
async fn seats_rebuild_puts_the_record_back_fenced_by_the_epoch_and_publishes_it() -> Result<()> {
    let f = Fixture::new().await;
    f.run(&f.scripts.hold, NOW, &["alice", "h1", "300000", "A1", "A2"])
        .await;
    f.run(&f.scripts.hold, NOW, &["bob", "h2", "300000", "B1"]).await;
    f.run(&f.scripts.book, NOW, &["gone", "hx", "5", "C1"]).await;
    let mut pubsub = f.client.get_async_pubsub().await.unwrap();
    pubsub.subscribe(&f.keys.channel).await.unwrap();
    let mut messages = pubsub.into_on_message();
    let record = serde_json::json!({
        "booked": [["A1", "o1", 7]],
        "pending": [{"o": "o2", "h": "h9", "u": "carol", "s": ["D1"], "c": NOW, "e": NOW + 600_000, "t": 8}],
        "asOf": 6,
    })
    .to_string();
    let mut stale = f
        .run(&f.scripts.rebuild, NOW + 1, &["not-e1", "e2", "60000", &record])
        .await;
    let (_, _, epoch) = head(&mut stale)?;
    assert_eq!(
        (epoch, stale.next_int()?),
        ("e1".into(), 0),
        "another epoch: nothing changes"
    );
    stale.finish()?;
    let mut reply = f
        .run(&f.scripts.rebuild, NOW + 1, &["e1", "e2", "60000", &record])
        .await;
    let (_, _, epoch) = head(&mut reply)?;
    assert_eq!((epoch, reply.next_int()?), ("e2".into(), 1));
    reply.finish()?;
    let (seats, _, deadlines, _) = f.state().await;
    assert_eq!(
        seats,
        BTreeMap::from([
            ("A1".into(), "B:o1".into()),
            ("B1".into(), "H:h2".into()),
            ("D1".into(), "O:o2".into()),
        ]),
        "the record wins; the hold on A1 is released whole; other holds stay; an unknown booking is freed"
    );
    assert_eq!(f.hold_json("h1").await["st"], "RELEASED");
    assert_eq!(f.hold_json("h9").await["o"], "o2");
    assert!(deadlines.contains(&("h9".into(), (NOW + 660_000) as f64)));
    let msg = tokio::time::timeout(Duration::from_secs(5), messages.next())
        .await
        .unwrap()
        .unwrap();
    let delta: serde_json::Value = serde_json::from_str(&msg.get_payload::<String>().unwrap()).unwrap();
    assert_eq!(delta["epoch"], "e2");
    // A late message about o1's older state changes nothing.
    let mut late = f.run(&f.scripts.release_order, NOW + 2, &["o1", "", "6", "A1"]).await;
    head(&mut late)?;
    assert_eq!(late.next_int()?, 0);
    late.finish()?;
    assert_eq!(f.state().await.0["A1"], "B:o1");
    Ok(())
}

#[tokio::test]
async fn a_script_run_twice_changes_nothing_the_second_time() -> Result<()> {
    let f = Fixture::new().await;
    f.run(&f.scripts.hold, NOW, &["alice", "h0", "300000", "A9"]).await;
    let mut first = f.run(&f.scripts.hold, NOW, &["alice", "h1", "300000", "A1"]).await;
    head(&mut first)?;
    let (_, first_record) = (first.next_int()?, first.next_text()?);
    first.finish()?;
    let before = f.state().await;
    let mut again = f.run(&f.scripts.hold, NOW + 1, &["alice", "h1", "300000", "A1"]).await;
    head(&mut again)?;
    let (held, again_record) = (again.next_int()?, again.next_text()?);
    again.finish()?;
    let answered: serde_json::Value = serde_json::from_str(&again_record).unwrap();
    assert_eq!((held, &answered["p"]), (1, &serde_json::json!("h0")));
    assert_eq!(first_record, again_record, "a retry answers the first run's record");
    assert_eq!(f.state().await, before, "a retried hold keeps the user's seats");
    f.run(
        &f.scripts.extend_for_order,
        NOW,
        &["alice", "h1", "o1", "600000", "60000"],
    )
    .await;
    let mut booked = f.run(&f.scripts.book, NOW, &["o1", "h1", "10", "A1"]).await;
    head(&mut booked)?;
    let booked_applied = booked.next_int()?;
    booked.finish()?;
    let before = f.state().await;
    let mut again = f.run(&f.scripts.book, NOW, &["o1", "h1", "10", "A1"]).await;
    head(&mut again)?;
    let again_applied = again.next_int()?;
    again.finish()?;
    assert_eq!((booked_applied, again_applied), (1, 0));
    assert_eq!(f.state().await, before);
    // The cancel (newer) frees the seat; the payment's book arriving late does not re-book it.
    f.run(&f.scripts.release_order, NOW, &["o1", "h1", "30", "A1"]).await;
    let mut late = f.run(&f.scripts.book, NOW, &["o1", "h1", "20", "A1"]).await;
    head(&mut late)?;
    assert_eq!(late.next_int()?, 0);
    late.finish()?;
    assert!(!f.state().await.0.contains_key("A1"));
    Ok(())
}

#[tokio::test]
async fn a_charged_call_spends_the_callers_budget_and_a_refused_one_writes_nothing() -> Result<()> {
    let f = Fixture::new().await;
    // A burst of two, then one call a second.
    let budget = Some(("mallory", 1_000_000, 2));
    for (i, seat) in ["A1", "A2"].into_iter().enumerate() {
        let id = format!("h{i}");
        let reply = f
            .invoke_as(&f.scripts.hold, NOW, &["mallory", &id, "300000", seat], budget)
            .await?;
        let mut reply = ReplyReader::new("seats_hold", reply)?;
        head(&mut reply)?;
        assert_eq!(reply.next_int()?, 1, "held");
        let rec: serde_json::Value = serde_json::from_str(&reply.next_text()?).unwrap();
        assert_eq!(rec["s"], serde_json::json!([seat]), "the budget's ARGV are not seats");
        reply.finish()?;
    }
    let before = f.state().await;
    let refused = f
        .invoke_as(&f.scripts.hold, NOW + 400, &["mallory", "h9", "300000", "B1"], budget)
        .await
        .expect_err("over budget");
    assert_eq!(refused.code(), Some("LIMITED"));
    assert_eq!(refused.detail(), Some("600"), "ms until a call passes");
    assert_eq!(f.state().await, before, "nothing written");
    let mut c = f.conn.clone();
    let at: i64 = redis::cmd("PEXPIRETIME")
        .arg(f.keys.budget("mallory"))
        .query_async(&mut c)
        .await?;
    assert_eq!(at, NOW + 2_000, "the budget key goes once the budget is full again");
    // Uncharged (the service's budget off), the same call passes.
    let mut reply = f
        .run(&f.scripts.hold, NOW + 400, &["mallory", "h9", "300000", "B1"])
        .await;
    head(&mut reply)?;
    assert_eq!(reply.next_int()?, 1);
    reply.next_text()?;
    reply.finish()?;
    Ok(())
}
