//! `vigocli doctor`: every piece of a server installation checked, one line each, with what
//! to do about each problem. Exit 0 when nothing failed (warnings included), 1 otherwise.

mod local;
mod remote;

use argh::{ArgsInfo, FromArgs};

use super::Context;
use crate::exit::CmdResult;

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "doctor")]
/// Check the secrets backend, certificates, config, database, audit chain, disk and the running server;
/// print what to do about each problem. Exit 0 when nothing failed, 1 otherwise.
pub struct DoctorArgs {
    /// verify only the last 10,000 audit rows instead of the whole chain
    #[argh(switch)]
    quick: bool,
    /// output format: table (default) or json
    #[argh(option, short = 'o', default = "super::output::Format::Table")]
    output: super::output::Format,
}

pub fn run(ctx: &Context, a: DoctorArgs) -> CmdResult {
    let mut checks = Vec::new();
    let backend = local::backend(ctx, &mut checks);
    local::tls(ctx, &mut checks);
    local::config(ctx, backend.as_deref(), &mut checks);
    local::database(ctx, a.quick, &mut checks);
    local::disk(ctx, &mut checks);
    remote::server(ctx, &mut checks);
    checks.push(binary_signature(ctx));
    crate::doctor::report(&checks, a.output == super::output::Format::Json)
}

/// This binary (the same file as the server's on a server host) against its `.sig`.
fn binary_signature(ctx: &Context) -> crate::doctor::Check {
    use crate::doctor::Check;
    use crate::release::gate::{check_self, BinaryStatus};
    match check_self(&ctx.settings.settings.release.public_key_file()) {
        Ok(BinaryStatus::Development) => Check::warn(
            "binary signature",
            "unsigned development build: no release key is compiled in or installed",
            "install the release public key as /etc/vigo/release.pub (root-owned), or use a build with VIGO_RELEASE_PUBKEY",
        ),
        Ok(verified) => Check::ok("binary signature", verified.summary()),
        Err(e) => Check::fail(
            "binary signature",
            e.to_string(),
            "reinstall a signed release with its .sig; vigosrv refuses to start like this",
        ),
    }
}
