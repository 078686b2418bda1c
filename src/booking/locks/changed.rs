//! Shows whose seats changed, as this node learns of them: the replies to
//! its own commands, and what the other nodes announce (one message per
//! node per sweeper pass, not per change). The sweeper and the waiting-list
//! figures each take what changed since they last looked, so a node does
//! per-show work only for shows that changed or are due: an idle node costs
//! the shared Redis next to nothing however many shows the catalog has.

use std::collections::HashSet;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct ChangedShows {
    sets: Mutex<Sets>,
}

#[derive(Debug, Default)]
struct Sets {
    /// Changed here, not yet announced to the other nodes.
    mine: HashSet<String>,
    /// Changed anywhere, not yet looked at by the sweeper / the figures.
    sweep: HashSet<String>,
    figures: HashSet<String>,
}

impl ChangedShows {
    fn sets(&self) -> std::sync::MutexGuard<'_, Sets> {
        self.sets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A command of this node changed the show.
    pub fn note(&self, show: &str) {
        let mut s = self.sets();
        if !s.mine.contains(show) {
            s.mine.insert(show.to_owned());
        }
        if !s.sweep.contains(show) {
            s.sweep.insert(show.to_owned());
        }
        if !s.figures.contains(show) {
            s.figures.insert(show.to_owned());
        }
    }

    /// Another node announced these shows changed.
    pub fn heard(&self, shows: Vec<String>) {
        let mut s = self.sets();
        for show in shows {
            s.sweep.insert(show.clone());
            s.figures.insert(show);
        }
    }

    /// What to announce to the other nodes.
    pub fn take_mine(&self) -> Vec<String> {
        self.sets().mine.drain().collect()
    }

    pub fn take_for_sweep(&self) -> HashSet<String> {
        std::mem::take(&mut self.sets().sweep)
    }

    pub fn take_for_figures(&self) -> HashSet<String> {
        std::mem::take(&mut self.sets().figures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reader_takes_what_changed_since_it_last_looked() {
        let c = ChangedShows::default();
        c.note("a");
        c.note("a");
        c.heard(vec!["b".into()]);
        assert_eq!(
            c.take_mine(),
            vec!["a".to_owned()],
            "only what changed here is announced"
        );
        assert!(c.take_mine().is_empty());
        assert_eq!(c.take_for_sweep(), HashSet::from(["a".to_owned(), "b".to_owned()]));
        assert!(c.take_for_sweep().is_empty());
        c.note("c");
        assert_eq!(c.take_for_figures().len(), 3, "the figures had not looked yet");
        assert_eq!(c.take_for_sweep(), HashSet::from(["c".to_owned()]));
    }
}
