//! The waiting list's scripts: `waitlist_join`, `waitlist_leave`,
//! `waitlist_standing`, and the seat scripts that serve the list when seats
//! come back (`seats_release`, `seats_expire`).

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use redis::AsyncCommands;
use showgate::error::Result;

use crate::{Fixture, NOW, head};

/// One row "A" of three seats, as the waiting-list scripts keep a plan.
const PLAN_A3: &str = r#"[["A",3,""]]"#;

#[tokio::test]
async fn waitlist_join_refuses_while_seats_are_free_then_queues_in_order_under_the_tag() -> Result<()> {
    let f = Fixture::new().await;
    let join = |user: &'static str, q: &'static str| {
        let f = &f;
        async move {
            let mut reply = f
                .run(
                    &f.scripts.wait_join,
                    NOW,
                    &[user, q, &format!("offer-{user}"), "120000", PLAN_A3],
                )
                .await;
            head(&mut reply).map(|_| reply)
        }
    };
    // Three seats free: joining for two is refused, and nothing is written.
    let mut reply = join("carol", "2").await?;
    assert_eq!((reply.next_text()?, reply.next_int()?), ("SEATS_AVAILABLE".into(), 3));
    reply.finish()?;
    let mut c = f.conn.clone();
    assert_eq!(c.zcard::<_, u64>(&f.keys.waiters).await.unwrap(), 0);
    // Sold out: joins queue in order, with their quantity and offer id.
    f.run(&f.scripts.hold, NOW, &["alice", "h1", "300000", "A1", "A2", "A3"])
        .await;
    let mut reply = join("carol", "2").await?;
    assert_eq!(
        (
            reply.next_text()?,
            reply.next_text()?,
            reply.next_int()?,
            reply.next_int()?
        ),
        ("JOINED".into(), "WAITING".into(), 1, 2)
    );
    reply.finish()?;
    let mut reply = join("dave", "1").await?;
    let (outcome, _standing) = (reply.next_text()?, reply.next_text()?);
    assert_eq!((outcome, reply.next_int()?), ("JOINED".into(), 2));
    let _quantity = reply.next_int()?;
    reply.finish()?;
    let mut reply = join("carol", "3").await?;
    let (outcome, _standing) = (reply.next_text()?, reply.next_text()?);
    assert_eq!(
        (outcome, reply.next_int()?, reply.next_int()?),
        ("ALREADY".into(), 1, 2),
        "a second join keeps the place and the quantity"
    );
    reply.finish()?;
    let waiters: Vec<(String, f64)> = c.zrange_withscores(&f.keys.waiters, 0, -1).await.unwrap();
    assert_eq!(waiters, vec![("carol".into(), 1.0), ("dave".into(), 2.0)]);
    let list: HashMap<String, String> = c.hgetall(&f.keys.waitlist).await.unwrap();
    assert_eq!(list["w:carol"], "2 offer-carol");
    assert_eq!(list["w:dave"], "1 offer-dave");
    let by_quantity: Vec<(String, f64)> = c.zrange_withscores(&f.keys.waiters_by_quantity, 0, -1).await.unwrap();
    let band = 4_294_967_296.0;
    assert_eq!(
        by_quantity,
        vec![("dave".into(), band + 2.0), ("carol".into(), 2.0 * band + 1.0)],
        "by quantity, then by arrival"
    );
    assert_eq!((list["plan"].as_str(), list["ttl"].as_str()), (PLAN_A3, "120000"));
    for key in [&f.keys.waiters, &f.keys.waitlist, &f.keys.waiters_by_quantity] {
        assert!(key.contains("{show:s1}"), "{key} shares the show's hash tag");
    }
    Ok(())
}

#[tokio::test]
async fn a_release_hands_the_seats_to_the_first_waiter_that_fits_in_the_same_script() -> Result<()> {
    let f = Fixture::new().await;
    let mut pubsub = f.client.get_async_pubsub().await.unwrap();
    pubsub.subscribe(&f.keys.channel).await.unwrap();
    let mut messages = pubsub.into_on_message();
    f.run(&f.scripts.hold, NOW, &["alice", "h1", "300000", "A1"]).await;
    f.run(&f.scripts.hold, NOW, &["bob", "h2", "300000", "A2", "A3"]).await;
    for (user, q) in [("carol", "2"), ("dave", "1")] {
        f.run(
            &f.scripts.wait_join,
            NOW,
            &[user, q, &format!("offer-{user}"), "120000", PLAN_A3],
        )
        .await;
    }
    // One seat back: carol (two) cannot use it, dave (one) can.
    let mut reply = f.run(&f.scripts.release, NOW + 1, &["alice", "h1"]).await;
    let (_, version, _) = head(&mut reply)?;
    assert_eq!((version, reply.next_text()?), (3, "RELEASED".into()));
    reply.finish()?;
    let (seats, _, deadlines, _) = f.state().await;
    assert_eq!(seats["A1"], "H:offer-dave");
    assert!(deadlines.contains(&("offer-dave".into(), (NOW + 1 + 120_000) as f64)));
    let rec = f.hold_json("offer-dave").await;
    assert_eq!((rec["u"].as_str(), rec["w"].as_bool()), (Some("dave"), Some(true)));
    let mut reply = f.run(&f.scripts.wait_standing, NOW + 1, &["dave"]).await;
    head(&mut reply)?;
    assert_eq!(
        (
            reply.next_text()?,
            reply.next_text()?,
            reply.next_int()?,
            reply.next_list()?
        ),
        (
            "OFFERED".into(),
            "offer-dave".into(),
            NOW + 1 + 120_000,
            vec!["A1".to_owned()]
        )
    );
    reply.finish()?;
    let mut reply = f.run(&f.scripts.wait_standing, NOW + 1, &["carol"]).await;
    head(&mut reply)?;
    assert_eq!((reply.next_text()?, reply.next_int()?), ("WAITING".into(), 1));
    let _quantity = reply.next_int()?;
    reply.finish()?;
    let mut c = f.conn.clone();
    let list: HashMap<String, String> = c.hgetall(&f.keys.waitlist).await.unwrap();
    assert_eq!(list.get("w:dave"), None);
    assert_eq!(list["made"].as_str(), "1");
    let left: Vec<String> = c.zrange(&f.keys.waiters_by_quantity, 0, -1).await.unwrap();
    assert_eq!(left, vec!["carol".to_owned()], "dave left the index too");
    assert_eq!(list["o:dave"], "offer-dave");
    // The deltas: the holds, then A1 going from alice to dave as HELD,
    // never AVAILABLE.
    let mut deltas = Vec::new();
    for _ in 0..3 {
        let msg = tokio::time::timeout(Duration::from_secs(5), messages.next())
            .await
            .unwrap()
            .unwrap();
        deltas.push(serde_json::from_str::<serde_json::Value>(&msg.get_payload::<String>().unwrap()).unwrap());
    }
    assert_eq!(
        deltas[2]["changes"],
        serde_json::json!([{"seatId": "A1", "status": "HELD"}])
    );
    Ok(())
}

