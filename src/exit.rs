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

/// Parses argv with argh. `--help` prints to stdout and exits 0; a parse error exits 2.
pub fn parse_args<T: argh::FromArgs>(command: &str, args: &[&str]) -> Result<T, ExitCode> {
    let names: Vec<&str> = command.split(' ').collect();
    T::from_args(&names, args).map_err(|early| match early.status {
        Ok(()) => {
            println!("{}", early.output.trim_end());
            ExitCode::SUCCESS
        }
        Err(()) => {
            eprintln!("{}", redact_stray_values(early.output.trim_end()));
            ExitCode::from(EXIT_USAGE)
        }
    })
}

/// A stray positional argument is often a value typed where a prompt was expected
/// (`secrets set raw KEY hunter2`): name the mistake without repeating what may be a secret.
/// Stray flags (`--frce`) are shown, since a typo there is what the reader needs to see.
fn redact_stray_values(output: &str) -> String {
    const PREFIX: &str = "Unrecognized argument: ";
    output
        .lines()
        .map(|line| match line.strip_prefix(PREFIX) {
            Some(arg) if !arg.starts_with('-') => format!(
                "{PREFIX}one value too many (not repeated here, in case it is a secret; secret values are read from a prompt, a pipe or --from-file, never the command line)"
            ),
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Moves "persistent" options (`--base-dir X`, `--log-format=json`, ...) from anywhere in argv
/// to the front, where the role's top-level parser reads them. Stops at `--`.
pub fn hoist_options<'a>(args: &[&'a str], options: &[&str]) -> Vec<&'a str> {
    let mut front = Vec::new();
    let mut back = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        if a == "--" {
            back.extend_from_slice(&args[i..]);
            break;
        }
        let name = a.split('=').next().unwrap_or(a);
        if options.contains(&name) {
            if a.contains('=') {
                front.push(a);
            } else {
                front.push(a);
                if let Some(v) = args.get(i + 1) {
                    front.push(v);
                    i += 1;
                }
            }
        } else {
            back.push(a);
        }
        i += 1;
    }
    // argh reads `--opt=value` poorly; split it into two words.
    let mut out = Vec::with_capacity(args.len());
    for a in front {
        match a.split_once('=') {
            Some((k, v)) if k.starts_with("--") => {
                out.push(k);
                out.push(v);
            }
            _ => out.push(a),
        }
    }
    out.extend(back);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hoists_persistent_options() {
        let args = ["secrets", "list", "--base-dir", "/x", "--log-format=json", "--", "--base-dir"];
        let out = hoist_options(&args, &["--base-dir", "--log-format"]);
        assert_eq!(out, ["--base-dir", "/x", "--log-format", "json", "secrets", "list", "--", "--base-dir"]);
    }
}
