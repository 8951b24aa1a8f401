//! Other configuration-management tools on the same files, side by side: CFEngine (`cf-agent`)
//! and Puppet (`puppet apply`), when installed. Each gets the benchmark's N files (same
//! content, same modes) as its own policy, written for a root of its own, and is timed like
//! vigo: create runs into an empty root, then noop runs on the converged one.
//!
//! Ansible and Salt are detected only: Ansible runs one task per file at about a second each,
//! and Salt is not packaged for this distribution.

use std::ffi::OsString;
use std::path::Path;

use super::FileSpec;

/// Writes the policy for `files` under `root` into `dir`; returns the command to run.
type PolicyWriter = fn(dir: &Path, root: &Path, files: &[FileSpec]) -> Result<Vec<OsString>, String>;

pub struct Peer {
    /// The program looked up on PATH, and the name in the summary.
    pub tool: &'static str,
    version_args: &'static [&'static str],
    policy: PolicyWriter,
}

pub static RUNNABLE: [Peer; 2] = [
    Peer { tool: "cf-agent", version_args: &["--version"], policy: cfengine },
    Peer { tool: "puppet", version_args: &["--version"], policy: puppet },
];

/// Detected and reported, never run (see the module comment).
pub static DETECTED_ONLY: [&str; 2] = ["ansible-playbook", "salt-call"];

pub fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
}

impl Peer {
    pub fn version(&self) -> String {
        std::process::Command::new(self.tool)
            .args(self.version_args)
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().next().map(|l| l.trim().to_string()))
            .unwrap_or_default()
    }

    pub fn policy(&self, dir: &Path, root: &Path, files: &[FileSpec]) -> Result<Vec<OsString>, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        (self.policy)(dir, root, files)
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Quoted for the policy languages below: both take `\\` and `\"` inside double quotes, and
/// both would expand a `$`, which the benchmark's contents never hold.
fn quoted(text: &str) -> String {
    assert!(!text.contains('$'), "benchmark contents hold no variables");
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn cfengine(dir: &Path, root: &Path, files: &[FileSpec]) -> Result<Vec<OsString>, String> {
    let mut p = String::from(
        "body common control\n{\n  bundlesequence => { \"bench\" };\n}\n\n\
         body perms m(mode)\n{\n  mode => \"$(mode)\";\n  rxdirs => \"false\";\n}\n\n\
         bundle agent bench\n{\n  files:\n",
    );
    p += &format!("    \"{}/data/.\" create => \"true\", perms => m(\"0755\");\n", root.display());
    for f in files {
        // CFEngine strings may span lines; `content` makes the file exactly this text.
        p += &format!(
            "    \"{}/{}\" create => \"true\", perms => m(\"{}\"), content => {};\n",
            root.display(),
            f.path,
            f.mode,
            quoted(&f.content)
        );
    }
    p += "}\n";
    let policy = dir.join("policy.cf");
    write(&policy, &p)?;
    // cf-agent refuses policy files others can write.
    std::fs::set_permissions(&policy, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|e| e.to_string())?;
    Ok(vec!["cf-agent".into(), "--no-lock".into(), "--file".into(), policy.into()])
}

fn puppet(dir: &Path, root: &Path, files: &[FileSpec]) -> Result<Vec<OsString>, String> {
    let mut m = format!("file {{ '{}/data': ensure => directory, mode => '0755' }}\n", root.display());
    for f in files {
        let content = quoted(&f.content).replace('\n', "\\n");
        m += &format!(
            "file {{ '{}/{}': ensure => file, mode => '{}', content => {content} }}\n",
            root.display(),
            f.path,
            f.mode
        );
    }
    let manifest = dir.join("site.pp");
    write(&manifest, &m)?;
    // Its own state directories, so nothing of a real Puppet installation is read or touched.
    let mut cmd: Vec<OsString> = vec!["puppet".into(), "apply".into()];
    for (flag, sub) in [
        ("--confdir", "conf"),
        ("--vardir", "var"),
        ("--codedir", "code"),
        ("--logdir", "log"),
        ("--rundir", "run"),
    ] {
        cmd.push(flag.into());
        cmd.push(dir.join(sub).into());
    }
    cmd.extend(["--color=false".into(), "--log_level=err".into(), manifest.into()]);
    Ok(cmd)
}
