//! Fleet benchmark: a real `vigosrv` process on 127.0.0.1, N simulated envoys enrolled over real
//! mTLS, then check-in cycles (CheckIn, ResolveSecrets, ReportRun) at concurrency C for a fixed
//! time. Also times `config publish`, audit appends and `vigocli audit verify`. The last line on
//! stdout is a JSON summary. Commands and results: docs/BENCHMARKS.md.
//!
//! The envoys live in this process. An example cannot `use vigo::…` (vigo is a binary crate), so
//! the few wire formats they need are small copies of src/wire.rs (signing message, resolve AAD),
//! src/crypto/seal.rs (sealed answers) and src/audit/chain.rs (row hash). The server and
//! `audit verify` check all of them, so a copy that drifted shows up as errors, not as speed.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argh::FromArgs;
use http_body_util::{BodyExt, Full};
use prost::Message;
use ring::signature::{Ed25519KeyPair, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls_pki_types::pem::PemObject;
use serde_json::{json, Value};
use tonic::codegen::http;

// The same allocator as vigo itself, so the simulated envoys cost what real ones would.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[allow(clippy::all, clippy::pedantic, dead_code)]
mod pb {
    tonic::include_proto!("vigo.v1");
}
mod watchers;
use pb::vigo_agent_client::VigoAgentClient;

const PASSPHRASE: &str = "Fleet-bench-passphrase-1";

#[derive(FromArgs)]
/// Fleet-scale benchmark of vigosrv (see docs/BENCHMARKS.md).
struct Args {
    /// simulated envoys (default 10000)
    #[argh(option, default = "10000")]
    envoys: usize,
    /// resources per envoy: one directory and R-1 files (default 50)
    #[argh(option, default = "50")]
    resources: usize,
    /// secret refs per envoy (default 5)
    #[argh(option, default = "5")]
    secrets: usize,
    /// envoys cycling at once (default 256)
    #[argh(option, default = "256")]
    concurrency: usize,
    /// seconds of check-in cycles (default 30)
    #[argh(option, default = "30.0")]
    duration: f64,
    /// enrollments in flight at once (default 32)
    #[argh(option, default = "32")]
    enroll_concurrency: usize,
    /// audit rows to append before timing `audit verify` (default 1000000; 0 skips)
    #[argh(option, default = "1000000")]
    audit_rows: usize,
    /// the vigo binary (default: the one built next to this example)
    #[argh(option)]
    vigo: Option<PathBuf>,
    /// keep the temporary base directory
    #[argh(switch)]
    keep: bool,
    /// YAML appended to the server's config file (e.g. an `integrations:` section)
    #[argh(option)]
    extra_config: Option<PathBuf>,
    /// envoys send traits as the agent does: whole (about 1.5 KB) until the server has them,
    /// then their digest
    #[argh(switch)]
    traits: bool,
    /// what each cycle does: full (check-in with the whole bundle, ResolveSecrets, a report
    /// listing every resource), steady (what a converged agent does: the check-in names the
    /// bundle it holds and gets no resources, nothing resolved, a compact report) or mixed
    /// (every twentieth cycle full, the rest steady); default full
    #[argh(option, default = "String::from(\"full\")")]
    mode: String,
    /// pin the server to these CPUs (`taskset -c` syntax, e.g. 1) and the load generator to
    /// the others, so the server's cost is measured alone
    #[argh(option)]
    server_cpus: Option<String>,
    /// envoys that hold the push channel from enrollment to the end: the server's memory per
    /// idle channel is measured, a publish nudges them all, then their cycles ride the
    /// channels as vigo-agent's do (default 0)
    #[argh(option, default = "0")]
    watchers: usize,
    /// give every envoy a bundle of its own (its name in each file); by default all envoys
    /// share one, as fleets of like hosts do
    #[argh(switch)]
    distinct_bundles: bool,
    /// each envoy keeps its connection from one cycle to the next instead of reconnecting as
    /// vigo-agent does (an experiment: what a cycle costs the server without TCP and TLS setup)
    #[argh(switch)]
    keep_connections: bool,
}

type Res<T> = Result<T, String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn main() {
    let args: Args = argh::from_env();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    if let Err(e) = rt.block_on(run(args)) {
        eprintln!("fleet_bench: {e}");
        std::process::exit(1);
    }
}

/// `target/<triple>/<profile>/examples/fleet_bench` -> `target/<triple>/<profile>/vigo`.
fn default_vigo() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent().and_then(Path::parent).map(|d| d.join("vigo")).expect("target dir")
}

/// Runs `vigo cli ARGS` on `base` with `stdin`; Err carries its output.
fn cli(vigo: &Path, base: &Path, args: &[&str], stdin: &str) -> Res<String> {
    let mut child = Command::new(vigo)
        .arg("cli")
        .args(args)
        .env("VIGO_BASE_DIR", base)
        .env("VIGO_SERVER", "https://127.0.0.1:9") // nothing listens: `secrets set` skips the notify
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", vigo.display()))?;
    let _ = child.stdin.take().map(|mut s| s.write_all(stdin.as_bytes()));
    let out = child.wait_with_output().map_err(err)?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("vigo cli {}: {text}{}", args.join(" "), String::from_utf8_lossy(&out.stderr)))
    }
}

fn envoy_name(i: usize) -> String {
    format!("e{i:05}.bench")
}

