//! `vigocli tokens|envoys|api-tokens`, `config publish`: fleet operations through the admin API.

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
/// Mint an enrollment token; prints only the token on stdout. Say which names it may enroll:
/// exactly one of --envoy, --envoy-pattern or --any-name.
struct TokenCreate {
    /// lifetime, e.g. 30m, 24h, 7d (default 24h)
    #[argh(option, default = "String::from(\"24h\")")]
    ttl: String,
    /// the token enrolls exactly this envoy name
    #[argh(option)]
    envoy: Option<String>,
    /// the token enrolls any name matching this glob, e.g. 'web-*'
    #[argh(option)]
    envoy_pattern: Option<String>,
    /// the token enrolls any name its holder picks (including one that a config pattern grants
    /// secrets to); prefer --envoy or --envoy-pattern
    #[argh(switch)]
    any_name: bool,
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
/// List envoys with their status (converged, changed, drifting, failed, pending, stale,
/// never, revoked; docs/OPERATIONS.md, Fleet status).
struct EnvoyList {
    /// output format: table (default) or json
    #[argh(option, short = 'o', default = "Format::Table")]
    output: Format,
    /// only envoys with this status
    #[argh(option)]
    status: Option<String>,
    /// only envoys whose traits match PATH=GLOB (e.g. os.family=debian, kernel.release=6.*);
    /// several must all hold
    #[argh(option, long = "where")]
    wheres: Vec<String>,
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
    /// whose token (a web user, or local-admin); needed when several owners use that name
    #[argh(option)]
    owner: Option<String>,
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
pub(super) fn active_or_revoked(revoked_at: &Value) -> &'static str {
    if revoked_at.is_null() {
        "active"
    } else {
        "revoked"
    }
}

/// The objects of a JSON array in the server's answer, each mapped to its documented fields.
pub(super) fn rows(array: &Value, map: impl Fn(&Value) -> Value) -> Vec<Value> {
    array.as_array().into_iter().flatten().map(map).collect()
}

/// An envoy as `envoys list` and `envoys show` print it.
fn envoy_fields(e: &Value) -> Value {
    json!({
        "name": e["name"], "id": e["id"], "state": active_or_revoked(&e["revoked_at"]), "status": e["status"],
        "enrolled_at": time_json(&e["enrolled_at"]), "last_seen": time_json(&e["last_seen"]),
        "revoked_at": time_json(&e["revoked_at"]), "last_bundle_hash": e["last_bundle_hash"],
        "triggered": json!(e["triggered"].as_array().cloned().unwrap_or_default()),
        "cert_expires_at": time_json(&e["cert_not_after"]),
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
            let binding = match (&c.envoy, &c.envoy_pattern, c.any_name) {
                (Some(name), None, false) => {
                    crate::wire::validate_envoy_name(name).map_err(Failure::usage)?;
                    json!({ "ttl_secs": ttl, "envoy_name": name })
                }
                (None, Some(pattern), false) => {
                    crate::config::glob::Glob::new(pattern)
                        .map_err(|e| Failure::usage(format!("--envoy-pattern: {e}")))?;
                    json!({ "ttl_secs": ttl, "envoy_pattern": pattern })
                }
                (None, None, true) => json!({ "ttl_secs": ttl, "any_name": true }),
                _ => {
                    return Err(Failure::usage(
                        "say which names the token may enroll: exactly one of --envoy NAME, --envoy-pattern GLOB or --any-name",
                    ))
                }
            };
            let v = client()?.post("/v1/enroll-tokens", binding)?;
            eprintln!(
                "Enrollment token (single use, expires {} UTC, enrolls {}):",
                when(&v["expires_at"]),
                v["binding"].as_str().unwrap_or_default()
            );
            println!("{}", v["token"].as_str().unwrap_or_default());
            eprintln!("Give it to the agent on stdin or in a 0600 file: vigo-agent enroll --server HOST:PORT --token-file FILE");
        }
        TokensCommand::List(l) => {
            let v = client()?.get("/v1/enroll-tokens")?;
            let items = rows(&v["tokens"], |t| {
                json!({
                    "id": t["id"], "state": t["state"], "envoy_name": t["envoy_name"],
                    "envoy_pattern": t["envoy_pattern"], "any_name": t["any_name"], "binding": t["binding"],
                    "created_by": t["created_by"], "created_at": time_json(&t["created_at"]),
                    "expires_at": time_json(&t["expires_at"]),
                })
            });
            let columns = [
                col("ID", "id"),
                col("STATE", "state"),
                time_col("EXPIRES (UTC)", "expires_at"),
                col("ENROLLS", "binding"),
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

/// An envoy id (a UUID) or a valid envoy name; nothing else is sent to the server.
fn check_name_or_id(name: &str) -> CmdResult {
    if crate::wire::looks_like_envoy_id(name) {
        return Ok(());
    }
    crate::wire::validate_envoy_name(name).map_err(Failure::usage)
}

pub fn envoys(ctx: &Context, a: EnvoysArgs) -> CmdResult {
    // Connected only after the arguments passed their checks: a bad one never reaches the server.
    let client = || AdminClient::from_ctx(ctx);
    match a.command {
        EnvoysCommand::List(l) => {
            let mut query = form_urlencoded::Serializer::new(String::new());
            if let Some(status) = &l.status {
                if !crate::store::fleet::STATES.contains(&status.as_str()) {
                    return Err(Failure::usage(format!(
                        "--status {status:?} is not one of {}",
                        crate::store::fleet::STATES.join(", ")
                    )));
                }
                query.append_pair("status", status);
            }
            for w in &l.wheres {
                crate::store::traits::parse_where(w).map_err(|e| Failure::usage(format!("--{e}")))?;
                query.append_pair("where", w);
            }
            let query = query.finish();
            let path =
                if query.is_empty() { "/v1/envoys".to_string() } else { format!("/v1/envoys?{query}") };
            let v = client()?.get(&path)?;
            let items = rows(&v["envoys"], envoy_fields);
            let columns = [
                col("NAME", "name"),
                col("ID", "id"),
                col("STATE", "state"),
                col("STATUS", "status"),
                time_col("LAST SEEN (UTC)", "last_seen"),
            ];
            let filtered = l.status.is_some() || !l.wheres.is_empty();
            let empty = if filtered { "no envoys match" } else { "no envoys enrolled" };
            output::list(l.output, items, &columns, empty)?;
        }
        EnvoysCommand::Show(s) => {
            check_name_or_id(&s.name)?;
            let v = client()?.get(&format!("/v1/envoys/{}", s.name))?;
            let mut item = envoy_fields(&v["envoy"]);
            item["status"] = v["status"].clone();
            item["traits"] = v["traits"].clone();
            item["traits_updated_at"] = time_json(&v["traits_updated_at"]);
            let t = &v["traits"];
            item["os"] = t["os"]["name"].clone();
            item["kernel"] = t["kernel"]["release"].clone();
            item["addresses"] = json!(t["network"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|i| i["name"] != "lo")
                .flat_map(|i| i["addresses"].as_array().cloned().unwrap_or_default())
                .collect::<Vec<_>>());
            item["bundle_hash"] = v["bundle_hash"].clone();
            item["resources"] = v["resources"].clone();
            item["entitled_keys"] = json!(v["entitled_keys"].as_array().cloned().unwrap_or_default());
            item["push_channel"] = v["push_channel"].clone();
            item["agent_version"] = v["agent"]["version"].clone();
            item["agent_binary"] = v["agent"]["binary"].clone();
            item["tamper_signals"] =
                json!(v["agent"]["tamper_signals"].as_array().cloned().unwrap_or_default());
            let fields = [
                col("name", "name"),
                col("id", "id"),
                col("state", "state"),
                col("status", "status"),
                time_col("enrolled", "enrolled_at"),
                time_col("last seen", "last_seen"),
                time_col("revoked", "revoked_at"),
                col("bundle hash", "bundle_hash"),
                col("resources", "resources"),
                col("entitled keys", "entitled_keys"),
                col("triggered", "triggered"),
                col("push channel held", "push_channel"),
                col("agent version", "agent_version"),
                col("agent binary", "agent_binary"),
                col("tamper signals", "tamper_signals"),
                col("os", "os"),
                col("kernel", "kernel"),
                col("addresses", "addresses"),
                time_col("traits updated", "traits_updated_at"),
            ];
            if s.output == Format::Json {
                // The derived lines are a summary of `traits`, which JSON carries whole.
                for k in ["os", "kernel", "addresses"] {
                    item.as_object_mut().map(|o| o.remove(k));
                }
            }
            output::show(s.output, &item, &fields)?;
        }
        EnvoysCommand::Revoke(r) => {
            check_name_or_id(&r.name)?;
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

pub fn api_tokens(ctx: &Context, a: ApiTokensArgs) -> CmdResult {
    // Connected only after the arguments passed their checks: a bad one never reaches the server.
    let client = || AdminClient::from_ctx(ctx);
    match a.command {
        ApiTokensCommand::Create(c) => {
            if crate::auth::Role::parse(&c.role).is_none() {
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
            let query = match &r.owner {
                Some(o) if o == "local-admin" => format!("?owner={o}"),
                Some(o) => {
                    crate::auth::accounts::check_username(o).map_err(Failure::usage)?;
                    format!("?owner={o}")
                }
                None => String::new(),
            };
            client()?.post(&format!("/v1/api-tokens/{}/revoke{query}", r.name), json!({}))?;
            println!("API token {:?} revoked.", r.name);
        }
    }
    Ok(())
}

/// `vigocli config publish`: the server reloads its config directory.
pub fn publish(ctx: &Context, p: super::config_cmd::PublishArgs) -> CmdResult {
    let body = json!({ "message": p.message.unwrap_or_default(), "force": p.force });
    let v = AdminClient::from_ctx(ctx)?.post("/v1/config/publish", body)?;
    println!(
        "Config published: revision {}, epoch {}, content hash {}",
        v["revision"],
        v["config_epoch"],
        v["content_hash"].as_str().unwrap_or_default()
    );
    for e in v["envoys"].as_array().into_iter().flatten() {
        println!("  {:<32} {} resources", e["pattern"].as_str().unwrap_or_default(), e["resources"]);
    }
    Ok(())
}
