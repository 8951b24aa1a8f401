//! `secret:<key>` strings in the config file. The server opens its secrets backend from the
//! `secrets:` section, then resolves every other ref through it and uses the resolved settings
//! (`resolve`); a missing or unreadable one stops the start, naming the key and the setting.
//!
//! Two rules are checked when the file is read, before anything is resolved:
//! - settings that roles without a vault read (`NO_REFS`: paths, the admin address, the check-in
//!   interval, the `secrets`, `cli`, `agent` and `release` sections) hold no refs: the CLI and the agent
//!   could not resolve them, and the server needs the paths to find the vault in the first place;
//! - credential settings (`CREDENTIALS`) must be refs: a literal would sit in plain text in a
//!   file that is copied into backups and shown in reviews.

use serde::Deserialize;
use serde_yaml::Value;
use zeroize::Zeroize;

use super::Settings;
use crate::secrets::Provider;

/// Settings that hold a credential, list items written `[]` (every item). A literal is refused
/// at load.
pub const CREDENTIALS: &[&str] = &["auth.oidc.client_secret", "integrations.webhook[].key"];

/// Whether `setting` (a dotted path with list items as `[i]`, as `collect` names them) is one
/// of `CREDENTIALS`.
pub fn is_credential(setting: &str) -> bool {
    CREDENTIALS.contains(&pattern_of(setting).as_str())
}

/// `integrations.webhook[3].key` -> `integrations.webhook[].key`.
fn pattern_of(setting: &str) -> String {
    let mut out = String::with_capacity(setting.len());
    let mut in_index = false;
    for c in setting.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            c => out.push(c),
        }
    }
    out
}

/// Top-level settings that may not hold refs (read before the vault opens, or by the CLI).
const NO_REFS: &[&str] = &[
    "base_dir",
    "tls_dir",
    "config_dir",
    "api_listen",
    "checkin_interval",
    "secrets",
    "cli",
    "agent",
    "release",
];

/// One `secret:<key>` string: where it is and what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// The setting's dotted path, e.g. `auth.oidc.client_secret` (list items as `[i]`).
    pub setting: String,
    pub key: String,
}

/// Every ref in `value`, in file order.
pub fn collect(value: &Value) -> Vec<SecretRef> {
    let mut out = Vec::new();
    walk(value, String::new(), &mut |setting, s| {
        if let Some(key) = s.strip_prefix("secret:") {
            out.push(SecretRef { setting: setting.to_string(), key: key.to_string() });
        }
    });
    out
}

/// The load-time rules above, plus the key grammar of each ref.
pub fn check(value: &Value, refs: &[SecretRef]) -> Result<(), String> {
    for r in refs {
        let top = r.setting.split(['.', '[']).next().unwrap_or_default();
        if NO_REFS.contains(&top) {
            return Err(format!(
                "{}: secret refs are not allowed in `{top}` (the CLI and the agent read it without a vault, or the server needs it to find the vault); write the value itself",
                r.setting
            ));
        }
        crate::placeholder::validate_key(&r.key).map_err(|e| format!("{}: {e}", r.setting))?;
    }
    // Every node at a credential's place, whatever its type: a number or a mapping there is
    // as much a literal as a string is.
    let mut literal = None;
    visit(value, String::new(), &mut |setting, v| {
        let is_ref = matches!(v, Value::String(s) if s.starts_with("secret:"));
        if literal.is_none() && !is_ref && !v.is_null() && is_credential(setting) {
            literal = Some(setting.to_string());
        }
    });
    if let Some(setting) = literal {
        return Err(format!(
            "{setting} must be a secret:<key> ref, not a literal (the file would hold the credential in plain text); store it with `vigocli secrets set raw KEY`"
        ));
    }
    Ok(())
}

