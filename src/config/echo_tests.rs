//! Errors go to the publish answer, the server log and an audit row viewers can read: they quote
//! the config only in short, escaped excerpts, whatever the file holds.

use super::*;
use crate::util::text::{is_hidden, EXCERPT_CHARS};

const NODES: &str = "envoys:\n  - match: \"*\"\n    roles: [m]\n";

/// Every error of loading `module` as modules/m.vgo (or of compiling it, if it loads).
fn errors(module: &str) -> Vec<String> {
    let t = Tree::new(NODES, &[("m", module)]);
    match t.load().map(|tree| tree.compile("h1", &crate::secrets::MemoryProvider::new())) {
        Err(e) | Ok(Err(e)) => t.errors(&e),
        Ok(Ok(_)) => panic!("expected errors for {module:?}"),
    }
}

/// The rule: no line longer than the message around a few excerpts, no raw hidden character,
/// and never the marker text that stands for "the rest of the file".
fn assert_short_and_escaped(errs: &[String], marker: &str) {
    assert!(!errs.is_empty());
    for e in errs {
        assert!(e.chars().count() < 600, "error too long ({} chars): {e}", e.chars().count());
        assert!(!e.chars().any(is_hidden), "raw hidden character in {e:?}");
        assert!(!e.contains(marker), "the error replays text it should have cut: {e}");
    }
}

#[test]
fn long_keys_values_and_names_are_cut_to_an_excerpt() {
    // Under libyaml's 1024-character limit for a key written without `?`.
    let long = format!("{}TAIL-NOT-SHOWN", "k".repeat(900));
    let cases = [
        format!("{long}: 1\n"),
        format!("resources:\n  - {{name: a, type: package, package: x, {long}: 1}}\n"),
        format!("resources:\n  - {{name: a, type: {long}}}\n"),
        format!("resources:\n  - {{name: a, type: file, target_path: rel{long}}}\n"),
        format!("resources:\n  - {{name: a, type: package, package: x, depends_on: [{long}]}}\n"),
        format!("resources:\n  - {{name: a, type: package, package: x, when: \"{long}\"}}\n"),
        format!(
            "resources:\n  - {{name: a, type: file, target_path: /x, content: \"{{{{ .Vars.{long} }}}}\"}}\n"
        ),
        format!("resources:\n  - {{name: a, type: file, target_path: /x, content: \"{{{{ {long} }}}}\"}}\n"),
        format!("vars:\n  \"{long}\": 1\n"),
        format!("vars:\n  x: \"secret:{long}\"\n"),
        format!("a: 1\n{long}: 1\n{long}: 2\n"),
    ];
    for module in &cases {
        let errs = errors(module);
        assert_short_and_escaped(&errs, "TAIL-NOT-SHOWN");
        assert!(errs.iter().any(|e| e.contains(&"k".repeat(EXCERPT_CHARS - 10))), "{errs:?}");
    }
}

#[test]
fn control_characters_in_quoted_text_are_escaped_in_errors() {
    // Escapes in double quotes put real control characters into keys and values.
    let cases = [
        ("\"evil\\e[2Jkey\": 1\n", "evil\\x1b[2Jkey"),
        ("resources:\n  - {name: a, type: package, package: x, \"line\\nbreak\": 1}\n", "line\\nbreak"),
        ("resources:\n  - {name: a, type: \"t\\u202eype\"}\n", "t\\u{202e}ype"),
        ("a: 1\n\"dup\\r\": 1\n\"dup\\r\": 2\n", "dup\\r"),
    ];
    for (module, shown) in cases {
        let errs = errors(module);
        assert_short_and_escaped(&errs, "\u{0}");
        assert!(errs.iter().any(|e| e.contains(shown)), "{module:?}: {errs:?}");
    }
}

/// serde_yaml puts the path of keys in front of a message; the keys are the file's content and
/// the line and column already say where, so our messages come without it.
#[test]
fn yaml_errors_do_not_carry_serde_yamls_key_path() {
    let long = "p".repeat(1000);
    let errs = errors(&format!("{long}:\n  {long}:\n    x: 1\n    x: 2\n"));
    assert_eq!(errs, ["modules/m.vgo:4:5: duplicate key `x`; a key may appear only once in a mapping"]);
}

#[test]
fn a_file_name_with_a_newline_is_printed_escaped() {
    let t = Tree::new("envoys: []\n", &[]);
    std::fs::write(t.0.join("modules/bad\nname.vgo"), "vars: {}\n").unwrap();
    let e = t.load_errors();
    assert_eq!(e, ["modules/bad\\nname.vgo: module file name `bad\\nname` is not a role name (letters, digits, _ and -); rename it"]);
}

#[test]
fn a_cycle_through_many_resources_is_shown_with_its_middle_left_out() {
    let mut module = String::from("resources:\n");
    for i in 0..500 {
        module.push_str(&format!(
            "  - {{name: r{i}, type: package, package: p{i}, depends_on: [r{}]}}\n",
            (i + 1) % 500
        ));
    }
    let errs = errors(&module);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("dependency cycle: r0 -> r1 ->") && errs[0].contains("… (489 more) -> r0"),
        "{errs:?}"
    );
    assert_short_and_escaped(&errs, "r300 ->");
}

#[test]
fn a_long_command_with_an_unclosed_quote_is_quoted_short() {
    let command = format!("echo '{}TAIL-NOT-SHOWN", "w".repeat(20_000));
    let errs = errors(&format!("resources:\n  - {{name: a, type: exec, command: \"{command}\"}}\n"));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("has an unclosed quote; close it"), "{errs:?}");
    assert_short_and_escaped(&errs, "TAIL-NOT-SHOWN");
}

/// The backstop for a message that quotes more than it should.
#[test]
fn a_printed_error_is_never_longer_than_its_cap() {
    let e = ConfigError::whole(Path::new("nodes.vgo"), format!("{}TAIL-NOT-SHOWN", "z".repeat(50_000)));
    let shown = e.to_string();
    assert_eq!(shown.chars().count(), "nodes.vgo: ".len() + 2000 + 1, "{}", shown.len());
    assert!(!shown.contains("TAIL-NOT-SHOWN") && shown.ends_with('…'));
}

/// Every resource of a long chain also depends on the first: one long cycle per resource. Each
/// is reported without walking or formatting the whole chain again.
#[test]
fn many_long_cycles_are_reported_in_linear_time() {
    let n = 12_000;
    let mut module = String::from("resources:\n");
    for i in 0..n {
        module.push_str(&format!(
            "  - {{name: r{i}, type: package, package: p{i}, depends_on: [r{}, r0]}}\n",
            (i + 1) % n
        ));
    }
    let t = Tree::new(NODES, &[("m", &module)]);
    let tree = t.load().unwrap();
    let start = std::time::Instant::now();
    let errs = t.errors(&tree.compile("h1", &crate::secrets::MemoryProvider::new()).unwrap_err());
    assert!(start.elapsed() < std::time::Duration::from_secs(10), "{:?}", start.elapsed());
    assert!(
        errs.iter().any(|e| e.starts_with("modules/m.vgo:2:") && e.contains("more) -> r0 (")),
        "{:?}",
        &errs[..3]
    );
    assert_short_and_escaped(&errs, "r5000 ->");
}
