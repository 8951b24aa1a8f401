//! `vigocli`: the operator's command line. Each verb group lives in its own module.

mod admin_client;
mod advisories_cmd;
mod audit_cmd;
mod audited;
mod auth_cmd;
mod backend;
mod backup_cmd;
mod certs_cmd;
mod config_cmd;
mod db_cmd;
mod doctor;
mod fleet_cmd;
mod history_cmd;
pub(crate) mod output;
mod passphrase_cmd;
mod release_cmd;
mod runs_cmd;
mod secrets_cmd;
mod secrets_set;
mod status_cmd;
mod task_cmd;
mod tls_cmd;
mod users_cmd;

use std::process::ExitCode;

use argh::{ArgsInfo, FromArgs};

use crate::argv::{hoist_options, parse_args_with_advice};
use crate::exit::{finish, CmdResult};
use crate::logging::{self, LogFormat};
use crate::paths::{self, ServerPaths};

/// Options every vigocli verb accepts; they may appear anywhere on the command line.
const PERSISTENT: &[&str] =
    &["--base-dir", "--config", "--log-format", "--secrets-dir", "--key-file", "--server", "--token-file"];

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(
    note = "Environment: VIGO_BASE_DIR (the state directory), VIGO_CONFIG (the config file, default /etc/vigo/vigo.yaml), VIGO_SERVER (the admin API URL), VIGO_LOG (log level: error, warn, info, debug or trace), VIGO_DNS_SERVERS (DNS servers to ask instead of those in /etc/resolv.conf). docs/OPERATIONS.md describes each."
)]
/// Operate a Vigo installation: the secrets vault, the audit log, configs, tokens, envoys, runs.
/// Exit codes: 0 success, 1 failed, 2 usage error, 3 refused (locked vault, denied).
pub(crate) struct CliArgs {
    /// print the version and exit
    #[argh(switch)]
    #[allow(dead_code)] // read by the command-line front door before argh parses (src/argv)
    version: bool,
    /// state directory (default /srv/vigo, or $VIGO_BASE_DIR, or base_dir in the config file)
    #[argh(option)]
    base_dir: Option<String>,
    /// config file shared with vigosrv (default /etc/vigo/vigo.yaml when it exists, or
    /// $VIGO_CONFIG): the CLI takes the server's address and the paths of its files from it
    #[argh(option)]
    config: Option<String>,
    /// log format on stderr: human (default) or json
    #[argh(option, default = "LogFormat::Human")]
    log_format: LogFormat,
    /// secrets directory (default <base-dir>/secrets)
    #[argh(option)]
    secrets_dir: Option<String>,
    /// master key file (default <secrets-dir>/.master.key)
    #[argh(option)]
    key_file: Option<String>,
    /// admin API URL (default $VIGO_SERVER, else from the config file, else https://127.0.0.1:8443)
    #[argh(option)]
    server: Option<String>,
    /// file holding the admin API token (default <base-dir>/local-admin.token)
    #[argh(option)]
    token_file: Option<String>,
    #[argh(subcommand)]
    command: Command,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand)]
enum Command {
    Audit(audit_cmd::AuditArgs),
    Secrets(secrets_cmd::SecretsArgs),
    Tokens(fleet_cmd::TokensArgs),
    Envoys(fleet_cmd::EnvoysArgs),
    Fleet(status_cmd::FleetArgs),
    Runs(runs_cmd::RunsArgs),
    Task(task_cmd::TaskArgs),
    ApiTokens(fleet_cmd::ApiTokensArgs),
    Config(config_cmd::ConfigArgs),
    Tls(tls_cmd::TlsArgs),
    Webusers(users_cmd::WebusersArgs),
    Sessions(users_cmd::SessionsArgs),
    Auth(auth_cmd::AuthArgs),
    Doctor(doctor::DoctorArgs),
    Advisories(advisories_cmd::AdvisoriesArgs),
    Release(release_cmd::ReleaseArgs),
    Db(db_cmd::DbArgs),
    Backup(backup_cmd::BackupArgs),
}

/// What every verb needs to know about where it runs.
pub struct Context {
    pub paths: ServerPaths,
    pub server: Option<String>,
    pub token_file: Option<String>,
    /// The config file as read, `secret:` refs unresolved (for `doctor` and the backend).
    pub settings: crate::settings::Loaded,
    /// The server's check-in interval, from the config file (for `doctor`'s stale envoys).
    pub checkin_interval_secs: u32,
}

