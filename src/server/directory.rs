//! The enrolled envoys' identities, kept in memory: looked up by id for every signed request
//! and by public key for every new agent connection (to tell an envoy's connection from an
//! enrolling one). Both lookups are hash lookups: a scan of the fleet per connection was 1%
//! of the server's CPU at 2,000 envoys and grows with the fleet.

use std::collections::HashMap;

pub use crate::store::envoys::Identity as EnvoyInfo;

#[derive(Default)]
pub struct Directory {
    by_id: HashMap<String, EnvoyInfo>,
    /// Public key → id, for envoys not revoked (a key enrolls once, so it names one envoy).
    current_by_key: HashMap<Vec<u8>, String>,
}

impl Directory {
    pub fn new(envoys: impl IntoIterator<Item = EnvoyInfo>) -> Directory {
        let mut d = Directory::default();
        for e in envoys {
            d.remember(e);
        }
        d
    }

    pub fn get(&self, id: &str) -> Option<&EnvoyInfo> {
        self.by_id.get(id)
    }

    /// The id of the unrevoked envoy holding `key`.
    pub fn current_with_key(&self, key: &[u8]) -> Option<&str> {
        self.current_by_key.get(key).map(String::as_str)
    }

    /// Adds or replaces an envoy (enrolled, revoked, its certificate renewed).
    pub fn remember(&mut self, info: EnvoyInfo) {
        if let Some(old) = self.by_id.get(&info.id) {
            if self.current_by_key.get(&old.public_key) == Some(&info.id) {
                self.current_by_key.remove(&old.public_key);
            }
        }
        if !info.revoked {
            self.current_by_key.insert(info.public_key.clone(), info.id.clone());
        }
        self.by_id.insert(info.id.clone(), info);
    }

    pub fn all(&self) -> impl Iterator<Item = &EnvoyInfo> {
        self.by_id.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envoy(id: &str, key: u8, revoked: bool) -> EnvoyInfo {
        EnvoyInfo {
            id: id.into(),
            name: format!("{id}.example"),
            public_key: vec![key; 32],
            revoked,
            cert: None,
        }
    }

    /// A key finds its envoy only while the envoy is not revoked, and revoking one envoy
    /// leaves the others found.
    #[test]
    fn a_key_finds_its_envoy_until_it_is_revoked() {
        let mut d = Directory::new([envoy("a", 1, false), envoy("b", 2, false), envoy("c", 3, true)]);
        assert_eq!(d.current_with_key(&[1; 32]), Some("a"));
        assert_eq!(d.current_with_key(&[3; 32]), None, "revoked at load");
        assert_eq!(d.current_with_key(&[9; 32]), None);
        d.remember(envoy("a", 1, true));
        assert_eq!(d.current_with_key(&[1; 32]), None, "revoked since");
        assert!(d.get("a").unwrap().revoked);
        assert_eq!(d.current_with_key(&[2; 32]), Some("b"));
        d.remember(envoy("d", 4, false));
        assert_eq!(d.current_with_key(&[4; 32]), Some("d"));
        assert_eq!(d.all().count(), 4);
    }
}
