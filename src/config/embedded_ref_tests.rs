//! `secret:<key>` is a reference only as a whole value. Written inside a command line or a path
//! it would reach the host as literal text, and were it substituted it would sit in `ps` or on
//! the filesystem: the load refuses it at its file:line and says how secrets are passed.

use super::*;

const NODES: &str = "envoys:\n  - match: \"*\"\n    roles: [m]\n";

fn errors(module: &str) -> Vec<String> {
    let t = Tree::new(NODES, &[("m", module)]);
    let mut p = crate::secrets::MemoryProvider::new();
    p.insert("vigo/db/password", "CANARY");
    match t.load().map(|tree| tree.compile("h1", &p)) {
        Err(e) | Ok(Err(e)) => t.errors(&e),
        Ok(Ok(_)) => Vec::new(),
    }
}

#[test]
fn a_ref_inside_a_command_line_is_refused_pointing_to_stdin_and_secret_file() {
    let e = errors("resources:\n  - name: db\n    type: exec\n    command: \"tool --password secret:vigo/db/password\"\n");
    assert_eq!(
        e,
        ["modules/m.vgo:4:14: exec `command` contains `secret:vigo/db/password` inside its text; only a whole value `secret:<key>` is a reference, and a secret may never go on a command line (it shows in `ps`): pass it with `stdin:`, or with `secret_file:` and `{{secret_file}}` in the command"]
    );
    for attr in ["unless", "onlyif"] {
        let e = errors(&format!("resources:\n  - {{name: a, type: exec, command: x, {attr}: \"check --pw=secret:vigo/db/password\"}}\n"));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("modules/m.vgo:2:")
                && e[0].contains(&format!("exec `{attr}` contains `secret:vigo/db/password`")),
            "{e:?}"
        );
        assert!(e[0].contains("`stdin:`") && e[0].contains("`secret_file:`"), "{e:?}");
    }
}

#[test]
fn a_ref_inside_a_path_or_name_is_refused() {
    for (rtype, attrs, attr) in [
        ("exec", "command: x, creates: \"/var/lib/secret:vigo/db/password\"", "creates"),
        ("exec", "command: x, cwd: \"/srv/secret:app\"", "cwd"),
        ("file", "target_path: \"/etc/app/secret:vigo/db/password.conf\"", "target_path"),
        ("symlink", "target_path: /l, points_to: \"x-secret:vigo/db/password\"", "points_to"),
        ("package", "package: \"pkg=secret:vigo/db/password\"", "package"),
        ("service", "service: \"svc@secret:vigo/db/password\"", "service"),
        ("user", "username: u, home: \"/home/secret:u\"", "home"),
        ("user", "username: u, comment: \"pw secret:vigo/db/password\"", "comment"),
    ] {
        let e = errors(&format!("resources:\n  - {{name: a, type: {rtype}, {attrs}}}\n"));
        assert_eq!(e.len(), 1, "{attrs}: {e:?}");
        assert!(e[0].starts_with("modules/m.vgo:2:"), "{e:?}");
        assert!(
            e[0].contains(&format!("`{attr}` contains `secret:")) && e[0].contains("exec `stdin:`"),
            "{e:?}"
        );
    }
}

/// Through a var the text is only known once rendered; it is refused then, at the attribute.
#[test]
fn a_ref_rendered_into_a_command_from_a_var_is_refused() {
    let e = errors("vars: {flags: \"--password secret:vigo/db/password\"}\nresources:\n  - {name: a, type: exec, command: \"tool {{ .Vars.flags }}\"}\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("modules/m.vgo:3:36: exec `command` contains `secret:vigo/db/password`"),
        "{e:?}"
    );
}

/// The decision in docs/CONFIG.md: `secret:` followed by a key character is refused even as part
/// of a longer word; `secret:` followed by anything else, and private text, are left alone.
#[test]
fn ordinary_commands_and_private_text_still_load() {
    assert!(errors("resources:\n  - {name: a, type: exec, command: \"tool --token mysecret:abc\"}\n")[0]
        .contains("contains `secret:abc`"));
    for ok in [
        "command: \"grep -q 'secret:' /etc/app.conf\"",
        "command: \"echo secret: none\"",
        "command: \"kubectl create secret generic app --from-file=key\"",
        "command: \"vault kv get secret/app\"",
        "command: \"printf 'secret:\\\\n'\"",
        "command: \"x\", stdin: \"password = secret:vigo/db/password is literal here\"",
    ] {
        let e = errors(&format!("resources:\n  - {{name: a, type: exec, {ok}}}\n"));
        assert!(e.is_empty(), "{ok}: {e:?}");
    }
    let module = "resources:\n  - {name: f, type: file, target_path: /etc/app.yaml, content: \"db: secret:vigo/db/password\\n\"}\n  - {name: u, type: user, username: u, password: \"secret:vigo/db/password\"}\n";
    assert!(errors(module).is_empty());
}
