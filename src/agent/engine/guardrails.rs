//! Agent-local guardrails (`<agent base>/guardrails.yaml`, never taken from the server): what a
//! bundle may not touch however it was written. A blocked resource fails with the rule's name.
//!
//! ```yaml
//! protected_paths: [/srv/critical]      # added to the defaults; each protects its whole subtree
//! protected_services: [postgresql]      # may be started/enabled/restarted, never stopped/disabled
//! protected_packages: [postgresql-16]   # may be installed, never removed or pinned to a version
//! allow_rules: [dangerous-command:mkfs] # switch off named rules (deliberately, per host)
//! ```

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use super::danger;

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
    /// Protected paths; `/` protects only itself, every other entry its whole subtree.
    paths: Vec<PathBuf>,
    services: BTreeSet<String>,
    packages: BTreeSet<String>,
    allow: BTreeSet<String>,
}

/// Why a resource was refused: `rule` goes into the report's `guardrail` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Blocked {
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

impl Guardrails {
    /// The built-in rules: the filesystem roots an agent must never manage, its own base dir
    /// and binary, the services that keep the host reachable, and the packages it runs on.
    pub fn defaults(agent_base: &Path) -> Guardrails {
        let mut paths: Vec<PathBuf> =
            ["/", "/boot", "/proc", "/sys", "/dev"].iter().map(PathBuf::from).collect();
        paths.push(normalize(&agent_base.to_string_lossy()));
        if let Ok(exe) = std::env::current_exe() {
            paths.push(exe);
        }
        Guardrails {
            paths,
            services: ["vigo-agent", "sshd", "ssh"].iter().map(|s| s.to_string()).collect(),
            packages: ["vigo", "openssh-server", "libc6", "glibc"].iter().map(|s| s.to_string()).collect(),
            allow: BTreeSet::new(),
        }
    }

    /// Reads `guardrails.yaml`; a missing file means the defaults. Entries add to the defaults.
    pub fn load(path: &Path, agent_base: &Path) -> Result<Guardrails, String> {
        let mut g = Guardrails::defaults(agent_base);
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(g),
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        let file: GuardrailsFile = if text.trim().is_empty() {
            GuardrailsFile::default()
        } else {
            serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
        };
        for p in file.protected_paths {
            if !p.starts_with('/') {
                return Err(format!("{}: protected path {p:?} must be absolute", path.display()));
            }
            g.paths.push(normalize(&p));
        }
        g.services.extend(file.protected_services.iter().map(|s| service_name(s).to_string()));
        g.packages.extend(file.protected_packages);
        g.allow.extend(file.allow_rules);
        Ok(g)
    }

    fn block(&self, rule: String, message: String) -> Result<(), Blocked> {
        let category = rule.split(':').next().unwrap_or_default();
        if self.allow.contains(&rule) || self.allow.contains(category) {
            return Ok(());
        }
        Err(Blocked { message: format!("blocked by guardrail {rule}: {message}"), rule })
    }

    /// A file, directory or symlink resource may not manage a protected path.
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

    /// `action` is one of start, stop, enable, disable, restart.
    pub(crate) fn check_service(&self, name: &str, action: &str) -> Result<(), Blocked> {
        let name = service_name(name);
        // The agent restarting itself would kill the run that asked for it.
        let refused = matches!(action, "stop" | "disable") || (action == "restart" && name == "vigo-agent");
        if refused && self.services.contains(name) {
            return self.block(
                format!("protected-service:{name}"),
                format!("a bundle may not {action} the service {name}"),
            );
        }
        Ok(())
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

    pub(crate) fn check_command(&self, command: &str) -> Result<(), Blocked> {
        match danger::scan(command) {
            Some(rule) => self.block(
                format!("dangerous-command:{rule}"),
                "the command matches a known host-destroying pattern".into(),
            ),
            None => Ok(()),
        }
    }
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
        let b = g.check_command("rm -rf /").unwrap_err();
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
        assert!(g.check_command("mkfs.ext4 /dev/sdb").is_ok(), "allow_rules switches the rule off");
        assert!(g.check_command("rm -rf /").is_err());
        std::fs::write(&f, "protected_path: [/x]\n").unwrap();
        assert!(Guardrails::load(&f, &d).unwrap_err().contains("unknown field"));
        std::fs::write(&f, "protected_paths: [relative]\n").unwrap();
        assert!(Guardrails::load(&f, &d).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
