//! Custom executors: a resource type Vigo lacks, run by an executable the host's administrator
//! put in the agent's executors directory (`<base>/executors/<name>`; never sent by the
//! server). The protocol, with a complete example, is in docs/EXECUTORS.md:
//!
//! - stdin: one JSON object `{"resource", "noop", "root", "refresh", "params"}`; `params` holds `params`
//!   and `private_params` together (only the latter may hold secrets);
//! - stdout: one JSON object `{"changed": bool, "message": "…", "error": "…"}`;
//! - exit status 0 unless it failed; stderr is kept as the resource's output.
//!
//! The executable must be a regular file owned by root (or the agent's user) and writable by
//! nobody else, in a directory that is the same, or it is not run: whoever can change it runs
//! code as the agent. It runs with a clean environment, in its own process group, killed whole
//! at `timeout`. Like every text of a run, its message, error and output are scrubbed.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

use super::attrs::Attrs;
use super::process::{self, Spec};
use super::{Ctx, Done, Fail, Outcome};
use crate::config::schema;
use crate::crypto::SecretBytes;

/// Refuses a file or directory that someone other than root or the agent could have changed.
fn check_trusted(path: &Path, dir: bool) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound if !dir => {
            format!("the executor {} is not installed on this host", path.display())
        }
        _ => format!("{}: {e}", path.display()),
    })?;
    let kind_ok = if dir { meta.is_dir() } else { meta.is_file() };
    let me = nix::unistd::geteuid().as_raw();
    let owner_ok = meta.uid() == 0 || meta.uid() == me;
    if !kind_ok || !owner_ok || meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{} must be a {} owned by root and writable by nobody else (no symlink); refusing to run it",
            path.display(),
            if dir { "directory" } else { "regular file" }
        ));
    }
    if !dir && meta.mode() & 0o100 == 0 {
        return Err(format!("{} is not executable (chmod 0755 it)", path.display()));
    }
    Ok(())
}

pub(crate) fn apply(a: &Attrs, ctx: &Ctx, resource: &str) -> Outcome {
    let name = a.required("executor")?;
    schema::check_executor_name(&name)?;
    let dir = ctx
        .executors_dir
        .ok_or_else(|| "custom resources need the agent's executors directory".to_string())?;
    check_trusted(dir, true)?;
    let path = dir.join(&name);
    check_trusted(&path, false)?;
    let mut params = Map::new();
    for (k, v) in a.map("params")? {
        params.insert(k, Value::String(v.expose().to_string()));
    }
    for (k, v) in a.map("private_params")? {
        if params.contains_key(&k) {
            return Err(format!("`{k}` is in both params and private_params; keep one").into());
        }
        params.insert(k, Value::String(v.expose().to_string()));
    }
    let input = json!({
        "resource": resource,
        "noop": ctx.noop,
        "root": ctx.root.to_string_lossy(),
        "refresh": ctx.refresh,
        "params": Value::Object(params),
    });
    let bytes = Zeroizing::new(serde_json::to_vec(&input).map_err(|e| e.to_string())?);
    let text = a.string("timeout")?.unwrap_or_else(|| "300".into());
    let limit = Duration::from_secs(schema::parse_timeout(&text)?);
    let mut spec = Spec::new(vec![path.to_string_lossy().into_owned()], limit);
    spec.stdin = Some(SecretBytes::new(bytes.to_vec()));
    spec.stdout_apart = true;
    let ran = process::run(spec)?;
    let fail = |error: String| Fail { error, output: ran.output.clone(), guardrail: None };
    if ran.timed_out {
        return Err(fail(format!(
            "the executor {name} ran past {}s and was killed with its process group",
            limit.as_secs()
        )));
    }
    let answer: Map<String, Value> = match ran.stdout.as_deref().map(serde_json::from_str::<Value>) {
        Some(Ok(Value::Object(o))) => o,
        _ => {
            let how = ran.how();
            return Err(fail(format!(
                "the executor {name} {how} without a JSON object on stdout ({{\"changed\": …, \"message\": …}})"
            )));
        }
    };
    let message = answer.get("message").and_then(Value::as_str).unwrap_or_default().to_string();
    if let Some(error) = answer.get("error").and_then(Value::as_str).filter(|e| !e.is_empty()) {
        return Err(fail(format!("{name}: {error}")));
    }
    if !ran.success() {
        let how = ran.how();
        return Err(fail(format!("the executor {name} {how}: {message}")));
    }
    let changed = match answer.get("changed") {
        Some(Value::Bool(b)) => *b,
        _ => return Err(fail(format!("the executor {name} answered without \"changed\": true or false"))),
    };
    Ok(Done { changed, diff: if changed { message } else { String::new() }, output: ran.output })
}
