//! The saturation figures the alerts read: Redis memory against its limit
//! (read by one node a round and shared) and the Postgres pool's use.

use std::sync::Arc;
use std::time::{Duration, Instant};

use showgate::app::saturation::{Memory, Saturation};
use showgate::redis::RedisHandle;
use showgate::redis::keys::Keys;

use crate::helpers::common::own_redis::OwnRedis;
use crate::helpers::spawn_app;

fn calls_of_info(redis: &OwnRedis) -> u64 {
    let stats = redis.command("INFO commandstats").unwrap_or_default();
    stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_info:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn one_node_reads_redis_memory_and_every_node_reports_it() {
    let redis = OwnRedis::start_with(&["--maxmemory", "64mb"]);
    let handle = Arc::new(RedisHandle::connect(Some(&redis.url()), &[]).await.unwrap());
    let node = |name: &str| Saturation {
        pool: None,
        redis: Some(handle.clone()),
        keys: Keys::new("sat:"),
        node: name.to_owned(),
    };
    let (a, b, c) = (node("a"), node("b"), node("c"));
    let before = calls_of_info(&redis);
    let first = a.redis_memory(&handle).await.unwrap().expect("the reader's figures");
    assert_eq!(first.max, 64 * 1024 * 1024);
    assert!(first.used > 0 && first.used < first.max, "{first:?}");
    // The other nodes of the same round take the shared figures: no INFO of their own.
    assert_eq!(b.redis_memory(&handle).await.unwrap(), Some(first));
    assert_eq!(c.redis_memory(&handle).await.unwrap(), Some(first));
    // `before`'s own INFO is counted too.
    assert_eq!(calls_of_info(&redis) - before, 2, "INFO ran once for three nodes");
    // A limit changed mid-sale shows in the next round's reading.
    redis.command("CONFIG SET maxmemory 128mb");
    redis.command(&format!("DEL {}", Keys::new("sat:").ops("redis-memory-reader")));
    let next = b.redis_memory(&handle).await.unwrap().unwrap();
    assert_eq!(
        next,
        Memory {
            max: 128 * 1024 * 1024,
            ..next
        }
    );
}

#[tokio::test]
async fn metrics_carry_the_pool_and_redis_saturation() {
    let app = spawn_app().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let gauge = |text: &str, name: &str| {
        text.lines()
            .find(|l| l.starts_with(name) && !l.starts_with('#'))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
    };
    loop {
        let text = app.get("/metrics", None).await.text().await.unwrap();
        let found = [
            gauge(&text, "db_pool_connections_in_use"),
            gauge(&text, "db_pool_connections_max"),
            gauge(&text, "redis_memory_used_bytes"),
            gauge(&text, "redis_memory_max_bytes"),
        ];
        if let [Some(in_use), Some(max), Some(used), Some(_)] = found {
            assert_eq!(max, showgate::postgres::POOL_SIZE as f64);
            assert!(in_use <= max, "{in_use} of {max}");
            assert!(used > 0.0);
            break;
        }
        assert!(Instant::now() < deadline, "saturation gauges missing: {found:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
