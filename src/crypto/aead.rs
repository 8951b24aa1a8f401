//! AES-256-GCM with associated data. Sealed layout: nonce (12) || ciphertext || tag (16).

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

use super::{random_bytes, CryptoError, SecretBytes};

pub const KEY_LEN: usize = 32;

/// A 256-bit AES key (the vault's master key, or a derived sealing key).
pub struct MasterKey(SecretBytes);

impl MasterKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != KEY_LEN {
            return Err(CryptoError::BadKey("an AES-256 key must be exactly 32 bytes"));
        }
        Ok(MasterKey(SecretBytes::new(bytes.to_vec())))
    }

    #[cfg(test)]
    pub fn generate() -> Result<Self, CryptoError> {
        Self::from_bytes(&random_bytes(KEY_LEN)?)
    }

    pub fn expose(&self) -> &[u8] {
        self.0.expose()
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

fn cipher(key: &MasterKey) -> Result<LessSafeKey, CryptoError> {
    let unbound = UnboundKey::new(&AES_256_GCM, key.expose())
        .map_err(|_| CryptoError::BadKey("AES-256-GCM rejected the key"))?;
    Ok(LessSafeKey::new(unbound))
}

/// Encrypts with a fresh random nonce; `aad` is authenticated but not encrypted.
pub fn seal(key: &MasterKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let nonce_bytes = random_bytes(NONCE_LEN)?;
    seal_with_nonce(key, &nonce_bytes, aad, plaintext)
}

fn seal_with_nonce(
    key: &MasterKey,
    nonce_bytes: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let nonce = Nonce::try_assume_unique_for_key(nonce_bytes)
        .map_err(|_| CryptoError::Malformed("nonce must be 12 bytes"))?;
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
    out.extend_from_slice(nonce_bytes);
    out.extend_from_slice(plaintext);
    let tag = cipher(key)?
        .seal_in_place_separate_tag(nonce, Aad::from(aad), &mut out[NONCE_LEN..])
        .map_err(|_| CryptoError::Malformed("plaintext too long"))?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Decrypts and authenticates; any mismatch (key, aad, bytes) is reported as tampering.
pub fn open(key: &MasterKey, aad: &[u8], sealed: &[u8]) -> Result<SecretBytes, CryptoError> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(CryptoError::Tampered);
    }
    let (nonce_bytes, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce_bytes).map_err(|_| CryptoError::Tampered)?;
    let mut buf = SecretBytes::new(body.to_vec());
    let plain_len = {
        let bytes = buf.inner_mut();
        cipher(key)?.open_in_place(nonce, Aad::from(aad), bytes).map_err(|_| CryptoError::Tampered)?.len()
    };
    let plain = SecretBytes::new(buf.expose()[..plain_len].to_vec());
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{hex_decode, hex_encode};

    fn key(hex: &str) -> MasterKey {
        MasterKey::from_bytes(&hex_decode(hex).unwrap()).unwrap()
    }

    /// McGrew & Viega GCM spec, test case 16 (AES-256, 60-byte plaintext, 20-byte AAD).
    #[test]
    fn gcm_spec_test_case_16() {
        let k = key("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
        let iv = hex_decode("cafebabefacedbaddecaf888").unwrap();
        let p = hex_decode("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39").unwrap();
        let a = hex_decode("feedfacedeadbeeffeedfacedeadbeefabaddad2").unwrap();
        let sealed = seal_with_nonce(&k, &iv, &a, &p).unwrap();
        assert_eq!(
            hex_encode(&sealed[12..]),
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662\
             76fc6ece0f4e1768cddf8853bb2d551b"
        );
        assert_eq!(open(&k, &a, &sealed).unwrap().expose(), &p[..]);
    }

    /// GCM spec test case 14 (AES-256, zero key, one zero block, no AAD).
    #[test]
    fn gcm_spec_test_case_14() {
        let k = key(&"00".repeat(32));
        let sealed = seal_with_nonce(&k, &[0u8; 12], &[], &[0u8; 16]).unwrap();
        assert_eq!(
            hex_encode(&sealed[12..]),
            "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"
        );
    }

    #[test]
    fn wrong_aad_or_flipped_bit_is_tampering() {
        let k = MasterKey::generate().unwrap();
        let sealed = seal(&k, b"vigo/db/dsn", b"value").unwrap();
        assert!(matches!(open(&k, b"vigo/db/other", &sealed), Err(CryptoError::Tampered)));
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert!(matches!(open(&k, b"vigo/db/dsn", &flipped), Err(CryptoError::Tampered)));
        assert!(matches!(open(&k, b"", &sealed[..10]), Err(CryptoError::Tampered)));
    }

    #[test]
    fn fresh_nonce_every_seal() {
        let k = MasterKey::generate().unwrap();
        let a = seal(&k, b"k", b"same").unwrap();
        let b = seal(&k, b"k", b"same").unwrap();
        assert_ne!(a[..12], b[..12]);
    }

    #[test]
    fn key_length_is_enforced() {
        assert!(MasterKey::from_bytes(&[0u8; 31]).is_err());
        assert!(MasterKey::from_bytes(&[0u8; 33]).is_err());
    }
}
