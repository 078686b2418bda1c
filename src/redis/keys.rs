//! Redis key and channel names: built here and nowhere else. Every key of a
//! show shares the hash tag `{show:<id>}`, so the multi-key scripts run on
//! one Redis Cluster slot and the show's channel hashes to the same shard.

/// The names of one show's keys, in the order the seat scripts take them.
#[derive(Debug, Clone)]
pub struct ShowKeys {
    pub seats: String,
    pub holds: String,
    pub users: String,
    pub deadlines: String,
    /// Ended hold records (tombstones), by generation: the current one and
    /// the retired one, each dropped whole (see `lua/common.lua`).
    pub ended: String,
    pub ended_old: String,
    pub version: String,
    pub epoch: String,
    pub stamps: String,
    /// The waiting list for returned seats: waiters in order, and the rest.
    pub waiters: String,
    pub waitlist: String,
    /// The same waiters by the quantity they wait for, then by arrival.
    pub waiters_by_quantity: String,
    /// The show's waiting room, as the seat scripts see it: whether the
    /// show is gated, and its admitted shoppers (an offer admits its waiter).
    pub room_config: String,
    pub room_admitted: String,
    pub channel: String,
    budget_prefix: String,
}

impl ShowKeys {
    /// The keys the seat engine owns (all but the waiting room's two):
    /// what forgetting a show drops.
    pub fn own_keys(&self) -> [&str; 12] {
        let k = self.script_keys();
        [k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8], k[9], k[10], k[13]]
    }

    /// KEYS[1..14] of every seat script (see `lua/common.lua`).
    pub fn script_keys(&self) -> [&str; 14] {
        [
            &self.seats,
            &self.holds,
            &self.users,
            &self.deadlines,
            &self.ended,
            &self.version,
            &self.epoch,
            &self.stamps,
            &self.waiters,
            &self.waitlist,
            &self.waiters_by_quantity,
            &self.room_config,
            &self.room_admitted,
            &self.ended_old,
        ]
    }

    /// A user's budget of seat-changing calls on this show (KEYS[15] of a
    /// charged script): one short-lived key, gone once the budget is full again.
    pub fn budget(&self, user: &str) -> String {
        format!("{}{user}", self.budget_prefix)
    }
}

/// The names of one show's waiting-room keys (same hash tag as its seats, so
/// the admission script can see how many seats are left).
#[derive(Debug, Clone)]
pub struct RoomKeys {
    pub config: String,
    pub queue: String,
    pub pre: String,
    /// The pre-queue as it was when the opening began (the lottery's entrants).
    pub entrants: String,
    pub seq: String,
    pub seen: String,
    pub stats: String,
    pub admitted: String,
    pub events: String,
    pub lease: String,
    pub fence: String,
    pub seats: String,
    /// Admitted shoppers who held seats / placed an order (the funnel).
    pub held: String,
    pub ordered: String,
    pub channel: String,
    /// Prefix of the spent proof-of-work challenges (each key expires with
    /// its challenge).
    pub spent: String,
}

/// KEYS of each waiting-room script, in the order its header lists them
/// (`lua/wr_*.lua`): the engine and the script tests take them from here.
impl RoomKeys {
    pub fn join_keys(&self) -> [&str; 9] {
        [
            &self.queue,
            &self.pre,
            &self.seq,
            &self.seen,
            &self.stats,
            &self.admitted,
            &self.events,
            &self.config,
            &self.entrants,
        ]
    }

    /// The key that marks a solved proof-of-work challenge spent.
    pub fn spent_key(&self, challenge: &str) -> String {
        format!("{}{challenge}", self.spent)
    }

    pub fn leave_keys(&self) -> [&str; 5] {
        [&self.queue, &self.pre, &self.seen, &self.stats, &self.events]
    }

    pub fn lease_keys(&self) -> [&str; 2] {
        [&self.lease, &self.fence]
    }

    pub fn admit_keys(&self) -> [&str; 8] {
        [
            &self.queue,
            &self.admitted,
            &self.seen,
            &self.stats,
            &self.events,
            &self.lease,
            &self.seats,
            &self.config,
        ]
    }

    pub fn open_begin_keys(&self) -> [&str; 6] {
        [
            &self.queue,
            &self.pre,
            &self.seq,
            &self.config,
            &self.lease,
            &self.entrants,
        ]
    }

