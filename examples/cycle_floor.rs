//! The floor under `fleet_bench`: what one check-in cycle costs on this machine before any
//! HTTP/2, gRPC, protobuf, SQLite or scheduling work, in CPU time of both sides together.
//!
//! Cryptography the design requires: three signed requests (the envoy signs, the server
//! verifies), one resumed TLS 1.3 handshake (an X25519 key pair and agreement on each side) and
//! one sealed ResolveSecrets answer (an ephemeral key pair and an agreement on each side). Each
//! primitive is timed with ring, the library vigo and rustls use; the totals follow from the
//! counts below.
//!
//! Transport: one loopback TCP connection carrying three request/answer exchanges of a real
//! cycle's sizes, then closed: the least the kernel does for a cycle (a real cycle also carries
//! the TLS handshake flights, HTTP/2 settings, window updates and trailers: about 41 TCP
//! segments against this floor's 14).
//!
//!   cargo run --release --example cycle_floor [-- --iterations N]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey, X25519};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey as SigKey, ED25519};

/// Signed requests per cycle: CheckIn, ResolveSecrets, ReportRun.
const SIGNED_CALLS: f64 = 3.0;
/// X25519 key pairs made per cycle on each side: TLS key share, sealing key.
const KEYPAIRS_PER_SIDE: f64 = 2.0;
/// X25519 agreements per cycle on each side: TLS shared secret, sealing shared secret.
const AGREEMENTS_PER_SIDE: f64 = 2.0;

/// Bytes each way of the three calls of a cycle at R=50 S=5 (request, answer), rounded from a
/// traced fleet_bench cycle: CheckIn answers with the bundle, the others are small.
const EXCHANGES: [(usize, usize); 3] = [(250, 6_250), (300, 350), (1_450, 100)];

/// Mean microseconds per call of `op` over `n` calls.
fn time_us(n: u32, mut op: impl FnMut()) -> f64 {
    for _ in 0..n / 10 {
        op();
    }
    let start = Instant::now();
    for _ in 0..n {
        op();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

/// Nanoseconds the calling thread has run on a CPU (user and system), from the scheduler.
fn thread_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    stat.split_whitespace().next().and_then(|ns| ns.parse().ok()).unwrap_or(0)
}

/// Mean CPU microseconds (client and server thread together) of one connection that carries
/// the three exchanges and closes.
fn transport_us(n: u32) -> std::io::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = std::thread::spawn(move || -> std::io::Result<u64> {
        let mut buf = vec![0u8; 8192];
        let cpu = thread_cpu_ns();
        for _ in 0..n {
            let (mut conn, _) = listener.accept()?;
            conn.set_nodelay(true)?;
            for (ask, answer) in EXCHANGES {
                conn.read_exact(&mut buf[..ask])?;
                conn.write_all(&buf[..answer])?;
            }
        }
        Ok(thread_cpu_ns() - cpu)
    });
    let mut buf = vec![0u8; 8192];
    let cpu = thread_cpu_ns();
    for _ in 0..n {
        let mut conn = TcpStream::connect(addr)?;
        conn.set_nodelay(true)?;
        for (ask, answer) in EXCHANGES {
            conn.write_all(&buf[..ask])?;
            conn.read_exact(&mut buf[..answer])?;
        }
    }
    let client_ns = thread_cpu_ns() - cpu;
    let server_ns = server.join().map_err(|_| std::io::Error::other("server thread panicked"))??;
    Ok((client_ns + server_ns) as f64 / 1e3 / f64::from(n))
}

/// The floor under fleet_bench: required cryptography and loopback TCP per check-in cycle
/// (see docs/BENCHMARKS.md).
#[derive(argh::FromArgs)]
struct Args {
    /// timed calls of each primitive and connections of the transport (default 5000)
    #[argh(option, default = "5_000")]
    iterations: u32,
}

fn main() {
    let n = argh::from_env::<Args>().iterations;
    if n == 0 {
        eprintln!("cycle_floor: --iterations must be at least 1");
        std::process::exit(2);
    }
    let rng = SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("ed25519 key");
    let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("ed25519 key");
    // A signing message of the size vigo signs: method, envoy id, time, sequence, payload hash.
    let message = [7u8; 120];
    let signature = key.sign(&message);
    let public = SigKey::new(&ED25519, key.public_key().as_ref().to_vec());
    let peer = EphemeralPrivateKey::generate(&X25519, &rng).expect("x25519 key");
    let peer_public = peer.compute_public_key().expect("x25519 public").as_ref().to_vec();

    let sign_us = time_us(n, || {
        std::hint::black_box(key.sign(&message));
    });
    let verify_us = time_us(n, || assert!(public.verify(&message, signature.as_ref()).is_ok()));
    let keypair_us = time_us(n, || {
        let private = EphemeralPrivateKey::generate(&X25519, &rng).expect("x25519 key");
        std::hint::black_box(private.compute_public_key().expect("x25519 public"));
    });
    // An agreement consumes its private key, so this times generate + agree; the key pair's
    // share is taken back out.
    let agree_us =
        time_us(n, || {
            let private = EphemeralPrivateKey::generate(&X25519, &rng).expect("x25519 key");
            let peer = UnparsedPublicKey::new(&X25519, &peer_public);
            agreement::agree_ephemeral(private, &peer, |s| std::hint::black_box(s[0])).expect("agree");
        }) - time_us(n, || drop(std::hint::black_box(EphemeralPrivateKey::generate(&X25519, &rng))));

    let x25519_side_us = KEYPAIRS_PER_SIDE * keypair_us + AGREEMENTS_PER_SIDE * agree_us;
    let envoy_us = SIGNED_CALLS * sign_us + x25519_side_us;
    let server_us = SIGNED_CALLS * verify_us + x25519_side_us;
    let tcp_us = match transport_us(n) {
        Ok(us) => us,
        Err(e) => {
            eprintln!("cycle_floor: loopback transport: {e}");
            std::process::exit(1);
        }
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    // Both processes share the cores in fleet_bench, so a cycle costs both sides' work.
    let ceiling = |us: f64| cores * 1e6 / us;
    println!(
        "{}",
        serde_json::json!({
            "bench": "cycle_floor",
            "iterations": n,
            "ed25519_sign_us": sign_us,
            "ed25519_verify_us": verify_us,
            "x25519_keypair_us": keypair_us,
            "x25519_agree_us": agree_us,
            "cycle_envoy_ms": envoy_us / 1e3,
            "cycle_server_ms": server_us / 1e3,
            "cycle_tcp_ms": tcp_us / 1e3,
            "cores": cores,
            "cycles_per_s_ceiling_crypto": ceiling(envoy_us + server_us),
            "cycles_per_s_ceiling_crypto_tcp": ceiling(envoy_us + server_us + tcp_us),
        })
    );
}
