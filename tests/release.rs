//! Signed releases from the outside: `vigocli release keygen | sign | stamp | verify`, the
//! server's fail-closed startup gate (a changed byte, a wrong key, a manifest for another
//! version or target, a missing or malformed `.sig`, an unsafe key file), the development build
//! that starts loudly, tamper signals audited, and what an agent reports about its binary.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fleet::Fleet;
use common::*;

/// A private copy of the binary with its three role links, and a config naming the key file.
struct Install {
    dir: TempDir,
}

impl Install {
    fn new(tag: &str) -> Install {
        let dir = TempDir::new(tag);
        copy_executable(&vigo_exe(), &dir.join("vigo"));
        for role in ["vigosrv", "vigocli", "vigo-agent"] {
            std::os::unix::fs::symlink("vigo", dir.join(role)).unwrap();
        }
        std::fs::write(
            dir.join("vigo.yaml"),
            format!("release:\n  public_key_file: {}\n", dir.join("keys/release.pub").display()),
        )
        .unwrap();
        Install { dir }
    }
    fn bin(&self) -> PathBuf {
        self.dir.join("vigo")
    }
    fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(self.dir.join("vigocli"))
            .args(args)
            .env("VIGO_CONFIG", "")
            .env("VIGO_BASE_DIR", self.dir.join("cli-base"))
            .output()
            .unwrap()
    }
    /// Starts vigosrv on an empty base dir; returns its exit code (None: it was still running
    /// once `until` appeared in its log, and was stopped) and its output.
    fn start(&self, until: &str, env: &[(&str, &str)], wrap: Option<&[&str]>) -> (Option<i32>, String) {
        let base = self.dir.join(&format!("srv-{}", rand_suffix()));
        let server = self.dir.join("vigosrv");
        let args = ["--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--config"];
        let mut cmd = match wrap {
            Some(w) => {
                let mut c = Command::new(w[0]);
                c.args(&w[1..]).arg(&server);
                c
            }
            None => Command::new(&server),
        };
        cmd.args(args)
            .arg(self.dir.join("vigo.yaml"))
            .env("VIGO_BASE_DIR", &base)
            .env_remove("LD_LIBRARY_PATH")
            .envs(env.iter().copied());
        run_until(cmd, until)
    }
}

fn rand_suffix() -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::SeqCst).to_string()
}

