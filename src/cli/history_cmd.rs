//! `vigocli config history | diff | rollback | freeze | unfreeze | trace`: the published trees
//! the server keeps (every publish, content-addressed), and what they do to one envoy.
//!
//! Rollback writes the old tree's .vgo files into the config directory and publishes it, so the
//! served tree and the files on disk agree (also after a restart, which reads the directory);
//! a refused publish puts the directory back as it was.

use std::collections::BTreeMap;
use std::path::Path;

use argh::{ArgsInfo, FromArgs};
use serde_json::{json, Value};

use super::admin_client::AdminClient;
use super::output::{self, col, time_col, time_json, Format};
use super::Context;
use crate::exit::{CmdResult, Failure};

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "history")]
/// Published revisions, newest first (the one being served is marked *), and any freeze.
pub struct HistoryArgs {
    /// how many (default 20)
    #[argh(option, default = "20")]
    limit: u32,
    /// output format: table (default) or json
    #[argh(option, short = 'o', default = "Format::Table")]
    output: Format,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(
    subcommand,
    name = "diff",
    note = "No revision: the newest published against the config directory (what a publish would change). One: that revision against the directory. Two: the first against the second. `secret:` refs stay refs."
)]
/// A unified diff of the .vgo files of two trees.
pub struct DiffArgs {
    /// revisions (none, one or two)
    #[argh(positional)]
    revs: Vec<i64>,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "rollback")]
/// Publish an earlier revision's tree again: its .vgo files are written into the config
/// directory and published (validated like any publish, audited as a rollback). A refused
/// publish leaves the directory as it was.
pub struct RollbackArgs {
    /// the revision to go back to (see `config history`)
    #[argh(positional)]
    rev: i64,
    /// why (kept with the new revision)
    #[argh(option)]
    message: Option<String>,
    /// publish through a freeze
    #[argh(switch)]
    force: bool,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "freeze")]
/// Refuse publishes (and rollbacks) until a time, unless forced. Audited.
pub struct FreezeArgs {
    /// when it ends: a duration from now (2h, 3d) or an RFC 3339 time
    #[argh(option)]
    until: String,
    /// why (shown to whoever tries to publish)
    #[argh(option)]
    reason: String,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "unfreeze")]
/// End a publish freeze. Audited.
pub struct UnfreezeArgs {}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "trace")]
/// How the served config makes an envoy's bundle: the nodes.vgo entries that match it, its
/// roles and module files, and where each var's value comes from.
pub struct TraceArgs {
    /// the envoy name
    #[argh(positional)]
    envoy: String,
    /// output format: table (default) or json
    #[argh(option, short = 'o', default = "Format::Table")]
    output: Format,
}

pub fn history(ctx: &Context, a: HistoryArgs) -> CmdResult {
    let v =
        AdminClient::from_ctx(ctx)?.get(&format!("/v1/config/history?limit={}", a.limit.clamp(1, 10_000)))?;
    let serving = v["serving"].as_str().unwrap_or_default();
    let rows: Vec<Value> = v["revisions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let mark = if r["content_hash"] == serving { "*" } else { "" };
            json!({
                "rev": r["rev"], "serving": !mark.is_empty(), "published_at": time_json(&r["published_at"]),
                "published_by": r["published_by"], "content_hash": r["content_hash"], "message": r["message"],
                "rollback_of": r["rollback_of"], "forced": r["forced"],
                "shown_rev": format!("{}{mark}", r["rev"]),
                "short_hash": r["content_hash"].as_str().map(|h| &h[..h.len().min(12)]),
            })
        })
        .collect();
    if a.output == Format::Json {
        let rows: Vec<Value> = rows
            .into_iter()
            .map(|mut r| {
                let o = r.as_object_mut().expect("an object");
                o.remove("shown_rev");
                o.remove("short_hash");
                r
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "revisions": rows, "freeze": v["freeze"] }))
                .unwrap_or_default()
        );
        return Ok(());
    }
    if let Some(f) = v["freeze"].as_object() {
        println!(
            "publishes frozen until {} by {}: {}\n",
            when(&f["until"]),
            f["by"].as_str().unwrap_or("?"),
            f["reason"].as_str().unwrap_or("")
        );
    }
    let columns = [
        col("REV", "shown_rev"),
        time_col("PUBLISHED (UTC)", "published_at"),
        col("BY", "published_by"),
        col("HASH", "short_hash"),
        col("ROLLBACK OF", "rollback_of"),
        col("MESSAGE", "message"),
    ];
    output::list(Format::Table, rows, &columns, "no config published yet")
}

