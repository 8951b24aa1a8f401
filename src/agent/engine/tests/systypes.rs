//! cron and host through the engine (sysctl's live value is tested in a network namespace by
//! tests/agent_apply.rs), and the cron schedule checked against Debian's own `crontab`.

use std::fs;

use serde_json::json;

use super::*;

#[test]
fn a_cron_job_is_one_file_that_converges_and_is_removed_on_absent() {
    let root = TempRoot::new("cron");
    fs::create_dir_all(root.join("etc/cron.d")).unwrap();
    let job = |ensure: &str| {
        bundle(vec![res(
            "nightly",
            "cron",
            json!({"job": "vigo-nightly", "schedule": "30 2 * * *", "user": "backup", "command": "/usr/local/bin/dump --all", "ensure": ensure}),
        )])
    };
    let first = run(&job("present"), &secrets(&[]), &opts(root.path()));
    assert_all(&first, ResourceStatus::Changed);
    let path = root.join("etc/cron.d/vigo-nightly");
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.ends_with("\n30 2 * * * backup /usr/local/bin/dump --all\n"), "{text}");
    assert!(text.contains("SHELL=/bin/sh\n"));
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o644);
    assert_all(&run(&job("present"), &secrets(&[]), &opts(root.path())), ResourceStatus::Unchanged);
    fs::write(&path, "* * * * * root /bin/evil\n").unwrap();
    let mut noop = opts(root.path());
    noop.noop = true;
    assert_all(&run(&job("present"), &secrets(&[]), &noop), ResourceStatus::WouldChange);
    assert_all(&run(&job("present"), &secrets(&[]), &opts(root.path())), ResourceStatus::Changed);
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    assert_all(&run(&job("absent"), &secrets(&[]), &opts(root.path())), ResourceStatus::Changed);
    assert!(!path.exists());
}

#[test]
fn a_cron_command_passes_the_guardrails_and_a_bad_one_writes_nothing() {
    let root = TempRoot::new("cron-guard");
    fs::create_dir_all(root.join("etc/cron.d")).unwrap();
    let b = bundle(vec![
        res("wipe", "cron", json!({"job": "wipe", "schedule": "@daily", "command": "rm -rf /"})),
        res("typo", "cron", json!({"job": "typo", "schedule": "61 * * * *", "command": "true"})),
    ]);
    let r = run(&b, &secrets(&[]), &opts(root.path()));
    assert!(r.result("wipe").unwrap().guardrail.is_some(), "{r:?}");
    assert!(r.result("typo").unwrap().error.contains("outside 0-59"));
    assert_eq!(fs::read_dir(root.join("etc/cron.d")).unwrap().count(), 0);
}

#[test]
fn a_host_entry_converges_in_etc_hosts() {
    let root = TempRoot::new("host");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(root.join("etc/hosts"), "127.0.0.1 localhost\n10.1.1.1 db old-db\n").unwrap();
    let b = bundle(vec![res(
        "db",
        "host",
        json!({"hostname": "db", "ip": "10.0.0.5", "aliases": ["db.internal"]}),
    )]);
    assert_all(&run(&b, &secrets(&[]), &opts(root.path())), ResourceStatus::Changed);
    assert_eq!(
        fs::read_to_string(root.join("etc/hosts")).unwrap(),
        "127.0.0.1 localhost\n10.1.1.1\told-db\n10.0.0.5\tdb db.internal\n"
    );
    assert_all(&run(&b, &secrets(&[]), &opts(root.path())), ResourceStatus::Unchanged);
}

/// Every schedule our checker accepts, Debian's crontab installs, and every one it refuses,
/// crontab refuses too (the table a job file uses is a crontab with a user column). The one
/// deliberate difference, a backwards range, is checked apart.
#[test]
fn cron_schedules_agree_with_debians_crontab() {
    let dir = TempRoot::new("crontab");
    let file = dir.join("tab");
    let schedules = [
        "* * * * *",
        "*/5 * * * *",
        "0 3 * * 1-5",
        "15,45 8-18/2 1 jan-mar sun",
        "0 0 1 12 7",
        "@daily",
        "@reboot",
        "* * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * * 13 *",
        "* * * * 8",
        "* * * * fun",
        "@sometimes",
        "a * * * *",
        "*/0 * * * *",
        "5/10 * * * *",
        "*/60 * * * *",
        "0-59/70 * * * *",
        "1-5/0 * * * *",
        "JAN * * * *",
        "* * * JAN *",
        "* * * * MON-FRI",
        "1,,2 * * * *",
        "@DAILY",
        "@annually",
    ];
    for schedule in schedules {
        fs::write(&file, format!("{schedule} /bin/true\n")).unwrap();
        let installed = std::process::Command::new("crontab")
            .args(["-u", "nobody", file.to_str().unwrap()])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap_or_else(|e| {
                panic!("crontab is needed by this test ({e}); install it: apt-get install cron")
            })
            .success();
        let ours = crate::edits::cron::check_schedule(schedule).is_ok();
        assert_eq!(ours, installed, "{schedule:?}: we say {ours}, crontab says {installed}");
    }
    let _ = std::process::Command::new("crontab").args(["-u", "nobody", "-r"]).status();
    assert!(crate::edits::cron::check_schedule("5-1 * * * *").is_err());
}

