//! `vigo-agent apply CONFIG_DIR --envoy NAME`: masterless. Compiles a local .vgo tree and applies
//! it with no server, like `puppet apply`. Secrets come only from a vault under --base-dir.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::engine;
use super::local_apply::LocalApply;
use crate::exit::{CmdResult, Failure};
use crate::paths::AgentPaths;
use crate::secrets::{LocalVault, MemoryProvider, Provider};

pub struct ApplyRequest {
    pub config_dir: PathBuf,
    pub envoy: String,
    pub root: PathBuf,
    pub noop: bool,
}

/// The local vault, or why it cannot be used (said only if the config needs a secret).
fn local_vault(base: &Path) -> Result<LocalVault, String> {
    let secrets = base.join("secrets");
    let key = secrets.join(".master.key");
    if !key.exists() {
        return Err(format!("no vault is readable under {} (secrets/.master.key)", base.display()));
    }
    LocalVault::open(&secrets, &key).map_err(|e| e.to_string())
}

pub fn apply(paths: &AgentPaths, req: ApplyRequest) -> CmdResult {
    crate::wire::validate_envoy_name(&req.envoy).map_err(|e| Failure::usage(format!("--envoy: {e}")))?;
    if !req.config_dir.is_dir() {
        return Err(Failure::usage(format!(
            "{} is not a directory; give the config tree (the directory holding nodes.vgo)",
            req.config_dir.display()
        )));
    }
    let tree = crate::config::load_tree(&req.config_dir).map_err(config_failure)?;
    // A server hands an unmatched envoy an empty bundle; here that is almost surely a typo in
    // --envoy, and "converged: 0 resources" would hide it.
    if !tree.matches_envoy(&req.envoy) {
        return Err(Failure::failed(format!(
            "no `envoys:` entry in {} matches {:?}; check --envoy against the `match:` patterns there",
            req.config_dir.join("nodes.vgo").display(),
            req.envoy
        )));
    }
    let vault = local_vault(&paths.base);
    let empty = MemoryProvider::new();
    let provider: &dyn Provider = match &vault {
        Ok(v) => v,
        Err(_) => &empty,
    };
    let no_vault = |why: &String| {
        Failure::refused(format!(
            "this config uses secret: refs but {why}; masterless apply resolves secrets only from a local vault"
        ))
    };
    // This host's own traits, as its agent would report them (collected only when read).
    let traits = tree.uses_traits().then(|| super::traits::collect(true, None));
    let bundle =
        tree.compile_with_traits(&req.envoy, traits.as_ref(), provider).map_err(|errs| match &vault {
            Err(why) if errs.iter().any(|e| e.message.contains("secret")) => no_vault(why),
            _ => config_failure(errs),
        })?;
    for line in masterless_warnings(&bundle) {
        eprintln!("warning: {line}");
    }
    let mut values = BTreeMap::new();
    for key in bundle.entitled_keys()? {
        let v = vault.as_ref().map_err(no_vault)?;
        values.insert(key.clone(), v.get(&key).map_err(|e| Failure::failed(e.to_string()))?);
    }
    let how = LocalApply { root: req.root, noop: req.noop, triggered: Default::default() };
    let report = super::local_apply::apply(paths, &bundle, &values, how)?;
    super::run::print_report(&report);
    if let Some(signo) = crate::util::interrupt::received() {
        return Err(crate::util::interrupt::failure(signo));
    }
    match report.status {
        engine::RunStatus::Failed => Err(Failure::failed("some resources failed; see the report above")),
        _ => Ok(()),
    }
}

/// What a config expects that masterless apply cannot do. Rotation is tracked by the server
/// (it marks `watch_secret` resources triggered); without one, `when: changed` on such a
/// resource fires only when another resource notifies it, never because its secret changed.
pub(crate) fn masterless_warnings(bundle: &crate::bundle::CompiledBundle) -> Vec<String> {
    bundle
        .resources
        .iter()
        .filter(|r| !r.watch_secret.is_empty() && r.when.as_deref().map(str::trim) == Some("changed"))
        .map(|r| {
            format!(
                "{}[{}] watches {} with `when: changed`, but masterless apply does not track secret rotation: it runs only when another resource notifies it; apply through a server (vigo-agent run) for rotation to trigger it",
                r.rtype,
                r.name,
                r.watch_secret.iter().map(|k| format!("secret:{k}")).collect::<Vec<_>>().join(", ")
            )
        })
        .collect()
}

fn config_failure(errs: Vec<crate::config::ConfigError>) -> Failure {
    Failure::failed(errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))
}
