//! The benchmarks must keep running: each example runs once at a tiny size and must print a JSON
//! summary with zero errors. No timing is asserted (numbers live in docs/BENCHMARKS.md).
//! `cargo test` builds the examples; they sit in `examples/` beside the tested `vigo` binary.

use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> Option<PathBuf> {
    let vigo = PathBuf::from(env!("CARGO_BIN_EXE_vigo"));
    let path = vigo.parent()?.join("examples").join(name);
    path.is_file().then_some(path)
}

fn summary(name: &str, args: &[&str]) -> Option<serde_json::Value> {
    let Some(exe) = example(name) else {
        eprintln!("skipping: examples/{name} is not built (run `cargo test --all-targets`)");
        return None;
    };
    let out = Command::new(&exe).args(args).arg("--vigo").arg(env!("CARGO_BIN_EXE_vigo")).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{name} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let last = stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("{name}: last line is not JSON ({e}): {last}"));
    assert_eq!(v["errors"], 0, "{name}: {v}");
    Some(v)
}

#[test]
fn fleet_bench_runs_at_a_tiny_size() {
    let args = ["--envoys", "8", "--resources", "6", "--secrets", "2", "--concurrency", "4"];
    let Some(v) = summary("fleet_bench", &[&args[..], &["--duration", "1", "--audit-rows", "2000"]].concat())
    else {
        return;
    };
    assert!(v["cycles"].as_u64().unwrap() > 0, "{v}");
    assert!(v["audit"]["chain_rows"].as_u64().unwrap() > 2000, "{v}");
}

#[test]
fn apply_bench_runs_at_a_tiny_size() {
    let Some(v) = summary("apply_bench", &["--files", "20", "--runs", "1"]) else { return };
    assert_eq!(v["files"], 20, "{v}");
    assert!(v["noop"]["median_ms"].as_f64().unwrap() > 0.0, "{v}");
}
