//! The runtime config file every role reads: `/etc/vigo/vigo.yaml` unless `--config FILE` or
//! `VIGO_CONFIG` names another (an empty `VIGO_CONFIG` means none). One file per host, so that
//! `vigocli` finds the server, the vault and the TLS directory the server uses without flags.
//!
//! Strict YAML: unknown keys are refused. The top level holds the server's settings; `cli:`
//! and `agent:` hold what only those roles read. Flags and the environment win over the file.

mod auth;
mod bounds;
mod integrations;
mod limits;
pub mod secret_refs;
mod secrets;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use auth::AuthSettings;
pub use integrations::{IntegrationSettings, SyslogSink, WebhookSink};
pub use limits::{LimitSettings, RunSettings};
pub use secret_refs::SecretRef;
pub use secrets::{IsopassSettings, SecretsSettings};

/// Where the file is looked for when nothing names one.
pub const DEFAULT_PATH: &str = "/etc/vigo/vigo.yaml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The state directory (as `--base-dir`; the flag and `VIGO_BASE_DIR` win).
    pub base_dir: Option<String>,
    /// Agent gRPC listener.
    pub listen: String,
    /// Admin HTTPS listener.
    pub api_listen: String,
    /// How often agents check in, e.g. "5m".
    pub checkin_interval: String,
    /// Validity of client certificates issued at enrollment and renewal, in days.
    pub client_cert_days: u32,
    /// Agents renew a client certificate with fewer days than this left (default: a third of
    /// `client_cert_days`, at least 1).
    pub client_cert_renew_days: Option<u32>,
    pub secrets: SecretsSettings,
    /// The .vgo tree (default <base-dir>/config).
    pub config_dir: Option<String>,
    /// The CA, server certificate and keys (default <base-dir>/tls).
    pub tls_dir: Option<String>,
    /// Connection caps (see docs/OPERATIONS.md).
    pub limits: LimitSettings,
    /// Run report size and retention.
    pub runs: RunSettings,
    /// Logins, sessions and their throttling.
    pub auth: AuthSettings,
    /// Audit sinks and the metrics listener (server only).
    pub integrations: IntegrationSettings,
    pub cli: CliSettings,
    pub agent: AgentSettings,
    /// Signed releases: where the release public key is (when none is compiled in).
    pub release: ReleaseSettings,
}

/// What `vigocli` alone reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CliSettings {
    /// The admin API URL (default: this file's `api_listen`, as seen from this host).
    pub server: Option<String>,
    /// The API token file (default <base-dir>/local-admin.token).
    pub token_file: Option<String>,
}

/// Signed releases (docs/OPERATIONS.md, "Signed releases"), read by every role.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReleaseSettings {
    /// The release public key file, used when no key is compiled in (default
    /// /etc/vigo/release.pub). It must be a root-owned file nobody else may write.
    pub public_key_file: Option<String>,
}

impl ReleaseSettings {
    pub fn public_key_file(&self) -> std::path::PathBuf {
        let file = self.public_key_file.as_deref().unwrap_or(crate::release::keys::DEFAULT_PUBLIC_KEY_FILE);
        std::path::PathBuf::from(file)
    }
}

/// What `vigo-agent` alone reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSettings {
    /// The server's agent address `HOST:PORT`, instead of the one recorded at enrollment.
    pub server: Option<String>,
    /// Hold the push channel between runs so the server can ask for a check-in at once.
    pub push: bool,
    /// How long after the last answer from the server the offline cache may still be applied;
    /// past it the cache is wiped (a host cut off for good, a revoked envoy kept from hearing
    /// so, must not keep its values or apply them for ever).
    pub offline_max_age: String,
}

/// `agent.offline_max_age` when the file does not set it: seven days.
pub const DEFAULT_OFFLINE_MAX_AGE_SECS: i64 = 7 * bounds::DAY as i64;

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings { server: None, push: true, offline_max_age: "7d".into() }
    }
}

impl AgentSettings {
    pub fn offline_max_age_secs(&self) -> Result<u64, String> {
        bounds::duration("agent.offline_max_age", &self.offline_max_age, bounds::HOUR, 3650 * bounds::DAY)
    }

    /// The checked value (`check` ran when the file was read; the default otherwise).
    pub fn offline_max_age(&self) -> i64 {
        self.offline_max_age_secs().map_or(DEFAULT_OFFLINE_MAX_AGE_SECS, |s| s as i64)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            base_dir: None,
            listen: "0.0.0.0:7443".into(),
            api_listen: "127.0.0.1:8443".into(),
            checkin_interval: "5m".into(),
            client_cert_days: 365,
            client_cert_renew_days: None,
            secrets: SecretsSettings::default(),
            config_dir: None,
            tls_dir: None,
            limits: LimitSettings::default(),
            runs: RunSettings::default(),
            auth: AuthSettings::default(),
            integrations: IntegrationSettings::default(),
            cli: CliSettings::default(),
            agent: AgentSettings::default(),
            release: ReleaseSettings::default(),
        }
    }
}

/// Client certificates may not outlive the CA that `generate-certs` makes (3,650 days).
const MAX_CLIENT_CERT_DAYS: u32 = 3650;

