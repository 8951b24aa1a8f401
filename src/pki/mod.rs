//! The server's certificates as loaded from `<base>/tls`: the active CA (which issues client
//! certificates and signed the server certificate), the CAs trusted beside it during a
//! rollover, and the server's own certificate. Loaded at start and again on a TLS reload.
//!
//! Rollover (docs/OPERATIONS.md): `ca.next` is a new CA agents are told to trust before it
//! signs anything; after the switch, `ca.prev` is the old CA, still trusted for client
//! certificates until every envoy has renewed under the new one.

mod staging;

pub use staging::{sweep as sweep_stale_staging, Staged};

use crate::crypto::x509::{self, CertAndKey};
use crate::crypto::{self, SecretString};
use crate::paths::ServerPaths;
use crate::util::fsutil;

pub struct Pki {
    /// The CA that issues client certificates now.
    pub ca: CertAndKey,
    pub ca_pin: [u8; 32],
    /// Every CA an agent must trust, active first, as one PEM text.
    pub bundle_pem: String,
    /// Hex SHA-256 of `bundle_pem`: agents report the one they trust.
    pub bundle_sha256: String,
    /// Hex pins of CAs that no envoy certificate should come from any longer.
    pub retiring_pins: Vec<String>,
    pub server: CertAndKey,
    /// The active CA's key, ready to sign nudges (`server::nudges`).
    pub ca_signer: x509::CaSigner,
}

fn read(path: &std::path::Path, hint: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}; {hint}", path.display()))
}

fn read_key(path: &std::path::Path, hint: &str) -> Result<SecretString, String> {
    let key = SecretString::new(read(path, hint)?);
    fsutil::check_private(path).map_err(|e| format!("refusing TLS key: {e}"))?;
    Ok(key)
}

/// The first certificate of a PEM file, as a PEM block again (a bundle is built from these).
fn first_cert_pem(pem: &str, path: &std::path::Path) -> Result<(String, [u8; 32]), String> {
    let der = x509::certs_from_pem(pem).map_err(|e| format!("{}: {e}", path.display()))?.remove(0);
    Ok((x509::cert_to_pem(&der), crypto::sha256(&der)))
}

impl Pki {
    pub fn load(paths: &ServerPaths) -> Result<Pki, String> {
        let hint = "run `vigocli secrets generate-certs`";
        let ca_pem = read(&paths.ca_cert(), hint)?;
        let ca_key = read_key(&paths.ca_key(), hint)?;
        let (active, ca_pin) = first_cert_pem(&ca_pem, &paths.ca_cert())?;
        let mut bundle = active.clone();
        let mut retiring_pins = Vec::new();
        if paths.ca_next().exists() {
            let (next, _) = first_cert_pem(&read(&paths.ca_next(), "")?, &paths.ca_next())?;
            bundle.push_str(&next);
        }
        if paths.ca_prev().exists() {
            let (prev, pin) = first_cert_pem(&read(&paths.ca_prev(), "")?, &paths.ca_prev())?;
            bundle.push_str(&prev);
            retiring_pins.push(crypto::hex_encode(&pin));
        }
        let server = CertAndKey {
            cert_pem: read(&paths.server_cert(), hint)?,
            key_pem: read_key(&paths.server_key(), hint)?,
        };
        let ca_signer = x509::CaSigner::from_pem(ca_key.expose())
            .map_err(|e| format!("{}: {e}; {hint}", paths.ca_key().display()))?;
        Ok(Pki {
            ca_signer,
            ca: CertAndKey { cert_pem: active, key_pem: ca_key },
            ca_pin,
            bundle_sha256: crypto::sha256_hex(bundle.as_bytes()),
            bundle_pem: bundle,
            retiring_pins,
            server,
        })
    }

    pub fn ca_pin_hex(&self) -> String {
        crypto::hex_encode(&self.ca_pin)
    }
}

/// Every CA certificate a client of this server should trust: the active CA and, during a
/// rollover, the next or the previous one (the server's certificate may come from either while
/// a running server has not yet reloaded).
pub fn trusted_cas_pem(paths: &ServerPaths) -> Result<String, String> {
    let mut pem = read(&paths.ca_cert(), "check --base-dir")?;
    for extra in [paths.ca_next(), paths.ca_prev()] {
        if let Ok(more) = std::fs::read_to_string(&extra) {
            pem.push_str(&more);
        }
    }
    Ok(pem)
}

