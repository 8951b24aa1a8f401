//! Exit codes that mean something, and the one error type every command returns.
//! 0 success, 1 operation failed, 2 usage error, 3 refused (locked vault, denied, revoked).

use std::process::ExitCode;

pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_REFUSED: u8 = 3;
/// Output cut off by a closed pipe: what a shell reports for a process killed by SIGPIPE
/// (128 + 13), which is how C tools end in `vigocli audit tail | head`.
pub const EXIT_BROKEN_PIPE: u8 = 141;

/// Why a command did not succeed; the message is what the operator reads.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn failed(message: impl Into<String>) -> Self {
        Failure { code: EXIT_FAILED, message: message.into() }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Failure { code: EXIT_USAGE, message: message.into() }
    }
    pub fn refused(message: impl Into<String>) -> Self {
        Failure { code: EXIT_REFUSED, message: message.into() }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub type CmdResult = Result<(), Failure>;

/// Prints the failure (if any) and turns it into the process exit code.
pub fn finish(result: CmdResult) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if crate::logging::is_json() {
                // A log shipper reading JSON lines should not meet one plain line at the end.
                let line = serde_json::json!({
                    "timestamp": crate::util::time::now_rfc3339(),
                    "level": "ERROR",
                    "message": f.message,
                    "exit_code": f.code,
                });
                eprintln!("{line}");
            } else {
                eprintln!("error: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

macro_rules! failed_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Failure {
            fn from(e: $t) -> Self {
                Failure::failed(e.to_string())
            }
        }
    )*};
}

failed_from!(
    std::io::Error,
    crate::store::StoreError,
    crate::audit::AuditError,
    crate::crypto::CryptoError,
    rusqlite::Error,
    crate::placeholder::PlaceholderError
);

// The roles parse their arguments through the command-line front door.
pub use crate::argv::{hoist_options, parse_args};
