//! Bearer-token authentication for the admin API, and the per-route permission check.
//! Source addresses grant nothing.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::errors::ApiError;
use crate::auth::{Permission, Role};
use crate::crypto;
use crate::server::state::Server;

/// Who is calling, as the audit log names them.
#[derive(Clone, Debug)]
pub struct Caller {
    pub actor: String,
    pub role: Role,
}

fn unauthorized() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "missing or invalid bearer token")
}

fn identify(server: &Server, request: &Request) -> Result<Caller, ApiError> {
    let token = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(unauthorized)?;
    let hash = crypto::sha256(token.as_bytes());
    if crypto::ct_eq(&hash, &server.admin_token_hash) {
        return Ok(Caller { actor: "local-admin".into(), role: Role::Admin });
    }
    if !token.starts_with("vgot_") {
        return Err(unauthorized());
    }
    let (name, role) =
        crate::store::api_tokens::find_active(&server.db(), &hash)?.ok_or_else(unauthorized)?;
    Ok(Caller { actor: format!("api-token:{name}"), role: Role::parse(&role).ok_or_else(unauthorized)? })
}

/// Runs before routing and extractors: an unauthenticated request learns nothing else.
pub async fn authenticate(State(server): State<Arc<Server>>, mut request: Request, next: Next) -> Response {
    match identify(&server, &request) {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
}

/// The route's permission, checked before its extractors run.
pub async fn require(permission: Permission, request: Request, next: Next) -> Response {
    let Some(caller) = request.extensions().get::<Caller>() else {
        return unauthorized().into_response();
    };
    if !caller.role.allows(permission) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!("role {} lacks the permission {}", caller.role.name(), permission.name()),
        )
        .into_response();
    }
    next.run(request).await
}
