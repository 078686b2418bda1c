//! The soak's processes: gateways on fixed loopback ports, a Redis (a
//! primary with a replica behind a TCP proxy, or a Cluster of six), a
//! database of the run's own behind a proxy, and the faults done to them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::Duration;

use sqlx::Connection;

use super::faults::Fault;
use crate::own_cluster::OwnCluster;
use crate::own_redis::{OwnRedis, free_port};
use crate::proxy::Proxy;
use crate::server::Server;

/// Which Redis the gateways run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// One primary and a replica, reached through a proxy (a VIP's stand-in).
    Redis,
    /// Three masters and three replicas.
    Cluster,
}

enum RedisRig {
    Single {
        primary: OwnRedis,
        replica: OwnRedis,
        /// The gateways' only way to Redis: what a failover moves and a
        /// partition silences.
        vip: Proxy,
    },
    Cluster(OwnCluster),
}

/// The gateways' addresses by slot (None while one is down), shared with
/// every client of the soak.
#[derive(Default)]
pub struct Nodes {
    slots: RwLock<Vec<Option<SocketAddr>>>,
}

impl Nodes {
    pub fn slot(&self, i: usize) -> Option<SocketAddr> {
        self.slots.read().unwrap().get(i).copied().flatten()
    }

    pub fn len(&self) -> usize {
        self.slots.read().unwrap().len()
    }

    /// Slot `i`'s gateway, or the next one up (a load balancer's choice).
    pub fn pick(&self, i: usize) -> Option<SocketAddr> {
        let slots = self.slots.read().unwrap();
        (0..slots.len()).find_map(|k| slots[(i + k) % slots.len()])
    }

    pub fn live(&self) -> Vec<(usize, SocketAddr)> {
        let slots = self.slots.read().unwrap();
        slots
            .iter()
            .enumerate()
            .filter_map(|(i, a)| a.map(|a| (i, a)))
            .collect()
    }

    fn set(&self, i: usize, addr: Option<SocketAddr>) {
        let mut slots = self.slots.write().unwrap();
        if slots.len() <= i {
            slots.resize(i + 1, None);
        }
        slots[i] = addr;
    }
}

pub struct Rig {
    redis: RedisRig,
    pg: Proxy,
    /// The run's database, reached directly (the verdict reads it).
    pub database_url: String,
    admin_url: String,
    db_name: String,
    bin: PathBuf,
    env: Vec<(String, String)>,
    servers: Vec<(u16, Option<Server>)>,
    pub nodes: std::sync::Arc<Nodes>,
    /// The sale show's hash tag, for the Cluster master that serves it.
    show_key: String,
}

pub struct Settings<'a> {
    pub backend: Backend,
    pub gateways: usize,
    pub postgres: &'a str,
    pub server_bin: &'a Path,
    pub catalog: &'a Path,
    pub show: &'a str,
    pub gateway_env: Vec<(String, String)>,
}

impl Rig {
    pub async fn start(s: Settings<'_>) -> Result<Rig, String> {
        let redis = match s.backend {
            Backend::Redis => {
                let (primary, replica) = tokio::task::block_in_place(|| {
                    let primary = OwnRedis::start();
                    let replica = OwnRedis::start();
                    replica.replicate(&primary);
                    (primary, replica)
                });
                let vip = Proxy::to(primary.addr()).await;
                RedisRig::Single { primary, replica, vip }
            }
            Backend::Cluster => RedisRig::Cluster(tokio::task::block_in_place(OwnCluster::start)),
        };
        let (user_host, pg_target) = postgres_parts(s.postgres)?;
        let db_name = format!("sg_chaos_{}", uuid::Uuid::new_v4().simple());
        let admin_url = format!("{}/postgres", s.postgres.trim_end_matches('/'));
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .map_err(|e| format!("Postgres at {}: {e}", s.postgres))?;
        sqlx::query(&format!("CREATE DATABASE {db_name}"))
            .execute(&mut admin)
            .await
            .map_err(|e| e.to_string())?;
        let pg = Proxy::to(pg_target).await;
        let mut env = s.gateway_env;
        env.push((
            "DATABASE_URL".into(),
            format!("postgres://{user_host}{}/{db_name}", pg.addr),
        ));
        env.push(("CATALOG".into(), s.catalog.display().to_string()));
        match &redis {
            RedisRig::Single { vip, .. } => env.push(("REDIS_URL".into(), format!("redis://{}", vip.addr))),
            RedisRig::Cluster(c) => env.push(("REDIS_CLUSTER_NODES".into(), c.seeds())),
        }
        let mut rig = Rig {
            redis,
            pg,
            database_url: format!("{}/{db_name}", s.postgres.trim_end_matches('/')),
            admin_url,
            db_name,
            bin: s.server_bin.to_owned(),
            env,
            servers: Vec::new(),
            nodes: Default::default(),
            show_key: format!("{{show:{}}}", s.show),
        };
        for i in 0..s.gateways {
            rig.servers.push((free_port(), None));
            rig.boot(i).await?;
        }
        Ok(rig)
    }