/// One module of R resources, S of whose files hold a secret, for every envoy (one `envoys:`
/// entry, as a fleet of like hosts is written). By default every envoy gets the same bundle;
/// with `distinct` each file names its envoy, so no two bundles are alike.
fn write_config(dir: &Path, r: usize, s: usize, distinct: bool) -> Res<()> {
    std::fs::create_dir_all(dir.join("modules")).map_err(err)?;
    let nodes = "envoys:\n  - match: \"*.bench\"\n    roles: [bench]\n";
    let mut module = String::from("vars:\n");
    for k in 0..s {
        module += &format!("  s{k}: \"secret:bench/s{k}\"\n");
    }
    module +=
        "resources:\n  - name: dir\n    type: directory\n    target_path: /srv/bench\n    mode: \"0755\"\n";
    let who = if distinct { "{{ .Envoy.Name }}" } else { "every envoy" };
    for f in 1..r {
        let secret = if f <= s { format!("      key = {{{{ .Vars.s{} }}}}\n", f - 1) } else { String::new() };
        module += &format!(
            "  - name: f{f}\n    type: file\n    target_path: /srv/bench/f{f}.conf\n    mode: \"0644\"\n    depends_on: [dir]\n    content: |\n      # {who} file {f}\n{secret}"
        );
    }
    std::fs::write(dir.join("nodes.vgo"), nodes).map_err(err)?;
    std::fs::write(dir.join("modules/bench.vgo"), module).map_err(err)
}

/// The server process, its addresses, and a thread copying its log to a file.
struct Server {
    child: Child,
    agent: SocketAddr,
    api: SocketAddr,
}

/// The whole simulated fleet comes from one address and reports far more often than a real
/// one, so the per-source caps and the report budget are lifted for the benchmark.
const BENCH_SERVER_CONFIG: &str = "limits:
  handshakes_per_source: 1000000
  enrolling_per_source: 1000000
  enroll_failures_per_minute: 1000000
runs:
  reports_per_hour: 100000000
";

fn start_server(vigo: &Path, base: &Path, extra: Option<&Path>, cpus: Option<&str>) -> Res<Server> {
    let config = base.join("server.yaml");
    let extra = match extra {
        Some(p) => std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?,
        None => String::new(),
    };
    std::fs::write(&config, format!("{BENCH_SERVER_CONFIG}{extra}")).map_err(err)?;
    // `taskset` execs the server: the child's pid is the server's.
    let mut command = match cpus {
        Some(list) => {
            let mut c = Command::new("taskset");
            c.args(["-c", list]).arg(vigo);
            c
        }
        None => Command::new(vigo),
    };
    let mut child = command
        .args(["server", "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .env("VIGO_BASE_DIR", base)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(err)?;
    let mut lines = BufReader::new(child.stderr.take().ok_or("no stderr")?).lines();
    let mut log = std::fs::File::create(base.join("server.log")).map_err(err)?;
    let line = loop {
        match lines.next() {
            Some(Ok(l)) => {
                let _ = writeln!(log, "{l}");
                if l.contains("listening agent=") {
                    break l;
                }
            }
            _ => return Err(format!("vigosrv did not start; see {}", base.join("server.log").display())),
        }
    };
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            let _ = writeln!(log, "{l}");
        }
    });
    let field = |k: &str| -> Res<SocketAddr> {
        line.split(k)
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .ok_or(line.clone())
    };
    Ok(Server { agent: field("agent=")?, api: field("api=")?, child })
}

/// CPU numbers of a `taskset -c` list (`1`, `0,2`, `1-3`).
fn cpu_list(text: &str) -> Res<Vec<usize>> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = (a.trim().parse().map_err(err)?, b.trim().parse().map_err(err)?);
        out.extend(a..=b);
    }
    Ok(out)
}

/// Pins every thread of this process (the load generator) to the CPUs not in `server`.
fn pin_self_away_from(server: &str) -> Res<()> {
    let taken = cpu_list(server)?;
    let all = std::thread::available_parallelism().map_err(err)?.get();
    let rest: Vec<String> = (0..all).filter(|c| !taken.contains(c)).map(|c| c.to_string()).collect();
    if rest.is_empty() {
        return Err(format!("--server-cpus {server} leaves no CPU for the load generator"));
    }
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", &rest.join(","), &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("taskset: {e}"))?;
    if !status.success() {
        return Err("taskset could not pin the load generator".into());
    }
    Ok(())
}

/// (peak RSS in MB, CPU seconds) of a process, from /proc.
fn proc_usage(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest: Vec<&str> =
        stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| rest.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (hwm_kb / 1024.0, (ticks(11) + ticks(12)) / 100.0) // USER_HZ is 100 on Linux
}

/// TLS 1.3 with the suite order vigo-agent offers (`tlsconf::provider`): AES-128-GCM first.
fn tls_base() -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier> {
    use rustls::crypto::ring::{cipher_suite as suite, default_provider};
    let suites = vec![
        suite::TLS13_AES_128_GCM_SHA256,
        suite::TLS13_AES_256_GCM_SHA384,
        suite::TLS13_CHACHA20_POLY1305_SHA256,
    ];
    let provider = rustls::crypto::CryptoProvider { cipher_suites: suites, ..default_provider() };
    rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
}

/// The admin API over one keep-alive HTTPS connection, bearer `<base>/local-admin.token`.
struct Admin {
    sender: hyper::client::conn::http1::SendRequest<Full<std::io::Cursor<Vec<u8>>>>,
    token: String,
}

