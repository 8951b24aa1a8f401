//! The file executor: content (or `source`, a file on the host), mode, owner, group, ensure,
//! and `validate`. Content is replaced atomically; mode and ownership of an existing file are
//! kept unless the resource names them. Content is bytes: `content: secret:KEY` alone writes
//! the value as stored, binary or not (see `attrs`). New content that `validate` refuses is
//! never put in place.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use zeroize::Zeroizing;

use super::attrs::Attrs;
use super::private_temp::PrivateTemp;
use super::process::{self, Spec};
use super::rootfs::{self, Meta};
use super::{cmdline, diff, Ctx, Done, Fail, Outcome};
use crate::crypto::SecretBytes;

/// How long a `validate` command may take.
const VALIDATE_TIMEOUT: Duration = Duration::from_secs(120);
/// The largest `source` file copied.
const MAX_SOURCE_BYTES: u64 = 64 * 1024 * 1024;

pub(crate) fn current_meta(path: &Path) -> Result<Option<fs::Metadata>, String> {
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Fails early, with a hint, when the directory a new entry goes into does not exist. A noop
/// run asks too (so it predicts the real run's failure), counting the directories it would
/// have created before.
pub(crate) fn require_parent(path: &Path, ctx: &Ctx) -> Result<(), String> {
    let exists = |dir: &Path| dir.is_dir() || (ctx.noop && ctx.batch.noop_created(dir));
    match path.parent() {
        Some(dir) if !exists(dir) => Err(format!(
            "parent directory {} does not exist (add a directory resource and depend on it)",
            dir.display()
        )),
        _ => Ok(()),
    }
}

pub(crate) fn apply(a: &Attrs, ctx: &Ctx) -> Outcome {
    let (target, path) = ctx.target_path(a)?;
    let present = a.ensure_present(&["present", "file"], &["absent"])?;
    let current = current_meta(&path)?;
    if let (false, Some(dir)) = (ctx.noop, path.parent()) {
        ctx.batch.sweep_once(dir);
    }
    if let Some(m) = &current {
        if m.is_dir() {
            return Err(format!("{target} is a directory; manage it with a directory resource").into());
        }
        if m.file_type().is_symlink() && present {
            return Err(format!(
                "{target} is a symlink; refusing to write through it (manage it as a symlink, or remove it)"
            )
            .into());
        }
    }
    let host_path = path.to_string_lossy().into_owned();
    if !present {
        let Some(_) = current else { return Ok(Done::unchanged()) };
        if !ctx.noop {
            fs::remove_file(&path).map_err(|e| format!("removing {target}: {e}"))?;
            ctx.batch.note_dir_of(&path);
        }
        ctx.secret_files.clears(ctx.index, &host_path);
        return Ok(Done::changed(format!("removed {target}")));
    }

    let mut meta = Meta::from_attrs(a, ctx.root)?;
    let source = a.string("source")?;
    let (content, private_source) = match &source {
        Some(_) if a.template("content").is_some() => {
            return Err("a file takes `content` or `source`, not both".to_string().into())
        }
        Some(src) => read_source(src, ctx).map(|(bytes, private)| (Some(bytes), private))?,
        None => (a.bytes("content")?, false),
    };
    let secret_keys = a.keys_in("content");
    if !secret_keys.is_empty() && meta.mode.is_none() {
        // A file holding a secret is private unless the resource says otherwise.
        meta.mode = Some(0o600);
    }
    let mut lines = Vec::new();
    let mut write = current.is_none();
    // With `backup: true`, the content being replaced, and whether it held a secret.
    let mut keep_earlier: Option<(Zeroizing<Vec<u8>>, bool)> = None;
    if current.is_none() {
        lines.push(format!("created {target}"));
    }
    if let Some(new) = &content {
        let old = match &current {
            Some(_) => Some(Zeroizing::new(
                rootfs::read_nofollow(&path).map_err(|e| format!("reading {target}: {e}"))?,
            )),
            None => None,
        };
        let template = a.template("content");
        let held_secret = ctx.secret_files.held_secret(&host_path);
        if !secret_keys.is_empty() {
            ctx.secret_files.holds(ctx.index, &host_path, template.unwrap_or_default());
        } else if held_secret {
            ctx.secret_files.clears(ctx.index, &host_path);
        }
        if old.as_deref().map(Vec::as_slice) != Some(new.expose()) {
            write = true;
            if a.bool("backup")? == Some(true) {
                keep_earlier = old.clone().map(|o| (o, held_secret));
            }
            let old = old.as_deref().map(Vec::as_slice).unwrap_or_default();
            if held_secret || !secret_keys.is_empty() {
                // What the file held may be a value this run does not know (rotated away, or
                // no longer referenced): find it, so that no output carries it either.
                ctx.secret_files.learn_old_content(&host_path, old, template);
            }
            lines.push(content_change(
                &secret_keys,
                held_secret,
                private_source,
                current.as_ref(),
                old,
                new.expose(),
            ));
        }
    }
    if let Some(m) = &current {
        lines.extend(meta.diff(m));
    }
    if lines.is_empty() {
        return Ok(Done::unchanged());
    }
    if write {
        require_parent(&path, ctx)?;
        // Checked in noop too, so noop predicts a refusal.
        if let (Some(command), Some(new)) = (a.no_secret("validate")?, &content) {
            validate(&command, &target, new.expose(), ctx)?;
        }
        if let Some((earlier, held_secret)) = &keep_earlier {
            lines.push(keep_backup(&host_path, earlier, *held_secret, ctx)?);
        }
    } else {
        refuse_shared_inode(&target, current.as_ref())?;
    }
    if !ctx.noop {
        if write {
            let (own_uid, own_gid) = rootfs::own_ids();
            let mode = meta.mode.or(current.as_ref().map(|m| m.mode() & 0o7777)).unwrap_or(0o644);
            let uid = meta.uid.or(current.as_ref().map(|m| m.uid())).unwrap_or(own_uid);
            let gid = meta.gid.or(current.as_ref().map(|m| m.gid())).unwrap_or(own_gid);
            let bytes = content.as_ref().map(|c| c.expose()).unwrap_or_default();
            ctx.batch.stage_file(&path, bytes, mode, (uid, gid))?;
        } else {
            meta.apply(&path)?;
        }
    }
    Ok(Done::changed(lines.join("\n")))
}

/// A `source` file on the host: confined to the root, under the same guardrails as a target
/// (the agent's own state is never copied out), read without following a symlink. The second
/// value: whether it is private (not readable by every local user), so its diff is withheld.
fn read_source(src: &str, ctx: &Ctx) -> Result<(SecretBytes, bool), Fail> {
    ctx.guardrails.check_path(src)?;
    let path = rootfs::confine(ctx.root, src)?;
    ctx.guardrails.check_host_path(&path)?;
    let meta = match current_meta(&path)? {
        None => return Err(format!("source {src} does not exist on this host").into()),
        Some(m) if !m.is_file() => {
            return Err(format!("source {src} is not a regular file (a symlink is not followed)").into())
        }
        Some(m) if m.len() > MAX_SOURCE_BYTES => {
            return Err(format!("source {src} is larger than {} MiB", MAX_SOURCE_BYTES >> 20).into())
        }
        Some(m) => m,
    };
    let bytes = rootfs::read_nofollow(&path).map_err(|e| format!("reading source {src}: {e}"))?;
    Ok((SecretBytes::new(bytes), meta.mode() & 0o004 == 0))
}

/// Keeps the content a write replaces (`backup: true`), unless it held a secret: a plaintext
/// copy would outlive a rotation. Returns the report line.
fn keep_backup(host_path: &str, earlier: &[u8], held_secret: bool, ctx: &Ctx) -> Result<String, String> {
    if held_secret {
        return Ok("no backup kept: the earlier content held a secret".into());
    }
    let Some(dir) = ctx.backup_dir else {
        return Err("backup: true needs the agent's state directory, which this run does not have".into());
    };
    if !ctx.noop {
        super::backup::save(dir, host_path, earlier)?;
    }
    Ok(format!("earlier content kept (vigo-agent restore {host_path})"))
}

/// Runs `validate` on the new content in a private temp file (every `%` in the command becomes
/// its path). A refusal fails the resource and leaves the old file in place.
fn validate(command: &str, target: &str, bytes: &[u8], ctx: &Ctx) -> Result<(), Fail> {
    ctx.guardrails.check_command(command, None)?;
    let temp = PrivateTemp::create("vigo-validate", bytes, "the temp file to validate")?;
    let temp_path = temp.path().to_string_lossy().into_owned();
    let argv = cmdline::argv(command)?.into_iter().map(|w| w.replace('%', &temp_path)).collect();
    let ran = process::run(Spec::new(argv, VALIDATE_TIMEOUT))?;
    drop(temp);
    let how = if ran.timed_out {
        format!("timed out after {}s", VALIDATE_TIMEOUT.as_secs())
    } else if ran.success() {
        return Ok(());
    } else {
        ran.how()
    };
    Err(Fail {
        error: format!(
            "validate `{command}` {how}: the new content of {target} was refused and the file left as it was"
        ),
        output: ran.output,
        guardrail: None,
    })
}

/// How a content change is reported. A diff only for a file that never held a secret (new
/// content, old content by the record) and that every local user may read anyway: the report
/// goes to the server, where viewers read it.
fn content_change(
    secret_keys: &std::collections::BTreeSet<String>,
    held_secret: bool,
    private_source: bool,
    current: Option<&fs::Metadata>,
    old: &[u8],
    new: &[u8],
) -> String {
    if !secret_keys.is_empty() {
        let keys: Vec<String> = secret_keys.iter().map(|k| format!("secret:{k}")).collect();
        format!("content changed ({})", keys.join(", "))
    } else if held_secret {
        "content changed (secret-bearing file, diff withheld)".to_string()
    } else if private_source {
        "content changed (copied from a file other users cannot read, diff withheld)".to_string()
    } else if current.is_some_and(|m| m.mode() & 0o004 == 0) {
        "content changed (not readable by other users, diff withheld)".to_string()
    } else {
        // Content without a secret is text from the config; the old file may be anything.
        diff::line_diff(&String::from_utf8_lossy(old), &String::from_utf8_lossy(new))
    }
}

/// A chmod or chown in place changes every name of the inode. A second hard link may live
/// outside the target root or belong to someone else (the attack systemd-tmpfiles also
/// refuses), so only a file with one name is changed in place.
fn refuse_shared_inode(target: &str, current: Option<&fs::Metadata>) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    match current {
        Some(m) if m.is_file() && m.nlink() > 1 => Err(format!(
            "{target} has {} hard links; changing its mode or owner in place would change the other names too (remove the extra links first)",
            m.nlink()
        )),
        _ => Ok(()),
    }
}
