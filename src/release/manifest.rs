//! The signed release manifest: what a binary is (name, version, target, SHA-256, size, when
//! signed) and an Ed25519 signature over exactly those bytes, domain-separated. It travels as
//! `BINARY.sig`, a small JSON document. Verifying checks the signature first, then the bytes,
//! then what the caller expects (its own version and target, or a version it may move to).

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::keys::{key_id, ReleaseKey};
use crate::crypto::{self, Ed25519Identity};

/// Prefixed to the manifest bytes before signing, so a release signature cannot be replayed as
/// any other Ed25519 signature Vigo makes (requests, enrollment) or the other way round.
const DOMAIN: &[u8] = b"vigo release manifest v1\n";
const FORMAT: &str = "vigo-release/1";
/// A `.sig` file is small; anything bigger is not one.
pub const MAX_SIG_BYTES: usize = 8192;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub name: String,
    pub version: String,
    pub target: String,
    pub sha256: String,
    pub size: u64,
    pub signed_at: i64,
    /// Signed by an operator who means it: this binary may replace a newer one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_downgrade: bool,
}

/// The `.sig` file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureFile {
    /// The manifest's JSON, base64: the exact bytes signed.
    manifest: String,
    key_id: String,
    signature: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("the signature file is malformed: {0}")]
    Malformed(String),
    #[error("signed by key {found}, but this binary trusts key {trusted} ({origin})")]
    UnknownKey { found: String, trusted: String, origin: String },
    #[error("the signature does not verify with the trusted key")]
    BadSignature,
    #[error("the binary does not match its manifest: {0}")]
    Mismatch(String),
    #[error("the manifest is for {what} {found}, not {expected}")]
    WrongRelease { what: &'static str, found: String, expected: String },
}

impl Manifest {
    pub fn describe(binary: &[u8], version: &str, target: &str, allow_downgrade: bool) -> Manifest {
        Manifest {
            format: FORMAT.into(),
            name: "vigo".into(),
            version: version.into(),
            target: target.into(),
            sha256: crypto::sha256_hex(binary),
            size: binary.len() as u64,
            signed_at: crate::util::time::unix_now(),
            allow_downgrade,
        }
    }
}

fn signed_message(manifest: &[u8]) -> Vec<u8> {
    [DOMAIN, manifest].concat()
}

/// The `.sig` text for `manifest`, signed with `key`.
pub fn sign(manifest: &Manifest, key: &Ed25519Identity) -> Result<String, String> {
    let bytes = serde_json::to_vec(manifest).map_err(|e| e.to_string())?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let file = SignatureFile {
        manifest: b64.encode(&bytes),
        key_id: key_id(&key.public_key()),
        signature: b64.encode(key.sign(&signed_message(&bytes))),
    };
    serde_json::to_string_pretty(&file).map(|s| s + "\n").map_err(|e| e.to_string())
}

/// The manifest of a `.sig` text whose signature `key` made. Nothing in it is trusted before
/// the signature checks out.
pub fn open(sig: &[u8], key: &ReleaseKey) -> Result<Manifest, VerifyError> {
    if sig.len() > MAX_SIG_BYTES {
        return Err(VerifyError::Malformed(format!("larger than {MAX_SIG_BYTES} bytes")));
    }
    let file: SignatureFile =
        serde_json::from_slice(sig).map_err(|e| VerifyError::Malformed(e.to_string()))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let bytes =
        b64.decode(&file.manifest).map_err(|_| VerifyError::Malformed("manifest is not base64".into()))?;
    let signature =
        b64.decode(&file.signature).map_err(|_| VerifyError::Malformed("signature is not base64".into()))?;
    if file.key_id != key.id() {
        let found = file.key_id.chars().take(16).filter(char::is_ascii_hexdigit).collect();
        return Err(VerifyError::UnknownKey { found, trusted: key.id(), origin: key.source.clone() });
    }
    if !crypto::verify_ed25519(&key.public, &signed_message(&bytes), &signature) {
        return Err(VerifyError::BadSignature);
    }
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| VerifyError::Malformed(format!("manifest: {e}")))?;
    if manifest.format != FORMAT || manifest.name != "vigo" {
        return Err(VerifyError::Malformed(format!("not a {FORMAT} manifest for vigo")));
    }
    Ok(manifest)
}

