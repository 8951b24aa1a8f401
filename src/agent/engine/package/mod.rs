//! The package executor: dpkg/apt on Debian-family hosts, rpm/dnf where dpkg is absent.
//! It queries the package database first and acts only on a difference. `package` is a name,
//! or a path to a local `.deb`/`.rpm` (inside the root) whose own name and version are used;
//! `packages` names several, changed in one transaction. `ensure` is present, latest (the
//! version the repositories offer now) or absent; `version` pins one package; `hold` keeps
//! apt (or dnf's versionlock) from changing it. The tools follow paths inside the root
//! themselves, so the agent first confines what they start from: the package database
//! directory and a local package file may not be (or go through) a symlink.

mod tools;

use std::path::{Path, PathBuf};

use super::attrs::Attrs;
use super::{rootfs, Ctx, Done, Fail, Outcome};
use tools::{Backend, Installed};

#[derive(Clone, Copy, PartialEq)]
enum Want {
    Present,
    Latest,
    Absent,
}

/// One package to install: its name, the target the tool gets, and the version it must end at.
struct Install {
    name: String,
    target: String,
    version: Option<String>,
    file: Option<PathBuf>,
}

/// What one resource will do, and the report lines saying it.
#[derive(Default)]
struct Plan {
    lines: Vec<String>,
    installs: Vec<Install>,
    removals: Vec<String>,
    holds: Vec<(String, bool)>,
}

/// What the resource asks for.
struct Wanted {
    specs: Vec<String>,
    want: Want,
    version: Option<String>,
    hold: Option<bool>,
}

fn wanted(a: &Attrs) -> Result<Wanted, String> {
    let specs = match (a.string("package")?, a.list("packages")?) {
        (Some(_), Some(_)) => return Err("a package resource takes `package` or `packages`, not both".into()),
        (Some(p), None) => vec![p],
        (None, Some(list)) if !list.is_empty() => list,
        _ => return Err("package resource needs the attribute \"package\" (or \"packages\")".into()),
    };
    let want = match a.string("ensure")?.as_deref() {
        None | Some("present" | "installed") => Want::Present,
        Some("latest") => Want::Latest,
        Some("absent" | "removed") => Want::Absent,
        Some(other) => return Err(format!("ensure must be present, latest or absent, not {other:?}")),
    };
    let version = a.string("version")?;
    if version.is_some() && (specs.len() > 1 || want != Want::Present) {
        return Err("`version` pins one package with ensure: present".into());
    }
    let hold = a.bool("hold")?;
    if hold == Some(true) && want == Want::Absent {
        return Err("a removed package cannot be held".into());
    }
    Ok(Wanted { specs, want, version, hold })
}

fn plan_one(
    b: Backend,
    spec: &str,
    want: Want,
    version: &Option<String>,
    hold: Option<bool>,
    ctx: &Ctx,
    plan: &mut Plan,
) -> Result<(), Fail> {
    let local_file = spec.ends_with(".deb") || spec.ends_with(".rpm");
    let (name, mut want_version, file) = if local_file {
        let file = rootfs::confine_all(ctx.root, spec)?;
        let (n, v) = tools::inspect(b, &file)?;
        (n, Some(v), Some(file))
    } else {
        (spec.to_string(), version.clone(), None)
    };
    match want {
        Want::Absent => ctx.guardrails.check_package(&name, "remove")?,
        _ if version.is_some() || hold.is_some() => {
            ctx.guardrails.check_package(&name, "pin the version of")?
        }
        _ => {}
    }
    let installed: Option<Installed> = tools::query(b, ctx.root, &name)?;
    let current = installed.as_ref().map(|i| i.version.clone());
    if want == Want::Latest && file.is_none() {
        want_version = Some(tools::candidate(b, ctx.root, &name)?);
    }
    let install = match (&current, want) {
        (None, Want::Absent) => false,
        (Some(v), Want::Absent) => {
            plan.lines.push(format!("remove {name} {v}"));
            plan.removals.push(name.clone());
            false
        }
        (Some(v), _) if want_version.as_ref().is_none_or(|w| w == v) => false,
        (Some(v), _) => {
            plan.lines.push(format!("change {name} {v} -> {}", want_version.clone().unwrap_or_default()));
            true
        }
        (None, _) => {
            let line = format!("install {name} {}", want_version.clone().unwrap_or_default());
            plan.lines.push(line.trim_end().to_string());
            true
        }
    };
    if install {
        let target = match (&file, &want_version) {
            (Some(f), _) => f.to_string_lossy().into_owned(),
            (None, Some(v)) if b == Backend::Dpkg => format!("{name}={v}"),
            (None, Some(v)) => format!("{name}-{v}"),
            (None, None) => name.clone(),
        };
        plan.installs.push(Install { name: name.clone(), target, version: want_version, file });
    }
    if let Some(h) = hold {
        if installed.as_ref().is_none_or(|i| i.held != h) && (h || installed.is_some()) {
            plan.lines.push(format!("{} {name}", if h { "hold" } else { "unhold" }));
            plan.holds.push((name, h));
        }
    }
    Ok(())
}