/// A fresh key pair's public line from the real ssh-keygen.
fn ssh_public_key(dir: &TempRoot, name: &str) -> String {
    let path = dir.join(name);
    tool(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path.to_str().unwrap()],
        None,
        "apt-get install openssh-client",
    );
    fs::read_to_string(format!("{}.pub", path.display())).unwrap().trim().to_string()
}

#[test]
fn authorized_keys_are_kept_per_key_in_a_private_ssh_directory_sshd_accepts() {
    let root = TempRoot::new("authkeys");
    let keys = TempRoot::new("authkeys-gen");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("home/dan")).unwrap();
    fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\ndan:x:4242:4343::/home/dan:/bin/sh\n")
        .unwrap();
    let (k1, k2) = (ssh_public_key(&keys, "laptop"), ssh_public_key(&keys, "ci"));
    let b = bundle(vec![
        res("laptop", "authorized_key", json!({"user": "dan", "key": k1, "options": "no-agent-forwarding"})),
        res("ci", "authorized_key", json!({"user": "dan", "key": k2})),
    ]);
    let mut noop = opts(root.path());
    noop.noop = true;
    assert_all(&run(&b, &secrets(&[]), &noop), ResourceStatus::WouldChange);
    assert!(!root.join("home/dan/.ssh").exists(), "noop made nothing");
    assert_all(&run(&b, &secrets(&[]), &opts(root.path())), ResourceStatus::Changed);
    use std::os::unix::fs::MetadataExt;
    let dir = fs::metadata(root.join("home/dan/.ssh")).unwrap();
    let file_path = root.join("home/dan/.ssh/authorized_keys");
    let file = fs::metadata(&file_path).unwrap();
    assert_eq!((dir.mode() & 0o7777, dir.uid(), dir.gid()), (0o700, 4242, 4343));
    assert_eq!((file.mode() & 0o7777, file.uid(), file.gid()), (0o600, 4242, 4343));
    let text = fs::read_to_string(&file_path).unwrap();
    assert_eq!(text, format!("no-agent-forwarding {k1}\n{k2}\n"));
    // ssh-keygen reads the file as sshd would: both keys, with their comments.
    let listed = tool(
        "ssh-keygen",
        &["-l", "-f", file_path.to_str().unwrap()],
        None,
        "apt-get install openssh-client",
    );
    assert!(listed.contains("laptop (ED25519)") && listed.contains("ci (ED25519)"), "{listed}");
    assert_all(&run(&b, &secrets(&[]), &opts(root.path())), ResourceStatus::Unchanged);

    // A changed comment and dropped options are corrected in place; a removed key goes.
    let blob = k1.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    fs::write(&file_path, format!("# mine\n{blob} renamed\n{k2}\n")).unwrap();
    let fixed = run(&b, &secrets(&[]), &opts(root.path()));
    assert_eq!(fixed.result("laptop").unwrap().status, ResourceStatus::Changed);
    assert_eq!(fs::read_to_string(&file_path).unwrap(), format!("# mine\nno-agent-forwarding {k1}\n{k2}\n"));
    let gone =
        bundle(vec![res("ci", "authorized_key", json!({"user": "dan", "key": k2, "ensure": "absent"}))]);
    run(&gone, &secrets(&[]), &opts(root.path()));
    assert_eq!(fs::read_to_string(&file_path).unwrap(), format!("# mine\nno-agent-forwarding {k1}\n"));

    let nobody = bundle(vec![res("x", "authorized_key", json!({"user": "ghost", "key": k1}))]);
    assert!(run(&nobody, &secrets(&[]), &opts(root.path())).results[0].error.contains("does not exist"));
}

