//! The waiting room's scripts (`wr_*`), with their KEYS from `RoomKeys`,
//! as the engine (`src/waitroom/redis.rs`) passes them.

use std::time::Duration;

use futures::StreamExt;
use redis::{AsyncCommands, Script, Value};
use showgate::error::Result;
use showgate::redis::keys::Keys;
use showgate::redis::reply::ReplyReader;
use showgate::redis::scripts::RoomScripts;

use crate::{Fixture, NOW};

async fn room_run(f: &Fixture, script: &Script, keys: &[&str], args: &[&str]) -> Value {
    let mut inv = script.prepare_invoke();
    for k in keys {
        inv.key(*k);
    }
    for a in args {
        inv.arg(*a);
    }
    let mut conn = f.conn.clone();
    inv.invoke_async(&mut conn).await.unwrap()
}

/// The answer of a `wr_join.lua` call for one shopper: the reply must hold
/// exactly one.
fn join_one(v: Value) -> Result<ReplyReader> {
    let mut answers = ReplyReader::new("wr_join", v)?;
    let one = answers.next_reader()?;
    answers.finish()?;
    Ok(one)
}

async fn redis_now_ms(f: &Fixture) -> i64 {
    let mut c = f.conn.clone();
    let (s, us): (i64, i64) = redis::cmd("TIME").query_async(&mut c).await.unwrap();
    s * 1000 + us / 1000
}

#[tokio::test]
async fn wr_join_takes_many_shoppers_in_one_call_in_order() -> Result<()> {
    let f = Fixture::new().await;
    let (s, k) = (RoomScripts::load(), Keys::new(f.prefix.clone()).room("s1"));
    let now = NOW.to_string();
    let args = [
        "ann", &now, "1", &now, "0", "0", // joins
        "ben", &now, "0", &now, "0", "0", // only asks: not joined
        "cat", &now, "1", &now, "0", "0", // joins
        "ann", &now, "1", &now, "0", "0", // again: the same place
    ];
    let mut answers = ReplyReader::new("wr_join", room_run(&f, &s.join, &k.join_keys(), &args).await)?;
    let mut kinds: Vec<(String, Option<i64>)> = Vec::new();
    while answers.remaining() > 0 {
        let mut a = answers.next_reader()?;
        let kind = a.next_text()?;
        // {"QUEUED", score, position, queueLength, eventSeq} | {"NONE", eventSeq}
        let position = match kind.as_str() {
            "QUEUED" => {
                let (_score, position, _length) = (a.next_text()?, a.next_int()?, a.next_int()?);
                Some(position)
            }
            _ => None,
        };
        let _seq = a.next_int()?;
        a.finish()?;
        kinds.push((kind, position));
    }
    answers.finish()?;
    assert_eq!(
        kinds,
        vec![
            ("QUEUED".into(), Some(1)),
            ("NONE".into(), None),
            ("QUEUED".into(), Some(2)),
            ("QUEUED".into(), Some(1)),
        ]
    );
    let mut c = f.conn.clone();
    let queue: Vec<(String, f64)> = c.zrange_withscores(&k.queue, 0, -1).await.unwrap();
    assert_eq!(queue, vec![("ann".into(), 1.0), ("cat".into(), 2.0)]);
    let joined: i64 = c.hget(&k.stats, "joined").await.unwrap();
    assert_eq!(joined, 2);
    Ok(())
}

