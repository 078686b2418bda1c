//! Each seat script run directly against real Redis: what it writes, what it
//! answers, what it publishes, per the KEYS/ARGV header of its file.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, Script, Value};
use showgate::redis::keys::{Keys, ShowKeys};
use showgate::redis::scripts::Scripts;

const NOW: i64 = 1_800_000_000_000;
const RETENTION: i64 = 3_600_000;
const EMPTY_RECORD: &str = r#"{"booked": [], "pending": []}"#;

struct Fixture {
    conn: MultiplexedConnection,
    client: redis::Client,
    keys: ShowKeys,
    prefix: String,
    scripts: Scripts,
}

impl Fixture {
    /// A show whose (empty) state has been built under epoch "e1".
    async fn new() -> Self {
        let f = Self::bare().await;
        let reply = f.run(&f.scripts.rebuild, 0, &["", "e1", "60000", EMPTY_RECORD]).await;
        assert_eq!((text(&reply[2]), int(&reply[3])), ("e1".into(), 1));
        f
    }

    /// A show with no state at all (never built, or lost by Redis).
    async fn bare() -> Self {
        let client = redis::Client::open(common::redis_url()).unwrap();
        let conn = client.get_multiplexed_async_connection().await.unwrap();
        let prefix = common::unique_prefix();
        Self {
            keys: Keys::new(prefix.clone()).show("s1"),
            conn,
            client,
            prefix,
            scripts: Scripts::load(),
        }
    }

    /// Runs a script and answers its error, which it must give.
    async fn run_err(&self, script: &Script, now: i64, args: &[&str]) -> redis::RedisError {
        let mut inv = script.prepare_invoke();
        for k in self.keys.script_keys() {
            inv.key(k);
        }
        inv.arg("s1")
            .arg(&self.keys.channel)
            .arg("PUBLISH")
            .arg(now)
            .arg(RETENTION);
        for a in args {
            inv.arg(*a);
        }
        let mut conn = self.conn.clone();
        inv.invoke_async::<Value>(&mut conn)
            .await
            .expect_err("the script refuses")
    }

    async fn run(&self, script: &Script, now: i64, args: &[&str]) -> Vec<Value> {
        let mut inv = script.prepare_invoke();
        for k in self.keys.script_keys() {
            inv.key(k);
        }
        inv.arg("s1")
            .arg(&self.keys.channel)
            .arg("PUBLISH")
            .arg(now)
            .arg(RETENTION);
        for a in args {
            inv.arg(*a);
        }
        let mut conn = self.conn.clone();
        match inv.invoke_async(&mut conn).await.unwrap() {
            Value::Array(items) => items,
            other => panic!("script answered {other:?}"),
        }
    }

    /// Everything the scripts keep for the show, for before/after comparisons.
    async fn state(
        &self,
    ) -> (
        BTreeMap<String, String>,
        BTreeMap<String, String>,
        Vec<(String, f64)>,
        Option<i64>,
    ) {
        let mut c = self.conn.clone();
        let seats: BTreeMap<String, String> = c.hgetall(&self.keys.seats).await.unwrap();
        let holds: BTreeMap<String, String> = c.hgetall(&self.keys.holds).await.unwrap();
        let deadlines: Vec<(String, f64)> = c.zrange_withscores(&self.keys.deadlines, 0, -1).await.unwrap();
        let version: Option<i64> = c.get(&self.keys.version).await.unwrap();
        (seats, holds, deadlines, version)
    }

    async fn hold_json(&self, id: &str) -> serde_json::Value {
        let mut c = self.conn.clone();
        let raw: String = c.hget(&self.keys.holds, id).await.unwrap();
        serde_json::from_str(&raw).unwrap()
    }
}

fn int(v: &Value) -> i64 {
    redis::from_redis_value_ref(v).unwrap()
}

fn text(v: &Value) -> String {
    redis::from_redis_value_ref(v).unwrap()
}

fn texts(v: &Value) -> Vec<String> {
    redis::from_redis_value_ref(v).unwrap()
}

