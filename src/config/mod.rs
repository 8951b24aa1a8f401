//! The .vgo configuration language (temporary minimal loader: replaced by the full loader).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::bundle::CompiledBundle;
use crate::secrets::Provider;

#[derive(Debug, Clone)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.column, self.message)
    }
}

pub struct ConfigTree {
    bundles: Vec<CompiledBundle>,
    hash: String,
}

/// Temporary format: `bundles.json`, a list of CompiledBundle.
pub fn load_tree(dir: &Path) -> Result<ConfigTree, Vec<ConfigError>> {
    let file = dir.join("bundles.json");
    let err = |m: String| vec![ConfigError { file: file.clone(), line: 1, column: 1, message: m }];
    let text = std::fs::read_to_string(&file).map_err(|e| err(e.to_string()))?;
    let bundles: Vec<CompiledBundle> = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
    Ok(ConfigTree { bundles, hash: crate::crypto::sha256_hex(text.as_bytes()) })
}

impl ConfigTree {
    pub fn content_hash(&self) -> String {
        self.hash.clone()
    }
    pub fn patterns(&self) -> Vec<String> {
        self.bundles.iter().map(|b| b.envoy_name.clone()).collect()
    }
    pub fn compile(
        &self,
        envoy_name: &str,
        provider: &dyn Provider,
    ) -> Result<CompiledBundle, Vec<ConfigError>> {
        let b = self
            .bundles
            .iter()
            .find(|b| b.envoy_name == envoy_name)
            .cloned()
            .unwrap_or(CompiledBundle { envoy_name: envoy_name.into(), resources: vec![] });
        for k in b.entitled_keys().unwrap_or_default() {
            if !provider.contains(&k).unwrap_or(false) {
                return Err(vec![ConfigError {
                    file: "bundles.json".into(),
                    line: 1,
                    column: 1,
                    message: format!("secret {k} missing"),
                }]);
            }
        }
        Ok(b)
    }
    pub fn validate_all(&self, provider: &dyn Provider) -> Result<Vec<(String, usize)>, Vec<ConfigError>> {
        self.bundles
            .iter()
            .map(|b| self.compile(&b.envoy_name, provider).map(|c| (b.envoy_name.clone(), c.resources.len())))
            .collect()
    }
    pub fn secret_keys(&self) -> BTreeSet<String> {
        self.bundles.iter().flat_map(|b| b.entitled_keys().unwrap_or_default()).collect()
    }
}
