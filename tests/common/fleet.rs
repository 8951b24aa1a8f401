//! A whole installation in temp dirs: vault, certs, config, a running `vigosrv` on 127.0.0.1
//! (ports picked by the kernel), and helpers to drive `vigocli` and `vigo-agent` against it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::*;

pub const PASS: &str = "fleet test passphrase";

pub struct Fleet {
    pub dir: TempDir,
    pub server: Option<Child>,
    pub agent_addr: String,
    pub api_addr: String,
    pub extra_env: Vec<(String, String)>,
    /// A server config file to pass as `--config`.
    pub server_config: Option<PathBuf>,
    /// Start the server under this descriptor limit (soft and hard), with util-linux `prlimit`.
    pub fd_limit: Option<u32>,
    /// Run the server and the CLI from this directory's role links instead of the shared ones.
    pub bin_dir: Option<PathBuf>,
}

impl Fleet {
    /// Vault initialised and unlocked, certificates generated, no server yet.
    pub fn new(tag: &str) -> Fleet {
        let dir = TempDir::new(tag);
        std::fs::create_dir_all(dir.join("srv")).unwrap();
        init_unlocked_vault(&dir.join("srv"), PASS);
        let out = run_in(&dir.join("srv"), "vigocli", &["secrets", "generate-certs"], "");
        assert_code(&out, 0);
        std::fs::create_dir_all(dir.join("capture")).unwrap();
        Fleet {
            dir,
            server: None,
            agent_addr: String::new(),
            api_addr: String::new(),
            extra_env: vec![],
            server_config: None,
            fd_limit: None,
            bin_dir: None,
        }
    }

    pub fn base(&self) -> PathBuf {
        self.dir.join("srv")
    }

    /// The role link this fleet runs (its private install's, or the shared one).
    pub fn role(&self, name: &str) -> PathBuf {
        match &self.bin_dir {
            Some(dir) => dir.join(name),
            None => role(name),
        }
    }

    pub fn capture_dir(&self) -> PathBuf {
        self.dir.join("capture")
    }

    pub fn server_log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    pub fn set_secret(&self, key: &str, value: &str) -> Output {
        let out = self.cli(&["secrets", "set", "raw", key], value);
        assert_code(&out, 0);
        out
    }

