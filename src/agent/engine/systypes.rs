//! Types built on the file and edit executors, so they share their confinement, atomic writes,
//! noop predictions and diffs: `cron` (a generated /etc/cron.d file), `sysctl` (a generated
//! /etc/sysctl.d file, and the live value under /proc/sys), `host` (an edit of /etc/hosts) and
//! `authorized_key` (an edit of a user's ~/.ssh/authorized_keys, also reached through the user
//! resource's `authorized_keys`) and `systemd_unit` (a unit file, and a daemon-reload when it
//! changed; enabling and starting it is the service type's job) and `repository` (a package
//! source file and its key, and a refresh of that source's index when either changed) and
//! `mount` (an /etc/fstab line and, on the running system, the mounted state).
//!
//! The live sysctl value is the running kernel's, like a service or a package: `--root` moves
//! the file into the root, not the kernel parameter.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::{json, Value};

use std::os::unix::fs::DirBuilderExt;

use super::attrs::Attrs;
use super::edit::NewFile;
use super::{edit, file, rootfs, Ctx, Done, Fail, Outcome};
use crate::bundle::CompiledResource;
use crate::crypto::SecretBytes;
use crate::edits::{cron, sysctl};

pub(crate) const TYPES: &[&str] =
    &["cron", "sysctl", "host", "authorized_key", "systemd_unit", "repository", "mount"];

pub(crate) fn apply(res: &CompiledResource, secrets: &BTreeMap<String, SecretBytes>, ctx: &Ctx) -> Outcome {
    let a = Attrs::new(res, secrets)?;
    match res.rtype.as_str() {
        "cron" => {
            let lowered = lower(res, "file", cron_file(&a, &res.name, ctx)?);
            file::apply(&Attrs::new(&lowered, secrets)?, ctx)
        }
        "sysctl" => sysctl(res, &a, secrets, ctx),
        "host" => {
            let mut attributes = res.attributes.clone();
            attributes.insert("target_path".into(), json!("/etc/hosts"));
            attributes.insert("create".into(), json!(true));
            let lowered = lower_map(res, "host", attributes);
            edit::apply(&Attrs::new(&lowered, secrets)?, ctx, "host", &res.name)
        }
        "systemd_unit" => systemd_unit(res, &a, secrets, ctx),
        "repository" => repository(res, &a, secrets, ctx),
        "mount" => mount(res, &a, secrets, ctx),
        "authorized_key" => authorized_key(res, &a.required("user")?, res.attributes.clone(), secrets, ctx),
        other => Err(format!("{other} is not a generated-file type").into()),
    }
}

/// The resource as another type with `attributes` (its name kept for reports and markers).
fn lower(res: &CompiledResource, rtype: &str, attributes: Value) -> CompiledResource {
    lower_map(res, rtype, attributes.as_object().cloned().unwrap_or_default())
}

/// `lower` with the attributes already a map (the resource's own, with a field added).
fn lower_map(
    res: &CompiledResource,
    rtype: &str,
    attributes: serde_json::Map<String, Value>,
) -> CompiledResource {
    CompiledResource {
        name: res.name.clone(),
        rtype: rtype.into(),
        attributes,
        depends_on: vec![],
        notify: vec![],
        watch_secret: vec![],
        when: None,
    }
}

fn cron_file(a: &Attrs, name: &str, ctx: &Ctx) -> Result<Value, super::Fail> {
    let job = a.required("job")?;
    cron::check_job_name(&job)?;
    let path = format!("/etc/cron.d/{job}");
    if a.string("ensure")?.as_deref() == Some("absent") {
        return Ok(json!({"target_path": path, "ensure": "absent"}));
    }
    let schedule = a.required("schedule")?;
    cron::check_schedule(&schedule)?;
    let command = a.no_secret("command")?.unwrap_or_default();
    cron::check_command(&command)?;
    let user = a.string("user")?.unwrap_or_else(|| "root".into());
    if !crate::util::users::is_account_name(&user) {
        return Err(format!("cron `user` {user:?} is not an account name").into());
    }
    // The job runs later, unattended: the same guardrails as a command run now.
    ctx.guardrails.check_command(&command, None)?;
    Ok(
        json!({"target_path": path, "content": cron::job_file(name, &schedule, &user, &command), "mode": "0644"}),
    )
}