#[tokio::test]
async fn seats_hold_locks_every_seat_records_the_hold_and_publishes_one_delta() {
    let f = Fixture::new().await;
    let mut pubsub = f.client.get_async_pubsub().await.unwrap();
    pubsub.subscribe(&f.keys.channel).await.unwrap();
    let mut messages = pubsub.into_on_message();

    let reply = f
        .run(&f.scripts.hold, NOW, &["alice", "h1", "300000", "A1", "A2"])
        .await;
    assert_eq!(
        (int(&reply[0]), int(&reply[1]), text(&reply[2]), int(&reply[3])),
        (0, 1, "e1".into(), 1)
    );
    let answered: serde_json::Value = serde_json::from_str(&text(&reply[4])).unwrap();
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
}

#[tokio::test]
async fn seats_hold_with_a_conflict_writes_nothing_and_names_the_seats() {
    let f = Fixture::new().await;
    f.run(&f.scripts.hold, NOW, &["alice", "h1", "300000", "A1"]).await;
    f.run(&f.scripts.hold, NOW, &["bob", "h2", "300000", "B1"]).await;
    let before = f.state().await;
    let reply = f.run(&f.scripts.hold, NOW, &["bob", "h3", "300000", "C1", "A1"]).await;
    assert_eq!(int(&reply[3]), 0);
    assert_eq!(texts(&reply[4]), vec!["A1"]);
    assert_eq!(reply.len(), 5, "only the seats asked for: O(seats asked), not O(show)");
    assert_eq!(f.state().await, before, "a failed hold leaves every key as it was");
}

#[tokio::test]
async fn seats_hold_by_the_same_user_moves_the_hold_in_one_step() {
    let f = Fixture::new().await;
    f.run(&f.scripts.hold, NOW, &["alice", "h1", "300000", "A1", "A2"])
        .await;
    let reply = f
        .run(&f.scripts.hold, NOW + 5, &["alice", "h2", "300000", "A2", "A3"])
        .await;
    let answered: serde_json::Value = serde_json::from_str(&text(&reply[4])).unwrap();
    assert_eq!(
        (int(&reply[1]), int(&reply[3]), &answered["p"]),
        (2, 1, &serde_json::json!("h1"))
    );
    let (seats, _, deadlines, _) = f.state().await;
    assert_eq!(
        seats,
        BTreeMap::from([("A2".into(), "H:h2".into()), ("A3".into(), "H:h2".into())])
    );
    assert_eq!(deadlines.len(), 1);
    assert_eq!(f.hold_json("h1").await["st"], "RELEASED");
}

#[tokio::test]
async fn seats_expire_frees_due_holds_then_drops_their_records_after_retention() {
    let f = Fixture::new().await;
    f.run(&f.scripts.hold, NOW, &["alice", "h1", "1000", "A1"]).await;
    f.run(&f.scripts.hold, NOW, &["bob", "h2", "5000", "B1"]).await;
    let reply = f.run(&f.scripts.expire, NOW + 999, &["100"]).await;
    assert_eq!(
        (int(&reply[0]), int(&reply[1])),
        (0, 2),
        "nothing is due before the deadline"
    );
    let reply = f.run(&f.scripts.expire, NOW + 1000, &["100"]).await;
    assert_eq!((int(&reply[0]), int(&reply[1]), int(&reply[3])), (1, 3, 0));
    let (seats, _, _, _) = f.state().await;
    assert_eq!(seats, BTreeMap::from([("B1".into(), "H:h2".into())]));
    let rec = f.hold_json("h1").await;
    assert_eq!(
        (rec["st"].as_str(), rec["t"].as_i64()),
        (Some("EXPIRED"), Some(NOW + 1000))
    );
    let mut c = f.conn.clone();
    let active: Option<String> = c.hget(&f.keys.users, "alice").await.unwrap();
    assert_eq!(active, None);
    let reply = f.run(&f.scripts.expire, NOW + 1000 + RETENTION, &["100"]).await;
    assert_eq!(int(&reply[3]), 1, "one expired record dropped");
    let holds: HashMap<String, String> = c.hgetall(&f.keys.holds).await.unwrap();
    assert!(!holds.contains_key("h1"));
}

