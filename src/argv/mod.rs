//! The command line's front door, shared by every role: `-h`/`--help`, `--version`, and usage
//! errors that name the mistake (an unknown command with the nearest valid one, a stray value
//! never repeated) before argh parses what is left. Usage errors exit 2.

mod suggest;
mod walk;

use std::process::ExitCode;

use crate::exit::EXIT_USAGE;
pub use walk::Problem;
use walk::{walk, Outcome};

/// What `--version` prints, whatever name the binary was started as.
pub fn version_line() -> String {
    format!("vigo {}", crate::release::version())
}

/// Parses argv for `command` (e.g. `vigocli`, `vigo cli`). `--help`/`-h` print to stdout and
/// exit 0, `--version` too; a usage error is printed to stderr and exits 2.
pub fn parse_args<T: argh::FromArgs + argh::ArgsInfo>(command: &str, args: &[&str]) -> Result<T, ExitCode> {
    parse_args_with_advice(command, args, |_| None)
}

/// `parse_args`, with `advice` given the first say on a problem (a role's own wording for a
/// mistake it knows is common).
pub fn parse_args_with_advice<T: argh::FromArgs + argh::ArgsInfo>(
    command: &str,
    args: &[&str],
    advice: impl Fn(&Problem) -> Option<String>,
) -> Result<T, ExitCode> {
    let names: Vec<&str> = command.split(' ').collect();
    let (path, args) = match walk(&names, &T::get_args_info(), args) {
        Outcome::Version => {
            println!("{}", version_line());
            return Err(ExitCode::SUCCESS);
        }
        Outcome::Problem(p) => {
            eprintln!("{}", advice(&p).unwrap_or_else(|| describe(&p)));
            return Err(ExitCode::from(EXIT_USAGE));
        }
        Outcome::Parse { path, args } => (path, args),
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    T::from_args(&names, &args).map_err(|early| match early.status {
        Ok(()) => {
            println!("{}", early.output.trim_end());
            ExitCode::SUCCESS
        }
        Err(()) => {
            eprintln!("error: {}\n{}", argh_error(&early.output), usage_hint(&path.join(" ")));
            ExitCode::from(EXIT_USAGE)
        }
    })
}

fn usage_hint(command: &str) -> String {
    format!("Run `{command} --help` for usage.")
}

/// `; did you mean `X`?` when one of `candidates` is close to `given`, else nothing.
pub fn did_you_mean(given: &str, candidates: &[&str]) -> String {
    suggest::nearest(given, candidates).map(|n| format!("; did you mean `{n}`?")).unwrap_or_default()
}

/// A word is repeated in a message only when it looks like a command name: anything else may
/// be a value typed in the wrong place.
fn looks_like_a_name(word: &str) -> bool {
    !word.is_empty()
        && word.len() <= 32
        && word.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The message for a problem found by the walk.
pub fn describe(problem: &Problem) -> String {
    match problem {
        Problem::UnknownCommand { path, word, commands } => {
            let cmd = path.join(" ");
            let named: Vec<&str> = commands.iter().map(String::as_str).collect();
            let first = if looks_like_a_name(word) {
                let near = did_you_mean(word, &named);
                format!("error: unknown command {word:?} for `{cmd}`{near}")
            } else {
                format!("error: unknown command for `{cmd}` (not repeated here: it does not look like a command name)")
            };
            format!("{first}\ncommands: {}\nRun `{cmd} --help` for what each one does.", named.join(", "))
        }
        Problem::MissingCommand { path, commands } => {
            let cmd = path.join(" ");
            format!(
                "error: `{cmd}` needs a command\ncommands: {}\nRun `{cmd} --help` for what each one does.",
                commands.join(", ")
            )
        }
        Problem::StrayValue { path } => {
            let cmd = path.join(" ");
            format!(
                "error: one value too many for `{cmd}` (not repeated here, in case it is a secret; secret values are read from a prompt, a pipe or --from-file, never the command line)\n{}",
                usage_hint(&cmd)
            )
        }
        Problem::UnknownFlag { path, name, flags } => {
            let cmd = path.join(" ");
            let named: Vec<&str> = flags.iter().map(String::as_str).collect();
            let near =
                suggest::nearest(name, &named).map(|n| format!("; did you mean {n}?")).unwrap_or_default();
            format!("error: unknown option {name} for `{cmd}`{near}\n{}", usage_hint(&cmd))
        }
    }
}

/// argh's own error text, on one line where it uses several.
fn argh_error(output: &str) -> String {
    let mut lines = output.trim_end().lines();
    let head = lines.next().unwrap_or_default();
    let rest: Vec<&str> = lines.map(str::trim).filter(|l| !l.is_empty()).collect();
    match head {
        "Required positional arguments not provided:" => format!("missing argument: {}", rest.join(", ")),
        "Required options not provided:" => format!("missing option: {}", rest.join(", ")),
        _ if rest.is_empty() => lowercase_first(head),
        _ => format!("{} {}", lowercase_first(head), rest.join(", ")),
    }
}

/// `Error parsing …` reads as `error: error parsing …` in our one style of message.
fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_lowercase().chain(chars).collect()).unwrap_or_default()
}

/// Moves "persistent" options (`--base-dir X`, `--log-format=json`, ...) from anywhere in argv
/// to the front, where the role's top-level parser reads them. Stops at `--`.
pub fn hoist_options<'a>(args: &[&'a str], options: &[&str]) -> Vec<&'a str> {
    let mut front = Vec::new();
    let mut back = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        if a == "--" {
            back.extend_from_slice(&args[i..]);
            break;
        }
        let name = a.split('=').next().unwrap_or(a);
        if options.contains(&name) {
            front.push(a);
            if !a.contains('=') {
                if let Some(v) = args.get(i + 1) {
                    front.push(v);
                    i += 1;
                }
            }
        } else {
            back.push(a);
        }
        i += 1;
    }
    front.extend(back);
    front
}

#[cfg(test)]
mod tests;
