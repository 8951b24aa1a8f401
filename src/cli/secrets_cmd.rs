//! `vigocli secrets …`: the operator's vault. Lifecycle verbs (init, generate-certs, unlock,
//! lock, rotate, reset) work while locked; every other verb needs an unexpired unlock.

use argh::{ArgsInfo, FromArgs};

use super::audited::audited;
use super::output::Format;
use super::passphrase_cmd::{self, ask};
use super::{operator_actor, Context};
use crate::argv::Problem;
use crate::audit::Event;
use crate::crypto::SecretString;
use crate::exit::{CmdResult, Failure};
use crate::secrets::local::key_file_exists;
use crate::secrets::{gate, home, LocalVault, Provider, SecretsError};
use crate::util::prompt;

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
    Set(SetArgs),
    Reveal(RevealArgs),
    Delete(DeleteArgs),
    List(ListArgs),
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
#[argh(subcommand, name = "set")]
/// Store a value: `set raw <key>` verbatim, `set password <key>` with complexity rules.
struct SetArgs {
    #[argh(subcommand)]
    kind: SetKind,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand)]
enum SetKind {
    Raw(SetRawArgs),
    Password(SetPasswordArgs),
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "raw")]
/// Store a text value (UTF-8, up to 1 MiB) verbatim, from --from-file, piped stdin, or a hidden prompt.
struct SetRawArgs {
    /// secret key, e.g. vigo/db/dsn
    #[argh(positional)]
    key: String,
    /// read the value from this file (verbatim)
    #[argh(option)]
    from_file: Option<String>,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "password")]
/// Store a human-typed credential: 12+ characters with upper, lower, digit and special.
struct SetPasswordArgs {
    /// secret key, e.g. vigo/os-users/dan
    #[argh(positional)]
    key: String,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "reveal")]
