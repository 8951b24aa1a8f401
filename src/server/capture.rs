//! Test-build hook: when `VIGO_TEST_CAPTURE_DIR` is set in a debug build, every gRPC request and
//! response message is written there so the security suite can search real payloads for
//! secrets and replay real envelopes. Release builds compile this to nothing.

use prost::Message;

#[cfg(debug_assertions)]
pub fn record(method: &str, direction: &str, msg: &impl Message) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let Some(dir) = std::env::var_os("VIGO_TEST_CAPTURE_DIR") else { return };
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let path =
        std::path::Path::new(&dir).join(format!("{}-{n:06}-{method}-{direction}.bin", std::process::id()));
    let _ = std::fs::write(path, msg.encode_to_vec());
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn record(_method: &str, _direction: &str, _msg: &impl Message) {}
