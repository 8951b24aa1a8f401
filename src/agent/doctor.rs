//! `vigo-agent doctor`: this host's enrollment checked piece by piece — the identity key, the
//! client certificate and the CA it pins, the clock, and the server — one line each, with what
//! to do. Talking to the server is one signed check-in, as a run starts with; nothing is applied.

use std::time::Instant;

use super::client::SignedClient;
use super::state::{load_identity, AgentState};
use crate::crypto::x509;
use crate::doctor::{expiry, Check};
use crate::exit::CmdResult;
use crate::paths::AgentPaths;

/// How far this host's clock may be from the server's before doctor warns; the server refuses
/// signed requests beyond `wire::MAX_CLOCK_SKEW_MS`.
const CLOCK_WARN_SECS: i64 = 30;

const ENROLL_AGAIN: &str =
    "enroll this host again: `vigo-agent enroll --force --server HOST:PORT --token-file FILE` with a new token";

pub async fn run(paths: &AgentPaths, json: bool) -> CmdResult {
    let mut checks = Vec::new();
    let state = match AgentState::load(paths) {
        Ok(s) => {
            checks.push(Check::ok(
                "enrollment",
                format!("envoy {} ({}), server {}", s.envoy_name, s.envoy_id, s.server),
            ));
            Some(s)
        }
        Err(e) => {
            checks.push(Check::fail("enrollment", e.message, "run `vigo-agent enroll`"));
            None
        }
    };
    let identity_ok = identity(paths, &mut checks);
    let pinned = pinned_ca(paths, &mut checks);
    certificate(paths, &pinned, &mut checks);
    if let (Some(state), true) = (state, identity_ok) {
        server(paths, state, &mut checks).await;
    }
    crate::doctor::report(&checks, json)
}

fn identity(paths: &AgentPaths, out: &mut Vec<Check>) -> bool {
    match load_identity(paths) {
        Ok(_) => {
            out.push(Check::ok(
                "identity key",
                format!("{} (owner-only, Ed25519)", paths.identity.display()),
            ));
            true
        }
        Err(e) => {
            out.push(Check::fail("identity key", e.message, "see the message"));
            false
        }
    }
}

/// The CAs this agent trusts for its server (more than one during a CA rollover).
fn pinned_ca(paths: &AgentPaths, out: &mut Vec<Check>) -> Vec<rustls_pki_types::CertificateDer<'static>> {
    let cas = std::fs::read_to_string(&paths.ca_cert)
        .map_err(|e| format!("{}: {e}", paths.ca_cert.display()))
        .and_then(|pem| x509::certs_from_pem(&pem).map_err(|e| format!("{}: {e}", paths.ca_cert.display())));
    match cas {
        Ok(cas) => {
            let pin = super::state::ca_bundle_sha256(paths).map(|h| h[..16].to_string()).unwrap_or_default();
            out.push(Check::ok(
                "pinned CA",
                format!("{} CA certificate(s), bundle sha256 {pin}…", cas.len()),
            ));
            let latest = cas.iter().filter_map(|c| x509::not_after(c).ok()).max();
            if let Some(t) = latest {
                out.push(expiry(
                    "pinned CA expiry",
                    "the newest pinned CA",
                    t,
                    "the server's operator plans a CA rollover; agents learn the new CA at check-in",
                ));
            }
            cas
        }
        Err(e) => {
            out.push(Check::fail("pinned CA", e, ENROLL_AGAIN));
            vec![]
        }
    }
}

fn certificate(paths: &AgentPaths, cas: &[rustls_pki_types::CertificateDer<'static>], out: &mut Vec<Check>) {
    let cert = std::fs::read_to_string(&paths.client_cert)
        .map_err(|e| format!("{}: {e}", paths.client_cert.display()))
        .and_then(|pem| {
            x509::certs_from_pem(&pem).map_err(|e| format!("{}: {e}", paths.client_cert.display()))
        });
    let der = match cert {
        Ok(mut c) => c.remove(0),
        Err(e) => return out.push(Check::fail("client certificate", e, ENROLL_AGAIN)),
    };
    let key_matches =
        load_identity(paths).ok().map(|id| x509::ed25519_key_in_cert(&der) == Some(id.public_key()));
    match key_matches {
        Some(false) => out.push(Check::fail(
            "client certificate",
            "it is not the certificate of this host's identity key",
            ENROLL_AGAIN,
        )),
        _ => match x509::client_issued_by(&der, cas) {
            Ok(()) => out.push(Check::ok("client certificate", "issued by a pinned CA for this identity")),
            Err(e) => out.push(Check::fail(
                "client certificate",
                format!("not issued by a CA this agent pins: {e}"),
                ENROLL_AGAIN,
            )),
        },
    }
    match x509::not_after(&der) {
        Ok(t) => out.push(expiry(
            "client certificate expiry",
            "the client certificate",
            t,
            "the agent renews it at check-in once the server asks; check that check-ins succeed",
        )),
        Err(e) => out.push(Check::fail("client certificate expiry", e.to_string(), ENROLL_AGAIN)),
    }
}

/// One signed check-in: the server answers as this envoy's server, and its clock is compared.
async fn server(paths: &AgentPaths, state: AgentState, out: &mut Vec<Check>) {
    let address = paths.server_override.clone().unwrap_or_else(|| state.server.clone());
    let started = Instant::now();
    let answer = match SignedClient::open_at(paths, state, address.clone()).await {
        Ok(mut client) => client.check_in_dated(false).await,
        Err(e) => Err(e),
    };
    match answer {
        Ok((_, server_time)) => {
            let ms = started.elapsed().as_millis();
            out.push(Check::ok("server", format!("{address} accepted a signed check-in ({ms} ms)")));
            out.push(clock(server_time));
        }
        Err(e) if e.message.contains("clock") => out.push(Check::fail(
            "clock",
            e.message,
            "set this host's clock (e.g. enable systemd-timesyncd or chrony)",
        )),
        Err(e) if super::client::is_revocation(&e) => {
            out.push(Check::fail("server", e.message, ENROLL_AGAIN))
        }
        Err(e) => out.push(Check::fail(
            "server",
            e.message,
            "check the address (`vigo-agent set-server` changes it), the network and that the server runs",
        )),
    }
}

fn clock(server_time: Option<i64>) -> Check {
    let Some(server) = server_time else {
        return Check::warn(
            "clock",
            "the server's answer carried no time",
            "compare `date -u` with the server's",
        );
    };
    let skew = crate::util::time::unix_now() - server;
    let detail = format!("{skew:+} s from the server's clock (to the second)");
    if skew.abs() > CLOCK_WARN_SECS {
        Check::warn("clock", detail, "set this host's clock (e.g. enable systemd-timesyncd or chrony); the server refuses requests 5 minutes off")
    } else {
        Check::ok("clock", detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_off_the_servers_is_a_warning_and_a_missing_date_is_not_ok() {
        let now = crate::util::time::unix_now();
        assert_eq!(clock(Some(now)).status, crate::doctor::Status::Ok);
        assert_eq!(clock(Some(now - 120)).status, crate::doctor::Status::Warn);
        assert!(clock(Some(now + 120)).detail.contains("-120 s"), "{}", clock(Some(now + 120)).detail);
        assert_eq!(clock(None).status, crate::doctor::Status::Warn);
    }
}
