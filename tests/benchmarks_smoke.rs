//! The benchmarks must keep running: each example runs once at a tiny size and must print a JSON
//! summary with zero errors. No timing is asserted (numbers live in docs/BENCHMARKS.md).

use std::path::PathBuf;
use std::process::Command;

/// The example's executable, `examples/NAME` beside the tested `vigo`. `cargo test` alone
/// builds examples only as test harnesses, so the suite runs `cargo build --examples` first
/// (scripts/test-all.sh); a missing binary fails the test rather than skipping it.
fn example(name: &str) -> PathBuf {
    let vigo = PathBuf::from(env!("CARGO_BIN_EXE_vigo"));
    let path = vigo.parent().expect("target dir").join("examples").join(name);
    assert!(path.is_file(), "{} is not built: run `cargo build --examples` before the tests", path.display());
    path
}

/// Runs the example and returns the JSON summary on its last line.
fn last_json_line(name: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(example(name)).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{name} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{name}: last line is not JSON ({e}): {last}"))
}

/// A benchmark that drives the tested `vigo` and counts its errors: there must be none.
fn summary(name: &str, args: &[&str]) -> serde_json::Value {
    let v = last_json_line(name, &[args, &["--vigo", env!("CARGO_BIN_EXE_vigo")]].concat());
    assert_eq!(v["errors"], 0, "{name}: {v}");
    v
}

#[test]
fn fleet_bench_runs_at_a_tiny_size() {
    let args = ["--envoys", "8", "--resources", "6", "--secrets", "2", "--concurrency", "4"];
    let v = summary(
        "fleet_bench",
        &[&args[..], &["--duration", "1", "--audit-rows", "2000", "--watchers", "4"]].concat(),
    );
    assert!(v["cycles"].as_u64().unwrap() > 0, "{v}");
    assert!(v["audit"]["chain_rows"].as_u64().unwrap() > 2000, "{v}");
    assert_eq!(v["traits_stored"], 0, "{v}");
    assert_eq!(v["watch"]["nudges_delivered"], 4, "the publish nudged every held channel: {v}");
    assert!(v["watch"]["server_rss_kb_per_idle_channel"].is_number(), "{v}");
    let more = ["--duration", "1", "--audit-rows", "0", "--traits", "--distinct-bundles"];
    let v = summary("fleet_bench", &[&args[..], &more[..]].concat());
    assert!(v["cycles"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["traits_stored"], 8, "every envoy's traits reached the server: {v}");
    assert_eq!(v["distinct_bundles"], true, "{v}");
}

#[test]
fn cycle_floor_prints_every_cost_it_sums() {
    let v = last_json_line("cycle_floor", &["--iterations", "20"]);
    let keys =
        ["ed25519_sign_us", "ed25519_verify_us", "x25519_keypair_us", "x25519_agree_us", "cycle_tcp_ms"];
    for key in keys {
        assert!(v[key].as_f64().is_some_and(|x| x > 0.0), "{key}: {v}");
    }
    let crypto = v["cycles_per_s_ceiling_crypto"].as_f64().unwrap();
    let with_tcp = v["cycles_per_s_ceiling_crypto_tcp"].as_f64().unwrap();
    assert!(with_tcp < crypto, "adding the transport must lower the ceiling: {v}");
}

#[test]
fn apply_bench_runs_at_a_tiny_size_without_peers() {
    let v = summary("apply_bench", &["--files", "20", "--runs", "1", "--peers", "none"]);
    assert_eq!(v["files"], 20, "{v}");
    assert!(v["noop"]["median_ms"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["peers"].as_array().unwrap().iter().all(|p| p["run"] == false), "{v}");
}

/// CFEngine and Puppet converge the same files side by side (scripts/test-all.sh installs
/// both; the benchmark itself fails when a named peer is missing). apply_bench checks that each
/// peer's files hold the asked content and mode before it reports a time.
#[test]
fn apply_bench_runs_cfengine_and_puppet_on_the_same_files() {
    let v = summary("apply_bench", &["--files", "5", "--runs", "1", "--peers", "cf-agent,puppet"]);
    for (tool, version) in [("cf-agent", "CFEngine"), ("puppet", "7.")] {
        let p = v["peers"].as_array().unwrap().iter().find(|p| p["tool"] == tool).unwrap();
        assert_eq!(p["run"], true, "{v}");
        assert!(p["version"].as_str().unwrap().contains(version), "{p}");
        for kind in ["create", "noop"] {
            assert!(p[kind]["median_ms"].as_f64().unwrap() > 0.0, "{p}");
            assert!(p[&format!("{kind}_vs_vigo")].as_f64().unwrap() > 0.0, "{p}");
        }
    }
}

#[test]
fn login_timing_runs_at_a_tiny_size() {
    let v = summary("login_timing", &["--rounds", "5"]);
    for kind in ["wrong_password", "unknown_user", "disabled_user"] {
        assert!(v[kind]["median_us"].as_f64().unwrap() > 0.0, "{v}");
    }
}

#[test]
fn console_bench_runs_at_a_tiny_size() {
    let v = summary(
        "console_bench",
        &["--envoys", "50", "--runs", "200", "--audit-rows", "500", "--requests", "2"],
    );
    assert!(v["pages"]["dashboard"]["median_ms"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["pages"]["audit oldest"]["max_ms"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["pages"]["api envoys where two traits"]["median_ms"].as_f64().unwrap() > 0.0, "{v}");
    assert_eq!(v["errors"], 0, "every page and API call answered as expected: {v}");
}

#[test]
fn apply_bench_runs_mixed_resource_types_at_a_tiny_size() {
    let v = summary("apply_bench", &["--files", "50", "--runs", "1", "--peers", "none", "--mix", "mixed"]);
    assert_eq!(v["mix"], "mixed", "{v}");
    assert_eq!(v["resources"], 50, "{v}");
    assert!(v["sysctls"].as_u64().unwrap() > 0, "{v}");
    assert!(v["noop"]["median_ms"].as_f64().unwrap() > 0.0, "{v}");
    assert_eq!(v["noop"]["target_ms"], 50.0, "{v}");
}
