//! Token buckets per key (an envoy id): a steady rate with some burst, in memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

pub struct RateBuckets {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

/// Keys tracked at once; a full table is cleared of buckets that have refilled.
const MAX_KEYS: usize = 200_000;

impl RateBuckets {
    pub fn per_hour(per_hour: u32, burst: u32) -> RateBuckets {
        RateBuckets {
            per_second: f64::from(per_hour.max(1)) / 3600.0,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`; `Err(seconds)` says when the next one will be there.
    pub fn take(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            let (rate, burst) = (self.per_second, self.burst);
            map.retain(|_, (tokens, at)| *tokens + now.duration_since(*at).as_secs_f64() * rate < burst);
        }
        let (tokens, at) = map.entry(key.to_string()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_second).ceil() as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refused_per_key() {
        let b = RateBuckets::per_hour(3600, 3);
        for _ in 0..3 {
            assert!(b.take("e1").is_ok());
        }
        let wait = b.take("e1").unwrap_err();
        assert!((1..=2).contains(&wait), "{wait}");
        assert!(b.take("e2").is_ok(), "another key has its own bucket");
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert!(b.take("e1").is_ok(), "refilled at one per second");
    }
}
