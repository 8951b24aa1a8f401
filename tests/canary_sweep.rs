//! The canary sweep: one run of the whole product (server, two agents, enrollment, apply,
//! rotation, a `secret:` ref removed from a file, a failing exec) with a random canary planted
//! as several secrets, then a search for it — raw, hex, base64, URL-encoded, JSON- and
//! shell-escaped — everywhere it must not be. Only the files whose job is to hold it may; the
//! test fails listing every other place it was found.
//!
//! A binary canary (not UTF-8: NUL, 0xff, random bytes, two random text runs) goes the same
//! way: set with `secrets set raw --from-file`, written by a file resource, fed to an exec on
//! stdin and as its secret_file, printed by that exec raw, with `base64` and with `xxd -p`, and
//! fetched with `vigo-agent resolve --out`. It is searched raw, as report text reads it
//! (lossily), by either text run, in hex, base64 and URL-encoding, and in the wrapped lines of
//! `xxd -p`, `base64` and `openssl base64`.
//!
//! The audit sinks run through it all: a JSON Lines file, an HTTPS webhook whose signing key is
//! itself a canary, and syslog over TCP to a receiver that keeps the raw bytes; what each of
//! them received is swept too.

mod common;

use std::path::{Path, PathBuf};

use common::fleet::Fleet;
use common::sinks::{seqs_in, test_ca, wait_until, RawReceiver, WebhookReceiver};
use common::*;

fn random_alnum(n: usize) -> String {
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
        ^ u64::from(std::process::id()) << 20;
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789"[(x % 55) as usize] as char
        })
        .collect()
}

/// Every form the canary could leak in: raw, hex (both cases), URL-encoded (as the common
/// encoders write it), JSON- and shell-escaped (text only), base64 / base64url at all three
/// alignments (the stable middle of each encoding), and the lines of hex and base64 as `xxd
/// -p`, `base64` and `openssl base64` wrap them. The agent's scrubber removes the same list
/// (`src/placeholder/forms.rs`).
fn needles(canary: &[u8]) -> Vec<(String, Vec<u8>)> {
    use base64::Engine;
    let mut out = vec![("raw".to_string(), canary.to_vec())];
    let hex: String = canary.iter().map(|b| format!("{b:02x}")).collect();
    out.push(("hex".into(), hex.clone().into_bytes()));
    out.push(("HEX".into(), hex.to_uppercase().into_bytes()));
    let percent = |keep: &dyn Fn(u8) -> bool, lower: bool| -> String {
        canary
            .iter()
            .map(|&b| match b {
                b if keep(b) => (b as char).to_string(),
                b if lower => format!("%{b:02x}"),
                b => format!("%{b:02X}"),
            })
            .collect()
    };
    out.push(("url-encoded".into(), percent(&|b| b.is_ascii_alphanumeric(), false).into_bytes()));
    out.push(("url-encoded lower".into(), percent(&|b| b.is_ascii_alphanumeric(), true).into_bytes()));
    let python_quote = |b: u8| b.is_ascii_alphanumeric() || b"-._~/".contains(&b);
    out.push(("url-encoded keeping /".into(), percent(&python_quote, false).into_bytes()));
    if let Ok(text) = std::str::from_utf8(canary) {
        let json = serde_json::to_string(text).unwrap();
        out.push(("json".into(), json.as_bytes()[1..json.len() - 1].to_vec()));
        out.push(("json \\/".into(), json[1..json.len() - 1].replace('/', "\\/").into_bytes()));
        let shell: String = text
            .chars()
            .map(|c| if " &'\"$`\\^!*?[]{}(),;|<>".contains(c) { format!("\\{c}") } else { c.to_string() })
            .collect();
        out.push(("shell-escaped".into(), shell.into_bytes()));
    }
    for (name, engine) in [
        ("base64", &base64::engine::general_purpose::STANDARD),
        ("base64url", &base64::engine::general_purpose::URL_SAFE),
    ] {
        for offset in 0..3 {
            let mut data = vec![b'x'; offset];
            data.extend_from_slice(canary);
            let enc = engine.encode(&data);
            let skip = if offset == 0 { 0 } else { 4 };
            let core = &enc[skip..enc.len() - 4];
            out.push((format!("{name}@{offset}"), core.as_bytes().to_vec()));
        }
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(canary);
    for (name, encoded, width) in [("xxd -p", &hex, 60), ("base64", &b64, 76), ("openssl base64", &b64, 64)] {
        if encoded.len() > width {
            for (i, line) in encoded.as_bytes().chunks(width).enumerate() {
                out.push((format!("{name} line {i}"), line.to_vec()));
            }
        }
    }
    out
}

/// A DER-like binary canary: NUL and 0xff bytes, random bytes, and two random text runs (the
/// runs are returned too: found anywhere, in any spelling, the value leaked).
fn binary_canary() -> (Vec<u8>, [String; 2]) {
    let runs = [format!("Bn{}", random_alnum(20)), format!("Bz{}", random_alnum(20))];
    let mut v = vec![0x30, 0x82, 0x00, 0xc8, 0x00, 0xff];
    v.extend_from_slice(runs[0].as_bytes());
    // A piece between newlines too short to be a needle of its own: only scrubbing the value
    // whole removes it (the U+FFFD check below sees it otherwise).
    v.extend_from_slice(&[0xfe, 0x00, b'\n', 0xff, b'\n', 0xff, 0xc3, 0x28]);
    let mut x = u64::from_le_bytes(random_alnum(8).as_bytes().try_into().unwrap()) | 1;
    for _ in 0..140 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push((x >> 32) as u8);
    }
    v.extend_from_slice(&[0x00, 0xff]);
    v.extend_from_slice(runs[1].as_bytes());
    v.push(0xff);
    (v, runs)
}

