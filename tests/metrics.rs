//! `GET /metrics`: a scrape taken while agents check in passes `promtool check metrics`
//! (Debian's `prometheus` package), carries the families operators alert on, and is allowed
//! only to a token holding `metrics.read`; the optional loopback listener serves it alone.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fleet::Fleet;
use common::sinks::free_port;
use common::*;

const NODES: &str = "envoys:\n  - match: \"web*\"\n    roles: [web]\n";
const WEB: &str = r#"
resources:
  - name: conf
    type: file
    target_path: /etc/app.conf
    content: "secret:app/token"
"#;

/// (status, body) of a GET with curl, the bearer token (if any) read from a file.
fn get(url: &str, ca: &Path, token: Option<&str>, dir: &Path) -> (u16, String) {
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}", "--cacert"]).arg(ca);
    if let Some(t) = token {
        let h = dir.join("auth-header");
        std::fs::write(&h, format!("Authorization: Bearer {t}\n")).unwrap();
        c.arg("-H").arg(format!("@{}", h.display()));
    }
    let out = c.arg(url).output().expect("curl is required (apt-get install curl)");
    assert!(out.status.success(), "curl {url}: {}", text(&out));
    let body = String::from_utf8(out.stdout).unwrap();
    let (body, code) = body.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_string())
}

fn promtool(scrape: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is required (apt-get install prometheus; scripts/test-all.sh installs it)");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(scrape.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "promtool check metrics: {}\n{scrape}", text(&out));
}

/// The value of the sample named exactly `series` (name and labels as written).
fn value(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{series} not in the scrape:\n{scrape}"))
        .parse()
        .unwrap()
}

fn api_token(f: &Fleet, name: &str, role: &str) -> String {
    let out = f.cli(&["api-tokens", "create", "--name", name, "--role", role], "");
    assert_code(&out, 0);
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn a_scrape_under_load_passes_promtool_and_only_metrics_read_may_take_it() {
    let mut f = Fleet::new("metrics");
    f.set_secret("app/token", "tok-Metrics-1");
    f.write_config(&[("nodes.vgo", NODES), ("modules/web.vgo", WEB)]);
    let plain_port = free_port();
    f.use_server_settings(&format!(
        "integrations:\n  file:\n    - name: shipper\n      path: {}\n  metrics:\n    listen: '127.0.0.1:{plain_port}'\n",
        f.dir.join("audit.jsonl").display()
    ));
    f.start_server();
    let ca = f.base().join("tls/ca");
    let url = format!("https://{}/metrics", f.api_addr);

    // Who may scrape: no token 401, a viewer's 403 (naming the permission), an admin's 200.
    let (code, body) = get(&url, &ca, None, f.dir.path());
    assert_eq!(code, 401, "{body}");
    let viewer = api_token(&f, "scrape-viewer", "viewer");
    let (code, body) = get(&url, &ca, Some(&viewer), f.dir.path());
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("metrics.read"), "{body}");
    let compliance = api_token(&f, "scrape-compliance", "compliance");
    assert_eq!(get(&url, &ca, Some(&compliance), f.dir.path()).0, 403);
    let scraper = api_token(&f, "scrape-admin", "admin");

    // Load: four agents checking in, resolving and reporting in a loop, while we scrape.
    let names = ["web1", "web2", "web3", "web4"];
    for n in names {
        f.enroll(n);
    }
    let stop_at = Instant::now() + Duration::from_secs(8);
    let mut scrapes = Vec::new();
    std::thread::scope(|scope| {
        for n in names {
            let f = &f;
            scope.spawn(move || {
                let mut runs = 0;
                while Instant::now() < stop_at && runs < 40 {
                    assert_code(&f.run_once(n), 0);
                    runs += 1;
                }
            });
        }
        while Instant::now() < stop_at {
            let (code, body) = get(&url, &ca, Some(&scraper), f.dir.path());
            assert_eq!(code, 200, "{body}");
            scrapes.push(body);
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    assert!(scrapes.len() >= 4);
    for s in &scrapes {
        promtool(s);
    }
    let (code, last) = get(&url, &ca, Some(&scraper), f.dir.path());
    assert_eq!(code, 200);
    promtool(&last);
    let checkins = value(&last, "vigo_checkins_total{result=\"ok\"}");
    assert!(checkins >= 4.0, "{checkins}");
    assert_eq!(value(&last, "vigo_rpc_duration_seconds_count{method=\"CheckIn\"}"), checkins);
    assert!(value(&last, "vigo_rpc_duration_seconds_bucket{method=\"CheckIn\",le=\"+Inf\"}") >= checkins);
    assert!(
        value(&last, "vigo_runs_total{outcome=\"converged\"}")
            + value(&last, "vigo_runs_total{outcome=\"changed\"}")
            >= 4.0
    );
    assert!(value(&last, "vigo_secret_keys_resolved_total") >= 4.0);
    assert_eq!(value(&last, "vigo_enrollments_total{result=\"ok\"}"), 4.0);
    let envoys: f64 = ["converged", "changed", "failed", "pending", "stale", "never"]
        .iter()
        .map(|s| value(&last, &format!("vigo_envoys{{state=\"{s}\"}}")))
        .sum();
    assert_eq!(envoys, 4.0);
    assert_eq!(value(&last, "vigo_envoys_stale"), 0.0);
    assert!(value(&last, "vigo_audit_head_sequence") > 10.0);
    assert_eq!(value(&last, "vigo_vault_locked"), 0.0, "the fleet's vault is unlocked");
    assert!(
        value(&last, "vigo_audit_sink_last_success_timestamp_seconds{sink=\"shipper\",kind=\"file\"}")
            > 1.7e9
    );
    assert_eq!(value(&last, "vigo_audit_sink_failing{sink=\"shipper\",kind=\"file\"}"), 0.0);
    value(&last, "vigo_audit_sink_backlog_rows{sink=\"shipper\",kind=\"file\"}");
    assert!(value(&last, "vigo_config_epoch") >= 1.0 && value(&last, "vigo_secrets_epoch") >= 1.0);
    assert_eq!(value(&last, "vigo_login_failures_total"), 0.0);
    assert!(value(&last, "process_resident_memory_bytes") > 1e6);
    assert!(value(&last, "process_open_fds") > 5.0);
    value(&last, "process_cpu_seconds_total");
    // No name of a secret, let alone a value, is ever a label.
    assert!(!last.contains("app/token") && !last.contains("tok-Metrics-1"));

    // The loopback listener: /metrics without a token, nothing else.
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-w", "\n%{http_code}"])
        .arg(format!("http://127.0.0.1:{plain_port}/metrics"))
        .output()
        .unwrap();
    let body = String::from_utf8(out.stdout).unwrap();
    assert!(body.ends_with("\n200"), "{body}");
    promtool(body.rsplit_once('\n').unwrap().0);
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://127.0.0.1:{plain_port}/v1/health"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "404");
}

#[test]
fn a_metrics_listener_off_loopback_is_refused_at_load() {
    let mut f = Fleet::new("metrics-bind");
    let config = f.use_server_settings("integrations:\n  metrics:\n    listen: '0.0.0.0:9464'\n");
    let out = Command::new(role("vigosrv"))
        .args(["--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .env("VIGO_BASE_DIR", f.base())
        .output()
        .unwrap();
    assert_code(&out, 1);
    assert!(text(&out).contains("integrations.metrics.listen must be a loopback IP:PORT"), "{}", text(&out));
}
