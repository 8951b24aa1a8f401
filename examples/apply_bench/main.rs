//! Apply benchmark: times whole-process `vigo agent apply CONFIG --envoy bench --root ROOT` over a
//! generated config of N file resources (content and mode, under one directory): the first run
//! into an empty root (create) and a second run with nothing to do (noop), each the median of
//! several runs, with the child's peak RSS. Installed peers (CFEngine, Puppet) run the same
//! files side by side (`peers.rs`). `--mix mixed` replaces the files with resources of mixed
//! types (`mixed.rs`: files, file lines, ini keys, cron jobs, sysctls), vigo alone. The last
//! line on stdout is a JSON summary.
//! Commands and results: docs/BENCHMARKS.md.

mod mixed;
mod peers;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use argh::FromArgs;
use serde_json::{json, Value};

#[derive(FromArgs)]
/// Whole-process timing of `vigo-agent apply` (see docs/BENCHMARKS.md).
pub struct Args {
    /// file resources (default 1000)
    #[argh(option, default = "1000")]
    pub files: usize,
    /// runs of each kind; the median is reported (default 5)
    #[argh(option, default = "5")]
    pub runs: usize,
    /// the vigo binary (default: the one built next to this example)
    #[argh(option)]
    pub vigo: Option<PathBuf>,
    /// peers to run beside vigo: "auto" (those installed), "none", or a comma list of
    /// cf-agent and puppet, each of which must then be installed (default auto)
    #[argh(option, default = "String::from(\"auto\")")]
    pub peers: String,
    /// what the resources are: "files" (default, comparable with the peers) or "mixed"
    #[argh(option, default = "String::from(\"files\")")]
    pub mix: String,
    /// keep the generated config, root and state under this directory (for profiling)
    #[argh(option)]
    pub keep: Option<PathBuf>,
    /// internal: run the rest of the arguments as one measured child
    #[argh(switch)]
    measure_child: bool,
    /// internal: the measured command line
    #[argh(positional)]
    command: Vec<String>,
}

fn main() {
    let args: Args = argh::from_env();
    let result = match (args.measure_child, args.mix.as_str()) {
        (true, _) => measure_child(&args.command),
        (false, "files") => bench(&args),
        (false, "mixed") => mixed::bench(&args),
        (false, other) => Err(format!("--mix {other:?}: choose files or mixed")),
    };
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

/// One benchmark file, the same for vigo and every peer.
pub struct FileSpec {
    /// Relative to the root.
    pub path: String,
    pub mode: &'static str,
    pub content: String,
}

fn file_specs(n: usize) -> Vec<FileSpec> {
    (0..n)
        .map(|i| FileSpec {
            path: format!("data/f{i}.conf"),
            mode: if i % 2 == 0 { "0644" } else { "0600" },
            content: format!("# file {i} of the apply benchmark\nvalue = {i}\n"),
        })
        .collect()
}

fn write_config(dir: &Path, files: &[FileSpec]) -> Result<(), String> {
    std::fs::create_dir_all(dir.join("modules")).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("nodes.vgo"), "envoys:\n  - match: bench\n    roles: [files]\n")
        .map_err(|e| e.to_string())?;
    let mut m = String::from(
        "resources:\n  - name: data\n    type: directory\n    target_path: /data\n    mode: \"0755\"\n",
    );
    for (i, f) in files.iter().enumerate() {
        m += &format!(
            "  - name: f{i}\n    type: file\n    target_path: /{}\n    mode: \"{}\"\n    depends_on: [data]\n    content: |\n",
            f.path, f.mode
        );
        for line in f.content.lines() {
            m += &format!("      {line}\n");
        }
    }
    std::fs::write(dir.join("modules/files.vgo"), m).map_err(|e| e.to_string())
}

/// Wall seconds and peak RSS in MB of one run.
pub type Run = (f64, f64);

