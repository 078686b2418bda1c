//! Each script run directly against real Redis: what it writes, what it
//! answers, what it publishes, per the KEYS/ARGV header of its file. Replies
//! are read with the service's own `ReplyReader`, item by item in the
//! header's order, and finished: a reply longer than its header says fails.
//! One module per script family.

#[path = "../common/mod.rs"]
mod common;

mod seats;
mod waitlist;
mod waitroom;

use std::collections::BTreeMap;

use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, Script, Value};
use showgate::error::Result;
use showgate::redis::keys::{Keys, ShowKeys};
use showgate::redis::reply::ReplyReader;
use showgate::redis::scripts::Scripts;

pub const NOW: i64 = 1_800_000_000_000;
pub const RETENTION: i64 = 3_600_000;
const EMPTY_RECORD: &str = r#"{"booked": [], "pending": []}"#;

/// One show's seat keys under a unique prefix, and the seat scripts.
pub struct Fixture {
    pub conn: MultiplexedConnection,
    pub client: redis::Client,
    pub keys: ShowKeys,
    pub prefix: String,
    pub scripts: Scripts,
}

/// The seats, holds, deadlines and version of a show, as `Fixture::state` reads them.
pub type State = (
    BTreeMap<String, String>,
    BTreeMap<String, String>,
    Vec<(String, f64)>,
    Option<i64>,
);

impl Fixture {
    /// A show whose (empty) state has been built under epoch "e1".
    pub async fn new() -> Self {
        let f = Self::bare().await;
        let mut reply = f.run(&f.scripts.rebuild, 0, &["", "e1", "60000", EMPTY_RECORD]).await;
        let (_, _, epoch) = head(&mut reply).unwrap();
        assert_eq!((epoch, reply.next_int().unwrap()), ("e1".into(), 1));
        reply.finish().unwrap();
        f
    }

    /// A show with no state at all (never built, or lost by Redis).
    pub async fn bare() -> Self {
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

    /// The file name of one of the fixture's scripts, for the reader's errors.
    fn name(&self, script: &Script) -> &'static str {
        let s = &self.scripts;
        [
            (&s.hold, "seats_hold"),
            (&s.hold_best, "seats_hold_best"),
            (&s.release, "seats_release"),
            (&s.extend_for_order, "seats_extend_for_order"),
            (&s.book, "seats_book"),
            (&s.release_order, "seats_release_order"),
            (&s.expire, "seats_expire"),
            (&s.snapshot, "seats_snapshot"),
            (&s.rebuild, "seats_rebuild"),
            (&s.wait_join, "waitlist_join"),
            (&s.wait_leave, "waitlist_leave"),
            (&s.wait_standing, "waitlist_standing"),
        ]
        .into_iter()
        .find(|(known, _)| std::ptr::eq(*known, script))
        .map_or("seat script", |(_, name)| name)
    }

    async fn invoke(&self, script: &Script, now: i64, args: &[&str]) -> redis::RedisResult<Value> {
        self.invoke_as(script, now, args, None).await
    }

    /// Invokes a script, charging `charged`'s budget (user, interval µs,
    /// burst) when given: KEYS[15] and the last two ARGV.
    pub async fn invoke_as(
        &self,
        script: &Script,
        now: i64,
        args: &[&str],
        charged: Option<(&str, i64, i64)>,
    ) -> redis::RedisResult<Value> {
        let mut inv = script.prepare_invoke();
        for k in self.keys.script_keys() {
            inv.key(k);
        }
        if let Some((user, _, _)) = charged {
            inv.key(self.keys.budget(user));
        }
        inv.arg("s1")
            .arg(&self.keys.channel)
            .arg("PUBLISH")
            .arg(now)
            .arg(RETENTION);
        for a in args {
            inv.arg(*a);
        }
        if let Some((_, interval, burst)) = charged {
            inv.arg(interval).arg(burst);
        }
        let mut conn = self.conn.clone();
        inv.invoke_async(&mut conn).await
    }

    /// Runs a script and answers its error, which it must give.
    pub async fn run_err(&self, script: &Script, now: i64, args: &[&str]) -> redis::RedisError {
        self.invoke(script, now, args).await.expect_err("the script refuses")
    }

    /// Runs a seat script; its reply, to be read in the header's order.
    pub async fn run(&self, script: &Script, now: i64, args: &[&str]) -> ReplyReader {
        let reply = self.invoke(script, now, args).await.unwrap();
        ReplyReader::new(self.name(script), reply).unwrap()
    }

    /// Everything the scripts keep for the show's live holds, for
    /// before/after comparisons.
    pub async fn state(&self) -> State {
        let mut c = self.conn.clone();
        let seats: BTreeMap<String, String> = c.hgetall(&self.keys.seats).await.unwrap();
        let holds: BTreeMap<String, String> = c.hgetall(&self.keys.holds).await.unwrap();
        let mut deadlines: Vec<(String, f64)> = c.zrange_withscores(&self.keys.deadlines, 0, -1).await.unwrap();
        // The holds' deadlines; the tombstones' next step ("~gc") is not a hold's.
        deadlines.retain(|(id, _)| id != "~gc");
        let version: Option<i64> = c.get(&self.keys.version).await.unwrap();
        (seats, holds, deadlines, version)
    }

    /// A hold's record, live or a tombstone of either generation.
    pub async fn hold_json(&self, id: &str) -> serde_json::Value {
        let mut c = self.conn.clone();
        for key in [&self.keys.holds, &self.keys.ended, &self.keys.ended_old] {
            let raw: Option<String> = c.hget(key, id).await.unwrap();
            if let Some(raw) = raw {
                return serde_json::from_str(&raw).unwrap();
            }
        }
        panic!("hold {id} has no record");
    }
}

/// The common head of every seat script's reply (`lua/common.lua`):
/// `(expired, version, epoch)`.
pub fn head(reply: &mut ReplyReader) -> Result<(i64, i64, String)> {
    Ok((reply.next_int()?, reply.next_int()?, reply.next_text()?))
}
