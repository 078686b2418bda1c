//! An idle node costs the shared Redis next to nothing, with one node or
//! three: one node at a time sweeps (a lease), and only shows that are due
//! or changed are looked at. Counted with `INFO commandstats` on a Redis of
//! the test's own, as the waiting-room test counts its ticks.

use std::collections::HashMap;
use std::time::Duration;

use crate::helpers::Node;
use crate::helpers::common::own_redis::OwnRedis;
use showgate::booking::sweeper::FULL_SCAN_EVERY;

/// Calls per command since the last `CONFIG RESETSTAT`.
async fn calls(conn: &mut redis::aio::MultiplexedConnection) -> HashMap<String, u64> {
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(conn).await.unwrap();
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let n = rest.split("calls=").nth(1)?.split(',').next()?.parse().ok()?;
            Some((name.to_owned(), n))
        })
        .collect()
}

/// Redis commands a second with `n` idle nodes on a fresh Redis (the demo
/// catalog, no room, no socket), and scripts among them, over a window
/// after the nodes have settled that holds a full scan of the sweeper.
async fn idle_per_second(n: usize) -> (f64, f64) {
    let redis = OwnRedis::start();
    let env = vec![("REDIS_URL", redis.url())];
    let mut nodes = Vec::new();
    for _ in 0..n {
        nodes.push(Node::start(&env).await);
    }
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // Every show's state is built by the first passes; then quiet.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut conn)
        .await
        .unwrap();
    let window = FULL_SCAN_EVERY.as_secs_f64() + 2.0;
    tokio::time::sleep(Duration::from_secs_f64(window)).await;
    let c = calls(&mut conn).await;
    drop(nodes);
    // Less this test's own INFO and CONFIG.
    let all = c.values().sum::<u64>() as f64 - 2.0;
    let scripts = (c.get("evalsha").unwrap_or(&0) + c.get("eval").unwrap_or(&0)) as f64;
    (all / window, scripts / window)
}

#[tokio::test]
async fn an_idle_node_costs_redis_at_most_50_commands_a_second_and_no_script() {
    let (all_1, scripts_1) = idle_per_second(1).await;
    let (all_3, scripts_3) = idle_per_second(3).await;
    println!(
        "idle, Redis commands/s: 1 node: {all_1:.1} ({scripts_1:.2} scripts); 3 nodes: {all_3:.1} ({scripts_3:.2} scripts)"
    );
    assert!(all_1 > 0.0, "the node's loops ran");
    assert!(all_1 <= 50.0, "one idle node: {all_1:.1}/s");
    assert!(all_3 <= 3.0 * 50.0, "three idle nodes: {all_3:.1}/s");
    // Nothing is due on a quiet sale: no script at all.
    assert!(scripts_1 == 0.0 && scripts_3 == 0.0, "{scripts_1} {scripts_3}");
}

/// One show whose keys are broken (a wrong type where its deadlines are)
/// never stops the pass: the other shows' holds still expire by the sweeper.
#[tokio::test]
async fn a_failing_show_does_not_stop_the_sweep_of_the_others() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.hold_ttl_seconds = 1;
        s.sweep_interval_ms = 100;
    })
    .await;
    let keys = showgate::redis::keys::Keys::new(app.settings.redis_key_prefix.clone());
    let mut conn = redis::Client::open(crate::helpers::common::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let shows: serde_json::Value = app.get_json("/api/v1/movies/dune-3/shows", None).await;
    let ids: Vec<String> = shows["shows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            chrono::DateTime::parse_from_rfc3339(s["startTime"].as_str().unwrap()).unwrap() > chrono::Utc::now()
        })
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    let (broken, fine) = (&ids[0], &ids[1]);
    let alice = app.token("alice").await;
    assert_eq!(app.hold(&alice, fine, &["B2"]).await.status(), 201);
    let _: () = redis::cmd("SET")
        .arg(keys.show(broken).deadlines)
        .arg("not a sorted set")
        .query_async(&mut conn)
        .await
        .unwrap();
    // The sweeper, not a read, expires it: watch the deadline set directly
    // (the holds' deadlines; "~gc" is the tombstones' next step).
    let deadlines = keys.show(fine).deadlines;
    let mut left = 1;
    for _ in 0..50 {
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(&deadlines)
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .unwrap();
        left = members.iter().filter(|m| *m != "~gc").count();
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "the fine show's hold was swept despite the broken one");
    let _: () = redis::cmd("DEL")
        .arg(keys.show(broken).deadlines)
        .query_async(&mut conn)
        .await
        .unwrap();
}

/// A followed show that is not changing costs Redis at most one light
/// command per feed per 5 s (its epoch and version in one MGET), and no
/// script; a snapshot only when they differ.
#[tokio::test]
async fn idle_feeds_cost_one_light_command_per_feed_per_five_seconds_and_no_script() {
    let redis = OwnRedis::start();
    let node = Node::start(&[("REDIS_URL", redis.url())]).await;
    let ids = node.shows().await;
    let mut sockets = Vec::new();
    for id in &ids {
        let mut ws = crate::helpers::ws_connect(node.addr, &format!("/api/v1/shows/{id}/seats/ws")).await;
        assert_eq!(crate::helpers::next_json(&mut ws).await["type"], "snapshot");
        sockets.push(ws);
    }
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut conn)
        .await
        .unwrap();
    let window = 15.0;
    tokio::time::sleep(Duration::from_secs_f64(window)).await;
    let c = calls(&mut conn).await;
    let feeds = ids.len() as f64;
    let per_feed_per_5s = *c.get("mget").unwrap_or(&0) as f64 / feeds / (window / 5.0);
    let scripts = c.get("evalsha").unwrap_or(&0) + c.get("eval").unwrap_or(&0);
    let snapshots = c.get("hgetall").unwrap_or(&0);
    println!(
        "{feeds} idle feeds over {window} s: {per_feed_per_5s:.2} probes per feed per 5 s, {scripts} scripts: {c:?}"
    );
    assert!(per_feed_per_5s > 0.0, "the feeds do probe");
    assert!(per_feed_per_5s <= 1.0, "{per_feed_per_5s}");
    assert_eq!((scripts, *snapshots), (0, 0), "no script, no snapshot");
    drop(sockets);
}