#[tokio::test]
async fn wr_join_queues_once_and_answers_each_standing() -> Result<()> {
    let f = Fixture::new().await;
    let (s, k) = (RoomScripts::load(), Keys::new(f.prefix.clone()).room("s1"));
    let keys = k.join_keys();
    let now = NOW.to_string();
    let mut r = join_one(room_run(&f, &s.join, &keys, &["alice", &now, "1", &now, "0", "0"]).await)?;
    assert_eq!(
        (
            r.next_text()?,
            r.next_text()?,
            r.next_int()?,
            r.next_int()?,
            r.next_int()?
        ),
        ("QUEUED".into(), "1".into(), 1, 1, 0)
    );
    r.finish()?;
    let mut r = join_one(room_run(&f, &s.join, &keys, &["alice", &now, "1", &now, "0", "0"]).await)?;
    let (_kind, _score) = (r.next_text()?, r.next_text()?);
    assert_eq!(r.next_int()?, 1, "joining again keeps the place");
    let (_length, _seq) = (r.next_int()?, r.next_int()?);
    r.finish()?;
    let mut r = join_one(room_run(&f, &s.join, &keys, &["bob", &now, "0", &now, "0", "0"]).await)?;
    assert_eq!(r.next_text()?, "NONE", "a read does not join");
    let _seq = r.next_int()?;
    r.finish()?;
    // Before opensAt by Redis TIME, a RANDOM room's joiner enters the
    // pre-queue, whatever `now` the node passes.
    let mut c = f.conn.clone();
    let opens = redis_now_ms(&f).await + 60_000;
    let _: () = c
        .hset_multiple(
            &k.config,
            &[("opensAt", opens.to_string()), ("preQueue", "RANDOM".into())],
        )
        .await
        .unwrap();
    let late_node = (opens + 1).to_string();
    let mut r = join_one(room_run(&f, &s.join, &keys, &["carol", &late_node, "1", &now, "0", "0"]).await)?;
    assert_eq!((r.next_text()?, r.next_int()?), ("PREQUEUED".into(), 1));
    let _seq = r.next_int()?;
    r.finish()?;
    let joined: i64 = c.hget(&k.stats, "joined").await.unwrap();
    assert_eq!(joined, 2);
    let _: () = c.zadd(&k.admitted, "dave", NOW + 1000).await.unwrap();
    let mut r = join_one(room_run(&f, &s.join, &keys, &["dave", &now, "1", &now, "0", "0"]).await)?;
    let waiting: i64 = c.zcard(&k.queue).await.unwrap();
    let (kind, expires, _seq) = (r.next_text()?, r.next_text()?, r.next_int()?);
    assert_eq!(
        (kind, expires, r.next_int()?),
        ("ADMITTED".into(), (NOW + 1000).to_string(), waiting)
    );
    r.finish()?;
    Ok(())
}

#[tokio::test]
async fn wr_admit_is_fenced_by_the_lease_and_publishes_one_tick() -> Result<()> {
    let f = Fixture::new().await;
    let (s, k) = (RoomScripts::load(), Keys::new(f.prefix.clone()).room("s1"));
    let now = NOW.to_string();
    for u in ["a", "b", "c"] {
        room_run(&f, &s.join, &k.join_keys(), &[u, &now, "1", &now, "0", "0"]).await;
    }
    let token: String =
        redis::from_redis_value(room_run(&f, &s.lease, &k.lease_keys(), &["n1", "5000"]).await).unwrap();
    assert_eq!(token, "n1/1");
    let other: Option<String> =
        redis::from_redis_value(room_run(&f, &s.lease, &k.lease_keys(), &["n2", "5000"]).await).unwrap();
    assert_eq!(other, None);
    let mut pubsub = f.client.get_async_pubsub().await.unwrap();
    pubsub.subscribe(&k.channel).await.unwrap();
    let mut messages = pubsub.into_on_message();
    let admit_keys = k.admit_keys();
    let args = |tok: &'static str| [tok, "", "2", "60000", "100", "10", "0", "2.5", "", "PUBLISH", "tick-1"];
    let mut stale = args("n2/7");
    stale[1] = &now;
    stale[8] = &k.channel;
    let v = room_run(&f, &s.admit, &admit_keys, &stale).await;
    assert_eq!(
        v,
        Value::Array(vec![Value::Int(-1)]),
        "a token that is not the lease's admits nobody"
    );
    let mut good = args("n1/1");
    good[1] = &now;
    good[8] = &k.channel;
    // {1, admitted, queueLength, active, available, soldOut, eventSeq, userIds...}
    let mut r = ReplyReader::new("wr_admit", room_run(&f, &s.admit, &admit_keys, &good).await)?;
    let _leader = r.next_int()?;
    let (admitted, queue_length, active) = (r.next_int()?, r.next_int()?, r.next_int()?);
    let (_available, _sold_out) = (r.next_int()?, r.next_int()?);
    assert_eq!((admitted, queue_length, active, r.next_int()?), (2, 1, 2, 1));
    assert_eq!((r.next_text()?, r.next_text()?), ("a".into(), "b".into()));
    r.finish()?;
    let msg = tokio::time::timeout(Duration::from_secs(5), messages.next())
        .await
        .unwrap()
        .unwrap();
    let event: serde_json::Value = serde_json::from_str(&msg.get_payload::<String>().unwrap()).unwrap();
    assert_eq!(event["type"], "tick");
    assert_eq!(event["admitted"], serde_json::json!(["a", "b"]));
    assert_eq!(
        (
            event["queueLength"].as_u64(),
            event["active"].as_u64(),
            event["seq"].as_u64()
        ),
        (Some(1), Some(2), Some(1))
    );
    let mut c = f.conn.clone();
    let exp: f64 = c.zscore(&k.admitted, "a").await.unwrap();
    assert_eq!(exp as i64, NOW + 60_000);
    // The same tick again (a retry after a timeout) admits nobody.
    let mut again = ReplyReader::new("wr_admit", room_run(&f, &s.admit, &admit_keys, &good).await)?;
    let _leader = again.next_int()?;
    let (admitted, queue_length, _active) = (again.next_int()?, again.next_int()?, again.next_int()?);
    let (_available, _sold_out) = (again.next_int()?, again.next_int()?);
    assert_eq!((admitted, queue_length, again.next_int()?), (0, 1, 1));
    again.finish()?;
    let queued: u64 = c.zcard(&k.queue).await.unwrap();
    assert_eq!(queued, 1, "c is still waiting");
    Ok(())
}