fn when(v: &Value) -> String {
    v.as_i64().map(|t| crate::util::time::rfc3339_millis(t * 1000)).unwrap_or_else(|| "?".into())
}

/// A revision's files, by name.
fn revision_files(client: &AdminClient, rev: i64) -> Result<BTreeMap<String, String>, Failure> {
    let v = client.get(&format!("/v1/config/revisions/{rev}"))?;
    Ok(v["files"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, t)| (k.clone(), t.as_str().unwrap_or_default().to_string()))
        .collect())
}

/// The .vgo files of the config directory as the loader would read them (regular files only).
fn directory_files(dir: &Path) -> Result<BTreeMap<String, String>, Failure> {
    let mut out = BTreeMap::new();
    let read = |path: &Path| -> Result<Option<String>, Failure> {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_file() => std::fs::read_to_string(path)
                .map(Some)
                .map_err(|e| Failure::failed(format!("{}: {e}", path.display()))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Failure::failed(format!("{}: {e}", path.display()))),
        }
    };
    if let Some(text) = read(&dir.join("nodes.vgo"))? {
        out.insert("nodes.vgo".to_string(), text);
    }
    if let Ok(entries) = std::fs::read_dir(dir.join("modules")) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = format!("modules/{name}");
            if crate::config::is_tree_file(&rel) {
                if let Some(text) = read(&e.path())? {
                    out.insert(rel, text);
                }
            }
        }
    }
    Ok(out)
}

pub fn diff(ctx: &Context, a: DiffArgs) -> CmdResult {
    let client = AdminClient::from_ctx(ctx)?;
    let newest = || -> Result<i64, Failure> {
        let v = client.get("/v1/config/history?limit=1")?;
        v["revisions"][0]["rev"].as_i64().ok_or_else(|| Failure::failed("no config has been published yet"))
    };
    let dir_name = ctx.paths.config_dir.display().to_string();
    let (left_name, left, right_name, right) = match a.revs.as_slice() {
        [] => {
            let rev = newest()?;
            (
                format!("rev {rev}"),
                revision_files(&client, rev)?,
                dir_name,
                directory_files(&ctx.paths.config_dir)?,
            )
        }
        [rev] => (
            format!("rev {rev}"),
            revision_files(&client, *rev)?,
            dir_name,
            directory_files(&ctx.paths.config_dir)?,
        ),
        [x, y] => (
            format!("rev {x}"),
            revision_files(&client, *x)?,
            format!("rev {y}"),
            revision_files(&client, *y)?,
        ),
        _ => return Err(Failure::usage("config diff takes at most two revisions")),
    };
    let names: std::collections::BTreeSet<&String> = left.keys().chain(right.keys()).collect();
    let mut any = false;
    for name in names {
        let (old, new) =
            (left.get(name).map_or("", String::as_str), right.get(name).map_or("", String::as_str));
        if old == new && left.contains_key(name) == right.contains_key(name) {
            continue;
        }
        any = true;
        let from = if left.contains_key(name) { format!("{left_name}/{name}") } else { "/dev/null".into() };
        let to = if right.contains_key(name) { format!("{right_name}/{name}") } else { "/dev/null".into() };
        let text = similar::TextDiff::from_lines(old, new)
            .unified_diff()
            .context_radius(3)
            .header(&from, &to)
            .to_string();
        // Line by line: a config's own text cannot drive the terminal either.
        for line in text.lines() {
            println!("{}", crate::util::text::escape_control(line));
        }
    }
    if !any {
        eprintln!("no differences");
    }
    Ok(())
}

