//! Prompts: from the terminal with echo off, or one line per prompt from stdin when stdin is
//! not a terminal (so scripts can drive every verb). Values never come from argv or env.

use std::io::{self, BufRead, IsTerminal, Read, Write};

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

/// Reads a whole value of at most `limit` bytes from `input` (a file or piped stdin), stopping
/// one byte past the limit so an endless source (`/dev/zero`, `yes`) fails fast instead of
/// filling memory. Values are text: anything but UTF-8 is refused. `what` names the source.
pub fn read_value(input: impl io::Read, limit: usize, what: &str) -> io::Result<SecretString> {
    let mut buf = zeroize::Zeroizing::new(Vec::new());
    input.take(limit as u64 + 1).read_to_end(&mut buf)?;
    if buf.len() > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what} holds more than {} KiB, the limit for a secret value", limit / 1024),
        ));
    }
    let text = String::from_utf8(std::mem::take(&mut *buf)).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what} is not UTF-8 text; secret values are text"),
        )
    })?;
    Ok(SecretString::new(text))
}

/// Reads all of piped stdin (for `set raw`), at most `limit` bytes; strips one trailing newline.
pub fn read_all_stdin(limit: usize) -> io::Result<SecretString> {
    let value = read_value(io::stdin().lock(), limit, "standard input")?;
    let text = value.expose();
    let kept = text.strip_suffix('\n').map_or(text, |t| t.strip_suffix('\r').unwrap_or(t));
    Ok(SecretString::new(kept.to_string()))
}
