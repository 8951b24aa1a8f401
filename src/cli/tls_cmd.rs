//! `vigocli tls`: the certificates in force, renewing the server certificate, and rolling the
//! CA over without cutting agents off (docs/OPERATIONS.md, "Certificates").

use argh::{ArgsInfo, FromArgs};
use serde_json::Value;

use super::admin_client::AdminClient;
use super::audited::{audited_staged, put_tls_in_place};
use super::{operator_actor, Context};
use crate::audit::Event;
use crate::exit::{CmdResult, Failure};
use crate::pki;

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "tls")]
/// Certificates: status, server certificate renewal, CA rollover.
pub struct TlsArgs {
    #[argh(subcommand)]
    command: TlsCommand,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand)]
enum TlsCommand {
    Status(Status),
    Reload(Reload),
    RenewServerCert(RenewServerCert),
    CaRollover(CaRollover),
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "status")]
/// Show the CA in force, certificate expiry and each step of a CA rollover (needs the server).
struct Status {
    /// output format: table (default) or json
    #[argh(option, short = 'o', default = "String::from(\"table\")")]
    output: String,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "reload")]
/// Make the running server read <base-dir>/tls again.
struct Reload {}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "renew-server-cert")]
/// Issue a new server certificate from the CA in force (same names unless --san is given).
struct RenewServerCert {
    /// DNS name or IP the certificate is for; repeatable (default: those of the current one)
    #[argh(option)]
    san: Vec<String>,
    /// validity in days (default 365)
    #[argh(option, default = "365")]
    days: u32,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "ca-rollover")]
/// Replace the CA in three steps: start (agents learn to trust a new CA), switch (the new CA
/// signs; agents renew), finish (the old CA is trusted no more).
struct CaRollover {
    #[argh(subcommand)]
    step: Step,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand)]
enum Step {
    Start(Start),
    Switch(Switch),
    Finish(Finish),
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "start")]
/// Create the new CA; agents are told to trust it at their next check-in.
struct Start {
    /// validity of the new CA in days (default 3650)
    #[argh(option, default = "3650")]
    ca_days: u32,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "switch")]
/// Make the new CA the one in force, once every active envoy trusts it.
struct Switch {
    /// switch even if some envoys were not seen trusting the new CA (they will have to enroll again)
    #[argh(switch)]
    force: bool,
    /// validity of the new server certificate in days (default 365)
    #[argh(option, default = "365")]
    server_days: u32,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "finish")]
/// Stop trusting the old CA, once no active envoy holds a certificate from it.
struct Finish {
    /// finish even if some envoys still hold old certificates (they will have to enroll again)
    #[argh(switch)]
    force: bool,
}

pub fn run(ctx: &Context, a: TlsArgs) -> CmdResult {
    match a.command {
        TlsCommand::Status(s) => status(ctx, &s.output),
        TlsCommand::Reload(_) => {
            AdminClient::from_ctx(ctx)?.post("/v1/tls/reload", serde_json::json!({}))?;
            println!("The server now uses the certificates in {}.", ctx.paths.tls_dir.display());
            Ok(())
        }
        TlsCommand::RenewServerCert(r) => renew_server_cert(ctx, r),
        TlsCommand::CaRollover(c) => match c.step {
            Step::Start(s) => start(ctx, s),
            Step::Switch(s) => switch(ctx, s),
            Step::Finish(f) => finish(ctx, f),
        },
    }
}

fn check_days(days: u32) -> CmdResult {
    if !(1..=36_500).contains(&days) {
        return Err(Failure::usage("validity must be from 1 to 36500 days"));
    }
    Ok(())
}