/// Runs `cmd` until `until` shows in its stderr (then kills it) or it exits (bounded: 60 s).
/// It runs in its own process group, killed whole: killing only a wrapper (`strace`) left the
/// server it traced running after the test.
fn run_until(mut cmd: Command, until: &str) -> (Option<i32>, String) {
    use std::os::unix::process::CommandExt;
    let mut child = cmd.process_group(0).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let group = format!("-{}", child.id());
    let kill_group = |child: &mut std::process::Child| {
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = child.wait();
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        while let Ok(line) = rx.try_recv() {
            log.push_str(&line);
            log.push('\n');
        }
        if log.contains(until) {
            kill_group(&mut child);
            return (None, log);
        }
        if let Some(status) = child.try_wait().unwrap() {
            std::thread::sleep(Duration::from_millis(100));
            while let Ok(line) = rx.try_recv() {
                log.push_str(&line);
                log.push('\n');
            }
            return (status.code(), log);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    kill_group(&mut child);
    panic!("neither {until:?} nor an exit within 60 s:\n{log}");
}

const STARTED: &str = "listening agent=";

fn sign(i: &Install, extra: &[&str]) -> std::process::Output {
    let bin = i.bin();
    let key = i.dir.join("keys/release.key");
    i.cli(&[&["release", "sign", bin.to_str().unwrap(), "--key", key.to_str().unwrap()][..], extra].concat())
}

#[test]
fn the_startup_gate_refuses_every_binary_it_cannot_verify() {
    let i = Install::new("gate");
    // No key installed: a development build starts, saying so.
    let (code, log) = i.start(STARTED, &[], None);
    assert_eq!(code, None, "{log}");
    assert!(log.contains("UNSIGNED DEVELOPMENT BUILD"), "{log}");

    let keys = i.dir.join("keys");
    let made = i.cli(&["release", "keygen", "--out", keys.to_str().unwrap()]);
    assert_code(&made, 0);
    assert_eq!(std::fs::metadata(keys.join("release.key")).unwrap().permissions().mode() & 0o777, 0o600);
    assert_code(&i.cli(&["release", "keygen", "--out", keys.to_str().unwrap()]), 3);

    // A key now, but no .sig.
    let (code, log) = i.start(STARTED, &[], None);
    assert_eq!(code, Some(3), "{log}");
    assert!(log.contains("no signature") && log.contains("vigo.sig"), "{log}");

    // Signed: it starts, and says which key.
    assert_code(&sign(&i, &[]), 0);
    let (code, log) = i.start(STARTED, &[], None);
    assert_eq!(code, None, "{log}");
    assert!(log.contains("signature checks out"), "{log}");
    let verified = i.cli(&[
        "release",
        "verify",
        i.bin().to_str().unwrap(),
        "--key",
        keys.join("release.pub").to_str().unwrap(),
    ]);
    assert_code(&verified, 0);
    assert!(text(&verified).contains("\"sha256\""), "{}", text(&verified));

    // Signed for another version, another target: refused, naming what differs.
    for (flag, value, says) in [
        ("--version", "99.0.0", "version 99.0.0"),
        ("--target", "aarch64-unknown-linux-gnu", "target aarch64"),
    ] {
        assert_code(&sign(&i, &[flag, value]), 0);
        let (code, log) = i.start(STARTED, &[], None);
        assert_eq!(code, Some(3), "{log}");
        assert!(log.contains(says), "{log}");
    }

    // Signed by another key.
    let other = i.dir.join("other-keys");
    assert_code(&i.cli(&["release", "keygen", "--out", other.to_str().unwrap()]), 0);
    let bin = i.bin();
    assert_code(
        &i.cli(&[
            "release",
            "sign",
            bin.to_str().unwrap(),
            "--key",
            other.join("release.key").to_str().unwrap(),
        ]),
        0,
    );
    let (code, log) = i.start(STARTED, &[], None);
    assert_eq!(code, Some(3), "{log}");
    assert!(log.contains("but this binary trusts key"), "{log}");

    // A malformed .sig.
    std::fs::write(i.dir.join("vigo.sig"), "{\"manifest\": 1}").unwrap();
    let (code, log) = i.start(STARTED, &[], None);
    assert_eq!(code, Some(3), "{log}");
    assert!(log.contains("malformed"), "{log}");

    // One byte changed after signing (in a message text, so the binary still runs).
    assert_code(&sign(&i, &[]), 0);
    let mut bytes = std::fs::read(i.bin()).unwrap();
    let at = find(&bytes, b"UNSIGNED DEVELOPMENT BUILD").expect("the notice is in the binary");
    bytes[at] = b'u';
    write_executable(&i.bin(), &bytes);
    let (code, log) = i.start(STARTED, &[], None);
    assert_eq!(code, Some(3), "{log}");
    assert!(log.contains("SHA-256 differs"), "{log}");

    // A key file others may write is refused, not ignored.
    std::fs::set_permissions(keys.join("release.pub"), std::fs::Permissions::from_mode(0o666)).unwrap();
    let (code, log) = i.start(STARTED, &[], None);
    assert_eq!(code, Some(3), "{log}");
    assert!(log.contains("chmod 644"), "{log}");
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn a_stamped_copy_reports_its_version_and_signs_as_it() {
    let i = Install::new("stamp");
    // Named vigo, as the binary picks its role by its name.
    std::fs::create_dir_all(i.dir.join("next")).unwrap();
    let next = i.dir.join("next/vigo");
    let out = i.cli(&[
        "release",
        "stamp",
        i.bin().to_str().unwrap(),
        "--version",
        "7.8.9",
        "--out",
        next.to_str().unwrap(),
    ]);
    assert_code(&out, 0);
    let v = Command::new(&next).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), "vigo 7.8.9");
    let own = Command::new(i.bin()).arg("--version").output().unwrap();
    assert_ne!(String::from_utf8_lossy(&own.stdout).trim(), "vigo 7.8.9");
    let bad = i.cli(&[
        "release",
        "stamp",
        i.bin().to_str().unwrap(),
        "--version",
        "seven",
        "--out",
        next.to_str().unwrap(),
    ]);
    assert_code(&bad, 2);
}

#[test]
fn tamper_signals_are_audited_and_never_stop_the_server() {
    let i = Install::new("tamper");
    // Loader variables (a static binary ignores them, but someone tried).
    let (code, log) =
        i.start("tamper signal in the server process", &[("LD_PRELOAD", "/tmp/not-there.so")], None);
    assert_eq!(code, None, "{log}");
    assert!(log.contains("LD_PRELOAD is set"), "{log}");
    // A tracer: started under strace, it is attached from the first look.
    let (code, log) =
        i.start("tamper signal in the server process", &[], Some(&["strace", "-f", "-o", "/dev/null"]));
    assert_eq!(code, None, "{log}");
    assert!(log.contains("traced by process"), "{log}");
}

#[test]
fn a_tracer_attached_later_is_audited_at_the_next_look() {
    let mut f = Fleet::new("tamper-later");
    f.start_server();
    let pid = f.server.as_ref().unwrap().id().to_string();
    let mut strace = Command::new("strace").args(["-p", &pid, "-o", "/dev/null"]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f.audit_json().contains("hardening.debugger_detected") {
        assert!(Instant::now() < deadline, "no audit row for the tracer:\n{}", f.audit_json());
        std::thread::sleep(Duration::from_millis(500));
    }
    let _ = strace.kill();
    let _ = strace.wait();
    assert!(f.audit_json().contains("TracerPid"), "the evidence is recorded");
    assert_eq!(f.health()["status"], "ok", "a tamper signal never stops the server");
}

#[test]
fn an_agent_reports_its_binary_at_check_in() {
    let mut f = Fleet::new("agent-binary");
    f.start_server();
    f.enroll("web1");
    assert_code(&f.run_once("web1"), 0);
    let out = f.cli(&["envoys", "show", "web1", "-o", "json"], "");
    assert_code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["agent_binary"].as_str().unwrap().contains("unsigned development build"), "{v:#}");
    assert!(v["agent_version"].as_str().unwrap().contains('.'), "{v:#}");
}
