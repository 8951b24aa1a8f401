//! `vigocli release keygen | sign | verify | stamp`: the release engineer's side of signed
//! binaries (docs/OPERATIONS.md, "Signed releases"). These work on local files only.

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
    /// the binary's version (default: this vigocli's own; a stamped binary's is its stamp)
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

pub fn run(_ctx: &Context, args: ReleaseArgs) -> CmdResult {
    match args.command {
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
    fsutil::atomic_write(&private, keys::private_key_pem(&id).expose().as_bytes(), 0o600)?;
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
    let version = a.version.unwrap_or_else(|| stamp::version().to_string());
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
