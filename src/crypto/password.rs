//! Password hashing: Argon2id (PHC strings) for the vault's unlock verifier, and SHA-512-crypt
//! (`$6$`) for /etc/shadow, computed on the agent.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use super::{random_bytes, CryptoError};

/// Hashes with Argon2id v1.3 at the crate's defaults (m=19 MiB, t=2, p=1), 16-byte random salt.
pub fn argon2id_hash(passphrase: &[u8]) -> Result<String, CryptoError> {
    let salt =
        SaltString::encode_b64(&random_bytes(16)?).map_err(|e| CryptoError::PasswordHash(e.to_string()))?;
    Argon2::default()
        .hash_password(passphrase, &salt)
        .map(|h| h.to_string())
        .map_err(|e| CryptoError::PasswordHash(e.to_string()))
}

/// Checks a passphrase against a PHC string. A malformed PHC string is an error, not `false`.
pub fn argon2id_verify(passphrase: &[u8], phc: &str) -> Result<bool, CryptoError> {
    let parsed = PasswordHash::new(phc).map_err(|e| CryptoError::PasswordHash(e.to_string()))?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(CryptoError::PasswordHash("verifier is not an argon2id hash".into()));
    }
    Ok(Argon2::default().verify_password(passphrase, &parsed).is_ok())
}

const CRYPT_ALPHABET: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A random 16-character salt from the crypt(3) alphabet.
pub fn sha512_crypt_salt() -> Result<String, CryptoError> {
    Ok(random_bytes(16)?
        .iter()
        .map(|b| CRYPT_ALPHABET[(*b as usize) % CRYPT_ALPHABET.len()] as char)
        .collect())
}

/// `$6$<salt>$<hash>` with the default 5000 rounds, as glibc's crypt(3) writes it.
pub fn sha512_crypt(password: &[u8], salt: &str) -> Result<String, CryptoError> {
    if salt.is_empty() || salt.len() > 16 || !salt.bytes().all(|b| CRYPT_ALPHABET.contains(&b)) {
        return Err(CryptoError::PasswordHash("salt must be 1-16 characters of [./0-9A-Za-z]".into()));
    }
    let params =
        sha_crypt::Sha512Params::new(5000).map_err(|_| CryptoError::PasswordHash("bad rounds".into()))?;
    let hash = sha_crypt::sha512_crypt_b64(password, salt.as_bytes(), &params)
        .map_err(|_| CryptoError::PasswordHash("sha512-crypt failed".into()))?;
    Ok(format!("$6${salt}${hash}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::hex_encode;
    use argon2::{Algorithm, AssociatedData, ParamsBuilder, Version};

    /// RFC 9106 section 5.3: the Argon2id test vector.
    #[test]
    fn argon2id_rfc9106_vector() {
        let mut builder = ParamsBuilder::new();
        builder.m_cost(32).t_cost(3).p_cost(4).output_len(32).data(AssociatedData::new(&[4u8; 12]).unwrap());
        let params = builder.build().unwrap();
        let secret = [3u8; 8];
        let argon = Argon2::new_with_secret(&secret, Algorithm::Argon2id, Version::V0x13, params).unwrap();
        let mut out = [0u8; 32];
        argon.hash_password_into(&[1u8; 32], &[2u8; 16], &mut out).unwrap();
        assert_eq!(hex_encode(&out), "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659");
    }

    #[test]
    fn argon2id_phc_round_trip() {
        let phc = argon2id_hash(b"correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$"));
        assert!(argon2id_verify(b"correct horse", &phc).unwrap());
        assert!(!argon2id_verify(b"wrong horse", &phc).unwrap());
        assert!(argon2id_verify(b"x", "not a phc").is_err());
    }

    /// Ulrich Drepper's SHA-crypt specification, the first SHA-512 example.
    #[test]
    fn sha512_crypt_known_answer() {
        assert_eq!(
            sha512_crypt(b"Hello world!", "saltstring").unwrap(),
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
        );
    }

    #[test]
    fn sha512_crypt_rejects_bad_salt() {
        assert!(sha512_crypt(b"x", "bad$salt").is_err());
        assert!(sha512_crypt(b"x", "").is_err());
        let s = sha512_crypt_salt().unwrap();
        assert_eq!(s.len(), 16);
    }
}
