//! The exec executor: `command` (no shell unless needed, see `cmdline`), `stdin` and
//! `secret_file` fed from resolved secrets, guards `creates`/`unless`/`onlyif`, `timeout`,
//! `cwd`, `user`, `environment` and `returns` (the exit codes that count as success). Secrets
//! never go on a command line or into the environment: markers in command, unless, onlyif or
//! environment are refused. The guards run as the command does: same user, environment, cwd.
//!
//! Commands run on the host, not chrooted: with `--root`, `creates` and `cwd` resolve inside
//! the root but the command itself sees the host's filesystem.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use super::attrs::Attrs;
use super::private_temp::PrivateTemp;
use serde_json::Value;

use super::process::{self, Spec};
use super::{cmdline, rootfs, Ctx, Done, Fail, Outcome};

const SECRET_FILE: &str = "{{secret_file}}";

fn timeout(a: &Attrs) -> Result<Duration, String> {
    let text = a.string("timeout")?.unwrap_or_else(|| "300".into());
    crate::config::schema::parse_timeout(&text).map(Duration::from_secs)
}

/// How every process of one exec runs (the command and its guards alike).
struct Runner {
    cwd: Option<PathBuf>,
    limit: Duration,
    env: Vec<(String, String)>,
    run_as: Option<(u32, u32)>,
}

impl Runner {
    fn spec(&self, line: &str) -> Result<Spec, String> {
        let mut spec = Spec::new(cmdline::argv(line)?, self.limit);
        spec.cwd = self.cwd.clone();
        spec.env = self.env.clone();
        spec.run_as = self.run_as;
        Ok(spec)
    }
}

/// An account to run as: its ids, and the variables that name it.
struct RunAs {
    ids: (u32, u32),
    env: Vec<(String, String)>,
}

/// `user`: the account's ids, and HOME/USER/LOGNAME for it, from the host's own /etc/passwd
/// (the command runs on the host, also under `--root`).
fn run_as(a: &Attrs) -> Result<Option<RunAs>, String> {
    let Some(user) = a.string("user")? else { return Ok(None) };
    let (uid, gid, home) = super::systypes::account(std::path::Path::new("/"), &user)?;
    let env = vec![("HOME".into(), home), ("USER".into(), user.clone()), ("LOGNAME".into(), user)];
    Ok(Some(RunAs { ids: (uid, gid), env }))
}

/// `environment`: `NAME=value` items, never a secret (an environment is readable in /proc by
/// the same user, and inherited by every child).
fn environment(a: &Attrs) -> Result<Vec<(String, String)>, String> {
    if let Some(Value::Array(items)) = a.raw_value("environment") {
        if items.iter().any(|i| i.as_str().is_some_and(crate::placeholder::contains_marker)) {
            return Err("`environment` refers to a secret; pass secrets with stdin or secret_file".into());
        }
    }
    let mut out = Vec::new();
    for item in a.list("environment")?.unwrap_or_default() {
        let (name, value) = crate::config::schema::env_item(&item)?;
        out.push((name.to_string(), value.to_string()));
    }
    Ok(out)
}

/// `returns`: the exit codes that count as success (default 0).
fn returns(a: &Attrs) -> Result<Vec<i32>, String> {
    match a.list("returns")? {
        None => Ok(vec![0]),
        Some(codes) => codes
            .iter()
            .map(|c| {
                c.trim()
                    .parse::<i32>()
                    .ok()
                    .filter(|n| (0..=255).contains(n))
                    .ok_or_else(|| format!("`returns` holds {c:?}, not an exit code from 0 to 255"))
            })
            .collect(),
    }
}

/// Runs a guard command (`unless`/`onlyif`); true when it exits 0.
fn guard(command: &str, runner: &Runner) -> Result<bool, String> {
    let limit = runner.limit;
    let ran = process::run(runner.spec(command)?)?;
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
    let mut env = environment(a)?;
    let user = run_as(a)?;
    if let Some(account) = &user {
        // The resource's own variables win over the account's defaults.
        let own: Vec<String> = env.iter().map(|(k, _)| k.clone()).collect();
        env.extend(account.env.iter().filter(|(k, _)| !own.contains(k)).cloned());
    }
    let accepted = returns(a)?;
    let runner = Runner { cwd, limit, env, run_as: user.map(|account| account.ids) };
    if let Some(creates) = a.string("creates")? {
        if fs::symlink_metadata(rootfs::confine(ctx.root, &creates)?).is_ok() {
            return Ok(Done::unchanged());
        }
    }
    if let Some(u) = &unless {
        if guard(u, &runner)? {
            return Ok(Done::unchanged());
        }
    }
    if let Some(o) = &onlyif {
        if !guard(o, &runner)? {
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
    let temp = secret_value
        .as_ref()
        .map(|v| PrivateTemp::create("vigo-secret", v.expose(), "the secret_file temp file"))
        .transpose()?;
    let mut line = command.clone();
    if let Some(t) = &temp {
        line = line.replace(SECRET_FILE, &t.path().to_string_lossy());
    }
    let mut spec = runner.spec(&line)?;
    spec.stdin = a.bytes("stdin")?;
    let ran = process::run(spec);
    drop(temp);
    let ran = ran?;
    if ran.timed_out {
        let error = format!("{command}: timed out after {}s; the command was killed", limit.as_secs());
        return Err(Fail { error, output: ran.output, guardrail: None });
    }
    if !ran.code.is_some_and(|c| accepted.contains(&c)) {
        let how = ran.how();
        return Err(Fail { error: format!("{command}: {how}"), output: ran.output, guardrail: None });
    }
    Ok(Done { changed: true, diff: format!("ran: {command}{why}"), output: ran.output })
}
