//! `vigocli auth`: API tokens that belong to a web user, and the token this CLI uses from
//! another host (`~/.config/vigo/token`, mode 0600).

use std::path::PathBuf;

use argh::{ArgsInfo, FromArgs};
use serde_json::json;

use super::admin_client::AdminClient;
use super::Context;
use crate::exit::{CmdResult, Failure};
use crate::util::fsutil;

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "auth")]
/// Your API tokens, and the token this CLI uses to reach a server from elsewhere.
pub struct AuthArgs {
    #[argh(subcommand)]
    command: AuthCommand,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand)]
enum AuthCommand {
    CreateToken(CreateToken),
    SetToken(SetToken),
    Status(Status),
    Clear(Clear),
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "create-token")]
/// Make an API token that belongs to you (or, as the local-admin principal, to --user); it
/// never exceeds its owner's role, follows it when it changes, and is shown once.
struct CreateToken {
    /// a name for the token (one active token per name)
    #[argh(option)]
    name: String,
    /// lifetime, e.g. 720h or 30d (default: until revoked)
    #[argh(option)]
    expires_in: Option<String>,
    /// the web user the token belongs to (only for the local-admin principal)
    #[argh(option)]
    user: Option<String>,
    /// a narrower role than the owner's: viewer or compliance
    #[argh(option)]
    role: Option<String>,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "set-token")]
/// Keep a token for this CLI in ~/.config/vigo/token (0600); read from stdin, never argv. With
/// --server (the global flag) and --ca-file, this CLI then reaches that server from any host.
struct SetToken {
    /// the server's CA certificate (PEM), kept beside the token
    #[argh(option)]
    ca_file: Option<String>,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "status")]
/// Which server, token file and identity this CLI uses.
struct Status {}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "clear")]
/// Remove the token kept by `auth set-token`.
struct Clear {}

/// What `auth set-token` keeps in `$HOME/.config/vigo/` (a directory only this user can read):
/// `token`, and optionally `server` (the URL) and `ca.pem` (the server's CA).
pub struct Kept {
    dir: PathBuf,
}

impl Kept {
    pub fn dir() -> Option<PathBuf> {
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from).or_else(|| {
            let uid = nix::unistd::getuid().as_raw();
            let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
            crate::util::users::parse_passwd(&passwd)
                .into_iter()
                .find(|e| e.uid == uid)
                .map(|e| PathBuf::from(e.home))
        })?;
        Some(home.join(".config/vigo"))
    }

    /// The kept token's directory, when a token is kept there.
    pub fn find() -> Option<Kept> {
        let dir = Self::dir()?;
        dir.join("token").exists().then_some(Kept { dir })
    }

    pub fn token_file(&self) -> Option<PathBuf> {
        Some(self.dir.join("token"))
    }

    pub fn server(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.join("server"))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    pub fn ca(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.join("ca.pem")).ok()
    }
}

pub fn run(ctx: &Context, a: AuthArgs) -> CmdResult {
    match a.command {
        AuthCommand::CreateToken(c) => {
            crate::wire::validate_name("token name", &c.name).map_err(Failure::usage)?;
            let expires = c
                .expires_in
                .as_deref()
                .map(crate::util::time::parse_duration)
                .transpose()
                .map_err(|e| Failure::usage(format!("--expires-in: {e}")))?;
            if let Some(u) = &c.user {
                crate::auth::accounts::check_username(u).map_err(Failure::usage)?;
            }
            let body = json!({ "name": c.name, "expires_in_secs": expires, "user": c.user, "role": c.role });
            let v = AdminClient::from_ctx(ctx)?.post("/v1/auth/tokens", body)?;
            eprintln!(
                "API token of {} ({} role{}); shown once:",
                v["owner"].as_str().unwrap_or_default(),
                v["role"].as_str().unwrap_or_default(),
                v["expires_at"]
                    .as_i64()
                    .map(|t| format!(", expires {}", &crate::util::time::rfc3339_millis(t * 1000)[..19]))
                    .unwrap_or_default()
            );
            println!("{}", v["token"].as_str().unwrap_or_default());
            Ok(())
        }
        AuthCommand::SetToken(s) => {
            let dir = Kept::dir().ok_or_else(|| Failure::failed("no home directory to keep the token in"))?;
            let ca = match &s.ca_file {
                Some(f) => {
                    let pem = std::fs::read_to_string(f).map_err(|e| Failure::failed(format!("{f}: {e}")))?;
                    crate::tlsconf::roots_from_pem(&pem)
                        .map_err(|e| Failure::usage(format!("--ca-file {f}: {e}")))?;
                    Some(pem)
                }
                None => None,
            };
            if let Some(url) = &ctx.server {
                if !url.starts_with("https://") {
                    return Err(Failure::usage("--server must be an https:// URL"));
                }
            }
            let token = crate::util::prompt::read_line("API token: ", true)
                .map_err(|e| Failure::failed(e.to_string()))?;
            let token = token.expose().trim();
            if !token.starts_with("vgot_") || token.len() < 20 {
                return Err(Failure::usage(
                    "that is not a vgot_ API token (`vigocli auth create-token` makes one)",
                ));
            }
            fsutil::ensure_dir(&dir, 0o700)?;
            fsutil::atomic_write(&dir.join("token"), format!("{token}\n").as_bytes(), 0o600)?;
            if let Some(pem) = ca {
                fsutil::atomic_write(&dir.join("ca.pem"), pem.as_bytes(), 0o600)?;
            }
            if let Some(url) = &ctx.server {
                fsutil::atomic_write(&dir.join("server"), format!("{url}\n").as_bytes(), 0o600)?;
            }
            println!(
                "Token kept in {} (0600); this CLI uses it unless --token-file says otherwise.",
                dir.join("token").display()
            );
            Ok(())
        }
        AuthCommand::Status(_) => {
            let client = AdminClient::from_ctx(ctx)?;
            println!("server:     {}", client.url());
            println!("token file: {}", client.token_path().display());
            let v = client.get("/v1/auth/whoami")?;
            println!(
                "identity:   {} ({} role, by {})",
                v["actor"].as_str().unwrap_or_default(),
                v["role"].as_str().unwrap_or_default(),
                v["via"].as_str().unwrap_or_default()
            );
            Ok(())
        }
        AuthCommand::Clear(_) => {
            let dir = Kept::dir().ok_or_else(|| Failure::failed("no home directory"))?;
            let mut removed = false;
            for name in ["token", "server", "ca.pem"] {
                match std::fs::remove_file(dir.join(name)) {
                    Ok(()) => removed = true,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Failure::failed(format!("{}: {e}", dir.join(name).display()))),
                }
            }
            println!(
                "{} {}.",
                if removed { "Removed what was kept in" } else { "Nothing kept in" },
                dir.display()
            );
            Ok(())
        }
    }
}
