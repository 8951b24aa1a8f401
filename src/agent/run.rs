//! `vigo-agent run`: check in, resolve the bundle's secrets in one call (cached in memory until
//! the epoch advances), apply, report. `--once` does one cycle and exits 0 (converged) or 1.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use super::client::SignedClient;
use super::engine::{self, RunReport};
use super::local_apply::{self, LocalApply};
use crate::bundle::CompiledBundle;
use crate::crypto::SecretBytes;
use crate::exit::{CmdResult, Failure};
use crate::paths::AgentPaths;
use crate::proto::v1 as pb;

pub struct RunRequest {
    pub once: bool,
    pub noop: bool,
    pub root: PathBuf,
}

/// Resolved values, kept only in memory and dropped (zeroized) when the epoch advances.
#[derive(Default)]
pub struct SecretCache {
    epoch: u64,
    values: BTreeMap<String, SecretBytes>,
}

impl SecretCache {
    /// A scrubber of every value held, for text that leaves the agent.
    pub fn scrubber(&self) -> crate::placeholder::Scrubber {
        let mut scrubber = crate::placeholder::Scrubber::new();
        for (key, value) in &self.values {
            scrubber.add(key, value.expose());
        }
        scrubber
    }

    /// Whether every value `bundle` is entitled to is held, under its epoch: only then does
    /// `scrubber` know every value a task on this host could print.
    fn covers(&self, bundle: &pb::PolicyBundle) -> bool {
        let Ok(keys) =
            CompiledBundle::from_wire(bundle).and_then(|b| b.entitled_keys().map_err(|e| e.to_string()))
        else {
            return false;
        };
        self.epoch == bundle.secrets_epoch && keys.iter().all(|k| self.values.contains_key(k))
    }

    /// Takes values kept from an earlier run of this same epoch (the offline cache): a steady
    /// run then resolves nothing.
    pub fn adopt(&mut self, values: BTreeMap<String, SecretBytes>, epoch: u64) {
        if epoch != self.epoch {
            self.values.clear();
            self.epoch = epoch;
        }
        for (k, v) in values {
            self.values.entry(k).or_insert(v);
        }
    }

    pub async fn fill(
        &mut self,
        client: &mut SignedClient,
        keys: &BTreeSet<String>,
        epoch: u64,
    ) -> Result<(), Failure> {
        if epoch != self.epoch {
            self.values.clear();
            self.epoch = epoch;
        }
        let missing: Vec<String> = keys.iter().filter(|k| !self.values.contains_key(*k)).cloned().collect();
        if missing.is_empty() {
            return Ok(());
        }
        let (values, served_epoch) = client.resolve(&missing, epoch).await?;
        self.values.extend(values);
        self.epoch = served_epoch.max(epoch);
        Ok(())
    }
}

/// The report as sent. A converged run whose every resource was unchanged is sent compact:
/// the count instead of the list (what a steady fleet sends every interval).
pub fn to_proto(r: &RunReport, bundle_hash: &str, epoch: u64) -> pb::RunReport {
    let compact = r.status == engine::RunStatus::Converged
        && !r.results.is_empty()
        && r.results.iter().all(|x| x.status == engine::ResourceStatus::Unchanged);
    let results = match compact {
        true => Vec::new(),
        false => r
            .results
            .iter()
            .map(|x| pb::ResourceResult {
                name: x.name.clone(),
                r#type: x.rtype.clone(),
                status: x.status.as_str().to_string(),
                duration_ms: x.duration_ms,
                diff: x.diff.clone(),
                error: x.error.clone(),
                output: x.output.clone(),
            })
            .collect(),
    };
    pb::RunReport {
        bundle_hash: bundle_hash.to_string(),
        started_ms: r.started_ms,
        duration_ms: r.duration_ms,
        noop: r.noop,
        status: r.status.as_str().to_string(),
        secrets_epoch: epoch,
        results,
        unchanged_omitted: if compact { u32::try_from(r.results.len()).unwrap_or(u32::MAX) } else { 0 },
        task_results: Vec::new(),
    }
}

/// Diff or error lines shown per resource, and command output lines for a failure; the run
/// report sent to the server keeps all of it.
const SHOWN_DETAIL_LINES: usize = 40;
const SHOWN_OUTPUT_LINES: usize = 20;

