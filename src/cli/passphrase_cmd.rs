//! `vigocli secrets init|unlock|lock|rotate|reset`: the master key and the unlock passphrase.
//! These verbs work while the vault is locked; wrong passphrases are throttled
//! (`secrets::throttle`) and every change is audited in the vault's own database.

use super::audited::audited;
use super::{operator_actor, Context};
use crate::audit::Event;
use crate::crypto::SecretString;
use crate::exit::{CmdResult, Failure};
use crate::secrets::local::key_file_exists;
use crate::secrets::{gate, home, throttle, LocalVault, SecretsError};
use crate::util::prompt;
use crate::util::time::unix_now;

fn secrets_failure(e: SecretsError) -> Failure {
    Failure::failed(e.to_string())
}

pub(super) fn ask(prompt_text: &str) -> Result<SecretString, Failure> {
    prompt::read_line(prompt_text, true).map_err(|e| Failure::failed(e.to_string()))
}

/// Asks for a new passphrase twice; refuses empty or mismatched input.
fn ask_new_passphrase() -> Result<SecretString, Failure> {
    let first = ask("Enter unlock passphrase: ")?;
    let second = ask("Confirm passphrase: ")?;
    if first.expose() != second.expose() {
        return Err(Failure::failed("the two passphrases differ; nothing was changed"));
    }
    if first.len() < 8 {
        return Err(Failure::failed(
            "the unlock passphrase must be at least 8 characters; nothing was changed",
        ));
    }
    Ok(first)
}

pub(super) fn init(ctx: &Context) -> CmdResult {
    let p = &ctx.paths;
    let key_exists = key_file_exists(&p.key_file).map_err(Failure::failed)?;
    if !key_exists {
        // A new key could never open what the lost one sealed: say so instead of stranding them.
        let stranded = LocalVault::list_keys_in(&p.secrets_dir).map_err(secrets_failure)?;
        if let Some(first) = stranded.first() {
            return Err(Failure::refused(format!(
                "{} holds {} sealed secret(s) (e.g. {first}) but the master key {} is missing; restore the key from your backup, or move the secrets aside to start a new vault",
                p.secrets_dir.display(),
                stranded.len(),
                p.key_file.display()
            )));
        }
    }
    // The verifier belongs to this base directory's vault. Whatever key file init is pointed
    // at, it never replaces a passphrase already set here: that is what rotate and reset are
    // for, and they prove the old passphrase or access to the key first.
    if p.verifier.exists() {
        let what = if key_exists {
            format!(
                "the vault is already initialised ({} and {} exist)",
                p.key_file.display(),
                p.verifier.display()
            )
        } else {
            format!(
                "an unlock passphrase is already set for the vault of this base directory ({}), and init would replace it",
                p.verifier.display()
            )
        };
        return Err(Failure::refused(format!(
            "{what}; use `vigocli secrets rotate` to change the passphrase (or `reset` if it is lost); for a second vault, use another --base-dir"
        )));
    }
    let actor = operator_actor();
    if key_exists {
        home::check(&p.secrets_dir, &p.base).map_err(Failure::refused)?;
        crate::secrets::local::read_master_key(&p.key_file).map_err(secrets_failure)?;
        println!("  Master key {} already exists; keeping it and its secrets.", p.key_file.display());
    } else {
        crate::util::fsutil::ensure_dir(&p.secrets_dir, 0o700)?;
        home::record(&p.secrets_dir, &p.base).map_err(Failure::failed)?;
        audited(ctx, Event::new(&actor, "vault.master_key_created", &p.key_file.to_string_lossy()), || {
            crate::secrets::local::create_master_key(&p.secrets_dir, &p.key_file).map_err(Failure::failed)
        })?;
        println!("  Master key written to {} (mode 0600).", p.key_file.display());
        println!("  Back it up somewhere safe: without it the stored secrets cannot be decrypted.");
    }
    println!("\n  Choose the unlock passphrase. Every `vigocli secrets` verb except");
    println!("  init, generate-certs, unlock, lock, rotate and reset needs it.");
    let pass = ask_new_passphrase()?;
    super::audited::audited_staged(
        ctx,
        Event::new(&actor, "vault.passphrase_set", "init"),
        || gate::stage_verifier(&p.verifier, &pass).map_err(Failure::failed),
        |staged| staged.install().map_err(Failure::failed),
    )?;
    println!("  Unlock verifier written to {}.", p.verifier.display());
    println!("  Next: `vigocli secrets unlock`.");
    Ok(())
}

