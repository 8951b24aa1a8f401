//! Control and invisible characters (zero-width, BOM, bidi overrides and isolates, newlines, tabs,
//! ANSI escapes, C1 controls) in a name or path could fake or hide a line of a report: every
//! name and path the loader accepts refuses them, naming the code point.

use super::*;
use crate::util::text::is_hidden;

const NODES: &str = "envoys:\n  - match: \"*\"\n    roles: [m]\n";

fn errors_of(nodes: &str, module: &str) -> Vec<String> {
    let t = Tree::new(nodes, &[("m", module)]);
    match t.load().map(|tree| tree.compile("h1", &crate::secrets::MemoryProvider::new())) {
        Err(e) | Ok(Err(e)) => t.errors(&e),
        Ok(Ok(_)) => Vec::new(),
    }
}

fn assert_refused(nodes: &str, module: &str, code: &str, file_line: &str) {
    let errs = errors_of(nodes, module);
    assert!(
        errs.iter().any(|e| e.starts_with(file_line) && e.contains(code)),
        "expected {code} refused at {file_line} for {module:?}; got {errs:#?}"
    );
    for e in &errs {
        assert!(!e.chars().any(is_hidden), "raw hidden character in {e:?}");
    }
}

/// One resource (YAML flow style, `\u…` escapes in double quotes), refused on line 2.
fn resource(attrs: &str, code: &str) {
    assert_refused(NODES, &format!("resources:\n  - {{name: a, {attrs}}}\n"), code, "modules/m.vgo:2:");
}

#[test]
fn every_name_and_path_attribute_refuses_hidden_characters() {
    let cases = [
        ("type: package, package: \"ng\\u200binx\"", "U+200B"),
        ("type: package, package: nginx, version: \"1.2\\u202e\"", "U+202E"),
        ("type: service, service: \"ssh\\td\"", "U+0009"),
        ("type: file, target_path: \"/etc/x\\u202etxt.conf\"", "U+202E"),
        ("type: file, target_path: \"/etc/motd\\n/etc/shadow\"", "U+000A"),
        ("type: file, target_path: /x, owner: \"ro\\u200dot\"", "U+200D"),
        ("type: file, target_path: /x, group: \"\\ufeffwheel\"", "U+FEFF"),
        ("type: directory, target_path: \"/srv/\\u2066x\\u2069\"", "U+2066"),
        ("type: symlink, target_path: /l, points_to: \"/etc/\\u200ex\"", "U+200E"),
        ("type: user, username: \"de\\u200bploy\"", "U+200B"),
        ("type: user, username: u, groups: [wheel, \"ad\\u200cm\"]", "U+200C"),
        ("type: user, username: u, shell: \"/bin/sh\\e[8m\"", "U+001B"),
        ("type: user, username: u, home: \"/home/u\\x85\"", "U+0085"),
        ("type: user, username: u, comment: \"Deploy\\u202eresU\"", "U+202E"),
        ("type: group, groupname: \"ops\\x9b\"", "U+009B"),
        ("type: group, groupname: g, members: [\"a\\u2060b\"]", "U+2060"),
        ("type: exec, command: x, creates: \"/var/done\\u200b\"", "U+200B"),
        ("type: exec, command: x, cwd: \"/srv\\r\"", "U+000D"),
        ("type: exec, command: \"rm -rf /tmp/cache \\u202e\"", "U+202E"),
        ("type: exec, command: x, unless: \"test -f /x\\u2067\"", "U+2067"),
        ("type: exec, command: x, onlyif: \"test \\e[2K-f /x\"", "U+001B"),
    ];
    for (attrs, code) in cases {
        resource(attrs, code);
    }
}

#[test]
fn resource_fields_and_references_refuse_hidden_characters() {
    resource("type: \"pack\\u200bage\", package: x", "U+200B");
    assert_refused(
        NODES,
        "resources:\n  - {name: \"web\\u202egnp.exe\", type: package, package: x}\n",
        "U+202E",
        "modules/m.vgo:2:",
    );
    // Written raw in the file rather than as an escape.
    assert_refused(
        NODES,
        "resources:\n  - {name: \"web\u{200b}\", type: package, package: x}\n",
        "U+200B",
        "modules/m.vgo:2:",
    );
    resource("type: package, package: x, depends_on: [\"b\\u200b\"]", "U+200B");
    resource("type: package, package: x, notify: [\"b\\t\"]", "U+0009");
    resource("type: package, package: x, watch_secret: [\"app/\\u200bpw\"]", "U+200B");
    resource("type: package, package: x, when: \"a\\u2066 == b\"", "U+2066");
}

#[test]
fn nodes_vgo_names_refuse_hidden_characters() {
    let module = "resources: []\n";
    assert_refused("envoys:\n  - match: \"web\\u202e*\"\n    roles: [m]\n", module, "U+202E", "nodes.vgo:2:");
    // Roles and var names have a grammar of their own; their errors escape what they quote.
    let errs = errors_of("envoys:\n  - match: \"*\"\n    roles: [\"m\\u200b\"]\n", module);
    assert!(errs.iter().any(|e| e.contains("role `m\\u{200b}` must be letters")), "{errs:?}");
    let errs = errors_of("defaults:\n  vars: {\"db\\u202epw\": 1}\nenvoys: []\n", module);
    assert!(errs.iter().any(|e| e.contains("var name `db\\u{202e}pw` must be letters")), "{errs:?}");
}

#[test]
fn a_var_renders_hidden_characters_into_a_path_and_is_refused_at_compile() {
    let module = "vars: {x: \"\\u202etxt\"}\nresources:\n  - {name: a, type: file, target_path: \"/etc/{{ .Vars.x }}\"}\n";
    assert_refused(NODES, module, "U+202E", "modules/m.vgo:3:");
    let module = "vars: {x: \"prod\\u200b\"}\nresources:\n  - {name: a, type: package, package: p, when: \"{{ .Vars.x }} == prod\"}\n";
    assert_refused(NODES, module, "U+200B", "modules/m.vgo:3:");
}

#[test]
fn commands_may_span_lines_and_content_may_hold_anything() {
    let module = "resources:\n  - name: script\n    type: exec\n    command: |\n      set -e\n      \tmake install\n  - {name: f, type: file, target_path: /f, content: \"\\e[1mbold\\u202e\\n\"}\n";
    assert_eq!(errors_of(NODES, module), Vec::<String>::new());
}

#[test]
fn an_envoy_name_with_hidden_characters_is_refused_when_compiling() {
    let t = Tree::new(NODES, &[("m", "resources: []\n")]);
    let tree = t.load().unwrap();
    for (name, code) in [("web1\u{202e}", "U+202E"), ("web\u{200b}1", "U+200B"), ("web1\n", "U+000A")] {
        let e = t.errors(&tree.compile(name, &crate::secrets::MemoryProvider::new()).unwrap_err());
        assert!(e.len() == 1 && e[0].contains(code) && !e[0].chars().any(is_hidden), "{e:?}");
    }
}
