//! Prompts: from the terminal with echo off, or one line per prompt from stdin when stdin is
//! not a terminal (so scripts can drive every verb). Values never come from argv or env.

use std::io::{self, BufRead, IsTerminal, Write};

use nix::sys::termios::{self, LocalFlags, SetArg};

use crate::crypto::SecretString;

/// Reads one line; `hidden` turns terminal echo off. EOF before any input is an error.
pub fn read_line(prompt: &str, hidden: bool) -> io::Result<SecretString> {
    let stdin = io::stdin();
    let interactive = stdin.is_terminal();
    if interactive {
        eprint!("{prompt}");
        io::stderr().flush()?;
    }
    let saved = if interactive && hidden { echo_off(&stdin) } else { None };
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(old) = saved {
        let _ = termios::tcsetattr(&stdin, SetArg::TCSANOW, &old);
        eprintln!();
    }
    let n = read?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("no input for prompt {:?} (stdin closed)", prompt.trim().trim_end_matches(':')),
        ));
    }
    while line.ends_with('\n') || line.ends_with('\r') {
        line.pop();
    }
    Ok(SecretString::new(line))
}

fn echo_off(stdin: &io::Stdin) -> Option<termios::Termios> {
    let old = termios::tcgetattr(stdin).ok()?;
    let mut quiet = old.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    termios::tcsetattr(stdin, SetArg::TCSANOW, &quiet).ok()?;
    Some(old)
}

/// Reads all of stdin (for `set raw` piped values); strips one trailing newline.
pub fn read_all_stdin() -> io::Result<SecretString> {
    let mut buf = String::new();
    io::Read::read_to_string(&mut io::stdin(), &mut buf)?;
    if buf.ends_with('\n') {
        buf.pop();
        if buf.ends_with('\r') {
            buf.pop();
        }
    }
    Ok(SecretString::new(buf))
}
