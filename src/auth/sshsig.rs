//! isowebauth's signature check: an OpenSSH `ssh-keygen -Y sign` signature (the SSHSIG format of
//! OpenSSH's PROTOCOL.sshsig) over a server-issued challenge, by the user's stored key.
//!
//! `ssh-key`/`ssh-encoding` parse the SSH wire formats (keys, strings, mpints); the signature is
//! checked by ring through `crate::crypto`. Accepted keys: ssh-ed25519 (what `webusers` stores
//! for admins), ecdsa-sha2-nistp256/384 and RSA of 2048 bits or more signing with rsa-sha2-256/512.
//! Refused: `ssh-rsa` (SHA-1) signatures, DSA, P-521 (ring has no P-521), and FIDO `sk-*` keys,
//! whose signatures also cover a flags byte and counter this check does not evaluate.

use base64::Engine;
use ssh_encoding::{Decode, Reader};
use ssh_key::public::{EcdsaPublicKey, KeyData};

use crate::crypto::{self, PublicKeyParts, SignatureScheme};

const MAGIC: &[u8; 6] = b"SSHSIG";
const VERSION: u32 = 1;
const BEGIN: &str = "-----BEGIN SSH SIGNATURE-----";
const END: &str = "-----END SSH SIGNATURE-----";
/// An RSA-8192 signature armors to about 3 KiB; anything near this is not a signature.
const MAX_ARMOR: usize = 16 * 1024;

/// Why a signature was refused. Messages name the problem, never the input.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SshSigError {
    #[error("not an SSH signature: {0} (paste the whole output of `ssh-keygen -Y sign`)")]
    Armor(&'static str),
    #[error("the SSH signature is truncated or malformed: {0}")]
    Malformed(&'static str),
    #[error("not an SSHSIG signature (bad magic)")]
    Magic,
    #[error("unsupported SSHSIG version {0} (only version 1 exists)")]
    Version(u32),
    #[error("the signature was made for another namespace (sign with the `-n` the server names)")]
    Namespace,
    #[error("unsupported message hash in the signature (sha256 or sha512 only)")]
    HashAlgorithm,
    #[error("unsupported key or signature type {0:?} (use ssh-ed25519, ecdsa-sha2-nistp256/384 or RSA)")]
    KeyType(String),
    #[error("the signature was made by another key than the one on record")]
    KeyMismatch,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the stored public key is not a usable OpenSSH public key line: {0}")]
    PublicKey(&'static str),
}

/// A parsed, supported OpenSSH public key (one `authorized_keys`-style line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    data: KeyData,
    comment: String,
}

impl PublicKey {
    /// The key type, e.g. `ssh-ed25519`.
    // Read by tests (unit tests, and tests/oidc_flow.rs, which compiles this module by path).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn algorithm(&self) -> String {
        self.data.algorithm().as_str().to_string()
    }
    // Read by tests (unit tests, and tests/oidc_flow.rs, which compiles this module by path).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn comment(&self) -> &str {
        &self.comment
    }
    /// `SHA256:…` as `ssh-keygen -l` prints it, for listings and audit rows.
    pub fn fingerprint(&self) -> String {
        self.data.fingerprint(ssh_key::HashAlg::Sha256).to_string()
    }
}

/// Parses and checks a stored key line (`ssh-ed25519 AAAA… comment`): one key, a supported type.
pub fn parse_public_key(line: &str) -> Result<PublicKey, SshSigError> {
    let line = line.trim();
    if line.is_empty() || line.len() > MAX_ARMOR || line.contains('\n') {
        return Err(SshSigError::PublicKey("give exactly one line: TYPE BASE64 [COMMENT]"));
    }
    let key = ssh_key::PublicKey::from_openssh(line)
        .map_err(|_| SshSigError::PublicKey("expected TYPE BASE64 [COMMENT], as in a .pub file"))?;
    key_parts(key.key_data())?;
    Ok(PublicKey { data: key.key_data().clone(), comment: key.comment().to_string() })
}

