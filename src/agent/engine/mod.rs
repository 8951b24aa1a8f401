//! The agent's run engine: turns a compiled bundle plus the resolved secret values into a
//! converged host (or, in noop mode, a report of what would change).
//!
//! Each executor reads the current state, computes the difference, and acts only on a
//! difference, so a second apply changes nothing. Secret markers are substituted per
//! resource just before it runs; a marker without a value fails that resource. Every text
//! in the report (diffs, errors, command output) passes through one `Scrubber` before `apply`
//! returns: built from all resolved values, and from the old values the run found in
//! secret-bearing files it replaced (see `secret_files`).

mod attrs;
pub mod backup;
mod batch;
pub(crate) mod cmdline;
mod custom;
mod danger;
mod diff;
mod dirlink;
mod edit;
mod exec;
mod file;
mod graph;
pub mod guardrails;
mod package;
mod private_temp;
mod process;
pub(crate) mod redact;
mod report;
mod rootfs;
mod secret_files;
mod service;
mod systypes;
pub mod task;
mod user;
mod userdb;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::bundle::{CompiledBundle, CompiledResource};
use crate::crypto::SecretBytes;
use crate::placeholder::Scrubber;

pub use guardrails::Guardrails;
pub use report::{ResourceResult, ResourceStatus, RunReport, RunStatus};
pub(crate) use rootfs::{read_nofollow as rootfs_read_nofollow, write_atomic as rootfs_write_atomic};
pub use secret_files::SecretFiles;

pub struct ApplyOptions {
    /// The target root; `/` normally. Every path in the bundle resolves inside it.
    pub root: PathBuf,
    /// Report what would change; change nothing.
    pub noop: bool,
    /// Resources triggered by secret rotation (their `watch_secret` keys changed).
    pub triggered: BTreeSet<String>,
    pub guardrails: Guardrails,
    /// The files that held secrets after the previous run (the report carries the new record).
    pub secret_files: SecretFiles,
    /// Where `backup: true` keeps earlier contents (see `backup`); none: such a file fails.
    pub backup_dir: Option<PathBuf>,
    /// Where custom executors live (see `custom`); none: custom resources fail.
    pub executors_dir: Option<PathBuf>,
}

/// Types that, when they find nothing to change, neither write, rename nor mount anything and
/// run no command: after one of them the guardrails' resolved directories still hold.
const FILE_ONLY_TYPES: &[&str] = &[
    "file",
    "directory",
    "file_line",
    "blockinfile",
    "ini",
    "json_file",
    "replace",
    "host",
    "cron",
    "sysctl",
    "authorized_key",
];

/// What one executor sees of the run.
pub(crate) struct Ctx<'a> {
    pub root: &'a Path,
    pub noop: bool,
    /// Why this resource must refresh (restart, re-run), if it must.
    pub refresh: Option<String>,
    pub guardrails: &'a Guardrails,
    /// Staged file writes and directories to fsync (see `batch`).
    pub batch: &'a batch::Batch,
    /// This resource's index in the bundle.
    pub index: usize,
    /// Which files hold secrets, and the old values found in them.
    pub secret_files: &'a secret_files::Tracker,
    pub backup_dir: Option<&'a Path>,
    pub executors_dir: Option<&'a Path>,
}

impl Ctx<'_> {
    /// A resource's `target_path`: checked against the guardrails, confined to the root, and
    /// checked again by what it is on the host (any alias of a protected path is refused).
    pub fn target_path(&self, a: &attrs::Attrs) -> Result<(String, PathBuf), Fail> {
        let target = a.required("target_path")?;
        self.guardrails.check_path(&target)?;
        let path = rootfs::confine(self.root, &target)?;
        self.guardrails.check_host_path(&path)?;
        Ok((target, path))
    }
}

/// A successful executor run: whether anything changed (or would, in noop) and how.
#[derive(Default)]
pub(crate) struct Done {
    pub changed: bool,
    pub diff: String,
    pub output: String,
}

impl Done {
    pub fn unchanged() -> Done {
        Done::default()
    }
    pub fn changed(diff: impl Into<String>) -> Done {
        Done { changed: true, diff: diff.into(), output: String::new() }
    }
}

#[derive(Default)]
pub(crate) struct Fail {
    pub error: String,
    pub output: String,
    pub guardrail: Option<String>,
}

impl From<String> for Fail {
    fn from(error: String) -> Fail {
        Fail { error, ..Fail::default() }
    }
}

impl From<guardrails::Blocked> for Fail {
    fn from(b: guardrails::Blocked) -> Fail {
        Fail { error: b.message, output: String::new(), guardrail: Some(b.rule) }
    }
}

pub(crate) type Outcome = Result<Done, Fail>;

