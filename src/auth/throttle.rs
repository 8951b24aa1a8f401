//! Failed logins slow down, per username and per source address: a few are free, then each
//! one doubles the wait before the next attempt is heard, and past a count the key is locked
//! for a window. A success clears the username (and the source). In memory: a restart clears
//! it (the audit log keeps every failure).
//!
//! The keys come from whoever is trying (a username typed by anyone), so the table holds a
//! fixed-size digest of each, never the text, and at most `capacity` of them: when it is full,
//! records that no longer slow anyone down go first, then the oldest. Memory is bounded
//! whatever the input.

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

/// Keys tracked at once (about 64 bytes each with the map's overhead: a few MB).
const MAX_KEYS: usize = 100_000;

/// What a key is stored as: the first 16 bytes of its SHA-256, whatever its length.
type Digest = [u8; 16];

fn digest(key: &str) -> Digest {
    let full = crate::crypto::sha256(key.as_bytes());
    let mut d = [0u8; 16];
    d.copy_from_slice(&full[..16]);
    d
}

pub struct LoginThrottle {
    settings: ThrottleSettings,
    capacity: usize,
    records: Mutex<HashMap<Digest, Record>>,
}

impl LoginThrottle {
    pub fn new(settings: ThrottleSettings) -> LoginThrottle {
        Self::with_capacity(settings, MAX_KEYS)
    }

    pub fn with_capacity(settings: ThrottleSettings, capacity: usize) -> LoginThrottle {
        LoginThrottle { settings, capacity: capacity.max(8), records: Mutex::new(HashMap::new()) }
    }

    /// Keys tracked now.
    #[cfg(test)]
    pub fn tracked_keys(&self) -> usize {
        self.records.lock().unwrap_or_else(|p| p.into_inner()).len()
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
            let Some(r) = records.get(&digest(key)) else { continue };
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
        let mut locked = Vec::new();
        for key in keys {
            let d = digest(key);
            if !records.contains_key(&d) && records.len() >= self.capacity {
                self.make_room(&mut records);
            }
            let r = records.entry(d).or_default();
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
            records.remove(&digest(key));
        }
    }

    /// Frees at least an eighth of the table, so a flood pays for this once per many inserts:
    /// records quiet for longer than a lockout, then the oldest.
    fn make_room(&self, records: &mut HashMap<Digest, Record>) {
        let lockout = self.settings.lockout;
        records.retain(|_, r| r.last.is_some_and(|t| t.elapsed() < lockout));
        let target = self.capacity - self.capacity / 8;
        if records.len() <= target {
            return;
        }
        let mut times: Vec<_> = records.values().filter_map(|r| r.last).collect();
        let excess = records.len() - target;
        let (_, cutoff, _) = times.select_nth_unstable(excess - 1);
        let cutoff = *cutoff;
        records.retain(|_, r| r.last.is_some_and(|t| t > cutoff));
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

    /// A flood of distinct, long names never grows the table past its capacity, and keys are
    /// kept as fixed-size digests whatever their length.
    #[test]
    fn memory_is_bounded_whatever_the_number_of_names() {
        let t = LoginThrottle::with_capacity(ThrottleSettings::default(), 1000);
        let long = "x".repeat(10_000);
        for i in 0..5_000 {
            let name = format!("user:{long}{i}");
            t.failed(&[&name, "src:10.0.0.9"]);
            assert!(t.tracked_keys() <= 1000, "{} keys after {i} names", t.tracked_keys());
        }
        assert!(
            t.tracked_keys() > 500,
            "room is made an eighth at a time, not by clearing: {}",
            t.tracked_keys()
        );
        // The source, failing on every attempt, is the newest key and still locked.
        assert!(matches!(t.check(&["src:10.0.0.9"]), Err(Refused::Locked(_))));
        assert_eq!(std::mem::size_of::<Digest>(), 16);
    }
}