#[tokio::test]
async fn wr_leave_and_the_opening_move_scores_and_say_so() -> Result<()> {
    let f = Fixture::new().await;
    let (s, k) = (RoomScripts::load(), Keys::new(f.prefix.clone()).room("s1"));
    let keys = k.join_keys();
    let now = NOW.to_string();
    let mut c = f.conn.clone();
    room_run(&f, &s.join, &keys, &["a", &now, "1", &now, "0", "0"]).await;
    room_run(&f, &s.join, &keys, &["b", &now, "1", &now, "0", "0"]).await;
    // "p" and "q" join before the opening (opensAt 1 s ahead of Redis TIME).
    let opens = redis_now_ms(&f).await + 1_000;
    let _: () = c
        .hset_multiple(
            &k.config,
            &[("opensAt", opens.to_string()), ("preQueue", "RANDOM".into())],
        )
        .await
        .unwrap();
    room_run(&f, &s.join, &keys, &["p", &now, "1", &now, "0", "0"]).await;
    room_run(&f, &s.join, &keys, &["q", &now, "1", &now, "0", "0"]).await;
    let n: i64 = redis::from_redis_value(
        room_run(
            &f,
            &s.leave,
            &k.leave_keys(),
            &[&k.channel, "PUBLISH", "left", "0", "0", "a"],
        )
        .await,
    )
    .unwrap();
    assert_eq!(n, 1);
    let _: () = c.set(&k.lease, "node-1/1").await.unwrap();
    let begin_keys = k.open_begin_keys();
    let mut r = ReplyReader::new(
        "wr_open_begin",
        room_run(&f, &s.open_begin, &begin_keys, &["node-1/1"]).await,
    )?;
    assert_eq!(r.next_text()?, "WAIT", "not before opensAt by Redis TIME");
    let _opens_at = r.next_text()?;
    r.finish()?;
    let mut r = ReplyReader::new(
        "wr_open_begin",
        room_run(&f, &s.open_begin, &begin_keys, &["node-2/9"]).await,
    )?;
    assert_eq!(r.next_text()?, "STALE");
    r.finish()?;
    tokio::time::sleep(std::time::Duration::from_millis(
        (opens - redis_now_ms(&f).await).max(0) as u64 + 20,
    ))
    .await;
    // The first join after the opening begins it: "r" queues behind the block.
    let mut r = join_one(room_run(&f, &s.join, &keys, &["r", &now, "1", &now, "0", "0"]).await)?;
    assert_eq!(
        (r.next_text()?, r.next_text()?),
        ("QUEUED".into(), "5".into()),
        "arrivals 1-2, block 3-4, then r"
    );
    let (_position, _length, _seq) = (r.next_int()?, r.next_int()?, r.next_int()?);
    r.finish()?;
    let mut r = ReplyReader::new(
        "wr_open_begin",
        room_run(&f, &s.open_begin, &begin_keys, &["node-1/1"]).await,
    )?;
    assert_eq!(
        (r.next_text()?, r.next_text()?, r.next_int()?),
        ("OPEN".into(), "3".into(), 2)
    );
    r.finish()?;
    let entrants: Vec<String> = c.smembers(&k.entrants).await.unwrap();
    assert_eq!(entrants.len(), 2);
    let open_keys = k.open_keys();
    let stale = room_run(
        &f,
        &s.open,
        &open_keys,
        &["node-2/9", "3", &k.channel, "PUBLISH", "0", "q"],
    )
    .await;
    assert_eq!(
        stale,
        Value::Array(vec![Value::Int(-1)]),
        "a stale leader places nobody"
    );
    let r = room_run(
        &f,
        &s.open,
        &open_keys,
        &["node-1/1", "3", &k.channel, "PUBLISH", "0", "q", "1", "p"],
    )
    .await;
    assert_eq!(r, Value::Array(vec![Value::Int(2), Value::Int(0)]));
    let again = room_run(
        &f,
        &s.open,
        &open_keys,
        &["node-1/1", "3", &k.channel, "PUBLISH", "0", "q", "1", "p"],
    )
    .await;
    assert_eq!(
        again,
        Value::Array(vec![Value::Int(0), Value::Int(0)]),
        "a retry moves nobody twice"
    );
    // {eventSeq, queueLength, score1 or false, rank1 or false, ...}
    let mut r = ReplyReader::new(
        "wr_ranks",
        room_run(&f, &s.ranks, &k.ranks_keys(), &["b", "q", "p", "r", "a"]).await,
    )?;
    assert_eq!(
        (r.next_int()?, r.next_int()?),
        (2, 4),
        "two events (a left, the block placed), four queued"
    );
    let mut ranks = Vec::new();
    for _ in 0..4 {
        let _score = r.next_text()?;
        ranks.push(r.next_int()?);
    }
    assert_eq!(ranks, vec![0, 1, 2, 3], "b, then the block in lottery order, then r");
    assert_eq!((r.next_value()?, r.next_value()?), (Value::Nil, Value::Nil));
    r.finish()?;

    // A straggler (in the pre-queue, not among the entrants: only a clock
    // going back could make one) is placed by its own join, behind.
    let _: () = c.sadd(&k.pre, "z").await.unwrap();
    let mut r = join_one(room_run(&f, &s.join, &keys, &["z", &now, "0", &now, "0", "0"]).await)?;
    let (kind, _score) = (r.next_text()?, r.next_text()?);
    assert_eq!((kind, r.next_int()?), ("QUEUED".into(), 5));
    let (_length, _seq) = (r.next_int()?, r.next_int()?);
    r.finish()?;
    Ok(())
}

