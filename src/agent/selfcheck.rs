//! The agent's look at itself, reported at every check-in: its binary's signature (checked once
//! per process; the agent runs whatever the check finds, and the server shows it per envoy) and
//! the tamper signals it sees right now.

use std::sync::OnceLock;

use crate::paths::AgentPaths;
use crate::release::{gate, tamper};

/// One line: "signed 1.2.3 (release key …)", the development-build notice, or why the
/// signature does not check out.
pub fn binary_status(paths: &AgentPaths) -> String {
    static STATUS: OnceLock<String> = OnceLock::new();
    STATUS
        .get_or_init(|| match gate::check_self(&paths.release_key_file) {
            Ok(status) => status.summary(),
            Err(e) => {
                tracing::warn!(error = %e, "this agent's binary does not pass its signature check");
                format!("signature check failed: {e}")
            }
        })
        .clone()
}

/// "event: evidence" for each tamper signal seen now.
pub fn hardening() -> Vec<String> {
    tamper::look().into_iter().map(|s| format!("{}: {}", s.event, s.evidence)).collect()
}
