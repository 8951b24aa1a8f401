//! The scan's rules for what keeps a host reachable: protected services stopped, disabled or
//! killed through a command, and protected packages removed through a package manager —
//! the same `protected-service:` / `protected-package:` rules the service and package
//! resources obey.

use super::{Expanded, Scanner};

fn names(args: &[Expanded]) -> impl Iterator<Item = &Expanded> {
    args.iter().filter(|a| a.opaque || a.texts.iter().any(|t| !t.starts_with('-')))
}

fn unit_name(unit: &str) -> &str {
    unit.strip_suffix(".service").or_else(|| unit.strip_suffix(".socket")).unwrap_or(unit)
}

fn service(s: &mut Scanner, unit: &Expanded, action: &str) {
    if unit.opaque {
        return s.opaque(&format!("it would {action} a service named by another command"));
    }
    for u in &unit.texts {
        if let Some(rule) = s.protected.service_rule(unit_name(u), action) {
            s.hit(rule, format!("it would {action} the service {u}"));
        }
    }
}

/// `systemctl [options] VERB UNIT…`
pub(super) fn systemctl(s: &mut Scanner, args: &[Expanded]) {
    let with_arg =
        ["-H", "-M", "-t", "--type", "-p", "--property", "-s", "--signal", "-n", "--lines", "-o", "--output"];
    let mut rest: Vec<&Expanded> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match args[i].single() {
            Some(w) if with_arg.contains(&w) => i += 2,
            Some(w) if w.starts_with('-') => i += 1,
            _ => {
                rest.push(&args[i]);
                i += 1;
            }
        }
    }
    let Some((verb, units)) = rest.split_first() else { return };
    let action = match verb.single() {
        Some("stop" | "kill") => "stop",
        Some("disable" | "mask") => "disable",
        Some("restart" | "try-restart" | "reload-or-restart" | "try-reload-or-restart" | "condrestart") => {
            "restart"
        }
        // Switching to rescue or emergency mode stops every service, sshd with them.
        Some("rescue" | "emergency") => return service(s, &plain("sshd"), "stop"),
        Some("isolate") => {
            if units.iter().any(|u| {
                u.opaque || u.texts.iter().any(|t| t.starts_with("rescue") || t.starts_with("emergency"))
            }) {
                service(s, &plain("sshd"), "stop");
            }
            return;
        }
        None if verb.opaque => return s.opaque("systemctl is given a verb computed by another command"),
        _ => return,
    };
    for u in units {
        service(s, u, action);
    }
}

fn plain(text: &str) -> Expanded {
    Expanded { texts: vec![text.to_string()], ..Expanded::default() }
}

/// `service NAME ACTION`, `invoke-rc.d NAME ACTION`, `rc-service NAME ACTION`,
/// `update-rc.d NAME remove|disable`, `/etc/init.d/NAME ACTION`.
pub(super) fn init_script(s: &mut Scanner, tool: &str, args: &[Expanded]) {
    let words: Vec<&Expanded> = names(args).collect();
    let (Some(unit), Some(action)) = (words.first(), words.get(1).and_then(|a| a.single())) else { return };
    let action = match (tool, action) {
        ("update-rc.d", "remove" | "disable") => "disable",
        (_, "stop" | "force-stop") => "stop",
        (_, "restart" | "force-reload" | "try-restart") => "restart",
        _ => return,
    };
    service(s, unit, action);
}