fn status(ctx: &Context, output: &str) -> CmdResult {
    if !matches!(output, "table" | "json") {
        return Err(Failure::usage("-o must be table or json"));
    }
    let v = AdminClient::from_ctx(ctx)?.get("/v1/tls")?;
    if output == "json" {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    let days = |t: &Value| t.as_i64().map(|t| (t - crate::util::time::unix_now()) / 86_400);
    println!("CA in force:          {}", v["ca_pin"].as_str().unwrap_or_default());
    println!("server certificate:   {} days left", days(&v["server_cert_not_after"]).unwrap_or(0));
    let e = &v["envoys"];
    println!("active envoys:        {}", e["active"]);
    if let Some(d) = days(&e["earliest_cert_expiry"]) {
        println!("earliest envoy cert:  {d} days left (agents renew on their own)");
    }
    println!("trusting current CAs: {} of {}", e["trusting_current_bundle"], e["active"]);
    let phase = if v["rollover"]["next_ca"].as_bool() == Some(true) {
        "started: agents are learning the new CA; `switch` once all trust it"
    } else if v["rollover"]["retiring_ca_pins"].as_array().is_some_and(|a| !a.is_empty()) {
        "switched: agents renew under the new CA; `finish` once none holds an old certificate"
    } else {
        "none"
    };
    println!("CA rollover:          {phase}");
    if let Some(by_ca) = e["certificates_by_ca"].as_object() {
        for (pin, n) in by_ca {
            println!("  {n} envoy certificate(s) from CA {pin}");
        }
    }
    Ok(())
}

/// After a file change: the running server takes it up now; a stopped one at its next start.
fn tell_server(ctx: &Context) {
    match AdminClient::from_ctx(ctx).and_then(|c| c.post("/v1/tls/reload", serde_json::json!({}))) {
        Ok(_) => println!("The running server now uses it."),
        Err(f) => println!("The server was not told ({}); it takes effect when vigosrv starts.", f.message),
    }
}

fn renew_server_cert(ctx: &Context, r: RenewServerCert) -> CmdResult {
    check_days(r.days)?;
    let sans =
        if r.san.is_empty() { pki::server_cert_names(&ctx.paths).map_err(Failure::failed)? } else { r.san };
    if sans.is_empty() {
        return Err(Failure::usage("the current certificate names nothing; pass --san"));
    }
    let actor = operator_actor();
    let detail = serde_json::json!({ "names": sans, "days": r.days });
    audited_staged(
        ctx,
        Event::new(&actor, "tls.server_cert_renewed", "tls").detail(detail),
        || pki::stage_renewed_server_cert(&ctx.paths, &sans, r.days).map_err(Failure::failed),
        put_tls_in_place,
    )?;
    println!("New server certificate for {} ({} days).", sans.join(", "), r.days);
    tell_server(ctx);
    Ok(())
}

fn start(ctx: &Context, s: Start) -> CmdResult {
    check_days(s.ca_days)?;
    let actor = operator_actor();
    let name = audited_staged(
        ctx,
        Event::new(&actor, "tls.ca_rollover_started", "tls"),
        || pki::stage_rollover_start(&ctx.paths, s.ca_days).map_err(Failure::refused),
        |(staged, name)| put_tls_in_place(staged).map(|()| name),
    )?;
    println!("New CA {name:?} created; agents learn to trust it at their next check-in.");
    tell_server(ctx);
    println!("Run `vigocli tls status` until every envoy trusts it, then `vigocli tls ca-rollover switch`.");
    Ok(())
}

fn switch(ctx: &Context, s: Switch) -> CmdResult {
    check_days(s.server_days)?;
    if !ctx.paths.ca_next().exists() {
        return Err(Failure::refused("no CA rollover has been started (`vigocli tls ca-rollover start`)"));
    }
    if !s.force {
        let v = AdminClient::from_ctx(ctx).and_then(|c| c.get("/v1/tls")).map_err(|f| {
            Failure::refused(format!(
                "cannot confirm that every envoy trusts the new CA ({}); start vigosrv, or pass --force",
                f.message
            ))
        })?;
        let behind = v["envoys"]["not_seen_trusting_current_bundle"].as_array().cloned().unwrap_or_default();
        if !behind.is_empty() {
            let names: Vec<&str> = behind.iter().filter_map(Value::as_str).collect();
            return Err(Failure::refused(format!(
                "{} envoy(s) have not yet been seen trusting the new CA: {}; wait for their next check-in, or pass --force (they would have to enroll again)",
                names.len(),
                names.join(", ")
            )));
        }
    }
    let actor = operator_actor();
    audited_staged(
        ctx,
        Event::new(&actor, "tls.ca_rollover_switched", "tls"),
        || pki::stage_rollover_switch(&ctx.paths, s.server_days).map_err(Failure::failed),
        put_tls_in_place,
    )?;
    println!("The new CA is in force; agents renew their certificates under it at their next check-in.");
    tell_server(ctx);
    println!("Run `vigocli tls status` until no envoy holds an old certificate, then `vigocli tls ca-rollover finish`.");
    Ok(())
}

fn finish(ctx: &Context, f: Finish) -> CmdResult {
    let Some(old) = pki::retiring_ca_pin(&ctx.paths).map_err(Failure::failed)? else {
        return Err(Failure::refused(
            "there is no old CA to retire (no `vigocli tls ca-rollover switch` yet)",
        ));
    };
    if !f.force {
        let conn = crate::store::open(&ctx.paths.db)?;
        let holding: Vec<String> = crate::store::envoys::list(&conn)?
            .into_iter()
            .filter(|e| e.revoked_at.is_none() && e.cert_ca_pin.as_deref().is_none_or(|p| p == old))
            .map(|e| e.name)
            .collect();
        if !holding.is_empty() {
            return Err(Failure::refused(format!(
                "{} envoy(s) still hold a certificate from the old CA: {}; wait for their next check-in, or pass --force (they would have to enroll again)",
                holding.len(),
                holding.join(", ")
            )));
        }
    }
    let actor = operator_actor();
    audited_staged(
        ctx,
        Event::new(&actor, "tls.ca_rollover_finished", "tls").detail(serde_json::json!({ "retired": old })),
        || pki::stage_rollover_finish(&ctx.paths).map_err(Failure::failed),
        put_tls_in_place,
    )?;
    println!("The old CA is no longer trusted.");
    tell_server(ctx);
    Ok(())
}
