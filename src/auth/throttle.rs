//! Failed logins slow down, per username and per source address: a few are free, then each
//! one doubles the wait before the next attempt is heard, and past a count the key is locked
//! for a window. A success clears the username (and the source). In memory: a restart clears
//! it (the audit log keeps every failure).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct ThrottleSettings {
    pub free_failures: u32,
    pub max_delay: Duration,
    pub lockout_after: u32,
    pub lockout: Duration,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            free_failures: 3,
            max_delay: Duration::from_secs(60),
            lockout_after: 10,
            lockout: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Too soon after the last failure: try again in this many seconds.
    Wait(u64),
    /// Locked for this many more seconds.
    Locked(u64),
}

#[derive(Default, Clone, Copy)]
struct Record {
    failures: u32,
    last: Option<Instant>,
}

/// Keys tracked at once; past this the oldest quiet ones are forgotten.
const MAX_KEYS: usize = 100_000;

pub struct LoginThrottle {
    settings: ThrottleSettings,
    records: Mutex<HashMap<String, Record>>,
}

impl LoginThrottle {
    pub fn new(settings: ThrottleSettings) -> LoginThrottle {
        LoginThrottle { settings, records: Mutex::new(HashMap::new()) }
    }

    pub fn settings(&self) -> &ThrottleSettings {
        &self.settings
    }

    /// How long after its last failure a key with `failures` must wait.
    fn wait_for(&self, failures: u32) -> Duration {
        let s = &self.settings;
        if failures >= s.lockout_after {
            return s.lockout;
        }
        if failures < s.free_failures {
            return Duration::ZERO;
        }
        let doublings = (failures - s.free_failures).min(20);
        Duration::from_secs(1u64 << doublings).min(s.max_delay)
    }

    /// Whether an attempt for each of `keys` may be heard now.
    pub fn check(&self, keys: &[&str]) -> Result<(), Refused> {
        let records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        for key in keys {
            let Some(r) = records.get(*key) else { continue };
            let Some(last) = r.last else { continue };
            let wait = self.wait_for(r.failures);
            let elapsed = last.elapsed();
            if elapsed < wait {
                let left = (wait - elapsed).as_secs().max(1);
                return Err(if r.failures >= self.settings.lockout_after {
                    Refused::Locked(left)
                } else {
                    Refused::Wait(left)
                });
            }
        }
        Ok(())
    }

    /// Counts a failure for each key; returns the keys this failure has just locked.
    pub fn failed(&self, keys: &[&str]) -> Vec<String> {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        if records.len() >= MAX_KEYS {
            let lockout = self.settings.lockout;
            records.retain(|_, r| r.last.is_some_and(|t| t.elapsed() < lockout));
        }
        let mut locked = Vec::new();
        for key in keys {
            let r = records.entry(key.to_string()).or_default();
            // A lockout that has run its course starts the count again.
            if r.failures >= self.settings.lockout_after
                && r.last.is_some_and(|t| t.elapsed() >= self.settings.lockout)
            {
                r.failures = 0;
            }
            r.failures += 1;
            r.last = Some(Instant::now());
            if r.failures == self.settings.lockout_after {
                locked.push(key.to_string());
            }
        }
        locked
    }

    pub fn succeeded(&self, keys: &[&str]) {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        for key in keys {
            records.remove(*key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> LoginThrottle {
        LoginThrottle::new(ThrottleSettings {
            free_failures: 2,
            max_delay: Duration::from_secs(8),
            lockout_after: 5,
            lockout: Duration::from_millis(300),
        })
    }

    #[test]
    fn free_then_doubling_then_locked_then_lifted() {
        let t = quick();
        assert_eq!(t.wait_for(0), Duration::ZERO);
        assert_eq!(t.wait_for(1), Duration::ZERO);
        assert_eq!(t.wait_for(2), Duration::from_secs(1));
        assert_eq!(t.wait_for(3), Duration::from_secs(2));
        assert_eq!(t.wait_for(4), Duration::from_secs(4));
        assert_eq!(t.wait_for(5), Duration::from_millis(300), "locked");
        t.failed(&["user:alice", "src:10.0.0.1"]);
        assert_eq!(t.check(&["user:alice"]), Ok(()), "the first failure costs nothing");
        t.failed(&["user:alice"]);
        assert!(matches!(t.check(&["user:alice"]), Err(Refused::Wait(1))), "after two free ones, a wait");
        assert_eq!(t.check(&["user:bob", "src:10.0.0.1"]), Ok(()), "others are not slowed");
        t.failed(&["user:alice"]);
        t.failed(&["user:alice"]);
        assert_eq!(t.failed(&["user:alice"]), ["user:alice"], "the fifth locks");
        assert!(matches!(t.check(&["user:alice"]), Err(Refused::Locked(_))));
        std::thread::sleep(Duration::from_millis(350));
        assert_eq!(t.check(&["user:alice"]), Ok(()), "the window lifts");
        t.succeeded(&["user:alice"]);
        assert_eq!(t.check(&["user:alice"]), Ok(()));
    }
}
