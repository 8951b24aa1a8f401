//! Server push: agents that hold the push channel check in as soon as the server nudges them
//! (a task for them, the next batch of a task, a publish), long before their interval (five
//! minutes here); a foreign client (Python's ssl) speaks the channel from its documentation,
//! checks a nudge's signature with the CA certificate alone, and cannot replay a Watch
//! envelope; a connection that is not an envoy's gets nothing.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::attack;
use common::fleet::Fleet;
use common::*;

/// A `vigo-agent run` in the background whose log lines are kept (the pipe never fills).
struct Daemon {
    child: Child,
    log: StderrLog,
}

impl Daemon {
    fn start(f: &Fleet, name: &str) -> Daemon {
        Self::start_with(f, name, &[])
    }

    fn start_with(f: &Fleet, name: &str, env: &[(&str, &str)]) -> Daemon {
        let root = f.root(name);
        std::fs::create_dir_all(root.join("etc")).unwrap();
        let mut child = spawn_role(
            "vigo-agent",
            &f.agent_base(name),
            &["run", "--root", root.to_str().unwrap()],
            "",
            &[&[("RUST_LOG", "info")], env].concat(),
        );
        let log = StderrLog::follow(&mut child);
        Daemon { child, log }
    }

    /// An agent whose server is `relay`, once it holds its push channel (through the relay).
    fn start_behind(f: &Fleet, name: &str, relay: &Relay) -> Daemon {
        let config = f.dir.join(&format!("{name}-agent.yaml"));
        std::fs::write(&config, format!("agent:\n  server: '{}'\n", relay.addr)).unwrap();
        let d = Self::start_with(f, name, &[("VIGO_CONFIG", &config.display().to_string())]);
        wait_for("the push channel", Duration::from_secs(30), || d.logged("holding a push channel"));
        d
    }

