//! Privileged operations and their audit rows commit together: the row is appended inside an
//! IMMEDIATE transaction, the operation runs, then the transaction commits. If the audit write
//! fails, the operation never runs.

use rusqlite::TransactionBehavior;

use super::Context;
use crate::audit::{self, Event};
use crate::exit::Failure;

/// How an audited operation can end badly.
pub enum AuditedError {
    /// Nothing happened: the audit write or the operation itself failed.
    NotDone(Failure),
    /// The operation ran but its audit row could not be committed; the caller must undo it.
    CommitFailed(Failure),
}

pub fn audited<T>(
    ctx: &Context,
    event: Event<'_>,
    op: impl FnOnce() -> Result<T, Failure>,
) -> Result<T, AuditedError> {
    let not_done = |what: String| {
        AuditedError::NotDone(Failure::failed(format!(
            "audit log write failed ({what}); the operation was not carried out"
        )))
    };
    let mut conn = crate::store::open(&ctx.paths.db).map_err(|e| not_done(e.to_string()))?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| not_done(e.to_string()))?;
    audit::append_in(&tx, std::slice::from_ref(&event)).map_err(|e| not_done(e.to_string()))?;
    let value = op().map_err(AuditedError::NotDone)?;
    tx.commit().map_err(|e| {
        AuditedError::CommitFailed(Failure::failed(format!(
            "audit log commit failed ({e}); the operation was rolled back"
        )))
    })?;
    Ok(value)
}

/// For operations with nothing to undo (or whose undo is a no-op).
pub fn audited_simple<T>(
    ctx: &Context,
    event: Event<'_>,
    op: impl FnOnce() -> Result<T, Failure>,
) -> Result<T, Failure> {
    audited(ctx, event, op).map_err(|e| match e {
        AuditedError::NotDone(f) | AuditedError::CommitFailed(f) => f,
    })
}
