//! Console benchmark: a real `vigosrv` over a database holding N envoys, R run reports and A
//! audit rows, and the time each console page takes, measured as the round trip of a request on
//! a warm keep-alive HTTPS connection from this process on 127.0.0.1 (so an upper bound of the
//! server's time). The last line on stdout is a JSON summary. Results: docs/BENCHMARKS.md.
//!
//! The rows are written straight into the database the CLI created, with the statements of
//! src/store (envoys, runs, web users, sessions) and a copy of the audit row hash of
//! src/audit/chain.rs (an example cannot `use vigo::…`); the server verifies the chain at
//! start, and the benchmark waits for that verdict ("intact") before it measures anything.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use argh::FromArgs;
use http_body_util::{BodyExt, Empty};
use rusqlite::params;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls_pki_types::pem::PemObject;
use serde_json::{json, Value};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(FromArgs)]
/// Console page times over a large database (see docs/BENCHMARKS.md).
struct Args {
    /// envoys (default 10000)
    #[argh(option, default = "10000")]
    envoys: usize,
    /// run reports, spread over the envoys and the last two days (default 100000)
    #[argh(option, default = "100000")]
    runs: usize,
    /// audit rows (default 1000000)
    #[argh(option, default = "1000000")]
    audit_rows: usize,
    /// timed requests per page (default 20, after 3 untimed)
    #[argh(option, default = "20")]
    requests: usize,
    /// the vigo binary (default: the one built next to this example)
    #[argh(option)]
    vigo: Option<PathBuf>,
    /// keep the temporary base directory
    #[argh(switch)]
    keep: bool,
}

type Res<T> = Result<T, String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

const PASSPHRASE: &str = "Console-bench-passphrase-1";

fn main() {
    let args: Args = argh::from_env();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    match rt.block_on(run(&args)) {
        Ok(summary) => println!("{summary}"),
        Err(e) => {
            eprintln!("console_bench: {e}");
            println!("{}", json!({ "errors": 1, "error": e }));
            std::process::exit(1);
        }
    }
}

/// `target/<triple>/<profile>/examples/console_bench` -> `target/<triple>/<profile>/vigo`.
fn default_vigo() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent().and_then(Path::parent).map(|d| d.join("vigo")).expect("target dir")
}

fn cli(vigo: &Path, base: &Path, args: &[&str], stdin: &str) -> Res<String> {
    let mut child = Command::new(vigo)
        .arg("cli")
        .args(args)
        .env("VIGO_BASE_DIR", base)
        .env("VIGO_SERVER", "https://127.0.0.1:9")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", vigo.display()))?;
    let _ = child.stdin.take().map(|mut s| s.write_all(stdin.as_bytes()));
    let out = child.wait_with_output().map_err(err)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("vigo cli {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)))
    }
}

fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data).as_ref().to_vec()
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
    sha256(&buf)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A small deterministic generator, so every run builds the same fleet.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

fn envoy_id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