#[tokio::test]
async fn wr_join_spends_a_challenge_only_with_the_place_it_makes() -> Result<()> {
    let f = Fixture::new().await;
    let (s, k) = (RoomScripts::load(), Keys::new(f.prefix.clone()).room("s1"));
    let spent = k.spent_key("jti-1");
    let mut keys: Vec<&str> = k.join_keys().to_vec();
    keys.push(&spent);
    let now = NOW.to_string();
    let until = (redis_now_ms(&f).await + 60_000).to_string();
    // A join that makes a place spends the challenge (KEYS[10]) in its step.
    let mut r = join_one(room_run(&f, &s.join, &keys, &["amy", &now, "1", &now, "10", &until]).await)?;
    assert_eq!(r.next_text()?, "QUEUED");
    let mut c = f.conn.clone();
    let (owner, ttl): (Option<String>, i64) = redis::pipe()
        .get(&spent)
        .pttl(&spent)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(owner.as_deref(), Some("amy"));
    assert!(ttl > 0 && ttl <= 60_000, "it lasts as long as the challenge: {ttl}");
    // Out of the queue, the spent challenge makes no place again.
    room_run(
        &f,
        &s.leave,
        &k.leave_keys(),
        &[&k.channel, "PUBLISH", "left", "0", "0", "amy"],
    )
    .await;
    let mut r = join_one(room_run(&f, &s.join, &keys, &["amy", &now, "1", &now, "10", &until]).await)?;
    assert_eq!(r.next_text()?, "NONE");
    // A shopper already placed joins again without spending one.
    let other = k.spent_key("jti-2");
    let keys2 = [k.join_keys().as_slice(), &[other.as_str()]].concat();
    room_run(&f, &s.join, &keys2, &["bo", &now, "1", &now, "0", "0"]).await;
    let mut r = join_one(room_run(&f, &s.join, &keys2, &["bo", &now, "1", &now, "10", &until]).await)?;
    assert_eq!(r.next_text()?, "QUEUED");
    let exists: bool = redis::cmd("EXISTS").arg(&other).query_async(&mut c).await.unwrap();
    assert!(!exists, "a join that made no new place spent nothing");
    Ok(())
}

