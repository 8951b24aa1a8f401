//! `vigocli secrets set raw|password`: getting a value into the vault. `raw` takes any bytes
//! (a DER certificate, a binary key) from `--from-file` or a pipe, kept exactly as given, or a
//! line of text from a hidden prompt; `password` takes a human-typed credential twice.

use argh::{ArgsInfo, FromArgs};

use super::audited::audited_with;
use super::passphrase_cmd::ask;
use super::{operator_actor, Context};
use crate::argv::Problem;
use crate::audit::Event;
use crate::crypto::SecretBytes;
use crate::exit::{CmdResult, Failure};
use crate::util::prompt;

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "set")]
/// Store a value: `set raw <key>` verbatim, `set password <key>` with complexity rules.
pub struct SetArgs {
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
#[argh(
    subcommand,
    name = "raw",
    note = "From --from-file or a pipe the value is stored exactly as given, byte for byte: text or binary (a DER certificate, a key), a trailing newline included. `echo VALUE | vigocli secrets set raw KEY` therefore stores VALUE plus a newline; pass --trim-newline to drop one trailing newline (\\n or \\r\\n), or use `printf %s VALUE`. The hidden prompt reads one line of text, without its newline."
)]
/// Store a value (up to 1 MiB, text or binary) verbatim, from --from-file, piped stdin, or a hidden prompt.
struct SetRawArgs {
    /// secret key, e.g. vigo/db/dsn
    #[argh(positional)]
    key: String,
    /// read the value from this file (exactly as it is, any bytes)
    #[argh(option)]
    from_file: Option<String>,
    /// drop one trailing newline (\n or \r\n) from a value read from --from-file or a pipe
    #[argh(switch)]
    trim_newline: bool,
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

pub fn run(ctx: &Context, args: SetArgs) -> CmdResult {
    match args.kind {
        SetKind::Raw(a) => set_raw(ctx, a),
        SetKind::Password(a) => set_password(ctx, a),
    }
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

/// Whether a value read whole looks like one line of text with the newline `echo` adds: the
/// operator is told it was kept (it rarely belongs to a password or a token).
fn ends_like_echo(value: &[u8]) -> bool {
    let body = &value[..prompt::without_newline_len(value)];
    body.len() < value.len() && !body.contains(&b'\n') && std::str::from_utf8(body).is_ok()
}

fn set_raw(ctx: &Context, a: SetRawArgs) -> CmdResult {
    crate::placeholder::validate_key(&a.key)?;
    let limit = crate::secrets::local::MAX_VALUE_LEN;
    // File and pipe: one rule, the bytes as given. The prompt reads a line of text.
    let mut value = match &a.from_file {
        Some(f) => std::fs::File::open(f)
            .and_then(|file| prompt::read_value(file, limit, "the file"))
            .map_err(|e| Failure::failed(format!("{f}: {e}")))?,
        None if std::io::IsTerminal::is_terminal(&std::io::stdin()) => ask("Enter value: ")?.into(),
        None => prompt::read_value(std::io::stdin().lock(), limit, "standard input")
            .map_err(|e| Failure::failed(e.to_string()))?,
    };
    if a.trim_newline {
        value.truncate(prompt::without_newline_len(value.expose()));
    } else if ends_like_echo(value.expose()) {
        eprintln!(
            "note: the value ends with a newline, stored as part of it ({} bytes); pass --trim-newline to drop it (`echo` adds one; `printf %s` does not)",
            value.len()
        );
    }
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
    store_value(ctx, &a.key, &pw.into())
}

/// Writes the value and its audit row, then tells a running server. The sealed value is staged
/// in a hidden temp file, the `secret.set` row commits, and only then is the value renamed into
/// place: a process killed at any point leaves the old value, or the new one with its audit row.
/// (Undoing the write after a failed commit could not survive a kill between the two.)
fn store_value(ctx: &Context, key: &str, value: &SecretBytes) -> CmdResult {
    let v = super::secrets_cmd::vault(ctx)?;
    let staged = v.stage(key, value.expose()).map_err(super::secrets_cmd::secrets_failure)?;
    let detail = serde_json::json!({ "bytes": value.len(), "text": value.as_text().is_some() });
    // On failure `staged` is dropped, which removes the temp file: nothing changed.
    // The rotation is recorded with the audit row: a server that is down applies it at start.
    let actor = operator_actor();
    audited_with(ctx, Event::new(&actor, "secret.set", key).detail(detail), |tx| {
        crate::store::rotations::record(tx, key, crate::util::time::unix_now(), &actor).map_err(Failure::from)
    })?;
    staged.install().map_err(|e| {
        Failure::failed(format!(
            "the secret.set audit row is recorded but the value could not be put in place ({e}); the previous value stays"
        ))
    })?;
    match value.as_text() {
        Some(_) => println!("Secret {key:?} stored."),
        None => println!("Secret {key:?} stored ({} bytes, binary).", value.len()),
    }
    match super::admin_client::notify_rotation(ctx, key) {
        Ok(msg) => println!("{msg}"),
        Err(why) => {
            println!("No server notified ({why}); envoys pick the value up at the next publish or restart.")
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{ends_like_echo, password_rule_violation};

    #[test]
    fn password_rules_name_the_failure() {
        assert!(password_rule_violation("Short1!").unwrap().contains("12"));
        assert!(password_rule_violation("alllowercase1!").unwrap().contains("uppercase"));
        assert!(password_rule_violation("ALLUPPERCASE1!").unwrap().contains("lowercase"));
        assert!(password_rule_violation("NoDigitsHere!!").unwrap().contains("digit"));
        assert!(password_rule_violation("NoSpecials1234").unwrap().contains("special"));
        assert_eq!(password_rule_violation("Str0ng-Passw0rd!"), None);
    }

    #[test]
    fn only_one_line_of_text_with_a_newline_draws_the_note() {
        assert!(ends_like_echo(b"hunter2\n") && ends_like_echo(b"hunter2\r\n"));
        for quiet in [&b"hunter2"[..], b"-----BEGIN KEY-----\nAAA\n-----END KEY-----\n", b"\x30\xff\n"] {
            assert!(!ends_like_echo(quiet), "{quiet:?}");
        }
    }
}