/// The binary canary's needles: its forms, how a report's text reads it (lossily, with no
/// neighbour: enough for the middle of it, which is all random), and each text run.
fn binary_needles(canary: &[u8], runs: &[String]) -> Vec<(String, Vec<u8>)> {
    let mut out = needles(canary);
    let lossy = String::from_utf8_lossy(&canary[1..canary.len() - 1]).into_owned();
    out.push(("lossy".into(), lossy.into_bytes()));
    for (i, run) in runs.iter().enumerate() {
        out.push((format!("text run {i}"), run.as_bytes().to_vec()));
    }
    out
}

struct Sweep {
    needles: Vec<(String, Vec<u8>)>,
    hits: Vec<String>,
}

impl Sweep {
    fn check(&mut self, place: &str, bytes: &[u8]) {
        for (form, n) in &self.needles {
            if bytes.windows(n.len()).any(|w| w == n.as_slice()) {
                self.hits.push(format!("{place} ({form})"));
            }
        }
    }

    fn files(&mut self, dir: &Path, allowed: &[PathBuf]) {
        for f in files_under(dir) {
            if allowed.contains(&f) {
                continue;
            }
            if let Ok(bytes) = std::fs::read(&f) {
                self.check(&f.display().to_string(), &bytes);
            }
        }
    }
}

const NODES: &str = r#"
envoys:
  - match: "web*"
    roles: [web]
    vars:
      motto: "secret:sweep/var"
      removable: "secret:sweep/removed"
  - match: "db*"
    roles: [db]
"#;

