use std::fs;

use serde_json::json;

use super::*;

/// Builds `vigo-engine-test` 1.0 (one file, no maintainer scripts) into `<root>/tmp` and
/// gives the root an empty dpkg database of its own.
fn deb_root() -> TempRoot {
    let root = TempRoot::new("pkg");
    let build = root.join("build/pkg");
    fs::create_dir_all(build.join("DEBIAN")).unwrap();
    fs::create_dir_all(build.join("usr/share/vigo-engine-test")).unwrap();
    fs::write(
        build.join("DEBIAN/control"),
        "Package: vigo-engine-test\nVersion: 1.0\nArchitecture: all\nMaintainer: Vigo <dev@vigo.invalid>\nDescription: engine test package\n",
    )
    .unwrap();
    fs::write(build.join("usr/share/vigo-engine-test/hello"), "hello\n").unwrap();
    fs::create_dir_all(root.join("tmp")).unwrap();
    let deb = root.join("tmp/vigo-engine-test_1.0_all.deb");
    let (b, d) = (build.to_string_lossy().into_owned(), deb.to_string_lossy().into_owned());
    tool("dpkg-deb", &["--root-owner-group", "--build", &b, &d], None, "apt-get install -y dpkg");
    for dir in ["var/lib/dpkg/updates", "var/lib/dpkg/info"] {
        fs::create_dir_all(root.join(dir)).unwrap();
    }
    fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    root
}

#[test]
fn package_install_and_remove_a_dpkg_deb_built_package_in_a_root() {
    let root = deb_root();
    let installed_file = root.join("usr/share/vigo-engine-test/hello");
    let install =
        bundle(vec![res("pkg", "package", json!({"package": "/tmp/vigo-engine-test_1.0_all.deb"}))]);

    let mut noop = opts(root.path());
    noop.noop = true;
    let r = run(&install, &secrets(&[]), &noop);
    assert_eq!(r.results[0].status, ResourceStatus::WouldChange, "{:?}", r.results[0].error);
    assert!(!installed_file.exists(), "noop installs nothing");

    let r = run(&install, &secrets(&[]), &opts(root.path()));
    assert_eq!(
        r.results[0].status,
        ResourceStatus::Changed,
        "{:?} {}",
        r.results[0].error,
        r.results[0].output
    );
    assert_eq!(r.results[0].diff, "install vigo-engine-test 1.0");
    assert_eq!(fs::read_to_string(&installed_file).unwrap(), "hello\n");
    assert_all(&run(&install, &secrets(&[]), &opts(root.path())), ResourceStatus::Unchanged);

    let remove =
        bundle(vec![res("pkg", "package", json!({"package": "vigo-engine-test", "ensure": "absent"}))]);
    let r = run(&remove, &secrets(&[]), &opts(root.path()));
    assert_eq!(
        r.results[0].status,
        ResourceStatus::Changed,
        "{:?} {}",
        r.results[0].error,
        r.results[0].output
    );
    assert!(!installed_file.exists());
    assert_all(&run(&remove, &secrets(&[]), &opts(root.path())), ResourceStatus::Unchanged);
}

#[test]
fn protected_package_removal_is_blocked() {
    let root = deb_root();
    let b = bundle(vec![res("libc", "package", json!({"package": "libc6", "ensure": "absent"}))]);
    let r = run(&b, &secrets(&[]), &opts(root.path()));
    assert_eq!(r.results[0].guardrail.as_deref(), Some("protected-package:libc6"));
}
