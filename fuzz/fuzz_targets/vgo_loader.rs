//! Feeds arbitrary bytes to the strict .vgo YAML reader (size, NUL and UTF-8 checks, the nesting
//! pre-scan, the value budget, duplicate keys) and, when a document parses, asks `locate` for the
//! position of every node in it. Neither may panic, hang or grow without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The loader's reader and position finder, compiled straight from the main crate's sources.
#[allow(dead_code, unused_imports)]
#[path = "../../src/config/yaml.rs"]
mod yaml;
#[allow(dead_code)]
#[path = "../../src/config/locate.rs"]
mod locate;
#[allow(dead_code)]
#[path = "../../src/config/scan.rs"]
mod scan;
/// The escaping helpers the reader's messages use, at the path they have in the main crate.
#[path = "../../src/util"]
mod util {
    #[allow(dead_code)]
    pub mod text;
}

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
    let Ok(doc) = yaml::parse(data) else { return };
    let text = std::str::from_utf8(data).expect("parse accepted invalid UTF-8");
    let mut found = Vec::new();
    paths(&doc.root, Path::root(), &mut found, 64);
    for p in found {
        // Every node the parser produced must be locatable in the same text.
        yaml::locate(text, &p).expect("a parsed node could not be located");
    }
    for (line, column, _) in &doc.yaml11_words {
        assert!(*line >= 1 && *column >= 1, "positions are 1-based");
    }
});
