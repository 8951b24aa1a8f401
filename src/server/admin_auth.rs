//! Bearer-token authentication and RBAC for the admin API. Source addresses grant nothing.

use axum::http::{HeaderMap, StatusCode};
use rusqlite::OptionalExtension;

use super::admin::ApiError;
use super::state::Server;
use crate::crypto;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Admin,
    Viewer,
    Compliance,
}

/// What a role may do. Compliance sees fleet state but not the raw audit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    Read,
    AuditRead,
    Write,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            "compliance" => Some(Role::Compliance),
            _ => None,
        }
    }

    pub fn allows(self, p: Permission) -> bool {
        matches!(
            (self, p),
            (Role::Admin, _)
                | (Role::Viewer, Permission::Read | Permission::AuditRead)
                | (Role::Compliance, Permission::Read)
        )
    }
}

pub struct Caller {
    pub actor: String,
    pub role: Role,
}

pub fn authenticate(server: &Server, headers: &HeaderMap, need: Permission) -> Result<Caller, ApiError> {
    let unauthorized = || ApiError::new(StatusCode::UNAUTHORIZED, "missing or invalid bearer token");
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(unauthorized)?;
    let hash = crypto::sha256(token.as_bytes());
    let caller = if crypto::ct_eq(&hash, &server.admin_token_hash) {
        Caller { actor: "local-admin".into(), role: Role::Admin }
    } else if token.starts_with("vgot_") {
        let row: Option<(String, String)> = server
            .db()
            .query_row(
                "SELECT name, role FROM api_tokens WHERE token_hash = ?1 AND revoked_at IS NULL",
                [hash.as_slice()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(ApiError::internal)?;
        let (name, role) = row.ok_or_else(unauthorized)?;
        Caller { actor: format!("api-token:{name}"), role: Role::parse(&role).ok_or_else(unauthorized)? }
    } else {
        return Err(unauthorized());
    };
    if !caller.role.allows(need) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, format!("role {:?} may not do this", caller.role)));
    }
    Ok(caller)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compliance_is_denied_audit_read() {
        assert!(Role::Compliance.allows(Permission::Read));
        assert!(!Role::Compliance.allows(Permission::AuditRead));
        assert!(Role::Viewer.allows(Permission::AuditRead));
        assert!(!Role::Viewer.allows(Permission::Write));
        assert!(Role::Admin.allows(Permission::Write));
    }
}
