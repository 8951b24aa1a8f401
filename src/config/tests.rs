//! Loader tests: whole trees on disk, compiled against an in-memory provider.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::placeholder::marker;
use crate::secrets::MemoryProvider;

/// A config tree in a fresh temp dir, removed on drop.
pub(super) struct Tree(pub PathBuf);

impl Tree {
    pub fn new(nodes: &str, modules: &[(&str, &str)]) -> Tree {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vigo-config-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(dir.join("modules")).unwrap();
        std::fs::write(dir.join("nodes.vgo"), nodes).unwrap();
        for (name, text) in modules {
            std::fs::write(dir.join("modules").join(format!("{name}.vgo")), text).unwrap();
        }
        Tree(dir)
    }
    pub fn load(&self) -> Result<ConfigTree, Vec<ConfigError>> {
        load_tree(&self.0)
    }
    pub fn load_with(&self, limits: &Limits) -> Result<ConfigTree, Vec<ConfigError>> {
        load_tree_with(&self.0, limits)
    }
    /// Errors as "relative/file:line:col: message" lines.
    pub fn errors(&self, errs: &[ConfigError]) -> Vec<String> {
        let prefix = format!("{}/", self.0.display());
        errs.iter().map(|e| e.to_string().replacen(&prefix, "", 1)).collect()
    }
    pub fn load_errors(&self) -> Vec<String> {
        match self.load() {
            Ok(_) => panic!("expected the tree to be rejected"),
            Err(e) => self.errors(&e),
        }
    }
    pub fn compile_errors(&self, envoy: &str, p: &dyn Provider) -> Vec<String> {
        let tree = self.load().unwrap_or_else(|e| panic!("{:?}", self.errors(&e)));
        match tree.compile(envoy, p) {
            Ok(b) => panic!("expected errors, got {b:?}"),
            Err(e) => self.errors(&e),
        }
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) const SEED_NODES: &str = r#"# adapted from the secrets guide
envoys:
  - match: "db*.example.com"
    roles: [database]
    vars:
      db_password: "secret:vigo/db/password"
"#;

pub(super) const SEED_DATABASE: &str = r#"resources:
  - name: pg-config
    type: file
    target_path: /etc/postgresql/conf.d/auth.conf
    content: |
      password = {{ .Vars.db_password }}
    watch_secret: ["vigo/db/password"]
    notify: [pg-service]

  - name: pg-service
    type: service
    service: postgresql
    ensure: running
    enable: true

  - name: set-grafana-password
    type: exec
    command: "grafana-cli admin reset-admin-password --password-from-stdin"
    stdin: "secret:vigo/grafana/admin_password"
    watch_secret: ["vigo/grafana/admin_password"]
    when: "changed"

  - name: deploy-with-key
    type: exec
    command: "deploy.sh --key-file {{secret_file}}"
    secret_file: "secret:vigo/deploy/key"

