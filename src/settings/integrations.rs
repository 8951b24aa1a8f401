//! The `integrations:` section: where the audit chain is fanned out to (syslog, webhook and
//! JSON Lines file sinks, any number of each) and the optional loopback metrics listener.
//! Checked at load; every refusal names the setting.

use serde::Deserialize;

use crate::crypto::SecretString;
use crate::util::time::parse_duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntegrationSettings {
    pub syslog: Vec<SyslogSink>,
    pub webhook: Vec<WebhookSink>,
    pub file: Vec<FileSink>,
    /// The longest wait between two attempts of a failing sink (attempts back off from 1s).
    pub retry_max: String,
    /// A sink failing for this long is a warning in health, doctor and metrics.
    pub warn_after: String,
    pub metrics: MetricsSettings,
}

/// RFC 5424 messages over TLS (RFC 5425 octet counting), plain TCP (same framing) or UDP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogSink {
    pub name: String,
    /// The receiver, `HOST:PORT`.
    pub address: String,
    /// `tls` (default), `tcp` or `udp`.
    #[serde(default = "default_transport")]
    pub transport: String,
    /// The receiver's CA (PEM), pinned: required with `tls`.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// The name the receiver's certificate must carry (default: the host of `address`).
    #[serde(default)]
    pub server_name: Option<String>,
    /// Facility of every message (default `authpriv`: these are records of privileged acts).
    #[serde(default = "default_facility")]
    pub facility: String,
    /// HOSTNAME of the messages (default: this host's name).
    #[serde(default)]
    pub hostname: Option<String>,
}

/// HTTPS POSTs of JSON batches, signed with HMAC-SHA-256 under `key`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSink {
    pub name: String,
    /// `https://…` only.
    pub url: String,
    /// A `secret:<key>` ref in the file (a literal is refused); the value once resolved.
    pub key: SecretString,
    /// The receiver's CA (PEM) to pin (default: the system's trust store).
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Most rows in one POST (1–1000).
    #[serde(default = "default_batch")]
    pub batch: usize,
}

/// JSON Lines appended and fsynced, for a log shipper to pick up.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSink {
    pub name: String,
    /// An absolute path; the file is created 0600 if missing.
    pub path: String,
}

/// `GET /metrics` is always on the admin listener (with a token holding `metrics.read`); this
/// adds a plain-HTTP listener for a scraper on the same host.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// A loopback `IP:PORT` (e.g. `127.0.0.1:9464`); nothing else is accepted.
    pub listen: Option<String>,
}

fn default_transport() -> String {
    "tls".into()
}

fn default_facility() -> String {
    "authpriv".into()
}

fn default_batch() -> usize {
    100
}

impl Default for IntegrationSettings {
    fn default() -> Self {
        IntegrationSettings {
            syslog: vec![],
            webhook: vec![],
            file: vec![],
            retry_max: "5m".into(),
            warn_after: "10m".into(),
            metrics: MetricsSettings::default(),
        }
    }
}

/// RFC 5424 facility names, in code order (0 = kern … 23 = local7).
pub const FACILITIES: &[&str] = &[
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
    "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4", "local5", "local6",
    "local7",
];

impl SyslogSink {
    pub fn facility_code(&self) -> u8 {
        FACILITIES.iter().position(|f| *f == self.facility).unwrap_or(10) as u8
    }
}

impl IntegrationSettings {
    pub fn retry_max_secs(&self) -> Result<u64, String> {
        let s = parse_duration(&self.retry_max).map_err(|e| format!("integrations.retry_max: {e}"))?;
        if !(1..=3600).contains(&s) {
            return Err("integrations.retry_max must be from 1s to 1h".into());
        }
        Ok(s)
    }

    pub fn warn_after_secs(&self) -> Result<u64, String> {
        let s = parse_duration(&self.warn_after).map_err(|e| format!("integrations.warn_after: {e}"))?;
        if s < 10 {
            return Err("integrations.warn_after must be at least 10s".into());
        }
        Ok(s)
    }

    pub fn check(&self) -> Result<(), String> {
        self.retry_max_secs()?;
        self.warn_after_secs()?;
        let mut names: Vec<String> = Vec::new();
        let mut name = |kind: &str, i: usize, n: &str| -> Result<(), String> {
            let at = format!("integrations.{kind}[{i}].name");
            check_name(n).map_err(|e| format!("{at}: {e}"))?;
            if names.iter().any(|x| x == n) {
                return Err(format!("{at}: another sink is already named {n:?}; sink names are unique"));
            }
            names.push(n.to_string());
            Ok(())
        };
        for (i, s) in self.syslog.iter().enumerate() {
            name("syslog", i, &s.name)?;
            s.check().map_err(|e| format!("integrations.syslog[{i}].{e}"))?;
        }
        for (i, w) in self.webhook.iter().enumerate() {
            name("webhook", i, &w.name)?;
            w.check().map_err(|e| format!("integrations.webhook[{i}].{e}"))?;
        }
        for (i, f) in self.file.iter().enumerate() {
            name("file", i, &f.name)?;
            if !f.path.starts_with('/') {
                return Err(format!("integrations.file[{i}].path must be an absolute path"));
            }
        }
        if let Some(l) = &self.metrics.listen {
            let loopback = l.parse::<std::net::SocketAddr>().is_ok_and(|a| a.ip().is_loopback());
            if !loopback {
                return Err(format!(
                    "integrations.metrics.listen must be a loopback IP:PORT such as 127.0.0.1:9464 (got {:?}); remote scrapers use GET /metrics on the admin listener with a token",
                    crate::util::text::excerpt(l)
                ));
            }
        }
        Ok(())
    }
}

