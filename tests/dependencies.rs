//! ring is the only crypto backend: OpenSSL and aws-lc must never enter the dependency tree.

use std::process::Command;

#[test]
fn no_openssl_or_aws_lc_in_the_dependency_tree() {
    let out = Command::new(env!("CARGO"))
        .args(["tree", "--edges", "normal,build", "--prefix", "none", "--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        tree.lines().any(|l| l.starts_with("ring ")),
        "ring missing from the tree: is the check reading it?"
    );
    let banned: Vec<&str> = tree
        .lines()
        .filter(|l| {
            let name = l.split_whitespace().next().unwrap_or("");
            name.starts_with("openssl") || name.starts_with("aws-lc") || name == "native-tls"
        })
        .collect();
    assert!(banned.is_empty(), "banned crypto crates in the tree: {banned:?}");
}
