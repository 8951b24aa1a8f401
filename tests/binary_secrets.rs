//! Binary secret values end to end, through the real binary: `secrets set raw` stores any bytes
//! from a file or a pipe with one newline rule for both, `reveal` never puts a binary value on
//! a terminal, and masterless `vigo-agent apply` writes it whole or refuses it where text is
//! needed.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::*;

const PASS: &str = "binary passphrase";

/// A DER-like value: NUL, 0xff, invalid UTF-8, and a trailing newline byte that is its own.
const DER: &[u8] = &[0x30, 0x82, 0x01, 0x0a, 0x00, 0xff, 0xfe, b'C', b'N', 0xc3, 0x28, 0x0a];

/// Runs a role with `stdin` as raw bytes.
fn run_bytes(base: &Path, role_name: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(role(role_name))
        .env_remove("LD_LIBRARY_PATH")
        .args(args)
        .env("VIGO_BASE_DIR", base)
        .env_remove("VIGO_SERVER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

/// Runs a role with a terminal (a pseudo-terminal) as stdout; returns the exit code, stderr,
/// and what reached the terminal.
fn run_on_tty(base: &Path, role_name: &str, args: &[&str]) -> (Option<i32>, String, Vec<u8>) {
    let pty = nix::pty::openpty(None, None).unwrap();
    let child = Command::new(role(role_name))
        .env_remove("LD_LIBRARY_PATH")
        .args(args)
        .env("VIGO_BASE_DIR", base)
        .env_remove("VIGO_SERVER")
        .stdin(Stdio::null())
        .stdout(Stdio::from(pty.slave))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    // The slave is closed on both sides now: read what is buffered, up to EIO.
    let mut shown = Vec::new();
    let mut master = std::fs::File::from(pty.master);
    let mut chunk = [0u8; 4096];
    while let Ok(n) = master.read(&mut chunk) {
        if n == 0 {
            break;
        }
        shown.extend_from_slice(&chunk[..n]);
    }
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned(), shown)
}

fn reveal(base: &Path, key: &str) -> Vec<u8> {
    let out = run_in(base, "vigocli", &["secrets", "reveal", key], "");
    assert_code(&out, 0);
    out.stdout
}

fn vault(tag: &str) -> TempDir {
    let base = TempDir::new(tag);
    init_unlocked_vault(base.path(), PASS);
    base
}

#[test]
fn binary_values_are_stored_byte_for_byte_from_a_file_or_a_pipe() {
    let base = vault("bin-set");
    let b = base.path();
    let file = base.join("cert.der");
    std::fs::write(&file, DER).unwrap();
    let out = run_in(
        b,
        "vigocli",
        &["secrets", "set", "raw", "tls/der", "--from-file", file.to_str().unwrap()],
        "",
    );
    assert_code(&out, 0);
    assert!(text(&out).contains("Secret \"tls/der\" stored (12 bytes, binary)."), "{}", text(&out));
    assert_eq!(reveal(b, "tls/der"), DER, "a pipe gets the exact bytes, the last newline included");
    let out = run_bytes(b, "vigocli", &["secrets", "set", "raw", "tls/piped"], DER);
    assert_code(&out, 0);
    assert_eq!(reveal(b, "tls/piped"), DER);
    // The audit row says how much and what kind, never the value.
    let log = String::from_utf8(run_in(b, "vigocli", &["audit", "tail", "--json"], "").stdout).unwrap();
    assert!(log.contains(r#"\"bytes\":12,\"text\":false"#), "{log}");
}

/// From a pipe the value is kept exactly, trailing newline included (with a note saying so, as
/// `echo VALUE |` adds one); `--trim-newline` drops one `\n` or `\r\n`.
#[test]
fn a_trailing_newline_from_a_pipe_is_kept_unless_trim_newline_is_given() {
    let base = vault("bin-nl-pipe");
    let b = base.path();
    let out = run_in(b, "vigocli", &["secrets", "set", "raw", "app/kept"], "hunter2\n");
    assert_code(&out, 0);
    let note =
        "note: the value ends with a newline, stored as part of it (8 bytes); pass --trim-newline to drop it";
    assert!(String::from_utf8_lossy(&out.stderr).contains(note), "{}", text(&out));
    assert_eq!(reveal(b, "app/kept"), b"hunter2\n");
    for (input, trimmed) in [("hunter2\n", "hunter2"), ("hunter2\r\n", "hunter2"), ("two\n\n", "two\n")] {
        let out = run_in(b, "vigocli", &["secrets", "set", "raw", "app/trimmed", "--trim-newline"], input);
        assert_code(&out, 0);
        assert!(!text(&out).contains("note:"), "{}", text(&out));
        assert_eq!(reveal(b, "app/trimmed"), trimmed.as_bytes(), "{input:?}");
    }
    // A multi-line value (a PEM file) draws no note: its final newline belongs to it.
    let out = run_in(
        b,
        "vigocli",
        &["secrets", "set", "raw", "app/pem"],
        "-----BEGIN X-----\nAAA\n-----END X-----\n",
    );
    assert_code(&out, 0);
    assert!(!text(&out).contains("note:"), "{}", text(&out));
}

/// The same rule from a file: kept exactly, `--trim-newline` drops one line end; the binary
/// value's own final 0x0a is kept unless asked.
#[test]
fn a_trailing_newline_from_a_file_is_kept_unless_trim_newline_is_given() {
    let base = vault("bin-nl-file");
    let b = base.path();
    let file = base.join("value");
    std::fs::write(&file, "hunter2\n").unwrap();
    let from = ["--from-file", file.to_str().unwrap()];
    let out = run_in(b, "vigocli", &[&["secrets", "set", "raw", "app/kept"][..], &from].concat(), "");
    assert_code(&out, 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass --trim-newline"), "{}", text(&out));
    assert_eq!(reveal(b, "app/kept"), b"hunter2\n");
    let trim = [&["secrets", "set", "raw", "app/trimmed", "--trim-newline"][..], &from].concat();
    assert_code(&run_in(b, "vigocli", &trim, ""), 0);
    assert_eq!(reveal(b, "app/trimmed"), b"hunter2");
    std::fs::write(&file, DER).unwrap();
    assert_code(&run_in(b, "vigocli", &trim, ""), 0);
    assert_eq!(reveal(b, "app/trimmed"), &DER[..DER.len() - 1]);
}

/// `secrets reveal` of a binary value: refused on a terminal (nothing shown, nothing audited),
/// written exactly with `--out` (0600, replacing a file atomically) or to a pipe. Text on a
/// terminal is printed as before.
#[test]
fn reveal_refuses_a_binary_value_on_a_terminal_and_writes_it_with_out() {
    let base = vault("bin-reveal");
    let b = base.path();
    assert_code(&run_bytes(b, "vigocli", &["secrets", "set", "raw", "tls/der"], DER), 0);
    assert_code(&run_in(b, "vigocli", &["secrets", "set", "raw", "app/text"], "plain-text-value"), 0);
    let accessed = |b: &Path| {
        let log =
            String::from_utf8(run_in(b, "vigocli", &["audit", "tail", "-n", "100", "--json"], "").stdout)
                .unwrap();
        log.matches(r#""action":"secret.accessed""#).count()
    };

    let (code, stderr, shown) = run_on_tty(b, "vigocli", &["secrets", "reveal", "tls/der"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("secret:tls/der is binary (12 bytes, not UTF-8 text) and is not printed to a terminal; write it to a file with `--out FILE` (mode 0600)"),
        "{stderr}"
    );
    assert!(shown.is_empty(), "{shown:?}");
    assert_eq!(accessed(b), 0, "a refused reveal revealed nothing and is not recorded");

    let (code, stderr, shown) = run_on_tty(b, "vigocli", &["secrets", "reveal", "app/text"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(shown, b"plain-text-value\r\n", "text with a line end added (the tty turns \\n into \\r\\n)");

    let out_file = base.join("out/cert.der");
    std::fs::create_dir_all(out_file.parent().unwrap()).unwrap();
    std::fs::write(&out_file, "an older, longer file").unwrap();
    let (code, stderr, shown) =
        run_on_tty(b, "vigocli", &["secrets", "reveal", "tls/der", "--out", out_file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(shown.is_empty() && stderr.contains("written to"), "{shown:?} {stderr}");
    assert_eq!(std::fs::read(&out_file).unwrap(), DER);
    assert_eq!(std::fs::metadata(&out_file).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read_dir(out_file.parent().unwrap()).unwrap().count(), 1, "no temp file left");
    assert_eq!(accessed(b), 2);

    // A directory is not a file to write to: said, and nothing written.
    let out = run_in(
        b,
        "vigocli",
        &["secrets", "reveal", "tls/der", "--out", base.join("out").to_str().unwrap()],
        "",
    );
    assert_code(&out, 1);
    assert!(text(&out).contains("is a directory; give a file name"), "{}", text(&out));
}

const MASTERLESS: &str = r#"
resources:
  - name: dir
    type: directory
    target_path: /etc/tls
  - name: der
    type: file
    target_path: /etc/tls/cert.der
    content: "secret:tls/der"
    depends_on: [dir]
  - name: feed
    type: exec
    command: "sh -c 'cat > ROOT/fed.der'"
    stdin: "secret:tls/der"
"#;

/// Masterless apply reads the local vault by the same rules: a binary value is written whole
/// by a file whose content is exactly the ref and fed whole to stdin, and refused in a
/// template, naming the key and the attribute.
#[test]
fn masterless_apply_writes_a_binary_value_whole_and_refuses_it_in_a_template() {
    let t = TempDir::new("bin-masterless");
    let (config, root, base) = (t.join("config"), t.join("root"), t.join("base"));
    init_unlocked_vault(&base, PASS);
    assert_code(&run_bytes(&base, "vigocli", &["secrets", "set", "raw", "tls/der"], DER), 0);
    std::fs::create_dir_all(config.join("modules")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(config.join("nodes.vgo"), "envoys:\n  - match: \"*\"\n    roles: [app]\n").unwrap();
    std::fs::write(config.join("modules/app.vgo"), MASTERLESS.replace("ROOT", root.to_str().unwrap()))
        .unwrap();
    let apply = |extra: &str| {
        if !extra.is_empty() {
            let module = format!("{}{extra}", MASTERLESS.replace("ROOT", root.to_str().unwrap()));
            std::fs::write(config.join("modules/app.vgo"), module).unwrap();
        }
        let args = ["apply", config.to_str().unwrap(), "--envoy", "h1", "--root", root.to_str().unwrap()];
        run_in(&base, "vigo-agent", &args, "")
    };
    let out = apply("");
    assert_code(&out, 0);
    assert_eq!(std::fs::read(root.join("etc/tls/cert.der")).unwrap(), DER);
    assert_eq!(std::fs::read(root.join("fed.der")).unwrap(), DER);

    // A template that splices the value into text (a `secret:` ref is whole or nothing, so
    // the splice goes through a var).
    let spliced = "  - name: conf\n    type: file\n    target_path: /etc/tls/app.conf\n    content: \"cert={{ .Vars.der }}\\n\"\n    depends_on: [dir]\nvars:\n  der: \"secret:tls/der\"\n";
    let out = apply(spliced);
    assert_code(&out, 1);
    assert!(
        text(&out).contains("secret:tls/der is binary (not UTF-8 text) and attribute \"content\" needs text"),
        "{}",
        text(&out)
    );
    assert!(!root.join("etc/tls/app.conf").exists());
}

/// `vigo-agent resolve` follows the same rule as `reveal`: without --reveal it says what it got
/// (size, binary); --reveal to a pipe writes the exact bytes, to a terminal it refuses; --out
/// writes a 0600 file. And `secrets set raw --help` states the newline rule.
#[test]
fn agent_resolve_never_prints_a_binary_value_to_a_terminal() {
    let mut f = common::fleet::Fleet::new("bin-resolve");
    assert_code(&run_bytes(&f.base(), "vigocli", &["secrets", "set", "raw", "tls/der"], DER), 0);
    let module = "resources:\n  - name: der\n    type: file\n    target_path: /cert.der\n    content: \"secret:tls/der\"\n";
    f.write_config(&[
        ("nodes.vgo", "envoys:\n  - match: \"*\"\n    roles: [app]\n"),
        ("modules/app.vgo", module),
    ]);
    f.start_server();
    let agent_base = f.enroll("web1");
    let out = f.agent("web1", &["resolve", "tls/der"]);
    assert_code(&out, 0);
    assert!(text(&out).contains("secret:tls/der resolved (12 bytes, binary, epoch"), "{}", text(&out));
    let out = f.agent("web1", &["resolve", "tls/der", "--reveal"]);
    assert_code(&out, 0);
    assert_eq!(out.stdout, DER);
    let (code, stderr, shown) = run_on_tty(&agent_base, "vigo-agent", &["resolve", "tls/der", "--reveal"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr
            .contains("secret:tls/der is binary (12 bytes, not UTF-8 text) and is not printed to a terminal"),
        "{stderr}"
    );
    assert!(shown.is_empty(), "{shown:?}");
    let saved = f.dir.join("resolved.der");
    assert_code(&f.agent("web1", &["resolve", "tls/der", "--out", saved.to_str().unwrap()]), 0);
    assert_eq!(std::fs::read(&saved).unwrap(), DER);
    assert_eq!(std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777, 0o600);
    f.stop_server();

    let help = run_in(&f.base(), "vigocli", &["secrets", "set", "raw", "--help"], "");
    assert_code(&help, 0);
    for says in [
        "--trim-newline",
        "stored exactly as given, byte for byte",
        "`echo VALUE | vigocli secrets set raw KEY` therefore stores VALUE plus a newline",
    ] {
        assert!(
            String::from_utf8_lossy(&help.stdout).contains(says),
            "{says:?} missing from\n{}",
            text(&help)
        );
    }
}