#[tokio::test]
async fn lease_release_drops_only_the_callers_lease() -> Result<()> {
    let f = Fixture::bare().await;
    let scripts = RoomScripts::load();
    let lease = Keys::new(f.prefix.clone()).room("s1").lease;
    let mut c = f.conn.clone();
    let _: () = c.set(&lease, "node-1/7").await.unwrap();
    let conn = f.conn.clone();
    let released = |prefix: &'static str| {
        let (lease, mut c) = (lease.clone(), conn.clone());
        let script = scripts.lease_release.clone();
        async move {
            let n: i64 = script.key(lease).arg(prefix).invoke_async(&mut c).await.unwrap();
            n
        }
    };
    assert_eq!(released("node-2/").await, 0, "another node's release changes nothing");
    let held: Option<String> = c.get(&lease).await.unwrap();
    assert_eq!(held.as_deref(), Some("node-1/7"));
    assert_eq!(released("node-1/").await, 1);
    let held: Option<String> = c.get(&lease).await.unwrap();
    assert_eq!(held, None, "handed back");
    assert_eq!(released("node-1/").await, 0, "nothing to release twice");
    // The sweeper's lease holds the node id itself.
    let _: () = c.set(&lease, "node-1").await.unwrap();
    assert_eq!(released("node-1").await, 1);
    Ok(())
}

#[tokio::test]
async fn wr_admit_keeps_the_outlook_and_splices_it_into_its_event_and_counts_lapsed_admissions() -> Result<()> {
    let f = Fixture::new().await;
    let (s, k) = (RoomScripts::load(), Keys::new(f.prefix.clone()).room("s1"));
    let now = NOW.to_string();
    room_run(&f, &s.join, &k.join_keys(), &["a", &now, "1", &now, "0", "0"]).await;
    let _: Value = room_run(&f, &s.lease, &k.lease_keys(), &["n1", "5000"]).await;
    let mut pubsub = f.client.get_async_pubsub().await.unwrap();
    pubsub.subscribe(&k.channel).await.unwrap();
    let mut messages = pubsub.into_on_message();
    let outlook = r#"{"at":1,"free":5,"dist":[0.5,0.5]}"#;
    let args = [
        "n1/1", &now, "1", "1000", "100", "10", "0", "1", &k.channel, "PUBLISH", "t1", outlook,
    ];
    room_run(&f, &s.admit, &k.admit_keys(), &args).await;
    let msg = tokio::time::timeout(Duration::from_secs(5), messages.next())
        .await
        .unwrap()
        .unwrap();
    let event: serde_json::Value = serde_json::from_str(&msg.get_payload::<String>().unwrap()).unwrap();
    assert_eq!(event["type"], "tick");
    assert_eq!(event["outlook"]["dist"], serde_json::json!([0.5, 0.5]));
    let mut c = f.conn.clone();
    let kept: String = c.hget(&k.config, "outlook").await.unwrap();
    assert_eq!(kept, outlook);
    // a's admission (1 s) lapses: the next tick counts a shopper who bought nothing.
    let later = (NOW + 2_000).to_string();
    let args = [
        "n1/1", &later, "1", "1000", "100", "10", "0", "1", &k.channel, "PUBLISH", "t2", "",
    ];
    room_run(&f, &s.admit, &k.admit_keys(), &args).await;
    let walked: u64 = c.hget(&k.stats, "walked").await.unwrap();
    assert_eq!(walked, 1);
    let kept: String = c.hget(&k.config, "outlook").await.unwrap();
    assert_eq!(kept, outlook, "a tick without an estimate keeps the last");
    Ok(())
}