pub fn main(command: &str, args: &[&str]) -> ExitCode {
    let args = hoist_options(args, PERSISTENT);
    let parsed: CliArgs = match parse_args_with_advice(command, &args, secrets_set::set_advice) {
        Ok(p) => p,
        Err(code) => return code,
    };
    logging::init(parsed.log_format);
    let loaded = match crate::settings::load_for(parsed.config.as_deref()) {
        Ok(s) => s,
        Err(e) => return finish(Err(crate::exit::Failure::usage(e))),
    };
    let (settings, file) = (&loaded.settings, &loaded.file);
    let base = settings.base_dir(parsed.base_dir.as_deref(), paths::SERVER_DEFAULT_BASE);
    if let Err(e) = become_state_owner(&base) {
        return finish(Err(crate::exit::Failure::failed(e)));
    }
    let env_server = std::env::var("VIGO_SERVER").ok().filter(|v| !v.is_empty());
    // Flags, then the environment, then the config file (only when there is one).
    let server = parsed.server.or(env_server).or_else(|| file.as_ref().map(|_| settings.admin_url()));
    let ctx = Context {
        paths: settings
            .server_paths(&base)
            .with_overrides(parsed.secrets_dir.as_deref(), parsed.key_file.as_deref()),
        server,
        token_file: parsed.token_file.or_else(|| settings.cli.token_file.clone()),
        checkin_interval_secs: settings.checkin_interval_secs().unwrap_or(300),
        settings: loaded.clone(),
    };
    finish(run(&ctx, parsed.command))
}

/// On a packaged server host the state directory belongs to the server's system user (`vigo`,
/// docs/OPERATIONS.md "Distro packages"). Run as root against a directory another user owns,
/// the CLI becomes that user (its uid, the directory's gid, no other groups) before it touches
/// anything, so that `sudo vigocli secrets init` and the rest leave files the server can read
/// and never root-owned ones it cannot. The config file has been read already, as root.
fn become_state_owner(base: &std::path::Path) -> Result<(), String> {
    use nix::unistd::{setgid, setgroups, setuid, Gid, Uid};
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let Ok(meta) = std::fs::metadata(base) else { return Ok(()) };
    if meta.uid() == 0 {
        return Ok(());
    }
    let (uid, gid) = (Uid::from_raw(meta.uid()), Gid::from_raw(meta.gid()));
    let failed = |e: nix::Error| {
        format!("cannot become the owner of {} (uid {uid}, gid {gid}) to work in it: {e}", base.display())
    };
    setgroups(&[gid]).map_err(failed)?;
    setgid(gid).map_err(failed)?;
    setuid(uid).map_err(failed)?;
    Ok(())
}

fn run(ctx: &Context, command: Command) -> CmdResult {
    match command {
        Command::Audit(a) => audit_cmd::run(ctx, a),
        Command::Secrets(a) => secrets_cmd::run(ctx, a),
        Command::Tokens(a) => fleet_cmd::tokens(ctx, a),
        Command::Envoys(a) => fleet_cmd::envoys(ctx, a),
        Command::Fleet(a) => status_cmd::run(ctx, a),
        Command::Runs(a) => runs_cmd::runs(ctx, a),
        Command::Task(a) => task_cmd::task(ctx, a),
        Command::ApiTokens(a) => fleet_cmd::api_tokens(ctx, a),
        Command::Config(c) => config_cmd::run(ctx, c),
        Command::Tls(a) => tls_cmd::run(ctx, a),
        Command::Webusers(a) => users_cmd::webusers(ctx, a),
        Command::Sessions(a) => users_cmd::sessions(ctx, a),
        Command::Auth(a) => auth_cmd::run(ctx, a),
        Command::Doctor(a) => doctor::run(ctx, a),
        Command::Advisories(a) => advisories_cmd::run(ctx, a),
        Command::Release(a) => release_cmd::run(ctx, a),
        Command::Db(a) => db_cmd::run(ctx, a),
        Command::Backup(a) => backup_cmd::run(ctx, a),
    }
}

/// The actor name written into audit rows for operator actions on this host.
pub fn operator_actor() -> String {
    let uid = nix::unistd::getuid().as_raw();
    let name = crate::util::users::user_name(uid).unwrap_or_else(|| uid.to_string());
    format!("cli:{name}")
}
