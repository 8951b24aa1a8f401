//! `/runs`: run reports, newest first, by envoy and outcome, a page at a time; one run with
//! its resources' diffs, outputs and errors as the agent sent them (it scrubs every secret
//! value before a report leaves the host).

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use serde::Deserialize;

use super::envoys::urlencode;
use super::page::{self, Ctx, Layout, PageError, PageResult, P, Q};
use crate::server::state::Server;

const PER_PAGE: u32 = 50;
const STATUSES: &[&str] = &["converged", "changed", "failed"];

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    envoy: Option<String>,
    #[serde(default)]
    status: Option<String>,
    /// `RECEIVED_AT.ROWID` of the last row of the previous page.
    #[serde(default)]
    before: Option<String>,
}

pub struct Row {
    href: String,
    envoy: String,
    envoy_href: String,
    when: String,
    status: String,
    bundle_hash: String,
}

pub struct Choice {
    value: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "runs.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<Row>,
    envoy: String,
    statuses: Vec<Choice>,
    first: Option<String>,
    next: Option<String>,
}

fn parse_cursor(text: &str) -> Option<(i64, i64)> {
    let (a, b) = text.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn link(envoy: Option<&str>, status: Option<&str>, before: Option<(i64, i64)>) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    if let Some(e) = envoy {
        s.append_pair("envoy", e);
    }
    if let Some(st) = status {
        s.append_pair("status", st);
    }
    if let Some((a, b)) = before {
        s.append_pair("before", &format!("{a}.{b}"));
    }
    format!("/runs?{}", s.finish())
}

pub async fn list(State(s): State<Arc<Server>>, ctx: Ctx, Q(query): Q<ListQuery>) -> PageResult {
    let envoy = query.envoy.as_deref().map(str::trim).filter(|e| !e.is_empty());
    let status = query.status.as_deref().filter(|st| STATUSES.contains(st));
    let before = match query.before.as_deref() {
        Some(c) => Some(parse_cursor(c).ok_or_else(|| PageError::bad_request("bad page cursor"))?),
        None => None,
    };
    let found = crate::store::runs::page(&s.db(), envoy, status, before, PER_PAGE)?;
    let next = (found.len() == PER_PAGE as usize).then(|| link(envoy, status, found.last().map(|(_, c)| *c)));
    let rows = found
        .into_iter()
        .map(|(r, _)| Row {
            href: format!("/runs/{}", urlencode(&r.id)),
            envoy_href: format!("/envoys/{}", urlencode(&r.envoy_name)),
            envoy: r.envoy_name,
            when: page::when(Some(r.received_at)),
            status: r.status,
            bundle_hash: r.bundle_hash,
        })
        .collect();
    let listing = ListPage {
        layout: ctx.layout("/runs", "Runs"),
        rows,
        envoy: envoy.unwrap_or_default().to_string(),
        statuses: STATUSES.iter().map(|v| Choice { value: v, selected: Some(*v) == status }).collect(),
        first: before.is_some().then(|| link(envoy, status, None)),
        next,
    };
    page::render(&listing)
}

#[derive(Deserialize, Default)]
struct Report {
    #[serde(default)]
    status: String,
    #[serde(default)]
    duration_ms: u64,
    #[serde(default)]
    noop: bool,
    #[serde(default)]
    secrets_epoch: u64,
    #[serde(default)]
    bundle_hash: String,
    #[serde(default)]
    results: Vec<ResourceResult>,
}

#[derive(Deserialize, Default)]
pub struct ResourceResult {
    #[serde(default)]
    name: String,
    #[serde(default, rename = "type")]
    rtype: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    duration_ms: u64,
    #[serde(default)]
    diff: String,
    #[serde(default)]
    output: String,
    #[serde(default)]
    error: String,
}

#[derive(Template)]
#[template(path = "run.html")]
struct DetailPage {
    layout: Layout,
    id: String,
    envoy: String,
    envoy_href: String,
    received: String,
    status: String,
    duration_ms: u64,
    noop: bool,
    secrets_epoch: u64,
    bundle_hash: String,
    results: Vec<ResourceResult>,
}

pub async fn show(State(s): State<Arc<Server>>, ctx: Ctx, P(id): P) -> PageResult {
    let (envoy, received_at, text) =
        crate::store::runs::get(&s.db(), &id)?.ok_or_else(|| PageError::not_found("there is no such run"))?;
    let report: Report = serde_json::from_str(&text).map_err(PageError::internal)?;
    // Reports hold no markers; were one ever left unresolved, it reads as the ref it stands for.
    let results = report
        .results
        .into_iter()
        .map(|r| ResourceResult {
            diff: page::markers_as_refs(&r.diff),
            output: page::markers_as_refs(&r.output),
            error: page::markers_as_refs(&r.error),
            ..r
        })
        .collect();
    let detail = DetailPage {
        layout: ctx.layout("/runs", format!("Run on {envoy}")),
        envoy_href: format!("/envoys/{}", urlencode(&envoy)),
        envoy,
        id,
        received: page::when(Some(received_at)),
        status: report.status,
        duration_ms: report.duration_ms,
        noop: report.noop,
        secrets_epoch: report.secrets_epoch,
        bundle_hash: report.bundle_hash,
        results,
    };
    page::render(&detail)
}
