//! What the cryptography the design requires costs per check-in cycle on this machine, before
//! any byte moves: the floor under `fleet_bench`. One cycle is three signed requests (the envoy
//! signs, the server verifies), one resumed TLS 1.3 handshake (an X25519 key pair and agreement
//! on each side) and one sealed ResolveSecrets answer (the envoy's ephemeral key pair, the
//! server's ephemeral key pair and both agreements). Each primitive is timed with ring, the
//! library vigo and rustls use, and the totals are summed from the counts above.
//!
//!   cargo run --release --example crypto_floor [-- --iterations N]

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

fn iterations() -> Result<u32, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => Ok(5_000),
        [flag, n] if flag == "--iterations" => {
            n.parse().ok().filter(|n| *n > 0).ok_or(format!("--iterations wants a positive number, got {n:?}"))
        }
        _ => Err("usage: crypto_floor [--iterations N]".to_string()),
    }
}

fn main() {
    let n = match iterations() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("crypto_floor: {e}");
            std::process::exit(2);
        }
    };
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
    let agree_us = time_us(n, || {
        let private = EphemeralPrivateKey::generate(&X25519, &rng).expect("x25519 key");
        let peer = UnparsedPublicKey::new(&X25519, &peer_public);
        agreement::agree_ephemeral(private, &peer, |s| std::hint::black_box(s[0])).expect("agree");
    }) - time_us(n, || drop(std::hint::black_box(EphemeralPrivateKey::generate(&X25519, &rng))));

    let x25519_side_us = KEYPAIRS_PER_SIDE * keypair_us + AGREEMENTS_PER_SIDE * agree_us;
    let envoy_us = SIGNED_CALLS * sign_us + x25519_side_us;
    let server_us = SIGNED_CALLS * verify_us + x25519_side_us;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    // Both processes share the cores in fleet_bench, so a cycle costs both sides' work.
    let ceiling = cores * 1e6 / (envoy_us + server_us);
    println!(
        "{}",
        serde_json::json!({
            "bench": "crypto_floor",
            "iterations": n,
            "ed25519_sign_us": sign_us,
            "ed25519_verify_us": verify_us,
            "x25519_keypair_us": keypair_us,
            "x25519_agree_us": agree_us,
            "cycle_envoy_ms": envoy_us / 1e3,
            "cycle_server_ms": server_us / 1e3,
            "cores": cores,
            "cycles_per_s_ceiling_crypto_only": ceiling,
        })
    );
}
