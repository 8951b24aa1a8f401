//! `-o json` on every list and show verb: the documented field names (docs/OPERATIONS.md,
//! "Output for scripts") and nothing else, so a script can rely on them.

mod common;

use common::fleet::Fleet;
use common::*;
use serde_json::Value;

const NODES: &str = "envoys:\n  - match: \"web*\"\n    roles: [web]\n";
const WEB: &str = r#"
resources:
  - name: app-dir
    type: directory
    target_path: /etc/app
  - name: app-config
    depends_on: [app-dir]
    type: file
    target_path: /etc/app/app.conf
    content: "key={{ .Vars.key }}\n"
vars:
  key: "secret:web/key"
"#;

fn json(f: &Fleet, args: &[&str]) -> Value {
    let out = f.cli(args, "");
    assert_code(&out, 0);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", text(&out)))
}

#[track_caller]
fn assert_fields(v: &Value, fields: &[&str]) {
    let mut got: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    got.sort_unstable();
    let mut want = fields.to_vec();
    want.sort_unstable();
    assert_eq!(got, want, "{v}");
}

fn is_rfc3339(v: &Value) -> bool {
    let s = v.as_str().unwrap_or_default();
    s.len() == 20 && s.ends_with('Z') && s.as_bytes()[10] == b'T'
}

#[test]
fn every_list_and_show_verb_prints_its_documented_json_fields() {
    let mut f = Fleet::new("cli-json");
    f.set_secret("web/key", "json-test-value");
    f.write_config(&[("nodes.vgo", NODES), ("modules/web.vgo", WEB)]);
    f.start_server();
    f.enroll("web1");
    assert_code(&f.run_once("web1"), 0);
    f.token(Some("web2"));
    assert_code(&f.cli(&["api-tokens", "create", "--name", "ci", "--role", "viewer"], ""), 0);

    let secrets = json(&f, &["secrets", "list", "-o", "json"]);
    assert_eq!(secrets, serde_json::json!([{ "key": "web/key" }]));

    let tokens = json(&f, &["tokens", "list", "-o", "json"]);
    assert_eq!(tokens.as_array().unwrap().len(), 2);
    for t in tokens.as_array().unwrap() {
        assert_fields(
            t,
            &[
                "id",
                "state",
                "envoy_name",
                "envoy_pattern",
                "any_name",
                "binding",
                "created_by",
                "created_at",
                "expires_at",
            ],
        );
        assert!(is_rfc3339(&t["expires_at"]) && is_rfc3339(&t["created_at"]), "{t}");
    }
    assert!(tokens.as_array().unwrap().iter().any(|t| t["state"] == "used"));
    assert!(tokens.as_array().unwrap().iter().any(|t| t["state"] == "valid" && t["envoy_name"] == "web2"));

    let envoys = json(&f, &["envoys", "list", "--output", "json"]);
    let e = &envoys[0];
    let envoy_fields = [
        "name",
        "id",
        "state",
        "status",
        "enrolled_at",
        "last_seen",
        "revoked_at",
        "last_bundle_hash",
        "triggered",
        "cert_expires_at",
    ];
    assert_fields(e, &envoy_fields);
    assert_eq!(
        (e["name"].as_str(), e["state"].as_str(), &e["revoked_at"]),
        (Some("web1"), Some("active"), &Value::Null)
    );
    assert!(is_rfc3339(&e["last_seen"]), "{e}");
    assert_eq!(e["status"], "changed", "{e}");

    let fleet = json(&f, &["fleet", "status", "-o", "json"]);
    assert_fields(&fleet, &["counts", "envoys", "attention", "attention_total", "push_channels", "rules"]);
    assert_eq!(fleet["counts"]["changed"], 1, "{fleet}");

    let shown = json(&f, &["envoys", "show", "web1", "-o", "json"]);
    let mut show_fields = envoy_fields.to_vec();
    show_fields.extend([
        "bundle_hash",
        "resources",
        "entitled_keys",
        "agent_version",
        "agent_binary",
        "tamper_signals",
        "push_channel",
        "traits",
        "traits_updated_at",
    ]);
    assert_fields(&shown, &show_fields);
    assert_eq!(shown["entitled_keys"], serde_json::json!(["web/key"]));
    assert_eq!(shown["resources"], 2);

    let runs = json(&f, &["runs", "list", "-o", "json"]);
    let r = &runs[0];
    assert_fields(r, &["id", "envoy", "status", "received_at", "bundle_hash"]);
    assert_eq!((r["envoy"].as_str(), r["status"].as_str()), (Some("web1"), Some("changed")));

    let run = json(&f, &["runs", "show", r["id"].as_str().unwrap(), "-o", "json"]);
    assert_fields(
        &run,
        &[
            "id",
            "envoy",
            "received_at",
            "status",
            "noop",
            "started_at",
            "duration_ms",
            "resources",
            "unchanged_omitted",
        ],
    );
    let first = &run["resources"][0];
    assert_fields(first, &["name", "type", "status", "duration_ms", "diff", "error", "output"]);
    assert_eq!((first["name"].as_str(), first["type"].as_str()), (Some("app-dir"), Some("directory")));

    let api = json(&f, &["api-tokens", "list", "-o", "json"]);
    assert_fields(&api[0], &["name", "role", "state", "created_at", "revoked_at"]);
    assert_eq!((api[0]["name"].as_str(), api[0]["state"].as_str()), (Some("ci"), Some("active")));

    // The table stays the default and names the same rows.
    let table = f.cli(&["envoys", "show", "web1"], "");
    let shown = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(shown.lines().any(|l| l.starts_with("entitled keys:") && l.ends_with(" web/key")), "{shown}");
    let table = f.cli(&["runs", "show", r["id"].as_str().unwrap()], "");
    let t = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(t.contains("RESOURCE") && t.contains("app-config") && !t.contains("json-test-value"), "{t}");
    f.stop_server();
}
