//! Who may do what: roles and named permissions. Shared by the server (which enforces them)
//! and the CLI (which checks arguments before connecting), so neither reaches into the other.
//! Also the login building blocks: SSH signatures (isowebauth), ID tokens and the OpenID
//! Connect relying-party flow.

// The server's OpenID Connect login calls these next (issue 16); until then only tests do.
#[allow(dead_code)]
pub mod https;
#[allow(dead_code)]
pub mod jwt;
#[allow(dead_code)]
pub mod oidc;
mod permissions;
// The server's isowebauth login calls this next (issue 16); until then only tests do.
#[allow(dead_code)]
pub mod sshsig;

pub use permissions::{Permission, Role};
