//! Run reports made while the server could not be reached, kept in `<base>/offline/reports`
//! (one protobuf file each, 0600, named by an increasing number so that they sort oldest first) and sent,
//! signed like any report, once contact returns. Bounded: past `MAX_QUEUED` the oldest is
//! dropped and counted, and the count is reported with the next sent report's log line.

use std::path::PathBuf;

use prost::Message;

use crate::exit::Failure;
use crate::paths::AgentPaths;
use crate::proto::v1 as pb;
use crate::util::fsutil;

/// The most reports kept: sixteen hours of runs at a 30-minute interval. Kept below the
/// server's default burst of reports (60, `runs.reports_per_hour` / 6), so that sending a
/// full queue leaves room for the report of the run that sent it.
pub const MAX_QUEUED: usize = 32;

fn dir(paths: &AgentPaths) -> PathBuf {
    super::dir(paths).join("reports")
}

fn dropped_path(paths: &AgentPaths) -> PathBuf {
    super::dir(paths).join("reports-dropped")
}

/// The queued report files, oldest first.
fn files(paths: &AgentPaths) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir(paths))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pb"))
        .collect();
    out.sort();
    out
}

/// Queues a report, dropping the oldest beyond `MAX_QUEUED`.
pub fn push(paths: &AgentPaths, report: &pb::RunReport) -> Result<(), Failure> {
    super::ensure_dir(paths).map_err(Failure::from)?;
    std::fs::create_dir_all(dir(paths)).map_err(Failure::from)?;
    // Above the newest queued one and above the clock in microseconds: names sort oldest first
    // even for reports made within one millisecond, or after the queue was emptied.
    let newest = files(paths).last().and_then(|p| p.file_stem()?.to_str()?.parse::<u64>().ok()).unwrap_or(0);
    let now_us = u64::try_from(crate::util::time::unix_now_millis()).unwrap_or(0) * 1000;
    let name = format!("{:020}.pb", (newest + 1).max(now_us));
    fsutil::atomic_write(&dir(paths).join(name), &report.encode_to_vec(), 0o600).map_err(Failure::from)?;
    let all = files(paths);
    let excess = all.len().saturating_sub(MAX_QUEUED);
    for old in &all[..excess] {
        let _ = std::fs::remove_file(old);
    }
    if excess > 0 {
        let total = dropped(paths) + excess as u64;
        let _ = fsutil::atomic_write(&dropped_path(paths), total.to_string().as_bytes(), 0o600);
    }
    Ok(())
}

/// How many reports are waiting.
pub fn len(paths: &AgentPaths) -> usize {
    files(paths).len()
}

/// How many were dropped since the queue was last emptied.
pub fn dropped(paths: &AgentPaths) -> u64 {
    std::fs::read_to_string(dropped_path(paths)).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0)
}

/// The queued reports, oldest first, each with the file to remove once it was sent. A file that
/// does not decode is removed (it cannot ever be sent).
pub fn pending(paths: &AgentPaths) -> Vec<(PathBuf, pb::RunReport)> {
    let mut out = Vec::new();
    for path in files(paths) {
        match std::fs::read(&path).ok().and_then(|b| pb::RunReport::decode(b.as_slice()).ok()) {
            Some(report) => out.push((path, report)),
            None => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    out
}

/// Removes a sent report; the dropped count goes with the last one.
pub fn sent(paths: &AgentPaths, path: &PathBuf) {
    let _ = std::fs::remove_file(path);
    if files(paths).is_empty() {
        let _ = std::fs::remove_file(dropped_path(paths));
    }
}

/// Removes a report the server will never accept (over its size limit, say), counting it
/// among the dropped, so that it does not hold the ones behind it.
pub fn discard(paths: &AgentPaths, path: &PathBuf) {
    let total = dropped(paths) + 1;
    let _ = std::fs::remove_file(path);
    let _ = fsutil::atomic_write(&dropped_path(paths), total.to_string().as_bytes(), 0o600);
}

/// Empties the queue.
pub fn clear(paths: &AgentPaths) {
    let _ = std::fs::remove_dir_all(dir(paths));
    let _ = std::fs::remove_file(dropped_path(paths));
}
