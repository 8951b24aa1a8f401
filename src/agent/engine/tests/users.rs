use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use serde_json::json;

use super::*;

const PASSWORD: &str = "canary-Pw-4d1e!x";

fn account_root(tag: &str) -> TempRoot {
    let root = TempRoot::new(tag);
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\nshadow:x:42:\n").unwrap();
    fs::write(root.join("etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
    fs::write(root.join("etc/gshadow"), "root:*::\nshadow:*::\n").unwrap();
    fs::set_permissions(root.join("etc/shadow"), fs::Permissions::from_mode(0o640)).unwrap();
    root
}

fn dan(password: &str) -> (CompiledBundle, BTreeMap<String, SecretBytes>) {
    let mut user = res(
        "dan",
        "user",
        json!({"username": "dan", "password": marker("vigo/os-users/dan"), "groups": ["devs"], "shell": "/bin/bash"}),
    );
    user.depends_on = vec!["devs".into()];
    let b = bundle(vec![res("devs", "group", json!({"groupname": "devs", "gid": "2000"})), user]);
    (b, secrets(&[("vigo/os-users/dan", password)]))
}

fn shadow_hash(root: &TempRoot, user: &str) -> String {
    let text = fs::read_to_string(root.join("etc/shadow")).unwrap();
    let line = text.lines().find(|l| l.starts_with(&format!("{user}:"))).expect("shadow entry");
    line.split(':').nth(1).unwrap().to_string()
}

#[test]
fn user_password_hash_verifies_with_openssl_and_mkpasswd_and_apply_is_idempotent() {
    let root = account_root("user");
    let (b, s) = dan(PASSWORD);
    let first = run(&b, &s, &opts(root.path()));
    assert_all(&first, ResourceStatus::Changed);
    let hash = shadow_hash(&root, "dan");
    assert!(hash.starts_with("$6$"), "{hash}");
    let salt = hash.split('$').nth(2).unwrap();
    let openssl = tool(
        "openssl",
        &["passwd", "-6", "-salt", salt, "-stdin"],
        Some(PASSWORD),
        "apt-get install -y openssl",
    );
    assert_eq!(openssl.trim(), hash, "openssl passwd -6 agrees");
    let mkpasswd =
        tool("mkpasswd", &["-m", "sha-512", "-S", salt, "-s"], Some(PASSWORD), "apt-get install -y whois");
    assert_eq!(mkpasswd.trim(), hash, "mkpasswd -m sha-512 agrees");

    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(passwd.contains("\ndan:x:1000:1000::/home/dan:/bin/bash\n"), "{passwd}");
    let group = fs::read_to_string(root.join("etc/group")).unwrap();
    assert!(group.contains("devs:x:2000:dan\n") && group.contains("dan:x:1000:\n"), "{group}");
    assert!(fs::read_to_string(root.join("etc/gshadow")).unwrap().contains("devs:!::dan\n"));
    assert_eq!(fs::metadata(root.join("etc/shadow")).unwrap().mode() & 0o777, 0o640, "shadow mode kept");
    assert!(first.result("dan").unwrap().diff.contains("password changed"));
    assert_no_canary(&first, PASSWORD);
    assert_no_canary(&first, &hash);

    let shadow_before = fs::read(root.join("etc/shadow")).unwrap();
    let second = run(&b, &s, &opts(root.path()));
    assert_all(&second, ResourceStatus::Unchanged);
    assert_eq!(fs::read(root.join("etc/shadow")).unwrap(), shadow_before, "same password, same salt kept");

    let (b2, s2) = dan("another-password");
    let mut noop = opts(root.path());
    noop.noop = true;
    let etc_before: Vec<_> = ["passwd", "shadow", "group", "gshadow"]
        .iter()
        .map(|f| fs::read(root.join(&format!("etc/{f}"))).unwrap())
        .collect();
    let lock_existed = root.join("etc/.pwd.lock").exists();
    assert_eq!(run(&b2, &s2, &noop).result("dan").unwrap().status, ResourceStatus::WouldChange);
    for (i, f) in ["passwd", "shadow", "group", "gshadow"].iter().enumerate() {
        assert_eq!(fs::read(root.join(&format!("etc/{f}"))).unwrap(), etc_before[i], "noop left {f} alone");
    }
    assert_eq!(root.join("etc/.pwd.lock").exists(), lock_existed);
    let third = run(&b2, &s2, &opts(root.path()));
    assert_eq!(third.result("dan").unwrap().diff, "password changed");
    assert_ne!(shadow_hash(&root, "dan"), hash);
}

#[test]
fn user_is_modified_and_removed_with_its_memberships() {
    let root = account_root("usermod");
    let (b, s) = dan(PASSWORD);
    run(&b, &s, &opts(root.path()));
    let b2 = bundle(vec![res("dan", "user", json!({"username": "dan", "shell": "/bin/sh", "groups": []}))]);
    let r = run(&b2, &s, &opts(root.path()));
    assert_eq!(r.results[0].diff, "shell \"/bin/bash\" -> \"/bin/sh\"\nremoved from groups devs");
    let gone = bundle(vec![res("dan", "user", json!({"username": "dan", "ensure": "absent"}))]);
    assert_eq!(run(&gone, &s, &opts(root.path())).results[0].status, ResourceStatus::Changed);
    for f in ["passwd", "shadow", "group", "gshadow"] {
        let text = fs::read_to_string(root.join(&format!("etc/{f}"))).unwrap();
        assert!(!text.contains("dan"), "{f}: {text}");
    }
    assert_all(&run(&gone, &s, &opts(root.path())), ResourceStatus::Unchanged);
    assert!(fs::read_to_string(root.join("etc/passwd")).unwrap().starts_with("root:x:0:0:"));
}

#[test]
fn group_members_and_gid_converge_then_are_idempotent() {
    let root = account_root("group");
    let b = bundle(vec![res("ops", "group", json!({"groupname": "ops", "members": ["root"]}))]);
    assert_all(&run(&b, &secrets(&[]), &opts(root.path())), ResourceStatus::Changed);
    assert!(fs::read_to_string(root.join("etc/group")).unwrap().contains("ops:x:1000:root\n"));
    assert_all(&run(&b, &secrets(&[]), &opts(root.path())), ResourceStatus::Unchanged);
    let b = bundle(vec![res("ops", "group", json!({"groupname": "ops", "gid": "3000", "members": []}))]);
    let r = run(&b, &secrets(&[]), &opts(root.path()));
    assert_eq!(r.results[0].diff, "gid 1000 -> 3000\nmembers \"root\" -> \"\"");
    assert!(fs::read_to_string(root.join("etc/group")).unwrap().contains("ops:x:3000:\n"));
    let refuse = bundle(vec![res("root", "group", json!({"groupname": "root", "ensure": "absent"}))]);
    assert!(run(&refuse, &secrets(&[]), &opts(root.path())).results[0]
        .error
        .contains("primary group of user root"));
}