/// Whether packages on this host are dpkg's (else rpm's): where a repository is written.
pub(crate) fn debian_family() -> Result<bool, String> {
    Ok(tools::backend()? == Backend::Dpkg)
}

pub(crate) fn apply(a: &Attrs, ctx: &Ctx) -> Outcome {
    let Wanted { specs, want, version, hold } = wanted(a)?;
    let b = tools::backend()?;
    if ctx.root != Path::new("/") {
        rootfs::confine_all(ctx.root, tools::database_dir(b))?;
    }
    let mut plan = Plan::default();
    for spec in &specs {
        plan_one(b, spec, want, &version, hold, ctx, &mut plan)?;
    }
    if plan.lines.is_empty() {
        return Ok(Done::unchanged());
    }
    let diff = plan.lines.join("\n");
    if ctx.noop {
        return Ok(Done::changed(diff));
    }
    let mut output = String::new();
    if !plan.removals.is_empty() {
        change(b, ctx.root, false, &plan.removals, false, &mut output)?;
    }
    let (local, named): (Vec<&Install>, Vec<&Install>) = plan.installs.iter().partition(|i| i.file.is_some());
    for (group, is_local) in [(local, true), (named, false)] {
        if !group.is_empty() {
            let targets: Vec<String> = group.iter().map(|i| i.target.clone()).collect();
            change(b, ctx.root, true, &targets, is_local, &mut output)?;
        }
    }
    for (name, h) in &plan.holds {
        let ran = tools::set_hold(b, ctx.root, name, *h)?;
        output.push_str(&ran.output);
        if !ran.success() {
            return Err(Fail {
                error: format!("could not {} {name}", if *h { "hold" } else { "unhold" }),
                output,
                guardrail: None,
            });
        }
    }
    verify(b, ctx.root, &plan, want, output.clone())?;
    Ok(Done { changed: true, diff, output })
}

/// One install or removal transaction; a failure names the tool and keeps its output.
fn change(
    b: Backend,
    root: &Path,
    install: bool,
    targets: &[String],
    local: bool,
    output: &mut String,
) -> Result<(), Fail> {
    let (program, args) = tools::change_args(b, root, install, targets, local);
    let ran = tools::tool(program, args, tools::CHANGE_TIMEOUT)?;
    output.push_str(&ran.output);
    if !ran.success() {
        let how = ran.how();
        let what = if install { "installing" } else { "removing" };
        return Err(Fail {
            error: format!("{program} {how} {what} {}", targets.join(" ")),
            output: output.clone(),
            guardrail: None,
        });
    }
    Ok(())
}

/// Reads the database again: every package must be where the plan put it.
fn verify(b: Backend, root: &Path, plan: &Plan, want: Want, output: String) -> Result<(), Fail> {
    let fail = |error: String| Fail { error, output: output.clone(), guardrail: None };
    for name in &plan.removals {
        if tools::query(b, root, name)?.is_some() {
            return Err(fail(format!("{name} is not removed")));
        }
    }
    for i in &plan.installs {
        match tools::query(b, root, &i.name)? {
            Some(now) if i.version.as_ref().is_none_or(|v| *v == now.version) => {}
            _ if want == Want::Absent => {}
            _ => return Err(fail(format!("{} is not installed as asked", i.name))),
        }
    }
    for (name, h) in &plan.holds {
        if tools::query(b, root, name)?.is_some_and(|i| i.held != *h) {
            return Err(fail(format!("{name} is not {}", if *h { "held" } else { "released" })));
        }
    }
    Ok(())
}