/// A config file is a page of YAML; anything this big is not one.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The settings file to read: `flag`, else `VIGO_CONFIG` (empty: none), else the default path
/// when it exists. A file named by the flag or the variable must exist.
pub fn locate(flag: Option<&str>) -> Option<(PathBuf, bool)> {
    if let Some(f) = flag {
        return Some((PathBuf::from(f), true));
    }
    match std::env::var_os("VIGO_CONFIG") {
        Some(v) if v.is_empty() => None,
        Some(v) => Some((PathBuf::from(v), true)),
        None => Path::new(DEFAULT_PATH).exists().then(|| (PathBuf::from(DEFAULT_PATH), false)),
    }
}

/// A config file as read: the settings with `secret:` refs still as written, the refs, and
/// the parsed text for the server to resolve them (`resolve`) once its backend is open.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub settings: Settings,
    pub refs: Vec<SecretRef>,
    pub file: Option<PathBuf>,
    raw: serde_yaml::Value,
}

impl Loaded {
    /// The settings with every ref replaced by its value; a missing one names key and setting.
    pub fn resolve(&self, provider: &dyn crate::secrets::Provider) -> Result<Settings, String> {
        if self.refs.is_empty() {
            return Ok(self.settings.clone());
        }
        let shown = self.file.as_deref().unwrap_or(Path::new("-")).display();
        secret_refs::resolve(&self.raw, provider)
            .map_err(|e| format!("config file {shown}: {}", crate::util::text::cap_quoted(&e)))
    }
}

/// The settings in force: the file `locate` finds, or the defaults.
pub fn load_for(flag: Option<&str>) -> Result<Loaded, String> {
    match locate(flag) {
        None => Ok(Loaded::default()),
        Some((path, _named)) => Settings::load(&path),
    }
}

