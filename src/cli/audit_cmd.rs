//! `vigocli audit verify|tail`: read the local database of `--base-dir` directly.

use argh::{ArgsInfo, FromArgs};

use super::output::Format;
use super::Context;
use crate::audit::{self, Verdict};
use crate::exit::{CmdResult, Failure};

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "audit")]
/// Inspect the hash-chained audit log.
pub struct AuditArgs {
    #[argh(subcommand)]
    command: AuditCommand,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand)]
enum AuditCommand {
    Verify(VerifyArgs),
    Tail(TailArgs),
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "verify")]
/// Walk the whole chain; exit 0 if it holds, 1 naming the first bad row.
struct VerifyArgs {
    /// a head hash recorded earlier (hex); the chain must still contain it
    #[argh(option)]
    expect_head: Option<String>,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "tail")]
/// Print the most recent audit rows, oldest first.
struct TailArgs {
    /// how many rows (default 20)
    #[argh(option, short = 'n', default = "20")]
    n: u32,
    /// one JSON object per line (same as -o json)
    #[argh(switch)]
    json: bool,
    /// output format: table (default) or json (one object per line, oldest first)
    #[argh(option, short = 'o', default = "Format::Table")]
    output: Format,
}

pub fn run(ctx: &Context, args: AuditArgs) -> CmdResult {
    if !ctx.paths.db.exists() {
        return Err(Failure::failed(format!(
            "no database at {}; check --base-dir (or VIGO_BASE_DIR)",
            ctx.paths.db.display()
        )));
    }
    // Opening migrates the schema, which would turn an emptied file into a fresh, "intact" log.
    if std::fs::metadata(&ctx.paths.db).is_ok_and(|m| m.len() == 0) {
        return Err(Failure::failed(format!(
            "{} is empty: it is not a Vigo database any more; restore it from a backup",
            ctx.paths.db.display()
        )));
    }
    if let AuditCommand::Verify(VerifyArgs { expect_head: Some(h) }) = &args.command {
        if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Failure::usage(format!(
                "--expect-head wants the 64 hex characters of a head hash printed by `audit verify`, got {h:?}"
            )));
        }
    }
    let conn = crate::store::open(&ctx.paths.db)?;
    match args.command {
        AuditCommand::Verify(v) => match audit::verify(&conn, v.expect_head.as_deref())? {
            Verdict::Intact { rows, head } => {
                println!("audit chain intact: {rows} rows, head {head}");
                Ok(())
            }
            Verdict::Broken { seq, reason } => {
                Err(Failure::failed(format!("audit chain broken at row {seq}: {reason}")))
            }
        },
        AuditCommand::Tail(t) => {
            let rows = audit::tail(&conn, t.n)?;
            let json = t.json || t.output == Format::Json;
            if rows.is_empty() && !json {
                eprintln!("the audit log is empty");
            }
            for row in rows {
                if json {
                    println!("{}", serde_json::to_string(&row).map_err(|e| Failure::failed(e.to_string()))?);
                } else {
                    println!(
                        "{:>6} {} {:<28} {:<24} {} {}",
                        row.seq, row.ts, row.action, row.actor, row.target, row.detail
                    );
                }
            }
            Ok(())
        }
    }
}
