//! What the loader reads and how much: only regular files inside the tree, never through a
//! link, never blocking on a FIFO, within bounds on size, count, nesting and time.

use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::*;

const NODES: &str = "envoys:\n  - match: \"*\"\n    roles: [m]\n";
const MODULE: &str = "resources:\n  - {name: a, type: package, package: x}\n";

/// A file the tree must never read. Read as YAML, each line is a mapping key the loader would
/// name in an "unknown key" error, which is how the reviewers saw a target's content.
const CANARY: &str =
    "CANARY-7f3a-outside-the-tree: 1\nresources:\n  - {name: CANARY-7f3a-res, type: CANARY-7f3a}\n";

/// Runs `f` on another thread and fails the test if it has not returned within `secs`: a
/// loader that blocks must fail the suite, not hang it.
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("did not return within {secs} s"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("failed (see the panic above)"),
    }
}

fn load_errors_within(t: &Tree, secs: u64) -> Vec<String> {
    let dir = t.0.clone();
    let errs = within(secs, move || load_tree(&dir).err().expect("expected the tree to be rejected"));
    t.errors(&errs)
}

/// A canary outside the tree: its own temp dir, holding `canary.vgo` and `modules/m.vgo`.
fn outside() -> (Tree, PathBuf) {
    let o = Tree::new(CANARY, &[("m", CANARY)]);
    std::fs::write(o.0.join("canary.vgo"), CANARY).unwrap();
    let path = o.0.join("canary.vgo");
    (o, path)
}

fn assert_no_canary(errors: &[String]) {
    for e in errors {
        assert!(!e.contains("CANARY"), "an error shows the linked file's content: {e}");
    }
}

#[test]
fn symlinks_out_of_the_tree_are_refused_and_their_content_never_shows() {
    let (o, canary) = outside();
    // nodes.vgo as a link.
    let t = Tree::new(NODES, &[("m", MODULE)]);
    std::fs::remove_file(t.0.join("nodes.vgo")).unwrap();
    symlink(&canary, t.0.join("nodes.vgo")).unwrap();
    let e = t.load_errors();
    assert_eq!(e, ["nodes.vgo: is a symbolic link; Vigo reads only plain files inside the config tree, never what a link points to: replace nodes.vgo with a copy of the file"]);
    // A module as a link.
    let t = Tree::new(NODES, &[("m", MODULE)]);
    symlink(&canary, t.0.join("modules/web.vgo")).unwrap();
    let e = t.load_errors();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("modules/web.vgo: is a symbolic link"), "{e:?}");
    assert_no_canary(&e);
    // modules/ itself as a link to a directory outside.
    let t = Tree::new(NODES, &[]);
    std::fs::remove_dir(t.0.join("modules")).unwrap();
    symlink(o.0.join("modules"), t.0.join("modules")).unwrap();
    let e = t.load_errors();
    assert!(e.iter().any(|l| l.starts_with("modules: is a symbolic link")), "{e:?}");
    assert_no_canary(&e);
}

/// The decision in docs/CONFIG.md: every link inside the tree is refused, also one that points
/// to another file of the same tree.
#[test]
fn a_symlink_inside_the_tree_is_refused_too() {
    let t = Tree::new(NODES, &[("m", MODULE)]);
    symlink("m.vgo", t.0.join("modules/n.vgo")).unwrap();
    let e = t.load_errors();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("modules/n.vgo: is a symbolic link"), "{e:?}");
    // The tree's own directory may be a link: an operator names it, not the tree's content.
    let (o, _) = outside();
    let link = o.0.join("tree-link");
    std::fs::remove_file(t.0.join("modules/n.vgo")).unwrap();
    symlink(&t.0, &link).unwrap();
    assert!(load_tree(&link).is_ok());
}

