//! `vigocli secrets …`: the operator's vault. Lifecycle verbs (init, generate-certs, unlock,
//! lock, rotate, reset) work while locked; every other verb needs an unexpired unlock.

use argh::{ArgsInfo, FromArgs};

use super::audited::audited;
use super::output::Format;
use super::passphrase_cmd;
use super::{operator_actor, Context};
use crate::audit::Event;
use crate::exit::{CmdResult, Failure};
use crate::secrets::local::key_file_exists;
use crate::secrets::{gate, home, LocalVault, Provider, SecretsError};
use crate::util::reveal;

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "secrets")]
/// Manage the secrets vault (AES-256-GCM files under the master key, unlock-gated).
pub struct SecretsArgs {
    #[argh(subcommand)]
    command: SecretsCommand,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand)]
enum SecretsCommand {
    Init(InitArgs),
    GenerateCerts(super::certs_cmd::GenerateCertsArgs),
    Unlock(UnlockArgs),
    Lock(LockArgs),
    Rotate(RotateArgs),
    Reset(ResetArgs),
    Set(super::secrets_set::SetArgs),
    Reveal(RevealArgs),
    Delete(DeleteArgs),
    List(ListArgs),
    Notify(NotifyArgs),
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "notify")]
/// Tell the running server that a secret changed (`set` and `delete` do it themselves; a change
/// made while the server was down is applied at its next start).
struct NotifyArgs {
    /// secret key
    #[argh(positional)]
    key: String,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "init")]
/// Create the master key and set the unlock passphrase (keeps an existing key).
struct InitArgs {}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "unlock")]
/// Open the vault for 24 h (sliding) after checking the passphrase.
struct UnlockArgs {}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "lock")]
/// Close the vault now.
struct LockArgs {}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "rotate")]
/// Change the unlock passphrase (asks for the current one); locks the vault.
struct RotateArgs {}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "reset")]
/// Break-glass: set a new passphrase by proving read access to the master key.
struct ResetArgs {}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(
    subcommand,
    name = "reveal",
    note = "The value is written exactly as stored. On a terminal, text is printed with a line end added if it has none, and a binary value (not UTF-8) is refused: use --out FILE, or redirect or pipe stdout."
)]
/// Print a stored value (recorded in the audit log as secret.accessed).
struct RevealArgs {
    /// secret key
    #[argh(positional)]
    key: String,
    /// write the value to this file instead (mode 0600, replaced atomically)
    #[argh(option)]
    out: Option<String>,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "delete")]
/// Remove a stored value; refused while the config under --base-dir still uses it.
struct DeleteArgs {
    /// secret key
    #[argh(positional)]
    key: String,
    /// delete even though the config uses the key (the server will then refuse that config)
    #[argh(switch)]
    force: bool,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "list")]
/// List stored keys, sorted (never values).
struct ListArgs {
    /// output format: table (default; one key per line, no header) or json
    #[argh(option, short = 'o', default = "Format::Table")]
    output: Format,
}

pub fn run(ctx: &Context, args: SecretsArgs) -> CmdResult {
    if let Some(verb) = local_vault_verb(&args.command) {
        super::backend::local_only(ctx, verb).map_err(Failure::refused)?;
    }
    match args.command {
        SecretsCommand::Init(_) => passphrase_cmd::init(ctx),
        SecretsCommand::GenerateCerts(a) => super::certs_cmd::run(ctx, a),
        SecretsCommand::Unlock(_) => passphrase_cmd::unlock(ctx),
        SecretsCommand::Lock(_) => passphrase_cmd::lock(ctx),
        SecretsCommand::Rotate(_) => passphrase_cmd::rotate(ctx),
        SecretsCommand::Reset(_) => passphrase_cmd::reset(ctx),
        SecretsCommand::Notify(a) => {
            crate::placeholder::validate_key(&a.key).map_err(|e| Failure::usage(e.to_string()))?;
            let msg = super::admin_client::notify_rotation(ctx, &a.key).map_err(Failure::failed)?;
            println!("{msg}");
            Ok(())
        }
        gated => {
            // Without a vault there is nothing to unlock: say what to do first.
            if !key_file_exists(&ctx.paths.key_file).map_err(Failure::failed)? {
                return Err(Failure::failed(format!(
                    "there is no vault here (no master key at {}); run `vigocli secrets init` first, or check --base-dir",
                    ctx.paths.key_file.display()
                )));
            }
            // The gate and the audit log of a vault are those of its own base directory.
            home::check(&ctx.paths.secrets_dir, &ctx.paths.base).map_err(Failure::refused)?;
            gate::check_gate(&ctx.paths.sentinel).map_err(Failure::refused)?;
            let result = match gated {
                SecretsCommand::Set(a) => super::secrets_set::run(ctx, a),
                SecretsCommand::Reveal(a) => reveal(ctx, a),
                SecretsCommand::Delete(a) => delete(ctx, a),
                SecretsCommand::List(a) => list(ctx, a.output),
                _ => unreachable!("lifecycle verbs are handled above"),
            };
            if result.is_ok() {
                gate::open_gate(&ctx.paths.sentinel).map_err(Failure::failed)?;
            }
            result
        }
    }
}

/// The name of a verb that works on the local vault only (None: it works with any backend).
fn local_vault_verb(command: &SecretsCommand) -> Option<&'static str> {
    Some(match command {
        SecretsCommand::Init(_) => "init",
        SecretsCommand::Unlock(_) => "unlock",
        SecretsCommand::Lock(_) => "lock",
        SecretsCommand::Rotate(_) => "rotate",
        SecretsCommand::Reset(_) => "reset",
        SecretsCommand::Set(_) => "set",
        SecretsCommand::Reveal(_) => "reveal",
        SecretsCommand::Delete(_) => "delete",
        SecretsCommand::List(_) => "list",
        SecretsCommand::GenerateCerts(_) | SecretsCommand::Notify(_) => return None,
    })
}

