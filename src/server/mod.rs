//! `vigosrv`: the server role.

use std::process::ExitCode;

pub fn main(command: &str, args: &[&str]) -> ExitCode {
    let _ = (command, args);
    eprintln!("error: the server role is not built yet");
    ExitCode::from(crate::exit::EXIT_FAILED)
}
