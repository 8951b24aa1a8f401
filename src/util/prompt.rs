//! Prompts: from the terminal with echo off, or one line per prompt from stdin when stdin is
//! not a terminal (so scripts can drive every verb). Values never come from argv or env.

use std::io::{self, BufRead, IsTerminal, Read, Write};

use nix::sys::termios::{self, LocalFlags, SetArg};

use crate::crypto::{SecretBytes, SecretString};

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
/// filling memory. Any bytes: a value may be binary (a DER certificate). `what` names the source.
pub fn read_value(input: impl io::Read, limit: usize, what: &str) -> io::Result<SecretBytes> {
    let mut buf = zeroize::Zeroizing::new(Vec::new());
    input.take(limit as u64 + 1).read_to_end(&mut buf)?;
    if buf.len() > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what} holds more than {} KiB, the limit for a secret value", limit / 1024),
        ));
    }
    Ok(SecretBytes::new(std::mem::take(&mut *buf)))
}

/// The length of `value` without one trailing line end (`\n` or `\r\n`), for `--trim-newline`.
pub fn without_newline_len(value: &[u8]) -> usize {
    match value {
        [.., b'\r', b'\n'] => value.len() - 2,
        [.., b'\n'] => value.len() - 1,
        _ => value.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_read_whole_as_bytes_and_an_oversized_one_is_refused() {
        let bytes = [0x30, 0x00, 0xff, b'\n'];
        assert_eq!(read_value(&bytes[..], 4, "x").unwrap().expose(), bytes);
        let e = read_value(&[0u8; 5][..], 4, "the file").unwrap_err();
        assert!(e.to_string().starts_with("the file holds more than"), "{e}");
    }

    #[test]
    fn trimming_drops_exactly_one_line_end() {
        assert_eq!(without_newline_len(b"pw\n"), 2);
        assert_eq!(without_newline_len(b"pw\r\n"), 2);
        assert_eq!(without_newline_len(b"pw\n\n"), 3);
        assert_eq!(without_newline_len(b"pw"), 2);
        assert_eq!(without_newline_len(b""), 0);
    }
}
