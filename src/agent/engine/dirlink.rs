//! The directory and symlink executors.

use std::fs;
use std::path::Path;

use super::attrs::Attrs;
use super::file::{current_meta, require_parent};
use super::rootfs::{self, Meta};
use super::{Ctx, Done, Outcome};

pub(crate) fn directory(a: &Attrs, ctx: &Ctx) -> Outcome {
    let (target, path) = ctx.target_path(a)?;
    let present = a.ensure_present(&["present", "directory"], &["absent"])?;
    let current = current_meta(&path)?;
    if let Some(m) = &current {
        if !m.is_dir() {
            return Err(format!("{target} exists and is not a directory; refusing to replace it").into());
        }
    }
    if !present {
        if current.is_none() {
            return Ok(Done::unchanged());
        }
        if ctx.noop {
            // The real run would refuse a directory that is not empty: say so now.
            if fs::read_dir(&path).map_err(|e| format!("reading directory {target}: {e}"))?.next().is_some() {
                return Err(
                    format!("directory {target} is not empty; only empty directories are removed").into()
                );
            }
        } else {
            // Never recursive: deleting a tree is a decision for an exec, not a side effect.
            fs::remove_dir(&path)
                .map_err(|e| format!("removing directory {target} (only empty ones are removed): {e}"))?;
            ctx.batch.note_dir_of(&path);
        }
        return Ok(Done::changed(format!("removed directory {target}")));
    }
    let meta = Meta::from_attrs(a, ctx.root)?;
    let Some(m) = current else {
        require_parent(&path, ctx)?;
        if ctx.noop {
            ctx.batch.note_noop_created(&path);
        } else {
            fs::create_dir(&path).map_err(|e| format!("creating directory {target}: {e}"))?;
            let meta = Meta { mode: Some(meta.mode.unwrap_or(0o755)), ..meta };
            meta.apply(&path)?;
            ctx.batch.note_dir_of(&path);
        }
        return Ok(Done::changed(format!("created directory {target}")));
    };
    let lines = meta.diff(&m);
    if lines.is_empty() {
        return Ok(Done::unchanged());
    }
    if !ctx.noop {
        meta.apply(&path)?;
    }
    Ok(Done::changed(lines.join("\n")))
}

pub(crate) fn symlink(a: &Attrs, ctx: &Ctx) -> Outcome {
    let (target, path) = ctx.target_path(a)?;
    let present = a.ensure_present(&["present", "link"], &["absent"])?;
    let current = current_meta(&path)?;
    if current.as_ref().is_some_and(|m| m.is_dir()) {
        return Err(format!("{target} is a directory; refusing to replace it with a symlink").into());
    }
    if !present {
        match current {
            Some(m) if m.file_type().is_symlink() => {
                if !ctx.noop {
                    fs::remove_file(&path).map_err(|e| format!("removing {target}: {e}"))?;
                }
                return Ok(Done::changed(format!("removed symlink {target}")));
            }
            Some(_) => return Err(format!("{target} is not a symlink; refusing to remove it").into()),
            None => return Ok(Done::unchanged()),
        }
    }
    // The link text is stored verbatim: an absolute target means a path inside the root
    // (as it will be seen when the root is booted), so it is never resolved here.
    let points_to = a.required("points_to")?;
    let diff = match &current {
        Some(m) if m.file_type().is_symlink() => {
            let old = fs::read_link(&path).map_err(|e| format!("reading link {target}: {e}"))?;
            if old == Path::new(&points_to) {
                return Ok(Done::unchanged());
            }
            format!("{target} -> {} (was -> {})", points_to, old.display())
        }
        Some(_) => format!("{target}: regular file replaced by a symlink to {points_to}"),
        None => format!("created {target} -> {points_to}"),
    };
    require_parent(&path, ctx)?;
    if !ctx.noop {
        let tmp = rootfs::temp_beside(&path)?;
        std::os::unix::fs::symlink(&points_to, &tmp)
            .map_err(|e| format!("creating symlink {target}: {e}"))?;
        if let Err(e) = fs::rename(&tmp, &path) {
            let _ = fs::remove_file(&tmp);
            return Err(format!("replacing {target}: {e}").into());
        }
        ctx.batch.note_dir_of(&path);
    }
    Ok(Done::changed(diff))
}