/// Envoys (most checked in lately, some stale, some never), their runs, and a web user with a
/// session; returns the session id for the cookie.
fn fill_fleet(db: &Path, envoys: usize, runs: usize) -> Res<String> {
    let mut conn = rusqlite::Connection::open(db).map_err(err)?;
    conn.busy_timeout(Duration::from_secs(15)).map_err(err)?;
    let t = now();
    let mut rng = Lcg(7);
    let tx = conn.transaction().map_err(err)?;
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO envoys (id, name, public_key, enrolled_at, last_seen, cert_not_after, cert_ca_pin)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'bench')",
            )
            .map_err(err)?;
        for i in 0..envoys {
            let last_seen = match i % 20 {
                0 => None,                                            // never checked in
                1 => Some(t - 86_400 - (rng.next() % 86_400) as i64), // stale
                _ => Some(t - (rng.next() % 600) as i64),
            };
            insert
                .execute(params![
                    envoy_id(i),
                    format!("e{i:05}.bench"),
                    sha256(&i.to_be_bytes()),
                    t - 30 * 86_400,
                    last_seen,
                    t + 300 * 86_400
                ])
                .map_err(err)?;
        }
        // Traits as an agent sends them (about 1.5 KB each), two OS families.
        let mut insert = tx
            .prepare(
                "INSERT INTO envoy_traits (envoy_id, traits, traits_jsonb, digest, updated_at)
                 VALUES (?1, ?2, jsonb(?2), ?3, ?4)",
            )
            .map_err(err)?;
        for i in 0..envoys {
            let (family, distribution) = if i % 3 == 0 { ("rhel", "rocky") } else { ("debian", "debian") };
            let traits = json!({
                "os": { "family": family, "distribution": distribution, "version": "12", "name": "Bench Linux" },
                "kernel": { "name": "Linux", "release": format!("6.1.0-{}", i % 40), "version": "#1 SMP" },
                "arch": "x86_64", "hostname": format!("e{i:05}"), "fqdn": format!("e{i:05}.bench"),
                "cpu": { "count": 2 + i % 8, "online": 2 + i % 8, "model": "Bench CPU" },
                "memory": { "total_bytes": 8u64 << 30, "available_mib": 4096, "swap_total_bytes": 0 },
                "network": [{ "name": "eth0", "addresses": [format!("10.{}.{}.{}/16", i >> 16, (i >> 8) & 255, i & 255)], "mac": "52:54:00:00:00:01" }],
                "mounts": [{ "path": "/", "device": "/dev/vda1", "fstype": "ext4", "size_bytes": 64u64 << 30, "free_gib": 30 }],
                "users": [{ "name": "ops", "uid": 1000, "home": "/home/ops", "shell": "/bin/bash" }],
                "agent": { "version": "0.1.0", "rss_mib": 12, "open_fds": 8 }, "errors": {},
            })
            .to_string();
            insert.execute(params![envoy_id(i), traits, format!("{i}"), t]).map_err(err)?;
        }
        let mut insert = tx
            .prepare(
                "INSERT INTO runs (id, envoy_id, envoy_name, received_at, status, bundle_hash, report)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'bench', ?6)",
            )
            .map_err(err)?;
        for j in 0..runs {
            let i = j % envoys.max(1);
            let status = match rng.next() % 10 {
                0 => "failed",
                1 | 2 => "changed",
                _ => "converged",
            };
            let at = t - (rng.next() % (2 * 86_400)) as i64;
            let report = format!(
                "{{\"bundle_hash\":\"bench\",\"duration_ms\":12,\"noop\":false,\"results\":[],\"secrets_epoch\":1,\"started_ms\":{},\"status\":\"{status}\"}}",
                at * 1000
            );
            insert
                .execute(params![
                    format!("run-{j:08}"),
                    envoy_id(i),
                    format!("e{i:05}.bench"),
                    at,
                    status,
                    report
                ])
                .map_err(err)?;
        }
        tx.execute(
            "INSERT INTO web_users (username, role, created_at, created_by, updated_at) VALUES ('bench', 'admin', ?1, 'bench', ?1)",
            [t],
        )
        .map_err(err)?;
    }
    let id = format!("bench-session-{}", rng.next());
    tx.execute(
        "INSERT INTO sessions (id_hash, username, provider, source, created_at, last_seen, expires_at)
         VALUES (?1, 'bench', 'basic', '127.0.0.1', ?2, ?2, ?3)",
        params![sha256(id.as_bytes()), t, t + 86_400],
    )
    .map_err(err)?;
    tx.commit().map_err(err)?;
    Ok(id)
}

/// Extends the chain the CLI started with `rows` rows of a few kinds and actors (the statements
/// of audit::append_in, 10,000 rows per transaction).
fn fill_audit(db: &Path, rows: usize) -> Res<i64> {
    let mut conn = rusqlite::Connection::open(db).map_err(err)?;
    let (mut seq, mut prev): (i64, Vec<u8>) = conn
        .query_row("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(err)?;
    let ts = "2026-01-01T00:00:00.000Z";
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
                let (actor, action) = match seq % 100 {
                    0 => ("user:alice".to_string(), "auth.login"),
                    1 => ("user:alice".to_string(), "config.published"),
                    _ => (format!("envoy:e{:05}.bench", seq % 10_000), "secret.epoch_resolved"),
                };
                let detail = format!("{{\"keys\":[\"bench/s0\",\"bench/s1\"],\"secrets_epoch\":{seq}}}");
                let fields = [ts, actor.as_str(), action, "bench", detail.as_str()];
                let hash = row_hash(&prev, seq, fields);
                insert.execute(params![seq, ts, actor, action, "bench", detail, prev, hash]).map_err(err)?;
                prev = hash;
                left -= 1;
            }
        }
        tx.execute(
            "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?1, ?2)
             ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
            params![seq, prev],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
    }
    Ok(seq)
}

