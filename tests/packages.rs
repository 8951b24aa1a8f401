//! The distro packages (packaging/build.sh) and their systemd units, checked with the tools
//! distributions use: lintian, rpm, systemd-analyze, and dpkg inside a Debian root made by
//! mmdebstrap. Every tool is required: a missing one fails the test (scripts/test-all.sh
//! installs them).
//!
//! To keep the suite fast the packages wrap the debug binary the tests already built (the
//! shipped packages wrap the release binary; nothing in the packaging depends on which), built
//! once per test process. The Debian root is cached as a tarball under target/.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

use common::TempDir;

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {shown} (is the tool installed? see scripts/test-all.sh): {e}")
    });
    assert!(
        out.status.success(),
        "{shown} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tmpdir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// The packages of one build: .deb for vigo and vigo-server, and the .rpm files.
struct Built {
    dir: PathBuf,
}

impl Built {
    fn file(&self, prefix: &str, ext: &str) -> PathBuf {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy().into_owned();
                n.starts_with(prefix) && n.ends_with(ext)
            })
            .collect();
        assert_eq!(found.len(), 1, "one {prefix}*{ext} in {}: {found:?}", self.dir.display());
        found.pop().unwrap()
    }
    fn deb(&self, pkg: &str) -> PathBuf {
        self.file(&format!("{pkg}_"), ".deb")
    }
    fn rpm(&self, pkg: &str) -> PathBuf {
        self.file(&format!("{pkg}-{VERSION}"), ".rpm")
    }
}

fn build(revision: u32) -> Built {
    let dir = tmpdir().join(format!("packages-{}-r{revision}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    run(Command::new("bash")
        .arg(Path::new(REPO).join("packaging/build.sh"))
        .args(["--binary", env!("CARGO_BIN_EXE_vigo"), "--revision", &revision.to_string(), "--out"])
        .arg(&dir));
    Built { dir }
}

/// The packages every test shares (revision 1), and a second build for the upgrade (revision 2).
fn packages() -> &'static Built {
    static B: OnceLock<Built> = OnceLock::new();
    B.get_or_init(|| build(1))
}

fn upgrade_packages() -> &'static Built {
    static B: OnceLock<Built> = OnceLock::new();
    B.get_or_init(|| build(2))
}

/// A package's files, extracted (dpkg-deb -x) into a temp dir.
fn extract(deb: &Path, into: &Path) {
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(into));
}

#[test]
fn lintian_finds_no_errors_in_the_debs() {
    let b = packages();
    let out = Command::new("lintian")
        .args(["--no-tag-display-limit", "--display-info"])
        .arg(b.deb("vigo"))
        .arg(b.deb("vigo-server"))
        .output()
        .expect("lintian must be installed (scripts/test-all.sh)");
    let text = stdout(&out);
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("E:")).collect();
    assert!(errors.is_empty(), "lintian errors:\n{text}{}", String::from_utf8_lossy(&out.stderr));
    // Every warning left is explained in packaging/README.md ("lintian").
    let readme = std::fs::read_to_string(Path::new(REPO).join("packaging/README.md")).unwrap();
    for w in text.lines().filter(|l| l.starts_with("W:")) {
        let tag = w.split_whitespace().nth(2).unwrap_or(w);
        assert!(readme.contains(tag), "lintian warning not explained in packaging/README.md: {w}");
    }
}

