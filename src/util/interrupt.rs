//! Stop requests (SIGINT, SIGTERM), for the server, the agent's run loop and an apply. The
//! first two wait for one with `requested`. During an apply: once `watch` has run, a signal no longer
//! kills the agent where it stands: the engine stops the command it is running (removing its
//! `secret_file`), skips the resources it has not started and reports the run. `apply` and
//! `run --once` then exit with 128 + the signal's number, as a shell would; the `run` loop, 0.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;

use crate::exit::Failure;

static RECEIVED: AtomicI32 = AtomicI32::new(0);
/// Wakes whoever waits in `requested`; `notify_one` keeps a permit if nobody waits yet.
static ARRIVED: tokio::sync::Notify = tokio::sync::Notify::const_new();
static WATCHING: OnceLock<Result<(), String>> = OnceLock::new();

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

/// Starts listening. The handlers are installed before this returns, so no signal slips
/// through between here and the first resource; later calls do nothing.
pub fn watch() -> Result<(), Failure> {
    WATCHING.get_or_init(install).clone().map_err(Failure::failed)
}

fn install() -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    let cannot = |e: std::io::Error| format!("cannot watch for stop signals: {e}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().map_err(cannot)?;
    let (mut int, mut term) = {
        let _in_runtime = rt.enter();
        (signal(SignalKind::interrupt()).map_err(cannot)?, signal(SignalKind::terminate()).map_err(cannot)?)
    };
    std::thread::Builder::new()
        .name("vigo-signals".into())
        .spawn(move || {
            rt.block_on(async move {
                loop {
                    let signo = tokio::select! {
                        _ = int.recv() => SIGINT,
                        _ = term.recv() => SIGTERM,
                    };
                    RECEIVED.store(signo, Ordering::SeqCst);
                    ARRIVED.notify_one();
                }
            })
        })
        .map_err(cannot)?;
    Ok(())
}

/// The signal that asked this process to stop, if one has.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        n => Some(n),
    }
}

/// Resolves once a stop signal has arrived (at once if one already has). Needs `watch`.
pub async fn requested() {
    if received().is_none() {
        ARRIVED.notified().await;
    }
}

pub fn signal_name(signo: i32) -> &'static str {
    match signo {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// The failure an interrupted one-shot command ends with.
pub fn failure(signo: i32) -> Failure {
    Failure {
        code: (128 + signo) as u8,
        message: format!(
            "stopped by {}: the command running was stopped and the resources not yet started were skipped; see the report above",
            signal_name(signo)
        ),
    }
}