/// Prints each resource that is not unchanged with its (scrubbed) diff or error, the tail of a
/// failed command's output, then a summary line.
pub fn print_report(r: &RunReport) {
    for line in report_lines(r) {
        println!("{line}");
    }
}

/// The printed report, line by line. Everything that came from outside (names, diffs, command
/// output) has its control and invisible characters escaped, so no line can fake another or
/// drive the terminal.
fn report_lines(r: &RunReport) -> Vec<String> {
    use crate::util::text::escape_control as shown;
    let mut out = Vec::new();
    for x in &r.results {
        if x.status.as_str() == "unchanged" {
            continue;
        }
        let detail = if !x.error.is_empty() { &x.error } else { &x.diff };
        let mut lines = detail.lines();
        out.push(format!(
            "  {:<12} {}[{}] {}",
            x.status.as_str(),
            shown(&x.rtype),
            shown(&x.name),
            shown(lines.next().unwrap_or(""))
        ));
        indented(&mut out, lines.collect(), false);
        if x.status.as_str() == "failed" && !x.output.trim().is_empty() {
            out.push("      output:".into());
            indented(&mut out, x.output.lines().collect(), true);
        }
    }
    let count = |s: &str| r.results.iter().filter(|x| x.status.as_str() == s).count();
    // A noop run touched nothing: say what it found, not "changed".
    let outcome = match (r.noop, r.status) {
        (true, engine::RunStatus::Changed) => "would change (noop)",
        (true, engine::RunStatus::Converged) => "converged (noop)",
        (_, status) => status.as_str(),
    };
    out.push(format!(
        "run {}: {} resources, {} unchanged, {} changed, {} would change, {} failed, {} skipped ({} ms)",
        outcome,
        r.results.len(),
        count("unchanged"),
        count("changed"),
        count("would-change"),
        count("failed"),
        count("skipped"),
        r.duration_ms
    ));
    out
}

/// Up to a screenful of `lines`, indented under their resource: the head of a diff, or the
/// tail of a command's output (where the error usually is).
fn indented(out: &mut Vec<String>, lines: Vec<&str>, tail: bool) {
    let limit = if tail { SHOWN_OUTPUT_LINES } else { SHOWN_DETAIL_LINES };
    let hidden = lines.len().saturating_sub(limit);
    if tail && hidden > 0 {
        out.push(format!("      ({hidden} earlier lines not shown)"));
    }
    let shown = if tail { &lines[hidden..] } else { &lines[..lines.len() - hidden] };
    for line in shown {
        out.push(format!("      {}", crate::util::text::escape_control(line)));
    }
    if !tail && hidden > 0 {
        out.push(format!("      ({hidden} more lines not shown)"));
    }
}

