//! What `doctor` checks on the server host's own files: the vault, the TLS files, the config
//! tree, the database and its audit chain, and the disk.

use std::path::Path;
use std::sync::Arc;

use crate::cli::Context;
use crate::crypto::x509;
use crate::doctor::{expiry, Check};
use crate::secrets::{LocalVault, Provider};

/// The secrets backend: the local vault (master key, verifier, gate) or the isopass service
/// (token file, reachable, token accepted). Returns it for the config checks.
pub fn backend(ctx: &Context, out: &mut Vec<Check>) -> Option<Arc<dyn Provider>> {
    if ctx.settings.settings.secrets.is_isopass() {
        isopass(ctx, out)
    } else {
        vault(ctx, out)
    }
}

fn isopass(ctx: &Context, out: &mut Vec<Check>) -> Option<Arc<dyn Provider>> {
    let settings = match ctx.settings.settings.secrets.isopass() {
        Ok(s) => s,
        Err(e) => {
            out.push(Check::fail("secrets backend", e, "fix the secrets: section of the server config"));
            return None;
        }
    };
    match crate::secrets::isopass::token_file::read(&settings.token_file) {
        Ok(_) => out.push(Check::ok("isopass token file", format!("{} (owner-only)", settings.token_file))),
        Err(e) => {
            out.push(Check::fail(
                "isopass token file",
                e,
                "see the message; the server refuses to start too",
            ));
            return None;
        }
    }
    match crate::secrets::isopass::Isopass::start(&settings, false) {
        Ok((isopass, _)) => {
            out.push(Check::ok("secrets backend", format!("isopass at {} accepts the token", settings.url)));
            Some(isopass)
        }
        Err(e) => {
            out.push(Check::fail(
                "secrets backend",
                e,
                "check secrets.url, secrets.ca_file and the token; the server keeps its last values meanwhile",
            ));
            None
        }
    }
}

fn vault(ctx: &Context, out: &mut Vec<Check>) -> Option<Arc<dyn Provider>> {
    let key = &ctx.paths.key_file;
    let vault = match LocalVault::open(&ctx.paths.secrets_dir, key) {
        Ok(v) => {
            let n = v.list().map(|l| l.len()).unwrap_or(0);
            out.push(Check::ok("master key", format!("{} (owner-only), {n} secret(s)", key.display())));
            Some(Arc::new(v) as Arc<dyn Provider>)
        }
        Err(e) => {
            out.push(Check::fail(
                "master key",
                e.to_string(),
                "see the message; `vigocli secrets init` makes a vault",
            ));
            None
        }
    };
    if ctx.paths.verifier.exists() {
        out.push(Check::ok("unlock passphrase", format!("verifier at {}", ctx.paths.verifier.display())));
    } else {
        out.push(Check::warn(
            "unlock passphrase",
            "no unlock verifier: the CLI cannot open the vault for gated verbs",
            "run `vigocli secrets init` (it keeps an existing master key)",
        ));
    }
    match crate::secrets::gate::check_gate(&ctx.paths.sentinel) {
        Ok(()) => out.push(Check::ok(
            "vault gate",
            "unlocked (it locks itself after 24 h idle; `vigocli secrets lock` now)",
        )),
        Err(_) => out.push(Check::ok("vault gate", "locked")),
    }
    vault
}

fn read_first_cert(path: &Path) -> Result<Vec<u8>, String> {
    let pem = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    x509::certs_from_pem(&pem)
        .map(|mut c| c.remove(0).to_vec())
        .map_err(|e| format!("{}: {e}", path.display()))
}

