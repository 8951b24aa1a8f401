//! `GET /bootstrap`: a POSIX shell script that installs the agent on a new host (docs/
//! OPERATIONS.md, "Bootstrapping a host"). Public, like the login page: a new host has no
//! credentials yet, and the script holds nothing secret — the server's addresses, its CA, the
//! release key and the SHA-256 of each published agent binary. The enrollment token is read on
//! the host from a file or stdin. `GET /bootstrap/agent/SHA256[.sig]` serves a live release.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::state::Server;
use crate::store::releases::Release;

const SCRIPT: &str = include_str!("install.sh");

pub fn public_routes() -> Router<Arc<Server>> {
    Router::new().route("/bootstrap", get(script)).route("/bootstrap/agent/{file}", get(agent))
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{why}\n")).into_response()
}

/// The releases the script offers: the fleet's default `agent_version` if nodes.vgo names one,
/// else the newest live release; one per target.
fn chosen(s: &Server) -> Result<Vec<Release>, String> {
    let all = crate::store::releases::list(&s.db()).map_err(|e| e.to_string())?;
    let live: Vec<Release> = all.into_iter().filter(|r| r.retired_at.is_none()).collect();
    let published = s.current();
    let wanted = published.tree.as_ref().and_then(|t| t.desired_agent_version("")).map(str::to_string);
    let version = match wanted {
        Some(v) => v,
        None => live
            .iter()
            .filter_map(|r| semver::Version::parse(&r.version).ok().map(|v| (v, r.version.clone())))
            .max()
            .map(|(_, v)| v)
            .ok_or("no agent release is published yet: run `vigocli release publish` on the server")?,
    };
    let mut picked: Vec<Release> = live.into_iter().filter(|r| r.version == version).collect();
    picked.sort_by_key(|r| std::cmp::Reverse(r.published_at));
    picked.dedup_by(|a, b| a.target == b.target);
    if picked.is_empty() {
        return Err(format!("agent_version {version} is not published: run `vigocli release publish`"));
    }
    Ok(picked)
}

/// `uname -m` for a target triple's architecture.
fn machine(target: &str) -> Option<&'static str> {
    match target.split('-').next()? {
        "x86_64" => Some("x86_64"),
        "aarch64" => Some("aarch64|arm64"),
        "riscv64gc" => Some("riscv64"),
        _ => None,
    }
}

/// Text that may sit between single quotes in the script.
fn quotable(value: &str) -> Result<&str, String> {
    match value.contains('\'') || value.contains('\0') {
        true => Err("a value for the script holds a quote".into()),
        false => Ok(value),
    }
}

/// The host the request reached us by (for the script's own download URLs), if it is plain.
fn request_host(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let plain = !host.is_empty()
        && host.len() <= 255
        && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    plain.then(|| host.to_string())
}

fn render(s: &Server, headers: &HeaderMap) -> Result<String, (StatusCode, String)> {
    let bad = |e: String| (StatusCode::BAD_REQUEST, e);
    let releases = chosen(s).map_err(|e| (StatusCode::NOT_FOUND, e))?;
    let api = match &s.auth.public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => format!(
            "https://{}",
            request_host(headers).ok_or("the request has no usable Host header".to_string()).map_err(bad)?
        ),
    };
    let host = url::Url::parse(&api)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .ok_or("bad public_url".to_string())
        .map_err(bad)?;
    let agent_port = s.status.listeners().map(|(agent, _)| agent.port()).unwrap_or(7443);
    let key =
        s.updates.key_line().ok_or((StatusCode::NOT_FOUND, "this server has no release key".to_string()))?;
    let mut cases = String::new();
    for r in &releases {
        let Some(m) = machine(&r.target) else { continue };
        cases.push_str(&format!(
            "  {m}) TARGET='{}'; SHA256='{}' ;;\n",
            quotable(&r.target).map_err(bad)?,
            r.sha256
        ));
    }
    let script = SCRIPT
        .replace("@VIGO_VERSION@", crate::release::version())
        .replace("@API_URL@", quotable(&api).map_err(bad)?)
        .replace("@AGENT_ADDR@", &format!("{host}:{agent_port}"))
        .replace("@VERSION@", &releases[0].version)
        .replace("@RELEASE_KEY@", quotable(key.trim()).map_err(bad)?)
        .replace("@CA_PEM@", quotable(s.pki().bundle_pem.trim()).map_err(bad)?)
        .replace("@TARGET_CASES@\n", &cases);
    Ok(script)
}

async fn script(State(s): State<Arc<Server>>, headers: HeaderMap) -> Response {
    let rendered = tokio::task::spawn_blocking(move || render(&s, &headers)).await;
    match rendered {
        Ok(Ok(script)) => {
            ([(header::CONTENT_TYPE, "text/x-shellscript; charset=utf-8")], script).into_response()
        }
        Ok(Err((status, why))) => refuse(status, &why),
        Err(_) => refuse(StatusCode::INTERNAL_SERVER_ERROR, "the script could not be made"),
    }
}

/// What `/bootstrap/agent/...` hands out.
enum Served {
    Sig(String),
    Binary(Vec<u8>),
}

/// A live release's binary or its `.sig`, by SHA-256.
async fn agent(State(s): State<Arc<Server>>, Path(file): Path<String>) -> Response {
    let (sha, sig) = match file.strip_suffix(".sig") {
        Some(sha) => (sha.to_string(), true),
        None => (file.clone(), false),
    };
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return refuse(StatusCode::NOT_FOUND, "no such release");
    }
    let found = tokio::task::spawn_blocking(move || -> Result<Option<Served>, String> {
        let Some(r) = crate::store::releases::live_by_sha(&s.db(), &sha).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        Ok(Some(match sig {
            true => Served::Sig(r.sig),
            false => Served::Binary(
                std::fs::read(s.paths.releases_dir.join(&r.sha256)).map_err(|e| e.to_string())?,
            ),
        }))
    })
    .await;
    match found {
        Ok(Ok(Some(Served::Sig(text)))) => {
            ([(header::CONTENT_TYPE, "application/json")], text).into_response()
        }
        Ok(Ok(Some(Served::Binary(bytes)))) => {
            ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
        }
        Ok(Ok(None)) => refuse(StatusCode::NOT_FOUND, "no such release"),
        _ => refuse(StatusCode::INTERNAL_SERVER_ERROR, "the release could not be read"),
    }
}
