//! Secret providers. The server reads secrets only through `Provider`; the local backend
//! (AES-256-GCM files under the master key) is the default, isopass (HTTP) comes later.

pub mod gate;
pub mod home;
pub mod local;
mod temps;
pub mod throttle;

use crate::crypto::SecretString;

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
    /// The plaintext value of `key`.
    fn get(&self, key: &str) -> Result<SecretString, SecretsError>;
    /// A version tag that changes whenever the value changes (content hash, backend version).
    fn version(&self, key: &str) -> Result<String, SecretsError>;
    /// Every stored key, sorted.
    fn list(&self) -> Result<Vec<String>, SecretsError>;
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

/// An in-memory provider for tests and for compiling configs that use no secrets.
#[derive(Default)]
pub struct MemoryProvider {
    values: std::collections::BTreeMap<String, SecretString>,
}

impl MemoryProvider {
    pub fn new() -> Self {
        Self::default()
    }
    #[cfg(test)]
    pub fn insert(&mut self, key: &str, value: &str) {
        self.values.insert(key.to_string(), SecretString::new(value.to_string()));
    }
}

impl Provider for MemoryProvider {
    fn get(&self, key: &str) -> Result<SecretString, SecretsError> {
        self.values.get(key).cloned().ok_or_else(|| SecretsError::NotFound { key: key.into() })
    }
    fn version(&self, key: &str) -> Result<String, SecretsError> {
        self.get(key).map(|v| crate::crypto::sha256_hex(v.expose().as_bytes()))
    }
    fn list(&self) -> Result<Vec<String>, SecretsError> {
        Ok(self.values.keys().cloned().collect())
    }
    fn size(&self, key: &str) -> Result<Option<u64>, SecretsError> {
        Ok(self.values.get(key).map(|v| v.expose().len() as u64))
    }
}
