//! Runs child processes for executors: clean environment, only descriptors 0/1/2, its own
//! process group (so a timeout kills the whole tree), bounded combined output.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::crypto::SecretBytes;

pub(crate) const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Output kept per command: twice what a report carries, so the report's cut falls after
/// scrubbing (see `redact`), never through a value the scrubber has not seen whole.
const MAX_OUTPUT: usize = 128 * 1024;
/// Ends output that went on beyond `MAX_OUTPUT`.
pub(crate) const CUT_NOTICE: &str = "\n[output truncated at 128 KiB]";

pub(crate) struct Spec {
    pub argv: Vec<String>,
    pub stdin: Option<SecretBytes>,
    pub cwd: Option<PathBuf>,
    pub timeout: Duration,
    /// Variables on top of the clean PATH/HOME/LANG (tools such as apt need a few; an exec
    /// may name its own).
    pub env: Vec<(String, String)>,
    /// Run as this uid and gid instead of the agent's. Supplementary groups are dropped (std
    /// clears them when a root parent sets a uid), so the command has the primary group only.
    pub run_as: Option<(u32, u32)>,
    /// Keep stdout apart from `output` (a custom executor answers on stdout).
    pub stdout_apart: bool,
}

impl Spec {
    pub fn new(argv: Vec<String>, timeout: Duration) -> Spec {
        Spec { argv, stdin: None, cwd: None, timeout, env: Vec::new(), run_as: None, stdout_apart: false }
    }
}

pub(crate) struct Ran {
    /// Exit code; `None` when killed by a signal (or by our timeout).
    pub code: Option<i32>,
    pub timed_out: bool,
    /// stdout and stderr interleaved as they arrived, at most `MAX_OUTPUT` (then `CUT_NOTICE`);
    /// stderr alone with `stdout_apart`.
    pub output: String,
    /// stdout, with `stdout_apart` (at most `MAX_OUTPUT`; `None` if it went beyond).
    pub stdout: Option<String>,
}

impl Ran {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// How it ended, for an error message: "exited with status N" or "was killed by a signal".
    pub fn how(&self) -> String {
        self.code.map_or("was killed by a signal".to_string(), |c| format!("exited with status {c}"))
    }
}

/// Runs a system tool found through the agent's PATH; `Err` names the missing tool.
pub(crate) fn run_tool(name: &str, args: &[&str], timeout: Duration) -> Result<Ran, String> {
    let path = find_tool(name).ok_or_else(|| format!("{name} was not found on the agent's PATH"))?;
    let mut argv = vec![path.to_string_lossy().into_owned()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let mut spec = Spec::new(argv, timeout);
    spec.env = [("DEBIAN_FRONTEND", "noninteractive"), ("SYSTEMD_PAGER", ""), ("SYSTEMD_COLORS", "0")]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .to_vec();
    run(spec)
}

/// Finds a tool through the agent's own PATH (so tests can put a stand-in first).
pub(crate) fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| SAFE_PATH.into());
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Marks every descriptor above 2 close-on-exec, so no child inherits one. std opens its own
/// files with O_CLOEXEC; this catches descriptors the agent inherited or a library leaked.
fn seal_descriptors() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return };
    for entry in dir.flatten() {
        let Some(fd) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if fd > 2 {
            if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFD) {
                let flags = FdFlag::from_bits_truncate(flags);
                if !flags.contains(FdFlag::FD_CLOEXEC) {
                    let _ = fcntl(fd, FcntlArg::F_SETFD(flags | FdFlag::FD_CLOEXEC));
                }
            }
        }
    }
}