    /// Starts slot `i`'s gateway on its port (the same after every restart,
    /// as behind a service address).
    async fn boot(&mut self, i: usize) -> Result<(), String> {
        let mut env = self.env.clone();
        env.push(("BIND".into(), format!("127.0.0.1:{}", self.servers[i].0)));
        let server = Server::start(&self.bin, &env).await?;
        self.nodes.set(i, Some(server.addr));
        self.servers[i].1 = Some(server);
        Ok(())
    }

    /// Does `fault` to the rig and answers once it is over (the thing
    /// killed is back, the pause lifted), with a line of what was done.
    pub async fn inject(&mut self, fault: Fault, victim: usize) -> Result<String, String> {
        let slot = victim % self.servers.len();
        match (fault, &mut self.redis) {
            (Fault::GatewayKilled, _) => {
                self.nodes.set(slot, None);
                if let Some(s) = self.servers[slot].1.take() {
                    s.kill().await;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
                self.boot(slot).await?;
                Ok(format!("gateway {slot} SIGKILLed, started again 2 s later"))
            }
            (Fault::GatewayDrained, _) => {
                let Some(s) = self.servers[slot].1.take() else {
                    return Err(format!("gateway {slot} was not running"));
                };
                // The balancer takes it out when its readiness turns 503;
                // requests already sent to it finish.
                let draining = tokio::spawn(s.terminate());
                tokio::time::sleep(Duration::from_millis(200)).await;
                self.nodes.set(slot, None);
                let status = draining.await.map_err(|e| e.to_string())??;
                if !status.success() {
                    return Err(format!("gateway {slot} drained with {status}"));
                }
                self.boot(slot).await?;
                Ok(format!("gateway {slot} drained with SIGTERM ({status}), started again"))
            }
            (Fault::PostgresPaused, _) => {
                self.pg.pause();
                tokio::time::sleep(Duration::from_secs(5)).await;
                self.pg.resume();
                Ok("Postgres answered nothing for 5 s".into())
            }
            (Fault::RedisKilled, RedisRig::Single { primary, .. }) => {
                tokio::task::block_in_place(|| primary.kill());
                tokio::time::sleep(Duration::from_secs(3)).await;
                // Back empty; the replica syncs from it again (empty too).
                tokio::task::block_in_place(|| primary.restart());
                Ok("Redis killed, back empty 3 s later".into())
            }
            (Fault::RedisRestartedEmpty, RedisRig::Single { primary, .. }) => {
                tokio::task::block_in_place(|| primary.restart());
                Ok("Redis restarted empty".into())
            }
            (Fault::RedisFailoverLagging, RedisRig::Single { primary, replica, vip }) => {
                // The replica stops following: what the primary takes from
                // now on is what a lagging replica would lose.
                let detached = tokio::task::block_in_place(|| replica.command("REPLICAOF NO ONE"));
                if !detached.is_some_and(|r| r.starts_with("+OK")) {
                    return Err("the replica would not detach".into());
                }
                tokio::time::sleep(Duration::from_millis(1_500)).await;
                tokio::task::block_in_place(|| primary.kill());
                vip.retarget(replica.addr());
                vip.cut();
                vip.restore();
                std::mem::swap(primary, replica);
                // The old primary comes back empty as the new one's replica.
                tokio::task::block_in_place(|| {
                    replica.restart();
                    replica.replicate(primary);
                });
                Ok("failed over to a replica 1.5 s behind".into())
            }
            (Fault::SubscriptionBlackholed, RedisRig::Single { vip, .. }) => {
                vip.blackhole();
                Ok("every open Redis connection silenced (no FIN, no RST)".into())
            }
            (Fault::RedisKilled, RedisRig::Cluster(c)) => {
                let victim = tokio::task::block_in_place(|| c.master_of(&self.show_key));
                tokio::task::block_in_place(|| {
                    c.nodes[victim].kill();
                    // The cluster says "ok" until it has marked the master
                    // failed: wait for the promotion itself.
                    c.wait_failover(&self.show_key, victim);
                    let others: Vec<&OwnRedis> = c
                        .nodes
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| *i != victim)
                        .map(|(_, n)| n)
                        .collect();
                    c.wait_ok(&others);
                });
                tokio::task::block_in_place(|| {
                    c.nodes[victim].revive();
                    c.wait_ok(&c.nodes.iter().collect::<Vec<_>>());
                });
                Ok(format!(
                    "the sale's Cluster master (:{}) killed, its replica took over, it rejoined empty",
                    c.nodes[victim].port
                ))
            }
            (Fault::SubscriptionBlackholed, RedisRig::Cluster(c)) => {
                let victim = tokio::task::block_in_place(|| c.master_of(&self.show_key));
                let port = c.nodes[victim].port;
                let stopped = std::time::Instant::now();
                tokio::task::block_in_place(|| {
                    c.nodes[victim].pause();
                    c.wait_failover(&self.show_key, victim);
                });
                // Silent for 5 s at least, as long as the promotion took if longer.
                tokio::time::sleep(Duration::from_secs(5).saturating_sub(stopped.elapsed())).await;
                tokio::task::block_in_place(|| {
                    c.nodes[victim].resume();
                    c.wait_ok(&c.nodes.iter().collect::<Vec<_>>());
                });
                Ok(format!(
                    "the sale's Cluster master (:{port}) stopped (SIGSTOP) until its replica took over, then resumed"
                ))
            }
            (other, RedisRig::Cluster(_)) => Err(format!("{other:?} is not a Cluster fault")),
        }
    }

