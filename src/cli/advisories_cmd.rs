//! `vigocli advisories import DIR | status`: bring a checkout of the RustSec advisory database
//! into the server's database, offline, for the console's `/security` page to match against
//! the crates compiled into this binary. Works on the local database of `--base-dir`.

use argh::{ArgsInfo, FromArgs};
use rusqlite::TransactionBehavior;
use serde_json::json;

use super::output::Format;
use super::Context;
use crate::audit::{self, Event};
use crate::exit::{CmdResult, Failure};

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "advisories")]
/// Import RustSec advisories (offline) and see which affect this binary.
pub struct AdvisoriesArgs {
    #[argh(subcommand)]
    command: AdvisoriesCommand,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand)]
enum AdvisoriesCommand {
    Import(ImportArgs),
    Status(StatusArgs),
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "import")]
/// Replace the stored advisories with those of a RustSec advisory-db checkout (its root, which
/// holds crates/); audited.
struct ImportArgs {
    /// the advisory-db checkout
    #[argh(positional)]
    dir: String,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "status")]
/// When the advisories were imported, and which affect the crates compiled into this binary.
struct StatusArgs {
    /// output format: table (default) or json
    #[argh(option, short = 'o', default = "Format::Table")]
    output: Format,
}

pub fn run(ctx: &Context, args: AdvisoriesArgs) -> CmdResult {
    match args.command {
        AdvisoriesCommand::Import(a) => import(ctx, a),
        AdvisoriesCommand::Status(a) => status(ctx, a),
    }
}

fn import(ctx: &Context, a: ImportArgs) -> CmdResult {
    let dir = std::path::Path::new(&a.dir);
    let all = crate::advisories::read_dir(dir).map_err(|e| Failure::failed(e.to_string()))?;
    let source = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()).display().to_string();
    let matching = crate::advisories::matching(&all, &crate::advisories::compiled_in()).len();
    let mut conn = crate::store::open(&ctx.paths.db)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
    crate::store::advisories::replace_all(&tx, &all, &source, crate::util::time::unix_now()).map_err(db)?;
    let detail = json!({ "advisories": all.len(), "affecting_this_binary": matching, "source": source });
    audit::append_in(
        &tx,
        &[Event::new(&super::operator_actor(), "advisories.imported", &source).detail(detail)],
    )
    .map_err(db)?;
    tx.commit().map_err(db)?;
    println!(
        "Imported {} advisories from {source}; {matching} affect crates compiled into this binary.",
        all.len()
    );
    Ok(())
}

fn db(e: rusqlite::Error) -> Failure {
    Failure::failed(format!("database: {e}"))
}

fn status(ctx: &Context, a: StatusArgs) -> CmdResult {
    let conn = crate::store::open(&ctx.paths.db)?;
    let imported = crate::store::advisories::imported(&conn).map_err(db)?;
    let all = crate::store::advisories::all(&conn).map_err(db)?;
    let crates = crate::advisories::compiled_in();
    let found: Vec<_> = crate::advisories::matching(&all, &crates)
        .into_iter()
        .map(|(adv, version)| {
            json!({ "id": adv.id, "crate": adv.package, "version": version, "title": adv.title,
                    "kind": adv.informational.as_deref().unwrap_or("vulnerability"), "patched": adv.patched })
        })
        .collect();
    if a.output == Format::Json {
        let v = json!({
            "imported_at": imported.as_ref().map(|i| super::output::time_json(&json!(i.at))),
            "source": imported.as_ref().map(|i| i.source.clone()),
            "advisories": imported.as_ref().map(|i| i.count),
            "crates_compiled_in": crates.len(),
            "matching": found,
        });
        println!("{}", serde_json::to_string_pretty(&v).map_err(|e| Failure::failed(e.to_string()))?);
        return Ok(());
    }
    match &imported {
        None => println!("No advisory database imported; run `vigocli advisories import DIR` with a RustSec advisory-db checkout."),
        Some(i) => println!(
            "{} advisories imported {} from {} (newest {}); {} crates compiled in.",
            i.count,
            super::output::time_json(&json!(i.at)).as_str().unwrap_or("-"),
            i.source,
            i.newest.as_deref().unwrap_or("-"),
            crates.len()
        ),
    }
    for f in &found {
        println!(
            "{}  {} {}  {}  patched: {}",
            f["id"].as_str().unwrap_or_default(),
            f["crate"].as_str().unwrap_or_default(),
            f["version"].as_str().unwrap_or_default(),
            f["title"].as_str().unwrap_or_default(),
            f["patched"]
        );
    }
    Ok(())
}
