//! Shared helpers for the integration tests: they drive the real `vigo` binary through the
//! names it is installed under (symlinks vigosrv, vigocli, vigo-agent).
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

pub mod attack;
pub mod fleet;
pub mod isopass;
pub mod oidc;
pub mod sinks;

pub fn vigo_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vigo"))
}

/// Copies an executable to `to` with `cp`, so the file is written by another process. Written
/// here, its open descriptor would be inherited by any child another test thread forks at that
/// moment, and running the copy then fails with "Text file busy" (ETXTBSY; seen in CI).
pub fn copy_executable(from: &Path, to: &Path) {
    let out = Command::new("cp").arg(from).arg(to).output().unwrap();
    assert!(out.status.success(), "cp {} {}: {}", from.display(), to.display(), text(&out));
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Writes an executable (a script, a changed binary) at `path`, by way of `copy_executable`.
pub fn write_executable(path: &Path, bytes: &[u8]) {
    let staged = PathBuf::from(format!("{}.staged", path.display()));
    std::fs::write(&staged, bytes).unwrap();
    let tmp = PathBuf::from(format!("{}.new", path.display()));
    copy_executable(&staged, &tmp);
    std::fs::remove_file(&staged).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A directory holding `vigosrv`, `vigocli` and `vigo-agent` symlinks to the built binary. It
/// lives in cargo's per-target temp dir and is shared by every test process: each link is made
/// under a private name and renamed into place, so concurrent processes never see a gap.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vigo-test-bin");
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["vigosrv", "vigocli", "vigo-agent"] {
            let private = dir.join(format!(".{name}.{}", std::process::id()));
            let _ = std::fs::remove_file(&private);
            std::os::unix::fs::symlink(vigo_exe(), &private).unwrap();
            std::fs::rename(&private, dir.join(name)).unwrap();
        }
        dir
    })
}

pub fn role(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// A temporary directory removed on drop (kept when VIGO_KEEP_TEST_DIRS is set).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("vigo-it-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("VIGO_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Starts a role binary with `VIGO_BASE_DIR=base` and `env`, writing `stdin` (lines for
/// prompts) to it; stdout and stderr are piped.
pub fn spawn_role(role_name: &str, base: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Child {
    spawn_program(&role(role_name), base, args, stdin, env)
}

/// As `spawn_role`, for a role link elsewhere (a private install).
pub fn spawn_program(program: &Path, base: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Child {
    let mut child = Command::new(program)
        .args(args)
        .env("VIGO_BASE_DIR", base)
        .env("RUST_BACKTRACE", "0")
        .env_remove("VIGO_SERVER")
        // cargo sets it for test processes; a role would report it as a tamper signal.
        .env_remove("LD_LIBRARY_PATH")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The process may exit before reading its input (e.g. a refused verb): that is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child
}

/// Runs a role binary to completion (see `spawn_role`).
pub fn run_in(base: &Path, role_name: &str, args: &[&str], stdin: &str) -> Output {
    spawn_role(role_name, base, args, stdin, &[]).wait_with_output().unwrap()
}

pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[track_caller]
pub fn assert_code(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "unexpected exit status; output:\n{}", text(out));
}

/// Polls `done` every 200 ms until it holds; fails naming `what` after `limit`. Tests wait for
/// what they expect to happen instead of sleeping a guessed time (CI machines are slow).
#[track_caller]
pub fn wait_for(what: &str, limit: std::time::Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// What a child writes to stderr, line by line, collected as it comes by a thread of its own:
/// a test reads it while the child runs (a daemon's log) and once it has ended.
pub struct StderrLog {
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl StderrLog {
    /// Takes `child`'s stderr (spawned with it piped) and starts collecting it.
    pub fn follow(child: &mut Child) -> StderrLog {
        use std::io::BufRead;
        let stderr = child.stderr.take().expect("stderr piped");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        StderrLog { lines, reader: Some(reader) }
    }

    /// Lines that contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.lines.lock().unwrap().iter().filter(|l| l.contains(needle)).count()
    }

    pub fn contains(&self, needle: &str) -> bool {
        self.count(needle) > 0
    }

    pub fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits until the child's stderr has closed (it ended) and every line is in.
    pub fn finish(&mut self) {
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
    }
}

/// Every file under `dir` (recursively), symlinks not followed.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                out.push(e.path());
            }
        }
    }
    out
}

/// Files under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|p| std::fs::read(p).map(|b| b.windows(needle.len()).any(|w| w == needle)).unwrap_or(false))
        .collect()
}

/// A vault initialised and unlocked under `base` with the given passphrase.
pub fn init_unlocked_vault(base: &Path, pass: &str) {
    let out = run_in(base, "vigocli", &["secrets", "init"], &format!("{pass}\n{pass}\n"));
    assert_code(&out, 0);
    let out = run_in(base, "vigocli", &["secrets", "unlock"], &format!("{pass}\n"));
    assert_code(&out, 0);
}
