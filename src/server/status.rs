//! What the server notes about itself for the console: check-ins per hour, the last audit
//! chain verification, the last publish attempt, where it listens and since when. Kept in
//! memory; the check-in counts are saved in `server_state` at shutdown and read back at start.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};

use rusqlite::Connection;

use crate::audit::Verdict;

/// Hours of check-in counts kept (the dashboard shows the last 24).
const HOURS: usize = 25;
const CHECKINS_KEY: &str = "checkins_by_hour";

/// A verification of the whole audit chain.
#[derive(Clone, Debug)]
pub struct AuditCheck {
    pub at: i64,
    pub verdict: Verdict,
    /// How long the walk took.
    pub millis: u64,
}

/// The outcome of the last publish (from the console or the API).
#[derive(Clone, Debug)]
pub struct PublishOutcome {
    pub at: i64,
    pub actor: String,
    /// Empty when it was published.
    pub errors: Vec<String>,
}

pub struct Status {
    pub started_at: i64,
    checkins: Mutex<VecDeque<(i64, u64)>>,
    audit: Mutex<Option<AuditCheck>>,
    publish: Mutex<Option<PublishOutcome>>,
    listeners: OnceLock<(SocketAddr, SocketAddr)>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Status {
    /// Starts with the check-in counts saved by the previous server, if any.
    pub fn new(conn: &Connection, now: i64) -> Status {
        let saved: VecDeque<(i64, u64)> = crate::store::counters::read_text(conn, CHECKINS_KEY)
            .ok()
            .flatten()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        Status {
            started_at: now,
            checkins: Mutex::new(saved),
            audit: Mutex::new(None),
            publish: Mutex::new(None),
            listeners: OnceLock::new(),
        }
    }

    /// Counts one check-in in the hour of `now`.
    pub fn note_checkin(&self, now: i64) {
        let hour = now - now.rem_euclid(3600);
        let mut q = lock(&self.checkins);
        match q.back_mut() {
            Some((h, n)) if *h == hour => *n += 1,
            _ => {
                q.push_back((hour, 1));
                while q.len() > HOURS {
                    q.pop_front();
                }
            }
        }
    }

    /// Check-ins per hour for the 24 hours up to `now`, oldest first (hour start, count).
    pub fn checkins_by_hour(&self, now: i64) -> Vec<(i64, u64)> {
        let this_hour = now - now.rem_euclid(3600);
        let q = lock(&self.checkins);
        (0..24)
            .rev()
            .map(|i| {
                let h = this_hour - i * 3600;
                (h, q.iter().find(|(x, _)| *x == h).map_or(0, |(_, n)| *n))
            })
            .collect()
    }

    /// Saves the check-in counts (at shutdown).
    pub fn save(&self, conn: &Connection) -> rusqlite::Result<()> {
        let text = serde_json::to_string(&*lock(&self.checkins)).unwrap_or_else(|_| "[]".into());
        crate::store::counters::write_text(conn, CHECKINS_KEY, &text)
    }

    pub fn set_audit_check(&self, check: AuditCheck) {
        *lock(&self.audit) = Some(check);
    }

    pub fn audit_check(&self) -> Option<AuditCheck> {
        lock(&self.audit).clone()
    }

    pub fn set_publish(&self, outcome: PublishOutcome) {
        *lock(&self.publish) = Some(outcome);
    }

    pub fn publish(&self) -> Option<PublishOutcome> {
        lock(&self.publish).clone()
    }

    pub fn set_listeners(&self, agent: SocketAddr, admin: SocketAddr) {
        let _ = self.listeners.set((agent, admin));
    }

    /// (agent, admin) listener addresses, once both are bound.
    pub fn listeners(&self) -> Option<(SocketAddr, SocketAddr)> {
        self.listeners.get().copied()
    }
}

/// Walks the whole audit chain on its own connection (so the server's is not held), and
/// records the verdict.
pub fn verify_audit(server: &super::state::Server) -> Result<AuditCheck, String> {
    let started = std::time::Instant::now();
    let conn = crate::store::open(&server.paths.db).map_err(|e| e.to_string())?;
    let verdict = crate::audit::verify(&conn, None).map_err(|e| e.to_string())?;
    let check = AuditCheck {
        at: crate::util::time::unix_now(),
        verdict,
        millis: started.elapsed().as_millis() as u64,
    };
    server.status.set_audit_check(check.clone());
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkins_are_counted_per_hour_and_survive_a_restart() {
        let dir = std::env::temp_dir().join(format!("vigo-status-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let conn = crate::store::open(&dir.join("s.db")).unwrap();
        let now = 1_000_000 * 3600 + 10;
        let s = Status::new(&conn, now);
        s.note_checkin(now - 7200);
        s.note_checkin(now - 1);
        s.note_checkin(now);
        s.note_checkin(now - 30 * 3600);
        let by_hour = s.checkins_by_hour(now);
        assert_eq!(by_hour.len(), 24);
        assert_eq!(by_hour[23], (now - 10, 2));
        assert_eq!(by_hour[21].1, 1);
        assert_eq!(by_hour.iter().map(|(_, n)| n).sum::<u64>(), 3, "30 h ago is out of the chart");
        s.save(&conn).unwrap();
        let again = Status::new(&conn, now);
        assert_eq!(again.checkins_by_hour(now), by_hour);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
