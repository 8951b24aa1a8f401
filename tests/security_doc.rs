//! docs/SECURITY.md names, for every rule, the tests that enforce it. A test that is renamed or
//! moved would leave its rule pointing at nothing: every `path::name` there must be a test
//! function in that file, and every `…::name` (same file as the one before) one somewhere.

use std::path::Path;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn defines(text: &str, name: &str) -> bool {
    text.match_indices(&format!("fn {name}")).any(|(at, m)| {
        let next = text[at + m.len()..].chars().next();
        next.is_some_and(|c| c == '(' || c == '<')
    })
}

/// Every .rs file under `dir`, with its text.
fn sources(dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(std::fs::read_to_string(&p).unwrap());
        }
    }
}

#[test]
fn every_test_security_md_names_exists() {
    let doc = std::fs::read_to_string(Path::new(REPO).join("docs/SECURITY.md")).unwrap();
    let mut all = Vec::new();
    for dir in ["src", "tests"] {
        sources(&Path::new(REPO).join(dir), &mut all);
    }
    let (mut named, mut missing) = (0, Vec::new());
    for piece in doc.split('`').skip(1).step_by(2) {
        let Some((path, name)) = piece.rsplit_once("::") else { continue };
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || name.is_empty() {
            continue;
        }
        if path == "…" {
            named += 1;
            if !all.iter().any(|text| defines(text, name)) {
                missing.push(format!("…::{name}"));
            }
        } else if path.ends_with(".rs") && (path.starts_with("src/") || path.starts_with("tests/")) {
            named += 1;
            let text = std::fs::read_to_string(Path::new(REPO).join(path)).unwrap_or_default();
            if !defines(&text, name) {
                missing.push(format!("{path}::{name}"));
            }
        }
    }
    assert!(named > 300, "SECURITY.md names {named} tests; the parse found too few");
    assert!(missing.is_empty(), "docs/SECURITY.md names tests that do not exist: {missing:#?}");
}
