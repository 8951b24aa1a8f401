//! JSON errors and the extractors that produce them: a body, query or path that does not
//! parse is answered with a short JSON error that never echoes the input back.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into() }
    }
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "admin API internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error; see the server log")
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn status(&self) -> StatusCode {
        self.status
    }
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

pub type ApiResult = Result<Json<Value>, ApiError>;

/// A name or id taken from a request, as it may be quoted back: at most 64 characters, in
/// quotes, with quotes, backslashes, control and invisible characters (bidi overrides,
/// zero-width…) escaped, so an echoed name can neither flood an answer nor fake or hide text
/// where it is shown (a terminal, a log, the console). Every error that repeats input goes
/// through this (or `util::text::excerpt`).
pub fn quoted(text: &str) -> String {
    crate::util::text::quote_short(text)
}

/// A JSON body; any rejection is a JSON 400/413/415 that names the problem, not the input.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(rejection) => Err(ApiError::new(rejection.status(), json_problem(&rejection))),
        }
    }
}

fn json_problem(r: &JsonRejection) -> &'static str {
    match r {
        JsonRejection::MissingJsonContentType(_) => "the body must be JSON (Content-Type: application/json)",
        JsonRejection::JsonSyntaxError(_) => "the body is not valid JSON",
        JsonRejection::JsonDataError(_) => "the body does not have the fields this call takes",
        JsonRejection::BytesRejection(_) => "the body could not be read (over 1 MiB?)",
        _ => "the body was refused",
    }
}

/// Query parameters; a rejection is a JSON 400.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state).await.map(|q| Query(q.0)).map_err(
            |_: QueryRejection| {
                ApiError::bad_request(
                    "the query string has parameters this call does not take, or bad values",
                )
            },
        )
    }
}

/// The one path parameter of a route; a rejection is a JSON 400.
pub struct PathParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|p| PathParam(p.0))
            .map_err(|_: PathRejection| ApiError::bad_request("bad path parameter"))
    }
}

/// An unknown path: a console page for a console path, JSON for the API.
pub async fn not_found(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    if crate::server::web::is_page(uri.path()) {
        return crate::server::web::refusal(&method, StatusCode::NOT_FOUND, "there is no such page".into());
    }
    ApiError::not_found("no such API endpoint").into_response()
}

pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let message = "this endpoint does not take that method";
    if crate::server::web::is_page(uri.path()) {
        return crate::server::web::refusal(&method, StatusCode::METHOD_NOT_ALLOWED, message.into());
    }
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, message).into_response()
}
