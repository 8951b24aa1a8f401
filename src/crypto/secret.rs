//! Newtypes for secret material: zeroized on drop, redacted in Debug, never Serialize.

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Secret bytes: keys, and secret values (the vault stores bytes; a value may be binary, such
/// as a DER certificate). Debug prints `[REDACTED]`.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(bytes)
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Drops the bytes past `len`; they stay in the buffer's capacity, which is zeroized on
    /// drop like the rest.
    pub fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }
    /// The value as text, or `None` when it is binary (not valid UTF-8). Places that need text
    /// (a template, a password, a `when:` condition) refuse a binary value through this.
    pub fn as_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
    /// Decryption in place is the only writer; it stays inside the crypto module.
    pub(super) fn inner_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// Secret text (passphrases, typed passwords, private keys in PEM). Debug and Display print `[REDACTED]`.
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

impl From<SecretString> for SecretBytes {
    /// Moves the text's buffer over, so no second copy lingers.
    fn from(mut s: SecretString) -> SecretBytes {
        SecretBytes(std::mem::take(&mut s.0).into_bytes())
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// Read from a config file (a credential setting, once its `secret:` ref is resolved).
impl<'de> serde::Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <String as serde::Deserialize>::deserialize(d).map(SecretString)
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
    fn bytes_are_text_only_when_valid_utf8() {
        assert_eq!(SecretBytes::new("é!".as_bytes().to_vec()).as_text(), Some("é!"));
        let der = SecretBytes::new(vec![0x30, 0x82, 0x00, 0xff]);
        assert_eq!(der.as_text(), None);
        assert_eq!(der.len(), 4);
        let moved = SecretBytes::from(SecretString::new("pw".into()));
        assert_eq!(moved.expose(), b"pw");
    }

    #[test]
    fn zeroize_clears_the_buffer() {
        let mut s = SecretBytes::new(vec![7u8; 16]);
        s.zeroize();
        assert!(s.expose().is_empty(), "zeroize must wipe and clear the buffer");
    }
}
