//! `vigocli db stats | integrity | prune`: the database on this host, read and pruned directly
//! (WAL lets the server keep writing meanwhile; a prune is one transaction with its audit row).

use argh::{ArgsInfo, FromArgs};
use serde_json::json;

use super::audited::audited_with;
use super::output::{self, col, Format};
use super::{operator_actor, Context};
use crate::audit::Event;
use crate::exit::{CmdResult, Failure};

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "db")]
/// The server's database: size, checks, pruning.
pub struct DbArgs {
    #[argh(subcommand)]
    command: DbCommand,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand)]
enum DbCommand {
    Stats(StatsArgs),
    Integrity(IntegrityArgs),
    Prune(PruneArgs),
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "stats")]
/// Rows per table, pages in use and free, and the files' sizes.
struct StatsArgs {
    /// output format: table (default) or json
    #[argh(option, short = 'o', default = "Format::Table")]
    output: Format,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "integrity")]
/// SQLite's full integrity and foreign key checks, and the audit chain. Exit 1 on a problem.
struct IntegrityArgs {}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(
    subcommand,
    name = "prune",
    note = "Audit rows are never pruned: the chain is the record. Keep them short with the audit sinks instead (docs/OPERATIONS.md)."
)]
/// Delete run reports and expired sessions older than a time; each envoy keeps its newest
/// runs whatever their age, so its status stays known. Audited.
struct PruneArgs {
    /// how old, e.g. 30d, 12h (required)
    #[argh(option)]
    older_than: String,
    /// runs every envoy keeps however old (default 10)
    #[argh(option, default = "10")]
    keep_per_envoy: u32,
}

fn open(ctx: &Context) -> Result<rusqlite::Connection, Failure> {
    if !ctx.paths.db.exists() {
        return Err(Failure::failed(format!(
            "no database at {}; is this the server's base directory (--base-dir)?",
            ctx.paths.db.display()
        )));
    }
    crate::store::open(&ctx.paths.db).map_err(|e| Failure::failed(e.to_string()))
}

pub fn run(ctx: &Context, a: DbArgs) -> CmdResult {
    match a.command {
        DbCommand::Stats(s) => stats(ctx, s.output),
        DbCommand::Integrity(_) => integrity(ctx),
        DbCommand::Prune(p) => prune(ctx, p),
    }
}

fn file_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn stats(ctx: &Context, format: Format) -> CmdResult {
    let conn = open(ctx)?;
    let tables = crate::store::maint::table_rows(&conn)?;
    let (pages, free, page_size) = crate::store::maint::pages(&conn)?;
    let wal = ctx.paths.db.with_extension("db-wal");
    if format == Format::Json {
        let tables: serde_json::Map<String, serde_json::Value> =
            tables.iter().map(|(t, n)| (t.clone(), json!(n))).collect();
        let v = json!({
            "path": ctx.paths.db.display().to_string(), "bytes": file_size(&ctx.paths.db),
            "wal_bytes": file_size(&wal), "page_size": page_size, "pages": pages, "free_pages": free,
            "tables": tables,
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    println!(
        "{}: {} bytes (+{} in the WAL), {pages} pages of {page_size} bytes, {free} free",
        ctx.paths.db.display(),
        file_size(&ctx.paths.db),
        file_size(&wal)
    );
    let rows = tables.iter().map(|(t, n)| json!({ "table": t, "rows": n })).collect();
    output::list(Format::Table, rows, &[col("TABLE", "table"), col("ROWS", "rows")], "no tables")
}

fn integrity(ctx: &Context) -> CmdResult {
    let conn = open(ctx)?;
    let mut problems = crate::store::maint::integrity(&conn)?;
    match crate::audit::verify(&conn, None) {
        Ok(crate::audit::Verdict::Intact { .. }) => {}
        Ok(crate::audit::Verdict::Broken { seq, reason }) => {
            problems.push(format!("audit chain: row {seq}: {reason}"))
        }
        Err(e) => problems.push(format!("audit chain: {e}")),
    }
    if problems.is_empty() {
        println!("ok: integrity check, foreign keys and audit chain");
        return Ok(());
    }
    for p in &problems {
        println!("problem: {}", crate::util::text::escape_control(p));
    }
    Err(Failure::failed(format!("{} problem(s) in {}", problems.len(), ctx.paths.db.display())))
}

fn prune(ctx: &Context, p: PruneArgs) -> CmdResult {
    let age = crate::util::time::parse_duration(&p.older_than)
        .map_err(|e| Failure::usage(format!("--older-than: {e}")))?;
    let cutoff = crate::util::time::unix_now().saturating_sub(i64::try_from(age).unwrap_or(i64::MAX));
    open(ctx)?;
    let detail = json!({ "older_than": p.older_than, "keep_per_envoy": p.keep_per_envoy });
    let actor = operator_actor();
    let event = Event::new(&actor, "db.pruned", "runs,sessions,tasks").detail(detail);
    let pruned = audited_with(ctx, event, |tx| {
        crate::store::maint::prune(tx, cutoff, p.keep_per_envoy).map_err(|e| Failure::failed(e.to_string()))
    })?;
    println!(
        "pruned {} run report(s), {} expired session(s) and {} finished task(s) older than {}",
        pruned.runs, pruned.sessions, pruned.tasks, p.older_than
    );
    Ok(())
}
