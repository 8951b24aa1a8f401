//! Receivers for the audit sinks, all on 127.0.0.1 and all stopping by themselves: Debian's
//! `rsyslogd` with a TLS listener (its own config in a temp dir), an HTTPS webhook receiver
//! written here that checks every signature, a plain TCP receiver that keeps the raw bytes,
//! and a test CA made with `openssl`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::text;

/// A port free right now on 127.0.0.1 (for a receiver that must keep its port across restarts).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A CA and a certificate for 127.0.0.1 it signed, as PEM files in `dir` (`ca.pem`,
/// `cert.pem`, `key.pem`), made by `openssl` so nothing of Vigo's own is trusted by the test.
pub fn test_ca(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl is required (apt-get install openssl; scripts/test-all.sh installs it)");
        assert!(out.status.success(), "openssl {}: {}", args.join(" "), text(&out));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=vigo test receiver CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "cert.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "cert.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "ext",
    ]);
    dir.to_path_buf()
}

/// `rsyslogd -n` with a TLS (gtls) listener on 127.0.0.1:`port`, writing each message's MSG,
/// one per line, to `received.log`.
pub struct Rsyslog {
    pub dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl Rsyslog {
    pub fn new(dir: &Path, ca_dir: &Path) -> Rsyslog {
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let conf = format!(
            r#"global(workDirectory="{dir}" maxMessageSize="256k"
       DefaultNetstreamDriver="gtls"
       DefaultNetstreamDriverCAFile="{ca}/ca.pem"
       DefaultNetstreamDriverCertFile="{ca}/cert.pem"
       DefaultNetstreamDriverKeyFile="{ca}/key.pem")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon" gnutlsPriorityString="NORMAL")
input(type="imtcp" port="{port}" address="127.0.0.1")
template(name="msgonly" type="string" string="%msg%\n")
action(type="omfile" file="{dir}/received.log" template="msgonly")
"#,
            dir = dir.display(),
            ca = ca_dir.display(),
        );
        std::fs::write(dir.join("rsyslog.conf"), conf).unwrap();
        Rsyslog { dir: dir.to_path_buf(), port, child: None }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn received(&self) -> PathBuf {
        self.dir.join("received.log")
    }

    /// Starts it and waits (bounded) until its listener takes connections.
    pub fn start(&mut self) {
        assert!(self.child.is_none());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("rsyslogd.out"))
            .unwrap();
        let child = Command::new("rsyslogd")
            .args(["-n", "-f"])
            .arg(self.dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(self.dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("rsyslogd is required (apt-get install rsyslog rsyslog-gnutls; scripts/test-all.sh installs them)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(self.address()).is_err() {
            assert!(Instant::now() < deadline, "rsyslogd did not listen: {}", self.output());
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("rsyslogd exited ({status}): {}", self.output());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir.join("rsyslogd.out")).unwrap_or_default()
    }

    /// SIGTERM, and wait (bounded) until it has exited.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while c.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = std::fs::remove_file(self.dir.join("rsyslogd.pid"));
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sequence numbers of the rows in a file of exported rows (JSON after any prefix), in order.
pub fn seqs_in(text: &str) -> Vec<i64> {
    text.lines()
        .filter_map(|l| l.find('{').map(|i| &l[i..]))
        .filter_map(|j| serde_json::from_str::<serde_json::Value>(j).ok()?["seq"].as_i64())
        .collect()
}

/// Waits (bounded by `secs`) until `f` holds; panics with `what` and `detail()` otherwise.
pub fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool, detail: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out after {secs}s waiting for {what}:\n{}", detail());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What the webhook receiver saw.
#[derive(Default)]
pub struct Seen {
    /// Every request body, in arrival order, with whether its signature was right.
    pub bodies: Vec<(Vec<u8>, bool)>,
    pub answered_500: usize,
}

/// An HTTPS receiver on 127.0.0.1 (its certificate from `test_ca`) that checks
/// `X-Vigo-Signature` on every POST and answers 200, or 500 while `failing` is set. Runs on
/// its own thread until dropped.
pub struct WebhookReceiver {
    pub port: u16,
    pub failing: Arc<AtomicBool>,
    pub seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WebhookReceiver {
    pub fn start(ca_dir: &Path, key: &[u8]) -> WebhookReceiver {
        use rustls::pki_types::pem::PemObject;
        let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(ca_dir.join("cert.pem"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key_der = rustls::pki_types::PrivateKeyDer::from_pem_file(ca_dir.join("key.pem")).unwrap();
        let config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key_der)
                .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (failing, seen, stop) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(Mutex::new(Seen::default())),
            Arc::new(AtomicBool::new(false)),
        );
        let hmac_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
        let (f, s, st) = (failing.clone(), seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                while !st.load(Ordering::SeqCst) {
                    let Ok(Ok((tcp, _))) =
                        tokio::time::timeout(Duration::from_millis(200), listener.accept()).await
                    else {
                        continue;
                    };
                    let Ok(tls) = acceptor.accept(tcp).await else { continue };
                    let (f, s, key) = (f.clone(), s.clone(), hmac_key.clone());
                    let service =
                        hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                            let (f, s, key) = (f.clone(), s.clone(), key.clone());
                            async move {
                                use http_body_util::BodyExt;
                                let sig = req
                                    .headers()
                                    .get("x-vigo-signature")
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or("")
                                    .to_string();
                                let body = req
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes().to_vec())
                                    .unwrap_or_default();
                                let expected: String = ring::hmac::sign(&key, &body)
                                    .as_ref()
                                    .iter()
                                    .map(|b| format!("{b:02x}"))
                                    .collect();
                                let good = sig == format!("sha256={expected}");
                                let mut seen = s.lock().unwrap();
                                let status = if f.load(Ordering::SeqCst) {
                                    seen.answered_500 += 1;
                                    500
                                } else {
                                    seen.bodies.push((body, good));
                                    200
                                };
                                Ok::<_, std::convert::Infallible>(
                                    hyper::Response::builder()
                                        .status(status)
                                        .body(http_body_util::Full::new(hyper::body::Bytes::from_static(
                                            b"{}",
                                        )))
                                        .unwrap(),
                                )
                            }
                        });
                    tokio::spawn(
                        hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(tls), service),
                    );
                }
            });
        });
        WebhookReceiver { port, failing, seen, stop, thread: Some(thread) }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}/hooks/vigo", self.port)
    }

    /// Sequence numbers of every event in the bodies answered 200, in arrival order.
    pub fn seqs(&self) -> Vec<i64> {
        let seen = self.seen.lock().unwrap();
        seen.bodies
            .iter()
            .flat_map(|(b, _)| {
                let v: serde_json::Value = serde_json::from_slice(b).unwrap();
                v["events"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect::<Vec<_>>()
            })
            .collect()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A plain TCP receiver on 127.0.0.1 that keeps every byte it is sent (syslog over `tcp`).
pub struct RawReceiver {
    pub port: u16,
    pub bytes: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    connections: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RawReceiver {
    pub fn start() -> RawReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (bytes, stop, connections) = (
            Arc::new(Mutex::new(Vec::new())),
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
        );
        let (b, st, n) = (bytes.clone(), stop.clone(), connections.clone());
        let thread = std::thread::spawn(move || {
            let mut open = Vec::new();
            while !st.load(Ordering::SeqCst) {
                if let Ok((s, _)) = listener.accept() {
                    s.set_nonblocking(true).unwrap();
                    n.fetch_add(1, Ordering::SeqCst);
                    open.push(s);
                }
                let mut buf = [0u8; 65536];
                for s in &mut open {
                    while let Ok(k) = s.read(&mut buf) {
                        if k == 0 {
                            break;
                        }
                        b.lock().unwrap().extend_from_slice(&buf[..k]);
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            for s in &mut open {
                let _ = s.flush();
            }
        });
        RawReceiver { port, bytes, stop, connections, thread: Some(thread) }
    }
}

impl Drop for RawReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