/// `pkill PATTERN`, `killall NAME`, `kill $(pidof NAME)`: killing a protected service's
/// processes stops it as surely as systemctl.
pub(super) fn kill(s: &mut Scanner, tool: &str, args: &[Expanded]) {
    if tool == "pgrep" {
        return;
    }
    let with_arg = ["-s", "--signal", "-u", "-U", "-g", "-G", "-P", "-t", "-n", "--euid", "--uid"];
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        match a.single() {
            Some(w) if with_arg.contains(&w) => i += 2,
            Some(w) if w.starts_with('-') => i += 1,
            _ => {
                if a.opaque {
                    // `kill $(pidof sshd)`, `kill $(cat /run/sshd.pid)`: the command names it.
                    let named = a.substs.iter().flat_map(|t| {
                        t.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                    });
                    for word in named.collect::<Vec<_>>() {
                        if let Some(rule) =
                            s.protected.kill_rule(word).filter(|r| r.ends_with(&format!(":{word}")))
                        {
                            s.hit(rule, format!("{tool} would stop the protected service {word}"));
                        }
                    }
                } else if tool != "kill" {
                    for p in &a.texts {
                        if let Some(rule) = s.protected.kill_rule(p) {
                            s.hit(rule, format!("{tool} {p} would stop a protected service"));
                        }
                    }
                }
                i += 1;
            }
        }
    }
}

/// Removals through a package manager (and `apt-get install NAME-`, which removes NAME).
pub(super) fn packages(s: &mut Scanner, tool: &str, args: &[Expanded]) {
    let words: Vec<&Expanded> = args.iter().collect();
    let verb_at = |skip_with_arg: &[&str]| {
        let mut i = 0;
        while i < words.len() {
            match words[i].single() {
                Some(w) if skip_with_arg.contains(&w) => i += 2,
                Some(w) if w.starts_with('-') => i += 1,
                _ => return Some(i),
            }
        }
        None
    };
    // (index of the first package name, whether a trailing `-` marks a removal instead)
    let removal: Option<(usize, bool)> = match tool {
        "apt" | "apt-get" | "aptitude" => {
            verb_at(&["-o", "-t", "-c"]).and_then(|v| match words[v].single() {
                Some("remove" | "purge" | "autoremove" | "autopurge" | "erase") => Some((v + 1, false)),
                Some("install" | "reinstall") => Some((v + 1, true)),
                _ => None,
            })
        }
        "yum" | "dnf" | "microdnf" | "tdnf" => verb_at(&["-c", "--setopt"]).and_then(|v| {
            matches!(words[v].single(), Some("remove" | "erase" | "autoremove" | "uninstall"))
                .then_some((v + 1, false))
        }),
        "zypper" => verb_at(&[]).and_then(|v| {
            matches!(words[v].single(), Some("rm" | "remove" | "uninstall")).then_some((v + 1, false))
        }),
        "apk" => verb_at(&[]).and_then(|v| (words[v].single() == Some("del")).then_some((v + 1, false))),
        "snap" => verb_at(&[]).and_then(|v| (words[v].single() == Some("remove")).then_some((v + 1, false))),
        "dpkg" => words
            .iter()
            .position(|w| matches!(w.single(), Some("-r" | "-P" | "--remove" | "--purge")))
            .map(|i| (i + 1, false)),
        "rpm" => words
            .iter()
            .position(|w| {
                w.single().is_some_and(|o| {
                    o == "--erase" || (o.starts_with('-') && !o.starts_with("--") && o.contains('e'))
                })
            })
            .map(|i| (i + 1, false)),
        "pacman" => {
            words.iter().position(|w| w.single().is_some_and(|o| o.starts_with("-R"))).map(|i| (i + 1, false))
        }
        _ => None,
    };
    let Some((from, dash_removes)) = removal else { return };
    for w in names(&args[from.min(args.len())..]) {
        if w.opaque {
            s.opaque(&format!("{tool} removes packages named by another command"));
            continue;
        }
        for text in w.texts.iter().filter(|t| !t.starts_with('-')) {
            let name = match (dash_removes, text.strip_suffix('-')) {
                (true, Some(n)) => n,
                (true, None) => continue,
                (false, _) => text.as_str(),
            };
            let name = name.split(['=', ':']).next().unwrap_or(name);
            if let Some(rule) = s.protected.package_rule(name) {
                s.hit(rule, format!("{tool} would remove the package {name}"));
            }
        }
    }
}