/// The settings with every ref replaced by its value from `provider`, checked again.
pub fn resolve(raw: &Value, provider: &dyn Provider) -> Result<Settings, String> {
    let mut resolved = raw.clone();
    let mut failure = None;
    let mut values: Vec<zeroize::Zeroizing<String>> = Vec::new();
    walk_mut(&mut resolved, String::new(), &mut |setting, s| {
        let Some(key) = s.strip_prefix("secret:") else { return };
        if failure.is_some() {
            return;
        }
        match provider.get(key) {
            Ok(v) => match v.as_text() {
                Some(text) => {
                    values.push(zeroize::Zeroizing::new(text.to_string()));
                    *s = text.to_string()
                }
                None => failure = Some(format!("{setting}: secret {key:?} is binary; a setting takes text")),
            },
            Err(e) => failure = Some(format!("{setting}: resolving secret {key:?}: {e}")),
        }
    });
    let settings = match failure {
        Some(f) => Err(f),
        None => Settings::deserialize(&resolved).map_err(|e| e.to_string()),
    };
    // The resolved copy held values in plain Strings; wipe them before they are freed.
    walk_mut(&mut resolved, String::new(), &mut |_, s| s.zeroize());
    // A value that does not fit its setting is refused without being quoted: it is a secret.
    let settings = settings.map_err(|e| redact(e, &values))?;
    settings.check().map_err(|e| redact(e, &values))?;
    Ok(settings)
}

/// `message` with every resolved value in it (as written, or quoted as serde quotes it)
/// replaced, longest first.
fn redact(mut message: String, values: &[zeroize::Zeroizing<String>]) -> String {
    let mut sorted: Vec<&str> = values.iter().map(|v| v.as_str()).filter(|v| !v.is_empty()).collect();
    sorted.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for v in sorted {
        message = message.replace(&format!("{v:?}"), "[a secret value]").replace(v, "[a secret value]");
    }
    message
}

/// Calls `f` on every node, containers included, with its dotted path.
fn visit(v: &Value, path: String, f: &mut dyn FnMut(&str, &Value)) {
    f(&path, v);
    match v {
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                visit(item, format!("{path}[{i}]"), f)
            }
        }
        Value::Mapping(m) => {
            for (k, item) in m {
                visit(item, join(&path, k), f)
            }
        }
        Value::Tagged(t) => visit(&t.value, path, f),
        _ => {}
    }
}

fn walk(v: &Value, path: String, f: &mut dyn FnMut(&str, &str)) {
    match v {
        Value::String(s) => f(&path, s),
        Value::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, format!("{path}[{i}]"), f)
            }
        }
        Value::Mapping(m) => {
            for (k, item) in m {
                walk(item, join(&path, k), f)
            }
        }
        Value::Tagged(t) => walk(&t.value, path, f),
        _ => {}
    }
}

fn walk_mut(v: &mut Value, path: String, f: &mut dyn FnMut(&str, &mut String)) {
    match v {
        Value::String(s) => f(&path, s),
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk_mut(item, format!("{path}[{i}]"), f)
            }
        }
        Value::Mapping(m) => {
            for (k, item) in m.iter_mut() {
                walk_mut(item, join(&path, k), f)
            }
        }
        Value::Tagged(t) => walk_mut(&mut t.value, path, f),
        _ => {}
    }
}

