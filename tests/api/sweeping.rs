//! Seat expiry costs the shared Redis the same with one node or three: one
//! node at a time sweeps (a lease), and a show with nothing due is skipped
//! without a script. Counted with `INFO commandstats` on a Redis of the
//! test's own, as the waiting-room test counts its ticks.

use std::collections::HashMap;
use std::time::Duration;

use crate::helpers::Node;
use crate::helpers::common::own_redis::OwnRedis;

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

/// Sweeping's commands a second with `n` nodes on a fresh Redis: the
/// script (`evalsha`) and the due-checks (`exists`, `zrangebyscore`), over
/// a 4 s window after the nodes have settled.
async fn sweeping_per_second(n: usize) -> (f64, f64) {
    let redis = OwnRedis::start();
    let env = vec![("REDIS_URL", redis.url()), ("SWEEP_INTERVAL_MS", "250".to_string())];
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
    tokio::time::sleep(Duration::from_secs(4)).await;
    let c = calls(&mut conn).await;
    let get = |k: &str| *c.get(k).unwrap_or(&0) as f64 / 4.0;
    drop(nodes);
    (get("evalsha") + get("eval"), get("exists") + get("zrangebyscore"))
}

#[tokio::test]
async fn sweeping_costs_redis_the_same_with_one_node_or_three() {
    let (scripts_1, checks_1) = sweeping_per_second(1).await;
    let (scripts_3, checks_3) = sweeping_per_second(3).await;
    println!(
        "sweeping, commands/s: 1 node: {scripts_1:.1} scripts, {checks_1:.1} checks; 3 nodes: {scripts_3:.1} scripts, {checks_3:.1} checks"
    );
    // 4 passes a second over the demo catalog's current shows: one node's
    // worth of checks, whatever the number of nodes.
    assert!(checks_1 > 100.0, "the sweeper ran: {checks_1}");
    assert!(
        checks_3 < checks_1 * 1.3,
        "three nodes check no more than one: {checks_3} vs {checks_1}"
    );
    // Nothing is due on a quiet sale: no script at all.
    assert!(scripts_1 < 1.0 && scripts_3 < 1.0, "{scripts_1} {scripts_3}");
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
    // The sweeper, not a read, expires it: watch the deadline set directly.
    let deadlines = keys.show(fine).deadlines;
    let mut left = 1;
    for _ in 0..50 {
        left = redis::cmd("ZCARD")
            .arg(&deadlines)
            .query_async(&mut conn)
            .await
            .unwrap();
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
