//! `vigo quickstart`: the whole product on 127.0.0.1 in a temp dir, no root needed. Every step
//! runs the real roles as child processes, exactly as an operator would type them.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use argh::{ArgsInfo, FromArgs};

use crate::exit::{finish, parse_args, CmdResult, Failure};

const NODES: &str = include_str!("../examples/quickstart/nodes.vgo");
const DEMO_MODULE: &str = include_str!("../examples/quickstart/modules/demo.vgo");
const ENVOY: &str = "quickstart-web";

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
/// Run a complete demo on 127.0.0.1: vault, certificates, server, one enrolled agent applying
/// into DIR/root. Stays up until Ctrl-C (or exits at once with --no-wait).
pub(crate) struct QuickstartArgs {
    /// working directory (default: a new directory under /tmp)
    #[argh(option)]
    dir: Option<String>,
    /// stop the server and exit once the demo has converged
    #[argh(switch)]
    no_wait: bool,
}

struct Demo {
    exe: PathBuf,
    dir: PathBuf,
    server: Option<Child>,
    api: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(mut s) = self.server.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(s.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = s.wait();
        }
    }
}

impl Demo {
    fn server_base(&self) -> PathBuf {
        self.dir.join("server")
    }

    /// Runs `vigo <role> args…` with `stdin`; fails with the child's own error text.
    fn step(&self, base: &Path, role: &str, args: &[&str], stdin: &str) -> Result<String, Failure> {
        let mut child = Command::new(&self.exe)
            .arg(role)
            .args(args)
            .env("VIGO_BASE_DIR", base)
            .env("VIGO_SERVER", format!("https://{}", self.api))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Failure::failed(format!("cannot run {}: {e}", self.exe.display())))?;
        if let Some(mut input) = child.stdin.take() {
            let _ = input.write_all(stdin.as_bytes());
        }
        let out = child.wait_with_output()?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(Failure::failed(format!(
                "`vigo {role} {}` failed:\n{}{}",
                args.join(" "),
                stdout,
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(stdout)
    }

    fn start_server(&mut self) -> Result<String, Failure> {
        let log = std::fs::File::create(self.dir.join("server.log"))?;
        let mut child = Command::new(&self.exe)
            .args(["server", "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0"])
            .env("VIGO_BASE_DIR", self.server_base())
            .env(crate::server::EXIT_WITH_PARENT_ENV, "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().ok_or_else(|| Failure::failed("no server stderr"))?;
        self.server = Some(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut log = log;
            let mut told = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
                if !told && line.contains("listening agent=") {
                    told = true;
                    let _ = tx.send(line);
                }
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).map_err(|_| {
            Failure::failed(format!(
                "the server did not start; see {}",
                self.dir.join("server.log").display()
            ))
        })?;
        let field = |k: &str| {
            line.split(k).nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("").to_string()
        };
        self.api = field("api=");
        Ok(field("agent="))
    }
}

pub fn main(command: &str, args: &[&str]) -> ExitCode {
    let parsed: QuickstartArgs = match parse_args(command, args) {
        Ok(p) => p,
        Err(code) => return code,
    };
    finish(run(parsed))
}

fn run(args: QuickstartArgs) -> CmdResult {
    let dir = match args.dir {
        Some(d) => PathBuf::from(d),
        None => std::env::temp_dir().join(format!("vigo-quickstart-{}", std::process::id())),
    };
    if dir.join("server").exists() {
        return Err(Failure::usage(format!(
            "{} already holds a quickstart; pick another --dir",
            dir.display()
        )));
    }
    crate::util::fsutil::ensure_dir(&dir, 0o700)?;
    let dir = dir.canonicalize()?;
    let exe = std::env::current_exe()?;
    let mut demo = Demo { exe, dir: dir.clone(), server: None, api: String::new() };
    let srv = demo.server_base();
    let agent = dir.join("agent");
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("etc"))?;

    println!("Vigo quickstart in {}\n", dir.display());
    let passphrase = crate::crypto::random_token("")?;
    demo.step(&srv, "cli", &["secrets", "init"], &format!("{passphrase}\n{passphrase}\n"))?;
    demo.step(&srv, "cli", &["secrets", "unlock"], &format!("{passphrase}\n"))?;
    println!("1. Vault initialised. Its unlock passphrase (shown only this once):\n     {passphrase}");
    demo.step(&srv, "cli", &["secrets", "generate-certs"], "")?;
    println!("2. Private CA and server certificate written to {}", srv.join("tls").display());
    let token_value = crate::crypto::random_token("demo_")?;
    demo.step(&srv, "cli", &["secrets", "set", "raw", "demo/api-token"], &token_value)?;
    println!("3. Demo secret stored: secret:demo/api-token (encrypted under the master key)");
    let config = srv.join("config");
    std::fs::create_dir_all(config.join("modules"))?;
    std::fs::write(config.join("nodes.vgo"), NODES)?;
    std::fs::write(config.join("modules/demo.vgo"), DEMO_MODULE)?;
    demo.step(&srv, "cli", &["config", "validate"], "")?;
    println!("4. Example config written and validated: {}", config.display());
    let agent_addr = demo.start_server()?;
    println!("5. Server running: agents on {agent_addr}, admin API on https://{}", demo.api);
    let token = demo.step(&srv, "cli", &["tokens", "create", "--ttl", "1h", "--envoy", ENVOY], "")?;
    demo.step(&agent, "agent", &["enroll", "--server", &agent_addr, "--token-file", "-"], &token)?;
    println!("6. Agent enrolled as {ENVOY} with a one-time token (mTLS from here on)");
    let root_arg = root.to_string_lossy().into_owned();
    let first = demo.step(&agent, "agent", &["run", "--once", "--root", &root_arg], "")?;
    println!("7. First run, applied into {}:", root.display());
    for line in first.lines() {
        println!("     {line}");
    }
    let second = demo.step(&agent, "agent", &["run", "--once", "--root", &root_arg], "")?;
    println!("8. Second run (idempotence check):\n     {}", second.lines().last().unwrap_or(""));
    let verify = demo.step(&srv, "cli", &["audit", "verify"], "")?;
    println!("9. {}", verify.trim());
    println!("\nWhere to look:");
    println!("  converged files    {}", root.join("etc/demo").display());
    println!("  audit log          VIGO_BASE_DIR={} {} cli audit tail", srv.display(), demo.exe.display());
    println!(
        "  run reports        VIGO_BASE_DIR={} VIGO_SERVER=https://{} {} cli runs list",
        srv.display(),
        demo.api,
        demo.exe.display()
    );
    println!("  server log         {}", dir.join("server.log").display());
    if args.no_wait {
        println!("\nStopping the server (--no-wait).");
        return Ok(());
    }
    // Handlers are installed before the prompt, so a Ctrl-C right after it is never lost.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (mut int, mut term) = rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    });
    let (int, term) = (
        int.as_mut().map_err(|e| Failure::failed(e.to_string()))?,
        term.as_mut().map_err(|e| Failure::failed(e.to_string()))?,
    );
    println!("\nThe server keeps running. Press Ctrl-C to stop it (nothing stays listening).");
    rt.block_on(async {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    });
    println!("Stopped.");
    Ok(())
}