fn join(path: &str, key: &Value) -> String {
    let key = key.as_str().map(str::to_string).unwrap_or_else(|| format!("{key:?}"));
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::MemoryProvider;

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    const OIDC: &str = "auth:\n  providers: [oidc]\n  public_url: https://vigo.example:8443\n  oidc: {issuer: 'https://id.example', client_id: vigo, client_secret: 'secret:vigo/oidc'}\n";

    #[test]
    fn refs_are_found_with_their_setting() {
        let v = yaml(&format!("{OIDC}listen: 'secret:vigo/listen'\n"));
        let refs = collect(&v);
        assert_eq!(
            refs,
            [
                SecretRef { setting: "auth.oidc.client_secret".into(), key: "vigo/oidc".into() },
                SecretRef { setting: "listen".into(), key: "vigo/listen".into() },
            ]
        );
        check(&v, &refs).unwrap();
    }

    #[test]
    fn refs_where_no_vault_reads_and_literal_credentials_are_refused() {
        for text in [
            "tls_dir: 'secret:x'\n",
            "secrets: {secrets_dir: 'secret:x'}\n",
            "cli: {server: 'secret:x'}\n",
            "api_listen: 'secret:x'\n",
        ] {
            let v = yaml(text);
            assert!(check(&v, &collect(&v)).unwrap_err().contains("not allowed"), "{text}");
        }
        let v = yaml("auth:\n  providers: [oidc]\n  oidc: {issuer: 'https://id.example', client_id: vigo, client_secret: hunter2}\n");
        let e = check(&v, &collect(&v)).unwrap_err();
        assert!(e.contains("auth.oidc.client_secret must be a secret:<key> ref"), "{e}");
        assert!(!e.contains("hunter2"));
        let v = yaml("listen: 'secret:../up'\n");
        assert!(check(&v, &collect(&v)).is_err());
    }

    /// List items are credentials wherever they sit in the list, as strings or not.
    #[test]
    fn every_webhook_key_must_be_a_ref() {
        let hook = |key: &str| format!("{{name: h, url: 'https://h.example/x', key: {key}}}");
        let ok = hook("'secret:vigo/hook'");
        let v = yaml(&format!("integrations:\n  webhook: [{ok}, {ok}]\n"));
        let refs = collect(&v);
        assert_eq!(refs[1].setting, "integrations.webhook[1].key");
        assert!(is_credential(&refs[1].setting) && !is_credential("integrations.webhook[1].url"));
        check(&v, &refs).unwrap();
        for literal in ["hunter2", "123456", "{a: b}", "[x]"] {
            let v = yaml(&format!("integrations:\n  webhook: [{ok}, {}]\n", hook(literal)));
            let e = check(&v, &collect(&v)).unwrap_err();
            assert!(e.starts_with("integrations.webhook[1].key must be a secret:<key> ref"), "{e}");
            assert!(!e.contains("hunter2") && !e.contains("123456"), "{e}");
        }
    }

    #[test]
    fn resolution_uses_the_value_and_names_what_is_missing() {
        let mut vault = MemoryProvider::new();
        vault.insert("vigo/oidc", "s3cret-client");
        vault.insert("vigo/listen", "127.0.0.1:7000");
        let v = yaml(&format!("{OIDC}listen: 'secret:vigo/listen'\n"));
        let s = resolve(&v, &vault).unwrap();
        assert_eq!(s.listen, "127.0.0.1:7000");
        assert_eq!(s.auth.oidc.unwrap().client_secret.expose(), "s3cret-client");
        let v = yaml("auth: {public_url: 'secret:vigo/absent'}\n");
        let e = resolve(&v, &vault).unwrap_err();
        assert!(e.contains("auth.public_url") && e.contains("vigo/absent"), "{e}");
        vault.insert("vigo/bin", [0xff, 0xfe]);
        let e = resolve(&yaml("listen: 'secret:vigo/bin'\n"), &vault).unwrap_err();
        assert!(e.contains("binary"), "{e}");
        // A resolved value is checked like a written one.
        vault.insert("vigo/idle", "10s");
        let e = resolve(&yaml("auth: {session_idle: 'secret:vigo/idle'}\n"), &vault).unwrap_err();
        assert!(e.contains("from 1m to 30d"), "{e}");
    }

    /// A credential written as a number is still a literal; a resolved value that does not fit
    /// its setting is refused without being quoted.
    #[test]
    fn credentials_and_resolved_values_are_never_quoted() {
        let v = yaml("auth:\n  providers: [oidc]\n  oidc: {issuer: 'https://id.example', client_id: vigo, client_secret: 8675309}\n");
        let e = check(&v, &collect(&v)).unwrap_err();
        assert!(e.contains("must be a secret:<key> ref") && !e.contains("8675309"), "{e}");
        let mut vault = MemoryProvider::new();
        vault.insert("vigo/days", "hunter2-not-a-number");
        vault.insert("vigo/idle", "hunter3\"quoted");
        let e = resolve(&yaml("runs: {max_report_bytes: 'secret:vigo/days'}\n"), &vault).unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        let e = resolve(&yaml("auth: {session_idle: 'secret:vigo/idle'}\n"), &vault).unwrap_err();
        assert!(!e.contains("hunter3"), "{e}");
    }
}