    /// Stops the gateways and drops the run's database.
    pub async fn finish(mut self) {
        for (_, s) in &mut self.servers {
            if let Some(s) = s.take() {
                s.kill().await;
            }
        }
        drop(self.pg);
        // SG_LOAD_KEEP_DB=1: the run's database is left for a post-mortem.
        if std::env::var_os("SG_LOAD_KEEP_DB").is_some() {
            eprintln!("chaos: database kept: {}", self.database_url);
        } else if let Ok(mut admin) = sqlx::PgConnection::connect(&self.admin_url).await {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db_name))
                .execute(&mut admin)
                .await;
        }
        tokio::task::block_in_place(|| drop(self.redis));
    }
}

/// `postgres://user@host:port` → (`user@`, `host:port`).
fn postgres_parts(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or_else(|| format!("{url}: not a postgres:// URL"))?;
    let rest = rest.trim_end_matches('/');
    let (user, host) = match rest.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), rest),
    };
    if host.contains('/') {
        return Err(format!("{url}: give the server only, without a database"));
    }
    let host = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    };
    Ok((user, host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_url_splits_into_its_user_and_server() {
        assert_eq!(
            postgres_parts("postgres://postgres@127.0.0.1:5432").unwrap(),
            ("postgres@".into(), "127.0.0.1:5432".into())
        );
        assert_eq!(
            postgres_parts("postgresql://db.local/").unwrap(),
            (String::new(), "db.local:5432".into())
        );
        assert!(postgres_parts("postgres://u@h:1/test").is_err());
        assert!(postgres_parts("mysql://h").is_err());
    }
}
