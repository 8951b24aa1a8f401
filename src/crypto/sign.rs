//! Ed25519 identities (the agent's long-term key) and signature checks.

use ring::signature::{self, Ed25519KeyPair, KeyPair};

use super::{CryptoError, SecretBytes};

const ED25519_PUBLIC_LEN: usize = 32;

/// RFC 8410 OneAsymmetricKey v1 header for an Ed25519 private key; the 32-byte seed follows.
const PKCS8_V1_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
/// Where ring's v2 document keeps the seed (after the same header with version 1).
const V2_SEED_AT: usize = 16;

/// An Ed25519 key pair, kept as its PKCS#8 v2 document (what goes into the 0600 file).
pub struct Ed25519Identity {
    pkcs8: SecretBytes,
    pair: Ed25519KeyPair,
}

impl Ed25519Identity {
    pub fn generate() -> Result<Self, CryptoError> {
        let doc = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
            .map_err(|_| CryptoError::Random)?;
        // ring writes PKCS#8 v2, whose public-key field OpenSSL 3 cannot parse; store the
        // RFC 8410 v1 form (seed only) that every tool reads.
        let seed = doc.as_ref().get(V2_SEED_AT..V2_SEED_AT + 32).ok_or(CryptoError::Random)?;
        let v1 = SecretBytes::new([&PKCS8_V1_PREFIX[..], seed].concat());
        Self::from_pkcs8(v1.expose())
    }

    pub fn from_pkcs8(der: &[u8]) -> Result<Self, CryptoError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|_| CryptoError::BadKey("not an Ed25519 PKCS#8 private key"))?;
        Ok(Ed25519Identity { pkcs8: SecretBytes::new(der.to_vec()), pair })
    }

    #[cfg(test)]
    /// Builds a key from a raw 32-byte seed (used by the RFC 8032 known-answer tests).
    pub fn from_seed(seed: &[u8]) -> Result<Self, CryptoError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|_| CryptoError::BadKey("an Ed25519 seed is 32 bytes"))?;
        Ok(Ed25519Identity { pkcs8: SecretBytes::new(Vec::new()), pair })
    }

    pub fn pkcs8_der(&self) -> &[u8] {
        self.pkcs8.expose()
    }

    pub fn public_key(&self) -> [u8; ED25519_PUBLIC_LEN] {
        let mut out = [0u8; ED25519_PUBLIC_LEN];
        out.copy_from_slice(self.pair.public_key().as_ref());
        out
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.pair.sign(message).as_ref());
        out
    }
}

impl std::fmt::Debug for Ed25519Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ed25519Identity(public={})", super::hex_encode(&self.public_key()))
    }
}

pub fn verify_ed25519(public_key: &[u8], message: &[u8], sig: &[u8]) -> bool {
    signature::UnparsedPublicKey::new(&signature::ED25519, public_key).verify(message, sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{hex_decode, hex_encode};

    fn rfc8032(secret: &str, public: &str, msg: &str, sig: &str) {
        let id = Ed25519Identity::from_seed(&hex_decode(secret).unwrap()).unwrap();
        assert_eq!(hex_encode(&id.public_key()), public);
        let m = hex_decode(msg).unwrap();
        let s = id.sign(&m);
        assert_eq!(hex_encode(&s), sig);
        assert!(verify_ed25519(&id.public_key(), &m, &s));
    }

    #[test]
    fn rfc8032_test_1_empty_message() {
        rfc8032(
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        );
    }

    #[test]
    fn rfc8032_test_2_one_byte() {
        rfc8032(
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        );
    }

    #[test]
    fn tampered_message_or_signature_fails() {
        let id = Ed25519Identity::generate().unwrap();
        let sig = id.sign(b"hello");
        assert!(verify_ed25519(&id.public_key(), b"hello", &sig));
        assert!(!verify_ed25519(&id.public_key(), b"hellp", &sig));
        let mut bad = sig;
        bad[0] ^= 1;
        assert!(!verify_ed25519(&id.public_key(), b"hello", &bad));
        let reloaded = Ed25519Identity::from_pkcs8(id.pkcs8_der()).unwrap();
        assert_eq!(reloaded.public_key(), id.public_key());
        assert_eq!(id.pkcs8_der().len(), 48, "stored as PKCS#8 v1");
    }

    /// Outside check: OpenSSL (not ring) accepts our signature over the raw message.
    #[test]
    fn openssl_verifies_our_signature() {
        let dir = std::env::temp_dir().join(format!("vigo-openssl-sig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let id = Ed25519Identity::generate().unwrap();
        let msg = b"vigo-request-v1\0CheckIn\0envoy\0signed by ring";
        let pem = crate::crypto::x509::ed25519_public_pem(&id.public_key());
        std::fs::write(dir.join("pub.pem"), pem).unwrap();
        std::fs::write(dir.join("msg"), msg).unwrap();
        std::fs::write(dir.join("sig"), id.sign(msg)).unwrap();
        let verify = |sig: &str| {
            std::process::Command::new("openssl")
                .args([
                    "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "msg", "-sigfile",
                    sig,
                ])
                .current_dir(&dir)
                .output()
                .expect("openssl must be installed (apt-get install -y openssl)")
        };
        let good = verify("sig");
        assert!(good.status.success(), "openssl rejected: {}", String::from_utf8_lossy(&good.stdout));
        let mut bad = id.sign(msg);
        bad[5] ^= 0x40;
        std::fs::write(dir.join("bad"), bad).unwrap();
        assert!(!verify("bad").status.success(), "openssl accepted a corrupted signature");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