pub fn tls(ctx: &Context, out: &mut Vec<Check>) {
    let p = &ctx.paths;
    let certs_fix = "run `vigocli secrets generate-certs` (or restore tls/ from a backup)";
    match crate::pki::Pki::load(p) {
        Ok(pki) => {
            let server = read_first_cert(&p.server_cert());
            match server.as_deref().map(|der| x509::key_matches_cert(pki.server.key_pem.expose(), der)) {
                Ok(Ok(true)) => out.push(Check::ok("server key", "matches the server certificate")),
                Ok(Ok(false)) => {
                    out.push(Check::fail("server key", "tls/key is not the key of tls/cert", certs_fix))
                }
                Ok(Err(e)) => out.push(Check::fail("server key", e.to_string(), certs_fix)),
                Err(e) => out.push(Check::fail("server certificate", e.clone(), certs_fix)),
            }
            chain(ctx, out);
            for (what, path, renew) in [
                ("CA", p.ca_cert(), "plan a CA rollover: `vigocli tls ca-rollover start`"),
                ("server certificate", p.server_cert(), "run `vigocli tls renew-server-cert`"),
            ] {
                match read_first_cert(&path).and_then(|der| x509::not_after(&der).map_err(|e| e.to_string()))
                {
                    Ok(t) => out.push(expiry(&format!("{what} expiry"), what, t, renew)),
                    Err(e) => out.push(Check::fail(&format!("{what} expiry"), e, certs_fix)),
                }
            }
        }
        // A key file anyone may read is fixed by the chmod the message names, not new certificates.
        Err(e) if e.contains("chmod") => {
            out.push(Check::fail("TLS files", e, "run the chmod the message names"))
        }
        Err(e) => out.push(Check::fail("TLS files", e, certs_fix)),
    }
    leftovers(ctx, out);
}

/// The server certificate is signed by the CA agents pin (a certificate from elsewhere, or a CA
/// replaced without reissuing, fails every agent's handshake).
fn chain(ctx: &Context, out: &mut Vec<Check>) {
    let p = &ctx.paths;
    let checked = read_first_cert(&p.server_cert()).and_then(|server| {
        let ca = read_first_cert(&p.ca_cert())?;
        x509::issued_by(&server, &ca).map_err(|e| e.to_string())
    });
    match checked {
        Ok(()) => out.push(Check::ok("server certificate chain", "signed by tls/ca")),
        Err(e) => out.push(Check::fail(
            "server certificate chain",
            format!("tls/cert is not a certificate tls/ca issued: {e}"),
            "run `vigocli tls renew-server-cert` to issue one from the CA agents trust",
        )),
    }
}

/// What an interrupted TLS change leaves behind: staging directories, and a rollover's next CA
/// without its key (the rollover cannot finish).
fn leftovers(ctx: &Context, out: &mut Vec<Check>) {
    let p = &ctx.paths;
    let staging: Vec<String> = std::fs::read_dir(&p.base)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tls.staging-"))
        .collect();
    if !staging.is_empty() {
        out.push(Check::warn(
            "TLS staging",
            format!("left by an interrupted certificate change: {}", staging.join(", ")),
            format!("with the server stopped, remove them: `rm -r {}/.tls.staging-*`", p.base.display()),
        ));
    }
    if p.ca_next().exists() && !p.ca_key_next().exists() {
        out.push(Check::warn(
            "CA rollover",
            "tls/ca.next is there without tls/ca_key.next: the rollover cannot finish",
            "restore tls/ca_key.next from a backup, or remove tls/ca.next and run `vigocli tls ca-rollover start` again",
        ));
    }
}

