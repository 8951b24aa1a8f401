//! Engine tests: hand-built bundles applied into temp roots (or, where a test says so, into
//! temp paths under `/`). Tools they need are required, never skipped.

mod binary;
mod confinement;
mod custom;
mod edits;
mod exec;
mod files;
mod graph;
mod guardrails;
mod package;
mod secret_files;
mod service;
mod systypes;
mod users;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;
use crate::bundle::{CompiledBundle, CompiledResource};
use crate::crypto::SecretBytes;
use crate::placeholder;

/// A fresh directory under the temp dir, removed on drop.
pub(super) struct TempRoot(pub PathBuf);

impl TempRoot {
    pub fn new(tag: &str) -> TempRoot {
        let rand = crate::crypto::hex_encode(&crate::crypto::random_bytes(4).unwrap());
        let d = std::env::temp_dir().join(format!("vigo-engine-{tag}-{}-{rand}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        TempRoot(d)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, rel: &str) -> PathBuf {
        self.0.join(rel.trim_start_matches('/'))
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes an executable by way of `cp`, so no descriptor open for writing it ever exists in
/// this process: a child another test thread forks at that moment would inherit it, and
/// running the file then fails with "Text file busy" (ETXTBSY).
pub(super) fn write_executable(path: &Path, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    let staged = PathBuf::from(format!("{}.staged", path.display()));
    std::fs::write(&staged, script).unwrap();
    let tmp = PathBuf::from(format!("{}.new", path.display()));
    let out = std::process::Command::new("cp").arg(&staged).arg(&tmp).output().unwrap();
    assert!(out.status.success(), "cp: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::remove_file(&staged).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

pub(super) fn res(name: &str, rtype: &str, attrs: Value) -> CompiledResource {
    CompiledResource {
        name: name.into(),
        rtype: rtype.into(),
        attributes: attrs.as_object().expect("attributes are an object").clone(),
        depends_on: vec![],
        notify: vec![],
        watch_secret: vec![],
        when: None,
    }
}

pub(super) fn bundle(resources: Vec<CompiledResource>) -> CompiledBundle {
    CompiledBundle { envoy_name: "test-envoy".into(), resources }
}

pub(super) fn marker(key: &str) -> String {
    placeholder::marker(key).unwrap()
}

pub(super) fn secrets(pairs: &[(&str, &str)]) -> BTreeMap<String, SecretBytes> {
    pairs.iter().map(|(k, v)| (k.to_string(), SecretBytes::new(v.as_bytes().to_vec()))).collect()
}

pub(super) fn opts(root: &Path) -> ApplyOptions {
    ApplyOptions {
        root: root.to_path_buf(),
        noop: false,
        triggered: BTreeSet::new(),
        guardrails: Guardrails::defaults(Path::new("/var/lib/vigo")),
        secret_files: SecretFiles::default(),
        backup_dir: None,
        executors_dir: None,
    }
}

pub(super) fn run(b: &CompiledBundle, s: &BTreeMap<String, SecretBytes>, o: &ApplyOptions) -> RunReport {
    apply(b, s, o)
}

/// Status of each resource by name, for compact assertions.
pub(super) fn statuses(r: &RunReport) -> Vec<(String, &'static str)> {
    r.results.iter().map(|x| (x.name.clone(), x.status.as_str())).collect()
}

pub(super) fn assert_all(r: &RunReport, want: ResourceStatus) {
    for x in &r.results {
        assert_eq!(
            x.status,
            want,
            "{}: {} (error: {}, diff: {})",
            x.name,
            x.status.as_str(),
            x.error,
            x.diff
        );
    }
}

/// The JSON of a report never holds `canary` anywhere.
pub(super) fn assert_no_canary(r: &RunReport, canary: &str) {
    let json = serde_json::to_string(r).unwrap();
    assert!(!json.contains(canary), "the secret leaked into the report: {json}");
}

/// Runs a tool for a test and returns its stdout; a missing tool fails with what to install.
pub(super) fn tool(program: &str, args: &[&str], stdin: Option<&str>, install: &str) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} is needed by this test ({e}); install it: {install}"));
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{program} {args:?} failed: {}", out.status);
    String::from_utf8(out.stdout).unwrap()
}
