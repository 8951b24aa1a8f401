//! Ad-hoc tasks (`vigocli task run`): one command the server handed out at check-in, run under
//! the same rules as an exec resource's — this host's guardrails first, a clean environment, a
//! time limit that kills its process group — and reported with the tail of its output.

use std::time::{Duration, Instant};

use super::{cmdline, process, Guardrails};

/// How one task went. `exit_code` is None when it did not run to an exit. `output` is all
/// that was captured (at most the process limit): it is scrubbed before it is cut to the tail
/// a report carries (`agent::tasks::results`), so that the cut cannot split a value.
pub struct TaskOutcome {
    pub exit_code: Option<i32>,
    pub output: String,
    pub error: String,
    pub duration_ms: u64,
}

/// Runs `command` for at most `timeout_secs` (1 to 3600); never panics, never fails: what went
/// wrong is in `error`.
pub fn run(command: &str, timeout_secs: u32, guardrails: &Guardrails) -> TaskOutcome {
    let t = Instant::now();
    let outcome = |exit_code, output: String, error: String| TaskOutcome {
        exit_code,
        output,
        error,
        duration_ms: u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    if let Err(blocked) = guardrails.check_command(command, None) {
        return outcome(None, String::new(), blocked.message);
    }
    let argv = match cmdline::argv(command) {
        Ok(a) => a,
        Err(e) => return outcome(None, String::new(), e),
    };
    let limit = Duration::from_secs(u64::from(timeout_secs.clamp(1, 3600)));
    match process::run(process::Spec::new(argv, limit)) {
        Ok(ran) if ran.timed_out => {
            outcome(None, ran.output, format!("stopped at its time limit of {}s", limit.as_secs()))
        }
        Ok(ran) if ran.code.is_none() => {
            outcome(None, ran.output.clone(), format!("the command {}", ran.how()))
        }
        Ok(ran) => outcome(ran.code, ran.output, String::new()),
        Err(e) => outcome(None, String::new(), e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_output_tails_time_limits_and_guardrails() {
        let rails = Guardrails::defaults(std::path::Path::new("/var/lib/vigo"));
        let ok = run("echo hello", 10, &rails);
        assert_eq!((ok.exit_code, ok.output.trim(), ok.error.as_str()), (Some(0), "hello", ""));
        let failed = run("sh -c 'echo nope >&2; exit 3'", 10, &rails);
        assert_eq!((failed.exit_code, failed.output.trim()), (Some(3), "nope"));
        let long = run("yes x | head -c 100000", 10, &rails);
        assert_eq!(long.output.len(), 100_000, "kept whole until it is scrubbed");
        let slow = run("sleep 30", 1, &rails);
        assert!(slow.exit_code.is_none() && slow.error.contains("time limit"), "{}", slow.error);
        assert!(slow.duration_ms < 10_000);
        let refused = run("rm -rf /", 10, &rails);
        assert!(refused.exit_code.is_none() && refused.error.contains("guardrail"), "{}", refused.error);
    }
}