fn sysctl(res: &CompiledResource, a: &Attrs, secrets: &BTreeMap<String, SecretBytes>, ctx: &Ctx) -> Outcome {
    let key = a.required("key")?;
    sysctl::check_key(&key)?;
    let value = a.required("value")?;
    sysctl::check_value(&value)?;
    let file = if a.bool("persist")?.unwrap_or(true) {
        json!({"target_path": sysctl::conf_path(&key), "content": sysctl::conf_file(&res.name, &key, &value), "mode": "0644"})
    } else {
        json!({"target_path": sysctl::conf_path(&key), "ensure": "absent"})
    };
    let lowered = lower(res, "file", file);
    let mut done = file::apply(&Attrs::new(&lowered, secrets)?, ctx)?;
    let live = Path::new("/proc/sys").join(sysctl::proc_path(&key));
    let read = || {
        fs::read_to_string(&live)
            .map_err(|e| format!("reading {}: {e} (is {key} a parameter of this kernel?)", live.display()))
    };
    let current = read()?;
    if sysctl::same_value(&current, &value) {
        return Ok(done);
    }
    if !ctx.noop {
        fs::write(&live, format!("{}\n", value.trim()))
            .map_err(|e| format!("setting {key} to {:?}: {e}", value.trim()))?;
        let now = read()?;
        if !sysctl::same_value(&now, &value) {
            return Err(format!(
                "the kernel kept {key} = {:?}; it does not take {:?}",
                now.trim(),
                value.trim()
            )
            .into());
        }
    }
    let line = format!(
        "live {key}: {} -> {}",
        current.split_whitespace().collect::<Vec<_>>().join(" "),
        value.trim()
    );
    done.diff = if done.diff.is_empty() { line } else { format!("{}\n{line}", done.diff) };
    Ok(Done { changed: true, ..done })
}

/// The account's uid, gid and home, read from the root's own /etc/passwd.
pub(crate) fn account(root: &Path, user: &str) -> Result<(u32, u32, String), String> {
    if !crate::util::users::is_account_name(user) {
        return Err(format!("{user:?} is not an account name"));
    }
    let passwd = rootfs::read_root_file(root, "/etc/passwd")?.unwrap_or_default();
    let row: Vec<&str> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 7 && f[0] == user)
        .ok_or_else(|| format!("user {user} does not exist (add a user resource and depend on it)"))?;
    let id = |s: &str| s.parse::<u32>().map_err(|_| format!("user {user} has a broken /etc/passwd line"));
    let home = row[5].to_string();
    if !home.starts_with('/') || home.split('/').any(|s| s == "..") {
        return Err(format!("user {user} has no usable home directory ({home:?})"));
    }
    Ok((id(row[2])?, id(row[3])?, home))
}