async fn cycle(
    client: &mut SignedClient,
    cache: &mut SecretCache,
    req: &RunRequest,
    paths: &AgentPaths,
    offer: &mut Option<pb::ReleaseOffer>,
    offline: &mut bool,
) -> Result<RunReport, Failure> {
    let started_ms = crate::util::time::unix_now_millis();
    // Name the bundle kept from the last run: an unchanged one is not sent again.
    client.held_bundle_hash =
        super::offline::held_bundle_hash(paths, &client.state.envoy_id).unwrap_or_default();
    let checked_in = client.check_in(!req.noop).await;
    if let Err(failure) = &checked_in {
        // A new binary that cannot check in goes back to the previous one (and runs it).
        super::update::check_in_failed(paths, failure, req.once);
    }
    let answer = match checked_in {
        Ok(a) => a,
        // No answer at all: converge from the offline cache, and keep the report for later.
        Err(failure) if super::client::is_unreachable(&failure) => {
            *offline = true;
            return offline_cycle(client, req, paths, failure);
        }
        // Refused for good: nothing kept for this envoy may be applied again.
        Err(failure)
            if super::client::is_revocation(&failure) || super::client::is_unknown_envoy(&failure) =>
        {
            super::offline::wipe(paths);
            return Err(failure);
        }
        // The server answered, but with an error (its config cannot be served, say): the run
        // is reported so that it shows. A refusal (a revoked envoy) or no answer is not.
        Err(failure) if failure.code != crate::exit::EXIT_REFUSED && client.is_connected() => {
            let aborted = aborted_report(&failure, &pb::PolicyBundle::default(), cache, started_ms);
            if let Err(e) = client.report(aborted).await {
                tracing::warn!(error = %e.message, "could not report the aborted run to the server");
            }
            return Err(failure);
        }
        Err(failure) => return Err(failure),
    };
    super::offline::note_contact(paths);
    send_queued(client, paths).await;
    // A failed renewal is retried at the next check-in; the current certificate still works.
    if let Err(f) = super::renew::follow(client, &answer, paths).await {
        tracing::warn!(error = %f.message, "certificate upkeep failed; will retry at the next check-in");
    }
    // Ad-hoc tasks first: they are what someone is waiting for now. Their results go with
    // this run's report, whatever becomes of the run.
    let tasks = super::tasks::run(&answer.tasks, req.noop, paths);
    let bundle = match with_resources(client, cache, paths, answer.bundle.unwrap_or_default()).await {
        Ok(b) => b,
        Err(failure) => {
            let mut aborted = aborted_report(&failure, &pb::PolicyBundle::default(), cache, started_ms);
            aborted.task_results = super::tasks::results(tasks, None);
            let _ = client.report(aborted).await;
            return Err(failure);
        }
    };
    client.state.checkin_interval_secs = answer.checkin_interval_secs;
    *offer = answer.release;
    match apply_bundle(client, cache, req, paths, &bundle).await {
        Ok(report) => {
            // The bundle and its values, for runs while the server cannot be reached.
            if let Err(e) = super::offline::store(
                paths,
                client.identity(),
                &client.state.envoy_id,
                &bundle,
                &cache.values,
            ) {
                tracing::warn!(error = %e.message, "could not keep the bundle for offline runs");
            }
            let mut sent = to_proto(&report, &bundle.bundle_hash, bundle.secrets_epoch);
            sent.task_results = super::tasks::results(tasks, Some(&cache.scrubber()));
            if let Err(failure) = client.report(sent.clone()).await {
                // Lost in transit (the server went away mid-run): sent after the next
                // check-in, task results and all, like a report of an offline run.
                if super::client::is_unreachable(&failure) {
                    super::offline::queue::push(paths, &sent)?;
                }
                return Err(failure);
            }
            Ok(report)
        }
        Err(failure) => {
            // The server must see this run too, or `runs list` hides the failure.
            let mut aborted = aborted_report(&failure, &bundle, cache, started_ms);
            // Unless every value was resolved (a rotation, the provider away), the scrubber
            // does not know every value a task could have printed.
            let scrubber = cache.covers(&bundle).then(|| cache.scrubber());
            aborted.task_results = super::tasks::results(tasks, scrubber.as_ref());
            if let Err(e) = client.report(aborted).await {
                tracing::warn!(error = %e.message, "could not report the aborted run to the server");
            }
            Err(failure)
        }
    }
}

/// The bundle with its resources: as sent, or, when the server left them out because this
/// agent holds the bundle, from the kept copy (whose values then fill the secret cache, if
/// the epoch is the same). A kept copy that cannot be used is asked for again, whole.
async fn with_resources(
    client: &mut SignedClient,
    cache: &mut SecretCache,
    paths: &AgentPaths,
    sent: pb::PolicyBundle,
) -> Result<pb::PolicyBundle, Failure> {
    if !sent.resources_omitted {
        return Ok(sent);
    }
    match super::offline::load(paths, client.identity(), &client.state.envoy_id) {
        Ok(Some(kept)) if kept.bundle.bundle_hash == sent.bundle_hash => {
            if kept.header.secrets_epoch == sent.secrets_epoch {
                cache.adopt(kept.values, sent.secrets_epoch);
            }
            Ok(pb::PolicyBundle { resources: kept.bundle.resources, resources_omitted: false, ..sent })
        }
        _ => {
            tracing::warn!("the kept bundle cannot be used; asking the server for it whole");
            client.held_bundle_hash.clear();
            let answer = client.check_in(false).await?;
            let bundle = answer.bundle.unwrap_or_default();
            if bundle.resources_omitted {
                return Err(Failure::failed(
                    "the server left out the resources of a bundle this agent does not hold",
                ));
            }
            Ok(bundle)
        }
    }
}

