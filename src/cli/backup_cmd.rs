//! `vigocli backup create FILE` and `backup restore FILE`: one tar archive of an installation
//! — the database (SQLite's online backup, so the server keeps running), the vault's encrypted
//! files and passphrase verifier, the certificates, the config tree and its last good copy, and
//! published releases — with a manifest of every file's SHA-256 and the audit chain's head.
//!
//! The vault's master key is left out unless `--include-master-key`: an archive with it opens
//! every secret, so by default the key is kept apart (offline) and given back at restore.
//! Restore refuses a base directory a server is running on, or one that already holds an
//! installation; it unpacks into a staging directory, checks every hash, the master key and the
//! audit chain there, and only then moves the files into place.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use argh::{ArgsInfo, FromArgs};
use serde_json::{json, Value};

use super::audited::audited;
use super::{operator_actor, Context};
use crate::audit::Event;
use crate::exit::{CmdResult, Failure};
use crate::paths::ServerPaths;
use crate::secrets::Provider;

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "backup")]
/// Back up an installation into one archive, or restore one into an empty base directory.
pub struct BackupArgs {
    #[argh(subcommand)]
    command: BackupCommand,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand)]
enum BackupCommand {
    Create(CreateArgs),
    Restore(RestoreArgs),
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(
    subcommand,
    name = "create",
    note = "The archive holds private keys (TLS, the CA) and the encrypted vault: it is written 0600; keep it as you keep the server. The master key is left out unless --include-master-key: keep it apart, offline."
)]
/// Write the installation to FILE (a tar archive, 0600), while the server runs. Audited.
struct CreateArgs {
    /// the archive to write (must not exist)
    #[argh(positional)]
    file: String,
    /// put the vault's master key in the archive too (it then opens every secret)
    #[argh(switch)]
    include_master_key: bool,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "restore")]
/// Restore FILE into this base directory, which must hold no installation and no running
/// server. Exit 3 when refused; nothing is left behind on failure.
struct RestoreArgs {
    /// the archive `backup create` wrote
    #[argh(positional)]
    file: String,
    /// the vault's master key file, when the archive does not hold it
    #[argh(option)]
    master_key: Option<String>,
}

const MANIFEST: &str = "vigo-backup.json";
const FORMAT: u64 = 1;
/// The largest archive member read back (a release binary is the biggest thing in one).
const MAX_MEMBER: u64 = 1 << 30;

/// Where each part of an installation lives, by its name in the archive.
fn parts(p: &ServerPaths) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("secrets", p.secrets_dir.clone()),
        ("secrets-verifier.json", p.verifier.clone()),
        ("tls", p.tls_dir.clone()),
        ("config", p.config_dir.clone()),
        ("config.last-good", p.base.join("config.last-good")),
        ("config.last-good.json", p.base.join("config.last-good.json")),
        ("releases", p.releases_dir.clone()),
    ]
}

pub fn run(ctx: &Context, a: BackupArgs) -> CmdResult {
    match a.command {
        BackupCommand::Create(c) => create(ctx, c),
        BackupCommand::Restore(r) => restore(ctx, r),
    }
}

fn failed(what: impl std::fmt::Display) -> Failure {
    Failure::failed(what.to_string())
}

/// Every regular file under `path` (or `path` itself), with its name in the archive.
fn files_under(
    name: &str,
    path: &Path,
    skip: &Path,
    out: &mut Vec<(String, PathBuf)>,
) -> Result<(), Failure> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(failed(format!("{}: {e}", path.display()))),
    };
    if path == skip {
        return Ok(());
    }
    if meta.is_file() {
        out.push((name.to_string(), path.to_path_buf()));
    } else if meta.is_dir() {
        let mut entries: Vec<_> = fs::read_dir(path).map_err(failed)?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let child = e.file_name().to_string_lossy().into_owned();
            // Temp files of an interrupted write are not part of the installation.
            if child.starts_with(".tmp") || child.ends_with(".tmp") {
                continue;
            }
            files_under(&format!("{name}/{child}"), &e.path(), skip, out)?;
        }
    } else {
        eprintln!("warning: {} is neither a file nor a directory; not archived", path.display());
    }
    Ok(())
}

