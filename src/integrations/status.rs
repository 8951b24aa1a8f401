//! What each sink's delivery task reports, for `/v1/health`, `vigocli doctor` and `/metrics`:
//! its cursor, its last delivery, and since when it has been failing and why.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

#[derive(Debug)]
pub struct SinkState {
    pub name: String,
    pub kind: &'static str,
    /// Where it delivers, as it may be shown (a webhook's origin only: its path may hold a token).
    pub shown: String,
    last_seq: AtomicI64,
    /// Unix time of the last delivery that counted (0: none yet).
    last_success: AtomicI64,
    /// Unix time of the first failure since the last success (0: not failing).
    failing_since: AtomicI64,
    last_error: Mutex<String>,
    delivered: AtomicU64,
    failures: AtomicU64,
}

/// One sink's state at a moment.
#[derive(Clone, Debug, Serialize)]
pub struct SinkReport {
    pub name: String,
    pub kind: &'static str,
    pub target: String,
    /// The last audit row the sink has taken.
    pub last_seq: i64,
    pub last_success: Option<i64>,
    pub failing_since: Option<i64>,
    /// Failing for longer than `integrations.warn_after`.
    pub warning: bool,
    pub last_error: Option<String>,
    pub delivered: u64,
    pub failures: u64,
}

impl SinkState {
    pub fn delivered(&self, seq: i64, rows: u64, now: i64) {
        self.last_seq.fetch_max(seq, Ordering::Relaxed);
        self.last_success.store(now, Ordering::Relaxed);
        self.delivered.fetch_add(rows, Ordering::Relaxed);
    }

    /// The sink answered (a write went through): it is not failing, even if nothing counted yet.
    pub fn working(&self) {
        self.failing_since.store(0, Ordering::Relaxed);
    }

    pub fn failed(&self, error: String, now: i64) {
        let _ = self.failing_since.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        self.failures.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = error;
    }

    pub fn resume_at(&self, seq: i64, last_success: Option<i64>) {
        self.last_seq.store(seq, Ordering::Relaxed);
        self.last_success.store(last_success.unwrap_or(0), Ordering::Relaxed);
    }

    pub fn last_seq(&self) -> i64 {
        self.last_seq.load(Ordering::Relaxed)
    }
}

/// Every configured sink.
#[derive(Debug, Default)]
pub struct Board {
    sinks: Vec<Arc<SinkState>>,
    warn_after: i64,
}

impl Board {
    pub fn new(warn_after_secs: u64) -> Board {
        Board { sinks: Vec::new(), warn_after: warn_after_secs as i64 }
    }

    pub fn add(&mut self, name: &str, kind: &'static str, shown: String) -> Arc<SinkState> {
        let state = Arc::new(SinkState {
            name: name.to_string(),
            kind,
            shown,
            last_seq: AtomicI64::new(0),
            last_success: AtomicI64::new(0),
            failing_since: AtomicI64::new(0),
            last_error: Mutex::new(String::new()),
            delivered: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        });
        self.sinks.push(state.clone());
        state
    }

    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    pub fn reports(&self, now: i64) -> Vec<SinkReport> {
        self.sinks
            .iter()
            .map(|s| {
                let nonzero = |v: i64| (v != 0).then_some(v);
                let failing_since = nonzero(s.failing_since.load(Ordering::Relaxed));
                SinkReport {
                    name: s.name.clone(),
                    kind: s.kind,
                    target: s.shown.clone(),
                    last_seq: s.last_seq(),
                    last_success: nonzero(s.last_success.load(Ordering::Relaxed)),
                    failing_since,
                    warning: failing_since.is_some_and(|t| now - t >= self.warn_after),
                    last_error: failing_since
                        .map(|_| s.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone()),
                    delivered: s.delivered.load(Ordering::Relaxed),
                    failures: s.failures.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// One sentence per sink failing for longer than the threshold, for `/v1/health`.
    pub fn problems(&self, now: i64, head: i64) -> Vec<String> {
        self.reports(now)
            .into_iter()
            .filter(|r| r.warning)
            .map(|r| {
                format!(
                    "audit sink {} ({} {}) failing for {}: {}; {} rows wait in the audit log and go out once it recovers",
                    r.name,
                    r.kind,
                    r.target,
                    human(now - r.failing_since.unwrap_or(now)),
                    r.last_error.unwrap_or_default(),
                    (head - r.last_seq).max(0)
                )
            })
            .collect()
    }
}

/// `45s`, `12m`, `3h05m`, `2d04h`.
fn human(secs: i64) -> String {
    match secs.max(0) {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sink_failing_past_the_threshold_is_a_problem_until_it_works() {
        let mut board = Board::new(60);
        let s = board.add("soc", "webhook", "https://h.example".into());
        s.resume_at(5, Some(1000));
        s.failed("answered HTTP 500".into(), 2000);
        s.failed("answered HTTP 503".into(), 2030);
        assert!(board.problems(2059, 9).is_empty(), "not yet");
        let p = board.problems(2060, 9);
        assert_eq!(p.len(), 1);
        assert!(
            p[0].contains("failing for 1m") && p[0].contains("HTTP 503") && p[0].contains("4 rows wait"),
            "{}",
            p[0]
        );
        let r = &board.reports(2060)[0];
        assert_eq!((r.failing_since, r.failures, r.last_success), (Some(2000), 2, Some(1000)));
        s.working();
        s.delivered(9, 4, 2100);
        assert!(board.problems(5000, 9).is_empty());
        let r = &board.reports(2100)[0];
        assert_eq!((r.last_seq, r.delivered, r.last_error.clone()), (9, 4, None));
    }
}
