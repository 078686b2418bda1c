//! A Redis Cluster of a test's own (three masters, three replicas, each a
//! real `redis-server` on a free port), whose masters a test can kill.

use std::time::{Duration, Instant};

use super::own_redis::OwnRedis;

/// Six servers, three masters and three replicas, on ports of their own.
pub struct OwnCluster {
    pub nodes: Vec<OwnRedis>,
}

impl OwnCluster {
    pub fn start() -> Self {
        let nodes: Vec<OwnRedis> = (0..6)
            .map(|_| {
                OwnRedis::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "1000",
                ])
            })
            .collect();
        let addrs: Vec<String> = nodes.iter().map(OwnRedis::addr).collect();
        let out = std::process::Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        let cluster = Self { nodes };
        cluster.wait_ok(&cluster.nodes.iter().collect::<Vec<_>>());
        cluster
    }

    pub fn wait_ok(&self, nodes: &[&OwnRedis]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if nodes.iter().all(|n| {
                n.command("CLUSTER INFO")
                    .is_some_and(|i| i.contains("cluster_state:ok"))
            }) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the cluster is not ok");
    }

    pub fn seeds(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("redis://{}", n.addr()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The index of the master serving `key`'s slot, as the first node that
    /// answers sees it (a master it has marked failed does not count).
    pub fn master_of(&self, key: &str) -> usize {
        self.nodes
            .iter()
            .find_map(|observer| self.master_seen_by(observer, key))
            .unwrap_or_else(|| panic!("no node names a live master for {key}"))
    }

    fn master_seen_by(&self, observer: &OwnRedis, key: &str) -> Option<usize> {
        let slot: u16 = observer
            .command(&format!("CLUSTER KEYSLOT {key}"))?
            .trim()
            .trim_start_matches(':')
            .parse()
            .ok()?;
        let table = observer.command("CLUSTER NODES")?;
        for line in table.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 9 || !fields[2].contains("master") || fields[2].contains("fail") {
                continue;
            }
            let port: u16 = fields[1].split(['@', ':']).nth(1)?.parse().ok()?;
            let serves = fields[8..].iter().any(|range| {
                let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                lo.parse::<u16>()
                    .is_ok_and(|lo| hi.parse::<u16>().is_ok_and(|hi| (lo..=hi).contains(&slot)))
            });
            if serves {
                return self.nodes.iter().position(|n| n.port == port);
            }
        }
        None
    }

    /// Waits until a node other than `old` serves `key`'s slot (its replica
    /// was promoted), up to 20 s.
    pub fn wait_failover(&self, key: &str, old: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let promoted = self
                .nodes
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != old)
                .find_map(|(_, observer)| self.master_seen_by(observer, key));
            if promoted.is_some_and(|m| m != old) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no replica took over {key}'s slot from node {old}");
    }
}