fn create(ctx: &Context, c: CreateArgs) -> CmdResult {
    let out_path = PathBuf::from(&c.file);
    if out_path.exists() {
        return Err(Failure::usage(format!("{} exists; name a new file", out_path.display())));
    }
    let p = &ctx.paths;
    let conn = crate::store::open(&p.db).map_err(failed)?;
    let staging = tempfile_dir(out_path.parent().unwrap_or(Path::new(".")))?;
    let result = (|| {
        let db_copy = staging.path.join("vigo.db");
        crate::store::maint::backup_to(&conn, &db_copy).map_err(failed)?;
        let head = crate::store::audit_log::head(&rusqlite::Connection::open(&db_copy).map_err(failed)?)
            .map_err(failed)?
            .map(|(seq, hash)| (seq, crate::crypto::hex_encode(&hash)));
        let mut members = vec![("vigo.db".to_string(), db_copy)];
        let skip = if c.include_master_key { PathBuf::new() } else { p.key_file.clone() };
        for (name, path) in parts(p) {
            files_under(name, &path, &skip, &mut members)?;
        }
        if c.include_master_key {
            members.retain(|(_, path)| *path != p.key_file);
            members.push(("master.key".into(), p.key_file.clone()));
        }
        let tmp = out_path.with_extension("partial");
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| failed(format!("{}: {e}", tmp.display())))?;
        let written = write_archive(file, &members, head, c.include_master_key);
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, &out_path).map_err(failed)?;
        Ok(members.len())
    })();
    drop(staging);
    let count = result?;
    let actor = operator_actor();
    let detail = json!({ "files": count, "master_key_included": c.include_master_key });
    audited(ctx, Event::new(&actor, "backup.created", &c.file).detail(detail), || Ok(()))?;
    println!(
        "wrote {} ({count} files{})",
        out_path.display(),
        if c.include_master_key { ", with the master key" } else { "" }
    );
    if !c.include_master_key {
        println!("the master key is not in it: keep {} apart, offline", p.key_file.display());
    }
    Ok(())
}

fn write_archive(
    file: fs::File,
    members: &[(String, PathBuf)],
    head: Option<(i64, String)>,
    with_key: bool,
) -> Result<(), Failure> {
    let mut tar = tar::Builder::new(file);
    let mut hashes = BTreeMap::new();
    for (name, path) in members {
        let bytes = fs::read(path).map_err(|e| failed(format!("{}: {e}", path.display())))?;
        hashes.insert(name.clone(), crate::crypto::sha256_hex(&bytes));
        append(&mut tar, name, &bytes, 0o600)?;
    }
    let manifest = json!({
        "format": FORMAT,
        "created_at": crate::util::time::now_rfc3339(),
        "vigo_version": crate::release::version(),
        "audit_head": head.map(|(seq, hash)| json!({ "seq": seq, "hash": hash })),
        "master_key_included": with_key,
        "files": hashes,
    });
    append(&mut tar, MANIFEST, serde_json::to_vec_pretty(&manifest).map_err(failed)?.as_slice(), 0o600)?;
    let mut file = tar.into_inner().map_err(failed)?;
    file.flush().and_then(|_| file.sync_all()).map_err(failed)
}

fn append(tar: &mut tar::Builder<fs::File>, name: &str, bytes: &[u8], mode: u32) -> Result<(), Failure> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(mode);
    header.set_mtime(crate::util::time::unix_now().max(0) as u64);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, name, bytes).map_err(failed)
}

/// A private directory, removed with everything in it when dropped.
struct TempDir {
    path: PathBuf,
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

fn tempfile_dir(beside: &Path) -> Result<TempDir, Failure> {
    let rand = crate::crypto::hex_encode(&crate::crypto::random_bytes(8).map_err(failed)?);
    let path = beside.join(format!(".vigo-backup-{rand}"));
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&path)
        .map_err(|e| failed(format!("{}: {e}", path.display())))?;
    Ok(TempDir { path })
}

/// An archive member name that can only land inside the staging directory.
fn safe_name(name: &str) -> bool {
    let path = Path::new(name);
    !name.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)))
}

fn restore(ctx: &Context, r: RestoreArgs) -> CmdResult {
    let p = &ctx.paths;
    fs::create_dir_all(&p.base).map_err(|e| failed(format!("{}: {e}", p.base.display())))?;
    let _one = crate::util::lock::FileLock::acquire(&p.server_lock, None, "vigocli backup restore").map_err(
        |_| {
            Failure::refused(format!("a server is running on {}; stop it before restoring", p.base.display()))
        },
    )?;
    let occupied: Vec<String> = std::iter::once(("vigo.db", p.db.clone()))
        .chain(parts(p))
        .filter(|(_, path)| fs::symlink_metadata(path).is_ok())
        .map(|(name, _)| name.to_string())
        .collect();
    if !occupied.is_empty() || p.key_file.exists() {
        return Err(Failure::refused(format!(
            "{} already holds an installation ({}); restore into an empty base directory",
            p.base.display(),
            occupied.join(", ")
        )));
    }
    let staging = tempfile_dir(&p.base)?;
    let (manifest, names) = unpack(Path::new(&r.file), &staging.path)?;
    check_manifest(&manifest, &names, &staging.path)?;
    let key = match (manifest["master_key_included"].as_bool(), &r.master_key) {
        (Some(true), _) => fs::read(staging.path.join("master.key")).map_err(failed)?,
        (_, Some(file)) => fs::read(file).map_err(|e| Failure::usage(format!("--master-key {file}: {e}")))?,
        _ => {
            return Err(Failure::usage(
                "the archive holds no master key: give the one it was made with (--master-key FILE)",
            ))
        }
    };
    check_key_opens_vault(&key, &staging.path.join("secrets"))?;
    check_audit(&staging.path.join("vigo.db"), &manifest)?;
    // Everything checked: move into place, the database last (a half-moved restore has none).
    for (name, dest) in parts(p) {
        let from = staging.path.join(name);
        if from.exists() {
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(failed)?;
            }
            fs::rename(&from, &dest)
                .map_err(|e| failed(format!("moving {name} to {}: {e}", dest.display())))?;
        }
    }
    crate::util::fsutil::atomic_write(&p.key_file, &key, 0o600).map_err(failed)?;
    fs::rename(staging.path.join("vigo.db"), &p.db).map_err(failed)?;
    drop(staging);
    let actor = operator_actor();
    audited(ctx, Event::new(&actor, "backup.restored", &r.file), || Ok(()))?;
    println!("restored {} into {} ({} files); start the server", r.file, p.base.display(), names.len());
    Ok(())
}