/// A staged change of `<base>/tls` (see `staging`): a full copy changed by `prepare`, put in
/// place by `Staged::put_in_place` once the change's audit row has committed.
pub fn stage_tls_change(
    paths: &ServerPaths,
    prepare: impl FnOnce(&ServerPaths) -> Result<(), String>,
) -> Result<Staged, String> {
    staging::stage_change(&paths.tls_dir, |dir| {
        let mut staged = paths.clone();
        staged.tls_dir = dir.to_path_buf();
        prepare(&staged)
    })
}

fn write_cert(path: &std::path::Path, pem: &str) -> Result<(), String> {
    fsutil::atomic_write(path, pem.as_bytes(), 0o644).map_err(|e| format!("{}: {e}", path.display()))
}

fn write_key(path: &std::path::Path, key: &SecretString) -> Result<(), String> {
    fsutil::atomic_write(path, key.expose().as_bytes(), 0o600).map_err(|e| format!("{}: {e}", path.display()))
}

/// The names a new server certificate is for: this host's usual ones and `extra`.
pub fn default_server_names(extra: &[String]) -> Vec<String> {
    let mut sans = vec!["localhost".to_string(), "127.0.0.1".to_string(), crate::util::hosts::hostname()];
    for s in extra {
        if !sans.contains(s) {
            sans.push(s.clone());
        }
    }
    sans.dedup();
    sans
}

/// Writes a fresh CA and a server certificate for `sans` into `dir` (keys 0600).
fn write_new_set(
    dir: &std::path::Path,
    sans: &[String],
    ca_days: u32,
    server_days: u32,
) -> Result<(), String> {
    let ca = x509::generate_ca(ca_days).map_err(|e| e.to_string())?;
    let server = x509::generate_server_cert(&ca, sans, server_days).map_err(|e| e.to_string())?;
    // Keys first and owner-only; certificates are public.
    write_key(&dir.join("ca_key"), &ca.key_pem)?;
    write_key(&dir.join("key"), &server.key_pem)?;
    write_cert(&dir.join("ca"), &ca.cert_pem)?;
    write_cert(&dir.join("cert"), &server.cert_pem)
}

/// A new CA and server certificate as the TLS directory `dir`, which must be absent or empty,
/// staged beside it (so a crash leaves no CA without its key) until put in place.
pub fn stage_new_tls_dir(
    dir: &std::path::Path,
    sans: &[String],
    ca_days: u32,
    server_days: u32,
) -> Result<Staged, String> {
    staging::stage_new(dir, |staged| write_new_set(staged, sans, ca_days, server_days))
}

/// `stage_new_tls_dir` put in place at once: for the first start, which has nothing to replace
/// and records its audit row once the server is up.
pub fn create_tls_dir(
    dir: &std::path::Path,
    sans: &[String],
    ca_days: u32,
    server_days: u32,
) -> Result<(), String> {
    stage_new_tls_dir(dir, sans, ca_days, server_days)?.put_in_place()
}

/// Every certificate and key in the TLS directory replaced with a new set, staged.
pub fn stage_regenerated_tls_dir(
    paths: &ServerPaths,
    sans: &[String],
    ca_days: u32,
    server_days: u32,
) -> Result<Staged, String> {
    stage_tls_change(paths, |staged| write_new_set(&staged.tls_dir, sans, ca_days, server_days))
}

/// The names and addresses the current server certificate is for.
pub fn server_cert_names(paths: &ServerPaths) -> Result<Vec<String>, String> {
    let pem = read(&paths.server_cert(), "run `vigocli secrets generate-certs`")?;
    let der = x509::certs_from_pem(&pem).map_err(|e| e.to_string())?;
    x509::subject_alt_names(&der[0]).map_err(|e| e.to_string())
}

/// A new server certificate from the active CA (`sans` default to the current one's), staged.
pub fn stage_renewed_server_cert(paths: &ServerPaths, sans: &[String], days: u32) -> Result<Staged, String> {
    stage_tls_change(paths, |staged| {
        let pki = Pki::load(staged)?;
        let server = x509::generate_server_cert(&pki.ca, sans, days).map_err(|e| e.to_string())?;
        write_cert(&staged.server_cert(), &server.cert_pem)?;
        write_key(&staged.server_key(), &server.key_pem)
    })
}

