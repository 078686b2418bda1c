//! The faults the soak injects, and when.

use std::time::Duration;

use super::rig::Backend;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Fault {
    /// Redis SIGKILLed, back empty 3 s later (on a Cluster: the sale's
    /// master, its replica takes over, it rejoins empty).
    RedisKilled,
    /// Redis SIGKILLed and started again at once, empty.
    RedisRestartedEmpty,
    /// The replica stops following, the primary takes 1.5 s more writes and
    /// dies, the replica is promoted behind the same address.
    RedisFailoverLagging,
    /// Every open Redis connection, the subscriptions included, stops
    /// forwarding without closing (new connections pass); on a Cluster, the
    /// sale's master stops (SIGSTOP: connections open, nothing answered)
    /// until its replica has taken over, then goes on as a replica.
    SubscriptionBlackholed,
    /// Postgres answers nothing for 5 s (connections stay open).
    PostgresPaused,
    /// A gateway SIGKILLed, started again 2 s later.
    GatewayKilled,
    /// A gateway drained with SIGTERM, started again once it exited.
    GatewayDrained,
}

impl Fault {
    pub const ALL: [Fault; 7] = [
        Fault::RedisKilled,
        Fault::RedisRestartedEmpty,
        Fault::RedisFailoverLagging,
        Fault::SubscriptionBlackholed,
        Fault::PostgresPaused,
        Fault::GatewayKilled,
        Fault::GatewayDrained,
    ];

    /// Whether the fault may lose Redis data: the queue and the seats start
    /// a new epoch, and orders across it are not compared. (On a Cluster a
    /// silenced master is failed over, like a killed one.)
    pub fn loses_redis_data(self, backend: Backend) -> bool {
        match self {
            Fault::RedisKilled | Fault::RedisRestartedEmpty | Fault::RedisFailoverLagging => true,
            Fault::SubscriptionBlackholed => backend == Backend::Cluster,
            _ => false,
        }
    }

    /// What can be done to this backend: a Cluster announces its nodes'
    /// own addresses, so there is no single address to move (its silence is
    /// a stopped master instead).
    pub fn applies_to(self, backend: Backend) -> bool {
        backend == Backend::Redis || !matches!(self, Fault::RedisRestartedEmpty | Fault::RedisFailoverLagging)
    }
}

/// When each fault starts: one every `every`, from `every` on, while a
/// whole `every` still fits in the run, the kinds taken in turn.
pub fn schedule(kinds: &[Fault], run: Duration, every: Duration) -> Vec<(Duration, Fault)> {
    if kinds.is_empty() || every.is_zero() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut at = every;
    while at + every <= run + every / 2 && at < run {
        out.push((at, kinds[out.len() % kinds.len()]));
        at += every;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_comes_round_in_turn() {
        let s = schedule(&Fault::ALL, Duration::from_secs(600), Duration::from_secs(20));
        assert_eq!(s.len(), 29);
        assert_eq!(s[0], (Duration::from_secs(20), Fault::RedisKilled));
        assert_eq!(s[7].1, Fault::RedisKilled);
        for kind in Fault::ALL {
            let n = s.iter().filter(|(_, f)| *f == kind).count();
            assert!(n >= 4, "{kind:?} {n} times");
        }
        assert!(s.iter().all(|(at, _)| *at < Duration::from_secs(600)));
    }

    #[test]
    fn nothing_is_scheduled_without_kinds_or_time() {
        assert!(schedule(&[], Duration::from_secs(60), Duration::from_secs(10)).is_empty());
        assert!(schedule(&Fault::ALL, Duration::from_secs(5), Duration::from_secs(10)).is_empty());
    }

    #[test]
    fn a_cluster_has_no_single_address_to_move() {
        let on_cluster: Vec<Fault> = Fault::ALL
            .into_iter()
            .filter(|f| f.applies_to(Backend::Cluster))
            .collect();
        assert_eq!(
            on_cluster,
            [
                Fault::RedisKilled,
                Fault::SubscriptionBlackholed,
                Fault::PostgresPaused,
                Fault::GatewayKilled,
                Fault::GatewayDrained
            ]
        );
        assert!(Fault::ALL.iter().all(|f| f.applies_to(Backend::Redis)));
        // A stopped Cluster master fails over: what it had not replicated is gone.
        assert!(Fault::SubscriptionBlackholed.loses_redis_data(Backend::Cluster));
        assert!(!Fault::SubscriptionBlackholed.loses_redis_data(Backend::Redis));
        assert!(!Fault::PostgresPaused.loses_redis_data(Backend::Cluster));
    }
}
