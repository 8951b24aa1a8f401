//! The exec executor: `command` (no shell unless needed, see `cmdline`), `stdin` and
//! `secret_file` fed from resolved secrets, guards `creates`/`unless`/`onlyif`, `timeout`,
//! `cwd`. Secrets never go on a command line: markers in command, unless or onlyif are refused.
//!
//! Commands run on the host, not chrooted: with `--root`, `creates` and `cwd` resolve inside
//! the root but the command itself sees the host's filesystem.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::Duration;

use super::attrs::Attrs;
use super::process::{self, Spec};
use super::{cmdline, rootfs, Ctx, Done, Fail, Outcome};
use crate::crypto::SecretBytes;

const SECRET_FILE: &str = "{{secret_file}}";

/// A 0600 temp file holding a secret value, removed when dropped (success, failure, timeout
/// or panic alike).
struct SecretTemp(PathBuf);

impl SecretTemp {
    fn create(value: &SecretBytes) -> Result<SecretTemp, String> {
        let rand = crate::crypto::random_bytes(12).map_err(|e| e.to_string())?;
        let path = std::env::temp_dir().join(format!("vigo-secret-{}", crate::crypto::hex_encode(&rand)));
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("creating the secret_file temp file {}: {e}", path.display()))?;
        let guard = SecretTemp(path);
        f.write_all(value.expose())
            .and_then(|_| f.sync_all())
            .map_err(|e| format!("writing the secret_file temp file: {e}"))?;
        Ok(guard)
    }
}

impl Drop for SecretTemp {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn timeout(a: &Attrs) -> Result<Duration, String> {
    let text = a.string("timeout")?.unwrap_or_else(|| "300".into());
    crate::config::schema::parse_timeout(&text).map(Duration::from_secs)
}

/// Runs a guard command (`unless`/`onlyif`); true when it exits 0.
fn guard(command: &str, cwd: &Option<PathBuf>, limit: Duration) -> Result<bool, String> {
    let mut spec = Spec::new(cmdline::argv(command)?, limit);
    spec.cwd = cwd.clone();
    let ran = process::run(spec)?;
    if ran.timed_out {
        return Err(format!("the guard {command:?} timed out after {}s", limit.as_secs()));
    }
    Ok(ran.success())
}

pub(crate) fn apply(a: &Attrs, ctx: &Ctx) -> Outcome {
    let command = a.no_secret("command")?.filter(|c| !c.trim().is_empty());
    let command = command.ok_or_else(|| "exec resource needs the attribute \"command\"".to_string())?;
    let unless = a.no_secret("unless")?;
    let onlyif = a.no_secret("onlyif")?;
    let cwd_attr = a.string("cwd")?;
    for c in [Some(&command), unless.as_ref(), onlyif.as_ref()].into_iter().flatten() {
        ctx.guardrails.check_command(c, cwd_attr.as_deref())?;
    }
    let limit = timeout(a)?;
    let cwd = cwd_attr.map(|c| rootfs::confine_all(ctx.root, &c)).transpose()?;
    if let Some(creates) = a.string("creates")? {
        if fs::symlink_metadata(rootfs::confine(ctx.root, &creates)?).is_ok() {
            return Ok(Done::unchanged());
        }
    }
    if let Some(u) = &unless {
        if guard(u, &cwd, limit)? {
            return Ok(Done::unchanged());
        }
    }
    if let Some(o) = &onlyif {
        if !guard(o, &cwd, limit)? {
            return Ok(Done::unchanged());
        }
    }
    let why = ctx.refresh.as_ref().map(|r| format!(" ({r})")).unwrap_or_default();
    if ctx.noop {
        return Ok(Done::changed(format!("would run: {command}{why}")));
    }

    let secret_value = a.bytes("secret_file")?;
    if command.contains(SECRET_FILE) && secret_value.is_none() {
        return Err(format!("the command uses {SECRET_FILE} but the resource has no secret_file").into());
    }
    let temp = secret_value.as_ref().map(SecretTemp::create).transpose()?;
    let mut line = command.clone();
    if let Some(t) = &temp {
        line = line.replace(SECRET_FILE, &t.0.to_string_lossy());
    }
    let mut spec = Spec::new(cmdline::argv(&line)?, limit);
    spec.stdin = a.bytes("stdin")?;
    spec.cwd = cwd;
    let ran = process::run(spec);
    drop(temp);
    let ran = ran?;
    if ran.timed_out {
        let error = format!("{command}: timed out after {}s; the command was killed", limit.as_secs());
        return Err(Fail { error, output: ran.output, guardrail: None });
    }
    if !ran.success() {
        let how =
            ran.code.map_or("was killed by a signal".to_string(), |c| format!("exited with status {c}"));
        return Err(Fail { error: format!("{command}: {how}"), output: ran.output, guardrail: None });
    }
    Ok(Done { changed: true, diff: format!("ran: {command}{why}"), output: ran.output })
}
