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
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());

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
    assert!(runs.iter().all(|d| *d < Duration::from_secs(10)), "check-ins during the flood: {runs:?}");

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
