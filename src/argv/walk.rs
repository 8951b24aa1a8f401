//! Walks argv along a role's command tree (argh's `ArgsInfo`) before argh parses it, to tell
//! apart what argh lumps together as "Unrecognized argument": an unknown word where a command
//! name belongs (named, with the valid ones) and a value where none belongs (never repeated,
//! since it may be a secret typed in the wrong place).

use argh::{CommandInfoWithArgs, FlagInfoKind, Optionality};

pub const HELP_TRIGGERS: &[&str] = &["-h", "--help", "help"];

/// What is wrong with a command line, found before argh sees it.
#[derive(Debug, PartialEq, Eq)]
pub enum Problem {
    /// A word in command position that names no command here.
    UnknownCommand { path: Vec<String>, word: String, commands: Vec<String> },
    /// The command line stops where a command is required.
    MissingCommand { path: Vec<String>, commands: Vec<String> },
    /// A positional word after the command has all the values it takes.
    StrayValue { path: Vec<String> },
    /// A `-x` / `--xyz` that the command does not take (`name` without any `=value`).
    UnknownFlag { path: Vec<String>, name: String, flags: Vec<String> },
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing wrong that the walk can see: argh parses `args` (with `--opt=value` split in two).
    Parse {
        path: Vec<String>,
        args: Vec<String>,
    },
    Version,
    Problem(Problem),
}

fn flag_names(info: &CommandInfoWithArgs) -> Vec<String> {
    info.flags.iter().filter(|f| f.long != "--help").map(|f| f.long.to_string()).collect()
}

fn command_names(info: &CommandInfoWithArgs) -> Vec<String> {
    info.commands.iter().map(|c| c.name.to_string()).collect()
}

fn positional_slots(info: &CommandInfoWithArgs) -> usize {
    let unbounded = info
        .positionals
        .iter()
        .any(|p| matches!(p.optionality, Optionality::Repeating | Optionality::Greedy));
    if unbounded {
        usize::MAX
    } else {
        info.positionals.len()
    }
}

/// Whether `arg` is `--name` or `-c` of a flag of `info`, and whether that flag takes a value.
fn find_flag(info: &CommandInfoWithArgs, arg: &str) -> Option<bool> {
    info.flags
        .iter()
        .find(|f| f.long == arg || f.short.is_some_and(|c| arg.len() == 2 && arg.ends_with(c)))
        .map(|f| matches!(f.kind, FlagInfoKind::Option { .. }))
}

/// Walks `args` from the top command (`command` words, e.g. `["vigo", "cli"]`) down.
/// `--version` is recognised only before the first command, like `git --version`.
pub fn walk(command: &[&str], top: &CommandInfoWithArgs, args: &[&str]) -> Outcome {
    let mut path: Vec<String> = command.iter().map(|s| s.to_string()).collect();
    let mut info = top;
    let mut out: Vec<String> = Vec::with_capacity(args.len());
    let (mut depth, mut positionals, mut options_ended) = (0, 0, false);
    let mut i = 0;
    while i < args.len() {
        let arg = args[i];
        i += 1;
        if !options_ended {
            if HELP_TRIGGERS.contains(&arg) {
                // argh prints the help of the command the trigger belongs to.
                out.extend(args[i - 1..].iter().map(|s| s.to_string()));
                return Outcome::Parse { path, args: out };
            }
            if arg == "--" {
                options_ended = true;
                out.push(arg.into());
                continue;
            }
            if arg.starts_with('-') && arg.len() > 1 {
                if depth == 0 && arg == "--version" {
                    return Outcome::Version;
                }
                let (name, inline) = match arg.split_once('=') {
                    Some((n, v)) if n.starts_with("--") => (n, Some(v)),
                    _ => (arg, None),
                };
                match find_flag(info, name) {
                    None => {
                        return Outcome::Problem(Problem::UnknownFlag {
                            path,
                            name: name.to_string(),
                            flags: flag_names(info),
                        })
                    }
                    Some(takes_value) => {
                        out.push(name.into());
                        match (takes_value, inline) {
                            (true, Some(v)) => out.push(v.into()),
                            (true, None) => {
                                if let Some(v) = args.get(i) {
                                    out.push(v.to_string());
                                    i += 1;
                                }
                            }
                            // `--switch=x`: argh names the mistake.
                            (false, Some(_)) => out.last_mut().unwrap().push_str("=…"),
                            (false, None) => {}
                        }
                    }
                }
                continue;
            }
        }
        out.push(arg.into());
        if !info.commands.is_empty() {
            match info.commands.iter().find(|c| c.name == arg) {
                Some(sub) => {
                    path.push(arg.into());
                    info = &sub.command;
                    (depth, positionals, options_ended) = (depth + 1, 0, false);
                }
                None => {
                    return Outcome::Problem(Problem::UnknownCommand {
                        path,
                        word: arg.into(),
                        commands: command_names(info),
                    })
                }
            }
        } else if positionals < positional_slots(info) {
            positionals += 1;
        } else {
            return Outcome::Problem(Problem::StrayValue { path });
        }
    }
    if !info.commands.is_empty() {
        return Outcome::Problem(Problem::MissingCommand { path, commands: command_names(info) });
    }
    Outcome::Parse { path, args: out }
}