/// Applies `bundle` in dependency order. Never panics on bad input: every problem becomes a
/// failed (or skipped) resource in the report.
pub fn apply(
    bundle: &CompiledBundle,
    secrets: &BTreeMap<String, SecretBytes>,
    opts: &ApplyOptions,
) -> RunReport {
    let started_ms = crate::util::time::unix_now_millis();
    let t0 = Instant::now();
    let tracker = secret_files::Tracker::new(opts.secret_files.clone());
    let resources = &bundle.resources;
    let plan = graph::plan(resources);
    let mut results: Vec<Option<ResourceResult>> = vec![None; resources.len()];
    // For a failed or skipped resource: the name of the failed resource at the root of it.
    let mut failed_cause: Vec<Option<String>> = vec![None; resources.len()];
    let mut notified_by: Vec<Vec<String>> = vec![Vec::new(); resources.len()];
    let batch = batch::Batch::default();
    // Staged file writes become visible before anything that could see them runs: any
    // resource but a file, or a file that depends on one or was notified (by a staged one).
    let commit = |results: &mut Vec<Option<ResourceResult>>,
                  failed_cause: &mut Vec<Option<String>>,
                  notified_by: &mut Vec<Vec<String>>| {
        opts.guardrails.forget_resolved_dirs();
        for (owner, error) in batch.commit() {
            let name = &resources[owner].name;
            failed_cause[owner] = Some(name.clone());
            for &j in &plan.notifies[owner] {
                notified_by[j].retain(|n| n != name);
            }
            if let Some(r) = results[owner].as_mut() {
                // The change never landed; its diff would claim otherwise.
                r.status = ResourceStatus::Failed;
                r.diff.clear();
                r.error = error;
            }
        }
    };
    for &i in &plan.order {
        let res = &resources[i];
        let sees_batch =
            res.rtype != "file" || !notified_by[i].is_empty() || plan.deps[i].iter().any(|&d| batch.holds(d));
        if sees_batch && !batch.is_empty() {
            commit(&mut results, &mut failed_cause, &mut notified_by);
        }
        let t = Instant::now();
        let skipped_by = plan.deps[i].iter().find_map(|&d| failed_cause[d].clone());
        let stop = crate::util::interrupt::received();
        let (status, outcome) = if let Some(signo) = stop {
            let name = crate::util::interrupt::signal_name(signo);
            (ResourceStatus::Skipped, Err(Fail::from(format!("not run: the agent received {name}"))))
        } else if let Some(reason) = plan.broken.get(&i) {
            (ResourceStatus::Failed, Fail::from(reason.clone()).into_outcome())
        } else if let Some(cause) = skipped_by {
            failed_cause[i] = Some(cause.clone());
            let err = Fail::from(format!("skipped: dependency {cause} failed"));
            (ResourceStatus::Skipped, Err(err))
        } else {
            let refresh = if !notified_by[i].is_empty() {
                Some(format!("notified by {}", notified_by[i].join(", ")))
            } else if opts.triggered.contains(&res.name) {
                Some("a watched secret rotated".to_string())
            } else {
                None
            };
            batch.begin(i);
            let ctx = Ctx {
                root: &opts.root,
                noop: opts.noop,
                refresh,
                guardrails: &opts.guardrails,
                batch: &batch,
                index: i,
                secret_files: &tracker,
                backup_dir: opts.backup_dir.as_deref(),
                executors_dir: opts.executors_dir.as_deref(),
            };
            let outcome = run_one(res, secrets, &ctx);
            let status = match &outcome {
                Ok(d) if d.changed && opts.noop => ResourceStatus::WouldChange,
                Ok(d) if d.changed => ResourceStatus::Changed,
                Ok(_) => ResourceStatus::Unchanged,
                Err(_) => ResourceStatus::Failed,
            };
            (status, outcome)
        };
        if status != ResourceStatus::Unchanged || !FILE_ONLY_TYPES.contains(&res.rtype.as_str()) {
            opts.guardrails.forget_resolved_dirs();
        }
        if status == ResourceStatus::Failed {
            failed_cause[i] = Some(res.name.clone());
        }
        if status.is_change() {
            for &j in &plan.notifies[i] {
                notified_by[j].push(res.name.clone());
            }
        }
        let (diff, error, output, guardrail) = match outcome {
            Ok(d) => (d.diff, String::new(), d.output, None),
            Err(f) => (String::new(), f.error, f.output, f.guardrail),
        };
        results[i] = Some(ResourceResult {
            name: res.name.clone(),
            rtype: res.rtype.clone(),
            status,
            duration_ms: t.elapsed().as_millis() as u64,
            diff,
            error,
            output,
            guardrail,
        });
    }
    commit(&mut results, &mut failed_cause, &mut notified_by);
    for failed in batch.sync_dirs() {
        tracing::warn!(directory = %failed, "could not fsync a directory after the run; changes may not survive a power loss");
    }
    // Only now is every old value the run came across known: scrub everything with all of them.
    let scrubber = scrubber_for(secrets, &tracker);
    let succeeded = |i: usize| {
        results[i]
            .as_ref()
            .is_some_and(|r| matches!(r.status, ResourceStatus::Changed | ResourceStatus::Unchanged))
    };
    let secret_files = tracker.finish(opts.noop, succeeded);
    // Report in apply order, the order an operator reads a run in.
    let results: Vec<ResourceResult> = plan
        .order
        .iter()
        .filter_map(|&i| results[i].take())
        .map(|r| ResourceResult {
            diff: redact::redact(&scrubber, &r.diff),
            error: redact::redact(&scrubber, &r.error),
            output: redact::redact(&scrubber, &r.output),
            ..r
        })
        .collect();
    let status =
        if results.iter().any(|r| matches!(r.status, ResourceStatus::Failed | ResourceStatus::Skipped)) {
            RunStatus::Failed
        } else if results.iter().any(|r| r.status.is_change()) {
            RunStatus::Changed
        } else {
            RunStatus::Converged
        };
    RunReport {
        started_ms,
        duration_ms: t0.elapsed().as_millis() as u64,
        noop: opts.noop,
        status,
        results,
        secret_files,
    }
}