#[test]
fn rpm_packages_hold_the_expected_files() {
    let b = packages();
    let list = |pkg: &str| -> Vec<String> {
        stdout(&run(Command::new("rpm").arg("-qlp").arg(b.rpm(pkg)))).lines().map(str::to_string).collect()
    };
    let common = list("vigo");
    for f in [
        "/usr/bin/vigo",
        "/usr/bin/vigosrv",
        "/usr/bin/vigocli",
        "/usr/bin/vigo-agent",
        "/usr/lib/systemd/system/vigo-agent.service",
        "/usr/lib/tmpfiles.d/vigo.conf",
        "/var/lib/vigo",
        "/usr/share/man/man1/vigo.1.gz",
        "/usr/share/man/man1/vigocli.1.gz",
        "/usr/share/man/man5/vigo.vgo.5.gz",
        "/usr/share/man/man8/vigosrv.8.gz",
        "/usr/share/man/man8/vigo-agent.8.gz",
        "/usr/share/bash-completion/completions/vigo",
        "/usr/share/bash-completion/completions/vigocli",
        "/usr/share/zsh/vendor-completions/_vigo",
        "/usr/share/fish/vendor_completions.d/vigo.fish",
        "/usr/share/licenses/vigo/copyright",
    ] {
        assert!(common.iter().any(|l| l == f), "vigo rpm lacks {f}: {common:?}");
    }
    let server = list("vigo-server");
    for f in [
        "/usr/lib/systemd/system/vigosrv.service",
        "/usr/lib/sysusers.d/vigo-server.conf",
        "/usr/lib/tmpfiles.d/vigo-server.conf",
        "/etc/vigo/vigo.yaml",
        "/srv/vigo",
    ] {
        assert!(server.iter().any(|l| l == f), "vigo-server rpm lacks {f}: {server:?}");
    }
    // The state directory is owner-only, the example config a config file kept on upgrade.
    let dump = stdout(&run(Command::new("rpm").args(["-qp", "--dump"]).arg(b.rpm("vigo-server"))));
    let srv = dump.lines().find(|l| l.starts_with("/srv/vigo ")).unwrap();
    assert!(srv.contains(" 040700 vigo vigo "), "{srv}");
    let conf = stdout(&run(Command::new("rpm").args(["-qcp"]).arg(b.rpm("vigo-server"))));
    assert_eq!(conf.trim(), "/etc/vigo/vigo.yaml");

    // rpmlint: only the errors packaging/README.md explains (0700 state directories on purpose;
    // packages are signed by the repository that publishes them, with its key).
    let out = Command::new("rpmlint")
        .arg(b.rpm("vigo"))
        .arg(b.rpm("vigo-server"))
        .output()
        .expect("rpmlint must be installed (scripts/test-all.sh)");
    let text = stdout(&out);
    for line in text.lines().filter(|l| l.contains(": E: ")) {
        let tag = line.split(": E: ").nth(1).unwrap().split_whitespace().next().unwrap();
        assert!(
            ["non-standard-dir-perm", "no-signature", "statically-linked-binary"].contains(&tag),
            "rpmlint error: {line}\n{text}"
        );
    }
}

/// The units from the .deb, in a root that also holds the host's systemd units (verify needs
/// the targets they name) and the packaged binary at the path ExecStart names.
fn unit_root(t: &TempDir) -> PathBuf {
    let root = t.join("root");
    extract(&packages().deb("vigo"), &root);
    extract(&packages().deb("vigo-server"), &root);
    let units = root.join("lib/systemd/system");
    for e in std::fs::read_dir("/lib/systemd/system").expect("systemd must be installed") {
        let e = e.unwrap();
        let to = units.join(e.file_name());
        if !to.exists() && e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
    root
}

#[test]
fn units_verify_and_the_server_sandbox_rates_ok() {
    let t = TempDir::new("pkg-units");
    let root = unit_root(&t);
    // --man=no: the chroot test below checks the man pages the units name are installed.
    run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(format!("--root={}", root.display()))
        .args(["vigosrv.service", "vigo-agent.service"]));
    let unit = root.join("lib/systemd/system/vigosrv.service");
    let out =
        run(Command::new("systemd-analyze").args(["security", "--offline=true", "--no-pager"]).arg(&unit));
    let text = stdout(&out);
    let line = text.lines().find(|l| l.contains("Overall exposure level")).expect(&text);
    let score: f64 = line.split(':').nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    assert!(score <= 2.0, "vigosrv.service exposure {score} > 2.0:\n{text}");
    println!("vigosrv.service: {line}");
    // The rules the agent unit keeps although it runs as root.
    let agent = std::fs::read_to_string(root.join("lib/systemd/system/vigo-agent.service")).unwrap();
    for rule in ["LimitCORE=0", "UMask=0077", "KillMode=mixed", "TimeoutStopSec=", "Restart=on-failure"] {
        assert!(agent.lines().any(|l| l.starts_with(rule)), "vigo-agent.service lacks {rule}");
    }
    let server = std::fs::read_to_string(&unit).unwrap();
    for rule in
        ["User=vigo", "LimitCORE=0", "UMask=0077", "CapabilityBoundingSet=\n", "ReadWritePaths=/srv/vigo"]
    {
        assert!(server.contains(rule), "vigosrv.service lacks {rule:?}");
    }
}

