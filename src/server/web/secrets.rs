//! `/secrets`: what the vault holds, by name: each value's size, when and by whom it was last
//! set (from the audit log), and whether the live config uses it. Never a value: there is no
//! reveal in the console; `vigocli secrets reveal` on the server host is the only way.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::State;

use super::page::{self, Ctx, Layout, PageError, PageResult};
use crate::server::state::Server;

/// Audit rows read back to find who set each key (the newest of each action).
const ROWS_READ: u32 = 20_000;

pub struct SecretRow {
    key: String,
    size: String,
    set_at: String,
    set_by: String,
    used: bool,
}

#[derive(Template)]
#[template(path = "secrets.html")]
struct SecretsPage {
    layout: Layout,
    rows: Vec<SecretRow>,
    epoch: u64,
}

pub async fn list(State(s): State<Arc<Server>>, ctx: Ctx) -> PageResult {
    let keys = s.provider.list().map_err(PageError::internal)?;
    // target -> (ts, actor) of the newest `secret.set` or `secret.rotated` row.
    let mut last: HashMap<String, (String, String)> = HashMap::new();
    let rows =
        crate::store::audit_log::latest_by_target(&s.db(), &["secret.set", "secret.rotated"], ROWS_READ)?;
    for (target, actor, ts, _) in rows {
        let newer = last.get(&target).is_none_or(|(t, _)| ts > *t);
        if newer {
            last.insert(target, (ts, actor));
        }
    }
    let used = s.current().tree.as_ref().map(|t| t.secret_keys()).unwrap_or_default();
    let rows = keys
        .into_iter()
        .map(|key| {
            let size = match s.provider.size(&key) {
                Ok(Some(n)) => format!("{n} bytes"),
                _ => "—".into(),
            };
            let (set_at, set_by) = last
                .get(&key)
                .map(|(ts, who)| (ts.get(..19).unwrap_or(ts).replace('T', " "), who.clone()))
                .unwrap_or_else(|| ("—".into(), "not in the audit log".into()));
            SecretRow { used: used.contains(&key), key, size, set_at, set_by }
        })
        .collect();
    let listing = SecretsPage { layout: ctx.layout("/secrets", "Secrets"), rows, epoch: s.secrets_epoch() };
    page::render(&listing)
}