impl Admin {
    async fn connect(base: &Path, addr: SocketAddr, roots: Arc<rustls::RootCertStore>) -> Res<Admin> {
        let token = std::fs::read_to_string(base.join("local-admin.token")).map_err(err)?.trim().to_string();
        let mut cfg = tls_base().with_root_certificates(roots).with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tcp = tokio::net::TcpStream::connect(addr).await.map_err(err)?;
        let name = ServerName::try_from("127.0.0.1").map_err(err)?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp).await.map_err(err)?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.map_err(err)?;
        tokio::spawn(conn);
        Ok(Admin { sender, token })
    }

    async fn post(&mut self, path: &str, body: Value) -> Res<Value> {
        let req = hyper::Request::post(path)
            .header("host", "127.0.0.1")
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .body(Full::new(std::io::Cursor::new(body.to_string().into_bytes())))
            .map_err(err)?;
        self.sender.ready().await.map_err(err)?;
        let resp = self.sender.send_request(req).await.map_err(err)?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await.map_err(err)?.to_bytes();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            Ok(v)
        } else {
            Err(format!("POST {path}: {status} {v}"))
        }
    }
}

/// One HTTP/2 connection as the transport of the generated gRPC client: hyper's sender itself.
/// tonic's `Channel` adds a request buffer task and reconnection logic that a simulated envoy
/// making three calls on a fresh connection does not need, and the load generator's CPU comes
/// out of the server's two cores.
#[derive(Clone)]
struct H2(hyper::client::conn::http2::SendRequest<tonic::body::Body>);

type BoxedResponse = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<http::Response<hyper::body::Incoming>, hyper::Error>> + Send>,
>;

impl tower::Service<http::Request<tonic::body::Body>> for H2 {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = BoxedResponse;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), hyper::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> BoxedResponse {
        Box::pin(self.0.send_request(req))
    }
}

/// TCP, TLS with our own rustls configuration (as src/agent/client.rs), then HTTP/2.
async fn connect(addr: SocketAddr, tls: Arc<rustls::ClientConfig>) -> Res<VigoAgentClient<H2>> {
    let handshake = async {
        let tcp = tokio::net::TcpStream::connect(addr).await.map_err(err)?;
        tcp.set_nodelay(true).map_err(err)?;
        let name = ServerName::try_from("127.0.0.1").map_err(err)?;
        let tls = tokio_rustls::TlsConnector::from(tls).connect(name, tcp).await.map_err(err)?;
        let io = hyper_util::rt::TokioIo::new(tls);
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await.map_err(err)
    };
    let (sender, conn) = tokio::time::timeout(Duration::from_secs(30), handshake)
        .await
        .map_err(|_| "connect: timed out after 30 s".to_string())??;
    tokio::spawn(conn);
    let origin = http::Uri::from_static("https://127.0.0.1");
    Ok(VigoAgentClient::with_origin(H2(sender), origin))
}

/// A simulated agent. Like `vigo-agent run`, it connects for each cycle and disconnects after
/// it; the shared client config lets each reconnection resume its TLS session.
struct Envoy {
    id: String,
    key: Ed25519KeyPair,
    seq: u64,
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    /// (JSON, hex SHA-256) with `--traits`, and whether the server has them.
    traits: Option<(String, String)>,
    traits_taken: bool,
    /// The bundle this envoy holds after a cycle: (hash, secrets epoch, resource count, keys).
    held: Option<(String, u64, u32, std::collections::BTreeSet<String>)>,
    cycles_done: u64,
    /// With --keep-connections: the connection of the last cycle, used again by the next.
    keep_connection: bool,
    kept: Option<VigoAgentClient<H2>>,
    /// With --watchers: this envoy's push channel, which its cycles ride.
    push: Option<Box<watchers::Held>>,
}

/// What one cycle's calls go over: a gRPC connection, or the envoy's push channel.
enum Link {
    Grpc(VigoAgentClient<H2>),
    Push(Box<watchers::Held>),
}

impl Link {
    async fn check_in(&mut self, req: pb::SignedRequest) -> Res<pb::CheckInResponse> {
        match self {
            Link::Grpc(g) => {
                g.check_in(req).await.map(|r| r.into_inner()).map_err(|s| format!("CheckIn: {}", s.message()))
            }
            Link::Push(p) => p.call("CheckIn", req).await,
        }
    }

    async fn resolve_secrets(&mut self, req: pb::SignedRequest) -> Res<pb::ResolveSecretsResponse> {
        match self {
            Link::Grpc(g) => g
                .resolve_secrets(req)
                .await
                .map(|r| r.into_inner())
                .map_err(|s| format!("ResolveSecrets: {}", s.message())),
            Link::Push(p) => p.call("ResolveSecrets", req).await,
        }
    }

    async fn report_run(&mut self, req: pb::SignedRequest) -> Res<pb::ReportRunResponse> {
        match self {
            Link::Grpc(g) => g
                .report_run(req)
                .await
                .map(|r| r.into_inner())
                .map_err(|s| format!("ReportRun: {}", s.message())),
            Link::Push(p) => p.call("ReportRun", req).await,
        }
    }
}

