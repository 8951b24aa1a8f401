//! One apply on this host, as both `run` and `apply` do it: under the run lock, with the
//! agent-local guardrails, and with every guardrail block written to the agent's audit log.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::engine::{self, ApplyOptions, RunReport};
use crate::audit::{self, Event};
use crate::bundle::CompiledBundle;
use crate::crypto::SecretString;
use crate::exit::Failure;
use crate::paths::AgentPaths;
use crate::util::lock::FileLock;

pub struct LocalApply {
    pub root: PathBuf,
    pub noop: bool,
    pub triggered: std::collections::BTreeSet<String>,
}

pub fn apply(
    paths: &AgentPaths,
    bundle: &CompiledBundle,
    secrets: &BTreeMap<String, SecretString>,
    how: LocalApply,
) -> Result<RunReport, Failure> {
    crate::util::fsutil::ensure_dir(&paths.base, 0o700)?;
    let _lock = FileLock::acquire(&paths.lock, None, "vigo-agent run")
        .map_err(|e| Failure::failed(format!("{e}; wait for it to finish or retry later")))?;
    let guardrails = engine::Guardrails::load(&paths.guardrails, &paths.base).map_err(Failure::failed)?;
    let opts = ApplyOptions { root: how.root, noop: how.noop, triggered: how.triggered, guardrails };
    let report = engine::apply(bundle, secrets, &opts);
    audit_blocks(paths, &report)?;
    Ok(report)
}

/// A blocked resource is a refused privileged act: it is recorded on the agent itself.
fn audit_blocks(paths: &AgentPaths, report: &RunReport) -> Result<(), Failure> {
    let blocked: Vec<_> = report.results.iter().filter(|r| r.guardrail.is_some()).collect();
    if blocked.is_empty() {
        return Ok(());
    }
    let targets: Vec<String> = blocked.iter().map(|r| format!("{}[{}]", r.rtype, r.name)).collect();
    let events: Vec<Event<'_>> = blocked
        .iter()
        .zip(&targets)
        .map(|(r, target)| {
            Event::new("agent", "guardrail.blocked", target)
                .detail(serde_json::json!({ "rule": r.guardrail, "noop": report.noop }))
        })
        .collect();
    let mut conn = crate::store::open(&paths.db)?;
    audit::append_all(&mut conn, &events)?;
    Ok(())
}
