//! Signs that someone is looking inside the process or has put code into it: a tracer attached,
//! loader variables that inject libraries, an executable mapping that is neither this binary nor
//! the vDSO (a static binary maps nothing else). Heuristics, too coarse to stop on: each is
//! logged, audited and shown on `/security`, never a crash. Also where core dumps are turned off.

/// One finding: the audit event it becomes and the evidence.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Signal {
    pub event: &'static str,
    pub evidence: String,
}

pub const DEBUGGER: &str = "hardening.debugger_detected";
pub const INJECTION: &str = "hardening.injection_suspected";

const LOADER_VARIABLES: &[&str] = &["LD_PRELOAD", "LD_AUDIT", "LD_LIBRARY_PATH"];

/// Everything suspicious right now, sorted (so two looks compare).
pub fn look() -> Vec<Signal> {
    let mut found = Vec::new();
    if let Some(pid) = std::fs::read_to_string("/proc/self/status").ok().as_deref().and_then(tracer_pid) {
        found.push(Signal {
            event: DEBUGGER,
            evidence: format!("traced by process {pid} (TracerPid in /proc/self/status)"),
        });
    }
    for name in LOADER_VARIABLES {
        if std::env::var_os(name).is_some() {
            // The name only: the value may be a path an attacker wants echoed, or long.
            found.push(Signal { event: INJECTION, evidence: format!("{name} is set in the environment") });
        }
    }
    let exe =
        std::fs::read_link("/proc/self/exe").map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    if let Ok(maps) = std::fs::read_to_string("/proc/self/maps") {
        for path in foreign_executable_mappings(&maps, &exe) {
            found.push(Signal { event: INJECTION, evidence: format!("executable mapping of {path}") });
        }
    }
    found.sort();
    found
}

/// The tracer's pid from `/proc/self/status`, when one is attached.
fn tracer_pid(status: &str) -> Option<u32> {
    let line = status.lines().find_map(|l| l.strip_prefix("TracerPid:"))?;
    line.trim().parse().ok().filter(|&pid| pid != 0)
}

/// Paths of executable mappings other than `exe` and the kernel's own (`[vdso]`, `[vsyscall]`).
/// Anonymous executable memory is named as such.
fn foreign_executable_mappings(maps: &str, exe: &str) -> Vec<String> {
    let exe = exe.strip_suffix(" (deleted)").unwrap_or(exe);
    let mut out: Vec<String> = Vec::new();
    for (perms, path) in maps.lines().map(perms_and_path) {
        let path = path.strip_suffix(" (deleted)").unwrap_or(path);
        let name = match path {
            _ if !perms.contains('x') => continue,
            "[vdso]" | "[vsyscall]" => continue,
            p if p == exe => continue,
            "" => "anonymous memory",
            p => p,
        };
        if !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
    }
    out
}

/// A maps line is `address perms offset dev inode [path]`; the path may hold spaces.
fn perms_and_path(line: &str) -> (&str, &str) {
    let mut rest = line;
    let mut fields = [""; 5];
    for field in &mut fields {
        rest = rest.trim_start();
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        *field = &rest[..end];
        rest = &rest[end..];
    }
    (fields[1], rest.trim())
}

/// No core dumps: a dump of the server or an agent would hold secret values in plain text.
/// `PR_SET_DUMPABLE=0` also stops other processes of the same user from attaching a debugger.
pub fn forbid_core_dumps() -> Result<(), String> {
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0)
        .map_err(|e| format!("cannot set RLIMIT_CORE to 0: {e}"))?;
    nix::sys::prctl::set_dumpable(false).map_err(|e| format!("cannot clear PR_SET_DUMPABLE: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tracer_is_read_from_the_status_file() {
        assert_eq!(tracer_pid("Name:\tvigo\nTracerPid:\t0\n"), None);
        assert_eq!(tracer_pid("Name:\tvigo\nTracerPid:\t4242\n"), Some(4242));
    }

    #[test]
    fn only_foreign_executable_mappings_are_named() {
        let maps = "\
55d0c0a00000-55d0c0b00000 r-xp 00000000 08:01 123 /usr/bin/vigo
55d0c0b00000-55d0c0c00000 rw-p 00100000 08:01 123 /usr/bin/vigo
7f0000000000-7f0000010000 r-xp 00000000 08:01 456 /tmp/evil.so
7f0000020000-7f0000030000 rwxp 00000000 00:00 0 
7ffd1000000-7ffd1002000 r-xp 00000000 00:00 0                          [vdso]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
";
        assert_eq!(foreign_executable_mappings(maps, "/usr/bin/vigo"), ["/tmp/evil.so", "anonymous memory"]);
        assert!(foreign_executable_mappings(maps, "/usr/bin/vigo (deleted)")
            .contains(&"/tmp/evil.so".to_string()));
    }

    #[test]
    fn this_test_process_finds_its_own_binary_clean() {
        // The test binary is static too: its own mappings raise nothing, unless the loader
        // variables are set by whoever runs the suite.
        let found: Vec<_> =
            look().into_iter().filter(|s| s.evidence.starts_with("executable mapping")).collect();
        assert!(found.is_empty(), "{found:?}");
    }
}