#[test]
fn the_user_resource_brings_its_authorized_keys() {
    let root = TempRoot::new("userkeys");
    let keys = TempRoot::new("userkeys-gen");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("home/amy")).unwrap();
    for f in ["passwd", "group", "shadow", "gshadow"] {
        fs::write(
            root.join(&format!("etc/{f}")),
            if f == "passwd" { "root:x:0:0::/root:/bin/sh\n" } else { "" },
        )
        .unwrap();
    }
    let (k1, k2) = (ssh_public_key(&keys, "one"), ssh_public_key(&keys, "two"));
    let b = bundle(vec![res(
        "amy",
        "user",
        json!({"username": "amy", "uid": "2001", "home": "/home/amy", "authorized_keys": [k1, k2]}),
    )]);
    let mut noop = opts(root.path());
    noop.noop = true;
    let predicted = run(&b, &secrets(&[]), &noop);
    assert!(predicted.results[0].diff.contains("would add 2 authorized key(s)"), "{predicted:?}");
    let first = run(&b, &secrets(&[]), &opts(root.path()));
    assert_all(&first, ResourceStatus::Changed);
    assert_eq!(
        fs::read_to_string(root.join("home/amy/.ssh/authorized_keys")).unwrap(),
        format!("{k1}\n{k2}\n")
    );
    assert_all(&run(&b, &secrets(&[]), &opts(root.path())), ResourceStatus::Unchanged);
}

#[test]
fn a_unit_file_converges_and_systemd_analyze_accepts_it() {
    let root = TempRoot::new("unit");
    fs::create_dir_all(root.join("etc/systemd/system")).unwrap();
    let content = "[Unit]\nDescription=Vigo test unit\n\n[Service]\nType=oneshot\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n";
    let b =
        bundle(vec![res("unit", "systemd_unit", json!({"unit": "vigo-test.service", "content": content}))]);
    let first = run(&b, &secrets(&[]), &opts(root.path()));
    assert_all(&first, ResourceStatus::Changed);
    assert_eq!(first.results[0].output, "systemd is not reloaded under --root");
    let path = root.join("etc/systemd/system/vigo-test.service");
    assert_eq!(fs::read_to_string(&path).unwrap(), content);
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", path.to_str().unwrap()])
        .output()
        .expect("systemd-analyze is needed by this test: apt-get install systemd");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_all(&run(&b, &secrets(&[]), &opts(root.path())), ResourceStatus::Unchanged);
    let gone =
        bundle(vec![res("unit", "systemd_unit", json!({"unit": "vigo-test.service", "ensure": "absent"}))]);
    assert_all(&run(&gone, &secrets(&[]), &opts(root.path())), ResourceStatus::Changed);
    assert!(!path.exists());
    let bad = bundle(vec![res("unit", "systemd_unit", json!({"unit": "../evil.service", "content": "x"}))]);
    assert!(run(&bad, &secrets(&[]), &opts(root.path())).results[0].error.contains("not a unit file name"));
}

#[test]
fn a_mount_under_a_root_manages_the_fstab_line_only_and_system_mounts_are_protected() {
    let root = TempRoot::new("mount-root");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(
        root.join("etc/fstab"),
        "# static\nUUID=1 / ext4 defaults 0 1\n/dev/old /srv ext4 defaults 0 2\n",
    )
    .unwrap();
    let b = bundle(vec![res(
        "srv",
        "mount",
        json!({"path": "/srv", "device": "/dev/vdb1", "fstype": "ext4", "options": "noatime", "pass": "2"}),
    )]);
    let r = run(&b, &secrets(&[]), &opts(root.path()));
    assert_eq!(r.results[0].status, ResourceStatus::Changed, "{:?}", r.results[0]);
    assert_eq!(r.results[0].output, "the mounted state is not managed under --root");
    assert_eq!(
        fs::read_to_string(root.join("etc/fstab")).unwrap(),
        "# static\nUUID=1 / ext4 defaults 0 1\n/dev/vdb1\t/srv\text4\tnoatime\t0\t2\n"
    );
    assert_all(&run(&b, &secrets(&[]), &opts(root.path())), ResourceStatus::Unchanged);
    // On the running system, / may not be unmounted by a bundle, whatever its fstab says.
    let slash = bundle(vec![res(
        "slash",
        "mount",
        json!({"path": "/", "device": "UUID=1", "fstype": "ext4", "ensure": "unmounted"}),
    )]);
    let mut o = opts(Path::new("/"));
    o.noop = true;
    let r = run(&slash, &secrets(&[]), &o);
    assert_eq!(r.results[0].guardrail.as_deref(), Some("protected-mount:/"), "{:?}", r.results[0]);
}

/// One resource of each system type whose state is a file (under a root, so only files).
fn file_backed(keys: &TempRoot) -> (CompiledBundle, String) {
    let key = ssh_public_key(keys, "drift");
    let b = bundle(vec![
        res("job", "cron", json!({"job": "nightly", "schedule": "@daily", "command": "/bin/true"})),
        res("fwd", "sysctl", json!({"key": "net.ipv4.ip_forward", "value": "1"})),
        res("db", "host", json!({"hostname": "db", "ip": "10.0.0.5"})),
        res(
            "unit",
            "systemd_unit",
            json!({"unit": "app.service", "content": "[Service]\nExecStart=/bin/true\n"}),
        ),
        res("key", "authorized_key", json!({"user": "dan", "key": key})),
        res(
            "srv",
            "mount",
            json!({"path": "/srv", "device": "/dev/vdb1", "fstype": "ext4", "ensure": "present"}),
        ),
        res("repo", "repository", json!({"repo": "local", "url": "file:/srv/repo"})),
    ]);
    (b, key)
}

