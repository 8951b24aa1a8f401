//! What the scan looks for in one command, once `mod.rs` has unwrapped and expanded it:
//! wrappers to see through, where a shell takes its code from, and the host-destroying
//! shapes (recursive removal or chmod of `/` or a top-level system directory, filesystem and
//! device wipers, writes to block devices, protected services stopped, protected packages
//! removed, protected paths written).

use super::{base, shell, Env, Expanded, Scanner, DOWNLOADERS};

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

pub(super) enum Unwrapped {
    /// The command starts at this argument, with these variables set for it.
    Command(usize, Vec<(String, Expanded)>),
    /// The wrapper runs this shell text (`su -c`, `env -S`, `watch`).
    Script(Expanded),
    /// It runs nothing we can follow (`sudo -s`, `command -v`).
    Nothing,
}

fn single(args: &[Expanded], i: usize) -> Option<&str> {
    args.get(i).and_then(Expanded::single)
}

/// The index of the first argument at or after `from` that is not an option; options in
/// `with_arg` take the next argument; `--` ends the options.
fn skip_options(args: &[Expanded], from: usize, with_arg: &[&str]) -> usize {
    let mut i = from;
    while let Some(w) = single(args, i) {
        if w == "--" {
            return i + 1;
        }
        if !w.starts_with('-') || w == "-" {
            break;
        }
        i += if with_arg.contains(&w) { 2 } else { 1 };
    }
    i
}

/// The argument after the first of `flags`, if one is given.
fn after_flag<'a>(args: &'a [Expanded], flags: &[&str]) -> Option<&'a Expanded> {
    let at = args.iter().position(|a| a.single().is_some_and(|w| flags.contains(&w)))?;
    args.get(at + 1)
}

/// Several words joined into one shell text (`watch ls -l`), or opaque if any is.
fn joined(args: &[Expanded]) -> Expanded {
    let mut out = Expanded { texts: vec![String::new()], ..Expanded::default() };
    for a in args {
        out.opaque |= a.opaque;
        out.unknown |= a.unknown;
        out.substs.extend(a.substs.iter().cloned());
        let text = a.texts.first().cloned().unwrap_or_default();
        out.texts[0] = if out.texts[0].is_empty() { text } else { format!("{} {text}", out.texts[0]) };
    }
    out
}

/// Sees through the commands that run another command: `sudo`, `env`, `nohup`, `timeout` …
pub(super) fn unwrap(name: &str, args: &[Expanded]) -> Option<Unwrapped> {
    let command = |i: usize| Some(Unwrapped::Command(i, Vec::new()));
    match name {
        "sudo" | "doas" => {
            let i = skip_options(args, 0, &["-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T"]);
            if i >= args.len() {
                Some(Unwrapped::Nothing)
            } else {
                command(i)
            }
        }
        "nohup" | "setsid" | "builtin" | "busybox" | "unbuffer" | "time" => {
            command(skip_options(args, 0, &[]))
        }
        "nice" | "ionice" | "stdbuf" => {
            command(skip_options(args, 0, &["-n", "-c", "-p", "-i", "-o", "-e", "--adjustment"]))
        }
        "command" if args.iter().any(|a| matches!(a.single(), Some("-v" | "-V"))) => Some(Unwrapped::Nothing),
        "command" | "exec" => command(skip_options(args, 0, &["-a"])),
        "timeout" => command(skip_options(args, 0, &["-s", "-k", "--signal", "--kill-after"]) + 1),
        "chroot" => command(skip_options(args, 0, &[]) + 1),
        "strace" | "ltrace" => command(skip_options(args, 0, &["-o", "-e", "-p", "-s", "-u", "-P", "-E"])),
        "xargs" => command(skip_options(args, 0, &["-I", "-n", "-P", "-d", "-a", "-E", "-L", "-s", "-e"])),
        "systemd-run" => command(skip_options(
            args,
            0,
            &["-p", "--property", "-u", "--unit", "-E", "--setenv", "--uid", "--gid", "-M", "-H"],
        )),
        "env" => {
            if let Some(s) = after_flag(args, &["-S", "--split-string"]) {
                return Some(Unwrapped::Script(s.clone()));
            }
            let mut i = skip_options(args, 0, &["-u", "--unset", "-C", "--chdir"]);
            let mut set = Vec::new();
            while let Some((k, v)) = single(args, i).and_then(|w| w.split_once('=')) {
                let valid = !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    break;
                }
                set.push((k.to_string(), Expanded { texts: vec![v.to_string()], ..Expanded::default() }));
                i += 1;
            }
            Some(Unwrapped::Command(i, set))
        }
        "su" | "runuser" | "flock" => match after_flag(args, &["-c", "--command"]) {
            Some(script) => Some(Unwrapped::Script(script.clone())),
            None if name == "su" => Some(Unwrapped::Nothing),
            None if name == "flock" => {
                command(skip_options(args, 0, &["-w", "-E", "--timeout", "--conflict-exit-code"]) + 1)
            }
            None => command(skip_options(args, 0, &["-u", "-g", "-G", "--user", "--group"])),
        },
        "watch" => Some(Unwrapped::Script(joined(&args[skip_options(args, 0, &["-n", "--interval"])..]))),
        _ => None,
    }
}

/// Where a shell or interpreter takes its code from.
pub(super) enum Code {
    /// From the argument at this index (`-c`, `-e`, `-m`…).
    Inline(usize),
    /// From a script file named by the argument at this index.
    File(usize),
    /// From its input.
    Stdin,
}

pub(super) fn code_source(is_shell: bool, args: &[Expanded]) -> Code {
    if !is_shell {
        let inline = ["-c", "-m", "-e", "-E", "-r", "-p", "--eval", "--print"];
        if let Some(i) = args.iter().position(|a| a.single().is_some_and(|w| inline.contains(&w))) {
            return Code::Inline(i + 1);
        }
        let i = skip_options(args, 0, &["-W", "-X"]);
        return match single(args, i) {
            None if i >= args.len() => Code::Stdin,
            Some("-") => Code::Stdin,
            _ => Code::File(i),
        };
    }
    let (mut i, mut c, mut s) = (0, false, false);
    while let Some(w) = single(args, i) {
        if w == "--" {
            i += 1;
            break;
        }
        if !(w.starts_with('-') || w.starts_with('+')) || w == "-" {
            break;
        }
        if w.starts_with("--") {
            i += if matches!(w, "--rcfile" | "--init-file") { 2 } else { 1 };
            continue;
        }
        c |= w.contains('c');
        s |= w.contains('s');
        i += if w.contains('o') || w.contains('O') { 2 } else { 1 };
    }
    if c {
        Code::Inline(i)
    } else if s || i >= args.len() || single(args, i) == Some("-") {
        Code::Stdin
    } else {
        Code::File(i)
    }
}

/// Whether shell text runs a downloader anywhere (substitutions included).
pub(super) fn downloads(text: &str, depth: u8) -> bool {
    let Ok(cmds) = shell::parse(text) else { return false };
    cmds.iter().flat_map(|c| &c.words).flat_map(|w| &w.0).any(|p| match p {
        shell::Part::Lit(s) => DOWNLOADERS.contains(&base(s)),
        shell::Part::Subst(inner) => depth > 0 && downloads(inner, depth - 1),
        _ => false,
    })
}

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
