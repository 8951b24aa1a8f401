//! One apply on this host, as both `run` and `apply` do it: under the run lock, with the
//! agent-local guardrails, and with every guardrail block written to the agent's audit log.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::engine::{self, ApplyOptions, RunReport};
use crate::audit::{self, Event};
use crate::bundle::CompiledBundle;
use crate::crypto::SecretBytes;
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
    secrets: &BTreeMap<String, SecretBytes>,
    how: LocalApply,
) -> Result<RunReport, Failure> {
    crate::util::fsutil::ensure_dir(&paths.base, 0o700)?;
    let _lock = FileLock::acquire(&paths.lock, None, "vigo-agent run")
        .map_err(|e| Failure::failed(format!("{e}; wait for it to finish or retry later")))?;
    let guardrails = engine::Guardrails::load(&paths.guardrails, &paths.base).map_err(Failure::failed)?;
    // A root inside a protected directory (the agent's own, say) would let every resource —
    // account files, packages, units — write there.
    if how.root != std::path::Path::new("/") {
        guardrails
            .check_host_path(&how.root)
            .map_err(|b| Failure::refused(format!("--root {}: {}", how.root.display(), b.message)))?;
    }
    let record = secret_files_path(paths);
    let secret_files = load_secret_files(&record);
    let opts = ApplyOptions {
        root: how.root,
        noop: how.noop,
        triggered: how.triggered,
        guardrails,
        secret_files: secret_files.clone(),
        backup_dir: Some(backups_path(paths)),
        executors_dir: Some(paths.base.join("executors")),
    };
    let report = engine::apply(bundle, secrets, &opts);
    if !how.noop && (report.secret_files != secret_files || secret_files.unknown) {
        let body =
            serde_json::to_vec_pretty(&report.secret_files).map_err(|e| Failure::failed(e.to_string()))?;
        crate::util::fsutil::atomic_write(&record, &body, 0o600).map_err(|e| {
            Failure::failed(format!("the resources ran, but saving {} failed: {e}", record.display()))
        })?;
    }
    audit_blocks(paths, &report)
        .map_err(|f| Failure { message: format!("the resources ran, but {}", f.message), ..f })?;
    Ok(report)
}

/// Where `backup: true` keeps earlier contents of files (`engine::backup`).
pub fn backups_path(paths: &AgentPaths) -> PathBuf {
    paths.base.join("backups")
}

/// The record of which managed files hold secrets (`engine::SecretFiles`), in the state dir.
pub fn secret_files_path(paths: &AgentPaths) -> PathBuf {
    paths.base.join("secret-files.json")
}

/// The record kept by the previous run. One that cannot be read makes every file count as
/// secret-bearing (no diff at all) until a real run has written a new one.
fn load_secret_files(path: &std::path::Path) -> engine::SecretFiles {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return engine::SecretFiles::default(),
        Err(e) => return unknown_record(path, &e.to_string()),
    };
    serde_json::from_str(&text).unwrap_or_else(|e| unknown_record(path, &e.to_string()))
}

fn unknown_record(path: &std::path::Path, why: &str) -> engine::SecretFiles {
    tracing::warn!(
        record = %path.display(),
        error = why,
        "the record of secret-bearing files is unreadable; no file diff is shown until a run rewrites it"
    );
    engine::SecretFiles::unknown()
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
