//! Newtypes for secret material: zeroized on drop, redacted in Debug, never Serialize.

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Secret bytes (keys, decrypted values). Debug prints `[REDACTED]`.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(bytes)
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
    /// Decryption in place is the only writer; it stays inside the crypto module.
    pub(super) fn inner_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
    /// Interprets the bytes as UTF-8 text, consuming self so no second copy lingers.
    pub fn into_string(mut self) -> Result<SecretString, SecretBytes> {
        let bytes = std::mem::take(&mut self.0);
        match String::from_utf8(bytes) {
            Ok(s) => Ok(SecretString::new(s)),
            Err(e) => Err(SecretBytes(e.into_bytes())),
        }
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// Secret text (passphrases, resolved secret values). Debug and Display print `[REDACTED]`.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: String) -> Self {
        SecretString(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl std::fmt::Display for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = SecretString::new("canary-1234".into());
        assert_eq!(format!("{s:?}"), "[REDACTED]");
        assert_eq!(format!("{s}"), "[REDACTED]");
        let b = SecretBytes::new(b"canary-1234".to_vec());
        assert_eq!(format!("{b:?}"), "[REDACTED]");
        assert!(!format!("{:?}", Some(&b)).contains("canary"));
    }

    #[test]
    fn zeroize_clears_the_buffer() {
        let mut s = SecretBytes::new(vec![7u8; 16]);
        s.zeroize();
        assert!(s.expose().is_empty(), "zeroize must wipe and clear the buffer");
    }
}
