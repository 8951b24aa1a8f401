//! Secure randomness from the operating system (ring's SystemRandom).

use ring::rand::{SecureRandom, SystemRandom};

use super::{b64_encode, CryptoError};

pub fn random_bytes(len: usize) -> Result<Vec<u8>, CryptoError> {
    let mut out = vec![0u8; len];
    SystemRandom::new().fill(&mut out).map_err(|_| CryptoError::Random)?;
    Ok(out)
}

/// A 256-bit random token, url-safe base64, behind a human-readable prefix (e.g. `vgot_`).
pub fn random_token(prefix: &str) -> Result<String, CryptoError> {
    Ok(format!("{prefix}{}", b64_encode(&random_bytes(32)?)))
}

/// A random (version 4) UUID in its canonical text form.
pub fn uuid_v4() -> Result<String, CryptoError> {
    let mut b = random_bytes(16)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = super::hex_encode(&b);
    Ok(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_and_prefixed() {
        let a = random_token("vgot_").unwrap();
        let b = random_token("vgot_").unwrap();
        assert!(a.starts_with("vgot_"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 5 + 43);
    }

    #[test]
    fn uuid_has_version_and_variant() {
        let u = uuid_v4().unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
    }
}
