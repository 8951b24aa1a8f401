//! `vigocli release keygen | sign | verify | stamp`: the release engineer's side of signed
//! binaries, on local files. `publish | list | retire`: the agent binaries this server hands
//! out, kept in its state directory (run them on the server host, like `advisories import`).
//! docs/OPERATIONS.md, "Signed releases" and "Agent self-update".

use std::path::{Path, PathBuf};

use argh::{ArgsInfo, FromArgs};

use super::Context;
use crate::crypto::Ed25519Identity;
use crate::exit::{CmdResult, Failure};
use crate::release::{gate, keys, manifest, stamp};
use crate::util::fsutil;

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "release")]
/// Make a release key, sign a binary, check a signature, stamp a version.
pub struct ReleaseArgs {
    #[argh(subcommand)]
    command: ReleaseCommand,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(subcommand)]
enum ReleaseCommand {
    Keygen(KeygenArgs),
    Sign(SignArgs),
    Verify(VerifyArgs),
    Stamp(StampArgs),
    Publish(PublishArgs),
    List(ListArgs),
    Retire(RetireArgs),
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "publish")]
/// Verify BINARY and BINARY.sig with this host's release key and store them for agents to
/// update to; audited.
struct PublishArgs {
    /// the signed agent binary
    #[argh(positional)]
    binary: String,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "list")]
/// List published releases.
struct ListArgs {
    /// output format: table (default) or json
    #[argh(option, short = 'o', default = "super::output::Format::Table")]
    output: super::output::Format,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "retire")]
/// Stop offering a version to agents (agents already on it keep it); audited.
struct RetireArgs {
    /// the version to retire
    #[argh(positional)]
    version: String,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "keygen")]
/// Make an Ed25519 release key pair: DIR/release.key (0600, keep it offline) and
/// DIR/release.pub (install as /etc/vigo/release.pub, or compile in with VIGO_RELEASE_PUBKEY).
struct KeygenArgs {
    /// directory to write the key pair into (created 0700 if missing)
    #[argh(option)]
    out: String,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "sign")]
/// Write BINARY.sig: a manifest (name, version, target, SHA-256, size, time) signed with the
/// release key.
struct SignArgs {
    /// the binary to sign
    #[argh(positional)]
    binary: String,
    /// the private release key (0600)
    #[argh(option)]
    key: String,
    /// the binary's version (default: the version stamped into it, else this build's)
    #[argh(option)]
    version: Option<String>,
    /// the binary's target triple (default: this vigocli's own)
    #[argh(option)]
    target: Option<String>,
    /// allow this binary to replace a newer version on agents (an explicit downgrade)
    #[argh(switch)]
    allow_downgrade: bool,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "verify")]
/// Check BINARY against BINARY.sig with a public key; print its manifest.
struct VerifyArgs {
    /// the binary to check
    #[argh(positional)]
    binary: String,
    /// the release public key file
    #[argh(option)]
    key: String,
}

#[derive(FromArgs, ArgsInfo)]
#[argh(help_triggers("-h", "--help", "help"))]
#[argh(subcommand, name = "stamp")]
/// Write another version into a copy of a vigo binary (release engineering and tests); sign
/// the result afterwards.
struct StampArgs {
    /// the vigo binary to read
    #[argh(positional)]
    binary: String,
    /// the version to stamp (semver)
    #[argh(option)]
    version: String,
    /// where to write the stamped copy (mode 0755)
    #[argh(option)]
    out: String,
}

pub fn run(ctx: &Context, args: ReleaseArgs) -> CmdResult {
    match args.command {
        ReleaseCommand::Publish(a) => publish(ctx, a),
        ReleaseCommand::List(a) => list(ctx, a),
        ReleaseCommand::Retire(a) => retire(ctx, a),
        ReleaseCommand::Keygen(a) => keygen(Path::new(&a.out)),
        ReleaseCommand::Sign(a) => sign(a),
        ReleaseCommand::Verify(a) => verify(a),
        ReleaseCommand::Stamp(a) => stamp_copy(a),
    }
}

