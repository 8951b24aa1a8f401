//! Whether a process still runs: what is left behind by a killed writer (a sealed temp, a
//! staged TLS directory) is swept only once the process named in it is gone.

/// Whether a process with this PID exists (one of another user counts too).
pub fn alive(pid: i32) -> bool {
    pid > 0
        && !matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        )
}
