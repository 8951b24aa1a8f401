//! Certificates in force and the envoys' progress through a CA rollover; TLS reload.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use serde_json::json;

use super::errors::{ApiError, ApiResult};
use super::Caller;
use crate::audit::Event;
use crate::server::state::Server;

type S = State<Arc<Server>>;

/// The active CA, the bundle agents must trust, and per active envoy: which CA issued its
/// certificate, when that expires, and whether it was seen trusting the current bundle.
pub async fn status(State(s): S) -> ApiResult {
    let pki = s.pki();
    let mut by_ca: BTreeMap<String, usize> = BTreeMap::new();
    let (mut trusting, mut stale, mut active) = (0, Vec::new(), 0);
    let mut earliest_expiry: Option<i64> = None;
    for e in s.active_envoys() {
        active += 1;
        let pin = e.cert.as_ref().map(|c| c.ca_pin.clone()).unwrap_or_else(|| "unknown".into());
        *by_ca.entry(pin).or_insert(0) += 1;
        if let Some(c) = &e.cert {
            earliest_expiry = Some(earliest_expiry.map_or(c.not_after, |x| x.min(c.not_after)));
        }
        if s.trusted_bundle(&e.id).as_deref() == Some(pki.bundle_sha256.as_str()) {
            trusting += 1;
        } else {
            stale.push(e.name.clone());
        }
    }
    stale.sort();
    stale.truncate(100);
    let server_cert =
        crate::crypto::x509::certs_from_pem(&pki.server.cert_pem).map_err(ApiError::internal)?;
    Ok(Json(json!({
        "ca_pin": pki.ca_pin_hex(),
        "bundle_sha256": pki.bundle_sha256,
        "rollover": {
            "next_ca": s.paths.ca_next().exists(),
            "retiring_ca_pins": pki.retiring_pins,
        },
        "server_cert_not_after": crate::crypto::x509::not_after(&server_cert[0]).map_err(ApiError::internal)?,
        "envoys": {
            "active": active,
            "certificates_by_ca": by_ca,
            "earliest_cert_expiry": earliest_expiry,
            "trusting_current_bundle": trusting,
            "not_seen_trusting_current_bundle": stale,
        },
    })))
}

/// Re-reads `<base>/tls` (after `vigocli secrets renew-server-cert` or a rollover step).
pub async fn reload(State(s): S, Extension(caller): Extension<Caller>) -> ApiResult {
    s.reload_tls().map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            format!("TLS reload refused, the previous certificates stay in force: {e}"),
        )
    })?;
    let pki = s.pki();
    let detail = json!({ "ca_pin": pki.ca_pin_hex(), "bundle_sha256": pki.bundle_sha256 });
    s.audit(&[Event::new(&caller.actor, "tls.reloaded", "tls").detail(detail)])
        .map_err(ApiError::internal)?;
    Ok(Json(json!({ "reloaded": true, "ca_pin": pki.ca_pin_hex(), "bundle_sha256": pki.bundle_sha256 })))
}
