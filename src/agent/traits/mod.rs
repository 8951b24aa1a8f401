//! Traits: what the agent knows about its host (Puppet's facts, Salt's grains), collected from
//! /proc, /sys, /etc and system calls — no shelling out, nothing that needs NSS.
//!
//! Cheap collectors run at every check-in; expensive ones (those that walk mounts, interfaces,
//! accounts) every `EXPENSIVE_EVERY` check-ins, their last values kept in between. Each runs
//! under a time limit on its own thread; one that fails or runs over reports its error under
//! `errors` instead of failing the check-in. Values that drift by themselves (free memory and
//! disk, uptime, the agent's own size) are rounded, so the traits — and their digest, which is
//! what the agent sends when nothing changed — change only when the host does.

mod mounts;
mod net;
pub mod sent;
mod system;

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Map, Value};

/// Expensive collectors run at one check-in in this many (an hour at the default interval).
pub const EXPENSIVE_EVERY: u64 = 12;
/// How long one collector may take.
const LIMIT: Duration = Duration::from_secs(2);
/// The most a trait set may weigh when sent (the server refuses more).
pub const MAX_BYTES: usize = 64 * 1024;

type Collector = fn() -> Result<Value, String>;

/// (name, cheap, collector): the name is the trait's key.
const COLLECTORS: &[(&str, bool, Collector)] = &[
    ("os", true, system::os),
    ("kernel", true, system::kernel),
    ("arch", true, system::arch),
    ("hostname", true, system::hostname),
    ("fqdn", true, system::fqdn),
    ("memory", true, system::memory),
    ("uptime_hours", true, system::uptime_hours),
    ("agent", true, system::agent),
    ("machine_id", false, system::machine_id),
    ("cpu", false, system::cpu),
    ("virtualization", false, system::virtualization),
    ("init", false, system::init),
    ("package_manager", false, system::package_manager),
    ("users", false, system::users),
    ("network", false, net::interfaces),
    ("mounts", false, mounts::mounts),
];

/// Runs `f` on its own thread; an answer after `LIMIT` is an error (the thread is left to
/// finish on its own: a hung filesystem blocks it, not the agent).
fn within_limit(name: &'static str, f: Collector) -> Result<Value, String> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(format!("trait-{name}"))
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| e.to_string())?;
    rx.recv_timeout(LIMIT).unwrap_or_else(|_| Err(format!("took over {}s", LIMIT.as_secs())))
}

/// Collects the traits: every collector when `all`, else the cheap ones, the expensive ones
/// taken from `previous`.
pub fn collect(all: bool, previous: Option<&Value>) -> Value {
    let mut out = Map::new();
    let mut errors = BTreeMap::new();
    for (name, cheap, f) in COLLECTORS {
        if !all && !cheap {
            if let Some(v) = previous.and_then(|p| p.get(*name)) {
                out.insert(name.to_string(), v.clone());
            }
            if let Some(e) = previous.and_then(|p| p["errors"].get(*name)) {
                errors.insert(name.to_string(), e.clone());
            }
            continue;
        }
        match within_limit(name, *f) {
            Ok(v) => {
                out.insert(name.to_string(), v);
            }
            Err(e) => {
                errors.insert(name.to_string(), Value::String(e));
            }
        }
    }
    out.insert("errors".into(), Value::Object(errors.into_iter().collect()));
    Value::Object(out)
}

/// SHA-256 (hex) of the traits' JSON: keys sorted, so equal traits give equal digests.
pub fn digest(traits: &Value) -> String {
    crate::crypto::sha256_hex(serde_json::to_string(traits).unwrap_or_default().as_bytes())
}

/// Rounds `n` down to a multiple of `step` (a value that drifts by itself).
fn coarse(n: u64, step: u64) -> u64 {
    n / step * step
}