#[tokio::test]
async fn seats_extend_for_order_moves_the_lock_to_the_order() {
    let f = Fixture::new().await;
    f.run(&f.scripts.hold, NOW, &["alice", "h1", "300000", "A1"]).await;
    let reply = f
        .run(
            &f.scripts.extend_for_order,
            NOW + 10,
            &["alice", "h1", "o1", "600000", "60000"],
        )
        .await;
    assert_eq!(text(&reply[3]), "ATTACHED");
    assert_eq!(
        (text(&reply[4]), int(&reply[5]), int(&reply[6])),
        ("o1".into(), NOW + 600_010, NOW + 10)
    );
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
    let reply = f
        .run(
            &f.scripts.extend_for_order,
            NOW + 20,
            &["alice", "h1", "o2", "600000", "60000"],
        )
        .await;
    assert_eq!((text(&reply[3]), text(&reply[4])), ("EXISTING".into(), "o1".into()));
    let reply = f
        .run(
            &f.scripts.extend_for_order,
            NOW + 20,
            &["mallory", "h1", "o3", "600000", "60000"],
        )
        .await;
    assert_eq!(text(&reply[3]), "NOT_FOUND");
}

#[tokio::test]
async fn seats_book_and_release_order_touch_only_the_orders_seats() {
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
    let reply = f.run(&f.scripts.book, NOW, &["o1", "h1", "10", "A1", "A2"]).await;
    assert_eq!((int(&reply[1]), int(&reply[3])), (3, 1));
    let (seats, _, deadlines, _) = f.state().await;
    assert_eq!((seats["A1"].as_str(), seats["A2"].as_str()), ("B:o1", "B:o1"));
    assert_eq!(
        deadlines.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        vec!["h2"]
    );
    // Releasing order o1 with a seat it never had leaves that seat alone.
    let reply = f
        .run(&f.scripts.release_order, NOW, &["o1", "h1", "20", "A1", "A2", "B1"])
        .await;
    assert_eq!((int(&reply[1]), int(&reply[3])), (4, 1));
    let (seats, _, _, _) = f.state().await;
    assert_eq!(seats, BTreeMap::from([("B1".into(), "H:h2".into())]));
}

#[tokio::test]
async fn seats_release_answers_each_outcome() {
    let f = Fixture::new().await;
    f.run(&f.scripts.hold, NOW, &["alice", "h1", "300000", "A1"]).await;
    let reply = f.run(&f.scripts.release, NOW, &["bob", "h1"]).await;
    assert_eq!(text(&reply[3]), "NOT_FOUND");
    let reply = f.run(&f.scripts.release, NOW, &["alice", "h1"]).await;
    assert_eq!((text(&reply[3]), int(&reply[1])), ("RELEASED".into(), 2));
    let reply = f.run(&f.scripts.release, NOW, &["alice", "h1"]).await;
    assert_eq!(
        (text(&reply[3]), text(&reply[4])),
        ("NOT_ACTIVE".into(), "RELEASED".into())
    );
    f.run(&f.scripts.hold, NOW, &["alice", "h2", "10", "A1"]).await;
    let reply = f.run(&f.scripts.release, NOW + 10, &["alice", "h2"]).await;
    assert_eq!(
        (int(&reply[0]), text(&reply[4])),
        (1, "EXPIRED".into()),
        "expired by the in-line sweep"
    );
}

