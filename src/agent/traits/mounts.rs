//! Mounted filesystems with their size and free space (statvfs), pseudo filesystems left out.

use serde_json::{json, Value};

use super::coarse;

/// Filesystems that hold no data of the host's own.
const PSEUDO: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "securityfs",
    "pstore",
    "bpf",
    "debugfs",
    "tracefs",
    "configfs",
    "fusectl",
    "mqueue",
    "hugetlbfs",
    "autofs",
    "binfmt_misc",
    "nsfs",
    "efivarfs",
    "rpc_pipefs",
    "overlay",
    "squashfs",
];

const GIB: u64 = 1024 * 1024 * 1024;

pub fn mounts() -> Result<Value, String> {
    let table =
        std::fs::read_to_string("/proc/self/mounts").map_err(|e| format!("/proc/self/mounts: {e}"))?;
    let mut out = Vec::new();
    for line in table.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [device, path, fstype, ..] = f.as_slice() else { continue };
        if PSEUDO.contains(fstype) || (*fstype == "tmpfs" && path.starts_with("/run/")) {
            continue;
        }
        let path = path.replace("\\040", " ");
        let Ok(s) = nix::sys::statvfs::statvfs(path.as_str()) else { continue };
        let block = s.fragment_size();
        out.push(json!({
            "path": path,
            "device": device,
            "fstype": fstype,
            "size_bytes": s.blocks() * block,
            // Rounded to a GiB: free space changes all the time.
            "free_gib": coarse(s.blocks_available() * block / GIB, 1),
        }));
    }
    Ok(json!(out))
}