fn keygen(dir: &Path) -> CmdResult {
    let (private, public) = (dir.join("release.key"), dir.join("release.pub"));
    for f in [&private, &public] {
        if f.exists() {
            return Err(Failure::refused(format!(
                "{} exists; a release key is never overwritten",
                f.display()
            )));
        }
    }
    fsutil::ensure_dir(dir, 0o700).map_err(|e| Failure::failed(format!("{}: {e}", dir.display())))?;
    let id = Ed25519Identity::generate().map_err(|e| Failure::failed(e.to_string()))?;
    fsutil::atomic_write(
        &private,
        crate::crypto::x509::private_key_pem(id.pkcs8_der()).expose().as_bytes(),
        0o600,
    )?;
    fsutil::atomic_write(&public, keys::public_key_line(&id.public_key()).as_bytes(), 0o644)?;
    println!("release key {} written:", keys::key_id(&id.public_key()));
    println!("  {} (private, 0600: keep it offline)", private.display());
    println!("  {} (public: install as /etc/vigo/release.pub, root-owned, 0644)", public.display());
    Ok(())
}

fn read_binary(path: &str) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::failed(format!("{path}: {e}")))
}

fn sign(a: SignArgs) -> CmdResult {
    let key = keys::read_private_key(Path::new(&a.key)).map_err(Failure::refused)?;
    let binary = read_binary(&a.binary)?;
    let version = a
        .version
        .or_else(|| stamp::stamped_version(&binary))
        .unwrap_or_else(|| crate::release::stamp::crate_version().to_string());
    semver::Version::parse(&version).map_err(|e| Failure::usage(format!("--version {version:?}: {e}")))?;
    let target = a.target.unwrap_or_else(|| stamp::TARGET.to_string());
    let m = manifest::Manifest::describe(&binary, &version, &target, a.allow_downgrade);
    let sig = manifest::sign(&m, &key).map_err(Failure::failed)?;
    let path = gate::sig_path(Path::new(&a.binary));
    fsutil::atomic_write(&path, sig.as_bytes(), 0o644)?;
    println!("{} signed: vigo {version} for {target}, sha256 {}", path.display(), m.sha256);
    Ok(())
}

fn verify(a: VerifyArgs) -> CmdResult {
    let public = std::fs::read_to_string(&a.key).map_err(|e| Failure::failed(format!("{}: {e}", a.key)))?;
    let key = keys::ReleaseKey {
        public: keys::parse_public_key(&public).map_err(|e| Failure::usage(format!("{}: {e}", a.key)))?,
        source: a.key.clone(),
    };
    let binary = read_binary(&a.binary)?;
    let sig = std::fs::read(gate::sig_path(Path::new(&a.binary)))
        .map_err(|e| Failure::refused(format!("{}.sig: {e}", a.binary)))?;
    let m = manifest::open(&sig, &key).map_err(|e| Failure::refused(e.to_string()))?;
    manifest::check_bytes(&m, &binary).map_err(|e| Failure::refused(e.to_string()))?;
    println!("{}", serde_json::to_string_pretty(&m).unwrap_or_default());
    Ok(())
}

fn stamp_copy(a: StampArgs) -> CmdResult {
    let mut binary = read_binary(&a.binary)?;
    stamp::stamp(&mut binary, &a.version).map_err(Failure::usage)?;
    let out = PathBuf::from(&a.out);
    fsutil::atomic_write(&out, &binary, 0o755)?;
    println!("{} is vigo {} (unsigned: sign it next)", out.display(), a.version);
    Ok(())
}

fn db(e: rusqlite::Error) -> Failure {
    Failure::failed(format!("database: {e}"))
}

