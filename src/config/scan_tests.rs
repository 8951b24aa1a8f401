//! The pre-scan against libyaml itself: deep nesting is refused fast, brackets that libyaml
//! reads as text are not counted, and on generated input the two agree on where nesting is.

use std::time::{Duration, Instant};

use super::*;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn too_deep(text: &str) -> bool {
    scan(text).is_err()
}

#[test]
fn deep_flow_nesting_is_refused_in_linear_time() {
    let n = 500_000;
    for doc in ["[".repeat(n), "{a: ".repeat(n / 4), format!("x: {}", "[a, ".repeat(n / 4))] {
        let start = Instant::now();
        let e = scan(&doc).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
        assert_eq!(e.line, 1);
        assert!(e.column > MAX_DEPTH && e.column < 4 * MAX_DEPTH + 8, "{e:?}");
    }
    // Exactly at the limit is fine; one more is not.
    assert!(!too_deep(&("[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH))));
    assert!(too_deep(&("[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1))));
}

#[test]
fn block_and_flow_levels_add_up() {
    // 100 block levels, then 29 flow levels: 129.
    let mut doc = String::new();
    for i in 0..100 {
        doc.push_str(&format!("{}k{i}:\n", " ".repeat(i)));
    }
    let deep = format!("{doc}{}x: {}\n", " ".repeat(100), "[".repeat(28));
    let e = scan(&deep).unwrap_err();
    assert_eq!(e.line, 101, "{e:?}");
    assert!(!too_deep(&format!("{doc}{}x: {}\n", " ".repeat(100), "[".repeat(27))));
    // `- - - -` opens one block sequence per dash.
    assert!(too_deep(&("- ".repeat(200) + "x\n")));
}

#[test]
fn brackets_libyaml_reads_as_text_do_not_count() {
    let many = "[".repeat(1000);
    for doc in [
        format!("a: \"{many}\"\n"),
        format!("a: '{many}'\n"),
        format!("a: \"x\\\"{many}\"\n"),
        format!("a: 'it''s {many}'\n"),
        format!("a: |\n  {many}\n  more {many}\nb: c\n"),
        format!("a: >-\n\n  {many}\n"),
        format!("a: echo {many}\n"),
        format!("a: x\n  {many}\n"),
        format!("# {many}\na: b # {many}\n"),
        format!("- \"multi\n  line {many}\n  \"\n"),
        format!("a: &anchor x{many}\n"),
    ] {
        assert!(!too_deep(&doc), "{doc:?}");
        assert!(crate::config::yaml::parse(doc.as_bytes()).is_ok(), "libyaml reads it too: {doc:?}");
    }
}

#[test]
fn unquoted_yaml11_words_are_listed_with_positions_but_keys_are_not() {
    let doc =
        "a: yes\nb: \"no\"\nyes: 1\nc: [on, 'off', Off]\nd: {no: x, k: NO}\ne: |\n  yes\nf: yes please\n";
    let words = scan(doc).unwrap().yaml11_words;
    let want = [(1, 4, "yes"), (4, 5, "on"), (4, 16, "Off"), (5, 15, "NO")];
    let got: Vec<(usize, usize, &str)> = words.iter().map(|(l, c, w)| (*l, *c, w.as_str())).collect();
    assert_eq!(got, want);
}

/// Generated documents: random fragments, a run of 140 brackets somewhere, more fragments. What
/// libyaml does with the brackets shows in serde_yaml's answer: nesting past its limit of 128,
/// reported inside the brackets, means libyaml read them as collections; a successful parse means
/// it read them as text. The
/// scan must agree in both cases; a scan that misses real nesting would let the quadratic
/// parse through. `VIGO_SCAN_CASES=150000 VIGO_SCAN_SEED=n` runs a longer search.
#[test]
fn the_scan_and_libyaml_agree_on_generated_documents() {
    const FRAGMENTS: &[&str] = &[
        "\"",
        "'",
        "''",
        "|",
        ">",
        "|-",
        ">2",
        "- ",
        ": ",
        ":",
        "? ",
        "?",
        "#",
        " #",
        "[",
        "{",
        "]",
        "}",
        ", ",
        ",",
        "\n",
        "\n  ",
        "\n    ",
        "  ",
        "\t",
        "\\",
        "\\\"",
        "!t ",
        "!<a,b> ",
        "&a ",
        "*a ",
        "---\n",
        "...\n",
        "%YAML 1.2\n",
        "key",
        "yes",
        "x y",
        "-x",
        "a: ",
        "\r\n",
        "\u{feff}",
        "\u{2028}",
        "é",
        "echo [",
        "a:b",
        "&a[",
        "!t[",
        "\"a\\\n",
        "- - ",
        "? a\n: b\n",
        "{a: b",
        "[a: b]",
        "\n- ",
        "\n  - ",
        "\\x4",
        "\\u00e9",
        "'it''s",
        "#x\n",
        ":\n",
        "|+\n  ",
        ">1\n ",
        "\u{85}",
        "*a]",
        "x #y",
    ];
    let mut seed = env_or("VIGO_SCAN_SEED", 0x2545_f491_4f6c_dd1d_u64);
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed as usize
    };
    let (mut seen_real, mut seen_text) = (0, 0);
    let start = Instant::now();
    let cases = env_or("VIGO_SCAN_CASES", 20_000);
    for _ in 0..cases {
        let mut doc = String::new();
        for _ in 0..next() % 12 {
            doc.push_str(FRAGMENTS[next() % FRAGMENTS.len()]);
        }
        let open = if next() % 2 == 0 { "[" } else { "{a: " };
        let close = if open == "[" { "]" } else { "}" };
        let tail = doc.len()..doc.len() + 140 * (open.len() + close.len());
        doc.push_str(&open.repeat(140));
        doc.push_str(&close.repeat(140));
        for _ in 0..next() % 4 {
            doc.push_str(FRAGMENTS[next() % FRAGMENTS.len()]);
        }
        let scanned_deep = too_deep(&doc);
        let parsed: Result<serde_yaml::Value, _> = serde_yaml::from_str(&doc);
        match parsed {
            // An alias replaying the node it sits in recurses too; that error is not at the brackets.
            Err(e)
                if e.to_string().starts_with("recursion limit exceeded")
                    && e.location().is_some_and(|l| tail.contains(&l.index())) =>
            {
                seen_real += 1;
                assert!(scanned_deep, "libyaml nested past the limit, the scan did not see it: {doc:?}");
            }
            Ok(_) => {
                seen_text += 1;
                assert!(!scanned_deep, "the scan counted brackets libyaml read as text: {doc:?}");
            }
            Err(_) => {}
        }
    }
    assert!(seen_real > 1000 && seen_text > 1000, "generator too narrow: {seen_real} real, {seen_text} text");
    assert!(start.elapsed() < Duration::from_secs(60 * (1 + cases / 20_000)), "{:?}", start.elapsed());
}

/// On documents libyaml accepts, the scan finds exactly the unquoted YAML 1.1 words that a
/// position lookup per string finds (the slow way the loader used before).
#[test]
fn yaml11_words_match_a_lookup_per_string() {
    use crate::config::locate::is_quoted_at;
    use crate::config::yaml::{self, locate, Node, Path};
    fn walk(node: &Node, here: Path, out: &mut Vec<Path>) {
        match node {
            Node::Str(s) if YAML11_WORDS.contains(&s.to_ascii_lowercase().as_str()) => out.push(here),
            Node::Seq(items) => items.iter().enumerate().for_each(|(i, n)| walk(n, here.index(i), out)),
            Node::Map(entries) => entries.iter().for_each(|(k, v)| walk(v, here.key(k), out)),
            _ => {}
        }
    }
    const FRAGMENTS: &[&str] = &[
        "yes", "no", "On", "'off'", "\"yes\"", "a: ", "- ", "[", "]", "{", "}", ", ", "\n", "\n  ", "|\n  ",
        "x", " #c\n",
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed as usize
    };
    let mut compared = 0;
    for _ in 0..4000 {
        let doc: String = (0..1 + next() % 10).map(|_| FRAGMENTS[next() % FRAGMENTS.len()]).collect();
        let Ok(parsed) = yaml::parse(doc.as_bytes()) else { continue };
        let mut paths = Vec::new();
        walk(&parsed.root, Path::root(), &mut paths);
        let mut slow: Vec<(usize, usize)> = paths
            .iter()
            .filter_map(|p| locate(&doc, p))
            .filter(|&(l, c)| !is_quoted_at(&doc, l, c))
            .collect();
        slow.sort();
        slow.dedup();
        let fast: Vec<(usize, usize)> = parsed.yaml11_words.iter().map(|(l, c, _)| (*l, *c)).collect();
        assert_eq!(fast, slow, "{doc:?}");
        compared += 1;
    }
    assert!(compared > 500, "{compared}");
}
