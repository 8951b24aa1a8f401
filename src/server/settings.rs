//! The optional server config file (YAML, strict). Flags override it; defaults are safe.

use std::path::Path;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
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
    /// Connection caps (see docs/OPERATIONS.md).
    pub limits: LimitSettings,
    /// Run report size and retention.
    pub runs: RunSettings,
}

/// How many connections the listeners hold, in total and per source address (an IPv6 /64
/// counts as one source). The totals are lowered at start to fit the descriptor limit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Agent connections of enrolled envoys.
    pub agent_connections: usize,
    pub agent_connections_per_source: usize,
    /// Agent connections still in their TLS handshake.
    pub handshakes: usize,
    pub handshakes_per_source: usize,
    /// Connections with a self-signed certificate, which may only enroll.
    pub enrolling_connections: usize,
    pub enrolling_per_source: usize,
    pub admin_connections: usize,
    pub admin_connections_per_source: usize,
    /// Refused enrollments a source may make per minute before it is turned away unheard.
    pub enroll_failures_per_minute: u32,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            agent_connections: 20_000,
            agent_connections_per_source: 20_000,
            handshakes: 1024,
            handshakes_per_source: 256,
            enrolling_connections: 256,
            enrolling_per_source: 16,
            admin_connections: 256,
            admin_connections_per_source: 64,
            enroll_failures_per_minute: 10,
        }
    }
}

/// Run reports: how big one may be and how long they are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSettings {
    /// Largest report accepted, in bytes of stored JSON.
    pub max_report_bytes: usize,
    /// Newest reports kept per envoy.
    pub keep_per_envoy: u32,
    /// Reports older than this are deleted, e.g. "30d".
    pub keep_for: String,
    /// Reports an envoy may send per hour (a steady fleet sends one per check-in interval).
    pub reports_per_hour: u32,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            max_report_bytes: 1024 * 1024,
            keep_per_envoy: 500,
            keep_for: "30d".into(),
            reports_per_hour: 360,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsSettings {
    pub backend: String,
    pub secrets_dir: Option<String>,
    pub key_file: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "0.0.0.0:7443".into(),
            api_listen: "127.0.0.1:8443".into(),
            checkin_interval: "5m".into(),
            client_cert_days: 365,
            client_cert_renew_days: None,
            secrets: SecretsSettings::default(),
            config_dir: None,
            limits: LimitSettings::default(),
            runs: RunSettings::default(),
        }
    }
}

impl Default for SecretsSettings {
    fn default() -> Self {
        SecretsSettings { backend: "local".into(), secrets_dir: None, key_file: None }
    }
}

/// Client certificates may not outlive the CA that `generate-certs` makes (3,650 days).
const MAX_CLIENT_CERT_DAYS: u32 = 3650;

impl Settings {
    /// Reads the file; also returns every `secret:<key>` string in it so startup can check them.
    pub fn load(path: &Path) -> Result<(Settings, Vec<String>), String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("server config {}: {e}", path.display()))?;
        let value: serde_yaml::Value =
            serde_yaml::from_str(&text).map_err(|e| format!("server config {}: {e}", path.display()))?;
        let mut refs = Vec::new();
        collect_secret_refs(&value, &mut refs);
        let settings: Settings =
            serde_yaml::from_str(&text).map_err(|e| format!("server config {}: {e}", path.display()))?;
        if settings.secrets.backend != "local" {
            return Err(format!(
                "server config {}: secrets backend {:?} is not available in this build; use \"local\"",
                path.display(),
                settings.secrets.backend
            ));
        }
        if !(1..=MAX_CLIENT_CERT_DAYS).contains(&settings.client_cert_days) {
            // 0 would issue certificates that expire as they are issued, locking every agent out.
            return Err(format!(
                "server config {}: client_cert_days {} must be from 1 to {MAX_CLIENT_CERT_DAYS} (the CA's own life)",
                path.display(),
                settings.client_cert_days
            ));
        }
        if settings.client_cert_renew_days.is_some_and(|d| d == 0 || d >= settings.client_cert_days) {
            // At or over the whole life, every check-in would renew.
            return Err(format!(
                "server config {}: client_cert_renew_days must be from 1 to client_cert_days - 1",
                path.display()
            ));
        }
        settings
            .runs
            .keep_for_secs()
            .map_err(|e| format!("server config {}: runs.keep_for: {e}", path.display()))?;
        if settings.runs.max_report_bytes < 4096
            || settings.runs.keep_per_envoy == 0
            || settings.runs.reports_per_hour == 0
        {
            return Err(format!(
                "server config {}: runs: max_report_bytes must be at least 4096, keep_per_envoy and reports_per_hour at least 1",
                path.display()
            ));
        }
        Ok((settings, refs))
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
}

impl RunSettings {
    pub fn keep_for_secs(&self) -> Result<i64, String> {
        let secs = crate::util::time::parse_duration(&self.keep_for)?;
        if secs < 3600 {
            return Err("keep at least 1h of run reports".into());
        }
        Ok(secs as i64)
    }
}

fn collect_secret_refs(v: &serde_yaml::Value, out: &mut Vec<String>) {
    match v {
        serde_yaml::Value::String(s) => {
            if let Some(k) = s.strip_prefix("secret:") {
                out.push(k.to_string());
            }
        }
        serde_yaml::Value::Sequence(items) => items.iter().for_each(|i| collect_secret_refs(i, out)),
        serde_yaml::Value::Mapping(m) => m.values().for_each(|i| collect_secret_refs(i, out)),
        serde_yaml::Value::Tagged(t) => collect_secret_refs(&t.value, out),
        _ => {}
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
        let (s, refs) = Settings::load(&p).unwrap();
        assert_eq!(s.listen, "127.0.0.1:9000");
        assert_eq!(s.api_listen, "127.0.0.1:8443");
        assert_eq!(s.checkin_interval_secs().unwrap(), 30);
        assert!(refs.is_empty());
        std::fs::write(&p, "listne: x\n").unwrap();
        assert!(Settings::load(&p).unwrap_err().contains("unknown field"));
        std::fs::write(&p, "config_dir: \"secret:vigo/cfg\"\n").unwrap();
        assert_eq!(Settings::load(&p).unwrap().1, ["vigo/cfg"]);
        std::fs::write(&p, "secrets:\n  backend: isopass\n").unwrap();
        assert!(Settings::load(&p).unwrap_err().contains("not available"));
        for days in [0, 3651] {
            std::fs::write(&p, format!("client_cert_days: {days}\n")).unwrap();
            assert!(Settings::load(&p).unwrap_err().contains("from 1 to 3650"), "{days}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