struct Server {
    child: Child,
    api: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(vigo: &Path, base: &Path) -> Res<Server> {
    let mut child = Command::new(vigo)
        .args(["server", "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0"])
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
    let api = line
        .split("api=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .ok_or(line.clone())?;
    Ok(Server { child, api })
}

/// The console over one keep-alive HTTPS connection, with the bench user's session cookie.
struct Browser {
    sender: hyper::client::conn::http1::SendRequest<Empty<&'static [u8]>>,
    cookie: String,
}

impl Browser {
    async fn connect(base: &Path, addr: SocketAddr, session: &str) -> Res<Browser> {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(base.join("tls/ca")).map_err(err)? {
            roots.add(c.map_err(err)?).map_err(err)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(err)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tcp = tokio::net::TcpStream::connect(addr).await.map_err(err)?;
        tcp.set_nodelay(true).map_err(err)?;
        let name = ServerName::try_from("127.0.0.1").map_err(err)?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp).await.map_err(err)?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.map_err(err)?;
        tokio::spawn(conn);
        Ok(Browser { sender, cookie: format!("__Host-vigo_session={session}") })
    }

    /// GET `path`: (status, body, round trip).
    async fn get(&mut self, path: &str) -> Res<(u16, String, Duration)> {
        let req = hyper::Request::get(path)
            .header("host", "127.0.0.1")
            .header("cookie", &self.cookie)
            .body(Empty::new())
            .map_err(err)?;
        self.sender.ready().await.map_err(err)?;
        let t = Instant::now();
        let resp = self.sender.send_request(req).await.map_err(err)?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.map_err(err)?.to_bytes();
        Ok((status, String::from_utf8_lossy(&bytes).into_owned(), t.elapsed()))
    }
}

fn stats(mut ms: Vec<f64>) -> Value {
    ms.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    json!({ "median_ms": (at(0.5) * 100.0).round() / 100.0, "p95_ms": (at(0.95) * 100.0).round() / 100.0,
            "max_ms": (at(1.0) * 100.0).round() / 100.0 })
}

async fn run(a: &Args) -> Res<Value> {
    let vigo = a.vigo.clone().unwrap_or_else(default_vigo);
    let base = std::env::temp_dir().join(format!("vigo-console-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).map_err(err)?;
    let result = measure(a, &vigo, &base).await;
    if !a.keep {
        let _ = std::fs::remove_dir_all(&base);
    }
    result
}

async fn measure(a: &Args, vigo: &Path, base: &Path) -> Res<Value> {
    cli(vigo, base, &["secrets", "init"], &format!("{PASSPHRASE}\n{PASSPHRASE}\n"))?;
    cli(vigo, base, &["secrets", "unlock"], &format!("{PASSPHRASE}\n"))?;
    cli(vigo, base, &["secrets", "generate-certs"], "")?;
    let db = base.join("vigo.db");
    let t = Instant::now();
    let session = fill_fleet(&db, a.envoys, a.runs)?;
    let head = fill_audit(&db, a.audit_rows)?;
    let fill_s = t.elapsed().as_secs_f64();
    eprintln!(
        "console_bench: {} envoys, {} runs, {head} audit rows written in {fill_s:.1} s",
        a.envoys, a.runs
    );
    let server = start_server(vigo, base)?;
    let mut browser = Browser::connect(base, server.api, &session).await?;
    // The server walks the whole chain at start (after its first 5 s tick): wait for it, so
    // that walk does not share the cores with the pages measured.
    let waited = Instant::now();
    loop {
        let (status, body, _) = browser.get("/").await?;
        if status != 200 {
            return Err(format!("the dashboard answered {status}"));
        }
        if body.contains(">intact<") {
            break;
        }
        if body.contains(">broken<") {
            return Err("the audit chain the benchmark wrote does not verify".into());
        }
        if waited.elapsed() > Duration::from_secs(600) {
            return Err("the server did not verify the audit chain in 10 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let last_page = a.envoys.div_ceil(100).max(1);
    let pages: Vec<(String, String, &str)> = vec![
        ("dashboard".into(), "/".into(), ">intact<"),
        ("envoys first page".into(), "/envoys".into(), "e00000.bench"),
        ("envoys last page".into(), format!("/envoys?page={last_page}"), "envoys match"),
        ("envoys failed".into(), "/envoys?state=failed".into(), "envoys match"),
        ("envoys search".into(), "/envoys?q=e0999".into(), "envoys match"),
        ("audit newest".into(), "/audit".into(), "secret.epoch_resolved"),
        ("audit middle".into(), format!("/audit?before={}", head / 2), "secret.epoch_resolved"),
        ("audit oldest".into(), "/audit?before=51".into(), "<td>1</td>"),
        ("audit event, middle".into(), format!("/audit?event=auth.login&before={}", head / 2), "auth.login"),
        ("audit actor, oldest".into(), "/audit?actor=user%3Aalice&before=200".into(), "user:alice"),
        ("runs".into(), "/runs".into(), "run-"),
        ("security".into(), "/security".into(), "Attack surface"),
        // The admin API the CLI reads (`fleet status`, `envoys list --status`/`--where`).
        ("api fleet status".into(), "/v1/fleet/status".into(), "attention_total"),
        ("api envoys failed".into(), "/v1/envoys?status=failed".into(), "\"status\":\"failed\""),
        ("api envoys where os.family".into(), "/v1/envoys?where=os.family%3Drhel".into(), "e00000.bench"),
        (
            "api envoys where two traits".into(),
            "/v1/envoys?where=os.family%3Ddebian&where=kernel.release%3D6.1.0-1*".into(),
            "e00001.bench",
        ),
    ];
    let mut results = serde_json::Map::new();
    let mut errors = 0;
    for (name, path, expect) in &pages {
        let mut times = Vec::new();
        for i in 0..a.requests + 3 {
            let (status, body, took) = browser.get(path).await?;
            if status != 200 || !body.contains(expect) {
                errors += 1;
                eprintln!("console_bench: {path} answered {status} without {expect:?}");
            }
            if i >= 3 {
                times.push(took.as_secs_f64() * 1000.0);
            }
        }
        eprintln!("console_bench: {name}: {}", stats(times.clone()));
        results.insert(name.clone(), stats(times));
    }
    drop(server);
    Ok(json!({
        "envoys": a.envoys, "runs": a.runs, "audit_rows": head, "requests_per_page": a.requests,
        "fill_s": fill_s, "pages": results, "errors": errors,
    }))
}
