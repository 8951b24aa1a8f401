//! `/audit` (admin and viewer; compliance is refused by the route's permission): the audit log,
//! newest first, filtered by event and actor, 50 rows a page cut by sequence number so every
//! page costs the same; and a verification of the whole chain that names the first bad row.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use serde::Deserialize;

use super::page::{self, Ctx, Layout, PageError, PageResult, Q};
use crate::audit::Verdict;
use crate::server::state::Server;
use crate::store::audit_log::{self, Filter};

const PER_PAGE: u32 = 50;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    actor: Option<String>,
    /// Rows with a sequence number below this one.
    #[serde(default)]
    before: Option<i64>,
}

pub struct RowView {
    seq: i64,
    when: String,
    actor: String,
    action: String,
    target: String,
    detail: String,
    marked: bool,
}

pub struct EventOption {
    value: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<RowView>,
    events: Vec<EventOption>,
    actor: String,
    newer: Option<String>,
    newest: Option<String>,
    older: Option<String>,
    head_seq: i64,
}

fn link(f: &Filter, before: Option<i64>) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    if let Some(a) = &f.action {
        s.append_pair("event", a);
    }
    if let Some(a) = &f.actor {
        s.append_pair("actor", a);
    }
    if let Some(b) = before {
        s.append_pair("before", &b.to_string());
    }
    format!("/audit?{}", s.finish())
}

pub async fn list(State(s): State<Arc<Server>>, ctx: Ctx, Q(query): Q<ListQuery>) -> PageResult {
    let clean = |v: Option<String>| v.map(|x| x.trim().to_string()).filter(|x| !x.is_empty());
    let filter = Filter { action: clean(query.event), actor: clean(query.actor) };
    if [&filter.action, &filter.actor].iter().any(|f| f.as_ref().is_some_and(|x| x.len() > 256)) {
        return Err(PageError::bad_request("a filter is at most 256 characters"));
    }
    let before = query.before.filter(|b| *b > 0);
    let (rows, actions, head, newer) = {
        let conn = s.db();
        let rows = audit_log::page(&conn, &filter, before, PER_PAGE)?;
        let newer = match rows.first() {
            Some(first) if before.is_some() => {
                audit_log::newer_page_start(&conn, &filter, first.seq, PER_PAGE)?
            }
            _ => None,
        };
        (rows, audit_log::actions(&conn)?, audit_log::head(&conn)?, newer)
    };
    let marked = before.map(|b| b - 1);
    let older = (rows.len() == PER_PAGE as usize).then(|| link(&filter, rows.last().map(|r| r.seq)));
    let listing = ListPage {
        layout: ctx.layout("/audit", "Audit log"),
        events: actions
            .into_iter()
            .map(|a| EventOption { selected: Some(&a) == filter.action.as_ref(), value: a })
            .collect(),
        actor: filter.actor.clone().unwrap_or_default(),
        newer: newer.map(|n| link(&filter, Some(n))),
        newest: before.is_some().then(|| link(&filter, None)),
        older,
        head_seq: head.map_or(0, |(seq, _)| seq),
        rows: rows
            .into_iter()
            .map(|r| RowView {
                marked: Some(r.seq) == marked,
                seq: r.seq,
                when: r.ts.get(..19).unwrap_or(&r.ts).replace('T', " "),
                actor: r.actor,
                action: r.action,
                target: r.target,
                detail: page::show_json(&r.detail),
            })
            .collect(),
    };
    page::render(&listing)
}

#[derive(Template)]
#[template(path = "audit_verify.html")]
struct VerifyPage {
    layout: Layout,
    intact: bool,
    rows: i64,
    head: String,
    bad_seq: i64,
    reason: String,
    bad_link: String,
    millis: u64,
}

/// Walks the whole chain now (on its own connection, off the async workers).
pub async fn verify(State(s): State<Arc<Server>>, ctx: Ctx) -> PageResult {
    let server = s.clone();
    let check = tokio::task::spawn_blocking(move || crate::server::status::verify_audit(&server))
        .await
        .map_err(PageError::internal)?
        .map_err(PageError::internal)?;
    let mut result = VerifyPage {
        layout: ctx.layout("/audit", "Audit chain verification"),
        intact: false,
        rows: 0,
        head: String::new(),
        bad_seq: 0,
        reason: String::new(),
        bad_link: String::new(),
        millis: check.millis,
    };
    match check.verdict {
        Verdict::Intact { rows, head } => {
            result.intact = true;
            result.rows = rows;
            result.head = head;
        }
        Verdict::Broken { seq, reason } => {
            result.bad_seq = seq;
            result.reason = reason;
            result.bad_link = format!("/audit?before={}", seq + 1);
        }
    }
    page::render(&result)
}
