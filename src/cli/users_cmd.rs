//! `vigocli webusers` and `vigocli sessions`: the people who use the console and their sessions.

use argh::{ArgsInfo, FromArgs};
use serde_json::{json, Value};

use super::admin_client::AdminClient;
use super::fleet_cmd::rows;
use super::output::{self, col, time_col, time_json, Format};
use super::Context;
use crate::auth::{accounts, Role};
use crate::exit::{CmdResult, Failure};

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "webusers")]
/// Web users of the console: who may log in, with which role.
pub struct WebusersArgs {
    #[argh(subcommand)]
    command: WebusersCommand,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand)]
enum WebusersCommand {
    List(List),
    Create(Create),
    Show(Show),
    SetRole(SetRole),
    Disable(Disable),
    Enable(Enable),
    Delete(Delete),
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "list")]
/// List web users.
struct List {
    /// output format: table (default) or json
    #[argh(option, short = 'o', default = "Format::Table")]
    output: Format,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "create")]
/// Create a web user. An admin must be a person's account on the server host (uid >= 1000, a
/// login shell); its SSH key is read from ~USER/.ssh/id_ed25519.pub unless --ssh-key is given.
/// Set the password with `vigocli secrets set password vigo/web/auth/USERNAME`.
struct Create {
    /// username: 1-32 of a-z 0-9 . _ -, starting with a letter
    #[argh(positional)]
    username: String,
    /// admin, viewer (default) or compliance
    #[argh(option, default = "String::from(\"viewer\")")]
    role: String,
    /// the name shown in the console
    #[argh(option)]
    display_name: Option<String>,
    /// email (an OIDC login may match on it)
    #[argh(option)]
    email: Option<String>,
    /// file holding the user's SSH public key (one line of a .pub file), for isowebauth
    #[argh(option)]
    ssh_key: Option<String>,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "show")]
/// Show one web user, with their sessions and API tokens.
struct Show {
    #[argh(positional)]
    username: String,
    /// output format: table (default) or json
    #[argh(option, short = 'o', default = "Format::Table")]
    output: Format,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "set-role")]
/// Change a user's role; their sessions end at once and their API tokens follow.
struct SetRole {
    #[argh(positional)]
    username: String,
    /// admin, viewer or compliance
    #[argh(positional)]
    role: String,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "disable")]
/// Disable a user: no login, sessions end, API tokens stop working (until enabled).
struct Disable {
    #[argh(positional)]
    username: String,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "enable")]
/// Enable a disabled user.
struct Enable {
    #[argh(positional)]
    username: String,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "delete")]
/// Delete a user: sessions end, API tokens are revoked, the password leaves the vault.
struct Delete {
    #[argh(positional)]
    username: String,
}

fn user_fields(u: &Value) -> Value {
    json!({
        "username": u["username"], "role": u["role"], "state": u["state"], "display_name": u["display_name"],
        "email": u["email"], "ssh_key": u["ssh_key"], "created_at": time_json(&u["created_at"]),
        "created_by": u["created_by"], "updated_at": time_json(&u["updated_at"]),
    })
}

fn check_role(role: &str) -> CmdResult {
    Role::parse(role).map(drop).ok_or_else(|| Failure::usage("the role must be admin, viewer or compliance"))
}

/// An admin's SSH key from their home directory on this host, when they have one.
fn admin_key(username: &str) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let entry = crate::util::users::parse_passwd(&passwd).into_iter().find(|e| e.name == username)?;
    let text = std::fs::read_to_string(std::path::Path::new(&entry.home).join(".ssh/id_ed25519.pub")).ok()?;
    Some(text.lines().next()?.trim().to_string())
}