/// A run while the server cannot be reached: the cached bundle applied with its cached values
/// (no rotation triggers: those come from the server), the report queued. Without a usable
/// cache, the run fails as the check-in did.
fn offline_cycle(
    client: &SignedClient,
    req: &RunRequest,
    paths: &AgentPaths,
    unreachable: Failure,
) -> Result<RunReport, Failure> {
    let cached = match super::offline::load(paths, client.identity(), &client.state.envoy_id) {
        Ok(Some(c)) => c,
        Ok(None) => return Err(unreachable),
        Err(e) => {
            tracing::warn!(error = %e.message, "the offline cache cannot be used");
            return Err(unreachable);
        }
    };
    let now = crate::util::time::unix_now();
    let age = now.saturating_sub(cached.header.stored_at);
    // Past `agent.offline_max_age` since the server last answered, the cache goes: a host
    // cut off for good (or a revoked envoy kept from hearing so) stops applying it.
    let last_answer = super::offline::last_contact(paths).unwrap_or(cached.header.stored_at);
    if now.saturating_sub(last_answer) > paths.offline_max_age_secs {
        super::offline::forget_cache(paths);
        return Err(Failure::failed(format!(
            "{}; the offline cache was removed: the server last answered {}, and agent.offline_max_age is {}s, so nothing was applied",
            unreachable.message,
            crate::util::time::ago(Some(last_answer), now),
            paths.offline_max_age_secs
        )));
    }
    tracing::warn!(error = %unreachable.message, cached_secs_ago = age, "applying the bundle kept from the last check-in");
    let compiled = CompiledBundle::from_wire(&cached.bundle).map_err(Failure::failed)?;
    let how = LocalApply { root: req.root.clone(), noop: req.noop, triggered: BTreeSet::new() };
    let report = tokio::task::block_in_place(|| local_apply::apply(paths, &compiled, &cached.values, how))?;
    let proto = to_proto(&report, &cached.header.bundle_hash, cached.header.secrets_epoch);
    super::offline::queue::push(paths, &proto)?;
    Ok(report)
}

/// Sends the reports of runs made while the server could not be reached, oldest first. What
/// cannot go now (no answer, a refusal such as the hourly report budget) stays queued for the
/// next check-in; a report the server answered with an error of its own (over its size limit,
/// say) would be refused again, so it is dropped and counted rather than left to hold the
/// rest of the queue for ever.
async fn send_queued(client: &mut SignedClient, paths: &AgentPaths) {
    let dropped = super::offline::queue::dropped(paths);
    let pending = super::offline::queue::pending(paths);
    for (path, report) in &pending {
        match client.report_or_refusal(report.clone()).await {
            Ok(_) => super::offline::queue::sent(paths, path),
            Err((e, true)) => {
                tracing::warn!(error = %e.message, "a queued run report was refused for good; dropped");
                super::offline::queue::discard(paths, path);
            }
            Err((e, false)) => {
                tracing::warn!(error = %e.message, "a queued run report was not accepted; it stays queued");
                return;
            }
        }
    }
    if !pending.is_empty() {
        tracing::info!(
            sent = pending.len(),
            dropped,
            "sent the run reports made while the server was unreachable"
        );
    }
}

/// Everything between the check-in and the report: decode the bundle, resolve its secrets,
/// apply it. A failure here means no resource ran, unless it says otherwise (`local_apply`
/// failing to record what a run did).
async fn apply_bundle(
    client: &mut SignedClient,
    cache: &mut SecretCache,
    req: &RunRequest,
    paths: &AgentPaths,
    bundle: &pb::PolicyBundle,
) -> Result<RunReport, Failure> {
    if bundle.bundle_hash.is_empty() && bundle.resources.is_empty() && bundle.envoy_name.is_empty() {
        return Err(Failure::failed("the server sent no bundle"));
    }
    let compiled = CompiledBundle::from_wire(bundle).map_err(Failure::failed)?;
    let keys = compiled.entitled_keys()?;
    cache.fill(client, &keys, bundle.secrets_epoch).await?;
    let how = LocalApply {
        root: req.root.clone(),
        noop: req.noop,
        triggered: bundle.triggered.iter().cloned().collect(),
    };
    tokio::task::block_in_place(|| local_apply::apply(paths, &compiled, &cache.values, how))
}

