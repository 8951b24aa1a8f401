//! `vigocli config validate [DIR] [--envoy NAME]`: load and check a .vgo tree offline, against
//! the local vault when there is one. Prints markers, never secret values.
//! `vigocli config publish`: the running server reloads its config directory.

use std::path::PathBuf;

use argh::{ArgsInfo, FromArgs};

use super::Context;
use crate::config::{self, ConfigError};
use crate::crypto::SecretBytes;
use crate::exit::{CmdResult, Failure};
use crate::secrets::{LocalVault, Provider, SecretsError};

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
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "publish")]
/// Ask the running server to reload its config directory: validate, compile, bump the epoch.
/// A rejected config leaves the previous one serving.
struct PublishArgs {}

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
        ConfigCommand::Publish(_) => super::fleet_cmd::publish(ctx),
    }
}

fn validate(ctx: &Context, args: ValidateArgs) -> CmdResult {
    let dir = args.dir.map_or_else(|| ctx.paths.config_dir.clone(), PathBuf::from);
    let has_vault = crate::secrets::local::key_file_exists(&ctx.paths.key_file).map_err(Failure::failed)?;
    let provider: Box<dyn Provider> = if has_vault {
        Box::new(
            LocalVault::open(&ctx.paths.secrets_dir, &ctx.paths.key_file)
                .map_err(|e| Failure::failed(e.to_string()))?,
        )
    } else {
        Box::new(NoVault { base: ctx.paths.base.display().to_string() })
    };
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

/// Stands in when there is no vault: any `secret:` ref is an error that says so.
struct NoVault {
    base: String,
}

impl NoVault {
    fn err(&self) -> SecretsError {
        SecretsError::Backend(format!(
            "no vault was found under --base-dir {} (run `vigocli secrets init`, or point --base-dir at the server's state)",
            self.base
        ))
    }
}

impl Provider for NoVault {
    fn get(&self, _: &str) -> Result<SecretBytes, SecretsError> {
        Err(self.err())
    }
    fn version(&self, _: &str) -> Result<String, SecretsError> {
        Err(self.err())
    }
    fn list(&self) -> Result<Vec<String>, SecretsError> {
        Err(self.err())
    }
}