/// Traits shaped like an agent's (about 1.5 KB), different per envoy.
fn envoy_traits(i: usize) -> (String, String) {
    let text = json!({
        "os": { "family": "debian", "distribution": "debian", "version": "12", "codename": "bookworm", "name": "Debian GNU/Linux 12 (bookworm)" },
        "kernel": { "name": "Linux", "release": "6.1.0-18-amd64", "version": "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1" },
        "arch": "x86_64", "hostname": format!("e{i:05}"), "fqdn": format!("e{i:05}.bench"), "machine_id": format!("{i:032x}"),
        "cpu": { "count": 2, "online": 2, "model": "Intel(R) Xeon(R) Processor" },
        "memory": { "total_bytes": 8u64 << 30, "available_mib": 4096, "swap_total_bytes": 0 },
        "network": [{ "name": "eth0", "addresses": [format!("10.0.{}.{}/16", i >> 8, i & 255), "fe80::1/64"], "mac": "52:54:00:12:34:56" },
                    { "name": "lo", "addresses": ["127.0.0.1/8", "::1/128"], "mac": "00:00:00:00:00:00" }],
        "mounts": [{ "path": "/", "device": "/dev/vda1", "fstype": "ext4", "size_bytes": 64u64 << 30, "free_gib": 30 }],
        "uptime_hours": 100, "virtualization": "kvm", "init": "systemd", "package_manager": "dpkg",
        "users": [{ "name": "ops", "uid": 1000, "home": "/home/ops", "shell": "/bin/bash" }],
        "agent": { "version": "fleet-bench", "rss_mib": 12, "open_fds": 8 }, "errors": {},
    })
    .to_string();
    let digest: String = ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (text, digest)
}

/// A fresh Ed25519 identity, Enroll over a self-signed certificate, then a channel that shows
/// the issued certificate: what `vigo-agent enroll` does, minus the files.
async fn enroll(
    addr: SocketAddr,
    roots: Arc<rustls::RootCertStore>,
    token: &str,
    name: String,
) -> Res<Envoy> {
    let doc = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).map_err(err)?;
    let key = Ed25519KeyPair::from_pkcs8(doc.as_ref()).map_err(err)?;
    let der = PrivatePkcs8KeyDer::from(doc.as_ref().to_vec());
    let rc_key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_ED25519).map_err(err)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "vigo-agent enrollment");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    let self_signed = params.self_signed(&rc_key).map_err(err)?.der().clone();
    let client_cfg = |chain: Vec<CertificateDer<'static>>| -> Res<rustls::ClientConfig> {
        let mut c = tls_base()
            .with_root_certificates(roots.clone())
            .with_client_auth_cert(chain, PrivateKeyDer::Pkcs8(der.clone_key()))
            .map_err(err)?;
        c.alpn_protocols = vec![b"h2".to_vec()];
        Ok(c)
    };
    let secret = token.split('.').nth(1).ok_or("malformed token")?.to_string();
    let answer = connect(addr, Arc::new(client_cfg(vec![self_signed])?))
        .await?
        .enroll(pb::EnrollRequest {
            token: secret,
            public_key: key.public_key().as_ref().to_vec(),
            name,
            hostname: String::new(),
        })
        .await
        .map_err(|s| format!("Enroll: {}", s.message()))?
        .into_inner();
    let issued = CertificateDer::pem_slice_iter(answer.client_cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("issued cert: {e:?}"))?;
    Ok(Envoy {
        id: answer.envoy_id,
        key,
        seq: 0,
        addr,
        tls: Arc::new(client_cfg(issued)?),
        traits: None,
        traits_taken: false,
        held: None,
        cycles_done: 0,
        keep_connection: false,
        kept: None,
        push: None,
    })
}

