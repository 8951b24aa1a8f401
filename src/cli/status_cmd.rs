//! `vigocli fleet status`: envoys by status and those needing attention, as the server
//! computes them (docs/OPERATIONS.md, "Fleet status").

use argh::{ArgsInfo, FromArgs};
use serde_json::{json, Value};

use super::admin_client::AdminClient;
use super::output::{self, col, time_col, time_json, Format};
use super::Context;
use crate::exit::CmdResult;

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "fleet")]
/// The fleet as a whole.
pub struct FleetArgs {
    #[argh(subcommand)]
    command: FleetCommand,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand)]
enum FleetCommand {
    Status(StatusArgs),
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(
    subcommand,
    name = "status",
    note = "Statuses: converged, changed, drifting, failed, pending, stale, never, revoked (docs/OPERATIONS.md, Fleet status). Exit 0 whatever the fleet's state; scripts read -o json."
)]
/// How many envoys are in each status, and the envoys needing attention (failed, drifting,
/// stale, never checked in).
struct StatusArgs {
    /// output format: table (default) or json
    #[argh(option, short = 'o', default = "Format::Table")]
    output: Format,
}

pub fn run(ctx: &Context, a: FleetArgs) -> CmdResult {
    let FleetCommand::Status(s) = a.command;
    let v = AdminClient::from_ctx(ctx)?.get("/v1/fleet/status")?;
    let attention: Vec<Value> = v["attention"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| json!({ "name": e["name"], "id": e["id"], "status": e["status"], "last_seen": time_json(&e["last_seen"]) }))
        .collect();
    if s.output == Format::Json {
        let out = json!({
            "counts": v["counts"], "envoys": v["envoys"], "attention": attention,
            "attention_total": v["attention_total"], "push_channels": v["push_channels"], "rules": v["rules"],
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(());
    }
    let counts: Vec<Value> = v["counts"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(status, n)| json!({ "status": status, "envoys": n }))
        .collect();
    output::list(Format::Table, counts, &[col("STATUS", "status"), col("ENVOYS", "envoys")], "no envoys")?;
    println!("\npush channels held: {}", v["push_channels"].as_u64().unwrap_or(0));
    let total = v["attention_total"].as_u64().unwrap_or(0);
    if total == 0 {
        println!("\nnothing needs attention");
        return Ok(());
    }
    println!("\nneeding attention ({total}):");
    let columns = [col("NAME", "name"), col("STATUS", "status"), time_col("LAST SEEN (UTC)", "last_seen")];
    output::list(Format::Table, attention.clone(), &columns, "")?;
    if total > attention.len() as u64 {
        println!("… and {} more: vigocli envoys list --status STATUS", total - attention.len() as u64);
    }
    Ok(())
}