/// (wall seconds, peak RSS in MB) of one run of `cmd`, measured in a fresh helper process.
pub fn timed(cmd: &[OsString], envs: &[(&str, &Path)]) -> Result<Run, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut c = Command::new(exe);
    c.arg("--measure-child").arg("--").args(cmd);
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c.output().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().unwrap_or(f64::NAN));
    match (out.status.success(), it.next(), it.next()) {
        (true, Some(wall), Some(kb)) => Ok((wall, kb / 1024.0)),
        _ => Err(format!(
            "{} failed: {text}{}",
            cmd[0].to_string_lossy(),
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

/// `runs` create runs into an empty `root`, each followed by a noop run: (create, noop).
pub fn timed_runs(
    cmd: &[OsString],
    envs: &[(&str, &Path)],
    root: &Path,
    runs: usize,
) -> Result<(Vec<Run>, Vec<Run>), String> {
    let (mut create, mut noop) = (Vec::new(), Vec::new());
    let mut used = Vec::new();
    for i in 0..runs {
        // The last run's tree is moved aside, not deleted: on a filesystem mounted with
        // `discard`, the journal commit after freeing 1,000 files trims their blocks, and the
        // next create run's first flush would pay for that. All are removed at the end.
        if root.exists() {
            let aside = root.with_extension(format!("run{i}"));
            std::fs::rename(root, &aside).map_err(|e| e.to_string())?;
            used.push(aside);
        }
        std::fs::create_dir_all(root).map_err(|e| e.to_string())?;
        nix::unistd::sync();
        create.push(timed(cmd, envs)?);
        // The create run's writeback is flushed untimed: a noop is what an agent does every
        // interval on a settled host, not in the wake of a thousand new files.
        nix::unistd::sync();
        noop.push(timed(cmd, envs)?);
    }
    used.iter().for_each(|d| drop(std::fs::remove_dir_all(d)));
    nix::unistd::sync(); // the removal's commit (and trims) here, untimed, not in the next tool's run
    Ok((create, noop))
}

/// Create runs into an empty `root`, each followed by a noop run; then checks the files landed.
fn create_and_noop(
    cmd: &[OsString],
    envs: &[(&str, &Path)],
    root: &Path,
    files: &[FileSpec],
    runs: usize,
) -> Result<(Vec<Run>, Vec<Run>), String> {
    let (create, noop) = timed_runs(cmd, envs, root, runs)?;
    let found = std::fs::read_dir(root.join("data")).map_err(|e| e.to_string())?.count();
    if found != files.len() {
        return Err(format!("expected {} files under {}, found {found}", files.len(), root.display()));
    }
    for f in [files.first(), files.last()].into_iter().flatten() {
        let path = root.join(&f.path);
        let got = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).map_err(|e| e.to_string())?.permissions(),
        ) & 0o7777;
        if got != f.content || format!("{mode:04o}") != f.mode {
            return Err(format!("{} holds {got:?} mode {mode:04o}, not what was asked", path.display()));
        }
    }
    Ok((create, noop))
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median and fastest wall time, median peak RSS.
fn timing(runs: &[Run]) -> Value {
    json!({ "median_ms": median(runs.iter().map(|r| r.0).collect()) * 1000.0,
            "min_ms": runs.iter().map(|r| r.0).fold(f64::MAX, f64::min) * 1000.0,
            "median_rss_mb": median(runs.iter().map(|r| r.1).collect()) })
}

/// `timing` with the target and the ratio to it.
pub fn summary(runs: &[Run], target_ms: f64) -> Value {
    let mut v = timing(runs);
    let ratio = v["median_ms"].as_f64().unwrap_or(f64::NAN) / target_ms;
    v["target_ms"] = json!(target_ms);
    v["ratio_to_target"] = json!(ratio);
    v
}

/// The peers to run, from `--peers`.
fn chosen_peers(choice: &str) -> Result<Vec<&'static peers::Peer>, String> {
    match choice {
        "none" => Ok(Vec::new()),
        "auto" => Ok(peers::RUNNABLE.iter().filter(|p| peers::installed(p.tool)).collect()),
        list => list
            .split(',')
            .map(|name| {
                let p = peers::RUNNABLE.iter().find(|p| p.tool == name.trim()).ok_or_else(|| {
                    format!("unknown peer {name:?}; choose from cf-agent, puppet (or auto, none)")
                })?;
                if !peers::installed(p.tool) {
                    return Err(format!("{} is not installed (apt-get install cfengine3 puppet)", p.tool));
                }
                Ok(p)
            })
            .collect(),
    }
}

/// The vigo binary to time: `--vigo`, or the one built beside this example.
pub fn vigo_binary(a: &Args) -> PathBuf {
    a.vigo.clone().unwrap_or_else(|| {
        let exe = std::env::current_exe().expect("current exe");
        exe.parent().and_then(Path::parent).map(|d| d.join("vigo")).expect("target dir")
    })
}

fn bench(a: &Args) -> Result<(), String> {
    let vigo = vigo_binary(a);
    let chosen = chosen_peers(&a.peers)?;
    let tmp = std::env::temp_dir().join(format!("vigo-apply-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let (config, base, root) = (tmp.join("config"), tmp.join("agent"), tmp.join("root"));
    let files = file_specs(a.files);
    write_config(&config, &files)?;
    let runs = a.runs.max(1);
    let cmd: Vec<OsString> = vec![
        vigo.into(),
        "agent".into(),
        "apply".into(),
        config.into(),
        "--envoy".into(),
        "bench".into(),
        "--root".into(),
        root.clone().into(),
    ];
    let (create, noop) = create_and_noop(&cmd, &[("VIGO_BASE_DIR", &base)], &root, &files, runs)?;
    let (vigo_create, vigo_noop) =
        (median(create.iter().map(|r| r.0).collect()), median(noop.iter().map(|r| r.0).collect()));
    let mut peer_results: Vec<Value> = Vec::new();
    for p in peers::RUNNABLE.iter() {
        if !chosen.iter().any(|c| c.tool == p.tool) {
            peer_results.push(json!({ "tool": p.tool, "installed": peers::installed(p.tool), "run": false }));
            continue;
        }
        eprintln!("apply_bench: running {} ({runs} create and noop runs)", p.tool);
        let dir = tmp.join(p.tool);
        let peer_root = dir.join("root");
        let peer_cmd = p.policy(&dir, &peer_root, &files)?;
        let (c, n) = create_and_noop(&peer_cmd, &[], &peer_root, &files, runs)
            .map_err(|e| format!("{}: {e}", p.tool))?;
        let (c_ms, n_ms) = (median(c.iter().map(|r| r.0).collect()), median(n.iter().map(|r| r.0).collect()));
        peer_results.push(json!({
            "tool": p.tool, "installed": true, "run": true, "version": p.version(),
            "create": timing(&c), "noop": timing(&n),
            "create_vs_vigo": c_ms / vigo_create, "noop_vs_vigo": n_ms / vigo_noop,
        }));
    }
    for tool in peers::DETECTED_ONLY {
        peer_results.push(json!({ "tool": tool, "installed": peers::installed(tool), "run": false }));
    }
    let noop_rss = median(noop.iter().map(|r| r.1).collect());
    let _ = std::fs::remove_dir_all(&tmp);
    let out = json!({
        "bench": "apply", "files": a.files, "runs": runs, "errors": 0,
        "create": summary(&create, 300.0),
        "noop": summary(&noop, 100.0),
        "noop_rss_ratio_to_target": noop_rss / 15.0,
        "peak_rss_mb": create.iter().chain(&noop).map(|r| r.1).fold(0.0, f64::max),
        "peers": peer_results,
    });
    println!("{out}");
    Ok(())
}
