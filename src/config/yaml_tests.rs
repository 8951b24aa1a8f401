//! What serde_yaml does and does not enforce, pinned down, plus our own strictness.

use std::time::{Duration, Instant};

use super::*;
use crate::config::locate::is_quoted_at;

fn err(text: &str) -> ParseError {
    parse(text.as_bytes()).unwrap_err()
}

fn at(e: &ParseError) -> (usize, usize) {
    (e.line, e.column)
}

#[test]
fn parses_a_plain_document_in_order() {
    let node = parse(b"b: 1\na: [x, 'y']\nc:\n").unwrap().root;
    let Node::Map(entries) = node else { panic!() };
    let keys: Vec<_> = entries.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["b", "a", "c"]);
    assert_eq!(entries[0].1, Node::Int(1));
    assert_eq!(entries[1].1, Node::Seq(vec![Node::Str("x".into()), Node::Str("y".into())]));
    assert_eq!(entries[2].1, Node::Null);
    assert_eq!(parse(b"").unwrap().root, Node::Map(vec![]));
}

#[test]
fn yaml_12_scalars_as_serde_yaml_reads_them() {
    // `0644` with a leading zero is a string in YAML 1.2; `644` is an integer; yes/on stay strings.
    let Node::Map(e) = parse(b"a: 0644\nb: 644\nc: yes\nd: on\ne: true\nf: 1.10\n").unwrap().root else {
        panic!()
    };
    assert_eq!(e[0].1, Node::Str("0644".into()));
    assert_eq!(e[1].1, Node::Int(644));
    assert_eq!(e[2].1, Node::Str("yes".into()));
    assert_eq!(e[3].1, Node::Str("on".into()));
    assert_eq!(e[4].1, Node::Bool(true));
    assert!(matches!(e[5].1, Node::Float(_)));
}

#[test]
fn malformed_yaml_has_a_position() {
    let e = err("a: [1, 2\nb: 3\n");
    assert!(e.message.starts_with("invalid YAML:"), "{e:?}");
    assert!(e.line >= 1);
    let e = err("a: b\n  c: d\n");
    assert_eq!(e.line, 2, "{e:?}");
}

#[test]
fn duplicate_keys_are_rejected_on_the_second_key() {
    let e = err("a: 1\nb:\n  x: 1\n  x: 2\n");
    assert_eq!(at(&e), (4, 3), "{e:?}");
    assert!(e.message.contains("duplicate key `x`"), "{e:?}");
    // Top level too.
    let e = err("envoys: []\nenvoys: []\n");
    assert_eq!(at(&e), (2, 1));
}

#[test]
fn non_string_keys_and_tags_are_rejected() {
    assert!(err("1: a\n").message.contains("keys must be names"));
    assert!(err("true: a\n").message.contains("keys must be names"));
    assert!(err("a: !custom b\n").message.contains("tags"));
}

#[test]
fn nul_and_invalid_utf8_are_rejected_with_position() {
    let e = err("a: b\nc: d\0e\n");
    assert_eq!((at(&e), e.message.as_str()), ((2, 5), "NUL byte; .vgo files are text: remove it"));
    let e = parse(b"a: b\nc: \xff\n").unwrap_err();
    assert_eq!(at(&e), (2, 4));
    assert!(e.message.contains("UTF-8"));
}

#[test]
fn oversize_file_is_refused_before_parsing() {
    let big = format!("a: \"{}\"\n", "x".repeat(MAX_FILE_BYTES));
    let e = err(&big);
    assert_eq!(at(&e), (1, 1));
    assert!(e.message.contains("larger than 1048576 bytes"), "{e:?}");
}

#[test]
fn billion_laughs_is_bounded() {
    let mut doc =
        String::from("a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for i in 1..10 {
        let p = i - 1;
        doc.push_str(&format!("a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"));
    }
    let start = Instant::now();
    let e = err(&doc);
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
    assert!(e.message.contains("alias"), "{e:?}");
}

#[test]
fn one_alias_replaying_a_large_anchor_many_times_is_bounded() {
    // Within serde_yaml's own repetition limit, but 20k x 20k values without our budget.
    let items = vec!["x"; 20_000].join(",");
    let aliases = vec!["*a"; 20_000].join(",");
    let doc = format!("a: &a [{items}]\nb: [{aliases}]\n");
    let start = Instant::now();
    let e = err(&doc);
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
    assert!(e.message.contains("expands to more than"), "{e:?}");
}

#[test]
fn deep_nesting_is_bounded() {
    for doc in ["[".repeat(5000) + &"]".repeat(5000), "{a: ".repeat(5000) + &"}".repeat(5000)] {
        let start = Instant::now();
        let e = err(&doc);
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(e.message.contains("deeper than 128"), "{e:?}");
    }
    // Block style: `- - - ... x` nests a sequence per dash.
    let e = err(&("- ".repeat(5000) + "x\n"));
    assert!(e.message.contains("deeper than 128"), "{e:?}");
    let mut block = String::new();
    for i in 0..1000 {
        block.push_str(&" ".repeat(i));
        block.push_str("a:\n");
    }
    let e = err(&block);
    assert!(e.message.contains("deeper than 128"), "{e:?}");
}

#[test]
fn locate_finds_values_and_keys() {
    let text = "envoys:\n  - match: \"db*\"\n    roles: [a, b]\n  - match: web\n    vars: {x: 1}\n";
    let p = Path::root().key("envoys");
    assert_eq!(locate(text, &p.index(0).key("match")), Some((2, 12)));
    assert_eq!(locate(text, &p.index(0).key("roles").index(1)), Some((3, 16)));
    assert_eq!(locate(text, &p.index(1).key("vars").at_key()), Some((5, 5)));
    assert_eq!(locate(text, &p.index(1).key("vars").key("x")), Some((5, 15)));
    assert_eq!(locate(text, &p.index(1)), Some((4, 5)));
    assert_eq!(locate(text, &p.index(2)), None);
    assert!(is_quoted_at(text, 2, 12));
    assert!(!is_quoted_at(text, 4, 12));
}

/// The property the fuzz target checks: every node a parse produced can be located again.
#[test]
fn every_parsed_node_can_be_located() {
    fn walk(node: &Node, here: Path, out: &mut Vec<Path>) {
        out.push(here.clone());
        match node {
            Node::Seq(items) => items.iter().enumerate().for_each(|(i, n)| walk(n, here.index(i), out)),
            Node::Map(entries) => {
                for (k, v) in entries {
                    out.push(here.key(k).at_key());
                    walk(v, here.key(k), out);
                }
            }
            _ => {}
        }
    }
    let docs = [
        "a: &a [x, {y: z}]\nb: [*a, *a]\nc: *a\n",
        "x: {a: [1, {b: \"c\"}], k: 0644, y: 'yes'}\n",
        "- - - [[{a: b}]]\n",
        "k: |\n  block\n  text\nm: >\n  folded\n",
        "",
        "# only a comment\n",
    ];
    for doc in docs {
        let node = parse(doc.as_bytes()).unwrap().root;
        let mut paths = Vec::new();
        walk(&node, Path::root(), &mut paths);
        for p in paths {
            assert!(locate(doc, &p).is_some(), "{doc:?} {p:?}");
        }
    }
}
