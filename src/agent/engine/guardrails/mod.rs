//! Agent-local guardrails (`<agent base>/guardrails.yaml`, never taken from the server): what a
//! bundle may not touch however it was written. A blocked resource fails with the rule's name.
//!
//! ```yaml
//! protected_paths: [/srv/critical]      # added to the defaults; each protects its whole subtree
//! protected_services: [postgresql]      # may be started/enabled/restarted, never stopped/disabled
//! protected_packages: [postgresql-16]   # may be installed, never removed or pinned to a version
//! allow_rules: [dangerous-command:mkfs] # switch off named rules (deliberately, per host)
//! ```
//!
//! Paths are protected twice: by spelling (the bundle path, normalised) and by identity
//! (device and inode of the path after confinement, see `identity`), so that no alias — a
//! symlinked directory, a hard link, `..`, `//`, a bind mount — reaches the agent's own state.
//! The file itself must be a regular file only its owner (the agent's user or root) can write.

mod identity;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use super::danger;
use identity::{ProtectedId, ResolvedDirs};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GuardrailsFile {
    #[serde(default)]
    protected_paths: Vec<String>,
    #[serde(default)]
    protected_services: Vec<String>,
    #[serde(default)]
    protected_packages: Vec<String>,
    #[serde(default)]
    allow_rules: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Guardrails {
    /// Protected paths for file, directory and symlink resources; `/` protects only itself,
    /// every other entry its whole subtree.
    paths: Vec<PathBuf>,
    /// Protected paths for what exec commands write: the agent's own state and the paths the
    /// host added (not `/proc` or `/sys`, which tuning commands write all the time).
    exec_paths: Vec<PathBuf>,
    /// Every protected path that exists, by identity.
    ids: Vec<ProtectedId>,
    /// Directories already resolved during this run (see `ResolvedDirs`).
    resolved: ResolvedDirs,
    services: BTreeSet<String>,
    packages: BTreeSet<String>,
    allow: BTreeSet<String>,
}

/// Why a resource was refused: `rule` goes into the report's `guardrail` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub rule: String,
    pub message: String,
}

fn normalize(path: &str) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in Path::new(path).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn service_name(name: &str) -> &str {
    name.strip_suffix(".service").unwrap_or(name)
}

/// Paths no bundle may manage (`/` itself only; the others with everything under them), besides
/// the agent's own state directory and binary. Shown on the console's `/security` page.
pub const SYSTEM_PATHS: &[&str] = &["/", "/boot", "/proc", "/sys", "/dev"];
/// Services no bundle may stop or disable.
pub const DEFAULT_SERVICES: &[&str] = &["vigo-agent", "sshd", "ssh"];
/// Packages no bundle may remove.
pub const DEFAULT_PACKAGES: &[&str] = &["vigo", "openssh-server", "libc6", "glibc"];

