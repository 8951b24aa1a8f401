//! Connection caps per listener and per source, so that no single address can hold every
//! descriptor the server has. A slot is held for as long as its connection lives.
//!
//! Sources are grouped as an attacker would be: one IPv4 address, or one IPv6 /64 (a single
//! host is usually given a whole /64).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The key a source is counted under.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut o = v6.octets();
                o[8..].fill(0);
                IpAddr::from(o)
            }
        },
    }
}

#[derive(Debug)]
pub struct ConnLimits {
    /// Shown in logs: which listener or stage this is.
    pub label: &'static str,
    pub max_total: usize,
    pub max_per_source: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_source: HashMap<IpAddr, usize>,
}

/// Why no slot was given.
#[derive(Debug, PartialEq, Eq)]
pub enum Full {
    Listener,
    Source,
}

/// One connection's place; dropping it frees the place.
#[derive(Debug)]
pub struct Slot {
    limits: Arc<ConnLimits>,
    source: IpAddr,
}

impl ConnLimits {
    pub fn new(label: &'static str, max_total: usize, max_per_source: usize) -> Arc<ConnLimits> {
        Arc::new(ConnLimits {
            label,
            max_total: max_total.max(1),
            max_per_source: max_per_source.max(1),
            counts: Mutex::new(Counts::default()),
        })
    }

    pub fn try_acquire(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, Full> {
        let source = source_key(peer);
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if c.total >= self.max_total {
            return Err(Full::Listener);
        }
        let n = c.per_source.entry(source).or_insert(0);
        if *n >= self.max_per_source {
            return Err(Full::Source);
        }
        *n += 1;
        c.total += 1;
        Ok(Slot { limits: self.clone(), source })
    }

    #[cfg(test)]
    pub fn in_use(&self) -> usize {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).total
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.limits.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                c.per_source.remove(&self.source);
            }
        }
    }
}

/// Raises the soft descriptor limit to the hard one (a server holds a descriptor per
/// connection; distributions often start services at 1,024). Returns the limit now in force.
pub fn raise_descriptor_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(_) => soft,
        },
        Ok((soft, _)) => soft,
        Err(_) => 1024,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_source_and_in_total_and_frees_on_drop() {
        let limits = ConnLimits::new("test", 3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = limits.try_acquire(a).unwrap();
        let _a2 = limits.try_acquire(a).unwrap();
        assert_eq!(limits.try_acquire(a).unwrap_err(), Full::Source);
        let _b1 = limits.try_acquire(b).unwrap();
        assert_eq!(limits.try_acquire(b).unwrap_err(), Full::Listener);
        drop(a1);
        assert_eq!(limits.in_use(), 2);
        assert!(limits.try_acquire(a).is_ok());
    }

    #[test]
    fn an_ipv6_slash_64_is_one_source() {
        let x: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let y: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let z: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source_key(x), source_key(y));
        assert_ne!(source_key(x), source_key(z));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(source_key(mapped), "10.0.0.1".parse::<IpAddr>().unwrap());
    }
}
