//! `vigo-agent restore PATH [--version N] [--list]`: puts back an earlier content that a file
//! resource with `backup: true` kept (`engine::backup`). PATH is the file's path on this host
//! (with `--root` runs, the path inside the root as the host sees it). The content being
//! replaced is kept in turn, so a restore can be undone; mode and owner stay as they are; the
//! restore is written to the agent's audit log.

use std::os::unix::fs::MetadataExt;

use super::engine::backup;
use super::local_apply::backups_path;
use crate::audit::{self, Event};
use crate::exit::{CmdResult, Failure};
use crate::paths::AgentPaths;
use crate::util::lock::FileLock;

pub struct RestoreRequest {
    pub path: String,
    pub version: usize,
    pub list: bool,
}

pub fn restore(paths: &AgentPaths, req: RestoreRequest) -> CmdResult {
    let path = std::path::absolute(&req.path).map_err(|e| Failure::usage(format!("{}: {e}", req.path)))?;
    let host_path = path.to_string_lossy().into_owned();
    let dir = backups_path(paths);
    let kept = backup::list(&dir, &host_path).map_err(Failure::failed)?;
    if req.list {
        if kept.is_empty() {
            println!("no earlier content is kept for {host_path}");
        }
        for k in &kept {
            let when = crate::util::time::rfc3339_millis(k.taken_ms);
            println!("{:>3}  {when}  {} bytes", k.version, k.size);
        }
        return Ok(());
    }
    if kept.is_empty() {
        return Err(Failure::failed(format!(
            "no earlier content is kept for {host_path}; only file resources with backup: true keep one"
        )));
    }
    let Some(chosen) = kept.iter().find(|k| k.version == req.version) else {
        return Err(Failure::usage(format!(
            "--version {} is not kept for {host_path}; versions 1 (newest) to {} are (see --list)",
            req.version,
            kept.len()
        )));
    };
    let _lock = FileLock::acquire(&paths.lock, None, "vigo-agent run")
        .map_err(|e| Failure::failed(format!("{e}; wait for it to finish or retry later")))?;
    let earlier = std::fs::read(&chosen.file)
        .map_err(|e| Failure::failed(format!("{}: {e}", chosen.file.display())))?;
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_symlink() || !m.is_file() => {
            return Err(Failure::refused(format!(
                "{host_path} is not a regular file; refusing to restore over it"
            )))
        }
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Failure::failed(format!("{host_path}: {e}"))),
    };
    if let Some(m) = &meta {
        let current = super::engine::rootfs_read_nofollow(&path)
            .map_err(|e| Failure::failed(format!("{host_path}: {e}")))?;
        if current == earlier {
            println!("{host_path} already holds version {}; nothing to do", chosen.version);
            return Ok(());
        }
        backup::save(&dir, &host_path, &current).map_err(Failure::failed)?;
        super::engine::rootfs_write_atomic(&path, &earlier, m.mode() & 0o7777, m.uid(), m.gid())
            .map_err(Failure::failed)?;
    } else {
        let (uid, gid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
        super::engine::rootfs_write_atomic(&path, &earlier, 0o600, uid, gid).map_err(Failure::failed)?;
    }
    let event = Event::new("agent", "file.restored", &host_path)
        .detail(serde_json::json!({ "version": chosen.version, "taken_ms": chosen.taken_ms }));
    let mut conn = crate::store::open(&paths.db)?;
    audit::append_all(&mut conn, &[event])?;
    println!("restored {host_path} to version {} (the content it replaced is now version 1)", chosen.version);
    Ok(())
}
