//! Logins waiting for their second step (an isowebauth challenge to be signed, an OIDC login
//! at the provider), kept in server memory for a few minutes. Anyone can start one, so a table
//! is bounded twice: in total, and per source (an IPv4 address or an IPv6 /64), so that one
//! source filling its share leaves the rest for everybody else.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use super::conn_limits::source_key;

/// Why an entry was not added.
#[derive(Debug, PartialEq, Eq)]
pub enum Full {
    /// The table holds its total.
    Total,
    /// This source holds its share.
    Source,
}

struct Entry<T> {
    value: T,
    source: IpAddr,
    expires_at: i64,
}

pub struct PendingTable<T> {
    total: usize,
    per_source: usize,
    entries: HashMap<String, Entry<T>>,
    /// Ids in the order they were added, with their expiry. Every entry of a table lives the
    /// same time, so the front is the next to expire and expiring costs nothing per entry kept.
    order: VecDeque<(i64, String)>,
    per_source_count: HashMap<IpAddr, usize>,
}

impl<T> PendingTable<T> {
    pub fn new(total: usize, per_source: usize) -> Self {
        PendingTable {
            total,
            per_source: per_source.clamp(1, total.max(1)),
            entries: HashMap::new(),
            order: VecDeque::new(),
            per_source_count: HashMap::new(),
        }
    }

    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.entries.len()
    }

    /// Adds `value` under `id` until `expires_at`, unless the table or the source's share is
    /// full (expired entries are dropped first).
    pub fn insert(
        &mut self,
        id: String,
        value: T,
        source: IpAddr,
        expires_at: i64,
        now: i64,
    ) -> Result<(), Full> {
        self.expire(now);
        let source = source_key(source);
        if self.per_source_count.get(&source).is_some_and(|n| *n >= self.per_source) {
            return Err(Full::Source);
        }
        if self.entries.len() >= self.total {
            return Err(Full::Total);
        }
        *self.per_source_count.entry(source).or_default() += 1;
        self.order.push_back((expires_at, id.clone()));
        self.entries.insert(id, Entry { value, source, expires_at });
        // Ids taken early stay in `order` until their time; keep that queue in proportion.
        if self.order.len() > 2 * self.total.max(8) {
            let entries = &self.entries;
            self.order.retain(|(_, id)| entries.contains_key(id));
        }
        Ok(())
    }

    /// Takes the entry out (each is used once), if it has not expired.
    pub fn take(&mut self, id: &str, now: i64) -> Option<T> {
        self.expire(now);
        self.remove(id).filter(|e| e.expires_at > now).map(|e| e.value)
    }

    fn expire(&mut self, now: i64) {
        while self.order.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, id)) = self.order.pop_front() {
                self.remove(&id);
            }
        }
    }

    fn remove(&mut self, id: &str) -> Option<Entry<T>> {
        let entry = self.entries.remove(id)?;
        if let Some(n) = self.per_source_count.get_mut(&entry.source) {
            *n -= 1;
            if *n == 0 {
                self.per_source_count.remove(&entry.source);
            }
        }
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_source_fills_its_share_and_others_still_get_in() {
        let mut t = PendingTable::new(10, 3);
        for i in 0..3 {
            t.insert(format!("a{i}"), i, ip("10.0.0.1"), 100, 0).unwrap();
        }
        assert_eq!(t.insert("a3".into(), 3, ip("10.0.0.1"), 100, 0), Err(Full::Source));
        // The same /64 is the same source.
        let mut v6 = PendingTable::new(10, 1);
        v6.insert("x".into(), 0, ip("2001:db8::1"), 100, 0).unwrap();
        assert_eq!(v6.insert("y".into(), 0, ip("2001:db8::2"), 100, 0), Err(Full::Source));
        v6.insert("z".into(), 0, ip("2001:db8:0:1::1"), 100, 0).unwrap();
        // Another source still gets in, until the total is reached.
        for i in 0..3 {
            t.insert(format!("b{i}"), i, ip("10.0.0.2"), 100, 0).unwrap();
            t.insert(format!("c{i}"), i, ip("10.0.0.3"), 100, 0).unwrap();
        }
        t.insert("d0".into(), 0, ip("10.0.0.4"), 100, 0).unwrap();
        assert_eq!(t.insert("e0".into(), 0, ip("10.0.0.5"), 100, 0), Err(Full::Total));
        // Taking one frees the source's share; expiry frees everything.
        assert_eq!(t.take("a0", 1), Some(0));
        assert_eq!(t.take("a0", 1), None, "used once");
        t.insert("a4".into(), 4, ip("10.0.0.1"), 100, 1).unwrap();
        assert_eq!(t.take("a1", 100), None, "expired");
        assert_eq!(t.held(), 0);
        t.insert("a5".into(), 5, ip("10.0.0.1"), 200, 100).unwrap();
    }

    #[test]
    fn the_order_queue_stays_in_proportion_when_entries_are_taken_early() {
        let mut t = PendingTable::new(8, 8);
        for i in 0..10_000 {
            let id = format!("{i}");
            t.insert(id.clone(), i, ip("10.0.0.1"), 1_000, 0).unwrap();
            assert_eq!(t.take(&id, 0), Some(i));
        }
        assert!(t.order.len() <= 2 * 8 + 1, "{}", t.order.len());
        assert!(t.per_source_count.is_empty());
    }
}