fn file_backed_root(tag: &str) -> TempRoot {
    let root = TempRoot::new(tag);
    for d in [
        "etc/cron.d",
        "etc/sysctl.d",
        "etc/systemd/system",
        "etc/apt/sources.list.d",
        "etc/apt/keyrings",
        "home/dan",
    ] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::write(root.join("etc/passwd"), "dan:x:4242:4242::/home/dan:/bin/sh\n").unwrap();
    root
}

/// The files the file-backed types write, relative to the root.
const WRITTEN: &[&str] = &[
    "etc/cron.d/nightly",
    "etc/sysctl.d/60-vigo-net.ipv4.ip_forward.conf",
    "etc/hosts",
    "etc/systemd/system/app.service",
    "home/dan/.ssh/authorized_keys",
    "etc/fstab",
    "etc/apt/sources.list.d/vigo-local.sources",
];

/// sysctl's live value belongs to the kernel: under a root its file is checked alone here
/// (the live value is tested in a network namespace by tests/agent_apply.rs), so the bundle
/// runs with the live value read as it is.
#[test]
fn file_backed_system_types_converge_and_drift_is_predicted_then_corrected() {
    let keys = TempRoot::new("drift-keys");
    let root = file_backed_root("systypes-drift");
    let (mut b, _) = file_backed(&keys);
    // Ask for the value the kernel has, so the run never writes /proc/sys.
    let live = fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    b.resources[1].attributes.insert("value".into(), json!(live.trim()));
    assert_all(&run(&b, &secrets(&[]), &opts(root.path())), ResourceStatus::Changed);
    assert_all(&run(&b, &secrets(&[]), &opts(root.path())), ResourceStatus::Unchanged);
    let good: Vec<String> = WRITTEN.iter().map(|f| fs::read_to_string(root.join(f)).unwrap()).collect();
    for f in WRITTEN {
        fs::write(root.join(f), "edited by hand\n").unwrap();
    }
    let mut noop = opts(root.path());
    noop.noop = true;
    assert_all(&run(&b, &secrets(&[]), &noop), ResourceStatus::WouldChange);
    assert!(WRITTEN.iter().all(|f| fs::read_to_string(root.join(f)).unwrap() == "edited by hand\n"));
    assert_all(&run(&b, &secrets(&[]), &opts(root.path())), ResourceStatus::Changed);
    let fixed: Vec<String> = WRITTEN.iter().map(|f| fs::read_to_string(root.join(f)).unwrap()).collect();
    // Whole files come back as they were; edited ones keep the hand-written line beside ours.
    for ((f, good), fixed) in WRITTEN.iter().zip(&good).zip(&fixed) {
        match *f {
            "etc/hosts" | "home/dan/.ssh/authorized_keys" | "etc/fstab" => {
                assert_eq!(*fixed, format!("edited by hand\n{good}"), "{f}")
            }
            _ => assert_eq!(fixed, good, "{f}"),
        }
    }
}

#[test]
fn file_backed_system_types_refuse_a_symlinked_etc_and_write_nothing_outside() {
    let keys = TempRoot::new("link-keys");
    let root = TempRoot::new("systypes-link");
    let outside = TempRoot::new("systypes-link-outside");
    for d in ["cron.d", "sysctl.d", "systemd/system", "apt/sources.list.d", "apt/keyrings"] {
        fs::create_dir_all(outside.join(&format!("etc/{d}"))).unwrap();
    }
    fs::write(outside.join("etc/passwd"), "dan:x:4242:4242::/home/dan:/bin/sh\n").unwrap();
    std::os::unix::fs::symlink(outside.join("etc"), root.join("etc")).unwrap();
    fs::create_dir_all(root.join("home/dan")).unwrap();
    let (b, _) = file_backed(&keys);
    let r = run(&b, &secrets(&[]), &opts(root.path()));
    for x in &r.results {
        assert_eq!(x.status, ResourceStatus::Failed, "{x:?}");
        assert!(x.error.contains("symlink"), "{}: {}", x.name, x.error);
    }
    let written: Vec<_> =
        WRITTEN.iter().filter(|f| outside.join(f).exists() || root.join(f).exists()).collect();
    assert!(written.is_empty(), "{written:?}");
}
