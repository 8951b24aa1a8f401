//! The service executor (systemd): `ensure: running|stopped|reloaded`, `enabled: true|false`
//! (`enable` is the older spelling), and a restart when notified or triggered — a reload for
//! `ensure: reloaded`, which is running and reloaded instead of restarted. The engine runs each resource once per run, so however
//! many resources notify a service it restarts once; a service this run just started is not
//! restarted again. `systemctl` is found through the agent's PATH.
//!
//! Under a root other than `/`, only the enabled state is managed (`systemctl --root=`); the
//! running state belongs to the booted system and is left alone, with a note in the output.
//! systemctl then writes under `<root>/etc/systemd/system`, which is confined first like any
//! bundle path (no symlink on the way).

use std::path::Path;
use std::time::Duration;

use super::attrs::Attrs;
use super::process::run_tool;
use super::{rootfs, Ctx, Done, Fail, Outcome};

const TIMEOUT: Duration = Duration::from_secs(300);

fn systemctl(root: Option<&str>, verb: &str, unit: &str) -> Result<super::process::Ran, String> {
    let mut args: Vec<&str> = root.into_iter().collect();
    args.extend([verb, unit]);
    run_tool("systemctl", &args, TIMEOUT)
}

/// A unit name as systemd spells them: no path separators, no option-like leading `-`.
pub(crate) fn check_unit_name(unit: &str) -> Result<(), String> {
    let ok = !unit.starts_with('-')
        && unit.len() <= 255
        && unit.bytes().all(|b| b.is_ascii_alphanumeric() || b":_.@\\-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("{unit:?} is not a systemd unit name (letters, digits and : _ . @ \\ - only)"))
    }
}

pub(crate) fn apply(a: &Attrs, ctx: &Ctx) -> Outcome {
    let unit = a.required("service")?;
    check_unit_name(&unit)?;
    let ensure = a.string("ensure")?;
    let want_running = match ensure.as_deref() {
        None => None,
        Some("running" | "reloaded") => Some(true),
        Some("stopped") => Some(false),
        Some(other) => {
            return Err(format!("ensure must be running, reloaded or stopped, not {other:?}").into())
        }
    };
    let refresh_verb = if ensure.as_deref() == Some("reloaded") { "reload" } else { "restart" };
    let enable = match (a.bool("enabled")?, a.bool("enable")?) {
        (Some(x), Some(y)) if x != y => {
            return Err("`enabled` and `enable` disagree; keep `enabled`".to_string().into())
        }
        (x, y) => x.or(y),
    };
    if ctx.root != Path::new("/") {
        rootfs::confine_all(ctx.root, "/etc/systemd/system")?;
    }
    let root_flag = (ctx.root != Path::new("/")).then(|| format!("--root={}", ctx.root.display()));
    let root = root_flag.as_deref();
    let mut actions: Vec<(&str, String)> = Vec::new(); // (verb, report line)

    if let Some(want) = enable {
        let enabled = systemctl(root, "is-enabled", &unit)?.success();
        if want != enabled {
            let verb = if want { "enable" } else { "disable" };
            ctx.guardrails.check_service(&unit, verb)?;
            actions.push((verb, format!("{verb} {unit}")));
        }
    }
    let mut note = String::new();
    if root.is_some() {
        if want_running.is_some() || ctx.refresh.is_some() {
            note = format!("the running state of {unit} is not managed under --root");
        }
    } else {
        let active = systemctl(None, "is-active", &unit)?.success();
        match want_running {
            Some(true) if !active => {
                ctx.guardrails.check_service(&unit, "start")?;
                actions.push(("start", format!("start {unit}")));
            }
            Some(false) if active => {
                ctx.guardrails.check_service(&unit, "stop")?;
                actions.push(("stop", format!("stop {unit}")));
            }
            _ => {
                if let Some(why) = &ctx.refresh {
                    // A stopped service stays stopped; a running one restarts once.
                    if active && want_running != Some(false) {
                        ctx.guardrails.check_service(&unit, refresh_verb)?;
                        actions.push((refresh_verb, format!("{refresh_verb} {unit} ({why})")));
                    }
                }
            }
        }
    }
    if actions.is_empty() {
        return Ok(Done { output: note, ..Done::unchanged() });
    }
    let diff = actions.iter().map(|(_, line)| line.as_str()).collect::<Vec<_>>().join("\n");
    if ctx.noop {
        return Ok(Done { output: note, ..Done::changed(diff) });
    }
    let mut output = note;
    for (verb, _) in &actions {
        let ran = systemctl(root, verb, &unit)?;
        output.push_str(&ran.output);
        if !ran.success() {
            let how = ran.how();
            return Err(Fail { error: format!("systemctl {verb} {unit} {how}"), output, guardrail: None });
        }
    }
    Ok(Done { changed: true, diff, output })
}
