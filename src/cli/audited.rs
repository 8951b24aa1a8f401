//! Privileged operations and their audit rows commit together: the row is appended inside an
//! IMMEDIATE transaction, the operation runs, then the transaction commits. If the audit write
//! fails, the operation never runs. Operations that change files stage their change inside
//! `op` and put it in place only after this returns (see `secrets set` and `secrets delete`),
//! so no change stands without its row.

use rusqlite::TransactionBehavior;

use super::Context;
use crate::audit::{self, Event};
use crate::exit::Failure;

pub fn audited<T>(
    ctx: &Context,
    event: Event<'_>,
    op: impl FnOnce() -> Result<T, Failure>,
) -> Result<T, Failure> {
    audited_with(ctx, event, |_| op())
}

/// As `audited`, with the transaction handed to `op` for rows that must commit together with
/// the audit row (a pending rotation).
pub fn audited_with<T>(
    ctx: &Context,
    event: Event<'_>,
    op: impl FnOnce(&rusqlite::Connection) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let not_done = |what: String| {
        Failure::failed(format!("audit log write failed ({what}); the operation was not carried out"))
    };
    let mut conn = crate::store::open(&ctx.paths.db).map_err(|e| not_done(e.to_string()))?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| not_done(e.to_string()))?;
    audit::append_in(&tx, std::slice::from_ref(&event)).map_err(|e| not_done(e.to_string()))?;
    let value = op(&tx)?;
    tx.commit().map_err(|e| {
        Failure::failed(format!(
            "audit log commit failed after the operation ran ({e}); run `vigocli audit verify` and repeat the operation"
        ))
    })?;
    Ok(value)
}

/// A file change that is staged first (`stage`, inside the transaction: if it fails, neither
/// the row nor the change happens), then put in place by `put` only once the audit row has
/// committed. A failed commit drops the staged change, so the files stay as they were; a crash
/// between the commit and `put` leaves the old files with a row for an attempted change (repeat
/// the command), never a change without its row.
pub fn audited_staged<S, T>(
    ctx: &Context,
    event: Event<'_>,
    stage: impl FnOnce() -> Result<S, Failure>,
    put: impl FnOnce(S) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let staged = audited(ctx, event, stage)?;
    put(staged)
}

/// Puts a staged TLS change in place after its row committed, saying what to do if it fails.
pub fn put_tls_in_place(staged: crate::pki::Staged) -> Result<(), Failure> {
    staged.put_in_place().map_err(|e| {
        Failure::failed(format!(
            "the change is in the audit log but could not be put in place ({e}); the certificates in force are unchanged: repeat the command"
        ))
    })
}