impl Guardrails {
    /// The built-in rules: the filesystem roots an agent must never manage, its own base dir
    /// (and each file in it, so a hard link elsewhere is caught) and binary, the services that
    /// keep the host reachable, and the packages it runs on.
    pub fn defaults(agent_base: &Path) -> Guardrails {
        let base = normalize(&agent_base.to_string_lossy());
        let mut g = Guardrails {
            paths: SYSTEM_PATHS.iter().map(PathBuf::from).collect(),
            exec_paths: vec![base.clone()],
            ids: Vec::new(),
            resolved: ResolvedDirs::default(),
            services: DEFAULT_SERVICES.iter().map(|s| s.to_string()).collect(),
            packages: DEFAULT_PACKAGES.iter().map(|s| s.to_string()).collect(),
            allow: BTreeSet::new(),
        };
        g.paths.push(base.clone());
        if let Ok(exe) = std::env::current_exe() {
            g.paths.push(exe.clone());
            g.exec_paths.push(exe);
        }
        for p in g.paths.clone() {
            g.ids.extend(ProtectedId::of(&p, p != Path::new("/") && p.is_dir()));
        }
        for entry in std::fs::read_dir(agent_base).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                g.ids.extend(ProtectedId::of(&entry.path(), false));
            }
        }
        g
    }

    /// Reads `guardrails.yaml`; a missing file means the defaults. Entries add to the defaults.
    pub fn load(path: &Path, agent_base: &Path) -> Result<Guardrails, String> {
        let mut g = Guardrails::defaults(agent_base);
        let Some(text) = read_own_file(path)? else { return Ok(g) };
        let file: GuardrailsFile = if text.trim().is_empty() {
            GuardrailsFile::default()
        } else {
            serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
        };
        for p in file.protected_paths {
            if !p.starts_with('/') {
                return Err(format!("{}: protected path {p:?} must be absolute", path.display()));
            }
            let p = normalize(&p);
            g.ids.extend(ProtectedId::of(&p, p != Path::new("/") && p.is_dir()));
            g.exec_paths.push(p.clone());
            g.paths.push(p);
        }
        g.services.extend(file.protected_services.iter().map(|s| service_name(s).to_string()));
        g.packages.extend(file.protected_packages);
        g.allow.extend(file.allow_rules);
        Ok(g)
    }

    fn block(&self, rule: String, message: String) -> Result<(), Blocked> {
        if self.allows(&rule) {
            return Ok(());
        }
        Err(Blocked { message: format!("blocked by guardrail {rule}: {message}"), rule })
    }

    fn allows(&self, rule: &str) -> bool {
        let category = rule.split(':').next().unwrap_or_default();
        self.allow.contains(rule) || self.allow.contains(category)
    }

    /// A file, directory or symlink resource may not manage a protected path (by spelling).
    pub(crate) fn check_path(&self, path: &str) -> Result<(), Blocked> {
        let p = normalize(path);
        for prot in &self.paths {
            let hit = if prot == Path::new("/") { p == *prot } else { p.starts_with(prot) };
            if hit {
                return self.block(
                    format!("protected-path:{}", prot.display()),
                    format!("{} is protected on this host", p.display()),
                );
            }
        }
        Ok(())
    }

    /// The same for the path a resource resolved to on the host, by identity: reached through
    /// any alias, a protected file or directory is still refused.
    pub fn check_host_path(&self, host: &Path) -> Result<(), Blocked> {
        match identity::find(&self.ids, host, &self.resolved) {
            Some(id) => self.block(
                format!("protected-path:{}", id.path.display()),
                format!(
                    "{} is (or is inside) {}, which is protected on this host",
                    host.display(),
                    id.path.display()
                ),
            ),
            None => Ok(()),
        }
    }

    /// Forgets how directories resolved: called whenever a resource may have changed the
    /// filesystem (written, renamed, mounted, run a command), after which an earlier answer
    /// could be wrong.
    pub(crate) fn forget_resolved_dirs(&self) {
        self.resolved.clear();
    }

    fn service_rule_for(&self, name: &str, action: &str) -> Option<String> {
        let name = service_name(name);
        // The agent restarting itself would kill the run that asked for it.
        let refused = matches!(action, "stop" | "disable") || (action == "restart" && name == "vigo-agent");
        (refused && self.services.contains(name)).then(|| format!("protected-service:{name}"))
    }

    /// `action` is one of start, stop, enable, disable, restart.
    pub(crate) fn check_service(&self, name: &str, action: &str) -> Result<(), Blocked> {
        match self.service_rule_for(name, action) {
            Some(rule) => {
                self.block(rule, format!("a bundle may not {action} the service {}", service_name(name)))
            }
            None => Ok(()),
        }
    }

    /// `action` says what the bundle wanted: "remove", "pin the version of".
    pub(crate) fn check_package(&self, name: &str, action: &str) -> Result<(), Blocked> {
        if self.packages.contains(name) {
            return self.block(
                format!("protected-package:{name}"),
                format!("a bundle may not {action} the package {name}"),
            );
        }
        Ok(())
    }

    /// An exec command (run in the bundle path `cwd`, or the agent's own directory): the first
    /// rule it breaks that this host does not allow.
    pub(crate) fn check_command(&self, command: &str, cwd: Option<&str>) -> Result<(), Blocked> {
        match danger::scan(command, cwd, self).into_iter().find(|h| !self.allows(&h.rule)) {
            Some(hit) => self.block(hit.rule, hit.why),
            None => Ok(()),
        }
    }
}

impl danger::Protected for Guardrails {
    fn service_rule(&self, name: &str, action: &str) -> Option<String> {
        self.service_rule_for(name, action)
    }

    fn package_rule(&self, name: &str) -> Option<String> {
        self.packages.contains(name).then(|| format!("protected-package:{name}"))
    }

    fn kill_rule(&self, pattern: &str) -> Option<String> {
        // pkill matches a part of the name: `pkill ssh` kills sshd.
        let pattern = pattern.trim_start_matches('^').trim_end_matches('$');
        self.services
            .iter()
            .find(|s| **s == pattern || (pattern.len() >= 3 && s.contains(pattern)))
            .map(|s| format!("protected-service:{s}"))
    }

    fn path_rule(&self, path: &str) -> Option<String> {
        let p = normalize(path);
        if let Some(prot) = self.exec_paths.iter().find(|prot| p.starts_with(prot)) {
            return Some(format!("protected-path:{}", prot.display()));
        }
        let id = identity::find(&self.ids, &p, &self.resolved)?;
        let system = SYSTEM_PATHS.iter().any(|s| id.path == Path::new(s));
        (!system).then(|| format!("protected-path:{}", id.path.display()))
    }
}

