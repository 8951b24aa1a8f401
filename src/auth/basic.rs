//! The `basic` login: the password is the vault's value at `vigo/web/auth/<username>`. Both
//! sides are hashed and compared in constant time, and an unknown user (or one without a
//! password) is compared against a fixed dummy the same way, so that how long a login takes
//! says nothing about which names exist.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::crypto;
use crate::secrets::Provider;

/// Compared against when there is no real password; never accepted.
const DUMMY: &[u8] = b"vigo-no-such-user-dummy-password";

/// How many dummy comparisons have run (tests assert that they ran).
static DUMMY_COMPARISONS: AtomicU64 = AtomicU64::new(0);

#[cfg(test)]
pub fn dummy_comparisons() -> u64 {
    DUMMY_COMPARISONS.load(Ordering::Relaxed)
}

/// Whether `given` is the password of `username`. `known` says whether the name is an
/// enabled web user; when it is not, the dummy comparison still runs, after reading the
/// password of `decoy` (any web user) and throwing it away, so that the vault's work (a file
/// read and a decryption) is spent either way.
pub fn password_matches(
    provider: &dyn Provider,
    username: &str,
    known: bool,
    decoy: Option<&str>,
    given: &[u8],
) -> bool {
    let stored = if known {
        provider.get(&super::accounts::password_key(username)).ok()
    } else {
        if let Some(d) = decoy {
            drop(provider.get(&super::accounts::password_key(d)));
        }
        None
    };
    let expected = match &stored {
        Some(v) => crypto::sha256(v.expose()),
        None => {
            DUMMY_COMPARISONS.fetch_add(1, Ordering::Relaxed);
            crypto::sha256(DUMMY)
        }
    };
    let same = crypto::ct_eq(&crypto::sha256(given), &expected);
    same && stored.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::MemoryProvider;

    #[test]
    fn right_password_only_and_the_dummy_runs_for_unknown_users() {
        let mut vault = MemoryProvider::new();
        vault.insert("vigo/web/auth/alice", "correct horse");
        assert!(password_matches(&vault, "alice", true, None, b"correct horse"));
        assert!(!password_matches(&vault, "alice", true, None, b"correct hors"));
        assert!(
            !password_matches(&vault, "alice", false, None, b"correct horse"),
            "a disabled or unknown user never passes"
        );
        let before = dummy_comparisons();
        assert!(!password_matches(&vault, "mallory", false, Some("alice"), b"anything"));
        assert!(
            !password_matches(&vault, "bob", true, None, DUMMY),
            "no stored password: the dummy itself never passes"
        );
        assert!(dummy_comparisons() >= before + 2, "the dummy comparison ran for both");
    }
}
