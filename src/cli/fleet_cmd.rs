//! `vigocli tokens|envoys|runs|api-tokens`: fleet operations through the admin API.

use argh::{ArgsInfo, FromArgs};
use serde_json::{json, Value};

use super::admin_client::AdminClient;
use super::output::{self, col, time_col, time_json, Format};
use super::Context;
use crate::exit::{CmdResult, Failure};

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "tokens")]
/// Enrollment tokens: single-use, expiring, carrying the CA pin.
pub struct TokensArgs {
    #[argh(subcommand)]
    command: TokensCommand,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand)]
enum TokensCommand {
    Create(TokenCreate),
    List(TokenList),
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "create")]
/// Mint an enrollment token; prints only the token on stdout.
struct TokenCreate {
    /// lifetime, e.g. 30m, 24h, 7d (default 24h)
    #[argh(option, default = "String::from(\"24h\")")]
    ttl: String,
    /// bind the token to this envoy name
    #[argh(option)]
    envoy: Option<String>,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "list")]
/// List enrollment tokens and their state (never the tokens themselves).
struct TokenList {
    /// output format: table (default) or json
    #[argh(option, short = 'o', default = "Format::Table")]
    output: Format,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "envoys")]
/// Enrolled envoys.
pub struct EnvoysArgs {
    #[argh(subcommand)]
    command: EnvoysCommand,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand)]
enum EnvoysCommand {
    List(EnvoyList),
    Show(EnvoyShow),
    Revoke(EnvoyRevoke),
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "list")]
/// List envoys.
struct EnvoyList {
    /// output format: table (default) or json
    #[argh(option, short = 'o', default = "Format::Table")]
    output: Format,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "show")]
/// Show one envoy, its bundle and the secret keys it may resolve.
struct EnvoyShow {
    /// output format: table (default) or json
    #[argh(option, short = 'o', default = "Format::Table")]
    output: Format,
    /// envoy name or id
    #[argh(positional)]
    name: String,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "revoke")]
/// Revoke an envoy: it is refused at check-in and its identity can never enroll again.
struct EnvoyRevoke {
    /// envoy name or id
    #[argh(positional)]
    name: String,
}

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

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "api-tokens")]
/// API tokens (vgot_…) for the admin API, with a role: admin, viewer or compliance.
pub struct ApiTokensArgs {
    #[argh(subcommand)]
    command: ApiTokensCommand,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand)]
enum ApiTokensCommand {
    Create(ApiTokenCreate),
    List(ApiTokenList),
    Revoke(ApiTokenRevoke),
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "list")]
/// List API tokens: name, role, state (never the tokens themselves).
struct ApiTokenList {
    /// output format: table (default) or json
    #[argh(option, short = 'o', default = "Format::Table")]
    output: Format,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "revoke")]
/// Revoke the active API token of that name; it stops working at once.
struct ApiTokenRevoke {
    /// the token's name
    #[argh(positional)]
    name: String,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "create")]
/// Mint an API token; prints only the token on stdout (it is stored hashed).
struct ApiTokenCreate {
    /// a name for the token
    #[argh(option)]
    name: String,
    /// admin, viewer or compliance
    #[argh(option)]
    role: String,
}

/// The STATE column of envoys and API tokens: revoked once `revoked_at` is set.
fn active_or_revoked(revoked_at: &Value) -> &'static str {
    if revoked_at.is_null() {
        "active"
    } else {
        "revoked"
    }
}

/// The objects of a JSON array in the server's answer, each mapped to its documented fields.
fn rows(array: &Value, map: impl Fn(&Value) -> Value) -> Vec<Value> {
    array.as_array().into_iter().flatten().map(map).collect()
}

/// An envoy as `envoys list` and `envoys show` print it.
fn envoy_fields(e: &Value) -> Value {
    json!({
        "name": e["name"], "id": e["id"], "state": active_or_revoked(&e["revoked_at"]),
        "enrolled_at": time_json(&e["enrolled_at"]), "last_seen": time_json(&e["last_seen"]),
        "revoked_at": time_json(&e["revoked_at"]), "last_bundle_hash": e["last_bundle_hash"],
        "triggered": json!(e["triggered"].as_array().cloned().unwrap_or_default()),
    })
}

fn when(v: &Value) -> String {
    v.as_i64()
        .map(|t| crate::util::time::rfc3339_millis(t * 1000)[..19].replace('T', " "))
        .unwrap_or_else(|| "-".into())
}

pub fn tokens(ctx: &Context, a: TokensArgs) -> CmdResult {
    // Connected only after the arguments passed their checks: a bad one never reaches the server.
    let client = || AdminClient::from_ctx(ctx);
    match a.command {
        TokensCommand::Create(c) => {
            let ttl = crate::util::time::parse_duration(&c.ttl).map_err(Failure::usage)?;
            if let Some(name) = &c.envoy {
                crate::wire::validate_envoy_name(name).map_err(Failure::usage)?;
            }
            let v = client()?.post("/v1/enroll-tokens", json!({ "ttl_secs": ttl, "envoy_name": c.envoy }))?;
            eprintln!("Enrollment token (single use, expires {} UTC):", when(&v["expires_at"]));
            println!("{}", v["token"].as_str().unwrap_or_default());
            eprintln!("Give it to the agent on stdin or in a 0600 file: vigo-agent enroll --server HOST:PORT --token-file FILE");
        }
        TokensCommand::List(l) => {
            let v = client()?.get("/v1/enroll-tokens")?;
            let items = rows(&v["tokens"], |t| {
                json!({
                    "id": t["id"], "state": t["state"], "envoy_name": t["envoy_name"],
                    "created_by": t["created_by"], "created_at": time_json(&t["created_at"]),
                    "expires_at": time_json(&t["expires_at"]),
                })
            });
            let columns = [
                col("ID", "id"),
                col("STATE", "state"),
                time_col("EXPIRES (UTC)", "expires_at"),
                col("ENVOY", "envoy_name"),
            ];
            output::list(
                l.output,
                items,
                &columns,
                "no enrollment tokens (`vigocli tokens create` makes one)",
            )?;
        }
    }
    Ok(())
}

