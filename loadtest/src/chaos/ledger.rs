//! What the soak's shoppers saw, written down as it happened, for the
//! verdict at the end.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// A shopper's join: wall-clock ms when the first try was sent and when
/// the place was confirmed.
#[derive(Debug, Clone)]
pub struct Join {
    pub user: String,
    pub started_ms: i64,
    pub done_ms: i64,
}

/// An admission as the server stamped it: its tick's time, from the
/// token's expiry less the room's TTL.
#[derive(Debug, Clone)]
pub struct Admission {
    pub user: String,
    pub tick_ms: i64,
}

/// What an order must be at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Confirmed,
    Cancelled,
    /// The cancel's answer was lost: either.
    ConfirmedOrCancelled,
}

#[derive(Debug, Clone)]
pub struct PaidOrder {
    pub seats: Vec<String>,
    pub expect: Expect,
}

#[derive(Default)]
pub struct Book {
    pub joins: Vec<Join>,
    pub admissions: Vec<Admission>,
    /// Users who left the queue unadmitted, and when (wall-clock ms).
    pub left: HashMap<String, i64>,
    pub paid: HashMap<String, PaidOrder>,
    pub counts: BTreeMap<String, u64>,
    /// Broken promises seen on the way (a 500, a socket never told).
    pub violations: Vec<String>,
}

#[derive(Default)]
pub struct Ledger(Mutex<Book>);

impl Ledger {
    pub fn with<R>(&self, f: impl FnOnce(&mut Book) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn count(&self, what: &str) {
        self.with(|b| *b.counts.entry(what.to_owned()).or_default() += 1);
    }

    pub fn violation(&self, what: String) {
        self.with(|b| b.violations.push(what));
    }
}

pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