pub fn webusers(ctx: &Context, a: WebusersArgs) -> CmdResult {
    let client = || AdminClient::from_ctx(ctx);
    let name_ok = |n: &str| accounts::check_username(n).map_err(Failure::usage);
    match a.command {
        WebusersCommand::List(l) => {
            let v = client()?.get("/v1/users")?;
            let columns = [
                col("USERNAME", "username"),
                col("ROLE", "role"),
                col("STATE", "state"),
                col("EMAIL", "email"),
            ];
            output::list(
                l.output,
                rows(&v["users"], user_fields),
                &columns,
                "no web users (`vigocli webusers create` makes one)",
            )
        }
        WebusersCommand::Create(c) => {
            name_ok(&c.username)?;
            check_role(&c.role)?;
            let ssh_key = match &c.ssh_key {
                Some(f) => Some(
                    std::fs::read_to_string(f)
                        .map_err(|e| Failure::failed(format!("{f}: {e}")))?
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                ),
                None if c.role == "admin" => admin_key(&c.username),
                None => None,
            };
            let body = json!({
                "username": c.username, "role": c.role, "display_name": c.display_name.unwrap_or_default(),
                "email": c.email.unwrap_or_default(), "ssh_key": ssh_key,
            });
            client()?.post("/v1/users", body)?;
            println!("Web user {} created ({}).", c.username, c.role);
            println!(
                "Set a password with: vigocli secrets set password {}",
                accounts::password_key(&c.username)
            );
            Ok(())
        }
        WebusersCommand::Show(s) => {
            name_ok(&s.username)?;
            let v = client()?.get(&format!("/v1/users/{}", s.username))?;
            let mut item = user_fields(&v);
            item["sessions"] = v["sessions"].clone();
            item["password_set"] = v["password_set"].clone();
            item["api_tokens"] = json!(v["api_tokens"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| t["name"].clone())
                .collect::<Vec<_>>());
            let fields = [
                col("username", "username"),
                col("role", "role"),
                col("state", "state"),
                col("display name", "display_name"),
                col("email", "email"),
                col("ssh key", "ssh_key"),
                col("password set", "password_set"),
                col("sessions", "sessions"),
                col("api tokens", "api_tokens"),
                time_col("created", "created_at"),
                col("created by", "created_by"),
            ];
            output::show(s.output, &item, &fields)
        }
        WebusersCommand::SetRole(r) => {
            name_ok(&r.username)?;
            check_role(&r.role)?;
            let v = client()?.post(&format!("/v1/users/{}/role", r.username), json!({ "role": r.role }))?;
            println!("{} is now {}; {} session(s) ended.", r.username, r.role, v["sessions_ended"]);
            Ok(())
        }
        WebusersCommand::Disable(d) => {
            name_ok(&d.username)?;
            let v = client()?.post(&format!("/v1/users/{}/disable", d.username), json!({}))?;
            println!("{} disabled; {} session(s) ended.", d.username, v["sessions_ended"]);
            Ok(())
        }
        WebusersCommand::Enable(e) => {
            name_ok(&e.username)?;
            client()?.post(&format!("/v1/users/{}/enable", e.username), json!({}))?;
            println!("{} enabled.", e.username);
            Ok(())
        }
        WebusersCommand::Delete(d) => {
            name_ok(&d.username)?;
            let v = client()?.post(&format!("/v1/users/{}/delete", d.username), json!({}))?;
            println!("{} deleted; {} session(s) ended, API tokens revoked.", d.username, v["sessions_ended"]);
            super::secrets_cmd::delete_if_present(ctx, &accounts::password_key(&d.username))
        }
    }
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "sessions")]
/// Console sessions: your own, or everyone's (admins).
pub struct SessionsArgs {
    #[argh(subcommand)]
    command: SessionsCommand,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand)]
enum SessionsCommand {
    List(SessionList),
    Revoke(SessionRevoke),
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "list")]
/// List live sessions: yours, or with --all everyone's (needs sessions.manage).
struct SessionList {
    /// every user's sessions
    #[argh(switch)]
    all: bool,
    /// output format: table (default) or json
    #[argh(option, short = 'o', default = "Format::Table")]
    output: Format,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "revoke")]
/// End a session by its id (as `sessions list` shows it).
struct SessionRevoke {
    #[argh(positional)]
    id: String,
}

pub fn sessions(ctx: &Context, a: SessionsArgs) -> CmdResult {
    let client = || AdminClient::from_ctx(ctx);
    match a.command {
        SessionsCommand::List(l) => {
            let v = client()?.get(if l.all { "/v1/sessions/all" } else { "/v1/sessions" })?;
            let items = rows(&v["sessions"], |s| {
                json!({
                    "id": s["id"], "username": s["username"], "provider": s["provider"], "source": s["source"],
                    "created_at": time_json(&s["created_at"]), "last_seen": time_json(&s["last_seen"]),
                    "expires_at": time_json(&s["expires_at"]),
                })
            });
            let columns = [
                col("ID", "id"),
                col("USER", "username"),
                col("PROVIDER", "provider"),
                col("SOURCE", "source"),
                time_col("LAST SEEN (UTC)", "last_seen"),
            ];
            output::list(l.output, items, &columns, "no live sessions")
        }
        SessionsCommand::Revoke(r) => {
            if r.id.len() != 16 || !r.id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Failure::usage(
                    "a session id is 16 hex digits, as `vigocli sessions list` shows it",
                ));
            }
            let v = client()?.post(&format!("/v1/sessions/{}/revoke", r.id), json!({}))?;
            println!("Session {} of {} ended.", r.id, v["username"].as_str().unwrap_or_default());
            Ok(())
        }
    }
}