/// Rollover, step 1: a new CA that agents are told to trust; it signs nothing yet. Staged;
/// returns the new CA's name too.
pub fn stage_rollover_start(paths: &ServerPaths, ca_days: u32) -> Result<(Staged, String), String> {
    if paths.ca_next().exists() || paths.ca_prev().exists() {
        return Err("a CA rollover is already under way (tls/ca.next or tls/ca.prev exists); see `vigocli tls status`".into());
    }
    let name = format!("Vigo CA {}", &crate::util::time::now_rfc3339()[..10]);
    let ca = x509::generate_named_ca(ca_days, &name).map_err(|e| e.to_string())?;
    let staged = stage_tls_change(paths, |staged| {
        write_cert(&staged.ca_next(), &ca.cert_pem)?;
        write_key(&staged.ca_key_next(), &ca.key_pem)
    })?;
    Ok((staged, name))
}

/// Rollover, step 2: the new CA becomes the active one (it issues client certificates and a new
/// server certificate); the old one stays trusted as `ca.prev` until step 3. Staged.
pub fn stage_rollover_switch(paths: &ServerPaths, server_days: u32) -> Result<Staged, String> {
    if !paths.ca_next().exists() {
        return Err("no CA rollover has been started (`vigocli tls ca-rollover start`)".into());
    }
    let sans = server_cert_names(paths)?;
    stage_tls_change(paths, |staged| {
        let old_ca = read(&staged.ca_cert(), "")?;
        let next = CertAndKey {
            cert_pem: read(&staged.ca_next(), "")?,
            key_pem: read_key(&staged.ca_key_next(), "")?,
        };
        let server = x509::generate_server_cert(&next, &sans, server_days).map_err(|e| e.to_string())?;
        write_cert(&staged.ca_prev(), &old_ca)?;
        write_cert(&staged.ca_cert(), &next.cert_pem)?;
        write_key(&staged.ca_key(), &next.key_pem)?;
        write_cert(&staged.server_cert(), &server.cert_pem)?;
        write_key(&staged.server_key(), &server.key_pem)?;
        for done in [staged.ca_next(), staged.ca_key_next()] {
            std::fs::remove_file(&done).map_err(|e| format!("{}: {e}", done.display()))?;
        }
        Ok(())
    })
}

/// Rollover, step 3: the old CA is trusted no more. Staged.
pub fn stage_rollover_finish(paths: &ServerPaths) -> Result<Staged, String> {
    if !paths.ca_prev().exists() {
        return Err("there is no old CA to retire (no `vigocli tls ca-rollover switch` yet)".into());
    }
    stage_tls_change(paths, |staged| std::fs::remove_file(staged.ca_prev()).map_err(|e| e.to_string()))
}

