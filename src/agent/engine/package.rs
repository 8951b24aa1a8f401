//! The package executor: dpkg/apt on Debian-family hosts, rpm/dnf where dpkg is absent.
//! It queries the package database first and acts only on a difference. `package` is a name,
//! or a path to a local `.deb`/`.rpm` (inside the root) whose own name and version are used.
//! With a root other than `/`, dpkg gets `--root=<root>` (its database is `<root>/var/lib/dpkg`),
//! rpm `--root`, dnf `--installroot` and apt `-o RootDir=<root>`. The tools follow paths inside
//! the root themselves, so the agent first confines what they start from: the package
//! database directory and a local package file may not be (or go through) a symlink.

use std::path::Path;
use std::time::Duration;

use super::attrs::Attrs;
use super::process::{find_tool, run_tool, Ran};
use super::{rootfs, Ctx, Done, Fail, Outcome};

const QUERY_TIMEOUT: Duration = Duration::from_secs(60);
const CHANGE_TIMEOUT: Duration = Duration::from_secs(1800);

#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Dpkg,
    Rpm,
}

fn backend() -> Result<Backend, String> {
    if find_tool("dpkg-query").is_some() {
        Ok(Backend::Dpkg)
    } else if find_tool("rpm").is_some() {
        Ok(Backend::Rpm)
    } else {
        Err("no package manager found on the agent's PATH (dpkg or rpm)".into())
    }
}

/// Where the backend keeps its database inside a root.
fn database_dir(b: Backend) -> &'static str {
    match b {
        Backend::Dpkg => "/var/lib/dpkg",
        Backend::Rpm => "/var/lib/rpm",
    }
}

fn root_arg(root: &Path, flag: &str) -> Option<String> {
    (root != Path::new("/")).then(|| format!("{flag}{}", root.display()))
}

fn tool(name: &str, args: Vec<String>, timeout: Duration) -> Result<Ran, String> {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run_tool(name, &refs, timeout)
}

/// The installed version, if the package is installed.
fn query(b: Backend, root: &Path, name: &str) -> Result<Option<String>, String> {
    let ran = match b {
        Backend::Dpkg => {
            let mut args: Vec<String> = Vec::new();
            if let Some(r) = root_arg(root, "") {
                args.push(format!("--admindir={r}/var/lib/dpkg"));
            }
            args.extend(["-W".into(), "-f".into(), "${Status} ${Version}".into(), name.into()]);
            tool("dpkg-query", args, QUERY_TIMEOUT)?
        }
        Backend::Rpm => {
            let mut args: Vec<String> =
                root_arg(root, "").map(|r| vec!["--root".into(), r]).unwrap_or_default();
            args.extend(["-q".into(), "--qf".into(), "%{VERSION}-%{RELEASE}".into(), name.into()]);
            tool("rpm", args, QUERY_TIMEOUT)?
        }
    };
    if !ran.success() {
        return Ok(None); // "no packages found" / "package X is not installed"
    }
    let out = ran.output.trim();
    Ok(match b {
        // "install ok installed 1.0": the third word is the state.
        Backend::Dpkg => {
            let words: Vec<&str> = out.split_whitespace().collect();
            (words.get(2) == Some(&"installed")).then(|| words.get(3).unwrap_or(&"").to_string())
        }
        Backend::Rpm => Some(out.to_string()),
    })
}

/// Name and version inside a local package file.
fn inspect(b: Backend, file: &Path) -> Result<(String, String), String> {
    let f = file.to_string_lossy().into_owned();
    let ran = match b {
        Backend::Dpkg => {
            tool("dpkg-deb", vec!["-f".into(), f, "Package".into(), "Version".into()], QUERY_TIMEOUT)?
        }
        Backend::Rpm => {
            let args = vec![
                "-qp".into(),
                "--qf".into(),
                "Package: %{NAME}\nVersion: %{VERSION}-%{RELEASE}\n".into(),
                f,
            ];
            tool("rpm", args, QUERY_TIMEOUT)?
        }
    };
    let field = |k: &str| {
        ran.output
            .lines()
            .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
            .filter(|v| !v.is_empty())
    };
    match (ran.success(), field("Package:"), field("Version:")) {
        (true, Some(n), Some(v)) => Ok((n, v)),
        _ => Err(format!("cannot read the package file {}: {}", file.display(), ran.output.trim())),
    }
}

