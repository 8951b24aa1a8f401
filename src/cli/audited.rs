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