/// The hex pin of the CA being retired, if a rollover has switched and not finished.
pub fn retiring_ca_pin(paths: &ServerPaths) -> Result<Option<String>, String> {
    if !paths.ca_prev().exists() {
        return Ok(None);
    }
    let (_, pin) = first_cert_pem(&read(&paths.ca_prev(), "")?, &paths.ca_prev())?;
    Ok(Some(crypto::hex_encode(&pin)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn installation(tag: &str) -> (std::path::PathBuf, ServerPaths) {
        let dir = std::env::temp_dir().join(format!("vigo-pki-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let paths = ServerPaths::new(&dir);
        fsutil::ensure_dir(&paths.tls_dir, 0o700).unwrap();
        let ca = x509::generate_ca(30).unwrap();
        let server = x509::generate_server_cert(&ca, &["vigo.test".into(), "127.0.0.1".into()], 30).unwrap();
        write_cert(&paths.ca_cert(), &ca.cert_pem).unwrap();
        write_key(&paths.ca_key(), &ca.key_pem).unwrap();
        write_cert(&paths.server_cert(), &server.cert_pem).unwrap();
        write_key(&paths.server_key(), &server.key_pem).unwrap();
        (dir, paths)
    }

    #[test]
    fn a_rollover_trusts_both_cas_until_it_finishes() {
        let (dir, paths) = installation("rollover");
        let before = Pki::load(&paths).unwrap();
        assert_eq!(x509::certs_from_pem(&before.bundle_pem).unwrap().len(), 1);
        stage_rollover_start(&paths, 30).unwrap().0.put_in_place().unwrap();
        assert!(stage_rollover_start(&paths, 30).is_err(), "one rollover at a time");
        let started = Pki::load(&paths).unwrap();
        assert_eq!(started.ca_pin, before.ca_pin, "the new CA signs nothing yet");
        assert_eq!(x509::certs_from_pem(&started.bundle_pem).unwrap().len(), 2);
        stage_rollover_switch(&paths, 30).unwrap().put_in_place().unwrap();
        let switched = Pki::load(&paths).unwrap();
        assert_ne!(switched.ca_pin, before.ca_pin);
        assert_eq!(switched.retiring_pins, [crypto::hex_encode(&before.ca_pin)]);
        assert_eq!(server_cert_names(&paths).unwrap(), ["vigo.test", "127.0.0.1"], "same names");
        // The new server certificate chains to the new CA only.
        let verifier = crate::tlsconf::EnvoyCertVerifier::new(&switched.ca.cert_pem).unwrap();
        let id = crypto::Ed25519Identity::generate().unwrap();
        let client = x509::issue_client_cert(&switched.ca, &id.public_key(), "e", 1).unwrap();
        assert!(verifier.is_ca_issued(&x509::certs_from_pem(&client).unwrap()[0]));
        stage_rollover_finish(&paths).unwrap().put_in_place().unwrap();
        let finished = Pki::load(&paths).unwrap();
        assert_eq!(x509::certs_from_pem(&finished.bundle_pem).unwrap().len(), 1);
        assert!(finished.retiring_pins.is_empty());
        // Keys stay owner-only through every exchange, and no staging copy is left behind.
        for key in [paths.ca_key(), paths.server_key()] {
            fsutil::check_private(&key).unwrap();
        }
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains("staging"))
            .collect();
        assert!(leftovers.is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_failed_change_leaves_the_tls_directory_as_it_was() {
        let (dir, paths) = installation("atomic");
        let before = std::fs::read(paths.ca_cert()).unwrap();
        let err = stage_tls_change(&paths, |staged| {
            std::fs::write(staged.ca_cert(), "half").unwrap();
            Err("stopped halfway".into())
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read(paths.ca_cert()).unwrap(), before);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// M6: a staged change is invisible until put in place, and one dropped (its audit row did
    /// not commit) leaves the directory as it was and no staging copy; a copy left by a killed
    /// writer is swept, a live writer's kept.
    #[test]
    fn a_staged_change_is_in_place_only_once_put_there() {
        let (dir, paths) = installation("staged");
        let before = std::fs::read(paths.server_cert()).unwrap();
        let staged = stage_renewed_server_cert(&paths, &["vigo.test".into()], 30).unwrap();
        assert_ne!(std::fs::read(staged.path().join("cert")).unwrap(), before, "the new one is staged");
        assert_eq!(std::fs::read(paths.server_cert()).unwrap(), before, "and not in place yet");
        drop(staged);
        assert_eq!(std::fs::read(paths.server_cert()).unwrap(), before);
        let staging = |d: &std::path::Path| -> Vec<String> {
            std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains("staging"))
                .collect()
        };
        assert!(staging(&dir).is_empty(), "{:?}", staging(&dir));
        stage_renewed_server_cert(&paths, &["vigo.test".into()], 30).unwrap().put_in_place().unwrap();
        assert_ne!(std::fs::read(paths.server_cert()).unwrap(), before);
        fsutil::check_private(&paths.server_key()).unwrap();
        assert!(staging(&dir).is_empty());
        // A killed writer's copy (a PID that cannot exist) goes; this live process's stays.
        let dead = dir.join(".tls.staging-2147483647");
        let live = dir.join(format!(".tls.staging-{}", std::process::id()));
        for d in [&dead, &live] {
            fsutil::ensure_dir(d, 0o700).unwrap();
        }
        assert_eq!(sweep_stale_staging(&paths.tls_dir), 1);
        assert!(!dead.exists() && live.exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
