//! The queue's promises, judged from what the shoppers saw: within one
//! room epoch (no Redis data loss between a shopper's join and their
//! admission) nobody who joined after another is admitted before them,
//! and nobody is admitted twice. A fault that loses Redis data starts a new
//! epoch: the queue is rebuilt from the sockets then, in their order.

use std::collections::HashMap;

use super::ledger::{Admission, Join};

/// Wall-clock windows (ms) in which Redis lost data.
pub type Losses = [(i64, i64)];

fn crosses(losses: &Losses, from: i64, to: i64) -> bool {
    losses.iter().any(|&(a, b)| a <= to && b >= from)
}

/// Admissions of one tick share its time; a later tick is at least this
/// much later.
const SAME_TICK_MS: i64 = 20;
/// A shopper's leave request may be in flight while the one behind is
/// admitted.
const LEAVING_MS: i64 = 1_000;

/// Every broken promise of the queue, one line each.
pub fn queue_breaks(
    joins: &[Join],
    admissions: &[Admission],
    left: &HashMap<String, i64>,
    losses: &Losses,
    end_ms: i64,
) -> Vec<String> {
    let mut ticks: HashMap<&str, Vec<i64>> = HashMap::new();
    for a in admissions {
        ticks.entry(a.user.as_str()).or_default().push(a.tick_ms);
    }
    let mut out = Vec::new();
    for (user, t) in &mut ticks {
        t.sort_unstable();
        t.dedup_by(|b, a| *b - *a <= SAME_TICK_MS);
        if t.len() > 1 && !crosses(losses, t[0], t[t.len() - 1]) {
            out.push(format!("{user} admitted {} times in one room epoch ({t:?})", t.len()));
        }
    }
    let first: HashMap<&str, i64> = ticks.iter().map(|(u, t)| (*u, t[0])).collect();
    let mut by_start: Vec<&Join> = joins.iter().collect();
    by_start.sort_by_key(|j| j.started_ms);
    for b in &by_start {
        let Some(&tb) = first.get(b.user.as_str()) else {
            continue;
        };
        for a in by_start.iter().take_while(|a| a.started_ms < b.started_ms) {
            if a.done_ms >= b.started_ms || a.user == b.user {
                continue; // not strictly ahead: the two joins overlapped
            }
            match first.get(a.user.as_str()) {
                Some(&ta) if ta > tb + SAME_TICK_MS && !crosses(losses, a.started_ms, ta) => out.push(format!(
                    "{} joined after {} but was admitted {} ms before them",
                    b.user,
                    a.user,
                    ta - tb
                )),
                None => {
                    let gone = left.get(a.user.as_str()).copied().unwrap_or(end_ms);
                    if gone > tb + LEAVING_MS && !crosses(losses, a.started_ms, tb) {
                        out.push(format!(
                            "{} joined after {} and was admitted while {} still waited",
                            b.user, a.user, a.user
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(user: &str, started_ms: i64, done_ms: i64) -> Join {
        Join {
            user: user.into(),
            started_ms,
            done_ms,
        }
    }

    fn admitted(user: &str, tick_ms: i64) -> Admission {
        Admission {
            user: user.into(),
            tick_ms,
        }
    }

    #[test]
    fn admitted_in_the_order_of_joining_is_kept() {
        let joins = [join("a", 0, 10), join("b", 20, 30), join("c", 40, 50)];
        let adm = [admitted("a", 1_000), admitted("b", 1_000), admitted("c", 1_200)];
        assert!(queue_breaks(&joins, &adm, &HashMap::new(), &[], 9_000).is_empty());
    }

    #[test]
    fn overtaking_is_a_break_unless_a_data_loss_lies_between() {
        let joins = [join("a", 0, 10), join("b", 20, 30)];
        let adm = [admitted("a", 2_000), admitted("b", 1_000)];
        let breaks = queue_breaks(&joins, &adm, &HashMap::new(), &[], 9_000);
        assert_eq!(breaks, ["b joined after a but was admitted 1000 ms before them"]);
        assert!(queue_breaks(&joins, &adm, &HashMap::new(), &[(500, 600)], 9_000).is_empty());
    }

    #[test]
    fn overlapping_joins_have_no_order() {
        let joins = [join("a", 0, 50), join("b", 20, 30)];
        let adm = [admitted("a", 2_000), admitted("b", 1_000)];
        assert!(queue_breaks(&joins, &adm, &HashMap::new(), &[], 9_000).is_empty());
    }

    #[test]
    fn someone_left_waiting_behind_a_later_joiner_is_a_break() {
        let joins = [join("a", 0, 10), join("b", 20, 30)];
        let adm = [admitted("b", 1_000)];
        let still_there = queue_breaks(&joins, &adm, &HashMap::new(), &[], 9_000);
        assert_eq!(still_there, ["b joined after a and was admitted while a still waited"]);
        let gone_before: HashMap<String, i64> = [("a".to_owned(), 900)].into();
        assert!(queue_breaks(&joins, &adm, &gone_before, &[], 9_000).is_empty());
    }

    #[test]
    fn told_twice_of_one_admission_is_once_but_two_admissions_are_a_break() {
        let joins = [join("a", 0, 10)];
        let same = [admitted("a", 1_000), admitted("a", 1_005)];
        assert!(queue_breaks(&joins, &same, &HashMap::new(), &[], 9_000).is_empty());
        let twice = [admitted("a", 1_000), admitted("a", 5_000)];
        assert_eq!(queue_breaks(&joins, &twice, &HashMap::new(), &[], 9_000).len(), 1);
        assert!(queue_breaks(&joins, &twice, &HashMap::new(), &[(2_000, 2_500)], 9_000).is_empty());
    }
}
