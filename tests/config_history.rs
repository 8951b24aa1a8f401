//! Config history end to end: every publish kept with who, when and why; diff between
//! revisions and against the directory (refs stay refs); rollback publishing an old tree again
//! (the directory rewritten, a refused rollback leaving it as it was); a freeze refusing
//! publishes unless forced, all audited; and trace explaining an envoy's bundle.

mod common;

use common::fleet::Fleet;
use common::*;

const NODES: &str = "defaults:\n  vars:\n    greeting: hello\nenvoys:\n  - match: \"web*\"\n    roles: [web]\n    vars:\n      token: \"secret:app/token\"\n";

fn module(text: &str) -> String {
    format!("resources:\n  - name: motd\n    type: file\n    target_path: /etc/motd\n    content: \"{text} {{{{ .Vars.greeting }}}}\\n\"\n")
}

fn json(f: &Fleet, args: &[&str]) -> serde_json::Value {
    let out = f.cli(args, "");
    assert_code(&out, 0);
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn history_diff_rollback_freeze_and_trace() {
    let mut f = Fleet::new("history");
    f.set_secret("app/token", "HISTORY-CANARY");
    f.write_config(&[("nodes.vgo", NODES), ("modules/web.vgo", &module("one"))]);
    f.start_server();
    f.enroll("web1");

    // The tree read at start is revision 1; two publishes follow.
    f.write_config(&[("modules/web.vgo", &module("two"))]);
    let out = f.cli(&["config", "publish", "-m", "second motd"], "");
    assert_code(&out, 0);
    assert!(text(&out).contains("revision 2"), "{}", text(&out));
    f.write_config(&[("modules/web.vgo", &module("three"))]);
    assert_code(&f.cli(&["config", "publish"], ""), 0);
    let h = json(&f, &["config", "history", "-o", "json"]);
    let revs = h["revisions"].as_array().unwrap();
    assert_eq!(revs.iter().map(|r| r["rev"].as_i64().unwrap()).collect::<Vec<_>>(), [3, 2, 1]);
    assert_eq!(revs[1]["message"], "second motd");
    assert_eq!(revs[0]["serving"], true);
    assert_eq!(revs[2]["published_by"], "server");

    // Diffs: between revisions, and the directory against the newest.
    let d = f.cli(&["config", "diff", "1", "3"], "");
    assert_code(&d, 0);
    assert!(
        text(&d).contains("--- rev 1/modules/web.vgo") && text(&d).contains("+++ rev 3/modules/web.vgo"),
        "{}",
        text(&d)
    );
    assert!(
        text(&d).contains("-    content: \"one {{ .Vars.greeting }}\\n\"")
            && text(&d).contains("+    content: \"three"),
        "{}",
        text(&d)
    );
    let none = f.cli(&["config", "diff"], "");
    assert_code(&none, 0);
    assert!(text(&none).contains("no differences"), "{}", text(&none));
    f.write_config(&[("modules/extra.vgo", "resources: []\n")]);
    let added = f.cli(&["config", "diff"], "");
    assert!(
        text(&added).contains("--- /dev/null") && text(&added).contains("modules/extra.vgo"),
        "{}",
        text(&added)
    );
    std::fs::remove_file(f.base().join("config/modules/extra.vgo")).unwrap();
    let shown = json(&f, &["config", "trace", "web1", "-o", "json"]);
    assert_eq!(shown["entries"][0]["text"], "web*", "{shown}");
    let token = shown["vars"].as_array().unwrap().iter().find(|v| v["name"] == "token").unwrap().clone();
    assert_eq!(token["value"], "secret:app/token", "refs stay refs: {shown}");
    let greeting =
        shown["vars"].as_array().unwrap().iter().find(|v| v["name"] == "greeting").unwrap().clone();
    assert!(greeting["at"].as_str().unwrap().starts_with("nodes.vgo:3:"), "{shown}");
    let traced = f.cli(&["config", "trace", "web1"], "");
    assert!(
        text(&traced).contains("match web*") && text(&traced).contains("modules/web.vgo, 1 resources"),
        "{}",
        text(&traced)
    );

    // Roll back to revision 2: a new revision, the directory holds that tree, the agent gets it.
    let out = f.cli(&["config", "rollback", "2"], "");
    assert_code(&out, 0);
    assert!(text(&out).contains("published as revision 4"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(f.base().join("config/modules/web.vgo")).unwrap(), module("two"));
    assert_code(&f.run_once("web1"), 0);
    assert_eq!(std::fs::read_to_string(f.root("web1").join("etc/motd")).unwrap(), "two hello\n");
    let h = json(&f, &["config", "history", "-o", "json"]);
    assert_eq!(h["revisions"][0]["rollback_of"], 2);
    assert!(f.audit_json().contains("config.rolled_back"));

    // A rollback to a tree that no longer validates (its secret is gone) is refused, and the
    // directory stays as it was.
    f.write_config(&[(
        "modules/web.vgo",
        &format!("{}vars:\n  gone: \"secret:app/gone\"\n", module("five")),
    )]);
    f.set_secret("app/gone", "x");
    assert_code(&f.cli(&["config", "publish"], ""), 0);
    assert_code(&f.cli(&["secrets", "delete", "app/gone", "--force"], ""), 0);
    let now = std::fs::read_to_string(f.base().join("config/modules/web.vgo")).unwrap();
    let refused = f.cli(&["config", "rollback", "5"], "");
    assert_code(&refused, 1);
    assert!(text(&refused).contains("is as it was"), "{}", text(&refused));
    assert_eq!(std::fs::read_to_string(f.base().join("config/modules/web.vgo")).unwrap(), now);
    f.write_config(&[("modules/web.vgo", &module("six"))]);

    // Freeze: publishes refused, forced through by an admin, unfreeze; all audited.
    assert_code(&f.cli(&["config", "freeze", "--until", "2h", "--reason", "release weekend"], ""), 0);
    let frozen = f.cli(&["config", "publish"], "");
    assert_code(&frozen, 3);
    assert!(
        text(&frozen).contains("frozen until") && text(&frozen).contains("release weekend"),
        "{}",
        text(&frozen)
    );
    assert_code(&f.cli(&["config", "rollback", "2"], ""), 3);
    assert_eq!(std::fs::read_to_string(f.base().join("config/modules/web.vgo")).unwrap(), module("six"));
    assert_code(&f.cli(&["config", "publish", "--force", "-m", "hotfix"], ""), 0);
    let h = json(&f, &["config", "history", "-o", "json"]);
    assert_eq!(
        (h["revisions"][0]["forced"].clone(), h["revisions"][0]["message"].clone()),
        (true.into(), "hotfix".into())
    );
    assert!(h["freeze"]["reason"] == "release weekend", "{h}");
    assert_code(&f.cli(&["config", "unfreeze"], ""), 0);
    assert_code(&f.cli(&["config", "publish"], ""), 0);
    let audit = f.audit_json();
    for action in ["config.frozen", "config.unfrozen", "config.loaded"] {
        assert!(audit.contains(action), "{action} audited");
    }
    assert!(!audit.contains("HISTORY-CANARY"));
    let bad = f.cli(&["config", "freeze", "--until", "yesterday", "--reason", "x"], "");
    assert_code(&bad, 2);
}