/// Unpacks regular files with safe names into `into` (files 0600, directories 0700); returns
/// the manifest and every member name.
fn unpack(archive: &Path, into: &Path) -> Result<(Value, Vec<String>), Failure> {
    let file = fs::File::open(archive).map_err(|e| Failure::usage(format!("{}: {e}", archive.display())))?;
    let mut tar = tar::Archive::new(file);
    let mut names = Vec::new();
    let mut manifest = None;
    for entry in tar.entries().map_err(failed)? {
        let mut entry =
            entry.map_err(|e| failed(format!("{} is not a readable archive: {e}", archive.display())))?;
        let name = entry.path().map_err(failed)?.to_string_lossy().into_owned();
        let size = entry.header().size().map_err(failed)?;
        if entry.header().entry_type() != tar::EntryType::Regular || !safe_name(&name) || size > MAX_MEMBER {
            return Err(failed(format!(
                "{} holds {:?}, which no vigo backup holds (only regular files with plain relative names); refusing it",
                archive.display(),
                crate::util::text::excerpt(&name)
            )));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        entry.read_to_end(&mut bytes).map_err(failed)?;
        if name == MANIFEST {
            manifest = Some(
                serde_json::from_slice::<Value>(&bytes).map_err(|e| failed(format!("the manifest: {e}")))?,
            );
            continue;
        }
        let dest = into.join(&name);
        if let Some(parent) = dest.parent() {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(parent).map_err(failed)?;
        }
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&dest)
            .map_err(|e| failed(format!("{name}: {e} (is it in the archive twice?)")))?;
        out.write_all(&bytes).and_then(|_| out.sync_all()).map_err(failed)?;
        names.push(name);
    }
    let manifest = manifest
        .ok_or_else(|| failed(format!("{} has no {MANIFEST}: not a vigo backup", archive.display())))?;
    if manifest["format"].as_u64() != Some(FORMAT) {
        return Err(failed(format!("{} is a backup format this vigo does not know", archive.display())));
    }
    Ok((manifest, names))
}

/// Every file the manifest lists is there with its hash, and nothing else is.
fn check_manifest(manifest: &Value, names: &[String], dir: &Path) -> Result<(), Failure> {
    let listed = manifest["files"].as_object().ok_or_else(|| failed("the manifest lists no files"))?;
    if listed.len() != names.len() || names.iter().any(|n| !listed.contains_key(n)) {
        return Err(failed(
            "the archive and its manifest list different files; it was changed after it was made",
        ));
    }
    for (name, want) in listed {
        let got = crate::crypto::sha256_hex(&fs::read(dir.join(name)).map_err(failed)?);
        if Some(got.as_str()) != want.as_str() {
            return Err(failed(format!(
                "{name} does not match its SHA-256 in the manifest; the archive was changed or damaged"
            )));
        }
    }
    if !names.iter().any(|n| n == "vigo.db") {
        return Err(failed("the archive holds no database"));
    }
    Ok(())
}

/// The key must be a master key, and open the vault's files.
fn check_key_opens_vault(key: &[u8], secrets: &Path) -> Result<(), Failure> {
    let text = String::from_utf8_lossy(key);
    if text.trim().len() != 64 || !text.trim().bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Failure::usage("the master key must be 64 hex characters (the .master.key file)"));
    }
    let probe = secrets.with_file_name(".probe.key");
    fs::write(&probe, key).map_err(failed)?;
    fs::set_permissions(&probe, fs::Permissions::from_mode(0o600)).map_err(failed)?;
    let opened = crate::secrets::LocalVault::open(secrets, &probe).and_then(|v| {
        let keys = v.list()?;
        match keys.first() {
            Some(k) => v.get(k).map(|_| ()),
            None => Ok(()),
        }
    });
    let _ = fs::remove_file(&probe);
    opened.map_err(|e| {
        failed(format!(
            "the master key does not open the archived vault ({e}); give the key it was made with"
        ))
    })
}

/// The restored chain holds, and ends where it ended when the archive was made.
fn check_audit(db: &Path, manifest: &Value) -> Result<(), Failure> {
    let conn = rusqlite::Connection::open(db).map_err(failed)?;
    match crate::audit::verify(&conn, manifest["audit_head"]["hash"].as_str()).map_err(failed)? {
        crate::audit::Verdict::Intact { .. } => Ok(()),
        crate::audit::Verdict::Broken { seq, reason } => {
            Err(failed(format!("the archived audit chain is broken at row {seq}: {reason}; not restored")))
        }
    }
}
