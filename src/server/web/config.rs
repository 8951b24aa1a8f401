//! `/config`: the config tree being served, read-only (it names secrets by `secret:` ref
//! only), the recent publishes from the audit log, what the last publish and the start found
//! wrong, and a publish button for those who may publish.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;

use super::page::{self, done, Ctx, Layout, PageError, PageResult};
use crate::auth::Permission;
use crate::server::state::Server;
use crate::store::audit_log::{self, Filter};

pub struct SourceFile {
    name: String,
    text: String,
}

pub struct Publish {
    when: String,
    actor: String,
    outcome: &'static str,
    detail: String,
}

#[derive(Template)]
#[template(path = "config.html")]
struct ConfigPage {
    layout: Layout,
    dir: String,
    config_epoch: u64,
    content_hash: String,
    fallback: Option<String>,
    files: Vec<SourceFile>,
    publishes: Vec<Publish>,
    last_errors: Vec<String>,
    last_attempt: Option<String>,
    can_publish: bool,
}

pub async fn show(State(s): State<Arc<Server>>, ctx: Ctx) -> PageResult {
    let p = s.current();
    let files = p
        .tree
        .as_ref()
        .map(|t| {
            t.sources().map(|(name, text)| SourceFile { name: name.into(), text: text.into() }).collect()
        })
        .unwrap_or_default();
    let mut rows = Vec::new();
    {
        let conn = s.db();
        for action in ["config.published", "config.publish_rejected", "config.fallback"] {
            let f = Filter { action: Some(action.into()), actor: None };
            rows.extend(audit_log::page(&conn, &f, None, 10)?);
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.seq));
    rows.truncate(15);
    let publishes = rows
        .into_iter()
        .map(|r| Publish {
            when: r.ts.get(..19).unwrap_or(&r.ts).replace('T', " "),
            actor: r.actor,
            outcome: match r.action.as_str() {
                "config.published" => "published",
                "config.fallback" => "start: served the last good config",
                _ => "rejected",
            },
            detail: page::show_json(&r.detail),
        })
        .collect();
    let last = s.status.publish();
    let config = ConfigPage {
        layout: ctx.layout("/config", "Config"),
        dir: s.config_dir.display().to_string(),
        config_epoch: p.config_epoch,
        content_hash: p.content_hash.clone(),
        fallback: p.fallback.clone(),
        files,
        publishes,
        last_errors: last.as_ref().map(|l| l.errors.clone()).unwrap_or_default(),
        last_attempt: last.map(|l| {
            let outcome = if l.errors.is_empty() { "published" } else { "rejected" };
            format!("{} by {}: {outcome}", page::when(Some(l.at)), l.actor)
        }),
        can_publish: ctx.can(Permission::ConfigPublish),
    };
    page::render(&config)
}

/// Publishes the config directory as `vigocli config publish` does; a rejected tree is shown
/// with every error, and the previous config keeps serving.
pub async fn publish(State(s): State<Arc<Server>>, ctx: Ctx) -> PageResult {
    match crate::server::admin::config::publish_config(&s, &ctx.caller, &Default::default()).await {
        Ok(_) => done("/config", "published"),
        Err(e) if e.status() == StatusCode::UNPROCESSABLE_ENTITY => Err(PageError::new(
            e.status(),
            "The config was rejected; the previous config keeps serving. The errors are on the config page.",
        )),
        Err(e) => Err(e.into()),
    }
}