fn publish(ctx: &Context, a: PublishArgs) -> CmdResult {
    let key_file = ctx.settings.settings.release.public_key_file();
    let key = keys::trusted(&key_file).map_err(Failure::refused)?.ok_or_else(|| {
        Failure::refused(format!(
            "no release key: install the public key as {} (or build with VIGO_RELEASE_PUBKEY); agents only take signed binaries",
            key_file.display()
        ))
    })?;
    let binary = read_binary(&a.binary)?;
    let sig_path = gate::sig_path(Path::new(&a.binary));
    let sig =
        std::fs::read(&sig_path).map_err(|e| Failure::refused(format!("{}: {e}", sig_path.display())))?;
    let m =
        manifest::open(&sig, &key).map_err(|e| Failure::refused(format!("{}: {e}", sig_path.display())))?;
    manifest::check_bytes(&m, &binary).map_err(|e| Failure::refused(format!("{}: {e}", a.binary)))?;
    // Stored under its hash before the row that offers it exists; a crash leaves an unused file.
    fsutil::ensure_dir(&ctx.paths.releases_dir, 0o700)?;
    fsutil::atomic_write(&ctx.paths.releases_dir.join(&m.sha256), &binary, 0o600)?;
    let release = crate::store::releases::Release {
        sha256: m.sha256.clone(),
        version: m.version.clone(),
        target: m.target.clone(),
        size: m.size,
        sig: String::from_utf8_lossy(&sig).into_owned(),
        published_at: crate::util::time::unix_now(),
        published_by: super::operator_actor(),
        retired_at: None,
    };
    let mut conn = crate::store::open(&ctx.paths.db)?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
    if !crate::store::releases::insert(&tx, &release).map_err(db)? {
        println!("vigo {} ({}) is already published.", m.version, &m.sha256[..16]);
        return Ok(());
    }
    let detail =
        serde_json::json!({ "version": m.version, "target": m.target, "size": m.size, "key": key.id() });
    crate::audit::append_in(
        &tx,
        &[crate::audit::Event::new(&super::operator_actor(), "release.published", &m.sha256).detail(detail)],
    )
    .map_err(db)?;
    tx.commit().map_err(db)?;
    println!("Published vigo {} for {} ({} bytes, sha256 {}).", m.version, m.target, m.size, m.sha256);
    println!("Agents move to it when the config names it: `agent_version: \"{}\"` in nodes.vgo, then `vigocli config publish`.", m.version);
    Ok(())
}

fn list(ctx: &Context, a: ListArgs) -> CmdResult {
    let conn = crate::store::open(&ctx.paths.db)?;
    let all = crate::store::releases::list(&conn).map_err(db)?;
    let items: Vec<serde_json::Value> = all
        .iter()
        .map(|r| {
            serde_json::json!({
                "version": r.version, "target": r.target, "sha256": r.sha256, "size": r.size,
                "published_at": r.published_at, "published_by": r.published_by,
                "state": if r.retired_at.is_some() { "retired" } else { "live" },
            })
        })
        .collect();
    use super::output::{col, time_col};
    let columns = [
        col("VERSION", "version"),
        col("TARGET", "target"),
        col("STATE", "state"),
        col("SHA256", "sha256"),
        time_col("PUBLISHED (UTC)", "published_at"),
    ];
    super::output::list(a.output, items, &columns, "no releases published")
}

fn retire(ctx: &Context, a: RetireArgs) -> CmdResult {
    let mut conn = crate::store::open(&ctx.paths.db)?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
    let n = crate::store::releases::retire(&tx, &a.version, crate::util::time::unix_now()).map_err(db)?;
    if n == 0 {
        return Err(Failure::failed(format!(
            "no live release of version {}",
            crate::util::text::escape_control(&a.version)
        )));
    }
    crate::audit::append_in(
        &tx,
        &[crate::audit::Event::new(&super::operator_actor(), "release.retired", &a.version)
            .detail(serde_json::json!({ "binaries": n }))],
    )
    .map_err(db)?;
    tx.commit().map_err(db)?;
    println!("vigo {} retired: agents are no longer offered it.", a.version);
    Ok(())
}