    /// Writes `files` (relative path, text) under the server's config dir.
    pub fn write_config(&self, files: &[(&str, &str)]) {
        for (rel, text) in files {
            let p = self.base().join("config").join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
    }

    /// Writes the server's settings file (`--config`, in the test's directory) and has the next
    /// `start_server` use it. Returns its path, for tests that change it later.
    pub fn use_server_settings(&mut self, yaml: &str) -> PathBuf {
        let path = self.dir.join("server.yaml");
        std::fs::write(&path, yaml).unwrap();
        self.server_config = Some(path.clone());
        path
    }

    pub fn start_server(&mut self) {
        self.start_server_on("127.0.0.1:0", "127.0.0.1:0");
    }

    pub fn start_server_on(&mut self, agent: &str, api: &str) {
        assert!(self.server.is_none(), "server already running");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.server_log()).unwrap();
        let mut command = match self.fd_limit {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg("--").arg(self.role("vigosrv"));
                c
            }
            None => Command::new(self.role("vigosrv")),
        };
        let mut child = command
            .args(["--listen", agent, "--api-listen", api])
            .args(self.server_config.iter().flat_map(|c| [std::ffi::OsStr::new("--config"), c.as_os_str()]))
            .env("VIGO_BASE_DIR", self.base())
            .env("VIGO_TEST_CAPTURE_DIR", self.capture_dir())
            .env_remove("LD_LIBRARY_PATH")
            .envs(self.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log_path = self.server_log();
        std::thread::spawn(move || {
            let mut log = std::fs::OpenOptions::new().append(true).open(log_path).unwrap();
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                use std::io::Write;
                let _ = writeln!(log, "{line}");
                if !sent && line.contains("listening agent=") {
                    let _ = tx.send(line.clone());
                    sent = true;
                }
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "vigosrv did not start:\n{}",
                    std::fs::read_to_string(self.server_log()).unwrap_or_default()
                );
            }
        };
        let field = |k: &str| line.split(k).nth(1).unwrap().split_whitespace().next().unwrap().to_string();
        self.agent_addr = field("agent=");
        self.api_addr = field("api=");
        self.server = Some(child);
    }

    pub fn stop_server(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = nix_kill(c.id(), "TERM");
            // Generous: what the server writes on the way out (audit summaries) is tested.
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if c.try_wait().unwrap().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts a stopped server again on the ports it had.
    pub fn restart_server_after_stop(&mut self) {
        let (agent, api) = (self.agent_addr.clone(), self.api_addr.clone());
        self.start_server_on(&agent, &api);
    }

    /// Stops and starts the server on the same ports (agents keep their configured address).
    pub fn restart_server(&mut self) {
        self.stop_server();
        let (agent, api) = (self.agent_addr.clone(), self.api_addr.clone());
        self.start_server_on(&agent, &api);
    }

    /// Runs vigocli against this installation (and its server, when running).
    pub fn cli(&self, args: &[&str], stdin: &str) -> Output {
        self.run_role(
            "vigocli",
            &self.base(),
            args,
            stdin,
            &[("VIGO_SERVER", format!("https://{}", self.api_addr))],
        )
    }

    pub fn run_role(
        &self,
        role_name: &str,
        base: &Path,
        args: &[&str],
        stdin: &str,
        env: &[(&str, String)],
    ) -> Output {
        let env: Vec<(&str, &str)> = self
            .extra_env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(env.iter().map(|(k, v)| (*k, v.as_str())))
            .collect();
        spawn_program(&self.role(role_name), base, args, stdin, &env).wait_with_output().unwrap()
    }

    pub fn token(&self, envoy: Option<&str>) -> String {
        let mut args = vec!["tokens", "create"];
        match envoy {
            Some(e) => args.extend(["--envoy", e]),
            None => args.push("--any-name"),
        }
        let out = self.cli(&args, "");
        assert_code(&out, 0);
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    pub fn agent_base(&self, name: &str) -> PathBuf {
        self.dir.join(&format!("agent-{name}"))
    }

    /// Enrolls an agent named `name` with `token` given on stdin.
    pub fn enroll_with(&self, name: &str, token: &str) -> Output {
        let base = self.agent_base(name);
        self.run_role(
            "vigo-agent",
            &base,
            &["enroll", "--server", &self.agent_addr, "--token-file", "-", "--name", name],
            &format!("{token}\n"),
            &[],
        )
    }

    pub fn enroll(&self, name: &str) -> PathBuf {
        let out = self.enroll_with(name, &self.token(None));
        assert_code(&out, 0);
        self.agent_base(name)
    }

    pub fn agent(&self, name: &str, args: &[&str]) -> Output {
        self.run_role("vigo-agent", &self.agent_base(name), args, "", &[])
    }

    pub fn root(&self, name: &str) -> PathBuf {
        self.dir.join(&format!("root-{name}"))
    }

    /// `vigo-agent run --once --root <root-name>`.
    pub fn run_once(&self, name: &str) -> Output {
        let root = self.root(name);
        std::fs::create_dir_all(root.join("etc")).unwrap();
        self.agent(name, &["run", "--once", "--root", root.to_str().unwrap()])
    }

    /// Runs the foreign Python client (tests/foreign/vigo_client.py); returns its JSON answer.
    pub fn foreign(&self, args: &[&str]) -> serde_json::Value {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/foreign/vigo_client.py");
        let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
        let ca = self.base().join("tls/ca");
        let out = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(args[0])
            .arg(proto)
            .arg(&self.agent_addr)
            .arg(ca)
            .args(&args[1..])
            .output()
            .expect("/usr/bin/python3 is required (apt-get install -y python3 python3-grpcio python3-grpc-tools python3-cryptography)");
        assert!(out.status.success(), "foreign client failed:\n{}", text(&out));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("foreign client output: {}", text(&out)))
    }

    pub fn audit_json(&self) -> String {
        let out = run_in(&self.base(), "vigocli", &["audit", "tail", "-n", "100000", "--json"], "");
        assert_code(&out, 0);
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop_server();
    }
}

pub fn nix_kill(pid: u32, signal: &str) -> std::io::Result<std::process::ExitStatus> {
    Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status()
}

// ---- Fault-case helpers (tests/faults.rs) ----

impl Fleet {
    /// SIGKILLs the server (no shutdown path runs) and reaps it.
    pub fn kill_server(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts `vigocli args` without waiting, `stdin` already written and closed.
    pub fn spawn_cli(&self, args: &[&str], stdin: &str) -> Child {
        let server = format!("https://{}", self.api_addr);
        spawn_role("vigocli", &self.base(), args, stdin, &[("VIGO_SERVER", server.as_str())])
    }

    /// `GET /v1/health` of the running server (python3's TLS client, trusting only the Vigo CA).
    pub fn health(&self) -> serde_json::Value {
        const GET: &str = "import ssl,sys,urllib.request\n\
            ctx = ssl.create_default_context(cafile=sys.argv[2])\n\
            tok = open(sys.argv[3]).read().strip()\n\
            req = urllib.request.Request(sys.argv[1], headers={'Authorization': 'Bearer ' + tok})\n\
            print(urllib.request.urlopen(req, context=ctx, timeout=20).read().decode())\n";
        let out = Command::new("/usr/bin/python3")
            .args(["-c", GET, &format!("https://{}/v1/health", self.api_addr)])
            .arg(self.base().join("tls/ca"))
            .arg(self.base().join("local-admin.token"))
            .output()
            .expect("/usr/bin/python3 is required (apt-get install -y python3)");
        assert!(out.status.success(), "GET /v1/health failed:\n{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("health answer: {}", text(&out)))
    }

    /// `vigocli audit verify` must exit 0; returns the row count it reports.
    pub fn audit_verify_rows(&self) -> usize {
        let out = run_in(&self.base(), "vigocli", &["audit", "verify"], "");
        assert_code(&out, 0);
        let t = text(&out);
        t.split("intact: ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected `audit verify` output: {t}"))
    }
}