#[tokio::test]
async fn seats_snapshot_sweeps_first_so_a_version_means_one_state() {
    let f = Fixture::new().await;
    f.run(&f.scripts.hold, NOW, &["alice", "h1", "100", "A1"]).await;
    f.run(&f.scripts.hold, NOW, &["bob", "h2", "300000", "B1"]).await;
    let reply = f.run(&f.scripts.snapshot, NOW + 100, &[]).await;
    assert_eq!((int(&reply[0]), int(&reply[1])), (1, 3));
    assert_eq!(texts(&reply[3]), vec!["B1", "H:h2"]);
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
    f.run(&f.scripts.expire, NOW + 1, &["10"]).await;
    f.run(&f.scripts.hold, NOW + 2, &["bob", "h2", "300000", "B1"]).await;
    let mut c = f.conn.clone();
    let keys: Vec<String> = c.keys(format!("{}*", f.prefix)).await.unwrap();
    assert_eq!(
        keys.len(),
        8,
        "seats, holds, users, deadlines, gc, version, epoch, stamps: {keys:?}"
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
async fn seats_rebuild_puts_the_record_back_fenced_by_the_epoch_and_publishes_it() {
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
    let stale = f
        .run(&f.scripts.rebuild, NOW + 1, &["not-e1", "e2", "60000", &record])
        .await;
    assert_eq!(
        (text(&stale[2]), int(&stale[3])),
        ("e1".into(), 0),
        "another epoch: nothing changes"
    );
    let reply = f
        .run(&f.scripts.rebuild, NOW + 1, &["e1", "e2", "60000", &record])
        .await;
    assert_eq!((text(&reply[2]), int(&reply[3])), ("e2".into(), 1));
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
    let late = f.run(&f.scripts.release_order, NOW + 2, &["o1", "", "6", "A1"]).await;
    assert_eq!(int(&late[3]), 0);
    assert_eq!(f.state().await.0["A1"], "B:o1");
}

#[tokio::test]
async fn a_script_run_twice_changes_nothing_the_second_time() {
    let f = Fixture::new().await;
    f.run(&f.scripts.hold, NOW, &["alice", "h0", "300000", "A9"]).await;
    let first = f.run(&f.scripts.hold, NOW, &["alice", "h1", "300000", "A1"]).await;
    let before = f.state().await;
    let again = f.run(&f.scripts.hold, NOW + 1, &["alice", "h1", "300000", "A1"]).await;
    let answered: serde_json::Value = serde_json::from_str(&text(&again[4])).unwrap();
    assert_eq!((int(&again[3]), &answered["p"]), (1, &serde_json::json!("h0")));
    assert_eq!(
        text(&first[4]),
        text(&again[4]),
        "a retry answers the first run's record"
    );
    assert_eq!(f.state().await, before, "a retried hold keeps the user's seats");
    f.run(
        &f.scripts.extend_for_order,
        NOW,
        &["alice", "h1", "o1", "600000", "60000"],
    )
    .await;
    let booked = f.run(&f.scripts.book, NOW, &["o1", "h1", "10", "A1"]).await;
    let before = f.state().await;
    let again = f.run(&f.scripts.book, NOW, &["o1", "h1", "10", "A1"]).await;
    assert_eq!((int(&booked[3]), int(&again[3])), (1, 0));
    assert_eq!(f.state().await, before);
    // The cancel (newer) frees the seat; the payment's book arriving late does not re-book it.
    f.run(&f.scripts.release_order, NOW, &["o1", "h1", "30", "A1"]).await;
    let late = f.run(&f.scripts.book, NOW, &["o1", "h1", "20", "A1"]).await;
    assert_eq!(int(&late[3]), 0);
    assert!(!f.state().await.0.contains_key("A1"));
}

// ---- waiting-room scripts -------------------------------------------------------

use showgate::redis::scripts::RoomScripts;

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

/// The answer of a `wr_join.lua` call for one shopper.
fn join_one(v: Value) -> Vec<Value> {
    match v {
        Value::Array(mut answers) if answers.len() == 1 => match answers.remove(0) {
            Value::Array(i) => i,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn wr_join_takes_many_shoppers_in_one_call_in_order() {
    let f = Fixture::new().await;
    let (s, k) = (RoomScripts::load(), Keys::new(f.prefix.clone()).room("s1"));
    let keys = join_keys(&k);
    let now = NOW.to_string();
    let args = [
        "ann", &now, "1", &now, // joins
        "ben", &now, "0", &now, // only asks: not joined
        "cat", &now, "1", &now, // joins
        "ann", &now, "1", &now, // again: the same place
    ];
    let answers = match room_run(&f, &s.join, &keys, &args).await {
        Value::Array(a) => a,
        other => panic!("{other:?}"),
    };
    let kinds: Vec<(String, Option<i64>)> = answers
        .iter()
        .map(|a| match a {
            Value::Array(i) => (text(&i[0]), (i.len() == 5).then(|| int(&i[2]))),
            other => panic!("{other:?}"),
        })
        .collect();
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
}

#[tokio::test]
async fn wr_join_queues_once_and_answers_each_standing() {
    let f = Fixture::new().await;
    let (s, k) = (RoomScripts::load(), Keys::new(f.prefix.clone()).room("s1"));
    let keys = join_keys(&k);
    let now = NOW.to_string();
    let r = join_one(room_run(&f, &s.join, &keys, &["alice", &now, "1", &now]).await);
    assert_eq!(
        (text(&r[0]), text(&r[1]), int(&r[2]), int(&r[3]), int(&r[4])),
        ("QUEUED".into(), "1".into(), 1, 1, 0)
    );
    let r = join_one(room_run(&f, &s.join, &keys, &["alice", &now, "1", &now]).await);
    assert_eq!(int(&r[2]), 1, "joining again keeps the place");
    let r = join_one(room_run(&f, &s.join, &keys, &["bob", &now, "0", &now]).await);
    assert_eq!(text(&r[0]), "NONE", "a read does not join");
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
    let r = join_one(room_run(&f, &s.join, &keys, &["carol", &late_node, "1", &now]).await);
    assert_eq!((text(&r[0]), int(&r[1])), ("PREQUEUED".into(), 1));
    let joined: i64 = c.hget(&k.stats, "joined").await.unwrap();
    assert_eq!(joined, 2);
    let _: () = c.zadd(&k.admitted, "dave", NOW + 1000).await.unwrap();
    let r = join_one(room_run(&f, &s.join, &keys, &["dave", &now, "1", &now]).await);
    let waiting: i64 = c.zcard(&k.queue).await.unwrap();
    assert_eq!(
        (text(&r[0]), text(&r[1]), int(&r[3])),
        ("ADMITTED".into(), (NOW + 1000).to_string(), waiting)
    );
}

#[tokio::test]
async fn wr_admit_is_fenced_by_the_lease_and_publishes_one_tick() {
    let f = Fixture::new().await;
    let (s, k) = (RoomScripts::load(), Keys::new(f.prefix.clone()).room("s1"));
    let join_keys = join_keys(&k);
    let now = NOW.to_string();
    for u in ["a", "b", "c"] {
        room_run(&f, &s.join, &join_keys, &[u, &now, "1", &now]).await;
    }
    let token: String =
        redis::from_redis_value(room_run(&f, &s.lease, &[&k.lease, &k.fence], &["n1", "5000"]).await).unwrap();
    assert_eq!(token, "n1/1");
    let other: Option<String> =
        redis::from_redis_value(room_run(&f, &s.lease, &[&k.lease, &k.fence], &["n2", "5000"]).await).unwrap();
    assert_eq!(other, None);
    let mut pubsub = f.client.get_async_pubsub().await.unwrap();
    pubsub.subscribe(&k.channel).await.unwrap();
    let mut messages = pubsub.into_on_message();
    let admit_keys = [
        &k.queue,
        &k.admitted,
        &k.seen,
        &k.stats,
        &k.events,
        &k.lease,
        &k.seats,
        &k.config,
    ]
    .map(String::as_str);
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
    let r = match room_run(&f, &s.admit, &admit_keys, &good).await {
        Value::Array(i) => i,
        other => panic!("{other:?}"),
    };
    assert_eq!((int(&r[1]), int(&r[2]), int(&r[3]), int(&r[6])), (2, 1, 2, 1));
    assert_eq!((text(&r[7]), text(&r[8])), ("a".into(), "b".into()));
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
    let again = match room_run(&f, &s.admit, &admit_keys, &good).await {
        Value::Array(i) => i,
        other => panic!("{other:?}"),
    };
    assert_eq!((int(&again[1]), int(&again[2]), int(&again[6])), (0, 1, 1));
    let queued: u64 = c.zcard(&k.queue).await.unwrap();
    assert_eq!(queued, 1, "c is still waiting");
}

fn join_keys(k: &showgate::redis::keys::RoomKeys) -> [&str; 9] {
    [
        &k.queue,
        &k.pre,
        &k.seq,
        &k.seen,
        &k.stats,
        &k.admitted,
        &k.events,
        &k.config,
        &k.entrants,
    ]
    .map(String::as_str)
}

async fn redis_now_ms(f: &Fixture) -> i64 {
    let mut c = f.conn.clone();
    let (s, us): (i64, i64) = redis::cmd("TIME").query_async(&mut c).await.unwrap();
    s * 1000 + us / 1000
}

#[tokio::test]
async fn wr_leave_and_the_opening_move_scores_and_say_so() {
    let f = Fixture::new().await;
    let (s, k) = (RoomScripts::load(), Keys::new(f.prefix.clone()).room("s1"));
    let keys = join_keys(&k);
    let now = NOW.to_string();
    let mut c = f.conn.clone();
    room_run(&f, &s.join, &keys, &["a", &now, "1", &now]).await;
    room_run(&f, &s.join, &keys, &["b", &now, "1", &now]).await;
    // "p" and "q" join before the opening (opensAt 1 s ahead of Redis TIME).
    let opens = redis_now_ms(&f).await + 1_000;
    let _: () = c
        .hset_multiple(
            &k.config,
            &[("opensAt", opens.to_string()), ("preQueue", "RANDOM".into())],
        )
        .await
        .unwrap();
    room_run(&f, &s.join, &keys, &["p", &now, "1", &now]).await;
    room_run(&f, &s.join, &keys, &["q", &now, "1", &now]).await;
    let leave_keys = [&k.queue, &k.pre, &k.seen, &k.stats, &k.events].map(String::as_str);
    let n: i64 = redis::from_redis_value(
        room_run(
            &f,
            &s.leave,
            &leave_keys,
            &[&k.channel, "PUBLISH", "left", "0", "0", "a"],
        )
        .await,
    )
    .unwrap();
    assert_eq!(n, 1);
    let _: () = c.set(&k.lease, "node-1/1").await.unwrap();
    let begin_keys = [&k.queue, &k.pre, &k.seq, &k.config, &k.lease, &k.entrants].map(String::as_str);
    let r = match room_run(&f, &s.open_begin, &begin_keys, &["node-1/1"]).await {
        Value::Array(i) => i,
        other => panic!("{other:?}"),
    };
    assert_eq!(text(&r[0]), "WAIT", "not before opensAt by Redis TIME");
    let r = match room_run(&f, &s.open_begin, &begin_keys, &["node-2/9"]).await {
        Value::Array(i) => i,
        other => panic!("{other:?}"),
    };
    assert_eq!(text(&r[0]), "STALE");
    tokio::time::sleep(std::time::Duration::from_millis(
        (opens - redis_now_ms(&f).await).max(0) as u64 + 20,
    ))
    .await;
    // The first join after the opening begins it: "r" queues behind the block.
    let r = join_one(room_run(&f, &s.join, &keys, &["r", &now, "1", &now]).await);
    assert_eq!(
        (text(&r[0]), text(&r[1])),
        ("QUEUED".into(), "5".into()),
        "arrivals 1-2, block 3-4, then r"
    );
    let r = match room_run(&f, &s.open_begin, &begin_keys, &["node-1/1"]).await {
        Value::Array(i) => i,
        other => panic!("{other:?}"),
    };
    assert_eq!((text(&r[0]), text(&r[1]), int(&r[2])), ("OPEN".into(), "3".into(), 2));
    let entrants: Vec<String> = c.smembers(&k.entrants).await.unwrap();
    assert_eq!(entrants.len(), 2);
    let open_keys = [&k.queue, &k.pre, &k.events, &k.lease].map(String::as_str);
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
    let r = match room_run(&f, &s.ranks, &[&k.queue, &k.events], &["b", "q", "p", "r", "a"]).await {
        Value::Array(i) => i,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (int(&r[0]), int(&r[1])),
        (2, 4),
        "two events (a left, the block placed), four queued"
    );
    let ranks: Vec<i64> = (0..4).map(|i| int(&r[3 + 2 * i])).collect();
    assert_eq!(ranks, vec![0, 1, 2, 3], "b, then the block in lottery order, then r");
    assert_eq!((r[10].clone(), r[11].clone()), (Value::Nil, Value::Nil));

    // A straggler (in the pre-queue, not among the entrants: only a clock
    // going back could make one) is placed by its own join, behind.
    let _: () = c.sadd(&k.pre, "z").await.unwrap();
    let r = join_one(room_run(&f, &s.join, &keys, &["z", &now, "0", &now]).await);
    assert_eq!((text(&r[0]), int(&r[2])), ("QUEUED".into(), 5));
}

/// One row "A" of three seats, as the waiting-list scripts keep a plan.
const PLAN_A3: &str = r#"[["A",3,""]]"#;

#[tokio::test]
async fn waitlist_join_refuses_while_seats_are_free_then_queues_in_order_under_the_tag() {
    let f = Fixture::new().await;
    let join = |user: &'static str, q: &'static str| {
        let f = &f;
        async move {
            f.run(
                &f.scripts.wait_join,
                NOW,
                &[user, q, &format!("offer-{user}"), "120000", PLAN_A3],
            )
            .await
        }
    };
    // Three seats free: joining for two is refused, and nothing is written.
    let reply = join("carol", "2").await;
    assert_eq!((text(&reply[3]), int(&reply[4])), ("SEATS_AVAILABLE".into(), 3));
    let mut c = f.conn.clone();
    assert_eq!(c.zcard::<_, u64>(&f.keys.waiters).await.unwrap(), 0);
    // Sold out: joins queue in order, with their quantity and offer id.
    f.run(&f.scripts.hold, NOW, &["alice", "h1", "300000", "A1", "A2", "A3"])
        .await;
    let reply = join("carol", "2").await;
    assert_eq!(
        (text(&reply[3]), text(&reply[4]), int(&reply[5]), int(&reply[6])),
        ("JOINED".into(), "WAITING".into(), 1, 2)
    );
    let reply = join("dave", "1").await;
    assert_eq!((text(&reply[3]), int(&reply[5])), ("JOINED".into(), 2));
    let reply = join("carol", "3").await;
    assert_eq!(
        (text(&reply[3]), int(&reply[5]), int(&reply[6])),
        ("ALREADY".into(), 1, 2),
        "a second join keeps the place and the quantity"
    );
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
}

#[tokio::test]
async fn a_release_hands_the_seats_to_the_first_waiter_that_fits_in_the_same_script() {
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
    let reply = f.run(&f.scripts.release, NOW + 1, &["alice", "h1"]).await;
    assert_eq!((int(&reply[1]), text(&reply[3])), (3, "RELEASED".into()));
    let (seats, _, deadlines, _) = f.state().await;
    assert_eq!(seats["A1"], "H:offer-dave");
    assert!(deadlines.contains(&("offer-dave".into(), (NOW + 1 + 120_000) as f64)));
    let rec = f.hold_json("offer-dave").await;
    assert_eq!((rec["u"].as_str(), rec["w"].as_bool()), (Some("dave"), Some(true)));
    let reply = f.run(&f.scripts.wait_standing, NOW + 1, &["dave"]).await;
    assert_eq!(
        (text(&reply[3]), text(&reply[4]), int(&reply[5]), texts(&reply[6])),
        (
            "OFFERED".into(),
            "offer-dave".into(),
            NOW + 1 + 120_000,
            vec!["A1".to_owned()]
        )
    );
    let reply = f.run(&f.scripts.wait_standing, NOW + 1, &["carol"]).await;
    assert_eq!((text(&reply[3]), int(&reply[4])), ("WAITING".into(), 1));
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
}

#[tokio::test]
async fn waitlist_leave_gives_an_offer_back_and_counts_it_declined() {
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
    let reply = f.run(&f.scripts.wait_leave, NOW + 2, &["dave"]).await;
    assert_eq!(
        (text(&reply[3]), text(&reply[4])),
        ("OFFERED".into(), "offer-dave".into())
    );
    // Now all three are free: erin's offer, made in the same script.
    let (seats, _, _, _) = f.state().await;
    assert_eq!(seats.len(), 3);
    assert!(seats.values().all(|o| o == "H:offer-erin"), "{seats:?}");
    let reply = f.run(&f.scripts.wait_leave, NOW + 2, &["dave"]).await;
    assert_eq!(text(&reply[3]), "NONE", "dave is no longer on the list");
    let reply = f.run(&f.scripts.wait_standing, NOW + 2, &["dave"]).await;
    assert_eq!((text(&reply[3]), text(&reply[5])), ("ENDED".into(), "RELEASED".into()));
    let mut c = f.conn.clone();
    let counts: Vec<Option<u64>> = redis::cmd("HMGET")
        .arg(&f.keys.waitlist)
        .arg(&["made", "declined", "expired"][..])
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(counts, vec![Some(2), Some(1), None]);
}

#[tokio::test]
async fn seats_expire_with_waiters_frees_a_bounded_turn_and_says_more_are_due() {
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
        let reply = f.run(&f.scripts.expire, NOW + 1000, &["100"]).await;
        if waiting {
            assert_eq!((int(&reply[0]), int(&reply[4])), (16, 1), "16 seats a turn, more due");
            let rec = f.hold_json("offer-carol").await;
            assert_eq!(
                rec["s"].as_array().map(Vec::len),
                Some(1),
                "carol's offer in the first turn"
            );
            // Carol was the only waiter: the next call frees the rest at once.
            let reply = f.run(&f.scripts.expire, NOW + 1000, &["100"]).await;
            assert_eq!((int(&reply[0]), int(&reply[4])), (4, 0));
        } else {
            assert_eq!((int(&reply[0]), int(&reply[4])), (20, 0), "no list: no budget");
        }
        let (seats, _, deadlines, _) = f.state().await;
        assert_eq!(seats.len(), usize::from(waiting), "only the offer holds a seat");
        assert_eq!(deadlines.len(), usize::from(waiting));
    }
}