/// Sink names label metrics and key cursors: short, lower case, no surprises.
fn check_name(n: &str) -> Result<(), String> {
    let ok = (1..=32).contains(&n.len())
        && n.starts_with(|c: char| c.is_ascii_lowercase())
        && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err("1 to 32 of a-z 0-9 - _, starting with a letter".into())
    }
}

/// `HOST:PORT` with a port number; the host is resolved when the sink connects.
fn check_address(a: &str) -> Result<(), String> {
    let port = a.rsplit_once(':').filter(|(h, _)| !h.is_empty()).and_then(|(_, p)| p.parse::<u16>().ok());
    match port {
        Some(p) if p > 0 => Ok(()),
        _ => Err(format!("must be HOST:PORT (got {:?})", crate::util::text::excerpt(a))),
    }
}

impl SyslogSink {
    fn check(&self) -> Result<(), String> {
        check_address(&self.address).map_err(|e| format!("address {e}"))?;
        match self.transport.as_str() {
            "tls" if self.ca_file.is_none() => {
                return Err("ca_file is required with transport tls: the receiver's CA is pinned".into())
            }
            "tls" | "tcp" | "udp" => {}
            other => {
                return Err(format!(
                    "transport must be tls, tcp or udp (got {:?})",
                    crate::util::text::excerpt(other)
                ))
            }
        }
        if !FACILITIES.contains(&self.facility.as_str()) {
            return Err(format!("facility must be one of {}", FACILITIES.join(", ")));
        }
        if let Some(h) = &self.hostname {
            // RFC 5424 HOSTNAME: 1-255 printable US-ASCII characters, no space.
            if h.is_empty() || h.len() > 255 || !h.bytes().all(|b| (33..=126).contains(&b)) {
                return Err("hostname must be 1 to 255 printable ASCII characters without spaces".into());
            }
        }
        Ok(())
    }
}

impl WebhookSink {
    fn check(&self) -> Result<(), String> {
        let url = url::Url::parse(&self.url).map_err(|e| format!("url: {e}"))?;
        if url.scheme() != "https" || url.host().is_none() {
            return Err("url must be an https:// URL with a host (plain HTTP is never used)".into());
        }
        if !(1..=1000).contains(&self.batch) {
            return Err("batch must be from 1 to 1000".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> Result<(), String> {
        serde_yaml::from_str::<IntegrationSettings>(yaml).map_err(|e| e.to_string())?.check()
    }

    #[test]
    fn sinks_are_checked_with_the_setting_named() {
        check("").unwrap();
        check(
            "syslog: [{name: siem, address: 'siem.example:6514', ca_file: /etc/vigo/siem-ca.pem}, {name: local, address: '127.0.0.1:514', transport: udp, facility: local3}]\nwebhook: [{name: soc, url: 'https://hooks.example/vigo', key: 'secret:vigo/hook'}]\nfile: [{name: shipper, path: /var/log/vigo/audit.jsonl}]\nmetrics: {listen: '127.0.0.1:9464'}\n",
        )
        .unwrap();
        let e = |yaml: &str| check(yaml).unwrap_err();
        assert!(e("syslog: [{name: s, address: 'h:6514'}]").contains("syslog[0].ca_file is required"));
        assert!(e("syslog: [{name: s, address: 'h', transport: tcp}]")
            .contains("syslog[0].address must be HOST:PORT"));
        assert!(e("syslog: [{name: s, address: 'h:1', transport: relp}]")
            .contains("transport must be tls, tcp or udp"));
        assert!(e("syslog: [{name: s, address: 'h:1', transport: udp, facility: nope}]")
            .contains("facility must be one of"));
        assert!(e("webhook: [{name: w, url: 'http://h/x', key: 'secret:k'}]")
            .contains("webhook[0].url must be an https://"));
        assert!(e("webhook: [{name: w, url: 'https://h/x', key: 'secret:k', batch: 0}]")
            .contains("batch must be"));
        assert!(e("file: [{name: f, path: rel.jsonl}]").contains("file[0].path must be an absolute path"));
        assert!(e("file: [{name: Bad, path: /x}]").contains("file[0].name: 1 to 32"));
        assert!(e("file: [{name: a, path: /x}, {name: a, path: /y}]").contains("already named"));
        assert!(e("metrics: {listen: '0.0.0.0:9464'}").contains("loopback"));
        assert!(e("retry_max: 0s").contains("retry_max must be"));
        assert!(e("warn_after: 1s").contains("warn_after must be"));
        assert!(e("file: [{name: f, path: /x, mode: 644}]").contains("unknown field"));
    }
}