/// One key in `user`'s authorized_keys: ~/.ssh is made (0700, the user's) when missing, and a
/// new file is 0600 and the user's, as sshd's StrictModes wants them.
pub(crate) fn authorized_key(
    res: &CompiledResource,
    user: &str,
    mut attributes: serde_json::Map<String, Value>,
    secrets: &BTreeMap<String, SecretBytes>,
    ctx: &Ctx,
) -> Outcome {
    let (uid, gid, home) = account(ctx.root, user)?;
    let ssh_dir = format!("{}/.ssh", home.trim_end_matches('/'));
    ctx.guardrails.check_path(&ssh_dir)?;
    let dir = rootfs::confine(ctx.root, &ssh_dir)?;
    ctx.guardrails.check_host_path(&dir)?;
    let present = attributes.get("ensure").and_then(Value::as_str) != Some("absent");
    let mut made_dir = None;
    match file::current_meta(&dir)? {
        Some(m) if m.is_dir() => {}
        Some(_) => return Err(format!("{ssh_dir} is not a directory (a symlink is not followed)").into()),
        None if !present => return Ok(Done::unchanged()),
        None if ctx.noop => {
            ctx.batch.note_noop_created(&dir);
            made_dir = Some(format!("created {ssh_dir} (0700)"));
        }
        None => {
            file::require_parent(&dir, ctx)?;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&dir)
                .map_err(|e| format!("creating {ssh_dir}: {e}"))?;
            std::os::unix::fs::lchown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("chown {ssh_dir}: {e}"))?;
            made_dir = Some(format!("created {ssh_dir} (0700)"));
        }
    }
    attributes.insert("target_path".into(), json!(format!("{ssh_dir}/authorized_keys")));
    attributes.insert("create".into(), json!(true));
    let lowered = lower_map(res, "authorized_key", attributes);
    let new_file = NewFile { mode: 0o600, ids: Some((uid, gid)) };
    let done = edit::apply_as(&Attrs::new(&lowered, secrets)?, ctx, "authorized_key", &res.name, new_file)?;
    Ok(match made_dir {
        Some(line) => Done { changed: true, diff: format!("{line}\n{}", done.diff), ..done },
        None => done,
    })
}

/// The user resource's `authorized_keys`: each key present in the user's authorized_keys once
/// the account exists (a noop run that would create the account says the keys would follow).
pub(crate) fn user_keys(
    res: &CompiledResource,
    a: &Attrs,
    secrets: &BTreeMap<String, SecretBytes>,
    ctx: &Ctx,
    done: Done,
) -> Outcome {
    let Some(keys) = a.list("authorized_keys")?.filter(|k| !k.is_empty()) else { return Ok(done) };
    if a.string("ensure")?.as_deref() == Some("absent") {
        return Ok(done);
    }
    let user = a.required("username")?;
    let join = |done: Done, more: Done| Done {
        changed: done.changed || more.changed,
        diff: [done.diff, more.diff].into_iter().filter(|d| !d.is_empty()).collect::<Vec<_>>().join("\n"),
        output: done.output,
    };
    if ctx.noop && account(ctx.root, &user).is_err() {
        let more =
            Done::changed(format!("would add {} authorized key(s) once the account exists", keys.len()));
        return Ok(join(done, more));
    }
    let mut attributes = serde_json::Map::new();
    attributes.insert("key".into(), json!(keys.join("\n")));
    let more = authorized_key(res, &user, attributes, secrets, ctx)?;
    Ok(join(done, more))
}

/// A unit file in /etc/systemd/system. When it changed, the staged write is put in place at
/// once and systemd reloads its units, so a service resource after it (depends_on or notify)
/// starts what the file now says. Under `--root` there is no running systemd to reload.
fn systemd_unit(
    res: &CompiledResource,
    a: &Attrs,
    secrets: &BTreeMap<String, SecretBytes>,
    ctx: &Ctx,
) -> Outcome {
    let unit = a.required("unit")?;
    crate::edits::units::check_unit_file_name(&unit)?;
    let path = format!("/etc/systemd/system/{unit}");
    let file = if a.string("ensure")?.as_deref() == Some("absent") {
        json!({"target_path": path, "ensure": "absent"})
    } else {
        json!({"target_path": path, "content": a.required("content")?, "mode": "0644"})
    };
    let mut done = file::apply(&Attrs::new(&lower(res, "file", file), secrets)?, ctx)?;
    if !done.changed {
        return Ok(done);
    }
    if !ctx.noop {
        if let Some((_, error)) = ctx.batch.commit().into_iter().next() {
            return Err(error.into());
        }
    }
    if ctx.root != Path::new("/") {
        done.output = "systemd is not reloaded under --root".into();
        return Ok(done);
    }
    if ctx.noop {
        done.diff.push_str("\nwould run systemctl daemon-reload");
        return Ok(done);
    }
    let ran = super::process::run_tool("systemctl", &["daemon-reload"], std::time::Duration::from_secs(300))?;
    if !ran.success() {
        let how = ran.how();
        return Err(Fail {
            error: format!("systemctl daemon-reload {how}"),
            output: ran.output,
            guardrail: None,
        });
    }
    done.diff.push_str("\nsystemctl daemon-reload");
    Ok(done)
}