#[test]
fn a_fifo_is_refused_at_once_instead_of_blocking_the_load() {
    let t = Tree::new(NODES, &[("m", MODULE)]);
    nix::unistd::mkfifo(&t.0.join("modules/pipe.vgo"), nix::sys::stat::Mode::from_bits_truncate(0o600))
        .unwrap();
    let start = Instant::now();
    let e = load_errors_within(&t, 10);
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    assert_eq!(
        e,
        ["modules/pipe.vgo: is a FIFO (named pipe), not a regular file; pipe.vgo must be a plain file"]
    );
    std::fs::remove_file(t.0.join("nodes.vgo")).unwrap();
    nix::unistd::mkfifo(&t.0.join("nodes.vgo"), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let e = load_errors_within(&t, 10);
    assert!(
        e.contains(
            &"nodes.vgo: is a FIFO (named pipe), not a regular file; nodes.vgo must be a plain file"
                .to_string()
        ),
        "{e:?}"
    );
}

#[test]
fn sockets_and_directories_are_not_read_as_modules() {
    let t = Tree::new(NODES, &[("m", MODULE)]);
    let _listener = std::os::unix::net::UnixListener::bind(t.0.join("modules/sock.vgo")).unwrap();
    std::fs::create_dir(t.0.join("modules/dir.vgo")).unwrap();
    let e = load_errors_within(&t, 10);
    assert_eq!(
        e,
        [
            "modules/dir.vgo: is a directory, not a regular file; dir.vgo must be a plain file",
            "modules/sock.vgo: is a socket, not a regular file; sock.vgo must be a plain file",
        ]
    );
}

/// A tree of nodes.vgo and three modules, and its errors under `limits`.
fn three_modules() -> Tree {
    let t = Tree::new(NODES, &[("m", MODULE), ("n", MODULE), ("o", MODULE)]);
    assert!(t.load().is_ok());
    t
}

fn refused(t: &Tree, limits: Limits) -> Vec<String> {
    t.errors(&t.load_with(&limits).err().expect("expected a refusal"))
}

#[test]
fn the_number_of_modules_is_limited() {
    let t = three_modules();
    let e = refused(&t, Limits { max_modules: 2, ..Limits::default() });
    assert_eq!(e, ["modules: holds 3 .vgo files, more than the 2 a tree may have; merge small modules"]);
}

#[test]
fn the_number_of_entries_in_modules_is_limited() {
    let t = three_modules();
    std::fs::write(t.0.join("modules/README"), "notes").unwrap();
    std::fs::write(t.0.join("modules/m.vgo~"), "backup").unwrap();
    let e = refused(&t, Limits { max_dir_entries: 4, ..Limits::default() });
    assert_eq!(
        e,
        ["modules: holds more than 4 entries; only .vgo files belong here: move the rest elsewhere"]
    );
}

#[test]
fn the_size_of_one_file_is_limited() {
    let t = three_modules();
    let e = refused(&t, Limits { max_file_bytes: 40, ..Limits::default() });
    let line =
        "modules/m.vgo: file is larger than 40 bytes, the limit for a .vgo file; split it into modules";
    assert!(e.contains(&line.to_string()), "{e:?}");
}

#[test]
fn the_size_of_the_whole_tree_is_limited() {
    let t = three_modules();
    // nodes.vgo and two modules fit, the third does not.
    let budget = (NODES.len() + 2 * MODULE.len()) as u64;
    let e = refused(&t, Limits { max_tree_bytes: budget, ..Limits::default() });
    assert_eq!(
        e,
        [format!(
            "{}: the config tree is larger than {budget} bytes in all; reading stopped at modules/o.vgo: remove unused modules or split the tree",
            t.0.display()
        )]
    );
}

#[test]
fn the_time_of_a_load_is_limited() {
    let t = three_modules();
    let e = refused(&t, Limits { max_duration: Duration::ZERO, ..Limits::default() });
    assert!(
        e.iter().any(|l| l.contains("loading the config tree took longer than 0 s and was stopped")),
        "{e:?}"
    );
}

#[test]
fn deep_nesting_is_refused_in_a_fraction_of_a_second_with_its_position() {
    for body in ["[".repeat(1 << 20), format!("vars:\n  x: {}", "{a: ".repeat(200_000))] {
        let t = Tree::new(NODES, &[]);
        std::fs::write(t.0.join("modules/m.vgo"), &body[..body.len().min(yaml::MAX_FILE_BYTES)]).unwrap();
        let start = Instant::now();
        let e = load_errors_within(&t, 20);
        assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("modules/m.vgo:")
                && e[0].ends_with("nesting is deeper than 128 levels; flatten the structure"),
            "{e:?}"
        );
    }
}

