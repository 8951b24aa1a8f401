//! `vigocli tokens|envoys|runs|api-tokens`: fleet operations through the admin API.

use argh::{ArgsInfo, FromArgs};
use serde_json::{json, Value};

use super::admin_client::AdminClient;
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
struct TokenList {}

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
struct EnvoyList {}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "show")]
/// Show one envoy, its bundle and the secret keys it may resolve.
struct EnvoyShow {
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
struct ApiTokenList {}

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

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// The STATE column of envoys and API tokens: revoked once `revoked_at` is set.
fn active_or_revoked(revoked_at: &Value) -> &'static str {
    if revoked_at.is_null() {
        "active"
    } else {
        "revoked"
    }
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
        TokensCommand::List(_) => {
            let v = client()?.get("/v1/enroll-tokens")?;
            println!("{:<36}  {:<8}  {:<19}  ENVOY", "ID", "STATE", "EXPIRES (UTC)");
            for t in v["tokens"].as_array().into_iter().flatten() {
                println!(
                    "{:<36}  {:<8}  {:<19}  {}",
                    t["id"].as_str().unwrap_or_default(),
                    t["state"].as_str().unwrap_or_default(),
                    when(&t["expires_at"]),
                    t["envoy_name"].as_str().unwrap_or("-")
                );
            }
        }
    }
    Ok(())
}

pub fn envoys(ctx: &Context, a: EnvoysArgs) -> CmdResult {
    // Connected only after the arguments passed their checks: a bad one never reaches the server.
    let client = || AdminClient::from_ctx(ctx);
    match a.command {
        EnvoysCommand::List(_) => {
            let v = client()?.get("/v1/envoys")?;
            println!("{:<24}  {:<36}  {:<8}  LAST SEEN (UTC)", "NAME", "ID", "STATE");
            for e in v["envoys"].as_array().into_iter().flatten() {
                println!(
                    "{:<24}  {:<36}  {:<8}  {}",
                    e["name"].as_str().unwrap_or_default(),
                    e["id"].as_str().unwrap_or_default(),
                    active_or_revoked(&e["revoked_at"]),
                    when(&e["last_seen"])
                );
            }
        }
        EnvoysCommand::Show(s) => {
            crate::wire::validate_envoy_name(&s.name).map_err(Failure::usage)?;
            println!("{}", pretty(&client()?.get(&format!("/v1/envoys/{}", s.name))?))
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
            println!("{:<36}  {:<24}  {:<10}  RECEIVED (UTC)", "ID", "ENVOY", "STATUS");
            for r in v["runs"].as_array().into_iter().flatten() {
                println!(
                    "{:<36}  {:<24}  {:<10}  {}",
                    r["id"].as_str().unwrap_or_default(),
                    r["envoy"].as_str().unwrap_or_default(),
                    r["status"].as_str().unwrap_or_default(),
                    when(&r["received_at"])
                );
            }
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
            println!("{}", pretty(&client()?.get(&format!("/v1/runs/{}", s.id))?))
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
        ApiTokensCommand::List(_) => {
            let v = client()?.get("/v1/api-tokens")?;
            println!("{:<24}  {:<10}  {:<8}  CREATED (UTC)", "NAME", "ROLE", "STATE");
            for t in v["api_tokens"].as_array().into_iter().flatten() {
                println!(
                    "{:<24}  {:<10}  {:<8}  {}",
                    t["name"].as_str().unwrap_or_default(),
                    t["role"].as_str().unwrap_or_default(),
                    active_or_revoked(&t["revoked_at"]),
                    when(&t["created_at"])
                );
            }
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