/// Checks that `armored_signature` is `ssh-keygen -Y sign -n namespace` of `message` by the key
/// in `authorized_key_line`.
pub fn verify(
    armored_signature: &str,
    message: &[u8],
    namespace: &str,
    authorized_key_line: &str,
) -> Result<(), SshSigError> {
    let expected = parse_public_key(authorized_key_line)?;
    let blob = dearmor(armored_signature)?;
    let sig = Envelope::parse(&blob)?;
    // Namespace first: a signature for another purpose is refused whoever made it.
    if !crypto::ct_eq(sig.namespace.as_bytes(), namespace.as_bytes()) {
        return Err(SshSigError::Namespace);
    }
    let digest = match sig.hash_alg.as_str() {
        "sha256" => crypto::sha256(message).to_vec(),
        "sha512" => crypto::sha512(message).to_vec(),
        _ => return Err(SshSigError::HashAlgorithm),
    };
    if sig.public_key != expected.data {
        return Err(SshSigError::KeyMismatch);
    }
    let key = key_parts(&expected.data)?;
    let (scheme, raw_sig) = signature_for(&key, &sig.sig_alg, &sig.sig_blob)?;
    let signed = signed_data(namespace, &sig.reserved, &sig.hash_alg, &digest);
    crypto::verify_signature(&key, scheme, &signed, &raw_sig).map_err(|_| SshSigError::BadSignature)
}

/// The armor's base64 body, decoded. Line width and surrounding blank lines are not checked
/// (OpenSSH does not either); everything else must be exact.
fn dearmor(text: &str) -> Result<Vec<u8>, SshSigError> {
    if text.len() > MAX_ARMOR {
        return Err(SshSigError::Armor("far too long"));
    }
    let text = text.trim();
    let body = text
        .strip_prefix(BEGIN)
        .ok_or(SshSigError::Armor("it does not start with the BEGIN SSH SIGNATURE line"))?
        .strip_suffix(END)
        .ok_or(SshSigError::Armor("it does not end with the END SSH SIGNATURE line"))?;
    let b64: String = body.split_ascii_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| SshSigError::Armor("its body is not valid base64"))
}

/// The fields of an SSHSIG blob, in order.
struct Envelope {
    public_key: KeyData,
    namespace: String,
    reserved: Vec<u8>,
    hash_alg: String,
    sig_alg: String,
    sig_blob: Vec<u8>,
}

impl Envelope {
    fn parse(mut r: &[u8]) -> Result<Self, SshSigError> {
        let trunc = |_| SshSigError::Malformed("a field is cut short or has a bad length");
        let mut magic = [0u8; 6];
        r.read(&mut magic).map_err(|_| SshSigError::Malformed("too short for a signature"))?;
        if &magic != MAGIC {
            return Err(SshSigError::Magic);
        }
        let version = u32::decode(&mut r).map_err(trunc)?;
        if version != VERSION {
            return Err(SshSigError::Version(version));
        }
        let key_blob = Vec::<u8>::decode(&mut r).map_err(trunc)?;
        let namespace = String::decode(&mut r).map_err(|_| SshSigError::Malformed("namespace"))?;
        let reserved = Vec::<u8>::decode(&mut r).map_err(trunc)?;
        let hash_alg = String::decode(&mut r).map_err(|_| SshSigError::Malformed("hash algorithm"))?;
        let sig = Vec::<u8>::decode(&mut r).map_err(trunc)?;
        if !r.is_empty() {
            return Err(SshSigError::Malformed("trailing bytes after the signature"));
        }
        let public_key = decode_exact::<KeyData>(&key_blob).map_err(|e| match e {
            Some(name) => SshSigError::KeyType(name),
            None => SshSigError::Malformed("embedded public key"),
        })?;
        let mut s = &sig[..];
        let sig_alg = String::decode(&mut s).map_err(|_| SshSigError::Malformed("signature type"))?;
        let sig_blob = Vec::<u8>::decode(&mut s).map_err(trunc)?;
        if !s.is_empty() {
            // sk-* signatures carry flags and a counter here; they are not supported.
            return Err(SshSigError::KeyType(printable(&sig_alg)));
        }
        Ok(Envelope { public_key, namespace, reserved, hash_alg, sig_alg, sig_blob })
    }
}

