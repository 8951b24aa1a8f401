//! Client side of the admin HTTPS API (used by `secrets set` to announce a rotation).

use super::Context;

/// Tells a running server that `key` changed. Err explains why no server was notified.
pub fn notify_rotation(_ctx: &Context, _key: &str) -> Result<String, String> {
    Err("the admin API client is not available in this build".into())
}