impl Settings {
    /// Reads and checks the file. Settings that hold a `secret:` ref are checked again once
    /// the server has resolved them.
    pub fn load(path: &Path) -> Result<Loaded, String> {
        let shown = crate::util::text::escape_control(&path.to_string_lossy()).into_owned();
        // Every message quotes the file only in short pieces: a long bad value is not replayed.
        let fail = |e: String| format!("config file {shown}: {}", crate::util::text::cap_quoted(&e));
        // Only a regular file, opened without blocking: a FIFO or device would hang the load.
        let text = crate::util::fsutil::read_regular_text(path, MAX_FILE_BYTES).map_err(|e| {
            format!("config file {shown}: {e} (name another with --config or VIGO_CONFIG; an empty VIGO_CONFIG reads none)")
        })?;
        let raw: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| fail(e.to_string()))?;
        let refs = secret_refs::collect(&raw);
        secret_refs::check(&raw, &refs).map_err(fail)?;
        let settings: Settings = serde_yaml::from_str(&text).map_err(|e| fail(e.to_string()))?;
        // A ref stands where a value will be: checking it now would judge the ref's text.
        // Credentials are exempt: no check reads their value.
        let unresolved = refs.iter().any(|r| !secret_refs::is_credential(&r.setting));
        if !unresolved {
            settings.check().map_err(fail)?;
        }
        Ok(Loaded { settings, refs, file: Some(path.to_path_buf()), raw })
    }

    fn check(&self) -> Result<(), String> {
        self.secrets.check()?;
        self.limits.check()?;
        if !(1..=MAX_CLIENT_CERT_DAYS).contains(&self.client_cert_days) {
            // 0 would issue certificates that expire as they are issued, locking every agent out.
            return Err(format!(
                "client_cert_days {} must be from 1 to {MAX_CLIENT_CERT_DAYS} (the CA's own life)",
                self.client_cert_days
            ));
        }
        if self.client_cert_renew_days.is_some_and(|d| d == 0 || d >= self.client_cert_days) {
            // At or over the whole life, every check-in would renew.
            return Err("client_cert_renew_days must be from 1 to client_cert_days - 1".into());
        }
        self.runs.check()?;
        self.agent.offline_max_age_secs()?;
        self.integrations.check()?;
        self.auth.check()
    }

    pub fn client_cert_renew_days(&self) -> u32 {
        self.client_cert_renew_days.unwrap_or((self.client_cert_days / 3).max(1))
    }

    pub fn checkin_interval_secs(&self) -> Result<u32, String> {
        let secs = crate::util::time::parse_duration(&self.checkin_interval)?;
        u32::try_from(secs)
            .ok()
            .filter(|s| *s >= 1)
            .ok_or_else(|| "checkin_interval must be at least 1s".into())
    }

    /// The base directory: `flag`, else `VIGO_BASE_DIR`, else this file's `base_dir`, else the
    /// role's default.
    pub fn base_dir(&self, flag: Option<&str>, default: &str) -> PathBuf {
        crate::paths::base_dir(flag, self.base_dir.as_deref().unwrap_or(default))
    }

    /// The server's paths: the base directory with this file's overrides applied.
    pub fn server_paths(&self, base: &Path) -> crate::paths::ServerPaths {
        let mut paths = crate::paths::ServerPaths::new(base)
            .with_overrides(self.secrets.secrets_dir.as_deref(), self.secrets.key_file.as_deref());
        if let Some(d) = &self.tls_dir {
            paths.tls_dir = PathBuf::from(d);
        }
        if let Some(d) = &self.config_dir {
            paths.config_dir = PathBuf::from(d);
        }
        paths
    }

    /// The admin API as a client on this host reaches it: `cli.server`, else `api_listen`
    /// (an unspecified address such as 0.0.0.0 is reached on loopback).
    pub fn admin_url(&self) -> String {
        if let Some(s) = &self.cli.server {
            return s.clone();
        }
        let listen = &self.api_listen;
        let local = match listen.rsplit_once(':') {
            Some(("0.0.0.0", port)) => format!("127.0.0.1:{port}"),
            Some(("[::]", port)) => format!("[::1]:{port}"),
            _ => listen.clone(),
        };
        format!("https://{local}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_file_with_secret_refs() {
        let dir = std::env::temp_dir().join(format!("vigo-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("server.yaml");
        std::fs::write(&p, "listen: 127.0.0.1:9000\ncheckin_interval: 30s\n").unwrap();
        let Loaded { settings: s, refs, .. } = Settings::load(&p).unwrap();
        assert_eq!(s.listen, "127.0.0.1:9000");
        assert_eq!(s.api_listen, "127.0.0.1:8443");
        assert_eq!(s.checkin_interval_secs().unwrap(), 30);
        assert!(refs.is_empty());
        std::fs::write(&p, "listne: x\n").unwrap();
        assert!(Settings::load(&p).unwrap_err().contains("unknown field"));
        std::fs::write(&p, "listen: \"secret:vigo/listen\"\n").unwrap();
        assert_eq!(Settings::load(&p).unwrap().refs[0].key, "vigo/listen");
        std::fs::write(&p, "secrets:\n  backend: vault\n").unwrap();
        assert!(Settings::load(&p).unwrap_err().contains("unknown secrets backend"));
        for days in [0, 3651] {
            std::fs::write(&p, format!("client_cert_days: {days}\n")).unwrap();
            assert!(Settings::load(&p).unwrap_err().contains("from 1 to 3650"), "{days}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn scratch(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("vigo-settings-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A config path naming a FIFO (or a device) is refused at once: the load never waits for
    /// a writer that does not come.
    #[test]
    fn a_fifo_as_the_config_file_is_refused_at_once() {
        let dir = scratch("fifo");
        let fifo = dir.join("vigo.yaml");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(Settings::load(&path).map(drop));
        });
        let answer = rx.recv_timeout(std::time::Duration::from_secs(5));
        if answer.is_err() {
            // Unblock the stuck reader before failing, so the test process can end.
            let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
        }
        let err = answer.expect("the load of a FIFO returned within 5 s").unwrap_err();
        assert!(err.contains("not a regular file"), "{err}");
        assert!(Settings::load(Path::new("/dev/zero")).unwrap_err().contains("not a regular file"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A long bad value is quoted in 64 characters at most, wherever the error comes from.
    #[test]
    fn a_long_bad_value_is_never_echoed_whole() {
        let dir = scratch("echo");
        let p = dir.join("vigo.yaml");
        let long = "z".repeat(5000);
        for yaml in [
            format!("client_cert_days: \"{long}\"\n"),
            format!("checkin_interval: \"{long}\"\n"),
            format!("auth:\n  session_idle: \"{long}\"\n"),
            format!("auth:\n  providers: [\"{long}\"]\n"),
            format!("{long}: 1\n"),
            format!("listen: \"secret:{long}\"\n"),
        ] {
            std::fs::write(&p, &yaml).unwrap();
            let err = match Settings::load(&p) {
                Ok(l) => l.settings.checkin_interval_secs().unwrap_err(),
                Err(e) => e,
            };
            assert!(!err.contains(&"z".repeat(65)), "echoed whole: {err}");
            assert!(err.len() < 400, "{} bytes: {err}", err.len());
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn paths_and_the_admin_url_follow_the_file() {
        let s: Settings = serde_yaml::from_str(
            "tls_dir: /etc/vigo/tls\nconfig_dir: /etc/vigo/config\napi_listen: 0.0.0.0:9443\nsecrets:\n  secrets_dir: /var/vault\n",
        )
        .unwrap();
        let paths = s.server_paths(Path::new("/srv/x"));
        assert_eq!(paths.tls_dir, Path::new("/etc/vigo/tls"));
        assert_eq!(paths.ca_cert(), Path::new("/etc/vigo/tls/ca"));
        assert_eq!(paths.config_dir, Path::new("/etc/vigo/config"));
        assert_eq!(paths.key_file, Path::new("/var/vault/.master.key"));
        assert_eq!(paths.db, Path::new("/srv/x/vigo.db"));
        assert_eq!(s.admin_url(), "https://127.0.0.1:9443");
        let remote: Settings =
            serde_yaml::from_str("cli:\n  server: https://vigo.example.com:8443\n").unwrap();
        assert_eq!(remote.admin_url(), "https://vigo.example.com:8443");
    }
}
