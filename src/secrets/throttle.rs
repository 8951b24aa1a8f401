//! Throttling of wrong unlock passphrases. The unlock gate is hygiene, not a wall (whoever reads
//! the master key reads every secret without it), but guessing the passphrase must not be free:
//! the first few failures in a row cost nothing (typos), then each attempt must wait a delay
//! that doubles, and from the tenth failure on the gate stays shut for 15 minutes after every
//! failure. The count is kept in a file beside the verifier, so it outlives the process; a
//! correct passphrase resets it. Attempts take a lock, so parallel guesses queue up instead of
//! all slipping through one window.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::util::{fsutil, lock::FileLock};

/// Failures in a row that cost no wait.
pub const FREE_FAILURES: u32 = 3;
/// From this many failures in a row, every attempt waits the lockout window.
pub const LOCKOUT_AFTER: u32 = 10;
pub const LOCKOUT_SECS: i64 = 15 * 60;

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Record {
    /// Wrong passphrases in a row.
    failures: u32,
    /// Unix time of the last one.
    last_failure: i64,
}

/// Seconds an attempt must wait after the last of `failures` wrong passphrases in a row.
pub fn delay_after(failures: u32) -> i64 {
    match failures {
        n if n < FREE_FAILURES => 0,
        n if n >= LOCKOUT_AFTER => LOCKOUT_SECS,
        // 2 s after the third failure, doubling: 4, 8, … 128 s after the ninth.
        n => 1 << (n - FREE_FAILURES + 1),
    }
}

/// The attempt in progress: holds the lock until dropped.
pub struct Attempt {
    path: PathBuf,
    record: Record,
    _lock: FileLock,
}

impl Attempt {
    /// Waits for any other attempt to finish, then refuses (with when to try again) if this
    /// one comes too early. `record` is the failure file (`<base>/.secrets-unlock-failures`).
    pub fn begin(record: &Path, now: i64) -> Result<Attempt, String> {
        let lock_path = record.with_extension("lock");
        let lock = FileLock::acquire(&lock_path, Some(Duration::from_secs(60)), "passphrase check")?;
        // A damaged record counts as none: whoever can damage it can also delete it.
        let previous: Record = std::fs::read(record)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        let wait = previous.last_failure + delay_after(previous.failures) - now;
        if wait > 0 {
            return Err(format!(
                "{} wrong passphrases in a row; the next attempt is allowed in {} (unlock attempts are throttled, see docs/OPERATIONS.md)",
                previous.failures,
                human_secs(wait)
            ));
        }
        Ok(Attempt { path: record.to_path_buf(), record: previous, _lock: lock })
    }

    /// Records a wrong passphrase; returns how many there have been in a row.
    pub fn failed(mut self, now: i64) -> Result<u32, String> {
        self.record.failures = self.record.failures.saturating_add(1);
        self.record.last_failure = now;
        let body = serde_json::to_vec(&self.record).map_err(|e| e.to_string())?;
        fsutil::atomic_write(&self.path, &body, 0o600)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        Ok(self.record.failures)
    }

    /// A correct passphrase: the count starts again from zero.
    pub fn succeeded(self) -> Result<(), String> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(format!("{}: {e}", self.path.display()))
            }
            _ => Ok(()),
        }
    }
}

fn human_secs(s: i64) -> String {
    if s >= 120 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_is_free_then_doubles_then_locks_out() {
        let delays: Vec<i64> = (0..=11).map(delay_after).collect();
        assert_eq!(delays, [0, 0, 0, 2, 4, 8, 16, 32, 64, 128, 900, 900]);
    }

    #[test]
    fn an_early_attempt_is_refused_and_a_success_resets_the_count() {
        let dir = std::env::temp_dir().join(format!("vigo-throttle-{}", std::process::id()));
        fsutil::ensure_dir(&dir, 0o700).unwrap();
        let record = dir.join(".secrets-unlock-failures");
        let now = 1_000_000;
        for n in 1..=3 {
            assert_eq!(Attempt::begin(&record, now).unwrap().failed(now).unwrap(), n);
        }
        let early = Attempt::begin(&record, now + 1).err().unwrap();
        assert!(
            early.starts_with("3 wrong passphrases in a row; the next attempt is allowed in 1 s"),
            "{early}"
        );
        Attempt::begin(&record, now + 2).unwrap().succeeded().unwrap();
        assert!(!record.exists());
        // Ten in a row: a quarter of an hour, whatever the time since the ones before.
        std::fs::write(&record, format!("{{\"failures\":10,\"last_failure\":{now}}}")).unwrap();
        assert!(Attempt::begin(&record, now + LOCKOUT_SECS - 1).err().unwrap().contains("in 1 s"));
        assert!(Attempt::begin(&record, now + 600).err().unwrap().contains("in 5 min 0 s"));
        assert!(Attempt::begin(&record, now + LOCKOUT_SECS).is_ok());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
