//! The process's own resource use from `/proc/self`, under the names every Prometheus client
//! library's process collector uses (`process_…`), so existing dashboards and alerts apply.

use super::metrics::Exposition;

/// Linux reports CPU times in USER_HZ, which is 100 on every architecture it runs on.
const TICKS_PER_SEC: f64 = 100.0;

struct Stat {
    cpu_secs: f64,
    start_ticks: f64,
}

fn stat() -> Option<Stat> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14, 15 (utime, stime) and 22 (starttime), counted from 3 = f[0].
    let n = |i: usize| f.get(i - 3)?.parse::<f64>().ok();
    Some(Stat { cpu_secs: (n(14)? + n(15)?) / TICKS_PER_SEC, start_ticks: n(22)? })
}

fn status_kb(field: &str) -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse::<f64>().ok().map(|kb| kb * 1024.0)
}

fn boot_time() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    text.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())
}

/// Appends the process families; any value `/proc` does not give is left out.
pub fn write(e: &mut Exposition) {
    if let Some(s) = stat() {
        e.single(
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent, in seconds.",
            s.cpu_secs,
        );
        if let Some(boot) = boot_time() {
            e.single(
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since the Unix epoch, in seconds.",
                boot + s.start_ticks / TICKS_PER_SEC,
            );
        }
    }
    if let Some(rss) = status_kb("VmRSS:") {
        e.single("process_resident_memory_bytes", "gauge", "Resident memory size, in bytes.", rss);
    }
    if let Some(vm) = status_kb("VmSize:") {
        e.single("process_virtual_memory_bytes", "gauge", "Virtual memory size, in bytes.", vm);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        e.single("process_open_fds", "gauge", "Open file descriptors.", fds.count() as f64);
    }
    if let Ok((soft, _)) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
        e.single("process_max_fds", "gauge", "The limit on open file descriptors.", soft as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_reports_its_cpu_memory_and_descriptors() {
        // A fresh test process may not have used a tick of CPU yet: use some (bounded).
        let started = std::time::Instant::now();
        while stat().is_some_and(|s| s.cpu_secs == 0.0) && started.elapsed().as_secs() < 5 {
            std::hint::black_box(crate::crypto::sha256(&[0u8; 4096]));
        }
        let mut e = Exposition::default();
        write(&mut e);
        let text = e.finish();
        for name in [
            "process_cpu_seconds_total ",
            "process_start_time_seconds ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_max_fds ",
        ] {
            let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name}: {text}"));
            let v: f64 = line[name.len()..].parse().unwrap();
            assert!(v > 0.0, "{line}");
        }
    }
}