/// A failed run with the reason it was aborted, scrubbed of every value the agent holds. It
/// is marked noop — nothing was applied — so that the server keeps the rotation triggers and
/// the forced apply for the next run instead of clearing them as it does after a real one.
fn aborted_report(
    failure: &Failure,
    bundle: &pb::PolicyBundle,
    cache: &SecretCache,
    started_ms: i64,
) -> pb::RunReport {
    let scrubber = cache.scrubber();
    let now = crate::util::time::unix_now_millis();
    pb::RunReport {
        unchanged_omitted: 0,
        task_results: Vec::new(),
        bundle_hash: bundle.bundle_hash.clone(),
        started_ms,
        duration_ms: u64::try_from(now - started_ms).unwrap_or_default(),
        noop: true,
        status: engine::RunStatus::Failed.as_str().to_string(),
        secrets_epoch: bundle.secrets_epoch,
        results: vec![pb::ResourceResult {
            name: "run".into(),
            r#type: "agent".into(),
            status: engine::ResourceStatus::Failed.as_str().to_string(),
            duration_ms: 0,
            diff: String::new(),
            error: scrubber.scrub(&format!("run aborted: {}", failure.message)),
            output: String::new(),
        }],
    }
}

pub async fn run(paths: &AgentPaths, req: RunRequest) -> CmdResult {
    let mut client = SignedClient::open(paths).await?;
    let mut cache = SecretCache::default();
    // Cycles in a row that could not reach the server: they retry sooner, backing off.
    let mut unreachable_in_a_row: u32 = 0;
    let mut watcher = (!req.once && paths.push).then(super::watch::Watcher::default);
    loop {
        let (mut offer, mut offline) = (None, false);
        let outcome = cycle(&mut client, &mut cache, &req, paths, &mut offer, &mut offline).await;
        if let (Ok(report), Some(offer)) = (&outcome, &offer) {
            // This run is done and reported; a new binary runs the next one.
            print_report(report);
            super::update::follow(&mut client, paths, offer).await;
        }
        client.disconnect();
        if req.once {
            let report = outcome?;
            if offer.is_none() {
                print_report(&report);
            }
            if let Some(signo) = crate::util::interrupt::received() {
                return Err(crate::util::interrupt::failure(signo));
            }
            return match report.status {
                engine::RunStatus::Failed => {
                    Err(Failure::failed("some resources failed; see the report above"))
                }
                // Converged, but without the server: a one-off run says so in its exit code.
                _ if offline => Err(Failure::failed(
                    "the server could not be reached: this run applied the bundle kept from the last \
                     check-in, and its report waits to be sent (`vigo-agent status`)",
                )),
                _ => Ok(()),
            };
        }
        let reached = !offline && !matches!(&outcome, Err(f) if super::client::is_unreachable(f));
        unreachable_in_a_row = if reached { 0 } else { unreachable_in_a_row.saturating_add(1) };
        match outcome {
            Ok(report) if offer.is_none() => print_report(&report),
            Ok(_) => {}
            // Revocation is final; any other refusal (a clock that drifted, a server that
            // restarted on another config, someone replaying our key) may pass: try again.
            Err(f) if super::client::is_revocation(&f) => return Err(f),
            Err(f) => tracing::warn!(error = %f.message, "run failed; retrying at the next interval"),
        }
        if let (Some(w), true) = (watcher.as_mut(), reached) {
            w.ensure(&mut client, paths).await;
        }
        let base = retry_after(u64::from(client.state.checkin_interval_secs.max(1)), unreachable_in_a_row);
        // ±10% jitter so a fleet restarted together does not check in together.
        let spread = (base / 10).max(1);
        let jitter =
            crate::crypto::random_bytes(2).map(|b| u64::from(u16::from_le_bytes([b[0], b[1]]))).unwrap_or(0)
                % (2 * spread + 1);
        let wait = Duration::from_secs(base - spread.min(base) + jitter);
        if !idle_until_next_run(wait, &mut watcher, &mut client, paths).await {
            tracing::info!("stopping");
            return Ok(());
        }
    }
}

