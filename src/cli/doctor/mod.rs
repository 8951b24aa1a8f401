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
    checks.push(crate::doctor::Check::warn(
        "binary signature",
        "not configured: this build does not check its own signature yet",
        "nothing to do until signed releases are set up",
    ));
    crate::doctor::report(&checks, a.output == super::output::Format::Json)
}
