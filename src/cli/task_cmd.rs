//! `vigocli task run|status|list`: ad-hoc commands on envoys, through the admin API.

use argh::{ArgsInfo, FromArgs};
use serde_json::{json, Value};

use super::admin_client::AdminClient;
use super::fleet_cmd::rows;
use super::output::{self, col, time_col, time_json, Format};
use super::Context;
use crate::exit::{CmdResult, Failure};

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "task")]
/// Run a command on envoys now, in batches, and see how it went (docs/OPERATIONS.md, Ad-hoc
/// tasks).
pub struct TaskArgs {
    #[argh(subcommand)]
    command: TaskCommand,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand)]
enum TaskCommand {
    Run(TaskRun),
    Status(TaskStatus),
    List(TaskList),
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "run")]
/// Hand a command to the envoys TARGET selects, at their next check-in, batch by batch. The
/// server refuses what its dangerous-command scanner flags unless --force; each agent still
/// applies its own guardrails. Exit 0 once the task is created (see `task status ID`).
struct TaskRun {
    /// the command line (run as an exec resource's would be: through /bin/sh when it needs one)
    #[argh(positional)]
    command: String,
    /// an envoy name or glob (web*), or trait conditions PATH=GLOB[,PATH=GLOB…]
    #[argh(option)]
    target: String,
    /// envoys per batch: N or N% of the targets (default: all at once)
    #[argh(option)]
    batch_size: Option<String>,
    /// stop handing out batches once more than N (or N%) envoys failed (default 0)
    #[argh(option)]
    max_failures: Option<String>,
    /// seconds the command may run on each envoy (default 60, at most 3600)
    #[argh(option, default = "60")]
    timeout: u32,
    /// print the batch plan; create nothing
    #[argh(switch)]
    dry_run: bool,
    /// run a command the dangerous-command scanner flags (audited as forced)
    #[argh(switch)]
    force: bool,
    /// output format: table (default) or json
    #[argh(option, short = 'o', default = "Format::Table")]
    output: Format,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "status")]
/// One task: its counts, and each envoy's state, exit code and output tail.
struct TaskStatus {
    /// task id
    #[argh(positional)]
    id: String,
    /// output format: table (default) or json
    #[argh(option, short = 'o', default = "Format::Table")]
    output: Format,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "list")]
/// The latest tasks, newest first, with their counts.
struct TaskList {
    /// output format: table (default) or json
    #[argh(option, short = 'o', default = "Format::Table")]
    output: Format,
}

pub fn task(ctx: &Context, a: TaskArgs) -> CmdResult {
    let client = || AdminClient::from_ctx(ctx);
    match a.command {
        TaskCommand::Run(r) => {
            let body = json!({
                "command": r.command, "target": r.target, "batch_size": r.batch_size,
                "max_failures": r.max_failures, "timeout_secs": r.timeout, "dry_run": r.dry_run,
                "force": r.force,
            });
            let v = client()?.post("/v1/tasks", body)?;
            if r.output == Format::Json {
                return output::show(r.output, &v, &[]);
            }
            let batches = v["batches"].as_array().cloned().unwrap_or_default();
            for (i, b) in batches.iter().enumerate() {
                let names: Vec<&str> = b.as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                println!("batch {}: {}", i + 1, names.join(", "));
            }
            let forced = if v["forced"] == json!(true) { " (forced past the danger scanner)" } else { "" };
            match v["id"].as_str() {
                Some(id) => println!(
                    "task {id}: {} envoys in {} batches{forced}; {} of the first batch told to check in now, \
                     the rest take it at their next check-in; `vigocli task status {id}` follows it",
                    v["targets"],
                    batches.len(),
                    v["nudged"].as_u64().unwrap_or(0)
                ),
                None => println!(
                    "dry run: {} envoys in {} batches{forced}; nothing was created",
                    v["targets"],
                    batches.len()
                ),
            }
            Ok(())
        }
        TaskCommand::Status(s) => {
            if s.id.is_empty() || s.id.len() > 64 || !s.id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
            {
                return Err(Failure::usage(format!(
                    "{:?} is not a task id; `vigocli task list` shows them",
                    s.id
                )));
            }
            let v = client()?.get(&format!("/v1/tasks/{}", s.id))?;
            if s.output == Format::Json {
                return output::show(s.output, &v, &[]);
            }
            let t = &v["task"];
            let stopped = t["stopped"].as_str().map(|why| format!(", stopped: {why}")).unwrap_or_default();
            println!(
                "task {}: {} ok, {} failed, {} running, {} waiting{stopped}",
                t["id"].as_str().unwrap_or_default(),
                t["ok"],
                t["failed"],
                t["sent"],
                t["waiting"]
            );
            println!(
                "command: {}",
                crate::util::text::escape_control(t["command"].as_str().unwrap_or_default())
            );
            println!();
            let runs = rows(&v["runs"], |r| {
                json!({
                    "envoy": r["envoy"], "batch": r["batch"].as_u64().map(|b| b + 1), "state": r["state"],
                    "exit": r["exit_code"], "ms": r["duration_ms"],
                })
            });
            let columns = [
                col("ENVOY", "envoy"),
                col("BATCH", "batch"),
                col("STATE", "state"),
                col("EXIT", "exit"),
                col("MS", "ms"),
            ];
            output::list(Format::Table, runs, &columns, "no envoys in this task")?;
            for r in v["runs"].as_array().into_iter().flatten() {
                for field in ["error", "output"] {
                    let text = r[field].as_str().unwrap_or_default();
                    if !text.trim().is_empty() {
                        println!(
                            "\n{} ({field}):",
                            crate::util::text::escape_control(r["envoy"].as_str().unwrap_or_default())
                        );
                        for line in text.lines() {
                            println!("  {}", crate::util::text::escape_control(line));
                        }
                    }
                }
            }
            Ok(())
        }
        TaskCommand::List(l) => {
            let v = client()?.get("/v1/tasks")?;
            let items = rows(&v["tasks"], |t| {
                json!({
                    "id": t["id"], "command": t["command"], "target": t["target"], "ok": t["ok"],
                    "failed": t["failed"], "pending": t["waiting"].as_u64().unwrap_or(0) + t["sent"].as_u64().unwrap_or(0),
                    "stopped": t["stopped"], "created_at": time_json(&t["created_at"]), "created_by": t["created_by"],
                })
            });
            let columns = [
                col("ID", "id"),
                col("TARGET", "target"),
                col("OK", "ok"),
                col("FAILED", "failed"),
                col("PENDING", "pending"),
                time_col("CREATED (UTC)", "created_at"),
                col("COMMAND", "command"),
            ];
            output::list(l.output, items, &columns, "no tasks yet; `vigocli task run` makes one")
        }
    }
}