/// Asks for the current passphrase and checks it under the failure throttle; a wrong one is
/// counted, audited (`vault.unlock_failed`, naming the verb) and refused.
fn check_current_passphrase(ctx: &Context, verb: &str, refusal: &str) -> CmdResult {
    let failures = ctx.paths.verifier.with_file_name(".secrets-unlock-failures");
    let attempt = throttle::Attempt::begin(&failures, unix_now()).map_err(Failure::refused)?;
    let pass =
        ask(if verb == "unlock" { "Enter unlock passphrase: " } else { "Enter current passphrase: " })?;
    if gate::passphrase_matches(&ctx.paths.verifier, &pass).map_err(Failure::failed)? {
        return attempt.succeeded().map_err(Failure::failed);
    }
    let in_a_row = attempt.failed(unix_now()).map_err(Failure::failed)?;
    let detail = serde_json::json!({ "verb": verb, "failures_in_a_row": in_a_row });
    audited(ctx, Event::new(&operator_actor(), "vault.unlock_failed", "vault").detail(detail), || Ok(()))?;
    let wait = throttle::delay_after(in_a_row);
    let next = if wait > 0 {
        format!(" ({in_a_row} in a row: the next attempt waits {wait} s)")
    } else {
        String::new()
    };
    Err(Failure::refused(format!("wrong passphrase; {refusal}{next}")))
}

pub(super) fn unlock(ctx: &Context) -> CmdResult {
    check_current_passphrase(ctx, "unlock", "the vault stays locked")?;
    audited(ctx, Event::new(&operator_actor(), "vault.unlocked", "vault"), || {
        gate::open_gate(&ctx.paths.sentinel).map_err(Failure::failed)
    })?;
    println!("  Vault unlocked. It locks again after 24h without use.");
    Ok(())
}

/// Locking only takes a right away, so it happens first and even when the audit log cannot
/// take its `vault.locked` row; that failure is then reported (exit 1), not hidden.
pub(super) fn lock(ctx: &Context) -> CmdResult {
    let was_open = gate::close_gate(&ctx.paths.sentinel).map_err(Failure::failed)?;
    let actor = operator_actor();
    let event =
        Event::new(&actor, "vault.locked", "vault").detail(serde_json::json!({ "was_unlocked": was_open }));
    crate::store::open(&ctx.paths.db)
        .map_err(|e| e.to_string())
        .and_then(|mut conn| crate::audit::append(&mut conn, &event).map_err(|e| e.to_string()))
        .map_err(|e| {
            Failure::failed(format!(
                "the vault is locked, but its vault.locked audit row could not be written: {e}"
            ))
        })?;
    println!("  Vault locked.{}", if was_open { "" } else { " (it was not unlocked)" });
    Ok(())
}

/// Writes the new verifier and locks the vault, so everyone unlocks with the new passphrase.
/// The verifier is staged, its audit row committed, and only then put in place: a passphrase
/// never changes without its row.
fn replace_passphrase(ctx: &Context, action: &str, new: &SecretString) -> CmdResult {
    super::audited::audited_staged(
        ctx,
        Event::new(&operator_actor(), action, "vault"),
        || gate::stage_verifier(&ctx.paths.verifier, new).map_err(Failure::failed),
        |staged| {
            staged.install().map_err(|e| {
                Failure::failed(format!(
                    "the change is in the audit log but the new passphrase could not be put in place ({e}); the old one still unlocks: repeat the command"
                ))
            })?;
            gate::close_gate(&ctx.paths.sentinel).map_err(Failure::failed).map(|_| ())
        },
    )
}

pub(super) fn rotate(ctx: &Context) -> CmdResult {
    check_current_passphrase(ctx, "rotate", "nothing was changed")?;
    println!("  Choose the new unlock passphrase.");
    let new = ask_new_passphrase()?;
    replace_passphrase(ctx, "vault.passphrase_rotated", &new)?;
    println!("  Passphrase changed and vault locked; unlock with the new passphrase.");
    Ok(())
}

pub(super) fn reset(ctx: &Context) -> CmdResult {
    home::check(&ctx.paths.secrets_dir, &ctx.paths.base).map_err(Failure::refused)?;
    // Reading the master key is the proof: it is the same access that decrypts every secret.
    crate::secrets::local::read_master_key(&ctx.paths.key_file)
        .map_err(|e| Failure::refused(e.to_string()))?;
    println!("  This replaces the unlock passphrase without checking the old one.");
    let word =
        prompt::read_line("  Type RESET to proceed: ", false).map_err(|e| Failure::failed(e.to_string()))?;
    if word.expose() != "RESET" {
        return Err(Failure::refused("confirmation was not RESET; nothing was changed"));
    }
    let new = ask_new_passphrase()?;
    replace_passphrase(ctx, "vault.passphrase_reset", &new)?;
    println!("  Passphrase reset. Run `vigocli secrets unlock` with the new passphrase.");
    Ok(())
}