/// The binary's bytes are the ones the manifest describes.
pub fn check_bytes(manifest: &Manifest, binary: &[u8]) -> Result<(), VerifyError> {
    if binary.len() as u64 != manifest.size {
        return Err(VerifyError::Mismatch(format!(
            "{} bytes, the manifest says {}",
            binary.len(),
            manifest.size
        )));
    }
    if crypto::sha256_hex(binary) != manifest.sha256 {
        return Err(VerifyError::Mismatch("its SHA-256 differs".into()));
    }
    Ok(())
}

/// The manifest is for exactly this version and target.
pub fn check_release(manifest: &Manifest, version: &str, target: &str) -> Result<(), VerifyError> {
    if manifest.version != version {
        return Err(VerifyError::WrongRelease {
            what: "version",
            found: manifest.version.clone(),
            expected: version.into(),
        });
    }
    if manifest.target != target {
        return Err(VerifyError::WrongRelease {
            what: "target",
            found: manifest.target.clone(),
            expected: target.into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> (Ed25519Identity, ReleaseKey) {
        let id = Ed25519Identity::generate().unwrap();
        let public = ReleaseKey { public: id.public_key(), source: "test".into() };
        (id, public)
    }

    #[test]
    fn a_signed_manifest_opens_only_with_its_key_and_binds_bytes_version_and_target() {
        let (id, public) = key();
        let binary = b"\x7fELF pretend binary".to_vec();
        let m = Manifest::describe(&binary, "1.2.3", "x86_64-unknown-linux-gnu", false);
        let sig = sign(&m, &id).unwrap();
        let opened = open(sig.as_bytes(), &public).unwrap();
        assert_eq!(opened, m);
        check_bytes(&opened, &binary).unwrap();
        check_release(&opened, "1.2.3", "x86_64-unknown-linux-gnu").unwrap();

        let mut changed = binary.clone();
        changed[3] ^= 1;
        assert!(matches!(check_bytes(&opened, &changed), Err(VerifyError::Mismatch(_))));
        assert!(matches!(
            check_release(&opened, "1.2.4", "x86_64-unknown-linux-gnu"),
            Err(VerifyError::WrongRelease { what: "version", .. })
        ));
        assert!(matches!(
            check_release(&opened, "1.2.3", "aarch64-unknown-linux-gnu"),
            Err(VerifyError::WrongRelease { what: "target", .. })
        ));

        let (_, other) = key();
        assert!(matches!(open(sig.as_bytes(), &other), Err(VerifyError::UnknownKey { .. })));
    }

    #[test]
    fn a_tampered_manifest_or_signature_is_refused() {
        let (id, public) = key();
        let m = Manifest::describe(b"bin", "1.0.0", "t", false);
        let sig = sign(&m, &id).unwrap();
        let mut file: serde_json::Value = serde_json::from_str(&sig).unwrap();
        // Another manifest under the same signature: the version raised by an attacker.
        let raised = Manifest { version: "9.0.0".into(), ..m.clone() };
        let b64 = base64::engine::general_purpose::STANDARD;
        file["manifest"] = b64.encode(serde_json::to_vec(&raised).unwrap()).into();
        assert_eq!(open(file.to_string().as_bytes(), &public), Err(VerifyError::BadSignature));
        // The same manifest signed without the domain prefix.
        let bytes = serde_json::to_vec(&m).unwrap();
        file["manifest"] = b64.encode(&bytes).into();
        file["signature"] = b64.encode(id.sign(&bytes)).into();
        assert_eq!(open(file.to_string().as_bytes(), &public), Err(VerifyError::BadSignature));
        assert!(matches!(open(b"not json", &public), Err(VerifyError::Malformed(_))));
        assert!(matches!(open(&vec![b' '; MAX_SIG_BYTES + 1], &public), Err(VerifyError::Malformed(_))));
    }
}