/// Telling `yes` from `"yes"` used to cost a full re-parse per string; a file of quoted words
/// took minutes. Now the scan lists the unquoted ones.
#[test]
fn many_quoted_yaml11_words_load_fast_and_the_unquoted_one_is_named() {
    let mut module = String::from("vars:\n");
    for i in 0..50_000 {
        module.push_str(&format!("  v{i}: \"yes\"\n"));
    }
    module.push_str("  last: off\n");
    let t = Tree::new(NODES, &[("m", &module)]);
    let e = load_errors_within(&t, 30);
    assert_eq!(e, ["modules/m.vgo:50002:9: `off` is a boolean in YAML 1.1 but a string here; quote it (\"off\") if you mean the word, or write true/false"]);
}

/// Each error's position costs a re-parse of its file; past the budget an error names its path.
#[test]
fn error_positions_past_the_budget_fall_back_to_the_key_path() {
    let module = "resources:\n  - {name: a, type: package, package: x, colour: 1}\n  - {name: b, type: package, package: y, size: 2}\n";
    let t = Tree::new(NODES, &[("m", module)]);
    let limits = Limits { max_locate_bytes: module.len() + 1, ..Limits::default() };
    let e = t.errors(&t.load_with(&limits).err().unwrap());
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e.iter().any(|l| l.starts_with("modules/m.vgo:2:") && l.contains("unknown key `colour`")),
        "{e:?}"
    );
    assert!(
        e.iter().any(|l| l.starts_with("modules/m.vgo: at resources[1].size: unknown key `size`")),
        "{e:?}"
    );
}

/// A short template repeating a big var would render gigabytes; bundles have a size limit.
#[test]
fn a_template_that_expands_past_the_bundle_limit_is_refused_where_it_goes_over() {
    let big = "x".repeat(300_000);
    let refs = "{{ .Vars.big }}".repeat(40_000);
    let module = format!("vars:\n  big: \"{big}\"\nresources:\n  - name: f\n    type: file\n    target_path: /f\n    content: \"{refs}\"\n");
    let t = Tree::new(NODES, &[("m", &module)]);
    let p = crate::secrets::MemoryProvider::new();
    let tree = t.load().unwrap();
    let start = Instant::now();
    let e = t.errors(&tree.compile("h1", &p).unwrap_err());
    assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
    assert_eq!(e, ["modules/m.vgo:7:14: rendering this value takes the bundle past 67108864 bytes of text, the most one envoy's bundle may hold; use smaller vars, or fewer large values per envoy"]);
    assert_eq!(t.errors(&tree.validate_all(&p).unwrap_err()), e);
}

#[test]
fn validating_many_entries_times_many_resources_is_bounded() {
    let mut nodes = String::from("envoys:\n");
    for i in 0..50 {
        nodes.push_str(&format!("  - {{match: h{i}, roles: [m]}}\n"));
    }
    let module = "resources:\n".to_string()
        + &(0..40).map(|i| format!("  - {{name: r{i}, type: package, package: p{i}}}\n")).collect::<String>();
    let t = Tree::new(&nodes, &[("m", &module)]);
    let p = crate::secrets::MemoryProvider::new();
    assert!(t.load().unwrap().validate_all(&p).is_ok());
    let limits = Limits { max_validate_resources: 1999, ..Limits::default() };
    let e = t.errors(&t.load_with(&limits).unwrap().validate_all(&p).unwrap_err());
    assert_eq!(e, ["nodes.vgo: validating compiles each of the 50 envoys entries with all of its roles' resources, 2000 in all, more than the limit of 1999; give hosts that share roles one entry with a glob"]);
    let limits = Limits { max_duration: Duration::ZERO, ..Limits::default() };
    let tree = t.load_with(&Limits::default()).unwrap();
    let slow = ConfigTree { limits, ..tree };
    let e = t.errors(&slow.validate_all(&p).unwrap_err());
    assert!(
        e.len() == 1 && e[0].contains("validating the tree took longer than 0 s and was stopped"),
        "{e:?}"
    );
    let limits = Limits { max_validate_text: 2000, ..Limits::default() };
    let e = t.errors(&t.load_with(&limits).unwrap().validate_all(&p).unwrap_err());
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with(
            "nodes.vgo: validating renders more than 2000 bytes of text across the envoys entries"
        ),
        "{e:?}"
    );
}