pub fn rollback(ctx: &Context, a: RollbackArgs) -> CmdResult {
    let client = AdminClient::from_ctx(ctx)?;
    let old = revision_files(&client, a.rev)?;
    let dir = &ctx.paths.config_dir;
    let before = directory_files(dir)?;
    write_tree(dir, &old, &before)?;
    let message = a.message.unwrap_or_else(|| format!("rollback to revision {}", a.rev));
    let body = json!({ "message": message, "force": a.force, "rollback_of": a.rev });
    match client.post("/v1/config/publish", body) {
        Ok(v) => {
            println!(
                "rolled back to revision {}: published as revision {} (content hash {})",
                a.rev,
                v["revision"],
                v["content_hash"].as_str().unwrap_or_default()
            );
            println!("{} now holds that tree.", dir.display());
            Ok(())
        }
        Err(e) => {
            write_tree(dir, &before, &old).map_err(|w| {
                Failure::failed(format!(
                    "{}; and putting {} back failed too: {}",
                    e.message,
                    dir.display(),
                    w.message
                ))
            })?;
            Err(Failure { message: format!("{} ({} is as it was)", e.message, dir.display()), ..e })
        }
    }
}

/// Makes the directory's .vgo files `want`: writes each (atomically), removes those of
/// `current` that `want` lacks. Only names the loader reads are touched.
fn write_tree(dir: &Path, want: &BTreeMap<String, String>, current: &BTreeMap<String, String>) -> CmdResult {
    for (name, text) in want {
        if !crate::config::is_tree_file(name) {
            return Err(Failure::failed(format!("revision file {name:?} is not a config file name")));
        }
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Failure::failed(format!("{}: {e}", parent.display())))?;
        }
        crate::util::fsutil::atomic_write(&path, text.as_bytes(), 0o644)
            .map_err(|e| Failure::failed(format!("{}: {e}", path.display())))?;
    }
    for name in current.keys().filter(|n| !want.contains_key(*n)) {
        let path = dir.join(name);
        std::fs::remove_file(&path).map_err(|e| Failure::failed(format!("{}: {e}", path.display())))?;
    }
    Ok(())
}

pub fn freeze(ctx: &Context, a: FreezeArgs) -> CmdResult {
    let until = match crate::util::time::parse_duration(&a.until) {
        Ok(secs) => crate::util::time::unix_now().saturating_add(i64::try_from(secs).unwrap_or(i64::MAX)),
        Err(_) => {
            crate::util::time::parse_rfc3339(&a.until).map_err(|e| Failure::usage(format!("--until: {e}")))?
        }
    };
    let v = AdminClient::from_ctx(ctx)?
        .post("/v1/config/freeze", json!({ "until": until, "reason": a.reason }))?;
    println!("publishes frozen until {}", when(&v["freeze"]["until"]));
    Ok(())
}

pub fn unfreeze(ctx: &Context) -> CmdResult {
    let v = AdminClient::from_ctx(ctx)?.post("/v1/config/unfreeze", json!({}))?;
    println!(
        "{}",
        if v["was_frozen"] == true { "publishes are open again" } else { "publishes were not frozen" }
    );
    Ok(())
}

pub fn trace(ctx: &Context, a: TraceArgs) -> CmdResult {
    crate::wire::validate_envoy_name(&a.envoy).map_err(Failure::usage)?;
    let v = AdminClient::from_ctx(ctx)?.get(&format!("/v1/config/trace/{}", a.envoy))?;
    if a.output == Format::Json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    let shown = |v: &Value| crate::util::text::escape_control(v.as_str().unwrap_or_default()).into_owned();
    let entries = v["entries"].as_array().cloned().unwrap_or_default();
    if entries.is_empty() {
        println!("no envoys: entry matches {}: it gets an empty bundle", a.envoy);
        return Ok(());
    }
    println!("envoy {} (config {})", a.envoy, shown(&v["content_hash"]));
    println!("matching entries:");
    for e in &entries {
        println!("  match {:<24} {}", shown(&e["text"]), shown(&e["at"]));
    }
    println!("roles:");
    for r in v["roles"].as_array().into_iter().flatten() {
        let module = match r["module"].as_str() {
            Some(m) => format!("{m}, {} resources", r["resources"]),
            None => "no module file".into(),
        };
        println!("  {:<24} from {} ({module})", shown(&r["role"]), shown(&r["at"]));
    }
    println!("vars:");
    for x in v["vars"].as_array().into_iter().flatten() {
        println!("  {} = {:?}  from {}", shown(&x["name"]), shown(&x["value"]), shown(&x["at"]));
        for o in x["overrides"].as_array().into_iter().flatten() {
            println!("      overrides {}", shown(o));
        }
    }
    if let Some(version) = v["agent_version"].as_str() {
        println!("agent version: {version}");
    }
    Ok(())
}
