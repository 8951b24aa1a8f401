//! The one binary picks its role from its file name or its first argument.

mod common;

use common::*;
use std::process::Command;

#[test]
fn roles_by_symlink_name() {
    for (name, marker) in [("vigosrv", "vigosrv"), ("vigocli", "secrets"), ("vigo-agent", "enroll")] {
        let out = Command::new(role(name)).arg("--help").output().unwrap();
        assert_code(&out, 0);
        let t = text(&out);
        assert!(t.contains(marker), "{name} --help did not mention {marker}:\n{t}");
    }
}

#[test]
fn roles_by_hard_link_name() {
    let dir = TempDir::new("hardlink");
    let link = dir.join("vigocli");
    if std::fs::hard_link(vigo_exe(), &link).is_err() {
        copy_executable(&vigo_exe(), &link);
    }
    let out = Command::new(&link).arg("--help").output().unwrap();
    assert_code(&out, 0);
    assert!(text(&out).contains("secrets"));
}

#[test]
fn roles_by_first_argument() {
    for (role_arg, marker) in [("server", "--api-listen"), ("cli", "audit"), ("agent", "apply")] {
        let out = Command::new(vigo_exe()).args([role_arg, "--help"]).output().unwrap();
        assert_code(&out, 0);
        assert!(text(&out).contains(marker), "vigo {role_arg} --help:\n{}", text(&out));
    }
}

#[test]
fn unknown_name_or_role_prints_roles_and_exits_2() {
    let dir = TempDir::new("badname");
    std::os::unix::fs::symlink(vigo_exe(), dir.join("vigo-nonsense")).unwrap();
    let out = Command::new(dir.join("vigo-nonsense")).output().unwrap();
    assert_code(&out, 2);
    assert!(text(&out).contains("server") && text(&out).contains("agent"));
    let out = Command::new(vigo_exe()).arg("frobnicate").output().unwrap();
    assert_code(&out, 2);
    assert!(text(&out).contains("unknown role \"frobnicate\""));
    let out = Command::new(vigo_exe()).output().unwrap();
    assert_code(&out, 2);
}

#[test]
fn version_and_usage_errors() {
    let out = Command::new(vigo_exe()).arg("--version").output().unwrap();
    assert_code(&out, 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("vigo {}", env!("CARGO_PKG_VERSION")));
    let out = Command::new(role("vigocli")).args(["secrets", "no-such-verb"]).output().unwrap();
    assert_code(&out, 2);
    let out =
        Command::new(role("vigocli")).args(["--log-format", "xml", "audit", "verify"]).output().unwrap();
    assert_code(&out, 2);
}

#[test]
fn help_works_for_every_verb() {
    let verbs: &[&[&str]] = &[
        &["secrets"],
        &["secrets", "init"],
        &["secrets", "generate-certs"],
        &["secrets", "unlock"],
        &["secrets", "lock"],
        &["secrets", "rotate"],
        &["secrets", "reset"],
        &["secrets", "set", "raw"],
        &["secrets", "set", "password"],
        &["secrets", "reveal"],
        &["secrets", "delete"],
        &["secrets", "list"],
        &["audit", "verify"],
        &["audit", "tail"],
    ];
    for v in verbs {
        let mut args = v.to_vec();
        args.push("--help");
        let out = Command::new(role("vigocli")).args(&args).output().unwrap();
        assert_code(&out, 0);
        assert!(text(&out).contains("Usage:"), "vigocli {v:?} --help:\n{}", text(&out));
    }
}

#[test]
fn binary_is_statically_linked() {
    let out = Command::new("ldd").arg(vigo_exe()).output().expect("ldd (libc-bin) must be installed");
    let t = text(&out);
    assert!(
        t.contains("not a dynamic executable") || t.contains("statically linked"),
        "vigo is dynamically linked:\n{t}"
    );
}

/// Output into a pipe nobody reads (`vigocli … | head` after head exits) ends the process quietly
/// with 141, as SIGPIPE ends C tools, instead of a Rust panic message.
#[test]
fn a_closed_stdout_pipe_ends_quietly() {
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader); // every write now fails with EPIPE
    let out = Command::new(vigo_exe()).arg("--help").stdout(writer).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// With `--log-format json` every stderr line is JSON, the final error included.
#[test]
fn json_logs_end_with_a_json_error_line() {
    let base = TempDir::new("json-error");
    let out = run_in(base.path(), "vigocli", &["--log-format", "json", "audit", "verify"], "");
    assert_code(&out, 1);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!stderr.trim().is_empty());
    for line in stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert_eq!(v["level"], "ERROR", "{line}");
        assert_eq!(v["exit_code"], 1, "{line}");
        assert!(v["message"].as_str().unwrap().contains("no database at"), "{line}");
    }
}

/// A value typed on the command line by mistake is refused without being repeated (it may be
/// the secret itself); a mistyped flag is still shown.
#[test]
fn a_stray_value_on_the_command_line_is_not_echoed() {
    let canary = "Hunter2-stray-canary";
    let out =
        Command::new(role("vigocli")).args(["secrets", "set", "raw", "app/x", canary]).output().unwrap();
    assert_code(&out, 2);
    assert!(!text(&out).contains(canary), "{}", text(&out));
    assert!(text(&out).contains("one value too many"), "{}", text(&out));
    let out = Command::new(role("vigocli")).args(["secrets", "list", "--frce"]).output().unwrap();
    assert_code(&out, 2);
    assert!(text(&out).contains("unknown option --frce"), "{}", text(&out));
}
