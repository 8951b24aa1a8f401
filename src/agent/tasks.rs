//! Ad-hoc tasks on the agent's side: the ones a check-in handed out are run before the bundle
//! is applied (`engine::task` runs each under this host's guardrails), and their results go with
//! that run's report, scrubbed of every value the agent holds.

use super::engine::{self, task::TaskOutcome};
use crate::paths::AgentPaths;
use crate::placeholder::Scrubber;
use crate::proto::v1 as pb;

/// Runs the tasks in order. A noop run changes nothing, so it runs none: each is reported as
/// not run.
pub fn run(tasks: &[pb::Task], noop: bool, paths: &AgentPaths) -> Vec<(String, TaskOutcome)> {
    if tasks.is_empty() {
        return Vec::new();
    }
    let guardrails = engine::Guardrails::load(&paths.guardrails, &paths.base);
    tasks
        .iter()
        .map(|t| {
            let outcome = match (&guardrails, noop) {
                (_, true) => not_run("this run was a noop run"),
                (Err(e), _) => not_run(&format!("the agent's guardrails could not be read: {e}")),
                (Ok(g), false) => {
                    tracing::info!(task = %t.id, "running an ad-hoc task");
                    tokio::task::block_in_place(|| engine::task::run(&t.command, t.timeout_secs, g))
                }
            };
            (t.id.clone(), outcome)
        })
        .collect()
}

fn not_run(why: &str) -> TaskOutcome {
    TaskOutcome { exit_code: None, output: String::new(), error: format!("not run: {why}"), duration_ms: 0 }
}

/// Output a report carries of a task: its end, where the outcome usually is.
const OUTPUT_TAIL: usize = 4096;

/// The results as reported: output and error scrubbed by `scrubber` (every value the agent
/// holds), the output before it is cut to its tail. Without a scrubber (the run could not
/// resolve the values it would need) the output is withheld: exit code, duration and error
/// only.
pub fn results(tasks: Vec<(String, TaskOutcome)>, scrubber: Option<&Scrubber>) -> Vec<pb::TaskResult> {
    const WITHHELD: &str = "output withheld: this run could not resolve the secret values to scrub it of";
    tasks
        .into_iter()
        .map(|(task_id, o)| {
            let (output, error) = match scrubber {
                Some(s) => (
                    engine::redact::redact_tail(s, &o.output, OUTPUT_TAIL),
                    engine::redact::redact(s, &o.error),
                ),
                None if o.error.is_empty() => (String::new(), WITHHELD.to_string()),
                None => (String::new(), format!("{}; {WITHHELD}", o.error)),
            };
            pb::TaskResult {
                task_id,
                exit_code: o.exit_code.unwrap_or(0),
                exited: o.exit_code.is_some(),
                output,
                error,
                duration_ms: o.duration_ms,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a scrubber that knows every value, the output is withheld, the rest reported.
    #[test]
    fn without_a_complete_scrubber_the_output_is_withheld() {
        let outcome = TaskOutcome {
            exit_code: Some(3),
            output: "anything".into(),
            error: String::new(),
            duration_ms: 5,
        };
        let r = results(vec![("t1".into(), outcome)], None).remove(0);
        assert_eq!((r.output.as_str(), r.exit_code, r.exited, r.duration_ms), ("", 3, true, 5));
        assert!(r.error.contains("withheld"), "{}", r.error);
    }

    /// A value printed where the kept tail starts is scrubbed before the cut: no end of it is
    /// reported (cutting first left its last characters, which scrubbing no longer recognised).
    #[test]
    fn task_output_is_scrubbed_before_it_is_cut_to_its_tail() {
        let value = "db-password-0123456789abcdef";
        let mut scrubber = Scrubber::new();
        scrubber.add("db/password", value);
        for shift in [1, 7, 20, value.len() - 1] {
            let output = format!("{value}{}", "z".repeat(OUTPUT_TAIL - shift));
            let outcome = TaskOutcome { exit_code: Some(0), output, error: String::new(), duration_ms: 1 };
            let reported = results(vec![("t1".into(), outcome)], Some(&scrubber)).remove(0).output;
            assert!(reported.len() <= OUTPUT_TAIL, "{shift}");
            assert!(reported.trim_start_matches(|c| c != 'z').starts_with('z'), "{shift}");
            for n in 4..value.len() {
                assert!(!reported.contains(&value[value.len() - n..]), "{shift}/{n}: {reported:.60}");
            }
        }
    }
}