#[tokio::test]
async fn wr_settle_counts_an_admission_once_as_bought_or_walked() -> Result<()> {
    let f = Fixture::new().await;
    let (s, k) = (RoomScripts::load(), Keys::new(f.prefix.clone()).room("s1"));
    let mut c = f.conn.clone();
    let expires = NOW + 600_000;
    let _: () = c.zadd(&k.admitted, "ann", expires).await.unwrap();
    let _: () = c.zadd(&k.admitted, "ben", expires).await.unwrap();
    let at = (NOW + 7_000).to_string();
    let bounds = ["1000", "2000", "4000", "8000", "16000"];
    let args = |user: &'static str, seats: &'static str| {
        let mut a = vec![user, seats, at.as_str(), "600000"];
        a.extend(bounds);
        a
    };
    // A confirmation retried: counted once.
    for _ in 0..2 {
        room_run(&f, &s.settle, &k.settle_keys(), &args("ann", "4")).await;
    }
    let first: i64 =
        redis::from_redis_value(room_run(&f, &s.settle, &k.settle_keys(), &args("ben", "0")).await).unwrap();
    let again: i64 =
        redis::from_redis_value(room_run(&f, &s.settle, &k.settle_keys(), &args("ben", "0")).await).unwrap();
    assert_eq!((first, again), (1, 0), "only an admission still held counts");
    let (bought, buy_ms, bucket, walked): (Option<u64>, Option<u64>, Option<u64>, Option<u64>) = redis::pipe()
        .hget(&k.stats, "bought:4")
        .hget(&k.stats, "buyMs")
        .hget(&k.stats, "buyIn:3")
        .hget(&k.stats, "walked")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(
        (bought, buy_ms, bucket, walked),
        (Some(1), Some(7_000), Some(1), Some(1)),
        "7 s falls in [4 s, 8 s), the fourth bucket"
    );
    let left: u64 = c.zcard(&k.admitted).await.unwrap();
    assert_eq!(left, 0);
    Ok(())
}

#[tokio::test]
async fn wr_observe_reads_seats_admissions_and_the_funnel_at_one_moment() -> Result<()> {
    let f = Fixture::new().await;
    let (s, k) = (RoomScripts::load(), Keys::new(f.prefix.clone()).room("s1"));
    let mut c = f.conn.clone();
    let _: () = redis::pipe()
        .hset(&k.seats, "A1", "B:o1")
        .hset(&k.seats, "A2", "B:o1")
        .hset(&k.seats, "A3", "H:h1")
        .hset(&k.seats, "A4", "O:o2")
        .zadd(&k.admitted, "old", NOW + 10_000)
        .zadd(&k.admitted, "new", NOW + 500_000)
        .zadd(&k.admitted, "gone", NOW - 1)
        .sadd(&k.held, "old")
        .sadd(&k.ordered, "new")
        .zadd(&k.queue, "q", 1)
        .hset(&k.stats, "bought:2", 3)
        .hset(&k.stats, "walked", 4)
        .query_async(&mut c)
        .await
        .unwrap();
    let now = NOW.to_string();
    // Admissions of 600 s: "old" was admitted 590 s ago and holds seats,
    // "new" 100 s ago and holds none; "gone" has lapsed. Buckets [0, 200 s),
    // [200 s, 400 s), [400 s, ∞): only "new" is still deciding.
    let mut r = ReplyReader::new(
        "wr_observe",
        room_run(&f, &s.observe, &k.observe_keys(), &[&now, "600000", "200000", "400000"]).await,
    )?;
    // {booked, held, heldShoppers, orderedShoppers, queueLength, per bucket..., "stats", ...}
    let head: Vec<i64> = (0..8).map(|_| r.next_int()).collect::<Result<_>>()?;
    assert_eq!(head, [2, 2, 1, 1, 1, 1, 0, 0]);
    assert_eq!(r.next_text()?, "stats");
    let mut stats = std::collections::BTreeMap::new();
    while r.remaining() > 0 {
        stats.insert(r.next_text()?, r.next_text()?);
    }
    assert_eq!(stats.get("bought:2").map(String::as_str), Some("3"));
    assert_eq!(stats.get("walked").map(String::as_str), Some("4"));
    Ok(())
}
