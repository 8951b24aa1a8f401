//! Feeds arbitrary bytes to the strict .vgo YAML reader (size, NUL and UTF-8 checks, the value
//! budget, duplicate keys) and, when a document parses, asks `locate` for the position of every
//! node in it. Neither may panic, hang or grow without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The loader's reader and position finder, compiled straight from the main crate's sources.
#[allow(dead_code, unused_imports)]
#[path = "../../src/config/yaml.rs"]
mod yaml;
#[allow(dead_code)]
#[path = "../../src/config/locate.rs"]
mod locate;

use yaml::{Node, Path};

/// Up to `budget` paths of nodes (and keys) in the tree.
fn paths(node: &Node, here: Path, out: &mut Vec<Path>, budget: usize) {
    if out.len() >= budget {
        return;
    }
    out.push(here.clone());
    match node {
        Node::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                paths(item, here.index(i), out, budget);
            }
        }
        Node::Map(entries) => {
            for (k, v) in entries {
                out.push(here.key(k).at_key());
                paths(v, here.key(k), out, budget);
            }
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(node) = yaml::parse(data) else { return };
    let text = std::str::from_utf8(data).expect("parse accepted invalid UTF-8");
    let mut found = Vec::new();
    paths(&node, Path::root(), &mut found, 64);
    for p in found {
        // Every node the parser produced must be locatable in the same text.
        let (line, column) = yaml::locate(text, &p).expect("a parsed node could not be located");
        let _ = yaml::is_quoted_at(text, line, column);
    }
});