    pub fn open_keys(&self) -> [&str; 4] {
        [&self.queue, &self.pre, &self.events, &self.lease]
    }

    pub fn ranks_keys(&self) -> [&str; 2] {
        [&self.queue, &self.events]
    }

    pub fn settle_keys(&self) -> [&str; 2] {
        [&self.admitted, &self.stats]
    }

    pub fn observe_keys(&self) -> [&str; 6] {
        [
            &self.stats,
            &self.admitted,
            &self.seats,
            &self.held,
            &self.ordered,
            &self.queue,
        ]
    }

    pub fn all(&self) -> [&str; 14] {
        [
            &self.config,
            &self.queue,
            &self.pre,
            &self.entrants,
            &self.seq,
            &self.seen,
            &self.stats,
            &self.admitted,
            &self.events,
            &self.lease,
            &self.fence,
            &self.held,
            &self.ordered,
            &self.channel,
        ]
    }
}

/// Key names under one prefix. Tests use a unique prefix per run.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self { prefix: prefix.into() }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn show(&self, show: &str) -> ShowKeys {
        let tag = format!("{}{{show:{show}}}", self.prefix);
        ShowKeys {
            seats: format!("{tag}:seats"),
            holds: format!("{tag}:holds"),
            users: format!("{tag}:users"),
            deadlines: format!("{tag}:deadlines"),
            ended: format!("{tag}:ended"),
            ended_old: format!("{tag}:ended:old"),
            version: format!("{tag}:version"),
            epoch: format!("{tag}:epoch"),
            stamps: format!("{tag}:stamps"),
            waiters: format!("{tag}:waiters"),
            waitlist: format!("{tag}:waitlist"),
            waiters_by_quantity: format!("{tag}:waiters:q"),
            room_config: format!("{tag}:wr:config"),
            room_admitted: format!("{tag}:wr:admitted"),
            channel: format!("{tag}:events"),
            budget_prefix: format!("{tag}:budget:"),
        }
    }

    pub fn room(&self, show: &str) -> RoomKeys {
        let tag = format!("{}{{show:{show}}}:wr", self.prefix);
        RoomKeys {
            config: format!("{tag}:config"),
            queue: format!("{tag}:queue"),
            pre: format!("{tag}:pre"),
            entrants: format!("{tag}:entrants"),
            seq: format!("{tag}:seq"),
            seen: format!("{tag}:seen"),
            stats: format!("{tag}:stats"),
            admitted: format!("{tag}:admitted"),
            events: format!("{tag}:evseq"),
            lease: format!("{tag}:lease"),
            fence: format!("{tag}:fence"),
            seats: self.show(show).seats,
            held: format!("{tag}:held"),
            ordered: format!("{tag}:ordered"),
            channel: format!("{tag}:events"),
            spent: format!("{tag}:pow:"),
        }
    }

    /// The Redis Stream the outbox is relayed to.
    pub fn event_stream(&self) -> String {
        format!("{}events:orders", self.prefix)
    }

    /// A key of the nodes' own housekeeping (leases, shared figures), outside any show.
    pub fn ops(&self, name: &str) -> String {
        format!("{}ops:{name}", self.prefix)
    }

    /// The set of shows with a waiting room. Outside any show's hash tag:
    /// only admin writes and the nodes' config refresh touch it.
    pub fn room_index(&self) -> String {
        format!("{}waitrooms", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_show_shares_one_hash_tag() {
        let k = Keys::new("t1:").show("s-1");
        for key in k.script_keys().into_iter().chain([k.channel.as_str()]) {
            assert!(key.starts_with("t1:{show:s-1}:"), "{key}");
            let open = key.find('{').unwrap();
            let close = key.find('}').unwrap();
            assert_eq!(&key[open + 1..close], "show:s-1");
        }
        let keys = Keys::new("t1:");
        let r = keys.room("s-1");
        let seats = keys.show("s-1");
        assert_eq!(
            (&seats.room_config, &seats.room_admitted),
            (&r.config, &r.admitted),
            "the seat scripts see the room's own keys"
        );
        for key in r.all().into_iter().chain([r.seats.as_str()]) {
            assert!(key.starts_with("t1:{show:s-1}:"), "{key}");
        }
    }
}