fn change_args(
    b: Backend,
    root: &Path,
    install: bool,
    target: &str,
    local: bool,
) -> (&'static str, Vec<String>) {
    let mut args: Vec<String> = Vec::new();
    // dpkg itself for local files and for removals inside another root; apt/dnf otherwise.
    let direct = local || (root != Path::new("/") && !install);
    let tool = match (b, direct) {
        (Backend::Dpkg, true) => {
            args.extend(root_arg(root, "--root="));
            args.push(if install { "-i" } else { "-r" }.into());
            "dpkg"
        }
        (Backend::Dpkg, false) => {
            args.extend(root_arg(root, "RootDir=").map(|r| ["-o".to_string(), r]).into_iter().flatten());
            args.extend(["-y".into(), "-q".into(), if install { "install" } else { "remove" }.into()]);
            "apt-get"
        }
        (Backend::Rpm, true) => {
            args.extend(root_arg(root, "").map(|r| ["--root".to_string(), r]).into_iter().flatten());
            args.push(if install { "-U" } else { "-e" }.into());
            "rpm"
        }
        (Backend::Rpm, false) => {
            args.extend(root_arg(root, "--installroot="));
            args.extend(["-y".into(), if install { "install" } else { "remove" }.into()]);
            "dnf"
        }
    };
    args.push(target.into());
    (tool, args)
}

pub(crate) fn apply(a: &Attrs, ctx: &Ctx) -> Outcome {
    let spec = a.required("package")?;
    let present = a.ensure_present(&["present", "installed"], &["absent", "removed"])?;
    let b = backend()?;
    let local_file = spec.ends_with(".deb") || spec.ends_with(".rpm");
    if ctx.root != Path::new("/") {
        rootfs::confine_all(ctx.root, database_dir(b))?;
    }
    let (name, want_version, file) = if local_file {
        let file = rootfs::confine_all(ctx.root, &spec)?;
        let (n, v) = inspect(b, &file)?;
        (n, Some(v), Some(file))
    } else {
        (spec.clone(), a.string("version")?, None)
    };
    if !present {
        ctx.guardrails.check_package(&name, "remove")?;
    } else if a.string("version")?.is_some() {
        ctx.guardrails.check_package(&name, "pin the version of")?;
    }
    let installed = query(b, ctx.root, &name)?;
    let diff = match (&installed, present) {
        (None, false) => return Ok(Done::unchanged()),
        (Some(v), false) => format!("remove {name} {v}"),
        (Some(v), true) if want_version.as_ref().is_none_or(|w| w == v) => return Ok(Done::unchanged()),
        (Some(v), true) => format!("change {name} {v} -> {}", want_version.clone().unwrap_or_default()),
        (None, true) => {
            format!("install {name} {}", want_version.clone().unwrap_or_default()).trim_end().to_string()
        }
    };
    if ctx.noop {
        return Ok(Done::changed(diff));
    }
    let target = match (&file, &want_version) {
        (Some(f), _) if present => f.to_string_lossy().into_owned(),
        (None, Some(v)) if present && b == Backend::Dpkg => format!("{name}={v}"),
        (None, Some(v)) if present => format!("{name}-{v}"),
        _ => name.clone(),
    };
    let (program, args) = change_args(b, ctx.root, present, &target, file.is_some());
    let ran = tool(program, args, CHANGE_TIMEOUT)?;
    let now = query(b, ctx.root, &name)?;
    let converged = match &now {
        None => !present,
        Some(v) => present && want_version.as_ref().is_none_or(|w| w == v),
    };
    if !ran.success() || !converged {
        let how = ran.code.map_or("was killed".to_string(), |c| format!("exited with status {c}"));
        return Err(Fail {
            error: format!(
                "{program} {how}; {name} is not {}",
                if present { "installed as asked" } else { "removed" }
            ),
            output: ran.output,
            guardrail: None,
        });
    }
    Ok(Done { changed: true, diff, output: ran.output })
}