/// Every `secret:` ref of the config tree and of the config file resolves (names only).
pub fn config(ctx: &Context, backend: Option<&dyn Provider>, out: &mut Vec<Check>) {
    let dir = &ctx.paths.config_dir;
    if dir.exists() {
        match (crate::config::load_tree(dir), backend) {
            (Ok(tree), Some(v)) => match tree.validate_all(v) {
                Ok(_) => out.push(Check::ok(
                    "config tree",
                    format!("{} loads; every secret ref resolves", dir.display()),
                )),
                Err(errs) => out.push(Check::fail(
                    "config tree",
                    errs.first().map(|e| e.to_string()).unwrap_or_default(),
                    "fix the tree (`vigocli config validate` lists every error), then publish",
                )),
            },
            (Err(errs), _) => out.push(Check::fail(
                "config tree",
                errs.first().map(|e| e.to_string()).unwrap_or_default(),
                "fix the tree (`vigocli config validate` lists every error)",
            )),
            (Ok(_), None) => out.push(Check::warn(
                "config tree",
                "loads; secret refs not checked (no secrets backend)",
                "see the secrets backend checks above",
            )),
        }
    } else {
        out.push(Check::warn(
            "config tree",
            format!("no config directory at {}", dir.display()),
            "write nodes.vgo and modules/, then `vigocli config publish`",
        ));
    }
    let Some(backend) = backend else { return };
    let keys = ctx.settings.refs.iter().map(|r| r.key.clone()).collect();
    if let Err(e) = backend.prepare(&keys) {
        out.push(Check::fail("config file secrets", e.to_string(), "see the secrets backend checks above"));
        return;
    }
    let store = match ctx.settings.settings.secrets.is_isopass() {
        true => "create the entry in isopass",
        false => "store it with `vigocli secrets set raw KEY`",
    };
    for r in &ctx.settings.refs {
        if !matches!(backend.contains(&r.key), Ok(true)) {
            out.push(Check::fail(
                "config file secrets",
                format!(
                    "secret:{} named by {} in the config file is not in the secrets backend",
                    r.key, r.setting
                ),
                format!("{store}; the server refuses to start without it"),
            ));
        }
    }
}

pub fn database(ctx: &Context, quick: bool, out: &mut Vec<Check>) {
    let db = &ctx.paths.db;
    if !db.exists() {
        out.push(Check::warn(
            "database",
            format!("no database at {}", db.display()),
            "vigosrv creates it at its first start",
        ));
        return;
    }
    let conn = match crate::store::open(db) {
        Ok(c) => c,
        Err(e) => return out.push(Check::fail("database", e.to_string(), "check the path and its owner")),
    };
    match conn.query_row("PRAGMA quick_check", [], |r| r.get::<_, String>(0)) {
        Ok(s) if s == "ok" => out.push(Check::ok("database", format!("{} passes quick_check", db.display()))),
        Ok(s) => {
            out.push(Check::fail("database", format!("quick_check: {s}"), "restore vigo.db from a backup"))
        }
        Err(e) => out.push(Check::fail("database", e.to_string(), "restore vigo.db from a backup")),
    }
    let verdict =
        if quick { crate::audit::verify_last(&conn, 10_000) } else { crate::audit::verify(&conn, None) };
    let scope = if quick { "the last 10,000 rows" } else { "the whole chain" };
    match verdict {
        Ok(crate::audit::Verdict::Intact { rows, head }) => out.push(Check::ok(
            "audit chain",
            format!("{scope} holds ({rows} rows, head {}…)", &head[..16.min(head.len())]),
        )),
        Ok(crate::audit::Verdict::Broken { seq, reason }) => out.push(Check::fail(
            "audit chain",
            format!("row {seq}: {reason}"),
            "the log was altered: keep this database for investigation and compare with your SIEM copy",
        )),
        Err(e) => out.push(Check::fail("audit chain", e.to_string(), "restore vigo.db from a backup")),
    }
}

pub fn disk(ctx: &Context, out: &mut Vec<Check>) {
    let base = &ctx.paths.base;
    let Ok(st) = nix::sys::statvfs::statvfs(base.as_path()) else {
        return out.push(Check::warn(
            "disk",
            format!("cannot stat {}", base.display()),
            "check that the base directory exists",
        ));
    };
    let free = st.blocks_available() * st.fragment_size();
    let total = (st.blocks() * st.fragment_size()).max(1);
    let mib = free / (1024 * 1024);
    let pct = free * 100 / total;
    let detail = format!("{mib} MiB free ({pct}%) under {}", base.display());
    if mib < 100 {
        out.push(Check::fail(
            "disk",
            detail,
            "free space: the audit log and reports need room, and writes fail when it runs out",
        ));
    } else if pct < 10 || mib < 1024 {
        out.push(Check::warn("disk", detail, "free some space before it runs out"));
    } else {
        out.push(Check::ok("disk", detail));
    }
}
