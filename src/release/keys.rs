//! Release keys: an Ed25519 pair made by `vigocli release keygen`, and the public keys a binary
//! trusts. Decision (docs/OPERATIONS.md, "Signed releases"): a key compiled in at build time
//! (`VIGO_RELEASE_PUBKEY`) is the only one trusted when present; a build without one trusts the
//! key in a root-owned file (`release.public_key_file`, default /etc/vigo/release.pub) that
//! nobody else may write; with neither, the build is an unsigned development build.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use base64::Engine;

use crate::crypto::{self, Ed25519Identity, SecretString};
use crate::util::fsutil;

const PUBLIC_PREFIX: &str = "vigo-release-ed25519 ";
const MAX_KEY_FILE: u64 = 4096;
pub const DEFAULT_PUBLIC_KEY_FILE: &str = "/etc/vigo/release.pub";

/// A trusted release public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseKey {
    pub public: [u8; 32],
    /// Where it came from, for messages and /security.
    pub source: String,
}

impl ReleaseKey {
    /// A short name for the key: the first 8 bytes of its SHA-256, hex.
    pub fn id(&self) -> String {
        key_id(&self.public)
    }
}

pub fn key_id(public: &[u8; 32]) -> String {
    crypto::sha256_hex(public)[..16].to_string()
}

/// The one-line public key file's text.
pub fn public_key_line(public: &[u8; 32]) -> String {
    format!("{PUBLIC_PREFIX}{}\n", base64::engine::general_purpose::STANDARD.encode(public))
}

pub fn parse_public_key(text: &str) -> Result<[u8; 32], String> {
    let b64 = text
        .trim()
        .strip_prefix(PUBLIC_PREFIX)
        .ok_or("not a vigo release public key (it starts with \"vigo-release-ed25519 \")")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| "the release public key is not valid base64")?;
    bytes.try_into().map_err(|_| "a release public key is 32 bytes".to_string())
}

/// Reads a private release key; it must be owner-only.
pub fn read_private_key(path: &Path) -> Result<Ed25519Identity, String> {
    fsutil::check_private(path).map_err(|e| format!("refusing the release key: {e}"))?;
    let pem =
        SecretString::new(std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?);
    let der = match crate::tlsconf::private_key_from_pem(pem.expose())
        .map_err(|_| format!("{}: no PEM private key in it", path.display()))?
    {
        rustls::pki_types::PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        _ => return Err(format!("{}: not a PKCS#8 key", path.display())),
    };
    Ed25519Identity::from_pkcs8(&der).map_err(|_| format!("{}: not an Ed25519 key", path.display()))
}

/// The key compiled into this build, if any.
pub fn compiled_in() -> Result<Option<ReleaseKey>, String> {
    match option_env!("VIGO_RELEASE_PUBKEY") {
        None | Some("") => Ok(None),
        Some(text) => parse_public_key(text)
            .map(|public| Some(ReleaseKey { public, source: "compiled into this build".into() }))
            .map_err(|e| format!("the release key compiled into this build is unusable: {e}")),
    }
}

/// The trusted key: the compiled-in one, else the file's (checked), else none (development).
/// A file that exists but is unsafe or unreadable is an error, never "no key".
pub fn trusted(public_key_file: &Path) -> Result<Option<ReleaseKey>, String> {
    if let Some(key) = compiled_in()? {
        return Ok(Some(key));
    }
    let meta = match std::fs::symlink_metadata(public_key_file) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", public_key_file.display())),
    };
    let shown = public_key_file.display();
    if !meta.file_type().is_file() {
        return Err(format!("{shown} must be a regular file (not a symlink)"));
    }
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(format!("{shown} must be owned by root; fix it with `chown root {shown}`"));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!("{shown} is writable by group or others; fix it with `chmod 644 {shown}`"));
    }
    if meta.len() > MAX_KEY_FILE {
        return Err(format!("{shown} is too large for a public key"));
    }
    let text = std::fs::read_to_string(public_key_file).map_err(|e| format!("{shown}: {e}"))?;
    let public = parse_public_key(&text).map_err(|e| format!("{shown}: {e}"))?;
    Ok(Some(ReleaseKey { public, source: shown.to_string() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_key_file_must_be_a_regular_file_nobody_else_can_write() {
        let dir = std::env::temp_dir().join(format!("vigo-relkey-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("release.pub");
        assert_eq!(trusted(&file).unwrap(), None, "no file: development build");
        let id = Ed25519Identity::generate().unwrap();
        std::fs::write(&file, public_key_line(&id.public_key())).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(trusted(&file).unwrap().unwrap().public, id.public_key());
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o664)).unwrap();
        assert!(trusted(&file).unwrap_err().contains("chmod 644"));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let link = dir.join("link.pub");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(trusted(&link).unwrap_err().contains("regular file"));
        std::fs::write(&file, "ssh-ed25519 AAAA").unwrap();
        assert!(trusted(&file).unwrap_err().contains("not a vigo release public key"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
