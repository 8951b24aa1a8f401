//! `vigo`: one executable, three roles. The role comes from the name it was started as
//! (`vigosrv`, `vigocli`, `vigo-agent`) or, as `vigo`, from the first argument. Dispatch
//! happens before any runtime, logging or configuration exists.

#![forbid(unsafe_code)]

mod advisories;
mod agent;
mod argv;
mod audit;
mod auth;
mod bundle;
mod cli;
mod config;
mod crypto;
mod doctor;
mod edits;
mod exit;
mod integrations;
mod logging;
mod manual;
mod paths;
mod pki;
mod placeholder;
mod proto;
mod push_wire;
mod quickstart;
mod release;
mod secrets;
mod server;
mod settings;
mod store;
mod tlsconf;
mod util;
mod wire;

use std::process::ExitCode;

use exit::EXIT_USAGE;

// glibc's malloc cost the fleet benchmark about a quarter of its throughput (arena locks, chunk
// consolidation; 700 -> 955 cycles/s with mimalloc, docs/BENCHMARKS.md). Built without
// transparent huge pages, which would grow a one-shot agent run's RSS in 2 MB steps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROLES_HELP: &str = "\
vigo — configuration management that keeps secrets out of configs, wires, disks and logs

Usage: vigo <role> [args...]   (or run it as vigosrv, vigocli or vigo-agent)

Roles:
  server       the Vigo server (also installed as `vigosrv`)
  cli          the operator command line (also installed as `vigocli`)
  agent        the agent on every managed host (also installed as `vigo-agent`)
  quickstart   run a whole demo (vault, server, agent) on 127.0.0.1 in a temp dir

Options:
  --version    print the version
  -h, --help   print this help

Run `vigo <role> --help` for the options of a role.";

/// Rust ignores SIGPIPE, so `println!` into a closed pipe panics; end quietly instead.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(exit::EXIT_BROKEN_PIPE.into());
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let argv: Vec<String> = match std::env::args_os().map(|a| a.into_string()).collect() {
        Ok(v) => v,
        Err(bad) => {
            eprintln!("error: argument {bad:?} is not valid UTF-8");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let invoked = argv
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let rest: Vec<&str> = argv.iter().skip(1).map(String::as_str).collect();
    match invoked.as_str() {
        "vigosrv" => server::main("vigosrv", &rest),
        "vigocli" => cli::main("vigocli", &rest),
        "vigo-agent" => agent::main("vigo-agent", &rest),
        "vigo" => by_subcommand(&rest),
        other => {
            eprintln!("error: started as {other:?}; vigo must be started as vigo, vigosrv, vigocli or vigo-agent\n\n{ROLES_HELP}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn by_subcommand(args: &[&str]) -> ExitCode {
    let Some((role, rest)) = args.split_first() else {
        eprintln!("{ROLES_HELP}");
        return ExitCode::from(EXIT_USAGE);
    };
    match *role {
        "server" => server::main("vigo server", rest),
        "cli" => cli::main("vigo cli", rest),
        "agent" => agent::main("vigo agent", rest),
        "quickstart" => quickstart::main("vigo quickstart", rest),
        // Hidden: the man pages and completions packaging/build.sh ships (src/manual).
        "package-docs" => manual::main(rest),
        "--version" | "-V" | "version" => {
            println!("{}", argv::version_line());
            ExitCode::SUCCESS
        }
        "--help" | "-h" | "help" => {
            println!("{ROLES_HELP}");
            ExitCode::SUCCESS
        }
        other => {
            let near = argv::did_you_mean(other, &["server", "cli", "agent", "quickstart"]);
            eprintln!("error: unknown role {other:?}{near}\n\n{ROLES_HELP}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