#[tokio::test]
async fn waitlist_leave_gives_an_offer_back_and_counts_it_declined() -> Result<()> {
    let f = Fixture::new().await;
    f.run(&f.scripts.hold, NOW, &["alice", "h1", "300000", "A1", "A2", "A3"])
        .await;
    f.run(
        &f.scripts.wait_join,
        NOW,
        &["dave", "1", "offer-dave", "120000", PLAN_A3],
    )
    .await;
    f.run(
        &f.scripts.wait_join,
        NOW,
        &["erin", "3", "offer-erin", "120000", PLAN_A3],
    )
    .await;
    f.run(&f.scripts.release, NOW + 1, &["alice", "h1"]).await;
    // Dave's offer (one seat); erin waits for three, two are free.
    let mut reply = f.run(&f.scripts.wait_leave, NOW + 2, &["dave"]).await;
    head(&mut reply)?;
    assert_eq!(
        (reply.next_text()?, reply.next_text()?),
        ("OFFERED".into(), "offer-dave".into())
    );
    let (_expires, _seats) = (reply.next_int()?, reply.next_list()?);
    reply.finish()?;
    // Now all three are free: erin's offer, made in the same script.
    let (seats, _, _, _) = f.state().await;
    assert_eq!(seats.len(), 3);
    assert!(seats.values().all(|o| o == "H:offer-erin"), "{seats:?}");
    let mut reply = f.run(&f.scripts.wait_leave, NOW + 2, &["dave"]).await;
    head(&mut reply)?;
    assert_eq!(reply.next_text()?, "NONE", "dave is no longer on the list");
    reply.finish()?;
    let mut reply = f.run(&f.scripts.wait_standing, NOW + 2, &["dave"]).await;
    head(&mut reply)?;
    let (standing, _hold) = (reply.next_text()?, reply.next_text()?);
    assert_eq!((standing, reply.next_text()?), ("ENDED".into(), "RELEASED".into()));
    let (_order, _seats) = (reply.next_text()?, reply.next_list()?);
    reply.finish()?;
    let mut c = f.conn.clone();
    let counts: Vec<Option<u64>> = redis::cmd("HMGET")
        .arg(&f.keys.waitlist)
        .arg(&["made", "declined", "expired"][..])
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(counts, vec![Some(2), Some(1), None]);
    Ok(())
}

#[tokio::test]
async fn seats_expire_with_waiters_frees_a_bounded_turn_and_says_more_are_due() -> Result<()> {
    const PLAN_A20: &str = r#"[["A",20,""]]"#;
    for waiting in [true, false] {
        let f = Fixture::new().await;
        for k in 1..=20 {
            let (user, hold, seat) = (format!("u{k}"), format!("h{k}"), format!("A{k}"));
            f.run(&f.scripts.hold, NOW, &[&user, &hold, "1000", &seat]).await;
        }
        if waiting {
            f.run(
                &f.scripts.wait_join,
                NOW,
                &["carol", "1", "offer-carol", "120000", PLAN_A20],
            )
            .await;
        }
        let mut reply = f.run(&f.scripts.expire, NOW + 1000, &[]).await;
        let (expired, _, _) = head(&mut reply)?;
        let (more, _next, _kept) = (reply.next_int()?, reply.next_int()?, reply.next_int()?);
        reply.finish()?;
        if waiting {
            assert_eq!((expired, more), (16, 1), "16 seats a turn, more due");
            let rec = f.hold_json("offer-carol").await;
            assert_eq!(
                rec["s"].as_array().map(Vec::len),
                Some(1),
                "carol's offer in the first turn"
            );
            // Carol was the only waiter: the next call frees the rest at once.
            let mut reply = f.run(&f.scripts.expire, NOW + 1000, &[]).await;
            let (expired, _, _) = head(&mut reply)?;
            let (more, _next, _kept) = (reply.next_int()?, reply.next_int()?, reply.next_int()?);
            reply.finish()?;
            assert_eq!((expired, more), (4, 0));
        } else {
            assert_eq!((expired, more), (20, 0), "no list: no budget");
        }
        let (seats, _, deadlines, _) = f.state().await;
        assert_eq!(seats.len(), usize::from(waiting), "only the offer holds a seat");
        assert_eq!(deadlines.len(), usize::from(waiting));
    }
    Ok(())
}
