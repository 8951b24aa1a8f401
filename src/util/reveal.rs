//! Showing a secret value to the operator: `vigocli secrets reveal` and `vigo-agent resolve
//! --reveal` follow one rule. A value is written exactly as stored — to a file named by
//! `--out` (0600, atomic), or to stdout when stdout is a pipe or a file. On a terminal, text is
//! printed (with a line end added if it has none, so the prompt does not run into it) and a
//! binary value (not valid UTF-8) is refused: its raw bytes would garble or drive the terminal.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::crypto::SecretBytes;

/// Where a revealed value goes.
pub enum Dest {
    /// `--out FILE`.
    File(PathBuf),
    /// Standard output; `terminal` when it is one.
    Stdout { terminal: bool },
}

impl Dest {
    /// `--out FILE` when given, else stdout (asking whether it is a terminal).
    pub fn from_out(out: Option<&str>) -> Dest {
        match out {
            Some(f) => Dest::File(PathBuf::from(f)),
            None => Dest::Stdout { terminal: io::stdout().is_terminal() },
        }
    }
}

/// Why `value` may not go to `dest`, with what to do instead. Checked before the value is read
/// out (and before the access is recorded), so a refusal reveals nothing.
pub fn refusal(key: &str, value: &SecretBytes, dest: &Dest, out_flag: &str) -> Option<String> {
    match dest {
        Dest::Stdout { terminal: true } if value.as_text().is_none() => Some(format!(
            "secret:{key} is binary ({} bytes, not UTF-8 text) and is not printed to a terminal; \
             write it to a file with `{out_flag} FILE` (mode 0600), or redirect or pipe stdout \
             (`> FILE`, `| base64`)",
            value.len()
        )),
        _ => None,
    }
}

/// Writes `value` to `dest` (see the module comment). Returns what to tell the operator
/// afterwards, if anything (on stderr: stdout may be the value's destination).
pub fn write(key: &str, value: &SecretBytes, dest: &Dest) -> io::Result<Option<String>> {
    match dest {
        Dest::File(path) => {
            write_file(path, value.expose())?;
            Ok(Some(format!("secret:{key} written to {} ({} bytes, mode 0600)", path.display(), value.len())))
        }
        Dest::Stdout { terminal } => {
            let mut out = io::stdout().lock();
            out.write_all(value.expose())?;
            if *terminal && !value.expose().ends_with(b"\n") {
                out.write_all(b"\n")?;
            }
            out.flush()?;
            Ok(None)
        }
    }
}

/// A new 0600 file holding exactly `bytes`, put in place atomically (a temp file beside it,
/// renamed over it), so no reader ever sees half a value and a failure leaves no file behind.
fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if path.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is a directory; give a file name", path.display()),
        ));
    }
    crate::util::fsutil::atomic_write(path, bytes, 0o600)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binary_value_is_refused_only_on_a_terminal() {
        let der = SecretBytes::new(vec![0x30, 0x00, 0xff]);
        let text = SecretBytes::new(b"hunter2".to_vec());
        let tty = Dest::Stdout { terminal: true };
        let why = refusal("tls/der", &der, &tty, "--out").unwrap();
        assert!(why.contains("secret:tls/der is binary (3 bytes") && why.contains("`--out FILE`"), "{why}");
        assert!(refusal("k", &text, &tty, "--out").is_none());
        assert!(refusal("k", &der, &Dest::Stdout { terminal: false }, "--out").is_none());
        assert!(refusal("k", &der, &Dest::File("/tmp/x".into()), "--out").is_none());
    }

    #[test]
    fn out_writes_the_exact_bytes_to_a_private_file_atomically() {
        let dir = std::env::temp_dir().join(format!("vigo-reveal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cert.der");
        std::fs::write(&path, b"older and longer content").unwrap();
        let der = SecretBytes::new(vec![0x30, 0x00, 0xff, b'\n']);
        let said = write("tls/der", &der, &Dest::File(path.clone())).unwrap().unwrap();
        assert!(said.contains("4 bytes, mode 0600"), "{said}");
        assert_eq!(std::fs::read(&path).unwrap(), der.expose());
        assert_eq!(crate::util::fsutil::mode_of(&path).unwrap(), 0o600);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no temp file left");
        let e = write("k", &der, &Dest::File(dir.clone())).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
