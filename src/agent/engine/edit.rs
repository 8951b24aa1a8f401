//! The executor for edits to part of a file (`file_line`, `blockinfile`, `ini`, `json_file`,
//! `replace`, and `host` through `systypes`; the edits themselves are in `crate::edits`). It reads the file (never through a
//! symlink), applies the edit, and stages a write only when the text changes, keeping the
//! file's mode and owner. A missing file is an error unless `create: true` (or the edit only
//! removes). Several edits of one file each see the ones before them: every resource but a
//! `file` runs after the staged writes land (see `apply` in mod.rs).

use std::os::unix::fs::MetadataExt;

use super::attrs::Attrs;
use super::file::{current_meta, require_parent};
use super::{diff, rootfs, Ctx, Done, Outcome};
use crate::config::schema;
use crate::edits::{Edit, MAX_FILE_BYTES};

/// Mode and owner of a file an edit creates (an existing file keeps its own).
pub(crate) struct NewFile {
    pub mode: u32,
    /// `None`: the agent's own.
    pub ids: Option<(u32, u32)>,
}

pub(crate) fn apply(a: &Attrs, ctx: &Ctx, rtype: &str, name: &str) -> Outcome {
    apply_as(a, ctx, rtype, name, NewFile { mode: 0o644, ids: None })
}

pub(crate) fn apply_as(a: &Attrs, ctx: &Ctx, rtype: &str, name: &str, new_file: NewFile) -> Outcome {
    let (target, path) = ctx.target_path(a)?;
    let mut values = std::collections::BTreeMap::new();
    for attr in schema::attrs_of(rtype).unwrap_or_default() {
        let value = match attr.kind {
            schema::Kind::List => a.list(attr.name)?.map(|items| items.join(" ")),
            _ => a.string(attr.name)?,
        };
        if let Some(v) = value {
            values.insert(attr.name, v);
        }
    }
    let edit = Edit::parse(rtype, name, &|k| values.get(k).cloned())?
        .ok_or_else(|| format!("{rtype} is not an edit type"))?;
    let create = a.bool("create")?.unwrap_or(false);
    if let (false, Some(dir)) = (ctx.noop, path.parent()) {
        ctx.batch.sweep_once(dir);
    }
    let current = current_meta(&path)?;
    let old = match &current {
        Some(m) if m.file_type().is_symlink() => {
            return Err(format!("{target} is a symlink; refusing to edit through it").into())
        }
        Some(m) if !m.is_file() => return Err(format!("{target} is not a regular file").into()),
        Some(m) if m.len() > MAX_FILE_BYTES => {
            return Err(format!(
                "{target} is larger than {} MiB; edits are for configuration files",
                MAX_FILE_BYTES >> 20
            )
            .into())
        }
        Some(_) => {
            let bytes = rootfs::read_nofollow(&path).map_err(|e| format!("reading {target}: {e}"))?;
            String::from_utf8(bytes)
                .map_err(|_| format!("{target} is not UTF-8 text; {rtype} edits text files only"))?
        }
        None if create || edit.only_removes() => String::new(),
        None => {
            return Err(format!(
            "{target} does not exist; manage it with a file resource and depend on it, or set create: true"
        )
            .into())
        }
    };
    let new = edit.apply(&old).map_err(|e| format!("{target}: {e}"))?;
    if new == old {
        return Ok(Done::unchanged());
    }
    let host_path = path.to_string_lossy();
    let readable_by_all = match &current {
        Some(m) => m.mode() & 0o004 != 0,
        None => new_file.mode & 0o004 != 0,
    };
    let report = if ctx.secret_files.held_secret(&host_path) {
        "content changed (secret-bearing file, diff withheld)".to_string()
    } else if !readable_by_all {
        "content changed (not readable by other users, diff withheld)".to_string()
    } else {
        diff::line_diff(&old, &new)
    };
    let report = match current {
        None => format!("created {target}\n{report}"),
        Some(_) => report,
    };
    if current.is_none() {
        require_parent(&path, ctx)?;
    }
    if !ctx.noop {
        let (own_uid, own_gid) = new_file.ids.unwrap_or_else(rootfs::own_ids);
        let (mode, uid, gid) = match &current {
            Some(m) => (m.mode() & 0o7777, m.uid(), m.gid()),
            None => (new_file.mode, own_uid, own_gid),
        };
        ctx.batch.stage_file(&path, new.as_bytes(), mode, (uid, gid))?;
    }
    Ok(Done::changed(report))
}