/// Exec commands record their own environment and command line (the processes the agent
/// started) under the root, so the sweep can search them.
const WEB: &str = r#"
resources:
  - name: app-dir
    type: directory
    target_path: /etc/app
  - name: peek
    type: exec
    command: "cat ROOT/etc/app/secret.conf ROOT/etc/app/removable.conf ROOT/etc/app/cert.der; true"
  - name: app-secret
    type: file
    target_path: /etc/app/secret.conf
    content: "secret:sweep/file"
    mode: "0600"
    depends_on: [app-dir, peek]
    watch_secret: ["sweep/file"]
    notify: [use-stdin]
  - name: app-removable
    type: file
    target_path: /etc/app/removable.conf
    content: "user=app\npassword={{ .Vars.removable }}\n"
    mode: "0644"
    depends_on: [app-dir, peek]
  - name: app-motto
    type: file
    target_path: /etc/app/motto
    content: "motto={{ .Vars.motto }}\n"
    depends_on: [app-dir]
  - name: use-stdin
    type: exec
    command: "cat /proc/$$/environ > ROOT/proc-stdin.environ; cat /proc/$$/cmdline > ROOT/proc-stdin.cmdline; cat; cat >&2 < /dev/null"
    stdin: "secret:sweep/stdin"
    when: changed
  - name: use-secret-file
    type: exec
    command: "cat /proc/$$/environ > ROOT/proc-file.environ; cat /proc/$$/cmdline > ROOT/proc-file.cmdline; cat {{secret_file}}; cat {{secret_file}} >&2"
    secret_file: "secret:sweep/secret-file"
    creates: /etc/app/secret-file-done
  - name: failing-exec
    type: exec
    command: "cat >&2; exit 3"
    stdin: "secret:sweep/stdin"
  - name: app-pem
    type: file
    target_path: /etc/app/key.pem
    content: "secret:sweep/pem"
    mode: "0600"
    depends_on: [app-dir]
  - name: app-plain
    type: file
    target_path: /etc/app/plain
    content: "plain\n"
    depends_on: [app-dir]
  - name: pem-tail
    type: exec
    command: "tail -n 2 {{secret_file}}; exit 4"
    secret_file: "secret:sweep/pem"
  - name: app-der
    type: file
    target_path: /etc/app/cert.der
    content: "secret:sweep/der"
    depends_on: [app-dir, peek]
  - name: der-printed
    type: exec
    command: "cat; cat {{secret_file}} > ROOT/der-fed; base64 {{secret_file}}; xxd -p {{secret_file}}; exit 5"
    stdin: "secret:sweep/der"
    secret_file: "secret:sweep/der"
"#;

const DB: &str = r#"
resources:
  - name: dan
    type: user
    username: dan
    password: "secret:sweep/password"
"#;

