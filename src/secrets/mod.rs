//! Secret providers. The server reads secrets only through `Provider`; the local backend
//! (AES-256-GCM files under the master key) is the default, isopass (an HTTP secrets service,
//! polled by `watcher`) the production one.

pub mod gate;
pub mod home;
pub mod isopass;
pub mod local;
mod temps;
pub mod throttle;
pub mod watcher;

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::crypto::SecretBytes;

pub use local::LocalVault;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("secret {key:?} not found")]
    NotFound { key: String },
    #[error(transparent)]
    InvalidKey(#[from] crate::placeholder::PlaceholderError),
    #[error("secret {key:?} failed to decrypt: the file was tampered with, copied from another key, or the master key is wrong")]
    Tampered { key: String },
    #[error("{0}")]
    Backend(String),
}

/// A source of secret values. Implementations must never log values.
pub trait Provider: Send + Sync {
    /// The plaintext value of `key`, as stored: bytes, which may or may not be UTF-8 text
    /// (the places that need text check, see `SecretBytes::as_text`).
    fn get(&self, key: &str) -> Result<SecretBytes, SecretsError>;
    /// A version tag that changes whenever the value changes (content hash, backend version).
    fn version(&self, key: &str) -> Result<String, SecretsError>;
    /// Every stored key, sorted.
    fn list(&self) -> Result<Vec<String>, SecretsError>;
    /// Makes `keys` readable by `get`. A backend that fetches over the network does it here and
    /// blocks until it has an answer, so call it from a blocking thread. A key the backend does
    /// not have is not an error here: `get` reports it.
    fn prepare(&self, _keys: &BTreeSet<String>) -> Result<(), SecretsError> {
        Ok(())
    }
    /// Reads `keys` again from their source (after a notice that they changed). Blocking.
    fn refresh(&self, _keys: &BTreeSet<String>) -> Result<(), SecretsError> {
        Ok(())
    }
    /// What is wrong with the backend right now, for health and doctor (None: nothing).
    fn problem(&self) -> Option<String> {
        None
    }
    /// The length in bytes of the stored value, without reading it (None when the backend
    /// cannot tell).
    fn size(&self, _key: &str) -> Result<Option<u64>, SecretsError> {
        Ok(None)
    }
    /// Whether `key` exists (cheap check used by config validation).
    fn contains(&self, key: &str) -> Result<bool, SecretsError> {
        match self.version(key) {
            Ok(_) => Ok(true),
            Err(SecretsError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The server's backend as `secrets:` configures it, and, for isopass with its watcher on, the
/// channel of keys whose value changed.
pub fn open_backend(
    settings: &crate::settings::SecretsSettings,
    paths: &crate::paths::ServerPaths,
) -> Result<(Arc<dyn Provider>, Option<isopass::Rotations>), String> {
    if settings.is_isopass() {
        let (provider, rotations) = isopass::Isopass::start(&settings.isopass()?, true)?;
        return Ok((provider, rotations));
    }
    let vault = LocalVault::open(&paths.secrets_dir, &paths.key_file).map_err(|e| e.to_string())?;
    Ok((Arc::new(vault), None))
}

/// An in-memory provider for tests and for compiling configs that use no secrets.
#[derive(Default)]
pub struct MemoryProvider {
    values: std::collections::BTreeMap<String, SecretBytes>,
}

impl MemoryProvider {
    pub fn new() -> Self {
        Self::default()
    }
    #[cfg(test)]
    pub fn insert(&mut self, key: &str, value: impl AsRef<[u8]>) {
        self.values.insert(key.to_string(), SecretBytes::new(value.as_ref().to_vec()));
    }
}

impl Provider for MemoryProvider {
    fn get(&self, key: &str) -> Result<SecretBytes, SecretsError> {
        self.values.get(key).cloned().ok_or_else(|| SecretsError::NotFound { key: key.into() })
    }
    fn version(&self, key: &str) -> Result<String, SecretsError> {
        self.get(key).map(|v| crate::crypto::sha256_hex(v.expose()))
    }
    fn list(&self) -> Result<Vec<String>, SecretsError> {
        Ok(self.values.keys().cloned().collect())
    }
    fn size(&self, key: &str) -> Result<Option<u64>, SecretsError> {
        Ok(self.values.get(key).map(|v| v.expose().len() as u64))
    }
}
