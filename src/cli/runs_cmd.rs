//! `vigocli runs list|show`: run reports sent by agents, through the admin API.

use argh::{ArgsInfo, FromArgs};
use serde_json::{json, Value};

use super::admin_client::AdminClient;
use super::fleet_cmd::rows;
use super::output::{self, col, time_col, time_json, Format};
use super::Context;
use crate::exit::{CmdResult, Failure};

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "runs")]
/// Run reports sent by agents (already redacted by the agent).
pub struct RunsArgs {
    #[argh(subcommand)]
    command: RunsCommand,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand)]
enum RunsCommand {
    List(RunList),
    Show(RunShow),
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "list")]
/// List recent runs, newest first.
struct RunList {
    /// output format: table (default) or json
    #[argh(option, short = 'o', default = "Format::Table")]
    output: Format,
    /// only this envoy
    #[argh(option)]
    envoy: Option<String>,
    /// how many (default 20)
    #[argh(option, short = 'n', default = "20")]
    n: u32,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "show")]
/// Show one run report as JSON.
struct RunShow {
    /// output format: table (default) or json
    #[argh(option, short = 'o', default = "Format::Table")]
    output: Format,
    /// run id
    #[argh(positional)]
    id: String,
}

pub fn runs(ctx: &Context, a: RunsArgs) -> CmdResult {
    // Connected only after the arguments passed their checks: a bad one never reaches the server.
    let client = || AdminClient::from_ctx(ctx);
    match a.command {
        RunsCommand::List(l) => {
            let mut path = format!("/v1/runs?limit={}", l.n);
            if let Some(e) = &l.envoy {
                crate::wire::validate_envoy_name(e).map_err(Failure::usage)?;
                path.push_str(&format!("&envoy={e}"));
            }
            let v = client()?.get(&path)?;
            let items = rows(&v["runs"], |r| {
                json!({
                    "id": r["id"], "envoy": r["envoy"], "status": r["status"],
                    "received_at": time_json(&r["received_at"]), "bundle_hash": r["bundle_hash"],
                })
            });
            let columns = [
                col("ID", "id"),
                col("ENVOY", "envoy"),
                col("STATUS", "status"),
                time_col("RECEIVED (UTC)", "received_at"),
            ];
            let empty = match &l.envoy {
                Some(e) => format!("no runs reported by {e}"),
                None => "no runs reported".to_string(),
            };
            output::list(l.output, items, &columns, &empty)?;
        }
        RunsCommand::Show(s) => {
            // Run ids are UUIDs; anything else would be spliced into the request path.
            if s.id.is_empty() || s.id.len() > 64 || !s.id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
            {
                return Err(Failure::usage(format!(
                    "{:?} is not a run id; `vigocli runs list` shows them",
                    s.id
                )));
            }
            let v = client()?.get(&format!("/v1/runs/{}", s.id))?;
            show_run(s.output, &v)?;
        }
    }
    Ok(())
}

/// `runs show`: the run's header fields, then one row per resource (JSON: `resources`).
fn show_run(format: Format, v: &Value) -> CmdResult {
    let report = &v["report"];
    let resources = rows(&report["results"], |r| {
        json!({
            "name": r["name"], "type": r["type"], "status": r["status"], "duration_ms": r["duration_ms"],
            "diff": r["diff"], "error": r["error"], "output": r["output"],
        })
    });
    let item = json!({
        "id": v["id"], "envoy": v["envoy"], "received_at": time_json(&v["received_at"]),
        "status": report["status"], "noop": report["noop"],
        "started_at": time_json(&report["started_ms"].as_i64().map(|ms| ms / 1000).into()),
        "duration_ms": report["duration_ms"], "resources": resources,
        "unchanged_omitted": report["unchanged_omitted"].as_u64().unwrap_or(0),
    });
    if format == Format::Json {
        return output::show(format, &item, &[]);
    }
    let fields = [
        col("id", "id"),
        col("envoy", "envoy"),
        time_col("received", "received_at"),
        col("status", "status"),
        col("noop", "noop"),
        col("duration ms", "duration_ms"),
    ];
    output::show(format, &item, &fields)?;
    println!();
    let columns =
        [col("RESOURCE", "name"), col("TYPE", "type"), col("STATUS", "status"), col("MS", "duration_ms")];
    let omitted = item["unchanged_omitted"].as_u64().unwrap_or(0);
    if omitted > 0 && resources.is_empty() {
        println!("{omitted} resources, all unchanged (a converged run reports them as a count)");
    } else {
        output::list(format, resources.clone(), &columns, "no resources in this run")?;
    }
    for r in &resources {
        for (what, field) in
            [("error", "error"), ("guardrail", "guardrail"), ("diff", "diff"), ("output", "output")]
        {
            let text = r[field].as_str().unwrap_or_default();
            if !text.is_empty() {
                let name = r["name"].as_str().unwrap_or_default();
                println!("\n{} ({what}):", crate::util::text::escape_control(name));
                for line in text.lines() {
                    println!("  {}", crate::util::text::escape_control(line));
                }
            }
        }
    }
    Ok(())
}
