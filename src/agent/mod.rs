//! `vigo-agent`: the agent on every managed host ("envoy").

mod apply_cmd;
mod carrier;
mod client;
mod doctor;
pub mod engine;
mod enroll;
mod local_apply;
mod offline;
mod renew;
mod restore;
mod run;
mod selfcheck;
mod set_server;
mod state;
mod tasks;
pub mod traits;
mod update;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use argh::{ArgsInfo, FromArgs};

use crate::exit::{finish, hoist_options, parse_args, CmdResult, Failure};
use crate::logging::{self, LogFormat};
use crate::paths::{self, AgentPaths};

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(
    note = "Environment: VIGO_BASE_DIR (the state directory), VIGO_CONFIG (the config file, default /etc/vigo/vigo.yaml), VIGO_LOG (log level: error, warn, info, debug or trace), VIGO_DNS_SERVERS (DNS servers to ask instead of those in /etc/resolv.conf). docs/OPERATIONS.md describes each."
)]
/// The Vigo agent: enroll with a server, check in and converge this host, or apply a local
/// config without a server. Exit codes: 0 converged/success, 1 failed, 2 usage, 3 refused.
pub(crate) struct AgentArgs {
    /// print the version and exit
    #[argh(switch)]
    #[allow(dead_code)] // read by the command-line front door before argh parses (src/argv)
    version: bool,
    /// state directory (default /var/lib/vigo, or $VIGO_BASE_DIR)
    #[argh(option)]
    base_dir: Option<String>,
    /// config file (default /etc/vigo/vigo.yaml when it exists, or $VIGO_CONFIG); its
    /// `agent.server` replaces the server address recorded at enrollment
    #[argh(option)]
    config: Option<String>,
    /// log format on stderr: human (default) or json
    #[argh(option, default = "LogFormat::Human")]
    log_format: LogFormat,
    #[argh(subcommand)]
    command: AgentCommand,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand)]
enum AgentCommand {
    Enroll(EnrollArgs),
    Run(RunArgs),
    Resolve(ResolveArgs),
    Apply(ApplyArgs),
    SetServer(SetServerArgs),
    Doctor(DoctorArgs),
    Restore(RestoreArgs),
    Traits(TraitsArgs),
    Status(StatusArgs),
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "status")]
/// What this agent keeps for runs while the server cannot be reached: the cached bundle and
/// its age, the run reports waiting to be sent, and when the server last answered.
struct StatusArgs {
    /// output format: table (default) or json
    #[argh(option, short = 'o', default = "crate::cli::output::Format::Table")]
    output: crate::cli::output::Format,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "traits")]
/// Print this host's traits as JSON, every collector run now (what the server receives: OS,
/// kernel, network, CPU, memory, mounts, users and more; docs/OPERATIONS.md, Traits).
struct TraitsArgs {}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "restore")]
/// Put back an earlier content of a file managed with backup: true (the content it replaces
/// is kept in turn). Exit 0 restored, 1 nothing kept, 2 no such version.
struct RestoreArgs {
    /// the file's path on this host
    #[argh(positional)]
    path: String,
    /// which earlier content: 1 is the newest (default 1)
    #[argh(option, default = "1")]
    version: usize,
    /// list the earlier contents kept, change nothing
    #[argh(switch)]
    list: bool,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "set-server")]
/// Point an enrolled agent at another server address (a moved server, a new name): the new
/// address is tried with a signed check-in first and recorded only if it answers as this
/// envoy's server.
struct SetServerArgs {
    /// the server's agent address, HOST:PORT
    #[argh(positional)]
    server: String,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "doctor")]
/// Check this host's enrollment: identity key, client certificate, pinned CA, clock and the
/// server (one signed check-in; nothing is applied). Exit 0 when nothing failed, 1 otherwise.
struct DoctorArgs {
    /// output format: table (default) or json
    #[argh(option, short = 'o', default = "crate::cli::output::Format::Table")]
    output: crate::cli::output::Format,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "enroll")]
/// Enroll this host with a one-time token (read from a file or stdin, never argv).
struct EnrollArgs {
    /// server agent address, HOST:PORT
    #[argh(option)]
    server: String,
    /// file holding the token, or - for stdin
    #[argh(option)]
    token_file: String,
    /// envoy name (default: this host's name)
    #[argh(option)]
    name: Option<String>,
    /// replace an existing enrollment with a new identity
    #[argh(switch)]
    force: bool,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "run")]
