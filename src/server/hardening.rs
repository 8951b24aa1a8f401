//! Tamper signals, the server's own and those agents report, and each agent's binary as it
//! reported it. A signal is audited when it is first seen (per process, per envoy), logged as a
//! warning and shown on `/security`; nothing here ever stops anything.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::state::Server;
use crate::audit::Event;
use crate::release::tamper;

/// How often the server looks at itself (a look reads two small /proc files).
const LOOK_EVERY: Duration = Duration::from_secs(5);
/// Bounds on what an agent may report (it is signed, but a bug should not grow memory).
const MAX_AGENT_SIGNALS: usize = 16;
const MAX_REPORTED_LEN: usize = 300;

/// What an agent said about its own binary at its last check-in.
#[derive(Clone, Debug, Default)]
pub struct AgentSelf {
    pub version: String,
    pub binary: String,
    pub signals: Vec<String>,
}

#[derive(Default)]
pub struct Hardening {
    own: Mutex<Vec<tamper::Signal>>,
    agents: Mutex<HashMap<String, AgentSelf>>,
}

impl Hardening {
    /// The server's signals at its last look.
    pub fn own(&self) -> Vec<tamper::Signal> {
        self.own.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn agent(&self, envoy_id: &str) -> Option<AgentSelf> {
        self.agents.lock().unwrap_or_else(|p| p.into_inner()).get(envoy_id).cloned()
    }

    /// Keeps what a check-in said; returns the signals this envoy had not reported before.
    pub fn note_agent(&self, envoy_id: &str, version: &str, binary: &str, signals: &[String]) -> Vec<String> {
        let clip = |s: &str| {
            crate::util::text::escape_control(&s.chars().take(MAX_REPORTED_LEN).collect::<String>())
                .into_owned()
        };
        let signals: Vec<String> = signals.iter().take(MAX_AGENT_SIGNALS).map(|s| clip(s)).collect();
        let mut agents = self.agents.lock().unwrap_or_else(|p| p.into_inner());
        let entry = agents.entry(envoy_id.to_string()).or_default();
        if entry.version != version || entry.binary != binary {
            entry.version = clip(version);
            entry.binary = clip(binary);
        }
        let new: Vec<String> = signals.iter().filter(|s| !entry.signals.contains(s)).cloned().collect();
        entry.signals = signals;
        new
    }
}

/// Audits the new signals an envoy reported (the event name is the part before ": ").
pub fn audit_agent_signals(server: &Server, envoy_id: &str, new: Vec<String>) {
    if new.is_empty() {
        return;
    }
    let actor = format!("envoy:{envoy_id}");
    let events: Vec<Event> = new
        .iter()
        .map(|s| {
            let event = if s.starts_with(tamper::DEBUGGER) { tamper::DEBUGGER } else { tamper::INJECTION };
            tracing::warn!(envoy = envoy_id, signal = %s, "an agent reports a tamper signal");
            Event::new(&actor, event, envoy_id)
                .detail(serde_json::json!({ "evidence": s, "source": "agent" }))
        })
        .collect();
    if let Err(e) = server.audit(&events) {
        tracing::warn!(error = %e, "could not audit an agent's tamper signal");
    }
}

/// Looks at the server process now and every minute; audits each signal the first time.
pub fn watch(server: Arc<Server>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = BTreeSet::new();
        loop {
            let now = tokio::task::spawn_blocking(tamper::look).await.unwrap_or_default();
            let new: Vec<&tamper::Signal> = now.iter().filter(|s| !seen.contains(*s)).collect();
            let events: Vec<Event> = new
                .iter()
                .map(|s| {
                    tracing::warn!(event = s.event, evidence = %s.evidence, "tamper signal in the server process");
                    Event::new("server", s.event, "vigosrv").detail(serde_json::json!({ "evidence": s.evidence }))
                })
                .collect();
            if !events.is_empty() {
                if let Err(e) = server.audit(&events) {
                    tracing::warn!(error = %e, "could not audit a tamper signal");
                }
            }
            seen.extend(now.iter().cloned());
            *server.hardening.own.lock().unwrap_or_else(|p| p.into_inner()) = now;
            tokio::time::sleep(LOOK_EVERY).await;
        }
    })
}