/// The text of `path`, which must be a regular file that only its owner — the agent's user or
/// root — can change: whoever can write it can switch every guardrail off.
fn read_own_file(path: &Path) -> Result<Option<String>, String> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    let owner_ok = meta.uid() == 0 || meta.uid() == nix::unistd::geteuid().as_raw();
    if !meta.is_file() || meta.mode() & 0o022 != 0 || !owner_ok {
        return Err(format!(
            "{} must be a regular file (not a symlink) owned by the agent's user or root and writable only by its owner; fix it with `chmod go-w` or replace it",
            path.display()
        ));
    }
    let bytes = super::rootfs::read_nofollow(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    String::from_utf8(bytes).map(Some).map_err(|_| format!("{} is not UTF-8 text", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vigo-guard-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn default_paths_services_and_packages_are_protected() {
        let g = Guardrails::defaults(Path::new("/var/lib/vigo"));
        for p in [
            "/",
            "/boot/grub/grub.cfg",
            "/proc/sys/x",
            "/sys/x",
            "/dev/sda",
            "/var/lib/vigo/agent.db",
            "/etc/../boot",
        ] {
            assert!(g.check_path(p).is_err(), "{p}");
        }
        let exe = std::env::current_exe().unwrap();
        assert_eq!(
            g.check_path(&exe.to_string_lossy()).unwrap_err().rule,
            format!("protected-path:{}", exe.display())
        );
        for p in ["/etc/motd", "/tmp/x", "/var/lib/vigorous", "/bootstrap"] {
            assert!(g.check_path(p).is_ok(), "{p}");
        }
        assert_eq!(g.check_service("sshd.service", "stop").unwrap_err().rule, "protected-service:sshd");
        assert!(g.check_service("ssh", "disable").is_err());
        assert!(g.check_service("vigo-agent", "restart").is_err());
        assert!(g.check_service("sshd", "restart").is_ok());
        assert!(g.check_service("nginx", "stop").is_ok());
        assert_eq!(g.check_package("libc6", "remove").unwrap_err().rule, "protected-package:libc6");
        assert!(g.check_package("nginx", "remove").is_ok());
        let b = g.check_command("rm -rf /", None).unwrap_err();
        assert_eq!(b.rule, "dangerous-command:rm-rf-root");
        assert!(b.message.contains("dangerous-command:rm-rf-root"));
    }

    #[test]
    fn yaml_adds_rules_rejects_unknown_keys_and_missing_file_is_defaults() {
        let d = tmp("yaml");
        let f = d.join("guardrails.yaml");
        assert!(Guardrails::load(&f, &d).unwrap().check_path("/boot").is_err());
        std::fs::write(&f, "protected_paths: [/srv/db]\nprotected_services: [postgresql]\nallow_rules: [dangerous-command:mkfs]\n").unwrap();
        let g = Guardrails::load(&f, &d).unwrap();
        assert!(g.check_path("/srv/db/data").is_err());
        assert!(g.check_service("postgresql", "stop").is_err());
        assert!(g.check_command("mkfs.ext4 /dev/sdb", None).is_ok(), "allow_rules switches the rule off");
        assert!(g.check_command("rm -rf /", None).is_err());
        std::fs::write(&f, "protected_path: [/x]\n").unwrap();
        assert!(Guardrails::load(&f, &d).unwrap_err().contains("unknown field"));
        std::fs::write(&f, "protected_paths: [relative]\n").unwrap();
        assert!(Guardrails::load(&f, &d).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn allowing_one_rule_never_hides_another() {
        let d = tmp("allow");
        let f = d.join("guardrails.yaml");
        std::fs::write(&f, "allow_rules: [dangerous-command:mkfs]\n").unwrap();
        let g = Guardrails::load(&f, &d).unwrap();
        let b = g.check_command("mkfs.ext4 /dev/sdb; rm -rf /", None).unwrap_err();
        assert_eq!(b.rule, "dangerous-command:rm-rf-root");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_guardrails_file_others_can_write_or_a_symlink_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let d = tmp("loose");
        let f = d.join("guardrails.yaml");
        std::fs::write(d.join("elsewhere.yaml"), "allow_rules: [dangerous-command]\n").unwrap();
        std::os::unix::fs::symlink(d.join("elsewhere.yaml"), &f).unwrap();
        assert!(Guardrails::load(&f, &d).unwrap_err().contains("not a symlink"));
        std::fs::remove_file(&f).unwrap();
        std::fs::write(&f, "allow_rules: [dangerous-command]\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(Guardrails::load(&f, &d).unwrap_err().contains("chmod go-w"));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Guardrails::load(&f, &d).is_ok());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
