//! `vigo-agent`: the agent role.

pub mod engine;
pub mod lock;

use std::process::ExitCode;

pub fn main(command: &str, args: &[&str]) -> ExitCode {
    let _ = (command, args);
    eprintln!("error: the agent role is not built yet");
    ExitCode::from(crate::exit::EXIT_FAILED)
}
