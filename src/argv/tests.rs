use argh::{ArgsInfo, CommandInfoWithArgs, FromArgs};

use super::walk::{walk, Outcome, Problem};
use super::*;
use crate::cli::CliArgs;

fn cli(args: &[&str]) -> Outcome {
    walk(&["vigocli"], &CliArgs::get_args_info(), args)
}

fn path(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

#[test]
fn an_unknown_word_in_command_position_is_a_command_name() {
    let Outcome::Problem(Problem::UnknownCommand { path: p, word, commands }) = cli(&["secrets", "lsit"])
    else {
        panic!("not an unknown command")
    };
    assert_eq!((p, word.as_str()), (path(&["vigocli", "secrets"]), "lsit"));
    assert!(commands.contains(&"list".to_string()) && !commands.contains(&"help".to_string()));
    let text = describe(&cli(&["secrets", "lsit"]).problem().unwrap());
    assert!(
        text.starts_with("error: unknown command \"lsit\" for `vigocli secrets`; did you mean `list`?"),
        "{text}"
    );
    // Persistent options before the command do not hide it.
    assert!(matches!(
        cli(&["--base-dir", "/x", "frobnicate"]),
        Outcome::Problem(Problem::UnknownCommand { .. })
    ));
}

#[test]
fn a_word_after_a_complete_command_is_a_value_and_is_never_repeated() {
    let canary = "hunter2-canary";
    let out = cli(&["secrets", "set", "raw", "app/key", canary]);
    assert_eq!(
        out,
        Outcome::Problem(Problem::StrayValue { path: path(&["vigocli", "secrets", "set", "raw"]) })
    );
    assert!(!describe(&out.problem().unwrap()).contains(canary));
    // An option's value is not a stray value, nor a command.
    assert!(matches!(cli(&["secrets", "set", "raw", "k", "--from-file", "f"]), Outcome::Parse { .. }));
    // Neither is a word that does not look like a command name repeated as one.
    let text = describe(&cli(&["Hunter2!"]).problem().unwrap());
    assert!(!text.contains("Hunter2") && text.contains("not repeated"), "{text}");
}

#[test]
fn unknown_flags_are_named_without_their_value() {
    let out = cli(&["secrets", "set", "raw", "k", "--value=hunter2"]);
    let text = describe(&out.problem().unwrap());
    assert!(text.contains("unknown option --value for `vigocli secrets set raw`"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    let text = describe(&cli(&["secrets", "delete", "k", "--frce"]).problem().unwrap());
    assert!(text.contains("did you mean --force?"), "{text}");
}

#[test]
fn option_equals_value_is_split_for_argh() {
    let Outcome::Parse { args, .. } = cli(&["tokens", "create", "--ttl=5m"]) else { panic!() };
    assert_eq!(args, ["tokens", "create", "--ttl", "5m"]);
}

#[test]
fn version_only_before_the_first_command() {
    assert_eq!(cli(&["--version"]), Outcome::Version);
    assert!(matches!(cli(&["secrets", "--version"]), Outcome::Problem(Problem::UnknownFlag { .. })));
}

/// Every command path of a role's tree, from the top (`[]`) down.
fn every_path(info: &CommandInfoWithArgs, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(prefix.clone());
    for sub in &info.commands {
        let mut p = prefix.clone();
        p.push(sub.name.to_string());
        every_path(&sub.command, p, out);
    }
}

fn help_works_everywhere<T: FromArgs + ArgsInfo>(role: &str) -> usize {
    let mut paths = Vec::new();
    every_path(&T::get_args_info(), vec![], &mut paths);
    for p in &paths {
        for trigger in ["-h", "--help"] {
            let mut args: Vec<&str> = p.iter().map(String::as_str).collect();
            args.push(trigger);
            let Outcome::Parse { args: walked, .. } = walk(&[role], &T::get_args_info(), &args) else {
                panic!("{role} {args:?}: the walk refused help")
            };
            let walked: Vec<&str> = walked.iter().map(String::as_str).collect();
            match T::from_args(&[role], &walked) {
                Err(early) => assert!(
                    early.status.is_ok() && early.output.contains("Usage:"),
                    "{role} {args:?} did not print help: {}",
                    early.output
                ),
                Ok(_) => panic!("{role} {args:?} parsed instead of printing help"),
            }
        }
    }
    paths.len()
}

#[test]
fn dash_h_and_help_work_on_every_command_of_every_role() {
    assert!(help_works_everywhere::<CliArgs>("vigocli") > 30);
    assert!(help_works_everywhere::<crate::agent::AgentArgs>("vigo-agent") >= 5);
    assert_eq!(help_works_everywhere::<crate::server::ServerArgs>("vigosrv"), 1);
    assert_eq!(help_works_everywhere::<crate::quickstart::QuickstartArgs>("vigo quickstart"), 1);
}

#[test]
fn hoists_persistent_options() {
    let args = ["secrets", "list", "--base-dir", "/x", "--log-format=json", "--", "--base-dir"];
    let out = hoist_options(&args, &["--base-dir", "--log-format"]);
    assert_eq!(out, ["--base-dir", "/x", "--log-format=json", "secrets", "list", "--", "--base-dir"]);
}

impl Outcome {
    fn problem(self) -> Option<Problem> {
        match self {
            Outcome::Problem(p) => Some(p),
            _ => None,
        }
    }
}