/// Opens the vault for a value verb, first clearing what a `set` killed midway left behind.
pub(super) fn vault(ctx: &Context) -> Result<LocalVault, Failure> {
    let v = LocalVault::open(&ctx.paths.secrets_dir, &ctx.paths.key_file)
        .map_err(|e| Failure::failed(e.to_string()))?;
    if let Err(e) = v.sweep_stale_temps() {
        tracing::warn!(error = %e, "could not remove the temp files of an interrupted `secrets set`");
    }
    Ok(v)
}

pub(super) fn secrets_failure(e: SecretsError) -> Failure {
    Failure::failed(e.to_string())
}

fn reveal(ctx: &Context, a: RevealArgs) -> CmdResult {
    let v = vault(ctx)?;
    let dest = reveal::Dest::from_out(a.out.as_deref());
    // A refusal rolls the audit row back: nothing was revealed.
    let value = audited(ctx, Event::new(&operator_actor(), "secret.accessed", &a.key), || {
        let value = v.get(&a.key).map_err(secrets_failure)?;
        match reveal::refusal(&a.key, &value, &dest, "--out") {
            Some(why) => Err(Failure::failed(why)),
            None => Ok(value),
        }
    })?;
    let said = reveal::write(&a.key, &value, &dest).map_err(|e| {
        Failure::failed(format!(
            "the secret.accessed audit row is recorded but writing the value failed: {e}"
        ))
    })?;
    if let Some(said) = said {
        eprintln!("{said}");
    }
    Ok(())
}

fn delete(ctx: &Context, a: DeleteArgs) -> CmdResult {
    let v = vault(ctx)?;
    crate::placeholder::validate_key(&a.key)?;
    if !a.force {
        refuse_if_config_uses(&ctx.paths.config_dir, &a.key)?;
    }
    // The row commits first; only then does the file go. A crash in between over-records
    // (a logged delete that did not happen) rather than leaving an unaudited deletion.
    let actor = operator_actor();
    super::audited::audited_with(ctx, Event::new(&actor, "secret.deleted", &a.key), |tx| {
        v.version(&a.key).map(|_| ()).map_err(secrets_failure)?;
        crate::store::rotations::record(tx, &a.key, crate::util::time::unix_now(), &actor)
            .map_err(Failure::from)
    })?;
    v.delete(&a.key).map_err(|e| {
        Failure::failed(format!(
            "the secret.deleted audit row is recorded but the file could not be removed ({e})"
        ))
    })?;
    println!("Secret {:?} deleted.", a.key);
    Ok(())
}

/// Removes `key` from the vault when it is there (audited, like `secrets delete`); a vault that
/// cannot be opened (locked, elsewhere) is reported with the command that finishes the job.
pub fn delete_if_present(ctx: &Context, key: &str) -> CmdResult {
    let leftover = |why: String| {
        eprintln!("warning: {why}; remove the password with `vigocli secrets delete {key}`");
        Ok(())
    };
    let opened = home::check(&ctx.paths.secrets_dir, &ctx.paths.base)
        .and_then(|_| gate::check_gate(&ctx.paths.sentinel))
        .map_err(Failure::refused)
        .and_then(|_| vault(ctx));
    let v = match opened {
        Ok(v) => v,
        Err(f) => return leftover(f.message),
    };
    match crate::secrets::Provider::contains(&v, key) {
        Ok(false) => return Ok(()),
        Ok(true) => {}
        Err(e) => return leftover(e.to_string()),
    }
    audited(ctx, Event::new(&operator_actor(), "secret.deleted", key), || Ok(()))?;
    match v.delete(key) {
        Ok(()) => {
            println!("Password {key:?} removed from the vault.");
            Ok(())
        }
        Err(e) => leftover(e.to_string()),
    }
}

/// The server loads this tree at start and on publish, and refuses it whole when a referenced
/// secret is gone: deleting one that is still used would break the next restart.
fn refuse_if_config_uses(config_dir: &std::path::Path, key: &str) -> CmdResult {
    // A missing or broken tree cannot be checked; the server would not load it either.
    let Ok(tree) = crate::config::load_tree(config_dir) else { return Ok(()) };
    let uses = tree.uses_of_secret(key);
    if uses.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = uses.iter().take(5).map(|u| format!("  {u}")).collect();
    Err(Failure::failed(format!(
        "secret:{key} is still used by the config in {}:\n{}{}\nthe server would refuse that config at its next start or publish; remove the references and publish first, or pass --force",
        config_dir.display(),
        shown.join("\n"),
        if uses.len() > 5 { format!("\n  … and {} more", uses.len() - 5) } else { String::new() }
    )))
}

fn list(ctx: &Context, format: Format) -> CmdResult {
    let keys = vault(ctx)?.list().map_err(secrets_failure)?;
    if format == Format::Json {
        let items = keys.iter().map(|k| serde_json::json!({ "key": k })).collect();
        return super::output::list(format, items, &[], "");
    }
    // One key per line and no header, so `for k in $(vigocli secrets list)` keeps working.
    if keys.is_empty() {
        eprintln!("no secrets in {}", ctx.paths.secrets_dir.display());
    }
    for key in keys {
        println!("{key}");
    }
    Ok(())
}
