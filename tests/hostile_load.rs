//! The server under hostile load from one source address (127.0.0.2), while legitimate clients
//! on 127.0.0.1 go on working: connection floods on both ports, and a flood of enrollments
//! with garbage tokens. Every flood here is bounded and stops by itself.

mod common;

use std::time::{Duration, Instant};

use common::attack::{self, ATTACKER};
use common::fleet::Fleet;
use common::*;

fn installation(tag: &str) -> Fleet {
    let f = Fleet::new(tag);
    f.write_config(&[
        ("nodes.vgo", "envoys:\n  - match: \"*\"\n    roles: [base]\n"),
        ("modules/base.vgo", "resources:\n  - name: motd\n    type: file\n    target_path: /etc/motd\n    content: \"hello\\n\"\n"),
    ]);
    f
}

/// About 1,500 idle connections from one address — plain TCP and half-sent requests on both
/// ports, TLS with a self-signed certificate kept busy by HTTP/2 PINGs — against a server
/// started with only 1,024 descriptors. A check-in and an admin call from another address
/// still succeed promptly, and the server cuts the PING-only connections at their deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connection_flood_from_one_source_leaves_the_server_answering_others() {
    let mut f = installation("flood-conn");
    f.fd_limit = Some(1024);
    f.start_server();
    f.enroll("legit");
    let agent_addr = f.agent_addr.clone();
    let api_addr = f.api_addr.clone();

    // TLS with a self-signed certificate (the kind allowed to enroll), then PINGs every 500 ms
    // and never a request. Each returns how long the server kept it, if it got in at all.
    let mut pingers = Vec::new();
    for _ in 0..200 {
        let (cert, key, _) = attack::self_signed_identity();
        let cfg = attack::tls_client(Some((cert, key)), b"h2");
        let addr = agent_addr.clone();
        pingers.push(tokio::spawn(async move {
            let tcp = attack::connect_from(ATTACKER, &addr).await.ok()?;
            let mut tls = attack::tls_connect(tcp, cfg).await.ok()?;
            let started = Instant::now();
            if !attack::send(&mut tls, &attack::h2_preface()).await {
                return Some(started.elapsed());
            }
            for n in 0..120u64 {
                if !attack::send(&mut tls, &attack::h2_ping(n)).await
                    || attack::drain_until_closed(&mut tls, Duration::from_millis(500)).await
                {
                    return Some(started.elapsed());
                }
            }
            Some(Duration::MAX)
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut held = Vec::new();
    // Plain TCP that never starts TLS, on both ports.
    for addr in [&agent_addr, &api_addr] {
        for _ in 0..500 {
            if let Ok(s) = attack::connect_from(ATTACKER, addr).await {
                held.push(tokio::spawn(async move {
                    let mut s = s;
                    attack::drain_until_closed(&mut s, Duration::from_secs(40)).await
                }));
            }
        }
    }
    // Half-sent admin requests over TLS, one more header line every two seconds.
    for _ in 0..100 {
        let addr = api_addr.clone();
        held.push(tokio::spawn(async move {
            let Ok(tcp) = attack::connect_from(ATTACKER, &addr).await else { return true };
            let Ok(mut tls) = attack::tls_connect(tcp, attack::tls_client(None, b"http/1.1")).await else {
                return true;
            };
            attack::send(&mut tls, b"GET /v1/health HTTP/1.1\r\nHost: x\r\n").await;
            for n in 0..20 {
                if !attack::send(&mut tls, format!("X-Slow-{n}: 1\r\n").as_bytes()).await
                    || attack::drain_until_closed(&mut tls, Duration::from_secs(2)).await
                {
                    return true;
                }
            }
            false
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Meanwhile, from 127.0.0.1: a full agent cycle and an admin call.
    let started = Instant::now();
    let f2 = &f;
    let (run, list) = tokio::task::block_in_place(|| (f2.run_once("legit"), f2.cli(&["envoys", "list"], "")));
    assert_code(&run, 0);
    assert_code(&list, 0);
    assert!(text(&list).contains("legit"), "{}", text(&list));
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());

    // A connection that only PINGs is cut at its deadline (30 s), not kept alive by them.
    let kept: Vec<Duration> = futures_join(pingers).await.into_iter().flatten().collect();
    assert!(!kept.is_empty(), "some PING-only connections got in");
    assert!(kept.iter().all(|d| *d < Duration::from_secs(45)), "kept for {kept:?}");
    assert!(
        kept.iter().any(|d| *d > Duration::from_secs(20)),
        "some were held until their deadline: {kept:?}"
    );
    for h in held {
        h.abort();
    }
    let log = std::fs::read_to_string(f.server_log()).unwrap();
    assert!(log.contains("holds its cap"), "the per-source cap is logged:\n{log}");
}

async fn futures_join<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

fn audit_rows(f: &Fleet, action: &str) -> Vec<serde_json::Value> {
    f.audit_json()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["action"] == action)
        .collect()
}

/// Hundreds of Enroll calls with garbage tokens from one address: after a few the address is
/// turned away unheard (RESOURCE_EXHAUSTED), the audit log gains one row for the first refusal
/// and, when the window ends, one summary row with the count, and check-ins from another
/// address go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_enrollment_flood_is_rate_limited_and_summarised_in_the_audit_log() {
    let mut f = installation("flood-enroll");
    f.start_server();
    f.enroll("legit");
    let addr = f.agent_addr.clone();
    let before = audit_rows(&f, "enroll.rejected").len();
    let flood = tokio::spawn(async move {
        let mut all = Vec::new();
        for _ in 0..10 {
            let batch: Vec<_> =
                (0..8).map(|_| tokio::spawn(attack::garbage_enrolls(ATTACKER, addr.clone(), 40))).collect();
            for b in batch {
                all.extend(b.await.unwrap());
            }
        }
        all
    });
    let mut runs = Vec::new();
    let flood_started = Instant::now();
    while !flood.is_finished() {
        let started = Instant::now();
        let f2 = &f;
        let out = tokio::task::block_in_place(|| f2.run_once("legit"));
        assert_code(&out, 0);
        runs.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let statuses = flood.await.unwrap();
    eprintln!("flood of 3200 enrollments took {:?}; check-ins during it: {runs:?}", flood_started.elapsed());
    assert_eq!(statuses.len(), 3200, "every garbage enrollment was answered");
    let denied = statuses.iter().filter(|s| **s == 7).count();
    let exhausted = statuses.iter().filter(|s| **s == 8).count();
    // Eight connections race for the budget of ten, so a few more may get through.
    assert!((1..=20).contains(&denied), "refused after checking the token: {denied}");
    assert_eq!(denied + exhausted, 3200, "{statuses:?}");
    assert!(!runs.is_empty());
    assert!(runs.iter().all(|d| *d < Duration::from_secs(20)), "check-ins during the flood: {runs:?}");

    // One row for the first refusal; the rest arrive as one summary when the window closes.
    let rows = audit_rows(&f, "enroll.rejected");
    assert_eq!(rows.len() - before, 1, "{rows:#?}");
    assert_eq!(rows.last().unwrap()["target"], ATTACKER);
    f.stop_server();
    let rows = audit_rows(&f, "enroll.rejected");
    assert_eq!(rows.len() - before, 2, "the summary is written at shutdown at the latest: {rows:#?}");
    let detail: serde_json::Value =
        serde_json::from_str(rows.last().unwrap()["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["count"], 3199, "{detail}");
}

/// A server whose deadlines are short enough to watch: a whole admin request in 2 s, a
/// connection that is no envoy's for 2 s.
fn installation_with_short_deadlines(tag: &str) -> Fleet {
    let mut f = installation(tag);
    f.use_server_settings("limits:\n  admin_request_timeout: 2s\n  enrolling_lifetime: 2s\n");
    f
}

/// Sends `head`, then `body` one byte every 100 ms, while reading: returns the answer (if
/// any) and how long after the first byte the server answered or closed.
async fn trickle(addr: &str, head: String, body: Vec<u8>) -> (Option<attack::RawAnswer>, Duration) {
    let tcp = attack::connect_from(ATTACKER, addr).await.unwrap();
    let tls = attack::tls_connect(tcp, attack::tls_client(None, b"http/1.1")).await.unwrap();
    let (mut rx, mut tx) = tokio::io::split(tls);
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        if !attack::send(&mut tx, head.as_bytes()).await {
            return;
        }
        for b in body {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if !attack::send(&mut tx, &[b]).await {
                return;
            }
        }
        // Held open afterwards, as a slow client would.
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let answer =
        tokio::time::timeout(Duration::from_secs(25), attack::read_answer(&mut rx)).await.ok().flatten();
    // The server closes after its answer.
    let closed = attack::drain_until_closed(&mut rx, Duration::from_secs(5)).await;
    let took = started.elapsed();
    writer.abort();
    assert!(closed || answer.is_none(), "the connection stays open after the answer");
    (answer, took)
}

/// A request whose body comes one byte at a time — to an API route with a valid token, and to
/// the public login route — is answered 408 (JSON) and its connection closed once the whole
/// request has taken 2 s, long before the 20 s the body would take.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_a_byte_at_a_time_is_cut_at_the_request_deadline() {
    let mut f = installation_with_short_deadlines("slow-body");
    f.start_server();
    let token = std::fs::read_to_string(f.base().join("local-admin.token")).unwrap();
    let body = br#"{"username": "someone", "role": "viewer", "pad": "........................................................................................................................................................"}"#.to_vec();
    assert!(body.len() >= 200);
    for (path, auth) in
        [("/v1/users", format!("Authorization: Bearer {}\r\n", token.trim())), ("/auth/basic", String::new())]
    {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: vigo\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let (answer, took) = trickle(&f.api_addr, head, body.clone()).await;
        let answer = answer.unwrap_or_else(|| panic!("{path}: no answer, closed after {took:?}"));
        assert_eq!(answer.status, 408, "{path}: {answer:?}");
        assert!(answer.head.contains("content-type: application/json"), "{path}: {answer:?}");
        assert!(answer.json()["error"].as_str().unwrap().contains("in time"), "{path}: {answer:?}");
        assert!(took < Duration::from_secs(6), "{path}: answered after {took:?}");
    }
    // A request that arrives in time is served as before.
    let quick = attack::admin_raw(
        &f.api_addr,
        format!(
            "GET /v1/health HTTP/1.1\r\nHost: vigo\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            token.trim()
        )
        .as_bytes(),
    )
    .await
    .expect("an answer");
    assert_eq!(quick.status, 200, "{quick:?}");
}

/// Connects to the agent port showing `identity`, sends the HTTP/2 preface and then only
/// PINGs (every 300 ms) for up to `max`: returns how long the server kept the connection.
async fn pinged_for(
    addr: &str,
    identity: (rustls::pki_types::CertificateDer<'static>, rustls::pki_types::PrivateKeyDer<'static>),
    max: Duration,
) -> Duration {
    let tcp = attack::connect_from("127.0.0.1", addr).await.unwrap();
    let mut tls = attack::tls_connect(tcp, attack::tls_client(Some(identity), b"h2")).await.unwrap();
    let started = Instant::now();
    assert!(attack::send(&mut tls, &attack::h2_preface()).await);
    let mut n = 0;
    while started.elapsed() < max {
        if !attack::send(&mut tls, &attack::h2_ping(n)).await
            || attack::drain_until_closed(&mut tls, Duration::from_millis(300)).await
        {
            return started.elapsed();
        }
        n += 1;
    }
    Duration::MAX
}

/// A revoked envoy's certificate still chains to the CA, but its connection does not count as
/// an envoy's: it gets the hard deadline of connections that may only enroll, which PINGs do
/// not extend. A current envoy's connection kept busy by PINGs outlives that deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_envoys_connection_is_not_kept_alive_by_pings() {
    let mut f = installation_with_short_deadlines("revoked-pings");
    f.start_server();
    let gone = f.enroll("gone");
    let live = f.enroll("live");
    let f2 = &f;
    tokio::task::block_in_place(|| {
        assert_code(&f2.run_once("gone"), 0);
        assert_code(&f2.cli(&["envoys", "revoke", "gone"], ""), 0);
    });
    let revoked = pinged_for(&f.agent_addr, attack::agent_identity(&gone), Duration::from_secs(12)).await;
    assert!(revoked < Duration::from_secs(6), "a revoked envoy's connection was kept {revoked:?}");
    assert!(revoked >= Duration::from_millis(1500), "cut at its deadline, not at once: {revoked:?}");
    let current = pinged_for(&f.agent_addr, attack::agent_identity(&live), Duration::from_secs(5)).await;
    assert_eq!(current, Duration::MAX, "a current envoy's connection was cut after {current:?}");
}
