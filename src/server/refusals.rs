//! Refusals that a caller can provoke at will (bad enrollment tokens, replays, unentitled keys)
//! must neither grow the append-only audit log without bound nor cost the server a database
//! write each. The first refusal of a key (a source address, an envoy) in a window is recorded
//! at once, with its details; the rest are counted and recorded as one summary row when the
//! window ends. Callers also read the count to turn away a key that is over its budget before
//! doing any work for it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys tracked at once; past this, new keys share one tally so memory stays bounded.
const MAX_KEYS: usize = 50_000;
const OVERFLOW_KEY: &str = "(many sources)";

pub struct Refusals {
    window: Duration,
    tallies: Mutex<HashMap<(&'static str, String), Tally>>,
}

struct Tally {
    started: Instant,
    count: u32,
    /// Refusals counted but not yet recorded in the audit log.
    unrecorded: u32,
    reasons: BTreeMap<&'static str, u32>,
}

/// One summary row to write: `count` refusals of `action` for `key` that were not recorded
/// one by one.
#[derive(Debug, PartialEq, Eq)]
pub struct Summary {
    pub action: &'static str,
    pub key: String,
    pub count: u32,
    pub reasons: BTreeMap<&'static str, u32>,
    pub window_secs: u64,
}

impl Summary {
    pub fn detail(&self) -> serde_json::Value {
        serde_json::json!({
            "summary": true,
            "count": self.count,
            "reasons": self.reasons,
            "window_secs": self.window_secs,
        })
    }
}

impl Refusals {
    pub fn new(window: Duration) -> Refusals {
        Refusals { window, tallies: Mutex::new(HashMap::new()) }
    }

    fn key(map: &HashMap<(&'static str, String), Tally>, action: &'static str, key: &str) -> String {
        if map.len() >= MAX_KEYS && !map.contains_key(&(action, key.to_string())) {
            OVERFLOW_KEY.to_string()
        } else {
            key.to_string()
        }
    }

    /// Refusals of `action` for `key` in its current window.
    pub fn count(&self, action: &'static str, key: &str) -> u32 {
        let map = self.tallies.lock().unwrap_or_else(|p| p.into_inner());
        let key = Self::key(&map, action, key);
        map.get(&(action, key)).filter(|t| t.started.elapsed() < self.window).map_or(0, |t| t.count)
    }

    /// Notes one refusal. True when it is the first of its window and must be recorded now;
    /// otherwise it is counted for the summary.
    pub fn note(&self, action: &'static str, key: &str, reason: &'static str) -> bool {
        let mut map = self.tallies.lock().unwrap_or_else(|p| p.into_inner());
        let key = Self::key(&map, action, key);
        let tally = map.entry((action, key)).or_insert_with(|| Tally {
            started: Instant::now(),
            count: 0,
            unrecorded: 0,
            reasons: BTreeMap::new(),
        });
        // A window that has ended but not yet been drained keeps counting into its summary.
        let first = tally.count == 0;
        tally.count += 1;
        if !first {
            tally.unrecorded += 1;
            *tally.reasons.entry(reason).or_insert(0) += 1;
        }
        first
    }

    /// Summaries of the windows that have ended (all windows when `all`), which are forgotten.
    pub fn take_ended(&self, all: bool) -> Vec<Summary> {
        let mut map = self.tallies.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        map.retain(|(action, key), t| {
            if !all && t.started.elapsed() < self.window {
                return true;
            }
            if t.unrecorded > 0 {
                out.push(Summary {
                    action,
                    key: key.clone(),
                    count: t.unrecorded,
                    reasons: std::mem::take(&mut t.reasons),
                    window_secs: self.window.as_secs(),
                });
            }
            false
        });
        out.sort_by(|a, b| (a.action, &a.key).cmp(&(b.action, &b.key)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_is_recorded_the_rest_summarised_once() {
        let r = Refusals::new(Duration::from_millis(200));
        assert!(r.note("enroll.rejected", "10.0.0.1", "unknown token"));
        for _ in 0..99 {
            assert!(!r.note("enroll.rejected", "10.0.0.1", "unknown token"));
        }
        assert!(r.note("enroll.rejected", "10.0.0.2", "token expired"), "another source is its own window");
        assert_eq!(r.count("enroll.rejected", "10.0.0.1"), 100);
        assert!(r.take_ended(false).is_empty(), "the window is still open");
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(r.count("enroll.rejected", "10.0.0.1"), 0, "an ended window counts nothing");
        let ended = r.take_ended(false);
        assert_eq!(ended.len(), 1, "only the source with unrecorded refusals: {ended:?}");
        assert_eq!(ended[0].count, 99);
        assert_eq!(ended[0].reasons["unknown token"], 99);
        assert!(r.take_ended(true).is_empty());
        assert!(r.note("enroll.rejected", "10.0.0.1", "unknown token"), "a new window records again");
    }

    #[test]
    fn memory_is_bounded_whatever_the_number_of_keys() {
        let r = Refusals::new(Duration::from_secs(60));
        for i in 0..(MAX_KEYS + 1000) {
            r.note("request.rejected", &format!("k{i}"), "bad signature");
        }
        assert!(r.tallies.lock().unwrap().len() <= MAX_KEYS + 1);
        assert_eq!(r.count("request.rejected", "someone-new"), 1000, "new keys share the overflow tally");
    }
}