/// A minimal Debian root with systemd (for systemd-sysusers and systemd-tmpfiles, as on a
/// real host), made by mmdebstrap once and kept as a tarball under target/.
fn debian_root_tarball() -> PathBuf {
    static T: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut guard = T.lock().unwrap();
    if let Some(p) = guard.as_ref() {
        return p.clone();
    }
    let tar = tmpdir().join("debian-bookworm-minbase-systemd.tar");
    if !tar.exists() {
        let part = tar.with_extension(format!("part{}", std::process::id()));
        run(Command::new("mmdebstrap")
            .args([
                "--quiet",
                "--mode=root",
                "--variant=minbase",
                "--include=systemd",
                "--format=tar",
                "bookworm",
            ])
            .arg(&part)
            .arg("http://deb.debian.org/debian"));
        std::fs::rename(&part, &tar).unwrap();
    }
    *guard = Some(tar.clone());
    tar
}

/// Runs a shell script as root inside `root` (chroot), in private network, mount and PID
/// namespaces with /proc mounted, so any server it starts listens on its own loopback only.
fn in_root(root: &Path, script: &str) -> Output {
    let mut child = Command::new("unshare")
        .args(["--net", "--mount", "--pid", "--fork"])
        .arg(format!("--mount-proc={}", root.join("proc").display()))
        .args(["sh", "-c", "ip link set lo up && exec chroot \"$0\" /bin/sh -eu", &root.to_string_lossy()])
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LC_ALL", "C")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare (util-linux) must be installed");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "script failed ({}):\n{script}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Path -> (mode, uid, gid, content hash) of everything under `dir`.
fn snapshot(dir: &Path) -> BTreeMap<String, (u32, u32, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let content = if m.is_file() { std::fs::read(&p).unwrap() } else { vec![] };
            if m.is_dir() {
                stack.push(p.clone());
            }
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            out.insert(rel, (m.mode(), m.uid(), m.gid(), content));
        }
    }
    out
}

fn passwd_id(root: &Path, file: &str, name: &str) -> Option<u32> {
    std::fs::read_to_string(root.join(file))
        .unwrap()
        .lines()
        .find(|l| l.starts_with(&format!("{name}:")))
        .map(|l| l.split(':').nth(2).unwrap().parse().unwrap())
}