  - name: bad-example
    type: exec
    command: "grafana-cli admin reset-admin-password MySecret123"
"#;

const CANARY: &str = "CANARY-7f3a-do-not-leak";

pub(super) fn seed_provider() -> MemoryProvider {
    let mut p = MemoryProvider::new();
    for k in ["vigo/db/password", "vigo/grafana/admin_password", "vigo/deploy/key"] {
        p.insert(k, format!("{CANARY}:{k}"));
    }
    p
}

fn keys(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn seed_examples_load_and_compile_with_markers_only() {
    let t = Tree::new(SEED_NODES, &[("database", SEED_DATABASE)]);
    let tree = t.load().unwrap_or_else(|e| panic!("{:?}", t.errors(&e)));
    let p = seed_provider();
    let b = tree.compile("db1.example.com", &p).unwrap_or_else(|e| panic!("{:?}", t.errors(&e)));
    assert_eq!(b.resources.len(), 5);
    let pg = &b.resources[0];
    assert_eq!(pg.attributes["content"], format!("password = {}\n", marker("vigo/db/password").unwrap()));
    assert_eq!(pg.notify, ["pg-service"]);
    assert_eq!(b.resources[1].attributes["enable"], serde_json::json!(true));
    assert_eq!(b.resources[2].attributes["stdin"], marker("vigo/grafana/admin_password").unwrap());
    assert_eq!(b.resources[2].when.as_deref(), Some("changed"));
    assert_eq!(b.resources[3].attributes["command"], "deploy.sh --key-file {{secret_file}}");
    // The canary: no value anywhere in the structure or its serialized form.
    let json = serde_json::to_string(&b).unwrap();
    assert!(!json.contains(CANARY) && !format!("{b:?}").contains(CANARY));
    let all = keys(&["vigo/db/password", "vigo/deploy/key", "vigo/grafana/admin_password"]);
    assert_eq!(b.entitled_keys().unwrap(), all);
    assert_eq!(tree.secret_keys(), all);
    assert_eq!(tree.validate_all(&p).unwrap(), vec![("db*.example.com".to_string(), 5)]);
}

#[test]
fn entitled_keys_are_exactly_the_envoys_own() {
    let nodes = "envoys:\n  - match: \"web*\"\n    roles: [web]\n  - match: \"db*\"\n    roles: [db]\n";
    let web = "resources:\n  - name: cert\n    type: file\n    target_path: /etc/web.key\n    content: \"secret:web/tls/key\"\n";
    let db = "vars:\n  pw: \"secret:db/pw\"\nresources:\n  - name: pw\n    type: file\n    target_path: /etc/pw\n    content: \"{{ .Vars.pw }}\"\n";
    let t = Tree::new(nodes, &[("web", web), ("db", db)]);
    let mut p = MemoryProvider::new();
    p.insert("web/tls/key", CANARY);
    p.insert("db/pw", CANARY);
    let tree = t.load().unwrap();
    assert_eq!(tree.compile("web1", &p).unwrap().entitled_keys().unwrap(), keys(&["web/tls/key"]));
    assert_eq!(tree.compile("db1", &p).unwrap().entitled_keys().unwrap(), keys(&["db/pw"]));
    let nobody = tree.compile("mail1", &p).unwrap();
    assert!(nobody.resources.is_empty() && nobody.entitled_keys().unwrap().is_empty());
}

#[test]
fn several_matching_entries_combine_roles_and_vars_in_order() {
    let nodes = r#"defaults:
  vars: {tier: base, region: eu, site: x}
  roles: [common]
envoys:
  - match: "*"
    roles: [web]
    vars: {tier: any}
  - match: "web1"
    roles: [web, extra]
    vars: {tier: web1}
"#;
    let common = "vars: {region: us, site: m}\nresources:\n  - {name: motd, type: file, target_path: /etc/motd, content: \"{{ .Vars.tier }} {{ .Vars.region }} {{ .Vars.site }} {{ .Envoy.Name }}\"}\n";
    let web = "resources:\n  - {name: nginx, type: package, package: nginx}\n";
    let extra = "vars: {site: e}\nresources:\n  - {name: extra, type: package, package: htop}\n";
    let t = Tree::new(nodes, &[("common", common), ("web", web), ("extra", extra)]);
    let tree = t.load().unwrap();
    let b = tree.compile("web1", &MemoryProvider::new()).unwrap();
    let names: Vec<_> = b.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["motd", "nginx", "extra"]);
    // entry vars beat module vars, which beat defaults; later modules beat earlier ones.
    assert_eq!(b.resources[0].attributes["content"], "web1 us e web1");
    let b = tree.compile("web2", &MemoryProvider::new()).unwrap();
    assert_eq!(b.resources[0].attributes["content"], "any us m web2");
    assert_eq!(tree.patterns(), ["*", "web1"]);
}

#[test]
fn content_hash_covers_names_and_bytes() {
    let a = Tree::new(SEED_NODES, &[("database", SEED_DATABASE)]);
    let b = Tree::new(SEED_NODES, &[("database", SEED_DATABASE)]);
    let c = Tree::new(SEED_NODES, &[("database", &SEED_DATABASE.replace("postgresql", "pg"))]);
    let (ha, hb, hc) = (
        a.load().unwrap().content_hash(),
        b.load().unwrap().content_hash(),
        c.load().unwrap().content_hash(),
    );
    assert_eq!(ha, hb);
    assert_ne!(ha, hc);
    assert_eq!(ha.len(), 64);
}

#[test]
fn missing_secret_fails_the_whole_load_naming_key_and_place() {
    let t = Tree::new(SEED_NODES, &[("database", SEED_DATABASE)]);
    let mut p = MemoryProvider::new();
    for k in ["vigo/grafana/admin_password", "vigo/deploy/key"] {
        p.insert(k, "v");
    }
    let want = "nodes.vgo:6:20: secret `vigo/db/password` does not exist in the vault; store it with `vigocli secrets set raw vigo/db/password` or fix the name";
    assert_eq!(t.compile_errors("db1.example.com", &p), [want]);
    let errs = t.load().unwrap().validate_all(&p).unwrap_err();
    assert_eq!(t.errors(&errs), [want]);
}

#[path = "reject_tests.rs"]
mod reject;

#[path = "source_tests.rs"]
mod source;

#[path = "echo_tests.rs"]
mod echo;

#[path = "hidden_chars_tests.rs"]
mod hidden_chars;

#[path = "embedded_ref_tests.rs"]
mod embedded_ref;
