//! Sealing to an ephemeral X25519 key: the agent puts a fresh public key inside its signed
//! ResolveSecrets request; the server seals the answer to it (ECDH + HKDF + AES-256-GCM), so the
//! gRPC payload never carries a plaintext value even if TLS were stripped.
//!
//! Sealed layout: sender ephemeral public key (32) || AES-256-GCM sealed bytes.

use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, X25519};
use ring::rand::SystemRandom;

use super::{aead, hkdf_sha256, CryptoError, MasterKey, SecretBytes};

const INFO: &[u8] = b"vigo/seal/x25519-hkdf-sha256-aes256gcm/v1";
const PUB_LEN: usize = 32;

/// The receiving side: a one-shot X25519 key that opens exactly one sealed answer.
pub struct EphemeralRecipient {
    private: EphemeralPrivateKey,
    public: [u8; PUB_LEN],
}

impl EphemeralRecipient {
    pub fn generate() -> Result<Self, CryptoError> {
        let private =
            EphemeralPrivateKey::generate(&X25519, &SystemRandom::new()).map_err(|_| CryptoError::Random)?;
        let mut public = [0u8; PUB_LEN];
        public.copy_from_slice(private.compute_public_key().map_err(|_| CryptoError::Random)?.as_ref());
        Ok(EphemeralRecipient { private, public })
    }

    pub fn public_key(&self) -> [u8; PUB_LEN] {
        self.public
    }

    /// Opens a sealed box addressed to this key; consumes the key (single use by construction).
    pub fn open(self, aad: &[u8], sealed: &[u8]) -> Result<SecretBytes, CryptoError> {
        open_sealed(self, aad, sealed)
    }
}

fn derive_key(shared: &[u8], sender_pub: &[u8], recipient_pub: &[u8]) -> Result<MasterKey, CryptoError> {
    let mut salt = Vec::with_capacity(2 * PUB_LEN);
    salt.extend_from_slice(sender_pub);
    salt.extend_from_slice(recipient_pub);
    MasterKey::from_bytes(&hkdf_sha256(&salt, shared, INFO, 32)?)
}

/// Seals `plaintext` so only the holder of `recipient_pub`'s private key can open it.
pub fn seal_to(recipient_pub: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if recipient_pub.len() != PUB_LEN {
        return Err(CryptoError::BadKey("an X25519 public key is 32 bytes"));
    }
    let sender = EphemeralRecipient::generate()?;
    let sender_pub = sender.public;
    let key = agreement::agree_ephemeral(
        sender.private,
        &UnparsedPublicKey::new(&X25519, recipient_pub),
        |shared| derive_key(shared, &sender_pub, recipient_pub),
    )
    .map_err(|_| CryptoError::BadKey("X25519 agreement failed"))??;
    let mut out = sender_pub.to_vec();
    out.extend_from_slice(&aead::seal(&key, aad, plaintext)?);
    Ok(out)
}

pub fn open_sealed(
    recipient: EphemeralRecipient,
    aad: &[u8],
    sealed: &[u8],
) -> Result<SecretBytes, CryptoError> {
    if sealed.len() < PUB_LEN {
        return Err(CryptoError::Tampered);
    }
    let (sender_pub, body) = sealed.split_at(PUB_LEN);
    let recipient_pub = recipient.public;
    let key = agreement::agree_ephemeral(
        recipient.private,
        &UnparsedPublicKey::new(&X25519, sender_pub),
        |shared| derive_key(shared, sender_pub, &recipient_pub),
    )
    .map_err(|_| CryptoError::Tampered)??;
    aead::open(&key, aad, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip() {
        let r = EphemeralRecipient::generate().unwrap();
        let sealed = seal_to(&r.public_key(), b"req-1", b"canary value").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"canary"));
        assert_eq!(r.open(b"req-1", &sealed).unwrap().expose(), b"canary value");
    }

    #[test]
    fn another_recipient_or_context_cannot_open() {
        let r1 = EphemeralRecipient::generate().unwrap();
        let r2 = EphemeralRecipient::generate().unwrap();
        let sealed = seal_to(&r1.public_key(), b"ctx", b"v").unwrap();
        assert!(matches!(r2.open(b"ctx", &sealed), Err(CryptoError::Tampered)));
        let r3 = EphemeralRecipient::generate().unwrap();
        let sealed = seal_to(&r3.public_key(), b"ctx", b"v").unwrap();
        assert!(matches!(r3.open(b"other", &sealed), Err(CryptoError::Tampered)));
    }

    #[test]
    fn bad_public_key_is_refused() {
        assert!(seal_to(&[1u8; 31], b"", b"v").is_err());
    }
}
