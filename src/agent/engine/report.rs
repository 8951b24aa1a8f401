//! The run report: one entry per resource, scrubbed of every resolved secret before it
//! leaves `apply`.

use serde::Serialize;

/// Overall outcome. In a noop run `Changed` means "would change": nothing was touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Converged,
    Changed,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Converged => "converged",
            RunStatus::Changed => "changed",
            RunStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceStatus {
    Unchanged,
    Changed,
    WouldChange,
    Failed,
    Skipped,
}

impl ResourceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceStatus::Unchanged => "unchanged",
            ResourceStatus::Changed => "changed",
            ResourceStatus::WouldChange => "would-change",
            ResourceStatus::Failed => "failed",
            ResourceStatus::Skipped => "skipped",
        }
    }

    /// Whether the resource changed (or would have) and so refreshes what it notifies.
    pub fn is_change(self) -> bool {
        matches!(self, ResourceStatus::Changed | ResourceStatus::WouldChange)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceResult {
    pub name: String,
    pub rtype: String,
    pub status: ResourceStatus,
    pub duration_ms: u64,
    pub diff: String,
    pub error: String,
    pub output: String,
    /// The guardrail rule that blocked this resource, if one did.
    pub guardrail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunReport {
    pub started_ms: i64,
    pub duration_ms: u64,
    pub noop: bool,
    pub status: RunStatus,
    pub results: Vec<ResourceResult>,
    /// The record of secret-bearing files after this run, for the agent to keep (never sent).
    #[serde(skip)]
    pub secret_files: super::SecretFiles,
}

impl RunReport {
    #[cfg(test)]
    pub fn result(&self, name: &str) -> Option<&ResourceResult> {
        self.results.iter().find(|r| r.name == name)
    }
}
