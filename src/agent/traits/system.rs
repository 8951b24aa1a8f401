//! Host traits read from /proc, /sys and /etc.

use std::fs;

use serde_json::{json, Value};

use super::coarse;

fn read(path: &str) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

/// `KEY=value` lines of an os-release file, quotes removed.
fn os_release() -> Result<Vec<(String, String)>, String> {
    let text = read("/etc/os-release").or_else(|_| read("/usr/lib/os-release"))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches(|c| c == '"' || c == '\'').to_string()))
        .collect())
}

/// Distribution, version, codename; `family` from `ID_LIKE` (debian, rhel, suse…) or `ID`.
pub fn os() -> Result<Value, String> {
    let fields = os_release()?;
    let get = |k: &str| fields.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let id = get("ID").unwrap_or_else(|| "linux".into());
    let family = get("ID_LIKE")
        .and_then(|like| like.split_whitespace().last().map(String::from))
        .unwrap_or_else(|| id.clone());
    Ok(json!({
        "family": family,
        "distribution": id,
        "version": get("VERSION_ID"),
        "codename": get("VERSION_CODENAME"),
        "name": get("PRETTY_NAME"),
    }))
}

pub fn kernel() -> Result<Value, String> {
    Ok(json!({
        "name": read("/proc/sys/kernel/ostype")?.trim(),
        "release": read("/proc/sys/kernel/osrelease")?.trim(),
        "version": read("/proc/sys/kernel/version")?.trim(),
    }))
}

/// The architecture this agent runs as (it is built per target).
pub fn arch() -> Result<Value, String> {
    Ok(json!(std::env::consts::ARCH))
}

pub fn hostname() -> Result<Value, String> {
    Ok(json!(read("/proc/sys/kernel/hostname")?.trim()))
}

/// The host name with its domain: as /etc/hosts names it (the first dotted name on a line
/// that has the host name), or the kernel's domain name; the bare name when neither says.
pub fn fqdn() -> Result<Value, String> {
    let host = read("/proc/sys/kernel/hostname")?.trim().to_string();
    if host.contains('.') {
        return Ok(json!(host));
    }
    if let Ok(hosts) = read("/etc/hosts") {
        for line in hosts.lines().map(|l| l.split('#').next().unwrap_or("")) {
            let names: Vec<&str> = line.split_whitespace().skip(1).collect();
            if names.contains(&host.as_str()) {
                if let Some(full) = names.iter().find(|n| n.starts_with(&format!("{host}."))) {
                    return Ok(json!(full));
                }
            }
        }
    }
    let domain = read("/proc/sys/kernel/domainname").unwrap_or_default();
    let domain = domain.trim();
    if !domain.is_empty() && domain != "(none)" {
        return Ok(json!(format!("{host}.{domain}")));
    }
    Ok(json!(host))
}

pub fn machine_id() -> Result<Value, String> {
    let id = read("/etc/machine-id").or_else(|_| read("/var/lib/dbus/machine-id"))?;
    Ok(json!(id.trim()))
}

/// `Key: value kB` lines of /proc/meminfo, in bytes.
fn meminfo(key: &str, text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

const MIB: u64 = 1024 * 1024;

pub fn memory() -> Result<Value, String> {
    let text = read("/proc/meminfo")?;
    let total = meminfo("MemTotal", &text).ok_or("no MemTotal in /proc/meminfo")?;
    Ok(json!({
        "total_bytes": total,
        // Rounded: free memory changes all the time.
        "available_mib": coarse(meminfo("MemAvailable", &text).unwrap_or(0) / MIB, 256),
        "swap_total_bytes": meminfo("SwapTotal", &text).unwrap_or(0),
    }))
}

pub fn uptime_hours() -> Result<Value, String> {
    let secs: f64 = read("/proc/uptime")?
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("unreadable /proc/uptime")?;
    Ok(json!((secs / 3600.0) as u64))
}

/// The agent itself: its version, resident size (to 4 MiB) and open descriptors.
pub fn agent() -> Result<Value, String> {
    let status = read("/proc/self/status")?;
    let rss = meminfo("VmRSS", &status).unwrap_or(0);
    let fds = fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0);
    Ok(json!({
        "version": crate::release::version(),
        "rss_mib": coarse(rss / MIB, 4),
        "open_fds": coarse(fds as u64, 8),
    }))
}

pub fn cpu() -> Result<Value, String> {
    let info = read("/proc/cpuinfo")?;
    let count = info.lines().filter(|l| l.starts_with("processor")).count();
    let model = info.lines().find_map(|l| {
        l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim().to_string())
    });
    let online = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(count);
    Ok(json!({ "count": count, "online": online, "model": model }))
}

/// `none`, a hypervisor (`kvm`, `vmware`, …) from DMI, or a container (`docker`, `lxc`, …).
pub fn virtualization() -> Result<Value, String> {
    if let Ok(kind) = read("/run/systemd/container") {
        return Ok(json!(kind.trim()));
    }
    if fs::metadata("/.dockerenv").is_ok() {
        return Ok(json!("docker"));
    }
    if let Ok(env) = fs::read("/proc/1/environ") {
        if env.split(|b| *b == 0).any(|v| v.starts_with(b"container=")) {
            return Ok(json!("container"));
        }
    }
    let dmi = |f: &str| read(&format!("/sys/class/dmi/id/{f}")).unwrap_or_default().to_lowercase();
    let (vendor, product) = (dmi("sys_vendor"), dmi("product_name"));
    let both = format!("{vendor} {product}");
    let known = [
        ("kvm", "kvm"),
        ("qemu", "qemu"),
        ("vmware", "vmware"),
        ("virtualbox", "virtualbox"),
        ("microsoft", "hyperv"),
        ("xen", "xen"),
        ("amazon ec2", "kvm"),
        ("google", "kvm"),
    ];
    if let Some((_, kind)) = known.iter().find(|(needle, _)| both.contains(needle)) {
        return Ok(json!(kind));
    }
    let hypervisor = read("/proc/cpuinfo")
        .is_ok_and(|c| c.lines().any(|l| l.starts_with("flags") && l.contains(" hypervisor")));
    Ok(json!(if hypervisor { "vm" } else { "none" }))
}

/// What runs as PID 1.
pub fn init() -> Result<Value, String> {
    let comm = read("/proc/1/comm")?;
    let comm = comm.trim();
    Ok(json!(if comm == "systemd" || fs::metadata("/run/systemd/system").is_ok() { "systemd" } else { comm }))
}

pub fn package_manager() -> Result<Value, String> {
    let exists = |p: &str| fs::metadata(p).is_ok();
    Ok(if exists("/var/lib/dpkg/status") {
        json!("dpkg")
    } else if exists("/var/lib/rpm") {
        json!("rpm")
    } else if exists("/lib/apk/db/installed") {
        json!("apk")
    } else {
        Value::Null
    })
}

/// Human accounts: uid 1000 or more (not 65534) with a login shell, from /etc/passwd itself.
pub fn users() -> Result<Value, String> {
    let passwd = read("/etc/passwd")?;
    let nologin = |shell: &str| shell.is_empty() || shell.ends_with("/nologin") || shell.ends_with("/false");
    let users: Vec<Value> = passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let uid: u32 = f.get(2)?.parse().ok()?;
            let shell = f.get(6).copied().unwrap_or("");
            (uid >= 1000 && uid != 65534 && !nologin(shell))
                .then(|| json!({ "name": f[0], "uid": uid, "home": f.get(5), "shell": shell }))
        })
        .collect();
    Ok(json!(users))
}
