//! The `secrets:` section: which backend holds the secret values, and how to reach it.
//! `local` (the default) is the encrypted vault under the base directory; `isopass` is an HTTP
//! secrets service, polled by a watcher for rotations.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsSettings {
    /// `local` or `isopass`.
    pub backend: String,
    /// local: where the sealed files live (default <base-dir>/secrets).
    pub secrets_dir: Option<String>,
    /// local: the master key (default <secrets_dir>/.master.key).
    pub key_file: Option<String>,
    /// isopass: the service's base URL (https only).
    pub url: Option<String>,
    /// isopass: the file holding the long-lived bearer token (owned by root or the server's
    /// user, mode 0600).
    pub token_file: Option<String>,
    /// isopass: PEM file of the CA to trust for the service (default: the system's trust store).
    pub ca_file: Option<String>,
    /// isopass: the poller that notices changed values.
    pub watcher: WatcherSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatcherSettings {
    pub enabled: bool,
    /// How often every referenced value is fetched again, e.g. "5m".
    pub poll_interval: String,
}

/// A shorter poll would only load the service: isopass answers every search in full.
pub const MIN_POLL_SECS: u64 = 5;

impl Default for SecretsSettings {
    fn default() -> Self {
        SecretsSettings {
            backend: "local".into(),
            secrets_dir: None,
            key_file: None,
            url: None,
            token_file: None,
            ca_file: None,
            watcher: WatcherSettings::default(),
        }
    }
}

impl Default for WatcherSettings {
    fn default() -> Self {
        WatcherSettings { enabled: true, poll_interval: "5m".into() }
    }
}

/// What the isopass backend needs, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsopassSettings {
    pub url: String,
    pub token_file: String,
    pub ca_file: Option<String>,
    pub watcher_enabled: bool,
    pub poll_secs: u64,
}

impl SecretsSettings {
    pub fn check(&self) -> Result<(), String> {
        match self.backend.as_str() {
            "local" => {
                if self.url.is_some() || self.token_file.is_some() || self.ca_file.is_some() {
                    return Err(
                        "secrets: url, token_file and ca_file belong to the isopass backend; set backend: isopass or remove them".into(),
                    );
                }
                Ok(())
            }
            "isopass" => self.isopass().map(drop),
            other => Err(format!("unknown secrets backend {other:?}; use \"local\" or \"isopass\"")),
        }
    }

    /// The isopass settings, when that is the backend.
    pub fn isopass(&self) -> Result<IsopassSettings, String> {
        let url = self.url.clone().ok_or("secrets: the isopass backend needs url: https://HOST:PORT")?;
        if !url.starts_with("https://") {
            return Err("secrets.url must be an https:// URL (tokens and values cross it)".into());
        }
        url::Url::parse(&url).map_err(|e| format!("secrets.url: {e}"))?;
        let token_file = self
            .token_file
            .clone()
            .ok_or("secrets: the isopass backend needs token_file: the file holding its bearer token")?;
        // At most a day: the watcher adds it to the clock, and a rotation unnoticed for longer
        // is not being watched.
        let poll_secs = super::bounds::duration(
            "secrets.watcher.poll_interval",
            &self.watcher.poll_interval,
            MIN_POLL_SECS,
            super::bounds::DAY,
        )?;
        Ok(IsopassSettings {
            url: url.trim_end_matches('/').to_string(),
            token_file,
            ca_file: self.ca_file.clone(),
            watcher_enabled: self.watcher.enabled,
            poll_secs,
        })
    }

    pub fn is_isopass(&self) -> bool {
        self.backend == "isopass"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> SecretsSettings {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn isopass_needs_https_a_token_file_and_a_sane_poll() {
        let ok = parse(
            "backend: isopass\nurl: https://isopass.internal:8443/\ntoken_file: /etc/vigo/isopass-token\n",
        );
        let i = ok.isopass().unwrap();
        assert_eq!(i.url, "https://isopass.internal:8443");
        assert_eq!(i.poll_secs, 300);
        assert!(i.watcher_enabled);
        let err = |y: &str| parse(y).check().unwrap_err();
        assert!(err("backend: isopass\ntoken_file: /t\n").contains("needs url"));
        assert!(err("backend: isopass\nurl: http://x\ntoken_file: /t\n").contains("https://"));
        assert!(err("backend: isopass\nurl: https://x\n").contains("token_file"));
        assert!(err("backend: isopass\nurl: https://x\ntoken_file: /t\nwatcher: {poll_interval: 1s}\n")
            .contains("from 5s to 1d"));
        assert!(err("url: https://x\n").contains("belong to the isopass backend"));
        assert!(err("backend: hashicorp\n").contains("unknown secrets backend"));
        parse("").check().unwrap();
    }
}