/// Waits out `wait`, ending early when the push channel says "check in now". A channel that
/// closes meanwhile (a server restart) is reopened after a random 5–30 s, so that a fleet does
/// not come back all at once; each failed attempt doubles the wait before the next (a server
/// still starting, or one refusing channels, is not hammered; the next run tries anyway).
/// False when a stop was requested: a stop request (systemd sends SIGTERM) that came during a
/// run ends the loop here, once that run has reported; `util::interrupt` cut the run itself
/// short.
async fn idle_until_next_run(
    wait: Duration,
    watcher: &mut Option<super::watch::Watcher>,
    client: &mut SignedClient,
    paths: &AgentPaths,
) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    let mut failed_reopens = 0u32;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return true,
            _ = nudged(watcher) => return true,
            _ = crate::util::interrupt::requested() => return false,
            _ = channel_lost(watcher) => {}
        }
        // The channel closed: reopen it, backing off while that fails.
        loop {
            let back = Duration::from_millis(5_000 + super::watch::random_below(25_000))
                * (1 << failed_reopens.min(6));
            tokio::select! {
                _ = tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + back)) => {}
                _ = crate::util::interrupt::requested() => return false,
            }
            match watcher.as_mut() {
                Some(w) if tokio::time::Instant::now() < deadline => {
                    if w.ensure(client, paths).await {
                        failed_reopens = 0;
                        break;
                    }
                    failed_reopens += 1;
                }
                _ => break,
            }
        }
    }
}

/// Resolves when the push channel (if any) says "check in now".
async fn nudged(watcher: &Option<super::watch::Watcher>) {
    match watcher {
        Some(w) => w.nudged().await,
        None => std::future::pending().await,
    }
}

/// Resolves when the push channel (if any) has closed.
async fn channel_lost(watcher: &Option<super::watch::Watcher>) {
    match watcher {
        Some(w) => w.lost().await,
        None => std::future::pending().await,
    }
}

/// Seconds to the next cycle: the check-in interval, or, after `failures` cycles in a row
/// that could not reach the server, 15 s doubled per failure up to the interval (a server back
/// from an outage is found soon, and not by the whole fleet at once: the caller adds jitter).
fn retry_after(interval: u64, failures: u32) -> u64 {
    if failures == 0 {
        return interval;
    }
    15u64.saturating_mul(1 << failures.min(20).saturating_sub(1)).min(interval)
}

/// `vigo-agent resolve KEY`: asks for one key (diagnostic; proves entitlement is enforced).
/// The value is shown under the rules of `util::reveal`, as `vigocli secrets reveal` does.
pub async fn resolve(paths: &AgentPaths, key: &str, reveal: bool, out: Option<&str>) -> CmdResult {
    use crate::util::reveal;
    crate::placeholder::validate_key(key)?;
    let dest = reveal::Dest::from_out(out);
    let mut client = SignedClient::open(paths).await?;
    let (values, epoch) = client.resolve(&[key.to_string()], 0).await?;
    let value = values.get(key).ok_or_else(|| Failure::failed("the server answered without the key"))?;
    if !reveal && out.is_none() {
        let kind = if value.as_text().is_some() { "" } else { ", binary" };
        println!(
            "secret:{key} resolved ({} bytes{kind}, epoch {epoch}); pass --reveal to print it or --out FILE to save it",
            value.len()
        );
        return Ok(());
    }
    if let Some(why) = reveal::refusal(key, value, &dest, "--out") {
        return Err(Failure::failed(why));
    }
    if let Some(said) = reveal::write(key, value, &dest).map_err(|e| Failure::failed(e.to_string()))? {
        eprintln!("{said}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::engine::{ResourceResult, ResourceStatus, RunStatus};

    /// A name, a diff and command output holding an ANSI escape, a carriage return and a
    /// right-to-left override are printed escaped: no line of the report can be faked.
    #[test]
    fn printed_reports_escape_control_and_invisible_characters() {
        let evil = "web\u{1b}[2J\r  changed  file[ok]\u{202e}txt";
        let result = ResourceResult {
            name: evil.into(),
            rtype: "exec".into(),
            status: ResourceStatus::Failed,
            duration_ms: 1,
            diff: String::new(),
            error: format!("failed: {evil}"),
            output: format!("line one\n{evil}\n"),
            guardrail: None,
        };
        let report = RunReport {
            started_ms: 0,
            duration_ms: 1,
            noop: false,
            status: RunStatus::Failed,
            results: vec![result],
            secret_files: Default::default(),
        };
        let lines = report_lines(&report);
        for line in &lines {
            assert!(!line.chars().any(crate::util::text::is_hidden), "{line:?}");
        }
        assert!(
            lines[0].contains("\\x1b[2J") && lines[0].contains("\\r") && lines[0].contains("\\u{202e}"),
            "{lines:?}"
        );
        assert!(lines.iter().filter(|l| l.contains("\\x1b")).count() >= 2, "{lines:?}");
    }
}
