//! What the scan looks for in one command, once `mod.rs` has unwrapped and expanded it:
//! wrappers to see through, where a shell takes its code from, and the host-destroying
//! shapes (recursive removal or chmod of `/` or a top-level system directory, filesystem and
//! device wipers, writes to block devices, protected services stopped, protected packages
//! removed, protected paths written).

use super::wrappers::single;
use super::{base, Env, Expanded, Scanner};

/// Top-level directories whose recursive removal wrecks a host as surely as `/`'s.
const SYSTEM_DIRS: &[&str] = &[
    "bin", "boot", "dev", "etc", "home", "lib", "lib32", "lib64", "opt", "proc", "root", "sbin", "srv",
    "sys", "usr", "var",
];

/// Commands whose operands are files they write, replace or remove.
const WRITERS: &[&str] = &[
    "rm", "rmdir", "unlink", "truncate", "touch", "tee", "cp", "mv", "ln", "install", "rsync", "shred",
    "chmod", "chown", "chgrp",
];

fn is_safe_device(path: &str) -> bool {
    let Some(dev) = path.strip_prefix("/dev/") else { return true };
    matches!(
        dev,
        "null" | "zero" | "full" | "random" | "urandom" | "stdout" | "stderr" | "stdin" | "tty" | "console"
    ) || dev.starts_with("fd/")
        || dev.starts_with("shm/")
        || dev.starts_with("pts/")
}

/// A path component that matches everything in its directory (`*`, `.*`, `[a-z]*`, `{a,b}`…).
fn matches_all(component: &str) -> bool {
    let mut depth = 0;
    component.chars().all(|c| match c {
        '[' | '{' => {
            depth += 1;
            true
        }
        ']' | '}' => {
            depth -= 1;
            true
        }
        _ => depth > 0 || "*?.".contains(c),
    })
}

/// `/`, a glob over `/` (`/*`, `/*/`), a top-level system directory or everything in one
/// (`/etc`, `/usr/`, `//var/*`), after `.` and `..` are resolved.
pub(super) fn is_root_target(path: &str) -> bool {
    let mut comps: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                comps.pop();
            }
            c => comps.push(c),
        }
    }
    let globby = |c: &str| c.contains(['*', '?', '[', '{']);
    match comps.split_first() {
        None => true,
        Some((first, rest)) => {
            globby(first) || (SYSTEM_DIRS.contains(first) && rest.iter().all(|c| matches_all(c)))
        }
    }
}

fn options(args: &[Expanded]) -> impl Iterator<Item = &str> {
    args.iter().filter_map(Expanded::single).filter(|w| w.starts_with('-') && *w != "-")
}

fn operands(args: &[Expanded]) -> impl Iterator<Item = &Expanded> {
    args.iter().filter(|a| a.opaque || a.texts.iter().any(|t| !t.starts_with('-') || t == "-"))
}

fn recursive(args: &[Expanded]) -> bool {
    options(args)
        .any(|o| o == "--recursive" || (!o.starts_with("--") && (o.contains('r') || o.contains('R'))))
}

/// Each operand's texts as absolute paths; `Err` for an operand that is a command's output.
fn targets(env: &Env, args: &[Expanded]) -> Result<Vec<String>, ()> {
    let mut out = Vec::new();
    for a in operands(args) {
        if a.opaque {
            return Err(());
        }
        out.extend(a.texts.iter().filter_map(|t| env.absolute(t)));
    }
    Ok(out)
}

/// A file a command or a redirection writes: a block device, or a protected path.
pub(super) fn written_path(s: &mut Scanner, env: &Env, target: &Expanded, device_rule: &str) {
    for abs in target.texts.iter().filter_map(|t| env.absolute(t)) {
        if !is_safe_device(&abs) {
            s.danger(device_rule, &format!("it writes to the device {abs}"));
        }
        if let Some(rule) = s.protected.path_rule(&abs) {
            s.hit(rule, format!("it writes to {abs}, which is protected on this host"));
        }
    }
}

