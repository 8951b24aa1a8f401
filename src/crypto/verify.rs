//! Signature checks against public keys that arrive from outside (an operator's SSH key, an
//! OpenID Provider's JWKS). The callers decode their wire formats into raw parts; ring checks.

use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};

use super::CryptoError;

/// A public key as raw parts. ECDSA points are SEC1-encoded (uncompressed); RSA parts are
/// big-endian without leading zeros.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKeyParts {
    Ed25519(Vec<u8>),
    EcdsaP256(Vec<u8>),
    EcdsaP384(Vec<u8>),
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

/// The signature schemes Vigo accepts from outside. No SHA-1, no RSA below 2048 bits (ring's
/// floor), no P-521 (ring has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureScheme {
    Ed25519,
    /// Signature as fixed-width `r || s` (32 + 32 bytes).
    EcdsaP256Sha256,
    /// Signature as fixed-width `r || s` (48 + 48 bytes).
    EcdsaP384Sha384,
    RsaPkcs1Sha256,
    RsaPkcs1Sha512,
}

impl SignatureScheme {
    /// Whether this scheme is defined for that kind of key (an ES256 header over an RSA key is
    /// an algorithm-confusion attempt, not a signature to check).
    pub fn fits(self, key: &PublicKeyParts) -> bool {
        matches!(
            (self, key),
            (SignatureScheme::Ed25519, PublicKeyParts::Ed25519(_))
                | (SignatureScheme::EcdsaP256Sha256, PublicKeyParts::EcdsaP256(_))
                | (SignatureScheme::EcdsaP384Sha384, PublicKeyParts::EcdsaP384(_))
                | (
                    SignatureScheme::RsaPkcs1Sha256 | SignatureScheme::RsaPkcs1Sha512,
                    PublicKeyParts::Rsa { .. }
                )
        )
    }
}

/// Checks `sig` over `message`. Err means "not a valid signature by this key under this scheme",
/// whatever the reason: callers report one error, never which step failed.
pub fn verify_signature(
    key: &PublicKeyParts,
    scheme: SignatureScheme,
    message: &[u8],
    sig: &[u8],
) -> Result<(), CryptoError> {
    if !scheme.fits(key) {
        return Err(CryptoError::BadKey("the signature scheme does not fit the key type"));
    }
    let ok = match (key, scheme) {
        (PublicKeyParts::Ed25519(k), _) => {
            UnparsedPublicKey::new(&signature::ED25519, k).verify(message, sig).is_ok()
        }
        (PublicKeyParts::EcdsaP256(k), _) => {
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, k).verify(message, sig).is_ok()
        }
        (PublicKeyParts::EcdsaP384(k), _) => {
            UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, k).verify(message, sig).is_ok()
        }
        (PublicKeyParts::Rsa { n, e }, scheme) => {
            let params = match scheme {
                SignatureScheme::RsaPkcs1Sha512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                _ => &signature::RSA_PKCS1_2048_8192_SHA256,
            };
            RsaPublicKeyComponents { n, e }.verify(params, message, sig).is_ok()
        }
    };
    if ok {
        Ok(())
    } else {
        Err(CryptoError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};

    #[test]
    fn ed25519_and_p256_signatures_verify_and_tampering_fails() {
        let rng = SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let ed = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
        let key = PublicKeyParts::Ed25519(ed.public_key().as_ref().to_vec());
        let sig = ed.sign(b"msg");
        verify_signature(&key, SignatureScheme::Ed25519, b"msg", sig.as_ref()).unwrap();
        assert!(verify_signature(&key, SignatureScheme::Ed25519, b"msG", sig.as_ref()).is_err());

        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let ec = EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng).unwrap();
        let key = PublicKeyParts::EcdsaP256(ec.public_key().as_ref().to_vec());
        let sig = ec.sign(&rng, b"msg").unwrap();
        verify_signature(&key, SignatureScheme::EcdsaP256Sha256, b"msg", sig.as_ref()).unwrap();
        assert!(verify_signature(&key, SignatureScheme::EcdsaP256Sha256, b"other", sig.as_ref()).is_err());
    }

    #[test]
    fn a_scheme_that_does_not_fit_the_key_is_refused_before_any_check() {
        let key = PublicKeyParts::Rsa { n: vec![1; 256], e: vec![1, 0, 1] };
        let err = verify_signature(&key, SignatureScheme::Ed25519, b"m", &[0; 64]).unwrap_err();
        assert!(matches!(err, CryptoError::BadKey(_)), "{err:?}");
        assert!(!SignatureScheme::EcdsaP256Sha256.fits(&PublicKeyParts::EcdsaP384(vec![4; 97])));
    }
}
