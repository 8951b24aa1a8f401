//! Does a failed `basic` login take as long for a name that exists as for one that does not?
//! Starts a real `vigo server` in a temp dir with one web user, then times many logins over one
//! kept-alive HTTPS connection, interleaving three kinds: a wrong password for the real user,
//! an unknown user, and a disabled user. Prints the median and 90th percentile of each and the
//! ratio of the medians. (Throttling is lifted for the run; it would answer most attempts early.)
//!
//! Run: `cargo run --release --example login_timing -- [--rounds N] [--vigo PATH]`; the last
//! line is a JSON summary.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};

type Res<T> = Result<T, String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

const PASS: &str = "login timing bench passphrase";
const PASSWORD: &str = "Correct-Horse-42-Battery";

/// The `vigo` binary: `--vigo PATH`, else the one built beside this example.
fn vigo() -> PathBuf {
    if let Some(p) = std::env::args().skip_while(|a| a != "--vigo").nth(1) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("vigo")
}

fn cli(base: &Path, args: &[&str], stdin: &str, server: Option<&str>) -> Res<String> {
    let mut child = Command::new(vigo())
        .arg("cli")
        .args(args)
        .env("VIGO_BASE_DIR", base)
        .env("VIGO_CONFIG", "")
        .env("VIGO_SERVER", server.unwrap_or("https://127.0.0.1:9"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(err)?;
    let _ = child.stdin.take().map(|mut s| s.write_all(stdin.as_bytes()));
    let out = child.wait_with_output().map_err(err)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("vigo cli {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)))
    }
}

fn start_server(base: &Path) -> Res<(Child, String)> {
    let config = base.join("server.yaml");
    std::fs::write(
        &config,
        "auth:\n  throttle:\n    free_failures: 4000000000\n    lockout_after: 4000000001\nlimits:\n  admin_connections_per_source: 1000\n",
    )
    .map_err(err)?;
    let mut child = Command::new(vigo())
        .args(["server", "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .env("VIGO_BASE_DIR", base)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(err)?;
    let mut lines = BufReader::new(child.stderr.take().ok_or("no stderr")?).lines();
    let line = loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("listening agent=") => break l,
            Some(Ok(_)) => {}
            _ => return Err("vigosrv did not start".into()),
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let api = line
        .split("api=")
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    Ok((child, api))
}

async fn connect(
    ca: &Path,
    api: &str,
) -> Res<hyper::client::conn::http1::SendRequest<Full<std::io::Cursor<Vec<u8>>>>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{e:?}"))? {
        roots.add(c.map_err(|e| format!("{e:?}"))?).map_err(err)?;
    }
    let mut cfg =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(err)?
            .with_root_certificates(roots)
            .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(api).await.map_err(err)?;
    tcp.set_nodelay(true).map_err(err)?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("127.0.0.1").map_err(err)?, tcp)
        .await
        .map_err(err)?;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.map_err(err)?;
    tokio::spawn(conn);
    Ok(sender)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Res<()> {
    let rounds: usize = std::env::args()
        .skip_while(|a| a != "--rounds")
        .nth(1)
        .map(|n| n.parse().map_err(err))
        .transpose()?
        .unwrap_or(1000);
    let base = std::env::temp_dir().join(format!("vigo-login-timing-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).map_err(err)?;
    cli(&base, &["secrets", "init"], &format!("{PASS}\n{PASS}\n"), None)?;
    cli(&base, &["secrets", "unlock"], &format!("{PASS}\n"), None)?;
    cli(&base, &["secrets", "generate-certs"], "", None)?;
    let (mut server, api) = start_server(&base)?;
    let url = format!("https://{api}");
    for user in ["alice", "dora"] {
        cli(&base, &["webusers", "create", user], "", Some(&url))?;
        cli(
            &base,
            &["secrets", "set", "password", &format!("vigo/web/auth/{user}")],
            &format!("{PASSWORD}\n{PASSWORD}\n"),
            Some(&url),
        )?;
    }
    cli(&base, &["webusers", "disable", "dora"], "", Some(&url))?;
    let mut sender = connect(&base.join("tls/ca"), &api).await?;
    let kinds = [("wrong password", "alice"), ("unknown user", "mallory"), ("disabled user", "dora")];
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); kinds.len()];
    for round in 0..rounds + 50 {
        for (k, (_, user)) in kinds.iter().enumerate() {
            let body =
                serde_json::json!({ "username": user, "password": "Wrong-Horse-42-Battery" }).to_string();
            let req = hyper::Request::post("/auth/basic")
                .header("host", "127.0.0.1")
                .header("content-type", "application/json")
                .body(Full::new(std::io::Cursor::new(body.into_bytes())))
                .map_err(err)?;
            sender.ready().await.map_err(err)?;
            let started = Instant::now();
            let resp = sender.send_request(req).await.map_err(err)?;
            let status = resp.status();
            resp.into_body().collect().await.map_err(err)?;
            let took = started.elapsed();
            if status != 401 {
                return Err(format!("expected 401, got {status}"));
            }
            // The first 50 rounds warm caches and are not counted.
            if round >= 50 {
                times[k].push(took);
            }
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&base);
    let mut medians = Vec::new();
    let mut summary = serde_json::Map::new();
    for ((name, _), t) in kinds.iter().zip(times.iter_mut()) {
        t.sort();
        let (p50, p90) = (percentile(t, 0.5), percentile(t, 0.9));
        println!(
            "{name:<15} median {:>7.1} µs   p90 {:>7.1} µs   ({} logins)",
            p50.as_secs_f64() * 1e6,
            p90.as_secs_f64() * 1e6,
            t.len()
        );
        medians.push(p50.as_secs_f64());
        summary.insert(
            name.replace(' ', "_"),
            serde_json::json!({ "median_us": p50.as_secs_f64() * 1e6, "p90_us": p90.as_secs_f64() * 1e6 }),
        );
    }
    let (lo, hi) = medians.iter().fold((f64::MAX, 0f64), |(lo, hi), m| (lo.min(*m), hi.max(*m)));
    println!("largest median / smallest median: {:.3}", hi / lo);
    summary.insert("median_ratio".into(), serde_json::json!(hi / lo));
    summary.insert("errors".into(), serde_json::json!(0));
    println!("{}", serde_json::Value::Object(summary));
    Ok(())
}
