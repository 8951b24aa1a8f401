//! The first start of a new installation: with nothing in the base directory, `vigosrv` makes
//! what it cannot run without — the master key (local backend) and a private CA with a server
//! certificate — instead of refusing. Never beside an existing vault or existing certificates:
//! a new key next to sealed secrets would make them unreadable, new certificates next to old
//! ones would lock every enrolled agent out. A half-made installation is left for the operator.

use crate::paths::ServerPaths;
use crate::secrets::local::{create_master_key, key_file_exists, LocalVault};

/// Certificates made at a first start: the CA for ten years, the server's for one.
const CA_DAYS: u32 = 3650;
const SERVER_DAYS: u32 = 365;

/// What a first start made, for the log and the audit row.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Created {
    pub master_key: bool,
    /// The names the new server certificate is for (empty: no certificates were made).
    pub server_names: Vec<String>,
}

impl Created {
    pub fn anything(&self) -> bool {
        self.master_key || !self.server_names.is_empty()
    }
}

/// Makes the missing pieces when the base directory holds neither a vault nor certificates.
/// `local_vault` is false under the isopass backend, which needs no master key.
pub fn prepare(paths: &ServerPaths, local_vault: bool) -> Result<Created, String> {
    let has_vault = local_vault && (key_file_exists(&paths.key_file)? || holds_sealed_secrets(paths)?);
    if has_vault || holds_tls_files(paths)? {
        return Ok(Created::default());
    }
    let mut created = Created::default();
    if local_vault {
        create_master_key(&paths.secrets_dir, &paths.key_file)?;
        crate::secrets::home::record(&paths.secrets_dir, &paths.base)?;
        created.master_key = true;
    }
    let names = crate::pki::default_server_names(&[]);
    crate::pki::create_tls_dir(&paths.tls_dir, &names, CA_DAYS, SERVER_DAYS)?;
    created.server_names = names;
    Ok(created)
}

fn holds_sealed_secrets(paths: &ServerPaths) -> Result<bool, String> {
    if !paths.secrets_dir.exists() {
        return Ok(false);
    }
    LocalVault::list_keys_in(&paths.secrets_dir).map(|keys| !keys.is_empty()).map_err(|e| e.to_string())
}

fn holds_tls_files(paths: &ServerPaths) -> Result<bool, String> {
    match std::fs::read_dir(&paths.tls_dir) {
        Ok(mut entries) => Ok(entries.next().is_some()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(format!("{}: {e}", paths.tls_dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::fsutil;

    fn blank(tag: &str) -> ServerPaths {
        let dir = std::env::temp_dir().join(format!("vigo-first-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        ServerPaths::new(&dir)
    }

    #[test]
    fn a_blank_directory_gets_a_key_and_certificates_once() {
        let paths = blank("blank");
        let made = prepare(&paths, true).unwrap();
        assert!(made.master_key && made.server_names.contains(&"127.0.0.1".to_string()));
        assert_eq!(fsutil::mode_of(&paths.key_file).unwrap(), 0o600);
        assert_eq!(fsutil::mode_of(&paths.ca_key()).unwrap(), 0o600);
        crate::pki::Pki::load(&paths).unwrap();
        let key = std::fs::read(&paths.key_file).unwrap();
        assert_eq!(prepare(&paths, true).unwrap(), Created::default(), "a second start makes nothing");
        assert_eq!(std::fs::read(&paths.key_file).unwrap(), key);
        std::fs::remove_dir_all(&paths.base).unwrap();
    }

    #[test]
    fn never_beside_sealed_secrets_or_certificates() {
        // Sealed secrets without their key: a new key would not open them.
        let paths = blank("sealed");
        std::fs::create_dir_all(paths.secrets_dir.join("vigo")).unwrap();
        std::fs::write(paths.secrets_dir.join("vigo/db"), b"sealed bytes").unwrap();
        assert_eq!(prepare(&paths, true).unwrap(), Created::default());
        assert!(!paths.key_file.exists() && !paths.tls_dir.exists());
        std::fs::remove_dir_all(&paths.base).unwrap();
        // A certificate without the rest: no new CA.
        let paths = blank("certs");
        std::fs::create_dir_all(&paths.tls_dir).unwrap();
        std::fs::write(paths.ca_cert(), b"old CA").unwrap();
        assert_eq!(prepare(&paths, true).unwrap(), Created::default());
        assert!(!paths.key_file.exists());
        std::fs::remove_dir_all(&paths.base).unwrap();
        // isopass needs no master key: only the certificates are made.
        let paths = blank("isopass");
        let made = prepare(&paths, false).unwrap();
        assert!(!made.master_key && !paths.key_file.exists() && paths.server_cert().exists());
        std::fs::remove_dir_all(&paths.base).unwrap();
    }
}
