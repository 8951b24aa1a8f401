//! Apply benchmark: times whole-process `vigo agent apply CONFIG --envoy bench --root ROOT` over a
//! generated config of N file resources (content and mode, under one directory): the first run
//! into an empty root (create) and a second run with nothing to do (noop), each the median of
//! several runs, with the child's peak RSS. The last line on stdout is a JSON summary.
//! Commands and results: docs/BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use argh::FromArgs;
use serde_json::{json, Value};

#[derive(FromArgs)]
/// Whole-process timing of `vigo-agent apply` (see docs/BENCHMARKS.md).
struct Args {
    /// file resources (default 1000)
    #[argh(option, default = "1000")]
    files: usize,
    /// runs of each kind; the median is reported (default 5)
    #[argh(option, default = "5")]
    runs: usize,
    /// the vigo binary (default: the one built next to this example)
    #[argh(option)]
    vigo: Option<PathBuf>,
    /// internal: run the rest of the arguments as one measured child
    #[argh(switch)]
    measure_child: bool,
    /// internal: the measured command line
    #[argh(positional)]
    command: Vec<String>,
}

fn main() {
    let args: Args = argh::from_env();
    let result = if args.measure_child { measure_child(&args.command) } else { bench(&args) };
    if let Err(e) = result {
        eprintln!("apply_bench: {e}");
        std::process::exit(1);
    }
}

/// Runs one command and prints "WALL_SECONDS MAX_RSS_KB". This helper is a fresh process each
/// time, so RUSAGE_CHILDREN holds exactly the one child's peak.
fn measure_child(cmd: &[String]) -> Result<(), String> {
    let (prog, rest) = cmd.split_first().ok_or("no command")?;
    let t = Instant::now();
    let status =
        Command::new(prog).args(rest).stdout(Stdio::null()).status().map_err(|e| format!("{prog}: {e}"))?;
    let wall = t.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("{} exited with {status}", cmd.join(" ")));
    }
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map_err(|e| e.to_string())?;
    println!("{wall} {}", usage.max_rss());
    Ok(())
}

fn write_config(dir: &Path, n: usize) -> Result<(), String> {
    std::fs::create_dir_all(dir.join("modules")).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("nodes.vgo"), "envoys:\n  - match: bench\n    roles: [files]\n")
        .map_err(|e| e.to_string())?;
    let mut m = String::from(
        "resources:\n  - name: data\n    type: directory\n    target_path: /data\n    mode: \"0755\"\n",
    );
    for i in 0..n {
        m += &format!(
            "  - name: f{i}\n    type: file\n    target_path: /data/f{i}.conf\n    mode: \"{}\"\n    depends_on: [data]\n    content: |\n      # file {i} of the apply benchmark\n      value = {i}\n",
            if i % 2 == 0 { "0644" } else { "0600" }
        );
    }
    std::fs::write(dir.join("modules/files.vgo"), m).map_err(|e| e.to_string())
}

/// (wall seconds, peak RSS in MB) of one `vigo agent apply` run.
fn timed_apply(vigo: &Path, base: &Path, config: &Path, root: &Path) -> Result<(f64, f64), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .arg("--measure-child")
        .arg("--")
        .arg(vigo)
        .args(["agent", "apply"])
        .arg(config)
        .args(["--envoy", "bench", "--root"])
        .arg(root)
        .env("VIGO_BASE_DIR", base)
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().unwrap_or(f64::NAN));
    match (out.status.success(), it.next(), it.next()) {
        (true, Some(wall), Some(kb)) => Ok((wall, kb / 1024.0)),
        _ => Err(format!("apply failed: {text}{}", String::from_utf8_lossy(&out.stderr))),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn summary(runs: &[(f64, f64)], target_ms: f64) -> Value {
    let wall = median(runs.iter().map(|r| r.0).collect());
    let rss = median(runs.iter().map(|r| r.1).collect());
    json!({ "median_ms": wall * 1000.0, "min_ms": runs.iter().map(|r| r.0).fold(f64::MAX, f64::min) * 1000.0,
            "median_rss_mb": rss, "target_ms": target_ms, "ratio_to_target": wall * 1000.0 / target_ms })
}

fn bench(a: &Args) -> Result<(), String> {
    let vigo = a.vigo.clone().unwrap_or_else(|| {
        let exe = std::env::current_exe().expect("current exe");
        exe.parent().and_then(Path::parent).map(|d| d.join("vigo")).expect("target dir")
    });
    let tmp = std::env::temp_dir().join(format!("vigo-apply-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let (config, base, root) = (tmp.join("config"), tmp.join("agent"), tmp.join("root"));
    write_config(&config, a.files)?;
    let runs = a.runs.max(1);
    let mut create = Vec::new();
    let mut noop = Vec::new();
    for _ in 0..runs {
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
        create.push(timed_apply(&vigo, &base, &config, &root)?);
        noop.push(timed_apply(&vigo, &base, &config, &root)?);
    }
    let files = std::fs::read_dir(root.join("data")).map_err(|e| e.to_string())?.count();
    if files != a.files {
        return Err(format!("expected {} files under the root, found {files}", a.files));
    }
    // Peers (cfengine3, salt, puppet, ansible) are not driven here; report which are on PATH.
    let peers: Vec<Value> = ["cf-agent", "salt-call", "puppet", "ansible-playbook"]
        .iter()
        .map(|p| {
            let found = std::env::var_os("PATH")
                .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(p).is_file()));
            json!({ "tool": p, "installed": found })
        })
        .collect();
    let noop_rss = median(noop.iter().map(|r| r.1).collect());
    let _ = std::fs::remove_dir_all(&tmp);
    let out = json!({
        "bench": "apply", "files": a.files, "runs": runs, "errors": 0,
        "create": summary(&create, 300.0),
        "noop": summary(&noop, 100.0),
        "noop_rss_ratio_to_target": noop_rss / 15.0,
        "peak_rss_mb": create.iter().chain(&noop).map(|r| r.1).fold(0.0, f64::max),
        "peers": peers,
    });
    println!("{out}");
    Ok(())
}