    /// `wait_for`, failing with this agent's log.
    fn wait_for(&self, what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + limit;
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}:\n{}", self.text());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn logged(&self, needle: &str) -> bool {
        self.log.contains(needle)
    }

    fn text(&self) -> String {
        self.log.text()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Publishes a module with one file, /etc/NAME: a publish every watching agent is nudged for,
/// and a file that shows when its run came.
fn publish_file(f: &Fleet, name: &str) {
    let module = format!(
        "resources:\n  - {{name: {name}, type: file, target_path: /etc/{name}, content: \"x\\n\"}}\n"
    );
    f.write_config(&[("modules/app.vgo", &module)]);
    assert_code(&f.cli(&["config", "publish"], ""), 0);
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert_code(out, 0);
    serde_json::from_slice(&out.stdout).unwrap()
}

const NODES: &str = "envoys:\n  - match: \"*\"\n    roles: [app]\n";

#[test]
fn nudged_agents_take_tasks_next_batches_and_publishes_at_once() {
    let mut f = Fleet::new("push");
    f.write_config(&[("nodes.vgo", NODES), ("modules/app.vgo", "resources: []\n")]);
    f.start_server();
    for name in ["web1", "web2"] {
        f.enroll(name);
        assert_code(&f.run_once(name), 0);
    }
    let daemons: Vec<Daemon> = ["web1", "web2"].iter().map(|n| Daemon::start(&f, n)).collect();
    for d in &daemons {
        wait_for("the push channels", Duration::from_secs(30), || d.logged("holding a push channel"));
    }

    // Two batches: the first is nudged when the task is made, the second when the first's
    // result arrives. The interval is five minutes: only nudges can finish this in time.
    let made = json(
        &f.cli(&["task", "run", "echo pushed", "--target", "web*", "--batch-size", "1", "-o", "json"], ""),
    );
    assert_eq!(made["nudged"], 1, "{made}");
    let id = made["id"].as_str().unwrap().to_string();
    wait_for("both batches of the task", Duration::from_secs(30), || {
        let s = json(&f.cli(&["task", "status", &id, "-o", "json"], ""));
        s["runs"].as_array().unwrap().iter().all(|r| r["state"] == "ok")
    });

    // A publish reaches every watching envoy at once.
    publish_file(&f, "pushed");
    wait_for("the published file on both hosts", Duration::from_secs(30), || {
        ["web1", "web2"].iter().all(|n| f.root(n).join("etc/pushed").exists())
    });
    for d in &daemons {
        assert!(d.logged("nudged by the server"), "{}", d.text());
    }
}

/// A part whose envoy was revoked fails at the server's next upkeep (every 5 s), and the next
/// batch is nudged then: the task moves on although no envoy with a waiting part checks in
/// and nobody looks at the task (the interval is five minutes).
#[test]
fn a_revoked_envoys_part_fails_and_the_next_batch_is_nudged_without_a_check_in() {
    let mut f = Fleet::new("push-expire");
    f.write_config(&[("nodes.vgo", NODES), ("modules/app.vgo", "resources: []\n")]);
    f.start_server();
    for name in ["web1", "web2"] {
        f.enroll(name);
        assert_code(&f.run_once(name), 0);
    }
    let web2 = Daemon::start(&f, "web2");
    wait_for("web2's push channel", Duration::from_secs(30), || web2.logged("holding a push channel"));
    let made = json(&f.cli(
        &[
            "task",
            "run",
            "echo later",
            "--target",
            "web*",
            "--batch-size",
            "1",
            "--max-failures",
            "1",
            "-o",
            "json",
        ],
        "",
    ));
    let id = made["id"].as_str().unwrap().to_string();
    assert_eq!(made["nudged"], 0, "web1, the first batch, holds no channel: {made}");
    assert_code(&f.cli(&["envoys", "revoke", "web1"], ""), 0);
    // Nothing looks at the task meanwhile (a look expires overdue parts too): the server's
    // upkeep must find web1's part and nudge web2.
    wait_for("web2 nudged to its part", Duration::from_secs(30), || web2.logged("running an ad-hoc task"));
    wait_for("web2's result", Duration::from_secs(30), || {
        let s = json(&f.cli(&["task", "status", &id, "-o", "json"], ""));
        s["runs"].as_array().unwrap().iter().any(|r| r["envoy"] == "web2" && r["state"] == "ok")
    });
    let s = json(&f.cli(&["task", "status", &id, "-o", "json"], ""));
    let web1 = s["runs"].as_array().unwrap().iter().find(|r| r["envoy"] == "web1").unwrap().clone();
    assert_eq!(web1["state"], "failed", "{s}");
    assert!(web1["error"].as_str().unwrap().contains("revoked"), "{s}");
}

/// Pings carry the channel through the server's 60-second idle cut-off: 75 s after it
/// opened, a publish still reaches the agent at once. (A channel cut at 60 s would be
/// reopened only after the next run, five minutes later.)
#[test]
fn the_push_channel_outlives_the_idle_cut_off() {
    let (f, _) = serving_web1("push-idle");
    assert_code(&f.run_once("web1"), 0);
    let d = Daemon::start(&f, "web1");
    wait_for("the push channel", Duration::from_secs(30), || d.logged("holding a push channel"));
    std::thread::sleep(Duration::from_secs(75));
    assert!(!d.logged("push channel closed") && !d.logged("went silent"), "{}", d.text());
    publish_file(&f, "late");
    wait_for("the file published after the idle limit", Duration::from_secs(20), || {
        f.root("web1").join("etc/late").exists()
    });
}

/// Agent calls carried on push channels so far, read from the server's loopback metrics.
fn push_calls(metrics_port: u16) -> f64 {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", &format!("http://127.0.0.1:{metrics_port}/metrics")])
        .output()
        .expect("curl");
    let body = String::from_utf8_lossy(&out.stdout).to_string();
    body.lines()
        .find_map(|l| l.strip_prefix("vigo_push_calls_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no vigo_push_calls_total in the scrape: {body}"))
}

/// Once its channel is open, an agent's runs ride it: the nudged run's check-in and report
/// come carried on the channel (counted by `vigo_push_calls_total`), not over a connection
/// of their own; the run before the channel opened used gRPC. A carried check-in the server
/// answers with an error (the bundle needs a secret that was deleted) is reported as an
/// aborted run, as one over gRPC is.
#[test]
fn a_watching_agents_runs_ride_its_channel() {
    let mut f = Fleet::new("push-carried");
    let port = common::sinks::free_port();
    f.use_server_settings(&format!("integrations:\n  metrics:\n    listen: '127.0.0.1:{port}'\n"));
    f.set_secret("app/token", "tok-Carried-1");
    let module = |extra: &str| {
        format!(
            "resources:\n  - {{name: conf, type: file, target_path: /etc/app.conf, content: \"secret:app/token\"}}\n{extra}"
        )
    };
    f.write_config(&[("nodes.vgo", NODES), ("modules/app.vgo", &module(""))]);
    f.start_server();
    f.enroll("web1");
    let d = Daemon::start(&f, "web1");
    wait_for("the push channel", Duration::from_secs(30), || d.logged("holding a push channel"));
    assert_eq!(push_calls(port), 0.0, "the first run, before the channel, went over gRPC");
    assert!(f.root("web1").join("etc/app.conf").exists(), "{}", d.text());
    let carried = "  - {name: carried, type: file, target_path: /etc/carried, content: \"x\\n\"}\n";
    f.write_config(&[("modules/app.vgo", &module(carried))]);
    assert_code(&f.cli(&["config", "publish"], ""), 0);
    wait_for("the nudged run's check-in and report, carried", Duration::from_secs(20), || {
        push_calls(port) >= 2.0
    });
    assert!(f.root("web1").join("etc/carried").exists(), "{}", d.text());
    let runs = |f: &Fleet| json(&f.cli(&["runs", "list", "-o", "json"], ""));
    wait_for("both runs reported", Duration::from_secs(10), || runs(&f).as_array().unwrap().len() == 2);

    // The server compiles a bundle at an envoy's first check-in after a publish or a start:
    // restarted, with the secret deleted before the agent is back, it cannot serve web1's.
    f.restart_server();
    assert_code(&f.cli(&["secrets", "delete", "app/token", "--force"], ""), 0);
    let opened = || d.log.count("holding a push channel");
    wait_for("the channel opened again", Duration::from_secs(40), || opened() == 2);
    assert_code(&f.cli(&["task", "run", "true", "--target", "web1"], ""), 0);
    wait_for("the aborted run, reported", Duration::from_secs(20), || {
        runs(&f).as_array().unwrap().len() == 3
    });
    let newest = runs(&f)[0].clone();
    assert_eq!(newest["status"], "failed", "{newest}");
    let shown = text(&f.cli(&["runs", "show", "-o", "json", newest["id"].as_str().unwrap()], ""));
    assert!(shown.contains("run aborted: check-in refused"), "{shown}");
    assert!(push_calls(port) >= 2.0, "the failed check-in and its report rode the channel too");
}

/// A TCP relay on 127.0.0.1 in front of the agent port that can silence the connections it
/// carries, as a NAT that forgot them or a server host gone without a word would: after
/// `freeze`, every connection open then passes no more bytes and is never closed (after
/// `freeze_upstream`, none from the agent, while the server's still arrive); later
/// connections pass. Its threads end when it is dropped.
struct Relay {
    addr: String,
    /// Connections opened so far (each one's id is its rank), and the first not frozen, both
    /// ways and from the agent.
    opened: Arc<std::sync::atomic::AtomicU64>,
    frozen_below: [Arc<std::sync::atomic::AtomicU64>; 2],
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    fn start(target: &str) -> Relay {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let frozen_below = [Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0))];
        let (opened, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let (frozen, stopped, target) = (frozen_below.clone(), stop.clone(), target.to_string());
        let counted = opened.clone();
        std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                let Ok((agent, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let server = std::net::TcpStream::connect(&target).unwrap();
                let id = counted.fetch_add(1, Ordering::SeqCst);
                let upstream = (agent.try_clone().unwrap(), server.try_clone().unwrap());
                for (upstream, (from, to)) in [(true, upstream), (false, (server, agent))] {
                    let (frozen, stopped) = (frozen.clone(), stopped.clone());
                    std::thread::spawn(move || pump(from, to, id, upstream, &frozen, &stopped));
                }
            }
        });
        fn pump(
            mut from: std::net::TcpStream,
            mut to: std::net::TcpStream,
            id: u64,
            upstream: bool,
            frozen_below: &[Arc<AtomicU64>; 2],
            stop: &AtomicBool,
        ) {
            use std::io::{Read, Write};
            from.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
            let mut buf = [0u8; 16 * 1024];
            while !stop.load(Ordering::SeqCst) {
                let read = from.read(&mut buf);
                let frozen = id < frozen_below[0].load(Ordering::SeqCst)
                    || (upstream && id < frozen_below[1].load(Ordering::SeqCst));
                match read {
                    Ok(0) | Err(_) if frozen => std::thread::sleep(Duration::from_millis(200)),
                    Ok(0) => return drop(to.shutdown(std::net::Shutdown::Write)),
                    Ok(_) if frozen => {}
                    Ok(n) => {
                        if to.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => return drop(to.shutdown(std::net::Shutdown::Write)),
                }
            }
        }
        Relay { addr, opened, frozen_below, stop }
    }

    /// Silences every connection open now.
    fn freeze(&self) {
        let opened = self.opened.load(std::sync::atomic::Ordering::SeqCst);
        self.frozen_below[0].store(opened, std::sync::atomic::Ordering::SeqCst);
    }

    /// Silences what the agent sends on every connection open now.
    fn freeze_upstream(&self) {
        let opened = self.opened.load(std::sync::atomic::Ordering::SeqCst);
        self.frozen_below[1].store(opened, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A channel that died without a word (no close, no reset: a NAT that forgot it) does not
/// send a reachable agent offline or hold its run: nothing heard on it for 45 s, the agent's
/// next run (at its one-minute interval) goes over gRPC at once, and converges online. The
/// publish nudge that went into the dead channel is lost; the interval still comes.
#[test]
fn a_channel_that_died_silently_is_not_given_the_next_run() {
    let mut f = Fleet::new("push-silent");
    f.use_server_settings("checkin_interval: 60s\n");
    f.write_config(&[("nodes.vgo", NODES), ("modules/app.vgo", "resources: []\n")]);
    f.start_server();
    f.enroll("web1");
    let relay = Relay::start(&f.agent_addr);
    let d = Daemon::start_behind(&f, "web1", &relay);
    let runs = |f: &Fleet| json(&f.cli(&["runs", "list", "-o", "json"], "")).as_array().unwrap().len();
    assert_eq!(runs(&f), 1, "{}", d.text());

    relay.freeze();
    publish_file(&f, "late");
    // At most 66 s (the interval and its jitter); a call given to the dead channel would wait
    // two minutes for an answer first.
    d.wait_for("the next run, online", Duration::from_secs(150), || f.root("web1").join("etc/late").exists());
    assert!(d.logged("quiet too long"), "{}", d.text());
    wait_for("its report", Duration::from_secs(10), || runs(&f) == 2);
}

/// A call that leaves on a channel and gets no answer (the channel stopped carrying what the
/// agent sends, just after a nudge came through) is not taken for an unreachable server: once
/// the channel is given up, the check-in is signed again and sent over gRPC, and the run
/// converges online.
#[test]
fn a_call_lost_on_the_channel_is_made_again_over_grpc() {
    let (f, _) = serving_web1("push-lost-call");
    let relay = Relay::start(&f.agent_addr);
    let d = Daemon::start_behind(&f, "web1", &relay);

    relay.freeze_upstream();
    publish_file(&f, "again");
    // The nudge arrives, the check-in goes into the channel and is never answered; the
    // channel is given up when it has been silent for 70 s.
    d.wait_for("the run, online", Duration::from_secs(150), || f.root("web1").join("etc/again").exists());
    assert!(d.logged("nudged by the server") && d.logged("no answer on the push channel"), "{}", d.text());
    assert!(!d.logged("applying the bundle kept"), "not an offline run: {}", d.text());
}

/// A server restart closes every channel; agents open a new one without waiting for their
/// next run (after 5–30 s, so not all at once), and nudges reach them again. A server still
/// down at the first try is tried again after 10–60 s, and so on, doubling.
#[test]
fn agents_reopen_the_channel_after_a_server_restart() {
    let (mut f, _) = serving_web1("push-restart");
    assert_code(&f.run_once("web1"), 0);
    let d = Daemon::start(&f, "web1");
    let opened = || d.log.count("holding a push channel");
    wait_for("the push channel", Duration::from_secs(30), || opened() == 1);
    f.stop_server();
    d.wait_for("the channel closed", Duration::from_secs(10), || d.logged("push channel closed"));
    d.wait_for("a first try to reopen it", Duration::from_secs(40), || d.logged("no push channel"));
    f.restart_server_after_stop();
    d.wait_for("a new channel", Duration::from_secs(80), || opened() == 2);
    publish_file(&f, "after");
    wait_for("the file published after the restart", Duration::from_secs(20), || {
        f.root("web1").join("etc/after").exists()
    });
}

/// `agent.push: false` keeps the agent on its interval: it opens no channel, and a publish
/// does not reach it early.
#[test]
fn an_agent_with_push_off_holds_no_channel() {
    let (f, _) = serving_web1("push-off");
    let config = f.dir.join("agent.yaml");
    std::fs::write(&config, "agent:\n  push: false\n").unwrap();
    let config = config.display().to_string();
    let d = Daemon::start_with(&f, "web1", &[("VIGO_CONFIG", &config)]);
    wait_for("the first run", Duration::from_secs(30), || {
        let out = f.cli(&["runs", "list", "-o", "json"], "");
        out.status.success() && json(&out).as_array().is_some_and(|runs| !runs.is_empty())
    });
    publish_file(&f, "early");
    std::thread::sleep(Duration::from_secs(3));
    assert!(!f.root("web1").join("etc/early").exists(), "no nudge without push");
    assert!(!d.logged("push channel"), "{}", d.text());
}

/// A server with an empty module for web1, and web1 enrolled (its agent directory).
fn serving_web1(name: &str) -> (Fleet, std::path::PathBuf) {
    let mut f = Fleet::new(name);
    f.write_config(&[("nodes.vgo", NODES), ("modules/app.vgo", "resources: []\n")]);
    f.start_server();
    let agent = f.enroll("web1");
    (f, agent)
}

/// The foreign client (tests/foreign/vigo_client.py) running `mode` for `agent`, once it
/// said "open" (its channel was accepted).
struct ForeignWatch {
    python: Child,
    out: BufReader<std::process::ChildStdout>,
}

impl ForeignWatch {
    fn open(f: &Fleet, mode: &str, agent: &std::path::Path) -> ForeignWatch {
        let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut python = std::process::Command::new("/usr/bin/python3")
            .arg(here.join("tests/foreign/vigo_client.py"))
            .arg(mode)
            .arg(here.join("proto"))
            .arg(&f.agent_addr)
            .arg(f.base().join("tls/ca"))
            .arg(agent)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect(
                "/usr/bin/python3 with grpcio and cryptography is required (scripts/test-all.sh installs them)",
            );
        let mut out = BufReader::new(python.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let mut watch = ForeignWatch { python, out };
        if line.trim() != "open" {
            let _ = watch.python.kill();
            panic!("the foreign client did not get its channel: {line}\n{}", watch.stderr());
        }
        watch
    }

    fn stderr(&mut self) -> String {
        let mut err = String::new();
        std::io::Read::read_to_string(&mut self.python.stderr.take().unwrap(), &mut err).unwrap();
        err
    }

    /// Its JSON result, once it ended.
    fn result(&mut self) -> serde_json::Value {
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        let status = self.python.wait().unwrap();
        let err = self.stderr();
        assert!(status.success(), "foreign client failed: {line}\n{err}");
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("foreign client output: {line}\n{err}"))
    }
}

impl Drop for ForeignWatch {
    fn drop(&mut self) {
        let _ = self.python.kill();
        let _ = self.python.wait();
    }
}

#[test]
fn a_foreign_client_verifies_a_nudge_with_the_ca_and_cannot_replay_its_watch() {
    let (f, agent) = serving_web1("push-foreign");
    let mut watch = ForeignWatch::open(&f, "watch", &agent);
    assert_code(&f.cli(&["config", "publish"], ""), 0);
    let answer = watch.result();
    assert_eq!(answer["refused"], "", "{answer}");
    assert_eq!(answer["ping_answered"], true, "{answer}");
    assert_eq!(answer["verified"], true, "{answer}");
    assert_eq!(answer["reason"], "publish");
    let replay = answer["replay_refused"].as_str().unwrap();
    assert!(replay.contains("replayed"), "a Watch envelope works once: {answer}");
    // Calls on the channel are answered as over gRPC, and spend the same sequence numbers.
    assert_eq!(answer["check_in"][0], 0, "a carried check-in is answered: {answer}");
    assert_eq!(answer["check_in"][1], 64, "with the bundle's hash: {answer}");
    assert_eq!(answer["check_in_replayed"][0], 16, "UNAUTHENTICATED: {answer}");
    assert!(answer["check_in_replayed"][1].as_str().unwrap().contains("replayed"), "{answer}");
    assert_eq!(answer["wrong_method"], 16, "signed for another method: {answer}");
    assert_eq!(answer["not_carried"], 12, "UNIMPLEMENTED: renewals go over gRPC: {answer}");
    assert_eq!(answer["replayed_over_grpc"], "UNAUTHENTICATED", "{answer}");
}

/// Revoking an envoy closes its push channel at once, not at the next turn of the idle timer
/// (the client sends nothing, so without the revocation it would be cut only after 60 s).
#[test]
fn revoking_an_envoy_closes_its_push_channel_at_once() {
    let (f, agent) = serving_web1("push-revoke");
    let mut watch = ForeignWatch::open(&f, "watch-hold", &agent);
    let shown = json(&f.cli(&["envoys", "show", "web1", "-o", "json"], ""));
    assert_eq!(shown["push_channel"], true, "{shown}");
    assert_eq!(json(&f.cli(&["fleet", "status", "-o", "json"], ""))["push_channels"], 1);
    let revoked_at = Instant::now();
    assert_code(&f.cli(&["envoys", "revoke", "web1"], ""), 0);
    let answer = watch.result();
    assert_eq!(answer["closed"], true, "{answer}");
    let took = revoked_at.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "closed at revocation, not by the idle cut-off: {took:?} {answer}"
    );
    let shown = json(&f.cli(&["envoys", "show", "web1", "-o", "json"], ""));
    assert_eq!(shown["push_channel"], false, "{shown}");
    assert_eq!(json(&f.cli(&["fleet", "status", "-o", "json"], ""))["push_channels"], 0);
}

/// Push channels have their own cap: with room for one envoy connection, an agent holding its
/// channel still checks in (a channel counted among the calls would take the only slot).
#[test]
fn a_held_push_channel_takes_no_slot_from_check_ins() {
    let mut f = Fleet::new("push-slots");
    f.use_server_settings("limits:\n  agent_connections: 1\n");
    f.write_config(&[("nodes.vgo", NODES), ("modules/app.vgo", "resources: []\n")]);
    f.start_server();
    let agent = f.enroll("web1");
    let _held = ForeignWatch::open(&f, "watch-hold", &agent);
    assert_code(&f.run_once("web1"), 0);
}

/// Fifty pings in one go (each answer would cost the server a TLS record and a flush) close
/// the channel after at most four answers (pings may queue behind a slow call).
#[test]
fn a_ping_flood_closes_the_push_channel() {
    let (f, agent) = serving_web1("push-flood");
    let answer = ForeignWatch::open(&f, "watch-flood", &agent).result();
    assert_eq!(answer["closed"], true, "{answer}");
    assert!(answer["frames"].as_u64().unwrap() <= 4, "at most four pings answered: {answer}");
    assert!(answer["seconds"].as_f64().unwrap() < 10.0, "closed at once: {answer}");
}

/// A call announced over the 256 KiB a call may be closes the channel before the server
/// allocates anything for it; so does a frame that is not a call. The server goes on serving.
#[test]
fn an_oversized_or_garbled_call_closes_the_push_channel() {
    let (f, agent) = serving_web1("push-oversized");
    for mode in ["watch-oversized", "watch-garbage"] {
        let answer = ForeignWatch::open(&f, mode, &agent).result();
        assert_eq!(answer["closed"], true, "{mode}: {answer}");
        assert_eq!(answer["frames"], 0, "{mode}: {answer}");
        assert!(answer["seconds"].as_f64().unwrap() < 10.0, "{mode}: closed at once: {answer}");
    }
    assert_code(&f.run_once("web1"), 0);
}

/// One frame (4-byte length, body) read whole, or None when the server closed first.
async fn read_frame<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let len = s.read_u32().await.ok()? as usize;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.ok()?;
    Some(body)
}

/// Opens a push connection showing `identity`, sends `first` raw, returns what came back.
async fn push_attempt(
    addr: &str,
    identity: (rustls::pki_types::CertificateDer<'static>, rustls::pki_types::PrivateKeyDer<'static>),
    first: &[u8],
) -> Option<Vec<u8>> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = attack::tls_connect(tcp, attack::tls_client(Some(identity), b"vigo-push/2")).await.ok()?;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"vigo-push/2"[..]), "the server offers push");
    attack::send(&mut tls, first).await;
    tokio::time::timeout(Duration::from_secs(20), read_frame(&mut tls))
        .await
        .expect("the server answers or closes")
}

