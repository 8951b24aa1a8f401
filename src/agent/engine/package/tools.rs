//! The package tools, per backend: what is installed (and held), what the repositories offer,
//! what a package file holds, and the command lines that change it. With a root other than
//! `/`, dpkg gets `--root=<root>` (its database is `<root>/var/lib/dpkg`), rpm `--root`, dnf
//! `--installroot` and apt `-o RootDir=<root>`.

use std::path::Path;
use std::time::Duration;

use super::super::process::{self, find_tool, run_tool, Ran, Spec};
use crate::crypto::SecretBytes;

const QUERY_TIMEOUT: Duration = Duration::from_secs(60);
pub(super) const CHANGE_TIMEOUT: Duration = Duration::from_secs(1800);

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Backend {
    Dpkg,
    Rpm,
}

pub(super) fn backend() -> Result<Backend, String> {
    if find_tool("dpkg-query").is_some() {
        Ok(Backend::Dpkg)
    } else if find_tool("rpm").is_some() {
        Ok(Backend::Rpm)
    } else {
        Err("no package manager found on the agent's PATH (dpkg or rpm)".into())
    }
}

/// Where the backend keeps its database inside a root.
pub(super) fn database_dir(b: Backend) -> &'static str {
    match b {
        Backend::Dpkg => "/var/lib/dpkg",
        Backend::Rpm => "/var/lib/rpm",
    }
}

fn root_arg(root: &Path, flag: &str) -> Option<String> {
    (root != Path::new("/")).then(|| format!("{flag}{}", root.display()))
}

pub(super) fn tool(name: &str, args: Vec<String>, timeout: Duration) -> Result<Ran, String> {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run_tool(name, &refs, timeout)
}

/// What the database says of one package.
pub(super) struct Installed {
    pub version: String,
    /// dpkg's selection is `hold` (apt leaves the package as it is).
    pub held: bool,
}

/// The installed version, if the package is installed.
pub(super) fn query(b: Backend, root: &Path, name: &str) -> Result<Option<Installed>, String> {
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
        // "install ok installed 1.0": the selection, then the state, then the version.
        Backend::Dpkg => {
            let words: Vec<&str> = out.split_whitespace().collect();
            (words.get(2) == Some(&"installed")).then(|| Installed {
                version: words.get(3).unwrap_or(&"").to_string(),
                held: words.first() == Some(&"hold"),
            })
        }
        Backend::Rpm => Some(Installed { version: out.to_string(), held: rpm_locked(root, name)? }),
    })
}

/// dnf's versionlock list names the package (the plugin must be installed to hold one).
fn rpm_locked(root: &Path, name: &str) -> Result<bool, String> {
    if find_tool("dnf").is_none() {
        return Ok(false);
    }
    let mut args: Vec<String> = root_arg(root, "--installroot=").into_iter().collect();
    args.extend(["-q".into(), "versionlock".into(), "list".into()]);
    let ran = tool("dnf", args, QUERY_TIMEOUT)?;
    Ok(ran.success()
        && ran
            .output
            .lines()
            .any(|l| l.split(':').next().and_then(|s| s.rsplitn(3, '-').last()) == Some(name)))
}

/// The version the repositories would install now (`ensure: latest`).
pub(super) fn candidate(b: Backend, root: &Path, name: &str) -> Result<String, String> {
    let ran = match b {
        Backend::Dpkg => {
            let mut args: Vec<String> =
                root_arg(root, "RootDir=").map(|r| vec!["-o".to_string(), r]).unwrap_or_default();
            args.extend(["policy".into(), name.into()]);
            tool("apt-cache", args, QUERY_TIMEOUT)?
        }
        Backend::Rpm => {
            let mut args: Vec<String> = root_arg(root, "--installroot=").into_iter().collect();
            args.extend(["-q".into(), "repoquery".into(), "--latest-limit=1".into()]);
            args.extend(["--qf".into(), "%{version}-%{release}".into(), name.into()]);
            tool("dnf", args, QUERY_TIMEOUT)?
        }
    };
    let found = match b {
        Backend::Dpkg => ran.output.lines().find_map(|l| l.trim().strip_prefix("Candidate:")).map(str::trim),
        Backend::Rpm => ran.output.lines().map(str::trim).find(|l| !l.is_empty()),
    };
    match found {
        Some(v) if ran.success() && !v.is_empty() && v != "(none)" => Ok(v.to_string()),
        _ => Err(format!(
            "no repository offers {name} (is a repository for it configured, and its index fresh?)"
        )),
    }
}

/// Holds or releases a package: dpkg's selection, or dnf's versionlock.
pub(super) fn set_hold(b: Backend, root: &Path, name: &str, hold: bool) -> Result<Ran, String> {
    match b {
        Backend::Dpkg => {
            let path = find_tool("dpkg").ok_or("dpkg was not found on the agent's PATH")?;
            let mut argv = vec![path.to_string_lossy().into_owned()];
            argv.extend(root_arg(root, "").map(|r| format!("--admindir={r}/var/lib/dpkg")));
            argv.push("--set-selections".into());
            let mut spec = Spec::new(argv, QUERY_TIMEOUT);
            let selection = format!("{name} {}\n", if hold { "hold" } else { "install" });
            spec.stdin = Some(SecretBytes::new(selection.into_bytes()));
            process::run(spec)
        }
        Backend::Rpm => {
            let mut args: Vec<String> = root_arg(root, "--installroot=").into_iter().collect();
            args.extend([
                "-y".into(),
                "versionlock".into(),
                if hold { "add" } else { "delete" }.into(),
                name.into(),
            ]);
            tool("dnf", args, QUERY_TIMEOUT)
        }
    }
}

/// Name and version inside a local package file.
pub(super) fn inspect(b: Backend, file: &Path) -> Result<(String, String), String> {
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

/// The command that installs (or removes) `targets` in one transaction.
pub(super) fn change_args(
    b: Backend,
    root: &Path,
    install: bool,
    targets: &[String],
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
            // Named here, a held package is changed as asked (its hold is set again after),
            // and a pinned version may be older than the installed one.
            args.extend(["--allow-change-held-packages".into(), "--allow-downgrades".into()]);
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
    args.extend(targets.iter().cloned());
    (tool, args)
}
