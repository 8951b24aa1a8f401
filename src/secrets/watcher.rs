//! When the isopass worker polls for rotations, and what counts as a change. isopass publishes
//! no version, so a change is a different keyed digest of a value between two polls: HMAC-SHA256
//! under a random key that exists only in this process (`Digests`). A plain hash would let
//! anyone who sees it test guesses of a low-entropy secret; the digests are never written down.

use std::collections::BTreeMap;
use std::time::Duration;

use ring::hmac;

/// The first retry after a failed poll; doubled each time, up to the poll interval.
const FIRST_RETRY: Duration = Duration::from_secs(5);

/// Keyed digests of values, under a key made at start and never stored.
pub struct Digests {
    key: hmac::Key,
}

impl Digests {
    pub fn new() -> Result<Self, crate::crypto::CryptoError> {
        let bytes = crate::crypto::random_bytes(32)?;
        Ok(Digests { key: hmac::Key::new(hmac::HMAC_SHA256, &bytes) })
    }

    pub fn of(&self, value: &[u8]) -> String {
        crate::crypto::hex_encode(hmac::sign(&self.key, value).as_ref())
    }
}

/// The keys whose digest differs between `before` and `after`. A key that appeared or vanished
/// is not a rotation: a new key was just fetched for a new config, a vanished one is reported
/// as missing and keeps its last value.
pub fn changed(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    after
        .iter()
        .filter(|(key, digest)| before.get(*key).is_some_and(|old| old != *digest))
        .map(|(key, _)| key.clone())
        .collect()
}

/// The wait before the next poll: the interval after a success; after failures, 5 s doubling
/// up to the interval, so a service that comes back is noticed soon without being hammered.
pub struct Schedule {
    interval: Duration,
    failures: u32,
}

impl Schedule {
    pub fn new(interval: Duration) -> Self {
        Schedule { interval, failures: 0 }
    }

    pub fn after_success(&mut self) -> Duration {
        self.failures = 0;
        self.interval
    }

    pub fn after_failure(&mut self) -> Duration {
        let wait = FIRST_RETRY.saturating_mul(1u32 << self.failures.min(16));
        self.failures = self.failures.saturating_add(1);
        wait.min(self.interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn only_a_different_digest_of_a_known_key_is_a_change() {
        let before = map(&[("a", "1"), ("b", "2"), ("gone", "3")]);
        let after = map(&[("a", "1"), ("b", "9"), ("new", "4")]);
        assert_eq!(changed(&before, &after), ["b"]);
    }

    #[test]
    fn digests_are_keyed_per_process() {
        let (one, two) = (Digests::new().unwrap(), Digests::new().unwrap());
        assert_eq!(one.of(b"pw"), one.of(b"pw"));
        assert_ne!(one.of(b"pw"), one.of(b"pw2"));
        assert_ne!(one.of(b"pw"), two.of(b"pw"), "a digest means nothing outside this process");
        assert_ne!(one.of(b"pw"), crate::crypto::sha256_hex(b"pw"));
    }

    #[test]
    fn backoff_doubles_up_to_the_interval_and_resets() {
        let mut s = Schedule::new(Duration::from_secs(60));
        let waits: Vec<u64> = (0..6).map(|_| s.after_failure().as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 60, 60]);
        assert_eq!(s.after_success().as_secs(), 60);
        assert_eq!(s.after_failure().as_secs(), 5);
    }
}
