//! `--mix mixed`: N resources of mixed types in one bundle — a fifth each of whole files,
//! `file_line` edits (ten lines per file), `ini` keys (ten per file), cron jobs and sysctls —
//! timed like the file benchmark (a create run into an empty root, then a noop run). The
//! sysctls ask for the value the running kernel already has, so no run changes the host; their
//! files land in the root. Peers do not take part (their type systems differ).

use std::ffi::OsString;
use std::path::Path;

use serde_json::json;

use super::{median, summary, timed_runs, vigo_binary, Args, Run};

/// Up to `n` kernel parameters that can be read now, with their current values.
fn sysctls(n: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    // Per-interface and per-namespace settings: static, unlike much of kernel/ and vm/.
    for dir in [
        "net/ipv4/conf/all",
        "net/ipv4/conf/default",
        "net/ipv6/conf/all",
        "net/ipv6/conf/default",
        "net/ipv4/neigh/default",
        "net/core",
    ] {
        let Ok(entries) = std::fs::read_dir(Path::new("/proc/sys").join(dir)) else { continue };
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let Ok(value) = std::fs::read_to_string(Path::new("/proc/sys").join(dir).join(&name)) else {
                continue;
            };
            let writable = std::fs::metadata(Path::new("/proc/sys").join(dir).join(&name))
                .is_ok_and(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o200 != 0);
            let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
            let key = format!("{dir}/{name}").replace('/', ".");
            if writable
                && !value.is_empty()
                && value.len() < 64
                && !key.contains("..")
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                out.push((key, value));
            }
            if out.len() == n {
                return out;
            }
        }
    }
    out
}

fn write_config(dir: &Path, n: usize) -> Result<usize, String> {
    let fifth = n / 5;
    let kernel = sysctls(fifth);
    let files = n - 3 * fifth - kernel.len();
    let mut m = String::from("resources:\n");
    for d in ["data", "lines", "ini", "etc", "etc/cron.d", "etc/sysctl.d"] {
        m += &format!("  - {{name: dir-{}, type: directory, target_path: /{d}}}\n", d.replace('/', "-"));
    }
    for i in 0..files {
        m += &format!("  - {{name: f{i}, type: file, target_path: /data/f{i}.conf, content: \"value = {i}\\n\", depends_on: [dir-data]}}\n");
    }
    for i in 0..fifth {
        m += &format!(
            "  - {{name: l{i}, type: file_line, target_path: /lines/l{}.conf, line: \"option{i} = on\", match: \"^option{i} \", create: true, depends_on: [dir-lines]}}\n",
            i / 10
        );
        m += &format!(
            "  - {{name: k{i}, type: ini, target_path: /ini/i{}.ini, section: s{}, key: key{i}, value: \"{i}\", create: true, depends_on: [dir-ini]}}\n",
            i / 10,
            i % 3
        );
        m += &format!(
            "  - {{name: c{i}, type: cron, job: bench-{i}, schedule: \"{} 3 * * *\", command: /bin/true, depends_on: [dir-etc-cron.d]}}\n",
            i % 60
        );
    }
    for (i, (key, value)) in kernel.iter().enumerate() {
        m += &format!("  - {{name: s{i}, type: sysctl, key: {key}, value: \"{value}\", depends_on: [dir-etc-sysctl.d]}}\n");
    }
    std::fs::create_dir_all(dir.join("modules")).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("nodes.vgo"), "envoys:\n  - match: bench\n    roles: [mixed]\n")
        .map_err(|e| e.to_string())?;
    std::fs::write(dir.join("modules/mixed.vgo"), m).map_err(|e| e.to_string())?;
    Ok(kernel.len())
}

pub fn bench(a: &Args) -> Result<(), String> {
    if a.peers != "none" && a.peers != "auto" {
        return Err("--mix mixed runs vigo alone; use --peers none".into());
    }
    let tmp = match &a.keep {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("vigo-apply-bench-mixed-{}", std::process::id())),
    };
    let _ = std::fs::remove_dir_all(&tmp);
    let (config, base, root) = (tmp.join("config"), tmp.join("agent"), tmp.join("root"));
    let sysctl_count = write_config(&config, a.files)?;
    let cmd: Vec<OsString> = vec![
        vigo_binary(a).into(),
        "agent".into(),
        "apply".into(),
        config.into(),
        "--envoy".into(),
        "bench".into(),
        "--root".into(),
        root.clone().into(),
    ];
    let envs = [("VIGO_BASE_DIR", base.as_path())];
    let (create, noop): (Vec<Run>, Vec<Run>) = timed_runs(&cmd, &envs, &root, a.runs.max(1))?;
    let jobs = std::fs::read_dir(root.join("etc/cron.d")).map_err(|e| e.to_string())?.count();
    if jobs != a.files / 5 {
        return Err(format!("expected {} cron jobs in the root, found {jobs}", a.files / 5));
    }
    if a.keep.is_none() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    let out = json!({
        "bench": "apply", "mix": "mixed", "resources": a.files, "sysctls": sysctl_count,
        "runs": a.runs.max(1), "errors": 0,
        "create": summary(&create, 300.0),
        "noop": summary(&noop, 50.0),
        "peak_rss_mb": create.iter().chain(&noop).map(|r| r.1).fold(0.0, f64::max),
        "noop_median_ms": median(noop.iter().map(|r| r.0).collect()) * 1000.0,
    });
    println!("{out}");
    Ok(())
}