pub(crate) fn run(spec: Spec) -> Result<Ran, String> {
    let Some((program, args)) = spec.argv.split_first() else { return Err("empty command".into()) };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", SAFE_PATH)
        .env("HOME", "/root")
        .env("LANG", "C")
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(if spec.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some((uid, gid)) = spec.run_as {
        cmd.uid(uid).gid(gid);
    }
    if let Some(dir) = &spec.cwd {
        // Checked here: spawn would blame the program ("cannot start /bin/sh") for a bad cwd.
        if !dir.is_dir() {
            return Err(format!("the working directory {} does not exist", dir.display()));
        }
        cmd.current_dir(dir);
    }
    seal_descriptors();
    let mut child = cmd.spawn().map_err(|e| format!("cannot start {program}: {e}"))?;
    let pgid = Pid::from_raw(child.id() as i32);

    let buf = Arc::new(Mutex::new((Vec::new(), false)));
    let apart = Arc::new(Mutex::new((Vec::new(), false)));
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let stdout_buf = if spec.stdout_apart { Arc::clone(&apart) } else { Arc::clone(&buf) };
    let readers: Vec<(Box<dyn Read + Send>, _)> = vec![
        (Box::new(child.stdout.take().expect("piped stdout")), stdout_buf),
        (Box::new(child.stderr.take().expect("piped stderr")), Arc::clone(&buf)),
    ];
    for (mut r, buf) in readers {
        let tx = done_tx.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = r.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                let mut b = buf.lock().unwrap_or_else(|p| p.into_inner());
                let room = MAX_OUTPUT.saturating_sub(b.0.len());
                b.0.extend_from_slice(&chunk[..n.min(room)]);
                b.1 |= n > room;
            }
            let _ = tx.send(());
        });
    }
    drop(done_tx);
    if let (Some(value), Some(mut pipe)) = (spec.stdin, child.stdin.take()) {
        std::thread::spawn(move || {
            let _ = pipe.write_all(value.expose());
        });
    }

    // Callers bound the timeout; saturate anyway rather than panic on an overflowing Instant.
    let now = Instant::now();
    let deadline = now.checked_add(spec.timeout).unwrap_or(now + Duration::from_secs(86_400 * 365));
    let mut nap = Duration::from_millis(1);
    let (status, timed_out) = loop {
        match child.try_wait() {
            Ok(Some(status)) => break (Some(status), false),
            Ok(None) if crate::util::interrupt::received().is_some() => {
                // The agent is stopping: so does the command (and its secret_file goes).
                let _ = killpg(pgid, Signal::SIGKILL);
                let _ = child.wait();
                let signo = crate::util::interrupt::received().unwrap_or_default();
                return Err(format!(
                    "stopped: the agent received {}",
                    crate::util::interrupt::signal_name(signo)
                ));
            }
            Ok(None) if Instant::now() >= deadline => {
                let _ = killpg(pgid, Signal::SIGKILL);
                break (child.wait().ok(), true);
            }
            Ok(None) => {
                std::thread::sleep(nap);
                nap = (nap * 2).min(Duration::from_millis(50));
            }
            Err(e) => {
                let _ = killpg(pgid, Signal::SIGKILL);
                let _ = child.wait();
                return Err(format!("waiting for {program}: {e}"));
            }
        }
    };
    if timed_out {
        let _ = killpg(pgid, Signal::SIGKILL); // anything the child left in its group
    }
    // A daemon the command started may keep the pipes open: wait briefly, then move on.
    let grace = Instant::now() + Duration::from_secs(2);
    for _ in 0..2 {
        let left = grace.saturating_duration_since(Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            break;
        }
    }
    let (bytes, truncated) = {
        let b = buf.lock().unwrap_or_else(|p| p.into_inner());
        (b.0.clone(), b.1)
    };
    let mut bytes = bytes;
    if truncated {
        // The cut may split a character: drop its first bytes rather than turn them into U+FFFD,
        // so that what is left still reads as the beginning of whatever was cut.
        if let Err(e) = std::str::from_utf8(&bytes) {
            if e.error_len().is_none() {
                bytes.truncate(e.valid_up_to());
            }
        }
    }
    let mut output = String::from_utf8_lossy(&bytes).into_owned();
    if truncated {
        output.push_str(CUT_NOTICE);
    }
    let stdout = spec.stdout_apart.then(|| {
        let b = apart.lock().unwrap_or_else(|p| p.into_inner());
        (!b.1).then(|| String::from_utf8_lossy(&b.0).into_owned())
    });
    Ok(Ran { code: status.and_then(|s| s.code()), timed_out, output, stdout: stdout.flatten() })
}
