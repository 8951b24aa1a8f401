//! Every rejection, with the exact position and message the operator sees.

use super::*;

const NODES: &str = "envoys:\n  - match: \"*\"\n    roles: [m]\n";

fn provider() -> MemoryProvider {
    let mut p = MemoryProvider::new();
    p.insert("app/pw", "CANARY");
    p
}

/// Errors from loading, or (if it loads) from compiling envoy `h1`, for a module `m`.
fn errs(module: &str) -> Vec<String> {
    let t = Tree::new(NODES, &[("m", module)]);
    match t.load().map(|tree| tree.compile("h1", &provider())) {
        Err(e) | Ok(Err(e)) => t.errors(&e),
        Ok(Ok(_)) => Vec::new(),
    }
}

fn one(module: &str) -> String {
    let e = errs(module);
    assert_eq!(e.len(), 1, "{e:#?}");
    e[0].clone()
}

#[test]
fn malformed_yaml() {
    let e = one("resources:\n  - name: a\n   type: file\n");
    assert!(e.starts_with("modules/m.vgo:3:"), "{e}");
    assert!(e.contains("invalid YAML"), "{e}");
}

#[test]
fn unknown_key() {
    assert_eq!(
        one("resources:\n  - name: a\n    type: package\n    package: x\n    pakage_version: 1\n"),
        "modules/m.vgo:5:5: unknown key `pakage_version` in a package resource; allowed keys: name, type, depends_on, notify, watch_secret, when, package, packages, version, ensure, hold"
    );
    let t = Tree::new("envoys: []\nenvoy: []\n", &[]);
    assert_eq!(
        t.load_errors(),
        ["nodes.vgo:2:1: unknown key `envoy` in nodes.vgo; allowed keys: defaults, envoys"]
    );
}

#[test]
fn duplicate_key() {
    assert_eq!(
        one("resources:\n  - name: a\n    type: package\n    package: x\n    package: y\n"),
        "modules/m.vgo:5:5: duplicate key `package`; a key may appear only once in a mapping"
    );
}

#[test]
fn integer_mode() {
    assert_eq!(
        one("resources:\n  - name: a\n    type: file\n    target_path: /x\n    mode: 644\n"),
        "modules/m.vgo:5:11: mode 644 is an integer; modes are strings like \"0644\" (quote it)"
    );
    // `0644` unquoted is a string under YAML 1.2 and is accepted; a bad octal is not.
    assert!(errs("resources:\n  - {name: a, type: file, target_path: /x, mode: 0644}\n").is_empty());
    assert!(one("resources:\n  - {name: a, type: file, target_path: /x, mode: \"0964\"}\n")
        .contains("modes are strings like"));
}

#[test]
fn yaml11_booleans_where_a_string_is_expected() {
    assert_eq!(
        one("resources:\n  - name: a\n    type: user\n    username: x\n    shell: no\n"),
        "modules/m.vgo:5:12: `no` is a boolean in YAML 1.1 but a string here; quote it (\"no\") if you mean the word, or write true/false"
    );
    assert!(one("resources:\n  - {name: a, type: service, service: x, enable: yes}\n")
        .contains("`yes` is a boolean in YAML 1.1"));
    assert!(one("vars:\n  debug: On\n").contains("`On` is a boolean"));
    assert!(errs("vars:\n  answer: \"yes\"\n  other: 'off'\n").is_empty());
}

#[test]
fn wrong_types() {
    assert_eq!(
        one("resources:\n  - {name: a, type: package, package: x, depends_on: b}\n"),
        "modules/m.vgo:2:54: depends_on must be a list like [a, b], not a string"
    );
    assert!(one("resources:\n  - {name: a, type: file, target_path: [x]}\n")
        .contains("target_path must be a string, not a list"));
    // Vars may be lists and mappings now; a null or a float still is not a var.
    assert!(errs("vars:\n  v: [1, {a: b}]\n").is_empty());
    assert!(
        one("vars:\n  v: [1, ~]\n").contains("var `v` must be a string, number, true/false, list or mapping")
    );
}

