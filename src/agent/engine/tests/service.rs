//! Service tests run against a stand-in `systemctl` (a shell script that logs its calls and
//! keeps unit state in files), put first on the agent's PATH: no systemd runs here.

use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::json;

use super::*;

/// The stand-in's state directory; installs the stand-in once per test process.
fn standin() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let prefix = "vigo-standin-systemctl-";
        // One per test process; those of finished processes are removed here.
        for old in fs::read_dir(std::env::temp_dir()).unwrap().flatten() {
            let name = old.file_name().to_string_lossy().to_string();
            let pid = name.strip_prefix(prefix).and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|p| !super::super::batch::process_alive(p)) {
                let _ = fs::remove_dir_all(old.path());
            }
        }
        let dir = std::env::temp_dir().join(format!("{prefix}{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("bin")).unwrap();
        let script = format!(
            r#"#!/bin/sh
S={state}
root=""
case "$1" in --root=*) root="$1 "; shift;; esac
verb="$1"; u="${{2:-daemon}}"
echo "$root$verb $u" >> "$S/$u.log"
case "$verb" in
  is-active) [ -e "$S/$u.active" ] && {{ echo active; exit 0; }}; echo inactive; exit 3;;
  is-enabled) [ -e "$S/$u.enabled" ] && {{ echo enabled; exit 0; }}; echo disabled; exit 1;;
  start|restart) touch "$S/$u.active";;
  reload) [ -e "$S/$u.active" ] || {{ echo "not active" >&2; exit 1; }};;
  daemon-reload) ;;
  stop) rm -f "$S/$u.active";;
  enable) touch "$S/$u.enabled";;
  disable) rm -f "$S/$u.enabled";;
  *) echo "unknown verb $verb" >&2; exit 1;;
esac
"#,
            state = dir.display()
        );
        let bin = dir.join("bin/systemctl");
        write_executable(&bin, &script);
        let path = std::env::var("PATH").unwrap_or_default();
        std::env::set_var("PATH", format!("{}:{path}", dir.join("bin").display()));
        dir
    })
}

/// The calls the stand-in saw for one unit (each test uses its own unit name).
fn calls(unit: &str) -> Vec<String> {
    fs::read_to_string(standin().join(format!("{unit}.log")))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn service_restart_once_with_standin_systemctl_for_two_notifiers() {
    let state = standin();
    let unit = "vigo-test-notify";
    fs::write(state.join(format!("{unit}.active")), "").unwrap();
    let dir = TempRoot::new("svc");
    let path = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let mut one = res("conf-one", "file", json!({"target_path": path("one.conf"), "content": "1"}));
    one.notify = vec!["svc".into()];
    let mut two = res("conf-two", "file", json!({"target_path": path("two.conf"), "content": "2"}));
    two.notify = vec!["svc".into()];
    let b = bundle(vec![res("svc", "service", json!({"service": unit, "ensure": "running"})), one, two]);
    // Root "/" with absolute temp paths: the stand-in is the only systemctl touched.
    let r = run(&b, &secrets(&[]), &opts(Path::new("/")));
    assert_eq!(r.results.last().unwrap().name, "svc", "notified service runs after its notifiers");
    let svc = r.result("svc").unwrap();
    assert_eq!(svc.status, ResourceStatus::Changed, "{}", svc.error);
    assert_eq!(svc.diff, format!("restart {unit} (notified by conf-one, conf-two)"));
    assert_eq!(calls(unit), [format!("is-active {unit}"), format!("restart {unit}")]);
    // Nothing changed the second time: no restart.
    let r = run(&b, &secrets(&[]), &opts(Path::new("/")));
    assert_all(&r, ResourceStatus::Unchanged);
    assert_eq!(calls(unit).iter().filter(|c| c.starts_with("restart")).count(), 1);
}

#[test]
fn service_start_and_enable_are_idempotent_with_standin_systemctl() {
    standin();
    let unit = "vigo-test-start";
    let b =
        bundle(vec![res("svc", "service", json!({"service": unit, "ensure": "running", "enable": "true"}))]);
    let r = run(&b, &secrets(&[]), &opts(Path::new("/")));
    assert_eq!(r.results[0].diff, format!("enable {unit}\nstart {unit}"), "{}", r.results[0].error);
    assert_all(&run(&b, &secrets(&[]), &opts(Path::new("/"))), ResourceStatus::Unchanged);
    let mut o = opts(Path::new("/"));
    o.triggered.insert("svc".into());
    let r = run(&b, &secrets(&[]), &o);
    assert_eq!(r.results[0].diff, format!("restart {unit} (a watched secret rotated)"));
    let stop =
        bundle(vec![res("svc", "service", json!({"service": unit, "ensure": "stopped", "enable": false}))]);
    let mut noop = opts(Path::new("/"));
    noop.noop = true;
    assert_all(&run(&stop, &secrets(&[]), &noop), ResourceStatus::WouldChange);
    assert_all(&run(&stop, &secrets(&[]), &opts(Path::new("/"))), ResourceStatus::Changed);
    assert_all(&run(&stop, &secrets(&[]), &opts(Path::new("/"))), ResourceStatus::Unchanged);
    let log = calls(unit);
    assert_eq!(
        log.iter().filter(|c| !c.starts_with("is-")).cloned().collect::<Vec<_>>(),
        [
            format!("enable {unit}"),
            format!("start {unit}"),
            format!("restart {unit}"),
            format!("disable {unit}"),
            format!("stop {unit}"),
        ]
    );
}

#[test]
fn service_stop_of_sshd_is_blocked_with_standin_systemctl() {
    let state = standin();
    fs::write(state.join("sshd.active"), "").unwrap();
    let b = bundle(vec![res("ssh", "service", json!({"service": "sshd", "ensure": "stopped"}))]);
    let r = run(&b, &secrets(&[]), &opts(Path::new("/")));
    assert_eq!(r.results[0].guardrail.as_deref(), Some("protected-service:sshd"));
    assert!(!calls("sshd").iter().any(|c| c.starts_with("stop")));
}

#[test]
fn a_reloaded_service_is_reloaded_not_restarted_and_enabled_is_the_boot_state() {
    let state = standin();
    let unit = "vigo-test-reload";
    fs::write(state.join(format!("{unit}.active")), "").unwrap();
    let dir = TempRoot::new("svc-reload");
    let mut conf =
        res("conf", "file", json!({"target_path": dir.join("app.conf").to_string_lossy(), "content": "1"}));
    conf.notify = vec!["svc".into()];
    let b = bundle(vec![
        res("svc", "service", json!({"service": unit, "ensure": "reloaded", "enabled": true})),
        conf,
    ]);
    let r = run(&b, &secrets(&[]), &opts(Path::new("/")));
    let svc = r.result("svc").unwrap();
    assert_eq!(svc.diff, format!("enable {unit}\nreload {unit} (notified by conf)"), "{}", svc.error);
    assert!(calls(unit).contains(&format!("reload {unit}")));
    assert!(!calls(unit).iter().any(|c| c.starts_with("restart")));
    assert_all(&run(&b, &secrets(&[]), &opts(Path::new("/"))), ResourceStatus::Unchanged);
    let both =
        bundle(vec![res("svc", "service", json!({"service": unit, "enabled": true, "enable": false}))]);
    assert!(run(&both, &secrets(&[]), &opts(Path::new("/"))).results[0].error.contains("disagree"));
}