/// Check in and apply every interval; --once for a single cycle.
struct RunArgs {
    /// one check-in and apply, then exit 0 if converged, 1 if anything failed
    #[argh(switch)]
    once: bool,
    /// report what would change, change nothing
    #[argh(switch)]
    noop: bool,
    /// apply into this directory instead of / (image builds, tests)
    #[argh(option, default = "String::from(\"/\")")]
    root: String,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(
    subcommand,
    name = "resolve",
    note = "With --reveal the value is written exactly as served. On a terminal, text is printed with a line end added if it has none, and a binary value (not UTF-8) is refused: use --out FILE, or redirect or pipe stdout."
)]
/// Ask the server for one secret this envoy is entitled to (a diagnostic).
struct ResolveArgs {
    /// secret key
    #[argh(positional)]
    key: String,
    /// print the value itself
    #[argh(switch)]
    reveal: bool,
    /// write the value to this file (mode 0600, replaced atomically); implies --reveal
    #[argh(option)]
    out: Option<String>,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "apply")]
/// Masterless: compile a local .vgo tree for one envoy name and apply it, no server involved.
struct ApplyArgs {
    /// the config directory (holding nodes.vgo and modules/)
    #[argh(positional)]
    config_dir: String,
    /// envoy name to compile the config for
    #[argh(option)]
    envoy: String,
    /// apply into this directory instead of /
    #[argh(option, default = "String::from(\"/\")")]
    root: String,
    /// report what would change, change nothing
    #[argh(switch)]
    noop: bool,
}

pub fn main(command: &str, args: &[&str]) -> ExitCode {
    let args = hoist_options(args, &["--base-dir", "--config", "--log-format"]);
    let parsed: AgentArgs = match parse_args(command, &args) {
        Ok(p) => p,
        Err(code) => return code,
    };
    logging::init(parsed.log_format);
    let settings = match crate::settings::load_for(parsed.config.as_deref()) {
        Ok(loaded) => loaded.settings,
        Err(e) => return finish(Err(Failure::usage(e))),
    };
    let base = settings.base_dir(parsed.base_dir.as_deref(), paths::AGENT_DEFAULT_BASE);
    let mut paths = AgentPaths::new(&base);
    paths.server_override = settings.agent.server.clone();
    paths.push = settings.agent.push;
    paths.offline_max_age_secs = settings.agent.offline_max_age();
    paths.release_key_file = settings.release.public_key_file();
    if let Err(e) = crate::release::tamper::forbid_core_dumps() {
        tracing::warn!(error = %e, "core dumps stay possible: a dump would hold secret values");
    }
    finish(run(&paths, parsed.command))
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(format!("cannot start the runtime: {e}")))
}

fn run(paths: &AgentPaths, command: AgentCommand) -> CmdResult {
    match command {
        AgentCommand::Enroll(a) => runtime()?.block_on(enroll::enroll(
            paths,
            enroll::EnrollRequest {
                server: a.server,
                token_file: a.token_file,
                name: a.name,
                force: a.force,
            },
        )),
        AgentCommand::Run(a) => {
            crate::util::interrupt::watch()?;
            runtime()?.block_on(run::run(
                paths,
                run::RunRequest { once: a.once, noop: a.noop, root: root_dir(&a.root)? },
            ))
        }
        AgentCommand::Resolve(a) => {
            runtime()?.block_on(run::resolve(paths, &a.key, a.reveal, a.out.as_deref()))
        }
        AgentCommand::SetServer(a) => runtime()?.block_on(set_server::set_server(paths, &a.server)),
        AgentCommand::Doctor(a) => {
            runtime()?.block_on(doctor::run(paths, a.output == crate::cli::output::Format::Json))
        }
        AgentCommand::Status(a) => offline::print_status(paths, a.output == crate::cli::output::Format::Json),
        AgentCommand::Traits(_) => {
            let collected = traits::collect(true, None);
            let text =
                serde_json::to_string_pretty(&collected).map_err(|e| Failure::failed(e.to_string()))?;
            println!("{text}");
            Ok(())
        }
        AgentCommand::Restore(a) => restore::restore(
            paths,
            restore::RestoreRequest { path: a.path, version: a.version, list: a.list },
        ),
        AgentCommand::Apply(a) => {
            crate::util::interrupt::watch()?;
            apply_cmd::apply(
                paths,
                apply_cmd::ApplyRequest {
                    config_dir: PathBuf::from(a.config_dir),
                    envoy: a.envoy,
                    root: root_dir(&a.root)?,
                    noop: a.noop,
                },
            )
        }
    }
}

/// `--root`: an existing directory, made absolute here so that every path the run prints
/// and confines to is unambiguous whatever the working directory.
fn root_dir(given: &str) -> Result<PathBuf, Failure> {
    if given.is_empty() {
        return Err(Failure::usage("--root is empty; give a directory (default /)"));
    }
    let root = std::path::absolute(given).map_err(|e| Failure::usage(format!("--root {given:?}: {e}")))?;
    if !root.is_dir() {
        return Err(Failure::usage(format!(
            "--root {} is not an existing directory; create it first",
            root.display()
        )));
    }
    Ok(root)
}