/// A package repository: its key and source file (see `crate::edits::repos`). When either
/// changed, both are put in place at once and this source's index alone is fetched again, so
/// a package resource after it (depends_on) sees what the repository offers.
fn repository(
    res: &CompiledResource,
    a: &Attrs,
    secrets: &BTreeMap<String, SecretBytes>,
    ctx: &Ctx,
) -> Outcome {
    let repo = crate::edits::repos::Repo {
        name: a.required("repo")?,
        url: a.string("url")?.unwrap_or_default(),
        suites: a.string("suites")?.unwrap_or_else(|| "./".into()),
        components: a.list("components")?.unwrap_or_default(),
        key: a.string("key")?,
    };
    let absent = a.string("ensure")?.as_deref() == Some("absent");
    if !absent {
        repo.check()?;
    }
    let debian = super::package::debian_family()?;
    let (key_path, source_path, source) = if debian {
        (repo.apt_key_path(), repo.apt_source_path(), repo.apt_source(&res.name))
    } else {
        (repo.rpm_key_path(), repo.rpm_repo_path(), repo.rpm_repo(&res.name))
    };
    let file = |path: &str, content: Option<&str>| match content {
        Some(c) if !absent => json!({"target_path": path, "content": c, "mode": "0644"}),
        _ => json!({"target_path": path, "ensure": "absent"}),
    };
    let mut lines = Vec::new();
    for (path, content) in
        [(key_path.as_str(), repo.key.as_deref()), (source_path.as_str(), Some(source.as_str()))]
    {
        let done = file::apply(&Attrs::new(&lower(res, "file", file(path, content)), secrets)?, ctx)?;
        if done.changed {
            lines.push(done.diff);
        }
    }
    if lines.is_empty() {
        return Ok(Done::unchanged());
    }
    if !ctx.noop {
        if let Some((_, error)) = ctx.batch.commit().into_iter().next() {
            return Err(error.into());
        }
    }
    let mut done = Done::changed(lines.join("\n"));
    if absent || ctx.root != Path::new("/") {
        return Ok(done);
    }
    let name = format!("vigo-{}", repo.name);
    let (tool, args): (&str, Vec<String>) = if debian {
        let list = format!("Dir::Etc::sourcelist={source_path}");
        (
            "apt-get",
            vec![
                "-q".into(),
                "-o".into(),
                list,
                "-o".into(),
                "Dir::Etc::sourceparts=-".into(),
                "-o".into(),
                "APT::Get::List-Cleanup=0".into(),
                "update".into(),
            ],
        )
    } else {
        ("dnf", vec!["-q".into(), "makecache".into(), "--repo".into(), name.clone()])
    };
    if ctx.noop {
        done.diff.push_str(&format!("\nwould refresh its index ({tool})"));
        return Ok(done);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let ran = super::process::run_tool(tool, &refs, std::time::Duration::from_secs(600))?;
    // apt-get update exits 0 even when a source failed; its "W:"/"E:" lines say so.
    let failed = !ran.success()
        || ran
            .output
            .lines()
            .any(|l| l.starts_with("E:") || l.starts_with("W: Failed") || l.contains("is not signed"));
    if failed {
        return Err(Fail {
            error: format!("refreshing the index of {name} failed ({tool})"),
            output: ran.output,
            guardrail: None,
        });
    }
    done.diff.push_str(&format!("\nrefreshed its index ({tool})"));
    done.output = ran.output;
    Ok(done)
}

/// Mount points whose live state a bundle may not change (the fstab line is fine): unmounting
/// or covering one of them takes the running system down.
const SYSTEM_MOUNTS: &[&str] = &[
    "/", "/usr", "/etc", "/var", "/boot", "/proc", "/sys", "/dev", "/run", "/bin", "/sbin", "/lib", "/lib64",
    "/tmp", "/home", "/root",
];

/// Whether something is mounted at `path` now (/proc/self/mountinfo, octal escapes undone).
fn is_mounted(path: &str) -> Result<bool, String> {
    let info = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
    let unescape = |s: &str| {
        s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
    };
    Ok(info.lines().filter_map(|l| l.split(' ').nth(4)).any(|p| unescape(p) == path))
}

/// A mount: `ensure` mounted (default), unmounted, present (in fstab, mounted or not) or absent.
fn mount(res: &CompiledResource, a: &Attrs, secrets: &BTreeMap<String, SecretBytes>, ctx: &Ctx) -> Outcome {
    let ensure = a.string("ensure")?.unwrap_or_else(|| "mounted".into());
    let want_mounted = match ensure.as_str() {
        "mounted" => Some(true),
        "unmounted" | "absent" => Some(false),
        "present" => None,
        other => {
            return Err(format!("ensure must be mounted, unmounted, present or absent, not {other:?}").into())
        }
    };
    let path = a.required("path")?;
    let mut attributes = res.attributes.clone();
    attributes.insert("target_path".into(), json!("/etc/fstab"));
    attributes.insert("create".into(), json!(true));
    attributes.insert("ensure".into(), json!(if ensure == "absent" { "absent" } else { "present" }));
    let lowered = lower_map(res, "mount", attributes);
    let mut done = edit::apply(&Attrs::new(&lowered, secrets)?, ctx, "mount", &res.name)?;
    let Some(want) = want_mounted else { return Ok(done) };
    if ctx.root != Path::new("/") {
        done.output = "the mounted state is not managed under --root".into();
        return Ok(done);
    }
    if is_mounted(&path)? == want {
        return Ok(done);
    }
    let normal = format!("/{}", path.split('/').filter(|s| !s.is_empty()).collect::<Vec<_>>().join("/"));
    if SYSTEM_MOUNTS.contains(&normal.as_str()) {
        return Err(Fail {
            error: format!(
                "a bundle may not {} {normal} on a running system",
                if want { "mount over" } else { "unmount" }
            ),
            output: String::new(),
            guardrail: Some(format!("protected-mount:{normal}")),
        });
    }
    let verb = if want { "mount" } else { "unmount" };
    let line = format!("{verb}ed {path}");
    if ctx.noop {
        done.diff = [done.diff, format!("would {verb} {path}")]
            .into_iter()
            .filter(|d| !d.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        return Ok(Done { changed: true, ..done });
    }
    let ran = if want {
        if !Path::new(&path).is_dir() {
            return Err(format!(
                "mount point {path} is not a directory (add a directory resource and depend on it)"
            )
            .into());
        }
        let (device, fstype) = (a.required("device")?, a.required("fstype")?);
        let options = a.string("options")?.unwrap_or_else(|| "defaults".into());
        super::process::run_tool(
            "mount",
            &["-t", &fstype, "-o", &options, &device, &path],
            std::time::Duration::from_secs(120),
        )?
    } else {
        super::process::run_tool("umount", &[&path], std::time::Duration::from_secs(120))?
    };
    if !ran.success() || is_mounted(&path)? != want {
        let how = ran.how();
        return Err(Fail {
            error: format!("{verb} {path} failed ({how})"),
            output: ran.output,
            guardrail: None,
        });
    }
    done.diff = [done.diff, line].into_iter().filter(|d| !d.is_empty()).collect::<Vec<_>>().join("\n");
    Ok(Done { changed: true, output: ran.output, ..done })
}
