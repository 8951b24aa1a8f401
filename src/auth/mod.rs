//! Who may do what: roles and named permissions. Shared by the server (which enforces them)
//! and the CLI (which checks arguments before connecting), so neither reaches into the other.

mod permissions;

pub use permissions::{Permission, Role};