/// A stranger's certificate gets a closed connection; an envoy's connection that sends
/// garbage, an oversized length or nothing at all is refused or closed, and the server keeps
/// serving agents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_push_channel_gives_strangers_garbage_and_silence_nothing() {
    let (f, agent) = serving_web1("push-attack");
    let envoy = || attack::agent_identity(&agent);
    let frame = |body: &[u8]| [&(body.len() as u32).to_be_bytes()[..], body].concat();

    let (cert, key, _) = attack::self_signed_identity();
    let stranger = push_attempt(&f.agent_addr, (cert, key), &frame(b"anything")).await;
    assert!(stranger.is_none(), "a self-signed certificate gets nothing: {stranger:?}");

    let garbage = push_attempt(&f.agent_addr, envoy(), &frame(b"\xff\xff not a message")).await.unwrap();
    assert!(String::from_utf8_lossy(&garbage).contains("no Watch envelope"), "{garbage:?}");
    let huge = push_attempt(&f.agent_addr, envoy(), &u32::MAX.to_be_bytes()).await.unwrap();
    assert!(String::from_utf8_lossy(&huge).contains("at most 4096"), "{huge:?}");
    let started = Instant::now();
    let silent = push_attempt(&f.agent_addr, envoy(), &[]).await;
    assert!(silent.is_none() && started.elapsed() >= Duration::from_secs(9), "closed after 10 s of silence");

    let run = tokio::task::spawn_blocking(move || {
        let out = f.run_once("web1");
        drop(f);
        out
    });
    assert_code(&run.await.unwrap(), 0);
}
