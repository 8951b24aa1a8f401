//! Secret rotation (DESIGN step 7): bump the epoch, find the envoys whose bundles use the key,
//! mark their `watch_secret` resources triggered and flag them to apply at next check-in. A web
//! user's password (`vigo/web/auth/<username>`) that changed also ends that user's sessions, in
//! the same transaction, however the change was noticed (the CLI's notice, a rotation recorded
//! while the server was down, the isopass watcher): this is the one place that does it.

use rusqlite::TransactionBehavior;

use super::state::Server;
use crate::audit::{self, Event};

/// What a rotation did.
pub struct Rotated {
    /// The envoys flagged to apply at their next check-in.
    pub envoys: Vec<String>,
    /// Sessions ended because the key is a web user's password.
    pub sessions_ended: usize,
}

/// `source` says what noticed the change (the CLI's notice, a pending rotation found at start,
/// the isopass watcher), for the audit row.
pub fn rotate(s: &Server, actor: &str, key: &str) -> Result<Rotated, String> {
    rotate_from(s, actor, key, "notice")
}

pub fn rotate_from(s: &Server, actor: &str, key: &str, source: &str) -> Result<Rotated, String> {
    // The new value must be readable before anyone is told to fetch it.
    s.provider.version(key).map_err(|e| e.to_string())?;
    let mut flagged = Vec::new();
    let mut updates = Vec::new();
    // A key the published config never names affects no envoy: skip compiling every bundle.
    let referenced = s.current().tree.as_ref().is_some_and(|t| t.secret_keys().contains(key));
    for envoy in s.active_envoys().into_iter().filter(|_| referenced) {
        let Ok(bundle) = s.bundle_for(&envoy.id, &envoy.name) else { continue };
        if !bundle.entitled.contains(key) {
            continue;
        }
        let triggered: Vec<String> = bundle
            .watches
            .iter()
            .filter(|(_, keys)| keys.iter().any(|k| k == key))
            .map(|(name, _)| name.clone())
            .collect();
        updates.push((envoy.id.clone(), triggered));
        flagged.push(envoy.name.clone());
    }
    let mut conn = s.db();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| e.to_string())?;
    for (id, triggered) in &updates {
        crate::store::envoys::add_triggered(&tx, id, triggered).map_err(|e| e.to_string())?;
    }
    let epoch = s.next_secrets_epoch(&tx).map_err(|e| e.to_string())?;
    crate::store::rotations::clear(&tx, key).map_err(|e| e.to_string())?;
    let detail = serde_json::json!({ "envoys": flagged, "secrets_epoch": epoch, "source": source });
    audit::append_in(&tx, &[Event::new(actor, "secret.rotated", key).detail(detail)])
        .map_err(|e| e.to_string())?;
    let sessions_ended = end_sessions_on_new_password(&tx, actor, key).map_err(|e| e.to_string())?;
    tx.commit().map_err(|e| e.to_string())?;
    s.secrets_epoch_committed(epoch);
    let rotated_for = updates.iter().map(|(id, _)| id.as_str());
    s.nudges.nudge(rotated_for, crate::server::nudges::Reason::Rotation);
    tracing::info!(key, envoys = flagged.len(), epoch, "secret rotation announced");
    Ok(Rotated { envoys: flagged, sessions_ended })
}

/// A web user's password that changed (or went away) ends that user's sessions, with a
/// `user.password_changed` row, inside the caller's transaction. Other keys: nothing.
fn end_sessions_on_new_password(
    tx: &rusqlite::Connection,
    actor: &str,
    key: &str,
) -> rusqlite::Result<usize> {
    let Some(username) = key.strip_prefix(crate::auth::accounts::password_key("").as_str()) else {
        return Ok(0);
    };
    if crate::auth::accounts::check_username(username).is_err() {
        return Ok(0);
    }
    let ended = crate::store::sessions::delete_for_user(tx, username)?;
    let detail = serde_json::json!({ "sessions_ended": ended });
    audit::append_in(tx, &[Event::new(actor, "user.password_changed", username).detail(detail)])?;
    Ok(ended)
}

/// Runs the rotations the CLI recorded while the server was not there to be told (at start, and
/// after each publish). A key that is gone from the vault has nothing to roll out: its row is
/// dropped, and the config that still uses it is refused at load as usual.
pub fn apply_pending(s: &Server) {
    let pending = match crate::store::rotations::pending(&s.db()) {
        Ok(p) => p,
        Err(e) => return tracing::warn!(error = %e, "could not read the pending rotations"),
    };
    for (key, actor) in pending {
        let outcome = match s.provider.contains(&key) {
            Ok(true) => rotate_from(s, &actor, &key, "recorded while the server was away").map(drop),
            // A password deleted while the server was away ends the sessions it opened, too.
            _ => clear_gone(s, &actor, &key).map_err(|e| e.to_string()),
        };
        if let Err(e) = outcome {
            tracing::warn!(key, error = %e, "a pending rotation could not be applied; it is kept for the next start or publish");
        }
    }
}

fn clear_gone(s: &Server, actor: &str, key: &str) -> rusqlite::Result<()> {
    let mut conn = s.db();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    crate::store::rotations::clear(&tx, key)?;
    end_sessions_on_new_password(&tx, actor, key)?;
    tx.commit()
}

/// Rolls out what the isopass watcher saw change, one key at a time, until shutdown.
pub async fn follow_watcher(
    s: std::sync::Arc<Server>,
    mut changes: crate::secrets::isopass::Rotations,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let keys = tokio::select! {
            keys = changes.recv() => match keys { Some(k) => k, None => return },
            _ = stop.changed() => return,
        };
        let server = s.clone();
        let done = tokio::task::spawn_blocking(move || {
            for key in keys {
                if let Err(e) = rotate_from(&server, "isopass-watcher", &key, "isopass watcher") {
                    tracing::warn!(key, error = %e, "a changed isopass value could not be rolled out");
                }
            }
        });
        let _ = done.await;
    }
}
