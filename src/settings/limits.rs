//! The server's connection caps and deadlines, and run report limits (sections `limits:` and
//! `runs:`).

use std::time::Duration;

use serde::Deserialize;

use super::bounds::{self, DAY, HOUR, MINUTE};

/// How many connections the listeners hold, in total and per source address (an IPv6 /64
/// counts as one source). The totals are lowered at start to fit the descriptor limit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Agent connections of enrolled envoys (check-ins and other calls).
    pub agent_connections: usize,
    pub agent_connections_per_source: usize,
    /// Push channels held between runs (one per watching agent): counted apart, so that a
    /// fleet holding its channels never takes the slots its check-ins need.
    pub push_channels: usize,
    pub push_channels_per_source: usize,
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
    /// An admin request, head and body, must have arrived this long after its first byte.
    pub admin_request_timeout: String,
    /// Agent connections that are not an enrolled, unrevoked envoy's (a self-signed certificate,
    /// which may only enroll; a revoked envoy's) end this long after their handshake, whatever
    /// they send.
    pub enrolling_lifetime: String,
}

/// The range of both deadlines: long enough for a slow link, short enough to matter.
const MAX_DEADLINE: u64 = 10 * MINUTE;

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            agent_connections: 20_000,
            agent_connections_per_source: 20_000,
            push_channels: 20_000,
            push_channels_per_source: 20_000,
            handshakes: 1024,
            handshakes_per_source: 256,
            enrolling_connections: 256,
            enrolling_per_source: 16,
            admin_connections: 256,
            admin_connections_per_source: 64,
            enroll_failures_per_minute: 10,
            admin_request_timeout: "30s".into(),
            enrolling_lifetime: "30s".into(),
        }
    }
}

impl LimitSettings {
    pub fn check(&self) -> Result<(), String> {
        self.admin_request_secs()?;
        self.enrolling_lifetime_secs().map(drop)
    }

    fn admin_request_secs(&self) -> Result<u64, String> {
        bounds::duration("limits.admin_request_timeout", &self.admin_request_timeout, 1, MAX_DEADLINE)
    }

    fn enrolling_lifetime_secs(&self) -> Result<u64, String> {
        bounds::duration("limits.enrolling_lifetime", &self.enrolling_lifetime, 1, MAX_DEADLINE)
    }

    /// The checked value (`check` ran when the file was read; the default otherwise).
    pub fn admin_request_timeout(&self) -> Duration {
        Duration::from_secs(self.admin_request_secs().unwrap_or(30))
    }

    pub fn enrolling_lifetime(&self) -> Duration {
        Duration::from_secs(self.enrolling_lifetime_secs().unwrap_or(30))
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

impl RunSettings {
    pub fn keep_for_secs(&self) -> Result<i64, String> {
        // At least an hour of reports; at most ten years, so `now - keep_for` stays a date.
        bounds::duration("runs.keep_for", &self.keep_for, HOUR, 3650 * DAY).map(|s| s as i64)
    }

    pub fn check(&self) -> Result<(), String> {
        self.keep_for_secs()?;
        if self.max_report_bytes < 4096 || self.keep_per_envoy == 0 || self.reports_per_hour == 0 {
            return Err(
                "runs: max_report_bytes must be at least 4096, keep_per_envoy and reports_per_hour at least 1".into(),
            );
        }
        Ok(())
    }
}