#[test]
fn oversize_nul_and_utf8_files() {
    let big = format!("vars:\n  x: \"{}\"\n", "a".repeat(yaml::MAX_FILE_BYTES));
    assert_eq!(
        one(&big),
        "modules/m.vgo: file is larger than 1048576 bytes, the limit for a .vgo file; split it into modules"
    );
    assert_eq!(one("vars:\n  x: \"a\0b\"\n"), "modules/m.vgo:2:8: NUL byte; .vgo files are text: remove it");
    assert_eq!(
        one("vars:\n  x: \"a\\0b\"\n"),
        "modules/m.vgo:2:6: var `x`: contains a NUL character; remove it"
    );
    let t = Tree::new(NODES, &[]);
    std::fs::write(t.0.join("modules/m.vgo"), b"vars:\n  x: \"\xc3\x28\"\n").unwrap();
    assert_eq!(t.load_errors(), ["modules/m.vgo:2:7: invalid UTF-8; save the file as UTF-8"]);
}

#[test]
fn alias_bomb_and_deep_nesting_files() {
    let mut bomb = String::from(
        "vars:\n  a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for i in 1..10 {
        let p = i - 1;
        bomb.push_str(&format!("  a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"));
    }
    let start = std::time::Instant::now();
    assert!(one(&bomb).contains("alias"));
    let nest = format!("vars:\n  x: {}{}\n", "[".repeat(5000), "]".repeat(5000));
    assert!(one(&nest).contains("nesting is deeper than 128 levels"));
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn unknown_type_and_missing_required() {
    assert_eq!(
        one("resources:\n  - name: a\n    type: crontab\n"),
        "modules/m.vgo:3:11: unknown resource type `crontab`; use one of file, directory, symlink, exec, user, group, package, service, file_line, blockinfile, ini, json_file, replace, cron, sysctl, host, authorized_key, systemd_unit, mount, repository, custom"
    );
    assert_eq!(
        one("resources:\n  - name: a\n    type: symlink\n    target_path: /x\n"),
        "modules/m.vgo:2:5: symlink resource `a` is missing `points_to`"
    );
    assert!(one("resources:\n  - type: package\n    package: x\n").contains("resource has no `name:`"));
}

#[test]
fn duplicate_names_in_one_bundle() {
    assert_eq!(
        one("resources:\n  - {name: a, type: package, package: x}\n  - {name: a, type: package, package: y}\n"),
        "modules/m.vgo:3:12: duplicate resource name `a` (also resource #1 in this file); names must be unique"
    );
    let nodes = "envoys:\n  - {match: \"*\", roles: [m]}\n  - {match: \"h*\", roles: [n]}\n";
    let t = Tree::new(
        nodes,
        &[
            ("m", "resources:\n  - {name: a, type: package, package: x}\n"),
            ("n", "resources:\n  - {name: a, type: package, package: y}\n"),
        ],
    );
    assert_eq!(
        t.compile_errors("h1", &provider()),
        ["modules/n.vgo:2:12: resource name `a` is also used by role `m`; names must be unique in an envoy's bundle"]
    );
    assert!(t.load().unwrap().compile("x1", &provider()).is_ok());
}

#[test]
fn a_command_the_agent_could_not_split_is_rejected() {
    let e = one("resources:\n  - name: a\n    type: exec\n    command: 'touch \"/x'\n");
    assert!(e.starts_with("modules/m.vgo:4:14: exec `command`: ") && e.contains("unclosed quote"), "{e}");
}

#[test]
fn two_resources_may_not_manage_one_thing() {
    let t = Tree::new(
        "envoys:\n  - match: \"*\"\n    roles: [m, n]\n",
        &[
            ("m", "resources:\n  - {name: motd, type: file, target_path: /etc/motd, content: a}\n  - {name: bash, type: package, package: bash}\n  - {name: ssh, type: service, service: ssh}\n"),
            ("n", "resources:\n  - {name: motd2, type: file, target_path: //etc/motd/, content: b}\n  - {name: nobash, type: package, package: bash, ensure: absent}\n  - {name: ssh2, type: service, service: ssh.service}\n  - {name: again, type: exec, command: \"true\"}\n  - {name: again2, type: exec, command: \"true\"}\n"),
        ],
    );
    assert_eq!(
        t.compile_errors("h1", &provider()),
        [
            "modules/n.vgo:2:12: resource `motd2` manages the path /etc/motd, which resource `motd` already manages; keep one of them",
            "modules/n.vgo:3:12: resource `nobash` manages package `bash`, which resource `bash` already manages; keep one of them",
            "modules/n.vgo:4:12: resource `ssh2` manages service `ssh`, which resource `ssh` already manages; keep one of them",
        ]
    );
}

#[test]
fn references_to_missing_resources_and_cycles() {
    assert_eq!(
        one("resources:\n  - {name: a, type: package, package: x, notify: [b]}\n"),
        "modules/m.vgo:2:51: notify names `b`, which is not a resource in this envoy's bundle"
    );
    let cyc = "resources:\n  - {name: a, type: package, package: x, depends_on: [b]}\n  - {name: b, type: package, package: y, depends_on: [c]}\n  - {name: c, type: package, package: z, depends_on: [a]}\n";
    let e = one(cyc);
    assert!(e.contains("dependency cycle: a -> b -> c -> a"), "{e}");
    let notify = "resources:\n  - {name: x, type: package, package: x, notify: [y]}\n  - {name: y, type: package, package: y, notify: [x]}\n";
    assert!(one(notify).contains("dependency cycle: x -> y -> x"));
    let two = "resources:\n  - {name: a, type: package, package: x, depends_on: [b]}\n  - {name: b, type: package, package: y, depends_on: [a]}\n";
    assert_eq!(one(two), "modules/m.vgo:2:12: dependency cycle: a -> b -> a (`->` means depends on / is notified by); remove one of these links");
    assert!(one("resources:\n  - {name: a, type: package, package: x, depends_on: [a]}\n")
        .contains("cycle: a -> a"));
}

#[test]
fn watch_secret_must_name_a_used_key() {
    assert_eq!(
        one("resources:\n  - name: a\n    type: file\n    target_path: /x\n    content: \"static\"\n    watch_secret: [app/pw]\n"),
        "modules/m.vgo:6:20: watch_secret names `app/pw`, which this resource does not use; reference secret:app/pw in it or remove it from watch_secret"
    );
}

#[test]
fn secrets_in_exec_commands_are_rejected() {
    assert_eq!(
        one("resources:\n  - {name: a, type: exec, command: \"secret:app/pw\"}\n"),
        "modules/m.vgo:2:36: exec `command` is a secret; a command line shows in `ps`: use stdin or secret_file to pass secrets"
    );
    assert_eq!(
        one("vars: {pw: \"secret:app/pw\"}\nresources:\n  - {name: a, type: exec, command: \"login --pw {{ .Vars.pw }}\"}\n"),
        "modules/m.vgo:3:36: exec `command` contains secret:app/pw; a command line shows in `ps`: use stdin or secret_file to pass secrets"
    );
    assert!(one("vars: {pw: \"secret:app/pw\"}\nresources:\n  - {name: a, type: exec, command: x, unless: \"test {{ .Vars.pw }}\"}\n").contains("exec `unless` contains"));
    assert_eq!(
        one("resources:\n  - {name: a, type: exec, command: \"run {{secret_file}}\"}\n"),
        "modules/m.vgo:2:36: {{secret_file}} is used but this exec has no `secret_file:`; add one"
    );
    assert!(one("resources:\n  - {name: a, type: file, target_path: \"{{secret_file}}\"}\n")
        .contains("only works in an exec `command`"));
}

/// What the agent would refuse on every envoy is refused at validate time instead.
#[test]
fn values_the_agent_would_refuse_are_rejected_at_load() {
    let cases = [
        ("file, target_path: relative.txt", "`target_path` \"relative.txt\" must be an absolute path"),
        ("file, target_path: /srv/../etc/x", "must not contain '..'"),
        ("file, target_path: \"\"", "`target_path` is empty"),
        ("exec, command: \"\"", "`command` is empty"),
        ("exec, command: x, timeout: abc", "timeout \"abc\" must be a whole number of seconds from 1"),
        ("exec, command: x, timeout: 0", "timeout \"0\" must be a whole number of seconds from 1"),
        ("exec, command: x, timeout: -1", "timeout \"-1\" must be a whole number of seconds from 1"),
        ("exec, command: x, timeout: 9223372036854775807", "to 86400 (a day)"),
        ("exec, command: x, timeout: 86401", "to 86400 (a day)"),
        ("exec, command: x, cwd: tmp", "`cwd` \"tmp\" must be an absolute path"),
        ("user, username: \"bad user:name\"", "\"bad user:name\" in `username` is not a valid account name"),
        ("user, username: u, groups: [wheel, \"-x\"]", "\"-x\" in `groups` is not a valid account name"),
        ("user, username: u, uid: 99999999999", "uid \"99999999999\" must be a whole number"),
        ("user, username: u, home: home/u", "`home` \"home/u\" must be an absolute path"),
    ];
    for (resource, want) in cases {
        let e = one(&format!("resources:\n  - {{name: a, type: {resource}}}\n"));
        assert!(e.contains(want), "{resource}: {e}");
    }
    // Templated values are checked once rendered.
    let e =
        one("vars: {dir: rel}\nresources:\n  - {name: a, type: file, target_path: \"{{ .Vars.dir }}/f\"}\n");
    assert!(e.contains("\"rel/f\" must be an absolute path"), "{e}");
    // A relative link target is fine: symlinks point relative to where they are.
    assert!(errs("resources:\n  - {name: a, type: symlink, target_path: /l, points_to: ../x}\n").is_empty());
}

/// A secret in a path, link target, account field, package or service name would be readable by
/// anyone on the host (`ls`, `/etc/passwd`) and stay there after a rotation.
#[test]
fn secrets_only_reach_attributes_that_keep_them_private() {
    let allowed = "Secrets may go only in file `content`, exec `stdin`, exec `secret_file`, user `password`, custom `private_params`";
    assert_eq!(
        one("vars: {pw: \"secret:app/pw\"}\nresources:\n  - {name: a, type: file, target_path: \"/etc/{{ .Vars.pw }}\"}\n"),
        format!("modules/m.vgo:3:40: file `target_path` contains secret:app/pw; it would be visible on the host and outlive a rotation there. {allowed}")
    );
    for (rtype, attrs) in [
        ("symlink", "target_path: /l, points_to: \"secret:app/pw\""),
        ("user", "username: u, comment: \"secret:app/pw\""),
        ("user", "username: u, groups: [wheel, \"secret:app/pw\"]"),
        ("package", "package: \"secret:app/pw\""),
        ("exec", "command: x, cwd: \"secret:app/pw\""),
    ] {
        let e = one(&format!("resources:\n  - {{name: a, type: {rtype}, {attrs}}}\n"));
        assert!(
            e.contains("contains secret:app/pw; it would be visible on the host"),
            "{rtype} {attrs}: {e}"
        );
    }
    for (rtype, attrs) in [
        ("file", "target_path: /f, content: \"secret:app/pw\""),
        ("exec", "command: x, stdin: \"secret:app/pw\""),
        ("exec", "command: \"x {{secret_file}}\", secret_file: \"secret:app/pw\""),
        ("user", "username: u, password: \"secret:app/pw\""),
    ] {
        assert!(
            errs(&format!("resources:\n  - {{name: a, type: {rtype}, {attrs}}}\n")).is_empty(),
            "{rtype} {attrs}"
        );
    }
}

#[test]
fn secrets_in_names_and_when() {
    assert!(one("resources:\n  - {name: \"secret:app/pw\", type: package, package: x}\n")
        .contains("a resource name cannot be a secret"));
    assert!(one(
        "resources:\n  - {name: \"__VIGO_SECRET__app/pw__END_VIGO_SECRET__\", type: package, package: x}\n"
    )
    .contains("write secret:<key> instead"));
    assert_eq!(
        one("resources:\n  - {name: a, type: package, package: x, when: \"secret:app/pw\"}\n"),
        "modules/m.vgo:2:48: a secret may appear in `when:` only as a comparison operand; use `changed`, `always`, or a comparison `A == B` / `A != B`"
    );
    assert!(one("resources:\n  - {name: a, type: package, package: x, when: \"sometimes\"}\n")
        .contains("not an allowed form"));
    // Allowed: a secret as one operand of a comparison, directly or through a var.
    let t = Tree::new(NODES, &[("m", "vars: {pw: \"secret:app/pw\", env: prod}\nresources:\n  - {name: a, type: package, package: x, when: \"secret:app/pw != {{ .Vars.env }}\"}\n  - {name: b, type: package, package: y, when: \"{{ .Vars.pw }} == x\"}\n")]);
    let b = t.load().unwrap().compile("h1", &provider()).unwrap();
    let m = marker("app/pw").unwrap();
    assert_eq!(b.resources[0].when.as_deref(), Some(format!("{m} != prod").as_str()));
    assert_eq!(b.resources[1].when.as_deref(), Some(format!("{m} == x").as_str()));
    assert_eq!(b.entitled_keys().unwrap(), keys(&["app/pw"]));
}

#[test]
fn secret_key_grammar_and_unknown_vars() {
    assert_eq!(
        one("vars:\n  x: \"secret:../etc/shadow\"\n"),
        "modules/m.vgo:2:6: secret:../etc/shadow is not a valid secret key: '.' and '..' segments are not allowed (keys look like app/db/password)"
    );
    assert_eq!(
        one("resources:\n  - name: a\n    type: file\n    target_path: /x\n    content: |\n      v={{ .Vars.nope }}\n"),
        "modules/m.vgo:5:14: unknown var `nope`; define it under `vars:` in nodes.vgo or in the module"
    );
    let t = Tree::new("envoys:\n  - match: h1\n    roles: [nomod]\n", &[]);
    assert_eq!(t.load_errors(), ["nodes.vgo:3:13: role `nomod` has no module; create modules/nomod.vgo"]);
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let t = Tree::new(
        "envoys:\n  - match: \"[x\"\n  - {match: y, colour: blue}\n",
        &[("m", "resources:\n  - {name: a, type: crontab}\n"), ("n", "vars: {a: [1]}\n  bad\n")],
    );
    let e = t.load_errors();
    assert_eq!(e.len(), 4, "{e:#?}");
    assert!(e[0].starts_with("modules/m.vgo:2:21: unknown resource type"), "{e:#?}");
    assert!(e[1].starts_with("modules/n.vgo:2:3: invalid YAML"), "{e:#?}");
    assert!(e[2].starts_with("nodes.vgo:2:12: unclosed `[`"), "{e:#?}");
    assert!(e[3].starts_with("nodes.vgo:3:16: unknown key `colour`"), "{e:#?}");
}

/// Pseudo-random mutations of valid files: the loader must return, not panic, and stay fast.
#[test]
fn mutated_fixtures_never_panic() {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let alphabet: &[u8] = b" \n\t-:[]{}&*!|>'\"#%@`,?0123456789abcyesnoe.\\\x00\xff";
    let start = std::time::Instant::now();
    let p = super::tests::seed_provider();
    let t = Tree::new(SEED_NODES, &[("database", SEED_DATABASE)]);
    for round in 0..3000 {
        let base = if round % 2 == 0 { SEED_DATABASE } else { SEED_NODES };
        let mut bytes = base.as_bytes().to_vec();
        for _ in 0..(1 + next() % 4) {
            let at = (next() as usize) % (bytes.len() + 1);
            match next() % 3 {
                0 => bytes.insert(at, alphabet[(next() as usize) % alphabet.len()]),
                1 if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => {
                    let len = (next() as usize % 16).min(bytes.len() - at.min(bytes.len()));
                    let chunk = bytes[at.min(bytes.len() - len)..][..len].to_vec();
                    bytes.splice(at..at, chunk);
                }
            }
        }
        let file = if round % 2 == 0 { t.0.join("modules/database.vgo") } else { t.0.join("nodes.vgo") };
        std::fs::write(&file, &bytes).unwrap();
        if let Ok(tree) = t.load() {
            let _ = tree.compile("db1.example.com", &p);
            let _ = tree.validate_all(&p);
        }
        std::fs::write(&file, base).unwrap();
    }
    assert!(start.elapsed() < std::time::Duration::from_secs(60), "{:?}", start.elapsed());
}

#[test]
fn nodes_vgo_that_is_not_a_plain_file_is_named_as_such() {
    let t = Tree::new("envoys: []\n", &[]);
    std::fs::remove_file(t.0.join("nodes.vgo")).unwrap();
    assert_eq!(t.load_errors(), ["nodes.vgo: missing; a config tree needs nodes.vgo at its top"]);
    std::fs::create_dir(t.0.join("nodes.vgo")).unwrap();
    assert_eq!(
        t.load_errors(),
        ["nodes.vgo: is a directory, not a regular file; nodes.vgo must be a plain file"]
    );
    std::fs::remove_dir(t.0.join("nodes.vgo")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", t.0.join("nodes.vgo")).unwrap();
    assert_eq!(
        t.load_errors(),
        ["nodes.vgo: is a symbolic link; Vigo reads only plain files inside the config tree, never what a link points to: replace nodes.vgo with a copy of the file"]
    );
}

/// A resource written one field per line: `type` first, then `fields` split at ", ".
fn block_resource(rtype: &str, fields: &str) -> String {
    let mut out = format!("resources:\n  - name: a\n    type: {rtype}\n");
    for f in fields.split(", ") {
        out.push_str(&format!("    {f}\n"));
    }
    out
}

/// Edits to part of a file, and a file's `source`/`validate`, that the agent would refuse on
/// every envoy are refused here, at the line that holds the mistake (the resource's name line
/// for a rule between its fields).
#[test]
fn broken_file_edits_are_rejected_at_load() {
    let cases = [
        (
            "file_line",
            "target_path: /f, line: x, match: \"(open\"",
            6,
            "`match` \"(open\" is not a valid regular expression",
        ),
        ("replace", "target_path: /f, regexp: \"[\"", 5, "`regexp` \"[\" is not a valid regular expression"),
        ("replace", "target_path: /f, regexp: foo, replace: foobar", 2, "this replace never converges"),
        ("json_file", "target_path: /f, path: \"a..b\", value: \"1\"", 2, "is not a path of keys"),
        ("json_file", "target_path: /f, path: a", 2, "json_file needs `value`"),
        ("ini", "target_path: /f, key: \"a=b\", value: \"1\"", 2, "is not an ini key"),
        ("blockinfile", "target_path: /f, marker: \"# managed\"", 2, "must contain {mark}"),
        ("file_line", "target_path: /f", 2, "file_line needs `line`"),
        ("file_line", "target_path: /f, ensure: gone, line: x", 5, "ensure must be one of present, absent"),
        ("file", "target_path: /f, content: x, source: /g", 2, "`content` or `source`, not both"),
        ("file", "target_path: /f, source: g", 5, "`source` \"g\" must be an absolute path"),
        ("file", "target_path: /f, content: x, validate: \"nginx -t\"", 6, "must contain %"),
        ("file", "target_path: /f, validate: \"sh -n %\"", 2, "give the file `content` or `source`"),
        (
            "file",
            "target_path: /f, content: \"secret:app/pw\", backup: true",
            2,
            "a kept copy would be plaintext",
        ),
        ("cron", "job: nightly, schedule: \"61 * * * *\", command: /bin/true", 2, "outside 0-59"),
        (
            "cron",
            "job: night.ly, schedule: \"@daily\", command: /bin/true",
            2,
            "cron skips any other file name",
        ),
        ("cron", "job: nightly, schedule: \"@daily\", command: \"date +%s\"", 2, "bare %"),
        ("cron", "job: nightly, command: /bin/true", 2, "needs `schedule`"),
        ("sysctl", "key: \"net/../../etc\", value: 1", 2, "not a kernel parameter name"),
        ("host", "hostname: db, ip: \"10.0.0.256\"", 2, "not an IPv4 or IPv6 address"),
        ("authorized_key", "user: dan, key: \"ssh-ed25519 AAAAnotakey\"", 2, "not an OpenSSH public key"),
        ("user", "username: dan, authorized_keys: [\"ssh-rsa nope\"]", 2, "not an OpenSSH public key"),
        ("exec", "command: x, environment: [\"1BAD=x\"]", 5, "must be NAME=value"),
        ("exec", "command: x, environment: [NOVALUE]", 5, "must be NAME=value"),
        ("exec", "command: x, returns: [\"256\"]", 5, "not an exit code"),
        ("exec", "command: x, user: \"bad user\"", 5, "not a valid account name"),
        ("systemd_unit", "unit: app", 2, "not a unit file name"),
        ("systemd_unit", "unit: app.service", 2, "needs `content`"),
        ("service", "service: app, ensure: reload", 5, "must be one of running, stopped, reloaded"),
        ("custom", "executor: ../x", 4, "must be 1-64 of letters"),
        ("mount", "path: relative, device: tmpfs, fstype: tmpfs", 2, "must be an absolute path"),
        ("mount", "path: /mnt, fstype: tmpfs", 2, "a mount needs `device`"),
        ("mount", "path: /mnt, device: tmpfs, fstype: \"tmp fs\"", 2, "not a filesystem type"),
        (
            "mount",
            "path: /mnt, device: tmpfs, fstype: tmpfs, ensure: up",
            7,
            "must be one of mounted, unmounted, present, absent",
        ),
        ("repository", "repo: local, url: \"ftp://x\"", 2, "must be an http(s) or file: URL"),
        ("repository", "repo: local, url: \"https://x\", key: nokey", 2, "ASCII-armored public key"),
        ("package", "package: a, packages: [b]", 2, "exactly one of them"),
        ("package", "packages: [a, b], version: \"1.0\"", 2, "`version` pins one package"),
        ("custom", "executor: x, params: {\"bad key\": 1}", 5, "params name `bad key`"),
        ("custom", "executor: x, params: [a]", 5, "params must be a mapping"),
    ];
    for (rtype, fields, line, want) in cases {
        let e = one(&block_resource(rtype, fields));
        assert!(e.starts_with(&format!("modules/m.vgo:{line}:")), "{rtype} {fields}: {e}");
        assert!(e.contains(want), "{rtype} {fields}: {e}");
    }
    // Secrets stay out of what is written in plain sight or run.
    let in_plain_sight = "contains secret:app/pw; it would be visible on the host";
    let on_a_command_line = "a command line shows in `ps`";
    for (rtype, fields, want) in [
        ("file_line", "target_path: /f, line: \"secret:app/pw\"", in_plain_sight),
        ("ini", "target_path: /f, key: k, value: \"secret:app/pw\"", in_plain_sight),
        ("blockinfile", "target_path: /f, block: \"secret:app/pw\"", in_plain_sight),
        ("json_file", "target_path: /f, path: a, value: \"secret:app/pw\"", in_plain_sight),
        ("file", "target_path: /f, content: x, validate: \"secret:app/pw\"", on_a_command_line),
        ("cron", "job: j, schedule: \"@daily\", command: \"secret:app/pw\"", on_a_command_line),
        ("sysctl", "key: a.b, value: \"secret:app/pw\"", in_plain_sight),
        (
            "exec",
            "command: x, environment: [\"PW=secret:app/pw\"]",
            "contains `secret:app/pw` inside its text",
        ),
        ("systemd_unit", "unit: a.service, content: \"secret:app/pw\"", in_plain_sight),
        ("custom", "executor: x, params: {token: \"secret:app/pw\"}", in_plain_sight),
    ] {
        let e = one(&block_resource(rtype, fields));
        assert!(e.contains(want), "{rtype} {fields}: {e}");
    }
    let e = one(
        "resources:\n  - {name: whole, type: file, target_path: /etc/f, content: x}\n  - {name: part, type: file_line, target_path: //etc/f, line: y}\n",
    );
    assert!(e.starts_with("modules/m.vgo:3:") && e.contains("would undo each other"), "{e}");
    assert!(errs("resources:\n  - {name: perms, type: file, target_path: /etc/f, mode: \"0640\"}\n  - {name: part, type: file_line, target_path: /etc/f, line: y}\n").is_empty());
    let fine = [
        ("file_line", "target_path: /f, line: \"PermitRootLogin no\", match: \"^#?PermitRootLogin\""),
        ("replace", "target_path: /f, regexp: \"^Port .*$\", replace: \"Port 2222\""),
        ("ini", "target_path: /f, section: s, key: port, value: 8080"),
        ("json_file", "target_path: /f, path: /a/b, value: \"[1]\""),
        ("blockinfile", "target_path: /f, block: \"a\\nb\""),
        ("file", "target_path: /f, source: /etc/hosts, validate: \"sh -n %\""),
        ("cron", "job: nightly, schedule: \"15,45 8-18/2 * jan-mar mon-fri\", command: \"date +\\\\%s\""),
        ("sysctl", "key: net.ipv4.ip_forward, value: 1"),
        ("host", "hostname: db.internal, ip: \"fd00::5\", aliases: [db]"),
        ("custom", "executor: greeting, params: {path: /etc/x}, private_params: {token: \"secret:app/pw\"}, timeout: 30"),
        ("mount", "path: /srv/data, device: UUID=abc, fstype: ext4, options: noatime, pass: 2, ensure: present"),
        ("package", "packages: [nginx, curl], ensure: latest, hold: true"),
        ("repository", "repo: internal, url: \"https://apt.example.com/debian\", suites: bookworm, components: [main]"),
    ];
    for (rtype, fields) in fine {
        assert!(
            errs(&block_resource(rtype, fields)).is_empty(),
            "{rtype} {fields}: {:?}",
            errs(&block_resource(rtype, fields))
        );
    }
}
