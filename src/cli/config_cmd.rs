//! `vigocli config validate [DIR] [--envoy NAME]`: load and check a .vgo tree offline, against
//! the secrets backend (the local vault when there is one, or isopass). Prints markers, never secret values.
//! `vigocli config publish`: the running server reloads its config directory. History, diff,
//! rollback, freeze and trace are in `history_cmd`.

use std::path::PathBuf;

use argh::{ArgsInfo, FromArgs};

use super::{history_cmd, Context};
use crate::config::{self, ConfigError};
use crate::exit::{CmdResult, Failure};

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "config")]
/// Work with the .vgo configuration tree.
pub struct ConfigArgs {
    #[argh(subcommand)]
    command: ConfigCommand,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand)]
enum ConfigCommand {
    Validate(ValidateArgs),
    Publish(PublishArgs),
    History(history_cmd::HistoryArgs),
    Diff(history_cmd::DiffArgs),
    Rollback(history_cmd::RollbackArgs),
    Freeze(history_cmd::FreezeArgs),
    Unfreeze(history_cmd::UnfreezeArgs),
    Trace(history_cmd::TraceArgs),
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "publish")]
/// Ask the running server to reload its config directory: validate, compile, bump the epoch,
/// and keep the tree as a new revision (`config history`). A rejected config leaves the
/// previous one serving.
pub struct PublishArgs {
    /// why (kept with the revision, shown by `config history`)
    #[argh(option, short = 'm')]
    pub message: Option<String>,
    /// publish through a freeze (`config freeze`); audited as forced
    #[argh(switch)]
    pub force: bool,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "validate")]
/// Check a config tree: print each envoy pattern with its resource count (exit 0), or every
/// error as file:line:col: message (exit 1).
struct ValidateArgs {
    /// the config directory (default <base-dir>/config)
    #[argh(positional)]
    dir: Option<String>,
    /// compile the bundle for this envoy name and print it as JSON (secret markers, never values)
    #[argh(option)]
    envoy: Option<String>,
}

pub fn run(ctx: &Context, args: ConfigArgs) -> CmdResult {
    match args.command {
        ConfigCommand::Validate(v) => validate(ctx, v),
        ConfigCommand::Publish(p) => super::fleet_cmd::publish(ctx, p),
        ConfigCommand::History(a) => history_cmd::history(ctx, a),
        ConfigCommand::Diff(a) => history_cmd::diff(ctx, a),
        ConfigCommand::Rollback(a) => history_cmd::rollback(ctx, a),
        ConfigCommand::Freeze(a) => history_cmd::freeze(ctx, a),
        ConfigCommand::Unfreeze(_) => history_cmd::unfreeze(ctx),
        ConfigCommand::Trace(a) => history_cmd::trace(ctx, a),
    }
}

fn validate(ctx: &Context, args: ValidateArgs) -> CmdResult {
    let dir = args.dir.map_or_else(|| ctx.paths.config_dir.clone(), PathBuf::from);
    let provider = super::backend::open(ctx).map_err(Failure::failed)?;
    let tree = config::load_tree(&dir).map_err(|e| report(&dir, &e))?;
    match args.envoy {
        Some(name) => {
            let bundle = tree.compile(&name, provider.as_ref()).map_err(|e| report(&dir, &e))?;
            let json = serde_json::to_string_pretty(&bundle).map_err(|e| Failure::failed(e.to_string()))?;
            println!("{json}");
        }
        None => {
            let counts = tree.validate_all(provider.as_ref()).map_err(|e| report(&dir, &e))?;
            for (pattern, n) in &counts {
                println!("{pattern}: {n} resource{}", if *n == 1 { "" } else { "s" });
            }
            println!("config ok: {} envoy patterns, content sha256 {}", counts.len(), tree.content_hash());
        }
    }
    Ok(())
}

/// Prints every error, one per line, and returns the summary failure.
fn report(dir: &std::path::Path, errors: &[ConfigError]) -> Failure {
    for e in errors {
        eprintln!("{e}");
    }
    let s = if errors.len() == 1 { "" } else { "s" };
    Failure::failed(format!("{} error{s} in {}", errors.len(), dir.display()))
}
