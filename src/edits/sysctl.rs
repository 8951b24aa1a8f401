//! `sysctl`: a kernel parameter, kept in a file under /etc/sysctl.d (so it holds after a boot)
//! and set live under /proc/sys. Keys are dotted (`net.ipv4.ip_forward`) or slashed
//! (`net/ipv4/conf/eth0.100/forwarding`, for names that hold a dot), as sysctl(8) takes them.

use crate::util::text::excerpt;

fn segments(key: &str) -> Vec<&str> {
    if key.contains('/') {
        key.split('/').collect()
    } else {
        key.split('.').collect()
    }
}

pub fn check_key(key: &str) -> Result<(), String> {
    let segs = segments(key);
    let ok = !key.is_empty()
        && key.len() <= 256
        && segs.iter().all(|s| {
            !s.is_empty()
                && *s != "."
                && *s != ".."
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
        });
    if !ok {
        return Err(format!(
            "sysctl `key` \"{}\" is not a kernel parameter name (dotted like net.ipv4.ip_forward, or slashed)",
            excerpt(key)
        ));
    }
    Ok(())
}

pub fn check_value(value: &str) -> Result<(), String> {
    if value.trim().is_empty() || value.contains('\n') || value.contains('\r') {
        return Err("sysctl `value` must be one non-empty line".into());
    }
    Ok(())
}

/// The parameter's file under /proc/sys, relative to it.
pub fn proc_path(key: &str) -> String {
    segments(key).join("/")
}

/// The file in /etc/sysctl.d that keeps the parameter: one per key, read in name order after
/// the distribution's own (which use lower numbers).
pub fn conf_path(key: &str) -> String {
    format!("/etc/sysctl.d/60-vigo-{}.conf", segments(key).join("."))
}

pub fn conf_file(resource: &str, key: &str, value: &str) -> String {
    format!("# Managed by Vigo (resource {resource}).\n{key} = {}\n", value.trim())
}

/// Values the kernel prints with tabs (`net.ipv4.ip_local_port_range`) compare by their words.
pub fn same_value(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}