pub fn envoys(ctx: &Context, a: EnvoysArgs) -> CmdResult {
    // Connected only after the arguments passed their checks: a bad one never reaches the server.
    let client = || AdminClient::from_ctx(ctx);
    match a.command {
        EnvoysCommand::List(l) => {
            let v = client()?.get("/v1/envoys")?;
            let items = rows(&v["envoys"], envoy_fields);
            let columns = [
                col("NAME", "name"),
                col("ID", "id"),
                col("STATE", "state"),
                time_col("LAST SEEN (UTC)", "last_seen"),
            ];
            output::list(l.output, items, &columns, "no envoys enrolled")?;
        }
        EnvoysCommand::Show(s) => {
            crate::wire::validate_envoy_name(&s.name).map_err(Failure::usage)?;
            let v = client()?.get(&format!("/v1/envoys/{}", s.name))?;
            let mut item = envoy_fields(&v["envoy"]);
            item["bundle_hash"] = v["bundle_hash"].clone();
            item["resources"] = v["resources"].clone();
            item["entitled_keys"] = json!(v["entitled_keys"].as_array().cloned().unwrap_or_default());
            let fields = [
                col("name", "name"),
                col("id", "id"),
                col("state", "state"),
                time_col("enrolled", "enrolled_at"),
                time_col("last seen", "last_seen"),
                time_col("revoked", "revoked_at"),
                col("bundle hash", "bundle_hash"),
                col("resources", "resources"),
                col("entitled keys", "entitled_keys"),
                col("triggered", "triggered"),
            ];
            output::show(s.output, &item, &fields)?;
        }
        EnvoysCommand::Revoke(r) => {
            crate::wire::validate_envoy_name(&r.name).map_err(Failure::usage)?;
            let v = client()?.post(&format!("/v1/envoys/{}/revoke", r.name), json!({}))?;
            println!(
                "Envoy {} ({}) revoked.",
                v["name"].as_str().unwrap_or_default(),
                v["revoked"].as_str().unwrap_or_default()
            );
        }
    }
    Ok(())
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
    output::list(format, resources.clone(), &columns, "no resources in this run")?;
    for r in &resources {
        for (what, field) in
            [("error", "error"), ("guardrail", "guardrail"), ("diff", "diff"), ("output", "output")]
        {
            let text = r[field].as_str().unwrap_or_default();
            if !text.is_empty() {
                println!("\n{} ({what}):", r["name"].as_str().unwrap_or_default());
                for line in text.lines() {
                    println!("  {line}");
                }
            }
        }
    }
    Ok(())
}

pub fn api_tokens(ctx: &Context, a: ApiTokensArgs) -> CmdResult {
    // Connected only after the arguments passed their checks: a bad one never reaches the server.
    let client = || AdminClient::from_ctx(ctx);
    match a.command {
        ApiTokensCommand::Create(c) => {
            if crate::server::admin_auth::Role::parse(&c.role).is_none() {
                return Err(Failure::usage("--role must be admin, viewer or compliance"));
            }
            crate::wire::validate_name("token name", &c.name).map_err(Failure::usage)?;
            let v = client()?.post("/v1/api-tokens", json!({ "name": c.name, "role": c.role }))?;
            eprintln!("API token ({} role); shown once:", c.role);
            println!("{}", v["token"].as_str().unwrap_or_default());
        }
        ApiTokensCommand::List(l) => {
            let v = client()?.get("/v1/api-tokens")?;
            let items = rows(&v["api_tokens"], |t| {
                json!({
                    "name": t["name"], "role": t["role"], "state": active_or_revoked(&t["revoked_at"]),
                    "created_at": time_json(&t["created_at"]), "revoked_at": time_json(&t["revoked_at"]),
                })
            });
            let columns = [
                col("NAME", "name"),
                col("ROLE", "role"),
                col("STATE", "state"),
                time_col("CREATED (UTC)", "created_at"),
            ];
            output::list(l.output, items, &columns, "no API tokens (`vigocli api-tokens create` makes one)")?;
        }
        ApiTokensCommand::Revoke(r) => {
            crate::wire::validate_name("token name", &r.name).map_err(Failure::usage)?;
            client()?.post(&format!("/v1/api-tokens/{}/revoke", r.name), json!({}))?;
            println!("API token {:?} revoked.", r.name);
        }
    }
    Ok(())
}

/// `vigocli config publish`: the server reloads its config directory.
pub fn publish(ctx: &Context) -> CmdResult {
    let v = AdminClient::from_ctx(ctx)?.post("/v1/config/publish", json!({}))?;
    println!(
        "Config published: epoch {}, content hash {}",
        v["config_epoch"],
        v["content_hash"].as_str().unwrap_or_default()
    );
    for e in v["envoys"].as_array().into_iter().flatten() {
        println!("  {:<32} {} resources", e["pattern"].as_str().unwrap_or_default(), e["resources"]);
    }
    Ok(())
}