#[test]
fn canary_appears_only_where_it_is_meant_to() {
    let canary = format!("Cy{}+/=&", random_alnum(22));
    let rotated = format!("Rt{}+/=&", random_alnum(22));
    let mut f = Fleet::new("sweep");
    for key in
        ["sweep/file", "sweep/stdin", "sweep/secret-file", "sweep/password", "sweep/var", "sweep/removed"]
    {
        f.set_secret(key, &format!("{canary}{}", key.len()));
    }
    // A multi-line value (a key file) leaks line by line: through a line diff of a file that
    // held it, and through a command printing its last lines.
    let pem = format!("-----BEGIN TEST KEY-----\n{canary}L1\n{canary}L2\n-----END TEST KEY-----\n");
    assert_code(&f.cli(&["secrets", "set", "raw", "sweep/pem", "--from-file", "/dev/stdin"], &pem), 0);
    // The binary canary goes in from a file, exactly as it is; the file goes before the sweep.
    let (der, der_runs) = binary_canary();
    let (der2, der2_runs) = binary_canary();
    let der_file = f.dir.join("der-input");
    std::fs::write(&der_file, &der).unwrap();
    let der_set =
        f.cli(&["secrets", "set", "raw", "sweep/der", "--from-file", der_file.to_str().unwrap()], "");
    assert_code(&der_set, 0);
    std::fs::remove_file(&der_file).unwrap();
    let roots = [f.root("web1"), f.root("db1")];
    std::fs::create_dir_all(roots[0].join("etc/app")).unwrap();
    std::fs::write(roots[0].join("etc/app/plain"), &pem).unwrap();
    let web = WEB.replace("ROOT", roots[0].to_str().unwrap());
    f.write_config(&[("nodes.vgo", NODES), ("modules/web.vgo", &web), ("modules/db.vgo", DB)]);
    f.extra_env.push(("VIGO_LOG".into(), "debug".into()));
    // Every kind of audit sink, the webhook keyed with a canary.
    let hook_key = format!("{canary}hook");
    f.set_secret("sweep/hook-key", &hook_key);
    let ca = test_ca(&f.dir.join("receiver-ca"));
    let webhook = WebhookReceiver::start(&ca, hook_key.as_bytes());
    let syslog = RawReceiver::start();
    let sink_file = f.dir.join("sink-audit.jsonl");
    f.use_server_settings(&format!(
        "integrations:\n  retry_max: 2s\n  file: [{{name: file, path: '{}'}}]\n  webhook: [{{name: hook, url: '{}', key: 'secret:sweep/hook-key', ca_file: '{}'}}]\n  syslog: [{{name: tcp, address: '127.0.0.1:{}', transport: tcp}}]\n",
        sink_file.display(),
        webhook.url(),
        ca.join("ca.pem").display(),
        syslog.port
    ));
    f.start_server();
    let mut outputs = Vec::new();
    for name in ["web1", "db1"] {
        f.enroll(name);
    }
    // db1's root needs the account files the user executor edits.
    let etc = roots[1].join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(etc.join("shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
    std::fs::write(etc.join("group"), "root:x:0:\n").unwrap();

    let first = f.run_once("web1");
    assert_code(&first, 1); // the failing exec fails, the rest converges
    assert!(text(&first).contains("failed"), "{}", text(&first));
    outputs.push(first);
    let db = f.run_once("db1");
    assert_code(&db, 0);
    outputs.push(db);
    // Rotation: a new value for the file key, and the agents run again. `peek` prints the file
    // still holding the old value, which this run was not given.
    outputs.push(f.cli(&["secrets", "set", "raw", "sweep/file"], &rotated));
    // The binary value rotates too: `peek` prints the old one from cert.der before it goes.
    std::fs::write(&der_file, &der2).unwrap();
    let der_rotated =
        f.cli(&["secrets", "set", "raw", "sweep/der", "--from-file", der_file.to_str().unwrap()], "");
    assert_code(&der_rotated, 0);
    std::fs::remove_file(&der_file).unwrap();
    outputs.push(der_rotated);
    let after_rotation = f.run_once("web1");
    assert!(
        text(&after_rotation).contains("content changed (secret:sweep/file)"),
        "{}",
        text(&after_rotation)
    );
    outputs.push(after_rotation);
    outputs.push(f.run_once("db1"));
    // Removal: removable.conf no longer refers to its secret; the agent is never given the
    // value again, yet the file (printed by `peek`, and diffed) holds it until this run.
    let removed_web = web.replace("{{ .Vars.removable }}", "set-by-hand");
    let removed_nodes = NODES.replace("      removable: \"secret:sweep/removed\"\n", "");
    f.write_config(&[("nodes.vgo", &removed_nodes), ("modules/web.vgo", &removed_web)]);
    assert_code(&f.cli(&["config", "publish"], ""), 0);
    let after_removal = f.run_once("web1");
    assert!(
        text(&after_removal).contains("content changed (secret-bearing file, diff withheld)"),
        "{}",
        text(&after_removal)
    );
    outputs.push(after_removal);
    outputs.push(f.agent("db1", &["resolve", "sweep/file"]));
    let resolved_der = roots[0].join("resolved.der");
    let resolved = f.agent("web1", &["resolve", "sweep/der", "--out", resolved_der.to_str().unwrap()]);
    assert_code(&resolved, 0);
    outputs.push(resolved);
    outputs.push(der_set);
    let runs = f.cli(&["runs", "list", "-n", "50"], "");
    for id in
        String::from_utf8_lossy(&runs.stdout).lines().skip(1).filter_map(|l| l.split_whitespace().next())
    {
        outputs.push(f.cli(&["runs", "show", id], ""));
    }
    outputs.push(runs);
    // Every sink has every row before the server stops.
    let head = {
        let out = run_in(&f.base(), "vigocli", &["audit", "tail", "-n", "1", "--json"], "");
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["seq"].as_i64().unwrap()
    };
    let raw_syslog = || String::from_utf8_lossy(&syslog.bytes.lock().unwrap()).into_owned();
    let file_text = || std::fs::read_to_string(&sink_file).unwrap_or_default();
    wait_until(30, "the file sink", || seqs_in(&file_text()).contains(&head), file_text);
    wait_until(30, "the webhook", || webhook.seqs().contains(&head), || format!("{:?}", webhook.seqs()));
    wait_until(30, "the syslog receiver", || raw_syslog().contains(&format!("\"seq\":{head},")), raw_syslog);
    assert!(webhook.seen.lock().unwrap().bodies.iter().all(|(_, good)| *good), "webhook signatures");
    assert!(file_text().contains("secret.epoch_resolved") && raw_syslog().contains("secret.epoch_resolved"));
    let server_pid = f.server.as_ref().unwrap().id();
    let proc_env = std::fs::read(format!("/proc/{server_pid}/environ")).unwrap();
    let proc_cmd = std::fs::read(format!("/proc/{server_pid}/cmdline")).unwrap();
    f.stop_server();

    // The sweep is only meaningful if the values really arrived where they belong.
    let secret_conf = roots[0].join("etc/app/secret.conf");
    let motto = roots[0].join("etc/app/motto");
    assert_eq!(std::fs::read_to_string(&secret_conf).unwrap(), rotated);
    let removable = std::fs::read_to_string(roots[0].join("etc/app/removable.conf")).unwrap();
    assert_eq!(removable, "user=app\npassword=set-by-hand\n");
    assert!(std::fs::read_to_string(&motto).unwrap().contains(&canary));
    assert!(roots[0].join("proc-stdin.environ").exists() && roots[0].join("proc-file.cmdline").exists());
    let shadow = std::fs::read_to_string(roots[1].join("etc/shadow")).unwrap();
    assert!(shadow.contains("dan:$6$"), "{shadow}");
    let (der_file, der_fed) = (roots[0].join("etc/app/cert.der"), roots[0].join("der-fed"));
    for place in [&der_file, &der_fed, &resolved_der] {
        assert_eq!(std::fs::read(place).unwrap(), der2, "{}", place.display());
    }

    let mut sweep = Sweep { needles: needles(canary.as_bytes()), hits: vec![] };
    sweep.needles.extend(needles(rotated.as_bytes()));
    sweep.needles.extend(binary_needles(&der, &der_runs));
    sweep.needles.extend(binary_needles(&der2, &der2_runs));
    assert_eq!(std::fs::read_to_string(roots[0].join("etc/app/plain")).unwrap(), "plain\n");
    let allowed = vec![secret_conf, motto, roots[0].join("etc/app/key.pem"), der_file, der_fed, resolved_der];
    for dir in [
        f.base(),
        f.agent_base("web1"),
        f.agent_base("db1"),
        roots[0].clone(),
        roots[1].clone(),
        f.capture_dir(),
    ] {
        sweep.files(&dir, &allowed);
    }
    sweep.check("server log", &std::fs::read(f.server_log()).unwrap());
    sweep.check("file sink", &std::fs::read(&sink_file).unwrap());
    sweep.check("syslog receiver (raw bytes)", &syslog.bytes.lock().unwrap());
    for (i, (body, _)) in webhook.seen.lock().unwrap().bodies.iter().enumerate() {
        sweep.check(&format!("webhook body #{i}"), body);
    }
    sweep.check("server /proc environ", &proc_env);
    sweep.check("server /proc cmdline", &proc_cmd);
    for (i, o) in outputs.iter().enumerate() {
        sweep.check(&format!("process output #{i} stdout"), &o.stdout);
        sweep.check(&format!("process output #{i} stderr"), &o.stderr);
        // Only a piece of the binary canary read as text puts U+FFFD in these outputs (a
        // piece too short to be a needle of its own).
        for (stream, bytes) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
            if String::from_utf8_lossy(bytes).contains(char::REPLACEMENT_CHARACTER) {
                sweep.hits.push(format!("process output #{i} {stream} (U+FFFD: binary read as text)"));
            }
        }
    }
    let captured: Vec<String> = std::fs::read_dir(f.capture_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for method in ["Enroll", "CheckIn", "ResolveSecrets", "ReportRun"] {
        for direction in ["request", "response"] {
            let tag = format!("-{method}-{direction}.bin");
            assert!(captured.iter().any(|n| n.ends_with(&tag)), "no captured {method} {direction}");
        }
    }
    assert!(sweep.hits.is_empty(), "canary found in:\n  {}", sweep.hits.join("\n  "));
}
