//! `vigocli audit verify|tail`: read the local database of `--base-dir` directly.

use argh::{ArgsInfo, FromArgs};

use super::output::Format;
use super::Context;
use crate::audit::{self, ExportVerdict, Verdict};
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
/// Walk the whole chain; exit 0 if it holds, 1 naming the first bad row. With --export, check a
/// file of exported rows instead of the database (a sink's JSON Lines file, or what a syslog
/// receiver wrote): a missing, edited or reordered row is named.
struct VerifyArgs {
    /// a head hash recorded earlier (hex); the chain must still contain it
    #[argh(option)]
    expect_head: Option<String>,
    /// a file of exported audit rows to check instead of the database (- for stdin)
    #[argh(option)]
    export: Option<String>,
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
    if let AuditCommand::Verify(VerifyArgs { expect_head, export: Some(file) }) = &args.command {
        return verify_export(file, expect_head.as_deref());
    }
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
    if let AuditCommand::Verify(VerifyArgs { expect_head: Some(h), .. }) = &args.command {
        check_head_arg(h)?;
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

fn check_head_arg(h: &str) -> CmdResult {
    if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Failure::usage(format!(
            "--expect-head wants the 64 hex characters of a head hash printed by `audit verify`, got {h:?}"
        )));
    }
    Ok(())
}

/// `audit verify --export FILE`: the chain as a receiver got it, without the database.
fn verify_export(file: &str, expect_head: Option<&str>) -> CmdResult {
    if let Some(h) = expect_head {
        check_head_arg(h)?;
    }
    let verdict = if file == "-" {
        audit::verify_export(std::io::stdin().lock(), expect_head)
    } else {
        let f = std::fs::File::open(file).map_err(|e| Failure::failed(format!("{file}: {e}")))?;
        audit::verify_export(std::io::BufReader::new(f), expect_head)
    }
    .map_err(|e| Failure::failed(format!("{file}: {e}")))?;
    match verdict {
        ExportVerdict::Intact { first, last, repeated, head } => {
            let count = last - first + 1;
            let mut line = format!("export intact: rows {first} to {last} ({count} rows), head {head}");
            if repeated > 0 {
                line.push_str(&format!("; {repeated} rows delivered more than once, identical"));
            }
            if first > 1 {
                line.push_str(&format!(
                    "; starts at row {first}: its link to row {} is not in this file",
                    first - 1
                ));
            }
            println!("{line}");
            Ok(())
        }
        ExportVerdict::Broken { line, seq, reason } => Err(Failure::failed(match seq {
            Some(seq) => format!("export broken at line {line} (row {seq}): {reason}"),
            None => format!("export broken at line {line}: {reason}"),
        })),
    }
}
