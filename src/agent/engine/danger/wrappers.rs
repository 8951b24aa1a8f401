//! How a command runs other code: wrappers that run the command after them (`sudo`, `env`,
//! `nohup`, `timeout`, `xargs` …) or a shell text (`su -c`, `env -S`, `watch`), where a shell
//! or interpreter takes its code from, and whether a script downloads.

use super::{base, shell, Expanded, DOWNLOADERS};

pub(super) enum Unwrapped {
    /// The command starts at this argument, with these variables set for it.
    Command(usize, Vec<(String, Expanded)>),
    /// The wrapper runs this shell text (`su -c`, `env -S`, `watch`).
    Script(Expanded),
    /// It runs nothing we can follow (`sudo -s`, `command -v`).
    Nothing,
}

pub(super) fn single(args: &[Expanded], i: usize) -> Option<&str> {
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