/// The rules for one (unwrapped) command named `name` (its path as given: `path`).
pub(super) fn check(s: &mut Scanner, name: &str, path: &str, args: &[Expanded], env: &Env) {
    if WRITERS.contains(&name) || (name == "sed" && options(args).any(|o| o.starts_with("-i"))) {
        for a in operands(args) {
            written_path(s, env, a, "dd-to-device");
        }
    }
    match name {
        "rm" | "chmod" | "chown" | "chgrp" => {
            let rule = if name == "rm" { "rm-rf-root" } else { "chmod-recursive-root" };
            if name == "rm" && options(args).any(|o| o == "--no-preserve-root") {
                s.danger(rule, "rm --no-preserve-root");
            }
            if recursive(args) {
                match targets(env, args) {
                    Err(()) => s.opaque(&format!("{name} -r of a path that is another command's output")),
                    Ok(paths) => {
                        if let Some(p) = paths.iter().find(|p| is_root_target(p)) {
                            s.danger(rule, &format!("{name} -r of {p}"));
                        }
                    }
                }
            }
        }
        "find" => find(s, args, env),
        n if n.starts_with("mkfs") || matches!(n, "mke2fs" | "mkswap" | "mkdosfs") => {
            s.danger("mkfs", "it makes a filesystem, wiping what was there");
        }
        "dd" => {
            for a in args.iter().filter(|a| a.texts.iter().any(|t| t.starts_with("of="))) {
                let target = Expanded {
                    texts: a.texts.iter().filter_map(|t| t.strip_prefix("of=")).map(String::from).collect(),
                    ..a.clone()
                };
                written_path(s, env, &target, "dd-to-device");
            }
        }
        "wipefs"
            if options(args).any(|o| {
                matches!(o, "--all" | "--offset")
                    || (!o.starts_with("--") && (o.contains('a') || o.contains('o')))
            }) =>
        {
            s.danger("wipe-device", "wipefs erases filesystem signatures");
        }
        "blkdiscard" => s.danger("wipe-device", "blkdiscard discards a whole device"),
        "sgdisk"
            if options(args).any(|o| matches!(o, "-Z" | "-z" | "-o" | "--zap-all" | "--zap" | "--clear")) =>
        {
            s.danger("wipe-device", "sgdisk erases a partition table");
        }
        "shred" => {
            if let Ok(paths) = targets(env, args) {
                if let Some(p) = paths.iter().find(|p| !is_safe_device(p)) {
                    s.danger("wipe-device", &format!("shred overwrites the device {p}"));
                }
            }
        }
        "systemctl" => super::rules_services::systemctl(s, args),
        "service" | "invoke-rc.d" | "rc-service" | "update-rc.d" => {
            super::rules_services::init_script(s, name, args)
        }
        "pkill" | "killall" | "kill" | "pgrep" => super::rules_services::kill(s, name, args),
        _ if path.starts_with("/etc/init.d/") || path.starts_with("/etc/rc.d/init.d/") => {
            let mut with_name = vec![Expanded { texts: vec![name.to_string()], ..Expanded::default() }];
            with_name.extend(args.iter().cloned());
            super::rules_services::init_script(s, "service", &with_name);
        }
        _ => super::rules_services::packages(s, name, args),
    }
}

/// `find` from `/` or a system directory that deletes (`-delete`, or `-exec` of a remover);
/// the commands it runs are scanned too.
fn find(s: &mut Scanner, args: &[Expanded], env: &Env) {
    let mut i = 0;
    while let Some(w) = single(args, i) {
        match w {
            "-H" | "-L" | "-P" => i += 1,
            "-D" => i += 2,
            w if w.starts_with("-O") => i += 1,
            _ => break,
        }
    }
    let starts_at = i;
    while args
        .get(i)
        .is_some_and(|a| a.opaque || !a.texts.iter().all(|t| t.starts_with('-') || t == "(" || t == "!"))
    {
        i += 1;
    }
    let starts = if i == starts_at {
        vec![Expanded { texts: vec![".".into()], ..Expanded::default() }]
    } else {
        args[starts_at..i].to_vec()
    };
    let expr = &args[i..];
    let mut destroys = expr.iter().any(|a| a.single() == Some("-delete"));
    let mut j = 0;
    while j < expr.len() {
        if matches!(expr[j].single(), Some("-exec" | "-execdir" | "-ok" | "-okdir")) {
            let end = (j + 1..expr.len())
                .find(|&k| matches!(expr[k].single(), Some(";" | "+")))
                .unwrap_or(expr.len());
            let mut cmd = expr[j + 1..end].to_vec();
            // `{}` is each file found: somewhere under the start, never the start itself.
            for w in &mut cmd {
                if w.single() == Some("{}") {
                    w.texts = vec!["/tmp/found-by-find".into()];
                }
            }
            if let Some(n) = cmd.first().and_then(Expanded::single) {
                destroys |= matches!(
                    base(n),
                    "rm" | "shred"
                        | "unlink"
                        | "rmdir"
                        | "truncate"
                        | "mv"
                        | "dd"
                        | "wipefs"
                        | "chmod"
                        | "chown"
                        | "chgrp"
                );
            }
            let (mut local, mut outer) = (env.clone(), env.clone());
            s.invoke(&cmd, &mut local, &mut outer, &super::Input::default());
            j = end;
        }
        j += 1;
    }
    if !destroys {
        return;
    }
    match targets(env, &starts) {
        Err(()) => s.opaque("find deletes under a path that is another command's output"),
        Ok(paths) => {
            if let Some(p) = paths.iter().find(|p| is_root_target(p)) {
                s.danger("rm-rf-root", &format!("find deletes everything it finds under {p}"));
            }
        }
    }
}

/// The fork bomb `f(){ f|f& };f` in any spelling of the name.
pub(super) fn fork_bomb(text: &str) -> bool {
    let s: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let mut from = 0;
    while let Some(pos) = s[from..].find("(){") {
        let at = from + pos;
        let name: String = s[..at]
            .chars()
            .rev()
            .take_while(|c| !";&|(){}".contains(*c))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let name = name.strip_prefix("function").unwrap_or(&name);
        if !name.is_empty() && s[at..].contains(&format!("{name}|{name}&")) {
            return true;
        }
        from = at + 3;
    }
    false
}
