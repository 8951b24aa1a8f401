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

/// The results as reported: output and error scrubbed by `scrubber` (every value the agent holds).
pub fn results(tasks: Vec<(String, TaskOutcome)>, scrubber: &Scrubber) -> Vec<pb::TaskResult> {
    tasks
        .into_iter()
        .map(|(task_id, o)| pb::TaskResult {
            task_id,
            exit_code: o.exit_code.unwrap_or(0),
            exited: o.exit_code.is_some(),
            output: scrubber.scrub(&o.output),
            error: scrubber.scrub(&o.error),
            duration_ms: o.duration_ms,
        })
        .collect()
}