/// Mirrors src/wire.rs `signing_message`.
fn signing_message(method: &str, envoy_id: &str, ts: i64, seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut m = b"vigo-request-v1\0".to_vec();
    for part in [method.as_bytes(), b"\0", envoy_id.as_bytes(), b"\0"] {
        m.extend_from_slice(part);
    }
    m.extend_from_slice(&ts.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(ring::digest::digest(&ring::digest::SHA256, payload).as_ref());
    m
}

/// Mirrors src/wire.rs `resolve_aad`.
fn resolve_aad(envoy_id: &str, seq: u64) -> Vec<u8> {
    [b"vigo-resolve-v1\0", envoy_id.as_bytes(), b"\0", &seq.to_be_bytes()].concat()
}

/// Mirrors src/crypto/seal.rs: sender X25519 key || nonce || AES-256-GCM(HKDF(ECDH)).
fn open_sealed(
    private: ring::agreement::EphemeralPrivateKey,
    own_pub: &[u8],
    aad: &[u8],
    sealed: &[u8],
) -> Option<Vec<u8>> {
    use ring::{aead, agreement, hkdf};
    let (sender_pub, body) = sealed.split_at_checked(32)?;
    let peer = agreement::UnparsedPublicKey::new(&agreement::X25519, sender_pub);
    let key = agreement::agree_ephemeral(private, &peer, |shared| {
        let salt = [sender_pub, own_pub].concat();
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &salt).extract(shared);
        prk.expand(&[b"vigo/seal/x25519-hkdf-sha256-aes256gcm/v1"], &aead::AES_256_GCM)
            .ok()
            .map(aead::UnboundKey::from)
    })
    .ok()??;
    let (nonce, ct) = body.split_at_checked(aead::NONCE_LEN)?;
    let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buf = ct.to_vec();
    let plain = aead::LessSafeKey::new(key).open_in_place(nonce, aead::Aad::from(aad), &mut buf).ok()?;
    Some(plain.to_vec())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Envoy {
    fn envelope(&mut self, method: &str, payload: Vec<u8>) -> pb::SignedRequest {
        self.seq += 1;
        let ts = now_ms();
        let sig = self.key.sign(&signing_message(method, &self.id, ts, self.seq, &payload));
        pb::SignedRequest {
            envoy_id: self.id.clone(),
            timestamp_ms: ts,
            sequence: self.seq,
            payload,
            signature: sig.as_ref().to_vec(),
        }
    }

    /// One check-in cycle, given up after 60 s (an answer that never comes is an error).
    async fn cycle(&mut self, expect_keys: usize, mode: Mode) -> Res<Latencies> {
        let steady = match mode {
            Mode::Full => false,
            Mode::Steady => true,
            Mode::Mixed => self.cycles_done % 20 != 0,
        } && self.held.is_some();
        self.cycles_done += 1;
        tokio::time::timeout(Duration::from_secs(60), self.cycle_calls(expect_keys, steady))
            .await
            .map_err(|_| "cycle: no answer within 60 s".to_string())?
    }

    /// One agent run against the server; returns the latency of each RPC in microseconds
    /// (ResolveSecrets: None when the steady cycle had nothing to resolve).
    async fn cycle_calls(&mut self, expect_keys: usize, steady: bool) -> Res<Latencies> {
        let us = |t: Instant| t.elapsed().as_micros().min(u32::MAX as u128) as u32;
        let mut body = pb::CheckInRequest { agent_version: "fleet-bench".into(), ..Default::default() };
        if let Some((text, digest)) = &self.traits {
            body.traits_digest = digest.clone();
            if !self.traits_taken {
                body.traits_json = text.clone();
            }
        }
        if steady {
            body.last_bundle_hash = self.held.as_ref().map(|h| h.0.clone()).unwrap_or_default();
        }
        // A channel that failed a call is gone; the envoy goes on over gRPC.
        let mut link = match (self.push.take(), self.kept.take()) {
            (Some(p), _) => Link::Push(p),
            (None, Some(g)) => Link::Grpc(g),
            (None, None) => Link::Grpc(connect(self.addr, self.tls.clone()).await?),
        };
        let req = self.envelope("CheckIn", body.encode_to_vec());
        let t = Instant::now();
        let answer = link.check_in(req).await?;
        let lat_check_in = us(t);
        self.traits_taken = self.traits.is_some() && !answer.send_traits;
        let bundle = answer.bundle.ok_or("CheckIn: no bundle")?;
        let (keys, count) = if bundle.resources_omitted {
            let held = self
                .held
                .as_ref()
                .filter(|h| h.0 == bundle.bundle_hash)
                .ok_or("resources left out of a bundle not held")?;
            if !steady {
                return Err("the server left out resources on a full cycle".into());
            }
            (held.3.clone(), held.2)
        } else {
            if steady {
                return Err("the server resent an unchanged bundle".into());
            }
            let mut keys = std::collections::BTreeSet::new();
            for r in &bundle.resources {
                let mut rest =
                    std::str::from_utf8(&r.attributes_json).map_err(|_| "attributes are not UTF-8")?;
                while let Some(at) = rest.find("__VIGO_SECRET__") {
                    let tail = &rest[at + 15..];
                    let end = tail.find("__END_VIGO_SECRET__").ok_or("unterminated marker")?;
                    keys.insert(tail[..end].to_string());
                    rest = &tail[end..];
                }
            }
            (keys, bundle.resources.len() as u32)
        };
        if keys.len() != expect_keys {
            return Err(format!("bundle names {} secrets, expected {expect_keys}", keys.len()));
        }
        // A steady agent holds the values of this epoch already (its offline cache).
        let held_epoch = self.held.as_ref().map(|h| h.1);
        let lat_resolve = if steady && held_epoch == Some(bundle.secrets_epoch) {
            None
        } else {
            Some(self.resolve(&mut link, &keys, bundle.secrets_epoch).await?)
        };
        let report = if steady {
            pb::RunReport {
                bundle_hash: bundle.bundle_hash.clone(),
                started_ms: now_ms(),
                duration_ms: 3,
                status: "converged".into(),
                secrets_epoch: bundle.secrets_epoch,
                unchanged_omitted: count,
                ..Default::default()
            }
        } else {
            let results = bundle
                .resources
                .iter()
                .map(|r| pb::ResourceResult {
                    name: r.name.clone(),
                    r#type: r.r#type.clone(),
                    status: "unchanged".into(),
                    ..Default::default()
                })
                .collect();
            pb::RunReport {
                bundle_hash: bundle.bundle_hash.clone(),
                started_ms: now_ms(),
                duration_ms: 3,
                noop: false,
                status: "converged".into(),
                results,
                secrets_epoch: bundle.secrets_epoch,
                unchanged_omitted: 0,
                task_results: Vec::new(),
            }
        };
        let req = self.envelope(
            "ReportRun",
            pb::ReportRunRequest { report: Some(report), ..Default::default() }.encode_to_vec(),
        );
        let t = Instant::now();
        link.report_run(req).await?;
        let lat_report = us(t);
        match link {
            Link::Push(p) => self.push = Some(p),
            Link::Grpc(g) if self.keep_connection => self.kept = Some(g),
            Link::Grpc(_) => {}
        }
        self.held = Some((bundle.bundle_hash, bundle.secrets_epoch, count, keys));
        Ok((lat_check_in, lat_resolve, lat_report))
    }

    /// ResolveSecrets for `keys`, the answer opened and counted; its latency in microseconds.
    async fn resolve(
        &mut self,
        link: &mut Link,
        keys: &std::collections::BTreeSet<String>,
        epoch: u64,
    ) -> Res<u32> {
        let private = ring::agreement::EphemeralPrivateKey::generate(
            &ring::agreement::X25519,
            &ring::rand::SystemRandom::new(),
        )
        .map_err(err)?;
        let public = private.compute_public_key().map_err(err)?.as_ref().to_vec();
        let body = pb::ResolveSecretsRequest {
            keys: keys.iter().cloned().collect(),
            reply_public_key: public.clone(),
            secrets_epoch: epoch,
        };
        let req = self.envelope("ResolveSecrets", body.encode_to_vec());
        let aad = resolve_aad(&self.id, req.sequence);
        let t = Instant::now();
        let sealed = link.resolve_secrets(req).await?;
        let lat = t.elapsed().as_micros().min(u32::MAX as u128) as u32;
        let plain = open_sealed(private, &public, &aad, &sealed.sealed_values)
            .ok_or("sealed answer does not open")?;
        let values = pb::SecretValues::decode(plain.as_slice()).map_err(err)?;
        if values.values.len() != keys.len() {
            return Err(format!("{} values for {} keys", values.values.len(), keys.len()));
        }
        Ok(lat)
    }
}

/// Check-in, ResolveSecrets (None: skipped) and ReportRun latencies of one cycle, in µs.
type Latencies = (u32, Option<u32>, u32);

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Full,
    Steady,
    Mixed,
}

