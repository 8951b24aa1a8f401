//! TEMPORARY minimal run engine (file resources only), replaced by the full engine.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::bundle::CompiledBundle;
use crate::crypto::SecretString;

#[derive(Clone, Debug, Default)]
pub struct Guardrails;

impl Guardrails {
    pub fn load(_path: &Path, _agent_base: &Path) -> Result<Guardrails, String> {
        Ok(Guardrails)
    }
    pub fn defaults(_agent_base: &Path) -> Guardrails {
        Guardrails
    }
}

pub struct ApplyOptions {
    pub root: PathBuf,
    pub noop: bool,
    pub triggered: BTreeSet<String>,
    pub guardrails: Guardrails,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub enum RunStatus {
    Converged,
    Changed,
    Failed,
}

impl RunStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            RunStatus::Converged => "converged",
            RunStatus::Changed => "changed",
            RunStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub enum ResourceStatus {
    Unchanged,
    Changed,
    WouldChange,
    Failed,
    Skipped,
}

impl ResourceStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ResourceStatus::Unchanged => "unchanged",
            ResourceStatus::Changed => "changed",
            ResourceStatus::WouldChange => "would-change",
            ResourceStatus::Failed => "failed",
            ResourceStatus::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ResourceResult {
    pub name: String,
    pub rtype: String,
    pub status: ResourceStatus,
    pub duration_ms: u64,
    pub diff: String,
    pub error: String,
    pub output: String,
    pub guardrail: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub started_ms: i64,
    pub duration_ms: u64,
    pub noop: bool,
    pub status: RunStatus,
    pub results: Vec<ResourceResult>,
}

pub fn apply(
    bundle: &CompiledBundle,
    secrets: &BTreeMap<String, SecretString>,
    opts: &ApplyOptions,
) -> RunReport {
    let started_ms = crate::util::time::unix_now_millis();
    let mut results = Vec::new();
    for r in &bundle.resources {
        let mut res = ResourceResult {
            name: r.name.clone(),
            rtype: r.rtype.clone(),
            status: ResourceStatus::Unchanged,
            duration_ms: 0,
            diff: String::new(),
            error: String::new(),
            output: String::new(),
            guardrail: None,
        };
        if r.rtype == "file" {
            let path = r.attributes.get("target_path").and_then(|v| v.as_str()).unwrap_or("");
            let content = r.attributes.get("content").and_then(|v| v.as_str()).unwrap_or("");
            match crate::placeholder::substitute(content, |k| secrets.get(k).map(|v| v.expose())) {
                Ok(text) => {
                    match crate::util::fsutil::join_inside(&opts.root, path.trim_start_matches('/')) {
                        Some(p) => {
                            if std::fs::read(&p).ok().as_deref() != Some(text.as_bytes()) {
                                res.status = if opts.noop {
                                    ResourceStatus::WouldChange
                                } else {
                                    ResourceStatus::Changed
                                };
                                if !opts.noop {
                                    if let Some(d) = p.parent() {
                                        let _ = std::fs::create_dir_all(d);
                                    }
                                    if let Err(e) =
                                        crate::util::fsutil::atomic_write(&p, text.as_bytes(), 0o644)
                                    {
                                        res.status = ResourceStatus::Failed;
                                        res.error = e.to_string();
                                    }
                                }
                            }
                        }
                        None => {
                            res.status = ResourceStatus::Failed;
                            res.error = "path escapes the root".into();
                        }
                    }
                }
                Err(e) => {
                    res.status = ResourceStatus::Failed;
                    res.error = e.to_string();
                }
            }
        }
        results.push(res);
    }
    let status = if results.iter().any(|r| r.status == ResourceStatus::Failed) {
        RunStatus::Failed
    } else if results.iter().any(|r| r.status == ResourceStatus::Changed) {
        RunStatus::Changed
    } else {
        RunStatus::Converged
    };
    RunReport {
        started_ms,
        duration_ms: (crate::util::time::unix_now_millis() - started_ms) as u64,
        noop: opts.noop,
        status,
        results,
    }
}
