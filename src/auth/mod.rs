//! People and what they may do: web user names, logins (basic passwords, isowebauth SSH
//! signatures, OpenID Connect ID tokens and the relying-party flow), sessions, throttling, roles
//! and named permissions. Shared by the server (which enforces them) and the CLI (which checks
//! arguments before connecting), so neither reaches into the other.

pub mod accounts;
pub mod basic;
pub mod jwt;
pub mod oidc;
mod permissions;
pub mod session;
pub mod sshsig;
pub mod throttle;

pub use permissions::{Permission, Role};