impl Mode {
    fn parse(text: &str) -> Res<Mode> {
        match text {
            "full" => Ok(Mode::Full),
            "steady" => Ok(Mode::Steady),
            "mixed" => Ok(Mode::Mixed),
            other => Err(format!("--mode {other:?}: use full, steady or mixed")),
        }
    }
}

/// p50 / p99 / max in milliseconds.
fn percentiles(mut v: Vec<u32>) -> Value {
    v.sort_unstable();
    let at =
        |q: f64| v.get(((v.len() as f64 - 1.0) * q).round() as usize).map_or(0.0, |x| *x as f64 / 1000.0);
    json!({ "p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": at(1.0), "count": v.len() })
}

#[derive(Default)]
struct Tally {
    lat: [Vec<u32>; 3],
    cycles: usize,
    errors: usize,
    first_errors: Vec<String>,
}

async fn run(a: Args) -> Res<()> {
    let vigo = a.vigo.clone().unwrap_or_else(default_vigo);
    let (n, r, s) = (a.envoys.max(1), a.resources.max(2), a.secrets);
    if s > r - 1 {
        return Err("--secrets must be below --resources (secrets go into files)".into());
    }
    let base = std::env::temp_dir().join(format!("vigo-fleet-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).map_err(err)?;
    eprintln!("fleet_bench: base {} (vigo {})", base.display(), vigo.display());

    // Vault, certificates, S secrets, and the config: as an operator would, through vigo cli.
    cli(&vigo, &base, &["secrets", "init"], &format!("{PASSPHRASE}\n{PASSPHRASE}\n"))?;
    cli(&vigo, &base, &["secrets", "unlock"], &format!("{PASSPHRASE}\n"))?;
    cli(&vigo, &base, &["secrets", "generate-certs"], "")?;
    for k in 0..s {
        cli(
            &vigo,
            &base,
            &["secrets", "set", "raw", &format!("bench/s{k}")],
            &format!("value-{k}-of-the-fleet-bench"),
        )?;
    }
    write_config(&base.join("config"), r, s, a.distinct_bundles)?;

    let t = Instant::now();
    if let Some(list) = &a.server_cpus {
        pin_self_away_from(list)?;
    }
    let mut server = start_server(&vigo, &base, a.extra_config.as_deref(), a.server_cpus.as_deref())?;
    let startup_s = t.elapsed().as_secs_f64();
    let pid = server.child.id();
    let outcome = measure(&a, &base, &mut server, n, s, startup_s).await;
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
    let _ = server.child.wait();
    let mut summary = outcome?;
    if a.audit_rows > 0 {
        summary["audit"] = audit_phase(&vigo, &base, a.audit_rows)?;
    }
    if !a.keep {
        let _ = std::fs::remove_dir_all(&base);
    }
    println!("{summary}");
    Ok(())
}

async fn measure(
    a: &Args,
    base: &Path,
    server: &mut Server,
    n: usize,
    s: usize,
    startup_s: f64,
) -> Res<Value> {
    let pid = server.child.id();
    let ca = std::fs::read(base.join("tls/ca")).map_err(err)?;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&ca) {
        roots.add(c.map_err(|e| format!("CA: {e:?}"))?).map_err(err)?;
    }
    let roots = Arc::new(roots);
    let mut admin = Admin::connect(base, server.api, roots.clone()).await?;

    let t = Instant::now();
    admin.post("/v1/config/publish", json!({})).await?;
    let publish_s = t.elapsed().as_secs_f64();
    eprintln!("fleet_bench: publish of {n} envoys x {} resources: {publish_s:.2}s", a.resources);

    let t = Instant::now();
    let mut tokens = Vec::with_capacity(n);
    for i in 0..n {
        let v =
            admin.post("/v1/enroll-tokens", json!({ "ttl_secs": 3600, "envoy_name": envoy_name(i) })).await?;
        tokens.push(v["token"].as_str().ok_or("no token in answer")?.to_string());
    }
    let tokens_s = t.elapsed().as_secs_f64();

    let (_, cpu0) = proc_usage(pid);
    // What the server holds per envoy is measured from here to the end of the cycles.
    let rss_before_envoys = watchers::rss_kb(pid);
    let t = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(a.enroll_concurrency.max(1)));
    let mut tasks = Vec::with_capacity(n);
    for (i, token) in tokens.into_iter().enumerate() {
        let permit = sem.clone().acquire_owned().await.map_err(err)?;
        let (addr, roots) = (server.agent, roots.clone());
        tasks.push(tokio::spawn(async move {
            let e = enroll(addr, roots, &token, envoy_name(i)).await;
            drop(permit);
            e
        }));
    }
    let mut envoys = Vec::with_capacity(n);
    for (i, task) in tasks.into_iter().enumerate() {
        let mut e: Envoy = task.await.map_err(err)??;
        // Spread the mixed mode's full cycles over the envoys (each one's every twentieth).
        e.cycles_done = (i % 20) as u64;
        if a.traits {
            e.traits = Some(envoy_traits(i));
        }
        e.keep_connection = a.keep_connections;
        envoys.push(e);
    }
    let enroll_s = t.elapsed().as_secs_f64();
    eprintln!("fleet_bench: enrolled {n} envoys in {enroll_s:.1}s");
    // Held until the end: the cycles below ride these channels.
    let (held, watch) = hold_watch_streams(a, base, server.api, roots.clone(), &mut envoys, pid).await?;
    watchers::attach(held, &mut envoys);
    let (_, cpu1) = proc_usage(pid);

    let mode = Mode::parse(&a.mode)?;
    // Cycles: worker w owns envoys w, w+C, ... so no envoy ever has two requests in flight.
    let c = a.concurrency.clamp(1, n);
    let mut groups: Vec<Vec<Envoy>> = (0..c).map(|_| Vec::new()).collect();
    for (i, e) in envoys.into_iter().enumerate() {
        groups[i % c].push(e);
    }
    // Every envoy's first cycle after a publish compiles its bundle: timed apart, as the warm-up.
    let barrier = Arc::new(tokio::sync::Barrier::new(c));
    let mark: Arc<std::sync::OnceLock<(Instant, f64, i64, f64)>> = Arc::default();
    let tally = Arc::new(Mutex::new(Tally::default()));
    let warm_errors = Arc::new(AtomicUsize::new(0));
    let base_owned = base.to_path_buf();
    let t = Instant::now();
    let workers: Vec<_> = groups
        .into_iter()
        .map(|mut group| {
            let (tally, barrier, mark, warm_errors) =
                (tally.clone(), barrier.clone(), mark.clone(), warm_errors.clone());
            let (base, duration) = (base_owned.clone(), a.duration);
            tokio::spawn(async move {
                for e in group.iter_mut() {
                    if let Err(msg) = e.cycle(s, Mode::Full).await {
                        if warm_errors.fetch_add(1, Ordering::SeqCst) < 3 {
                            eprintln!("fleet_bench: warm-up error: {msg}");
                        }
                    }
                }
                barrier.wait().await;
                let (start, _, _, _) = *mark.get_or_init(|| {
                    (
                        Instant::now(),
                        proc_usage(pid).1,
                        audit_head(&base).map(|h| h.0).unwrap_or(0),
                        proc_usage(std::process::id()).1,
                    )
                });
                let deadline = start + Duration::from_secs_f64(duration);
                let mut mine = Tally::default();
                'outer: loop {
                    for e in group.iter_mut() {
                        if Instant::now() >= deadline {
                            break 'outer;
                        }
                        match e.cycle(s, mode).await {
                            Ok((ci, resolve, report)) => {
                                mine.cycles += 1;
                                mine.lat[0].push(ci);
                                mine.lat[1].extend(resolve);
                                mine.lat[2].push(report);
                            }
                            Err(msg) => {
                                mine.errors += 1;
                                if mine.first_errors.len() < 3 {
                                    mine.first_errors.push(msg);
                                }
                            }
                        }
                    }
                }
                let mut all = tally.lock().expect("tally");
                all.cycles += mine.cycles;
                all.errors += mine.errors;
                (0..3).for_each(|k| all.lat[k].extend_from_slice(&mine.lat[k]));
                all.first_errors.extend(mine.first_errors.into_iter().take(3));
            })
        })
        .collect();
    for w in workers {
        w.await.map_err(err)?;
    }
    let (start, cpu_start, audit_before, client_cpu_start) = *mark.get().ok_or("no worker ran")?;
    let warmup_s = start.duration_since(t).as_secs_f64();
    let warmup_cpu = cpu_start - cpu1;
    let t = start;
    let elapsed = t.elapsed().as_secs_f64();
    let (rss_mb, cpu2) = proc_usage(pid);
    let rss_kb_per_envoy = (watchers::rss_kb(pid) - rss_before_envoys) / n as f64;
    let audit_after = audit_head(base)?;
    let mut tally = std::mem::take(&mut *tally.lock().expect("tally"));
    for e in tally.first_errors.iter().take(5) {
        eprintln!("fleet_bench: error: {e}");
    }
    let [lc, lr, lp] = std::mem::take(&mut tally.lat);
    let (client_rss_mb, client_cpu) = proc_usage(std::process::id());
    let traits_stored: i64 = rusqlite::Connection::open(base.join("vigo.db"))
        .and_then(|c| c.query_row("SELECT COUNT(*) FROM envoy_traits", [], |r| r.get(0)))
        .map_err(err)?;
    Ok(json!({
        "bench": "fleet", "mode": a.mode, "server_cpus": a.server_cpus, "distinct_bundles": a.distinct_bundles, "keep_connections": a.keep_connections, "traits": a.traits, "traits_stored": traits_stored,
        "envoys": n, "resources": a.resources, "secrets": s, "concurrency": c, "duration_s": elapsed,
        "server_startup_s": startup_s,
        "publish_s": publish_s,
        "tokens_per_s": n as f64 / tokens_s,
        "enroll_per_s": n as f64 / enroll_s, "enroll_s": enroll_s, "enroll_server_cpu_s": cpu1 - cpu0,
        "warmup_round_s": warmup_s, "warmup_server_cpu_s": warmup_cpu,
        "cycles": tally.cycles, "cycles_per_s": tally.cycles as f64 / elapsed,
        "errors": tally.errors + warm_errors.load(Ordering::SeqCst),
        "check_in": percentiles(lc), "resolve_secrets": percentiles(lr), "report_run": percentiles(lp),
        "server_peak_rss_mb": rss_mb, "server_rss_kb_per_envoy": rss_kb_per_envoy, "server_cpu_s": cpu2, "cycle_server_cpu_s": cpu2 - cpu_start,
        "server_audit_rows_per_s": (audit_after.0 - audit_before) as f64 / elapsed,
        "client_peak_rss_mb": client_rss_mb, "cycle_client_cpu_s": client_cpu - client_cpu_start,
        "watch": watch,
    }))
}