/// Every resolved value under its key, and every old value the run found in a secret-bearing
/// file (under its key when the file's template told which one it was).
fn scrubber_for(secrets: &BTreeMap<String, SecretBytes>, tracker: &secret_files::Tracker) -> Scrubber {
    let mut scrubber = Scrubber::new();
    for (key, value) in secrets {
        scrubber.add(key, value.expose());
    }
    for learned in tracker.take_learned() {
        match learned {
            secret_files::Learned::Key(key, value) => scrubber.add(&key, &value),
            secret_files::Learned::Line(value) => {
                scrubber.add_as("[REDACTED earlier content of a secret-bearing file]", &value)
            }
        }
    }
    scrubber
}

/// Evaluates `when:` — `changed` (notified or rotated), `always`, or `lhs == rhs` / `lhs != rhs`
/// over rendered strings, whose markers are substituted here, at the last moment.
fn when_holds(
    res: &CompiledResource,
    secrets: &BTreeMap<String, SecretBytes>,
    ctx: &Ctx,
) -> Result<bool, Fail> {
    let Some(raw) = res.when.as_deref().map(str::trim).filter(|w| !w.is_empty()) else { return Ok(true) };
    match raw {
        "changed" => return Ok(ctx.refresh.is_some()),
        "always" => return Ok(true),
        _ => {}
    }
    // Split before substituting, so an `==` inside a secret value cannot move the operator.
    let (op, negate) = if raw.contains("!=") { ("!=", true) } else { ("==", false) };
    let Some((lhs, rhs)) = raw.split_once(op) else {
        return Err(format!("unsupported when: {raw:?} (use changed, always, or A == B / A != B)").into());
    };
    let resolve = |side: &str| {
        attrs::substitute_text("when:", side.trim(), secrets).map_err(|e| Fail::from(format!("when: {e}")))
    };
    let (lhs, rhs) = (resolve(lhs)?, resolve(rhs)?);
    Ok((lhs == rhs) != negate)
}

impl Fail {
    fn into_outcome(self) -> Outcome {
        Err(self)
    }
}

fn run_one(res: &CompiledResource, secrets: &BTreeMap<String, SecretBytes>, ctx: &Ctx) -> Outcome {
    let a = attrs::Attrs::new(res, secrets)?;
    if !when_holds(res, secrets, ctx)? {
        // Unchanged, but the report says why it did not run (the condition may hold a secret
        // marker, so it is not quoted).
        return Ok(Done { diff: "not run: its when: condition does not hold".into(), ..Done::default() });
    }
    match res.rtype.as_str() {
        "file" => file::apply(&a, ctx),
        "directory" => dirlink::directory(&a, ctx),
        "symlink" => dirlink::symlink(&a, ctx),
        "exec" => exec::apply(&a, ctx),
        "user" => systypes::user_keys(res, &a, secrets, ctx, user::user(&a, ctx)?),
        "group" => user::group(&a, ctx),
        "package" => package::apply(&a, ctx),
        "service" => service::apply(&a, ctx),
        t if crate::edits::TYPES.contains(&t) => edit::apply(&a, ctx, t, &res.name),
        t if systypes::TYPES.contains(&t) => systypes::apply(res, secrets, ctx),
        "custom" => custom::apply(&a, ctx, &res.name),
        other => Err(format!("unknown resource type {other:?}").into()),
    }
}
