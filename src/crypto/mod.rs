//! THE crypto module: the only code in Vigo that touches ring, argon2 or sha-crypt.
//!
//! Everything else asks this module for sealed bytes, signatures, hashes and certificates,
//! so an audit of the cryptography is an audit of this directory.

mod aead;
mod encoding;
mod hash;
mod password;
mod random;
mod seal;
mod secret;
mod sign;
mod verify;
pub mod x509;

pub use aead::{open, seal, MasterKey, KEY_LEN};
pub use encoding::{b64_decode, b64_encode, hex_decode, hex_encode};
pub use hash::{ct_eq, hkdf_sha256, hmac_sha256, sha256, sha256_hex, sha512};
pub use password::{argon2id_hash, argon2id_verify, sha512_crypt, sha512_crypt_salt};
pub use random::{random_bytes, random_token, uuid_v4};
pub use seal::{seal_to, EphemeralRecipient};
pub use secret::{SecretBytes, SecretString};
pub use sign::{verify_ed25519, Ed25519Identity};
pub use verify::{verify_signature, PublicKeyParts, SignatureScheme};

/// Everything that can go wrong inside the crypto module.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error(
        "decryption failed: the data was tampered with, belongs to another key name, or the key is wrong"
    )]
    Tampered,
    #[error("malformed input: {0}")]
    Malformed(&'static str),
    #[error("key material is invalid: {0}")]
    BadKey(&'static str),
    #[error("password hashing failed: {0}")]
    PasswordHash(String),
    #[error("certificate operation failed: {0}")]
    Certificate(String),
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the system random generator failed")]
    Random,
}