/// Print a stored value (recorded in the audit log as secret.accessed).
struct RevealArgs {
    /// secret key
    #[argh(positional)]
    key: String,
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

/// `secrets set KEY VALUE`, the form other tools use, is the commonest slip: say which kinds
/// there are and how a value gets in, without repeating the words (the second may be the value).
pub fn set_advice(problem: &Problem) -> Option<String> {
    let path = match problem {
        Problem::UnknownCommand { path, .. }
        | Problem::MissingCommand { path, .. }
        | Problem::UnknownFlag { path, .. } => path,
        _ => return None,
    };
    if !path.ends_with(&["secrets".to_string(), "set".to_string()]) {
        return None;
    }
    let cmd = path.join(" ");
    Some(format!(
        "error: `{cmd}` takes the kind of value first, then the key; the value itself never goes on the command line:
  {cmd} raw KEY                   asks for the value at a hidden prompt
  COMMAND | {cmd} raw KEY         reads it from a pipe
  {cmd} raw KEY --from-file FILE  reads it from a file
  {cmd} password KEY              a password typed twice (12+ characters: upper, lower, digit, special)
Run `{cmd} raw --help` for details."
    ))
}

pub fn run(ctx: &Context, args: SecretsArgs) -> CmdResult {
    match args.command {
        SecretsCommand::Init(_) => passphrase_cmd::init(ctx),
        SecretsCommand::GenerateCerts(a) => super::certs_cmd::run(ctx, a),
        SecretsCommand::Unlock(_) => passphrase_cmd::unlock(ctx),
        SecretsCommand::Lock(_) => passphrase_cmd::lock(ctx),
        SecretsCommand::Rotate(_) => passphrase_cmd::rotate(ctx),
        SecretsCommand::Reset(_) => passphrase_cmd::reset(ctx),
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
                SecretsCommand::Set(SetArgs { kind: SetKind::Raw(a) }) => set_raw(ctx, a),
                SecretsCommand::Set(SetArgs { kind: SetKind::Password(a) }) => set_password(ctx, a),
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

/// Opens the vault for a value verb, first clearing what a `set` killed midway left behind.
fn vault(ctx: &Context) -> Result<LocalVault, Failure> {
    let v = LocalVault::open(&ctx.paths.secrets_dir, &ctx.paths.key_file)
        .map_err(|e| Failure::failed(e.to_string()))?;
    if let Err(e) = v.sweep_stale_temps() {
        tracing::warn!(error = %e, "could not remove the temp files of an interrupted `secrets set`");
    }
    Ok(v)
}

fn secrets_failure(e: SecretsError) -> Failure {
    Failure::failed(e.to_string())
}

/// Checks a human-typed password and names the first rule it breaks.
pub fn password_rule_violation(pw: &str) -> Option<&'static str> {
    if pw.chars().count() < 12 {
        return Some("it must be at least 12 characters long");
    }
    if !pw.chars().any(|c| c.is_uppercase()) {
        return Some("it must contain an uppercase letter");
    }
    if !pw.chars().any(|c| c.is_lowercase()) {
        return Some("it must contain a lowercase letter");
    }
    if !pw.chars().any(|c| c.is_ascii_digit()) {
        return Some("it must contain a digit");
    }
    if !pw.chars().any(|c| !c.is_alphanumeric() && !c.is_whitespace()) {
        return Some("it must contain a special character (e.g. !#%&*-_)");
    }
    None
}

fn set_raw(ctx: &Context, a: SetRawArgs) -> CmdResult {
    crate::placeholder::validate_key(&a.key)?;
    let limit = crate::secrets::local::MAX_VALUE_LEN;
    let value = match &a.from_file {
        Some(f) => std::fs::File::open(f)
            .and_then(|file| prompt::read_value(file, limit, "the file"))
            .map_err(|e| Failure::failed(format!("{f}: {e}")))?,
        None if std::io::IsTerminal::is_terminal(&std::io::stdin()) => ask("Enter value: ")?,
        None => prompt::read_all_stdin(limit).map_err(|e| Failure::failed(e.to_string()))?,
    };
    if value.is_empty() {
        return Err(Failure::failed(
            "refusing to store an empty value; use `vigocli secrets delete` to remove a key",
        ));
    }
    store_value(ctx, &a.key, &value)
}

fn set_password(ctx: &Context, a: SetPasswordArgs) -> CmdResult {
    crate::placeholder::validate_key(&a.key)?;
    let pw = ask("Enter password: ")?;
    if let Some(rule) = password_rule_violation(pw.expose()) {
        return Err(Failure::failed(format!("password rejected: {rule}; nothing was stored")));
    }
    let again = ask("Confirm password: ")?;
    if again.expose() != pw.expose() {
        return Err(Failure::failed("the two passwords differ; nothing was stored"));
    }
    store_value(ctx, &a.key, &pw)
}

/// Writes the value and its audit row, then tells a running server. The sealed value is staged
/// in a hidden temp file, the `secret.set` row commits, and only then is the value renamed into
/// place: a process killed at any point leaves the old value, or the new one with its audit row.
/// (Undoing the write after a failed commit could not survive a kill between the two.)
fn store_value(ctx: &Context, key: &str, value: &SecretString) -> CmdResult {
    let v = vault(ctx)?;
    let staged = v.stage(key, value.expose().as_bytes()).map_err(secrets_failure)?;
    let detail = serde_json::json!({ "bytes": value.len() });
    // On failure `staged` is dropped, which removes the temp file: nothing changed.
    audited(ctx, Event::new(&operator_actor(), "secret.set", key).detail(detail), || Ok(()))?;
    staged.install().map_err(|e| {
        Failure::failed(format!(
            "the secret.set audit row is recorded but the value could not be put in place ({e}); the previous value stays"
        ))
    })?;
    println!("Secret {key:?} stored.");
    match super::admin_client::notify_rotation(ctx, key) {
        Ok(msg) => println!("{msg}"),
        Err(why) => {
            println!("No server notified ({why}); envoys pick the value up at the next publish or restart.")
        }
    }
    Ok(())
}

fn reveal(ctx: &Context, a: RevealArgs) -> CmdResult {
    let v = vault(ctx)?;
    let value = audited(ctx, Event::new(&operator_actor(), "secret.accessed", &a.key), || {
        v.get(&a.key).map_err(secrets_failure)
    })?;
    println!("{}", value.expose());
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
    audited(ctx, Event::new(&operator_actor(), "secret.deleted", &a.key), || {
        v.version(&a.key).map(|_| ()).map_err(secrets_failure)
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

#[cfg(test)]
mod tests {
    use super::password_rule_violation;

    #[test]
    fn password_rules_name_the_failure() {
        assert!(password_rule_violation("Short1!").unwrap().contains("12"));
        assert!(password_rule_violation("alllowercase1!").unwrap().contains("uppercase"));
        assert!(password_rule_violation("ALLUPPERCASE1!").unwrap().contains("lowercase"));
        assert!(password_rule_violation("NoDigitsHere!!").unwrap().contains("digit"));
        assert!(password_rule_violation("NoSpecials1234").unwrap().contains("special"));
        assert_eq!(password_rule_violation("Str0ng-Passw0rd!"), None);
    }
}