#[test]
fn deb_installs_upgrades_removes_and_purges_in_a_debian_root() {
    let tar = debian_root_tarball();
    let (b1, b2) = (packages(), upgrade_packages());
    let t = TempDir::new("pkg-root");
    let root = t.join("root");
    std::fs::create_dir_all(&root).unwrap();
    run(Command::new("tar").args(["-C"]).arg(&root).args(["-xf"]).arg(&tar));
    for (dir, b) in [("r1", b1), ("r2", b2)] {
        let into = root.join("tmp").join(dir);
        std::fs::create_dir_all(&into).unwrap();
        for pkg in ["vigo", "vigo-server"] {
            std::fs::copy(b.deb(pkg), into.join(format!("{pkg}.deb"))).unwrap();
        }
    }

    // Install: the binary under every name, the state directories, units, man pages.
    in_root(&root, "dpkg -i /tmp/r1/vigo.deb /tmp/r1/vigo-server.deb");
    let out = in_root(&root, "for n in vigo vigosrv vigocli vigo-agent; do $n --version; done");
    assert_eq!(stdout(&out), format!("vigo {VERSION}\n").repeat(4));
    let uid = passwd_id(&root, "etc/passwd", "vigo").expect("the vigo system user");
    let gid = passwd_id(&root, "etc/group", "vigo").expect("the vigo group");
    assert!(uid < 1000 && uid > 0, "a system uid: {uid}");
    let srv = std::fs::metadata(root.join("srv/vigo")).unwrap();
    assert_eq!((srv.mode() & 0o7777, srv.uid(), srv.gid()), (0o700, uid, gid));
    let agent = std::fs::metadata(root.join("var/lib/vigo")).unwrap();
    assert_eq!((agent.mode() & 0o7777, agent.uid(), agent.gid()), (0o700, 0, 0));
    for f in [
        "lib/systemd/system/vigosrv.service",
        "lib/systemd/system/vigo-agent.service",
        "usr/share/man/man1/vigo.1.gz",
        "usr/share/man/man1/vigocli.1.gz",
        "usr/share/man/man5/vigo.vgo.5.gz",
        "usr/share/man/man8/vigosrv.8.gz",
        "usr/share/man/man8/vigo-agent.8.gz",
        "usr/share/doc/vigo/copyright",
        "usr/share/doc/vigo-server/changelog.Debian.gz",
        "etc/vigo/vigo.yaml",
    ] {
        assert!(root.join(f).is_file(), "{f} not installed");
    }
    in_root(&root, "systemd-analyze verify --man=no vigosrv.service vigo-agent.service");

    // A packaged server host: the operator's commands need no flags (docs/OPERATIONS.md,
    // "Distro packages"). The CLI run by root leaves files owned by the server's user, and the
    // server (as the vigo user, as its unit runs it) reads them.
    in_root(
        &root,
        "printf 'correct horse battery\\ncorrect horse battery\\n' | vigocli secrets init >/dev/null\n\
         printf 'correct horse battery\\n' | vigocli secrets unlock >/dev/null\n\
         printf 's3cret-value' | vigocli secrets set raw app/token >/dev/null\n\
         vigocli secrets generate-certs >/dev/null\n\
         vigocli secrets list | grep -qx app/token\n\
         setpriv --reuid vigo --regid vigo --clear-groups vigosrv >/tmp/srv.log 2>&1 & srv=$!\n\
         i=0; until grep -q listening /tmp/srv.log; do i=$((i+1)); [ $i -lt 300 ] || { cat /tmp/srv.log; exit 1; }; sleep 0.1; done\n\
         vigocli envoys list >/dev/null\n\
         vigocli secrets list | grep -qx app/token\n\
         kill $srv; wait $srv || true",
    );
    let key = std::fs::metadata(root.join("srv/vigo/secrets/.master.key")).unwrap();
    assert_eq!((key.mode() & 0o777, key.uid()), (0o600, uid), "master key owned by the server's user");
    for f in ["vigo.db", "tls/ca_key", "tls/cert", "secrets/app/token", ".secrets-unlocked"] {
        let m = std::fs::metadata(root.join("srv/vigo").join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(m.uid(), uid, "{f} owned by the server's user");
    }
    std::fs::write(root.join("var/lib/vigo/identity.key"), "agent identity stand-in").unwrap();
    let server_state = snapshot(&root.join("srv/vigo"));
    let agent_state = snapshot(&root.join("var/lib/vigo"));

    // Upgrade to a second build: the state is untouched, file for file.
    in_root(&root, "dpkg -i /tmp/r2/vigo.deb /tmp/r2/vigo-server.deb");
    let out = in_root(&root, "dpkg-query -W -f '${Version}\\n' vigo vigo-server");
    assert_eq!(stdout(&out), format!("{VERSION}-2\n{VERSION}-2\n"));
    assert!(snapshot(&root.join("srv/vigo")) == server_state, "an upgrade changed /srv/vigo");
    assert!(snapshot(&root.join("var/lib/vigo")) == agent_state, "an upgrade changed /var/lib/vigo");
    let srv = std::fs::metadata(root.join("srv/vigo")).unwrap();
    assert_eq!((srv.mode() & 0o7777, srv.uid()), (0o700, uid));

    // Remove: the programs go; state, user and config stay.
    in_root(&root, "dpkg -r vigo-server vigo");
    assert!(!root.join("usr/bin/vigo").exists() && !root.join("lib/systemd/system/vigosrv.service").exists());
    assert!(snapshot(&root.join("srv/vigo")) == server_state, "remove changed /srv/vigo");
    assert!(snapshot(&root.join("var/lib/vigo")) == agent_state, "remove changed /var/lib/vigo");
    assert!(root.join("etc/vigo/vigo.yaml").exists(), "remove keeps the config file");

    // Purge: the config file goes; a vault is never deleted, and purge says where it is.
    let out = in_root(&root, "dpkg -P vigo-server vigo 2>&1");
    let said = stdout(&out);
    assert!(said.contains("kept /srv/vigo"), "purge names the kept vault: {said}");
    assert!(said.contains("kept /var/lib/vigo"), "purge names the kept agent state: {said}");
    assert!(!root.join("etc/vigo/vigo.yaml").exists(), "purge removes the config file");
    assert!(snapshot(&root.join("srv/vigo")) == server_state, "purge changed /srv/vigo");
    assert!(passwd_id(&root, "etc/passwd", "vigo").is_some(), "the system user stays");

    // Purging an installation that never held state leaves nothing behind.
    in_root(&root, "rm -rf /srv/vigo /var/lib/vigo && dpkg -i /tmp/r1/vigo.deb /tmp/r1/vigo-server.deb && dpkg -P vigo-server vigo");
    assert!(
        !root.join("srv/vigo").exists()
            && !root.join("var/lib/vigo").exists()
            && !root.join("etc/vigo").exists()
    );
}

#[test]
fn bash_completion_walks_the_command_tree() {
    let t = TempDir::new("pkg-bash");
    extract(&packages().deb("vigo"), t.path());
    let file = t.join("usr/share/bash-completion/completions/vigo");
    let complete = |words: &str| -> String {
        let script = format!(
            "source '{}'; COMP_WORDS=({words} ''); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); _vigo; echo \"${{COMPREPLY[*]}}\"",
            file.display()
        );
        stdout(&run(Command::new("bash").args(["-c", &script])))
    };
    let top = complete("vigocli");
    assert!(top.split_whitespace().any(|w| w == "secrets") && top.contains("envoys"), "{top}");
    let secrets = complete("vigocli --base-dir /x secrets");
    assert!(secrets.split_whitespace().any(|w| w == "init"), "{secrets}");
    let set = complete("vigo cli secrets set");
    assert_eq!(
        set.split_whitespace().filter(|w| !w.starts_with('-')).collect::<Vec<_>>(),
        ["raw", "password"]
    );
    let agent = complete("vigo-agent");
    assert!(agent.split_whitespace().any(|w| w == "enroll"), "{agent}");
}

/// `vigo-demo` at `version`: one file saying which version it is.
fn demo_deb(work: &Path, version: &str) -> PathBuf {
    let build = work.join(format!("demo-{version}"));
    std::fs::create_dir_all(build.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(build.join("usr/share/vigo-demo")).unwrap();
    std::fs::write(
        build.join("DEBIAN/control"),
        format!("Package: vigo-demo\nVersion: {version}\nArchitecture: all\nMaintainer: Vigo <dev@vigo.invalid>\nDescription: repository test package\n"),
    )
    .unwrap();
    std::fs::write(build.join("usr/share/vigo-demo/version"), format!("{version}\n")).unwrap();
    let deb = work.join(format!("vigo-demo_{version}_all.deb"));
    run(Command::new("dpkg-deb").args(["--root-owner-group", "--build"]).arg(&build).arg(&deb));
    deb
}

/// A flat repository holding `debs`, its Release signed inline by a key made for the test;
/// returns the armored public key.
fn signed_repo(repo: &Path, work: &Path, debs: &[PathBuf]) -> String {
    std::fs::create_dir_all(repo).unwrap();
    for deb in debs {
        std::fs::copy(deb, repo.join(deb.file_name().unwrap())).unwrap();
    }
    let packages = run(Command::new("apt-ftparchive").arg("packages").arg(".").current_dir(repo));
    std::fs::write(repo.join("Packages"), &packages.stdout).unwrap();
    let release = run(Command::new("apt-ftparchive").arg("release").arg(".").current_dir(repo));
    std::fs::write(repo.join("Release"), &release.stdout).unwrap();
    let gnupg = work.join("gnupg");
    std::fs::create_dir_all(&gnupg).unwrap();
    std::fs::set_permissions(&gnupg, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let gpg = |args: &[&str]| {
        run(Command::new("gpg")
            .env("GNUPGHOME", &gnupg)
            .args(["--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args))
    };
    gpg(&["--quick-generate-key", "Vigo repository test <repo@vigo.invalid>", "ed25519", "sign", "never"]);
    gpg(&[
        "--clearsign",
        "--output",
        repo.join("InRelease").to_str().unwrap(),
        repo.join("Release").to_str().unwrap(),
    ]);
    stdout(&gpg(&["--armor", "--export", "repo@vigo.invalid"]))
}

/// A `repository` and `package` resources run by the real agent inside a Debian root: the
/// signed local repository is written as a deb822 source with its own key, apt fetches its
/// index, `ensure: latest` installs the newest version and holds it; a pinned older version is
/// installed in its place; a repository whose key does not match is refused by apt and the
/// resource fails. A second run changes nothing.
#[test]
fn repository_and_packages_with_apt_from_a_signed_local_repository_in_a_debian_root() {
    let tar = debian_root_tarball();
    let t = TempDir::new("apt-repo");
    let root = t.join("root");
    std::fs::create_dir_all(&root).unwrap();
    run(Command::new("tar").args(["-C"]).arg(&root).args(["-xf"]).arg(&tar));
    let debs = [demo_deb(&t.join("work"), "1.0"), demo_deb(&t.join("work"), "2.0")];
    let key = signed_repo(&root.join("srv/repo"), &t.join("work"), &debs);
    std::fs::create_dir_all(root.join("usr/local/bin")).unwrap();
    common::copy_executable(&common::vigo_exe(), &root.join("usr/local/bin/vigo"));
    let indented: String = key.lines().map(|l| format!("      {l}\n")).collect();
    let config = |package: &str| {
        let tree = root.join("srv/config");
        let _ = std::fs::remove_dir_all(&tree);
        std::fs::create_dir_all(tree.join("modules")).unwrap();
        std::fs::write(tree.join("nodes.vgo"), "envoys:\n  - match: \"*\"\n    roles: [apt]\n").unwrap();
        let module = format!(
            "resources:\n  - name: local\n    type: repository\n    repo: local\n    url: file:/srv/repo\n    suites: ./\n    key: |\n{indented}  - name: demo\n    type: package\n    depends_on: [local]\n{package}"
        );
        std::fs::write(tree.join("modules/apt.vgo"), module).unwrap();
    };
    let apply = "VIGO_BASE_DIR=/var/lib/vigo /usr/local/bin/vigo agent apply /srv/config --envoy h";

    config("    package: vigo-demo\n    ensure: latest\n    hold: true\n");
    let first = stdout(&in_root(&root, apply));
    assert!(first.contains("refreshed its index (apt-get)"), "{first}");
    assert!(first.contains("install vigo-demo 2.0") && first.contains("hold vigo-demo"), "{first}");
    let source = std::fs::read_to_string(root.join("etc/apt/sources.list.d/vigo-local.sources")).unwrap();
    assert!(source.contains("Signed-By: /etc/apt/keyrings/vigo-local.asc\n"), "{source}");
    assert_eq!(std::fs::read_to_string(root.join("usr/share/vigo-demo/version")).unwrap(), "2.0\n");
    let held = stdout(&in_root(&root, "apt-mark showhold"));
    assert_eq!(held, "vigo-demo\n");
    let second = stdout(&in_root(&root, apply));
    assert!(second.contains("converged"), "a second run changes nothing: {second}");

    config("    package: vigo-demo\n    version: \"1.0\"\n    hold: false\n");
    let pinned = stdout(&in_root(&root, apply));
    assert!(
        pinned.contains("change vigo-demo 2.0 -> 1.0") && pinned.contains("unhold vigo-demo"),
        "{pinned}"
    );
    assert_eq!(std::fs::read_to_string(root.join("usr/share/vigo-demo/version")).unwrap(), "1.0\n");
    assert_eq!(stdout(&in_root(&root, "apt-mark showhold")), "");

    // Another key: apt refuses the repository's index, and the resource fails saying so.
    let other = signed_repo(&t.join("other-repo"), &t.join("other-work"), &debs[..1]);
    let swapped = std::fs::read_to_string(root.join("srv/config/modules/apt.vgo"))
        .unwrap()
        .replace(&indented, &other.lines().map(|l| format!("      {l}\n")).collect::<String>());
    std::fs::write(root.join("srv/config/modules/apt.vgo"), swapped).unwrap();
    let mut refused = Command::new("unshare");
    refused
        .args(["--net", "--mount", "--pid", "--fork"])
        .arg(format!("--mount-proc={}", root.join("proc").display()))
        .args([
            "sh",
            "-c",
            &format!("ip link set lo up && exec chroot \"$0\" /bin/sh -c '{apply}'"),
            &root.to_string_lossy(),
        ])
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    let out = refused.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("refreshing the index of vigo-local failed"), "{text}");
}