/// Decodes a whole blob as one value. Err(Some(type)) for a key type ssh-key does not know.
fn decode_exact<T: Decode>(blob: &[u8]) -> Result<T, Option<String>> {
    let mut r = blob;
    match T::decode(&mut r) {
        Ok(v) if r.is_empty() => Ok(v),
        Ok(_) => Err(None),
        Err(_) => {
            let mut name = blob;
            Err(String::decode(&mut name).ok().map(|n| printable(&n)))
        }
    }
}

/// Raw key parts for a supported key; the type name of any other.
fn key_parts(key: &KeyData) -> Result<PublicKeyParts, SshSigError> {
    let unsupported = || SshSigError::KeyType(key.algorithm().as_str().to_string());
    match key {
        KeyData::Ed25519(k) => Ok(PublicKeyParts::Ed25519(k.0.to_vec())),
        KeyData::Ecdsa(EcdsaPublicKey::NistP256(p)) => Ok(PublicKeyParts::EcdsaP256(p.as_bytes().to_vec())),
        KeyData::Ecdsa(EcdsaPublicKey::NistP384(p)) => Ok(PublicKeyParts::EcdsaP384(p.as_bytes().to_vec())),
        KeyData::Rsa(k) => {
            let n = k.n.as_positive_bytes().ok_or_else(unsupported)?;
            let e = k.e.as_positive_bytes().ok_or_else(unsupported)?;
            Ok(PublicKeyParts::Rsa { n: n.to_vec(), e: e.to_vec() })
        }
        _ => Err(unsupported()),
    }
}

/// The ring scheme and raw signature bytes for an SSH signature of `sig_alg` by `key`.
fn signature_for(
    key: &PublicKeyParts,
    sig_alg: &str,
    blob: &[u8],
) -> Result<(SignatureScheme, Vec<u8>), SshSigError> {
    let scheme = match (key, sig_alg) {
        (PublicKeyParts::Ed25519(_), "ssh-ed25519") => SignatureScheme::Ed25519,
        (PublicKeyParts::EcdsaP256(_), "ecdsa-sha2-nistp256") => SignatureScheme::EcdsaP256Sha256,
        (PublicKeyParts::EcdsaP384(_), "ecdsa-sha2-nistp384") => SignatureScheme::EcdsaP384Sha384,
        (PublicKeyParts::Rsa { .. }, "rsa-sha2-256") => SignatureScheme::RsaPkcs1Sha256,
        (PublicKeyParts::Rsa { .. }, "rsa-sha2-512") => SignatureScheme::RsaPkcs1Sha512,
        _ => return Err(SshSigError::KeyType(printable(sig_alg))),
    };
    let raw = match scheme {
        SignatureScheme::EcdsaP256Sha256 => ecdsa_fixed(blob, 32)?,
        SignatureScheme::EcdsaP384Sha384 => ecdsa_fixed(blob, 48)?,
        _ => blob.to_vec(),
    };
    Ok((scheme, raw))
}

/// SSH's ECDSA signature (mpint r, mpint s) as ring's fixed-width `r || s`.
fn ecdsa_fixed(blob: &[u8], width: usize) -> Result<Vec<u8>, SshSigError> {
    let mut r = blob;
    let mut out = Vec::with_capacity(2 * width);
    for _ in 0..2 {
        let n = ssh_key::Mpint::decode(&mut r).map_err(|_| SshSigError::Malformed("ECDSA signature"))?;
        let bytes = n.as_positive_bytes().ok_or(SshSigError::BadSignature)?;
        if bytes.len() > width {
            return Err(SshSigError::BadSignature);
        }
        out.extend(std::iter::repeat_n(0u8, width - bytes.len()));
        out.extend_from_slice(bytes);
    }
    if !r.is_empty() {
        return Err(SshSigError::Malformed("ECDSA signature"));
    }
    Ok(out)
}

/// What the key actually signed (PROTOCOL.sshsig): the magic, then four SSH strings.
fn signed_data(namespace: &str, reserved: &[u8], hash_alg: &str, digest: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for field in [namespace.as_bytes(), reserved, hash_alg.as_bytes(), digest] {
        out.extend_from_slice(&(field.len() as u32).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

/// An outside algorithm name, safe to print: short, visible ASCII only.
fn printable(name: &str) -> String {
    name.chars().take(48).map(|c| if c.is_ascii_graphic() { c } else { '?' }).collect()
}

#[cfg(test)]
#[path = "sshsig_tests.rs"]
mod tests;