/// `--watchers`: opens the streams and measures them (see watchers.rs); nothing without it.
async fn hold_watch_streams(
    a: &Args,
    base: &Path,
    api: SocketAddr,
    roots: Arc<rustls::RootCertStore>,
    envoys: &mut [Envoy],
    pid: u32,
) -> Res<(Vec<watchers::Held>, Value)> {
    let k = a.watchers.min(envoys.len());
    if k == 0 {
        return Ok((Vec::new(), Value::Null));
    }
    let before = watchers::rss_kb(pid);
    let t = Instant::now();
    let held = watchers::open(&mut envoys[..k], 64).await?;
    eprintln!("fleet_bench: {k} push channels open in {:.1}s", t.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = watchers::rss_kb(pid);
    // A new admin connection: the server closes one that waits 10 s for a request head.
    let mut admin = Admin::connect(base, api, roots).await?;
    let since = Instant::now();
    admin.post("/v1/config/publish", json!({})).await?;
    let (held, delivered, last) = watchers::first_nudges(held, since, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let nudged = watchers::rss_kb(pid);
    let summary = watchers::summary(k, before, idle, nudged, delivered, last);
    eprintln!("fleet_bench: watch {summary}");
    Ok((held, summary))
}

/// (last seq, its hash, its time) of the audit chain in `<base>/vigo.db`.
fn audit_head(base: &Path) -> Res<(i64, Vec<u8>, String)> {
    let conn = rusqlite::Connection::open(base.join("vigo.db")).map_err(err)?;
    conn.busy_timeout(Duration::from_secs(15)).map_err(err)?;
    conn.query_row("SELECT seq, hash, ts FROM audit ORDER BY seq DESC LIMIT 1", [], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
    .map_err(err)
}

/// Mirrors src/audit/chain.rs: SHA-256(tag || prev || be64 seq || length-prefixed fields).
fn row_hash(prev: &[u8], seq: i64, fields: [&str; 5]) -> Vec<u8> {
    let mut buf = b"vigo-audit-v1".to_vec();
    buf.extend_from_slice(prev);
    buf.extend_from_slice(&seq.to_be_bytes());
    for f in fields {
        buf.extend_from_slice(&(f.len() as u32).to_be_bytes());
        buf.extend_from_slice(f.as_bytes());
    }
    ring::digest::digest(&ring::digest::SHA256, &buf).as_ref().to_vec()
}

/// Extends the chain the server wrote with `rows` rows (the statements of audit::append_in,
/// 10,000 rows per transaction), then times `vigocli audit verify` over the whole chain.
fn audit_phase(vigo: &Path, base: &Path, rows: usize) -> Res<Value> {
    let (mut seq, mut prev, ts) = audit_head(base)?;
    let mut conn = rusqlite::Connection::open(base.join("vigo.db")).map_err(err)?;
    let t = Instant::now();
    let mut left = rows;
    while left > 0 {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO audit (seq, ts, actor, action, target, detail, prev_hash, hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(err)?;
            for _ in 0..left.min(10_000) {
                seq += 1;
                let detail = format!("{{\"keys\":[\"bench/s0\",\"bench/s1\"],\"secrets_epoch\":{seq}}}");
                let fields = [ts.as_str(), "envoy:bench", "secret.epoch_resolved", "bench-envoy", &detail];
                let hash = row_hash(&prev, seq, fields);
                insert
                    .execute(rusqlite::params![seq, ts, fields[1], fields[2], fields[3], detail, prev, hash])
                    .map_err(err)?;
                prev = hash;
                left -= 1;
            }
        }
        tx.execute(
            "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?1, ?2)
             ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            rusqlite::params![seq, prev],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
    }
    let append_s = t.elapsed().as_secs_f64();
    drop(conn);
    let t = Instant::now();
    let out = cli(vigo, base, &["audit", "verify"], "")?;
    let verify_s = t.elapsed().as_secs_f64();
    eprintln!("fleet_bench: {}", out.trim());
    if !out.contains(&format!("intact: {seq} rows")) {
        return Err(format!("audit verify: {out}"));
    }
    Ok(
        json!({ "appended_rows": rows, "append_rows_per_s": rows as f64 / append_s, "chain_rows": seq, "verify_s": verify_s }),
    )
}
