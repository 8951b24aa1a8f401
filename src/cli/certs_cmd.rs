//! `vigocli secrets generate-certs`: the private CA and the server certificate, plain PEM.

use std::path::PathBuf;

use argh::{ArgsInfo, FromArgs};

use super::{operator_actor, Context};
use crate::audit::Event;
use crate::exit::{CmdResult, Failure};
use crate::util::fsutil;

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "generate-certs")]
/// Generate an ECDSA P-256 CA and server certificate (tls/ca, tls/ca_key, tls/cert, tls/key).
pub struct GenerateCertsArgs {
    /// directory for the PEM files (default <base-dir>/tls)
    #[argh(option)]
    tls_dir: Option<String>,
    /// extra subject alternative name (DNS name or IP); repeatable
    #[argh(option)]
    san: Vec<String>,
    /// CA validity in days (default 3650)
    #[argh(option, default = "3650")]
    ca_days: u32,
    /// server certificate validity in days (default 365)
    #[argh(option, default = "365")]
    server_days: u32,
    /// overwrite existing certificates
    #[argh(switch)]
    force: bool,
}

/// Certificates end by year 9999 at the latest; a century is far beyond any sane rotation.
const MAX_DAYS: u32 = 36_500;

fn check_validity(ca_days: u32, server_days: u32) -> Result<(), Failure> {
    if ca_days == 0 || server_days == 0 {
        return Err(Failure::usage("validity must be at least one day"));
    }
    if ca_days > MAX_DAYS || server_days > MAX_DAYS {
        return Err(Failure::usage(format!("validity must be at most {MAX_DAYS} days (100 years)")));
    }
    if server_days > ca_days {
        return Err(Failure::usage(format!(
            "the server certificate ({server_days} days) cannot outlive the CA that signs it ({ca_days} days)"
        )));
    }
    Ok(())
}

fn is_dns_name_or_ip(name: &str) -> bool {
    if name.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let host = name.strip_prefix("*.").unwrap_or(name);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Stages a fresh CA and server certificate for `dir`; refuses to overwrite unless `force`.
/// Returns the staged set and the names the server certificate is for.
pub fn stage(
    dir: &std::path::Path,
    extra_sans: &[String],
    ca_days: u32,
    server_days: u32,
    force: bool,
) -> Result<(crate::pki::Staged, Vec<String>), Failure> {
    let names = ["ca", "ca_key", "cert", "key"];
    let existing: Vec<_> = names.iter().map(|n| dir.join(n)).filter(|p| p.exists()).collect();
    if !existing.is_empty() && !force {
        return Err(Failure::refused(format!(
            "{} already exists; pass --force to replace the certificates (agents must then re-enroll)",
            existing[0].display()
        )));
    }
    check_validity(ca_days, server_days)?;
    if let Some(bad) = extra_sans.iter().find(|s| !is_dns_name_or_ip(s)) {
        return Err(Failure::usage(format!(
            "--san {bad:?} is neither an IP address nor a DNS name (letters, digits, '-', '.', a leading '*.')"
        )));
    }
    let sans = crate::pki::default_server_names(extra_sans);
    let staged = if existing.is_empty() {
        crate::pki::stage_new_tls_dir(dir, &sans, ca_days, server_days)
    } else {
        let mut paths = crate::paths::ServerPaths::new(fsutil::parent_dir(dir));
        paths.tls_dir = dir.to_path_buf();
        crate::pki::stage_regenerated_tls_dir(&paths, &sans, ca_days, server_days)
    };
    Ok((staged.map_err(Failure::failed)?, sans))
}

pub fn run(ctx: &Context, a: GenerateCertsArgs) -> CmdResult {
    let dir = a.tls_dir.map(PathBuf::from).unwrap_or_else(|| ctx.paths.tls_dir.clone());
    let (actor, target) = (operator_actor(), dir.to_string_lossy().into_owned());
    let event = Event::new(&actor, "tls.generated", &target)
        .detail(serde_json::json!({ "sans": a.san, "force": a.force }));
    // Staged, audited, then put in place: the row commits before the certificates change.
    let sans = super::audited::audited_staged(
        ctx,
        event,
        || stage(&dir, &a.san, a.ca_days, a.server_days, a.force),
        |(staged, sans)| super::audited::put_tls_in_place(staged).map(|()| sans),
    )?;
    println!("  CA certificate:     {} ({} days)", dir.join("ca").display(), a.ca_days);
    println!("  CA key:             {} (mode 0600)", dir.join("ca_key").display());
    println!("  Server certificate: {} ({} days)", dir.join("cert").display(), a.server_days);
    println!("  Server key:         {} (mode 0600)", dir.join("key").display());
    println!("  Names: {}", sans.join(", "));
    Ok(())
}
