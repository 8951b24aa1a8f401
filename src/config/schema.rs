//! The resource types the run engine knows and the attributes each takes. This table is the
//! contract with the agent: attribute names here are exactly the keys it reads.

use crate::util::text::{check_visible, check_visible_lines, excerpt};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A string (templated).
    Str,
    /// A string; an integer is accepted and written as its decimal string (uid, gid, timeout).
    Num,
    /// An octal permission string such as "0644".
    Mode,
    /// A list of strings.
    List,
    /// A boolean, or a string that renders to one.
    Flag,
    /// Named strings (a custom executor's params).
    Map,
}

pub struct Attr {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    /// Allowed values after rendering (empty: anything).
    pub choices: &'static [&'static str],
}

const fn a(name: &'static str, kind: Kind) -> Attr {
    Attr { name, kind, required: false, choices: &[] }
}
const fn req(name: &'static str) -> Attr {
    Attr { name, kind: Kind::Str, required: true, choices: &[] }
}
const PRESENT_ABSENT: &[&str] = &["present", "absent"];
const fn ensure() -> Attr {
    Attr { name: "ensure", kind: Kind::Str, required: false, choices: PRESENT_ABSENT }
}

pub const COMMON: &[&str] = &["name", "type", "depends_on", "notify", "watch_secret", "when"];

pub const TYPES: &[(&str, &[Attr])] = &[
    (
        "file",
        &[
            req("target_path"),
            a("content", Kind::Str),
            a("mode", Kind::Mode),
            a("owner", Kind::Str),
            a("group", Kind::Str),
            ensure(),
            a("source", Kind::Str),
            a("validate", Kind::Str),
            a("backup", Kind::Flag),
        ],
    ),
    (
        "directory",
        &[req("target_path"), a("mode", Kind::Mode), a("owner", Kind::Str), a("group", Kind::Str), ensure()],
    ),
    ("symlink", &[req("target_path"), req("points_to"), ensure()]),
    (
        "exec",
        &[
            req("command"),
            a("stdin", Kind::Str),
            a("secret_file", Kind::Str),
            a("creates", Kind::Str),
            a("unless", Kind::Str),
            a("onlyif", Kind::Str),
            a("timeout", Kind::Num),
            a("cwd", Kind::Str),
            a("user", Kind::Str),
            a("environment", Kind::List),
            a("returns", Kind::List),
        ],
    ),
    (
        "user",
        &[
            req("username"),
            a("password", Kind::Str),
            a("uid", Kind::Num),
            a("gid", Kind::Num),
            a("groups", Kind::List),
            a("home", Kind::Str),
            a("shell", Kind::Str),
            a("comment", Kind::Str),
            ensure(),
            a("authorized_keys", Kind::List),
        ],
    ),
    ("group", &[req("groupname"), a("gid", Kind::Num), a("members", Kind::List), ensure()]),
    (
        "package",
        &[
            a("package", Kind::Str),
            a("packages", Kind::List),
            a("version", Kind::Str),
            Attr {
                name: "ensure",
                kind: Kind::Str,
                required: false,
                choices: &["present", "latest", "absent"],
            },
            a("hold", Kind::Flag),
        ],
    ),
    (
        "service",
        &[
            req("service"),
            Attr {
                name: "ensure",
                kind: Kind::Str,
                required: false,
                choices: &["running", "stopped", "reloaded"],
            },
            a("enabled", Kind::Flag),
            a("enable", Kind::Flag),
        ],
    ),
    // Edits to part of a file (src/edits): each reads the file, and writes it only when the
    // edit changes it.
    (
        "file_line",
        &[req("target_path"), a("line", Kind::Str), a("match", Kind::Str), ensure(), a("create", Kind::Flag)],
    ),
    (
        "blockinfile",
        &[
            req("target_path"),
            a("block", Kind::Str),
            a("marker", Kind::Str),
            ensure(),
            a("create", Kind::Flag),
        ],
    ),
    (
        "ini",
        &[
            req("target_path"),
            a("section", Kind::Str),
            req("key"),
            a("value", Kind::Num),
            ensure(),
            a("create", Kind::Flag),
        ],
    ),
    (
        "json_file",
        &[req("target_path"), req("path"), a("value", Kind::Num), ensure(), a("create", Kind::Flag)],
    ),
    ("replace", &[req("target_path"), req("regexp"), a("replace", Kind::Str)]),
    // System types written as files or edits (src/agent/engine/systypes.rs).
    (
        "cron",
        &[req("job"), a("schedule", Kind::Str), a("command", Kind::Str), a("user", Kind::Str), ensure()],
    ),
    (
        "sysctl",
        &[
            req("key"),
            Attr { name: "value", kind: Kind::Num, required: true, choices: &[] },
            a("persist", Kind::Flag),
        ],
    ),
    ("host", &[req("hostname"), a("ip", Kind::Str), a("aliases", Kind::List), ensure()]),
    ("authorized_key", &[req("user"), req("key"), a("options", Kind::Str), ensure()]),
    ("systemd_unit", &[req("unit"), a("content", Kind::Str), ensure()]),
    (
        "mount",
        &[
            req("path"),
            a("device", Kind::Str),
            a("fstype", Kind::Str),
            a("options", Kind::Str),
            a("dump", Kind::Num),
            a("pass", Kind::Num),
            Attr {
                name: "ensure",
                kind: Kind::Str,
                required: false,
                choices: &["mounted", "unmounted", "present", "absent"],
            },
        ],
    ),
    (
        "repository",
        &[
            req("repo"),
            a("url", Kind::Str),
            a("suites", Kind::Str),
            a("components", Kind::List),
            a("key", Kind::Str),
            ensure(),
        ],
    ),
    // A type the agent does not know, run by an agent-local executable (docs/EXECUTORS.md).
    (
        "custom",
        &[req("executor"), a("params", Kind::Map), a("private_params", Kind::Map), a("timeout", Kind::Num)],
    ),
];

/// Attributes that are run as command lines, so a secret in them would show in `ps`.
pub const COMMAND_LINES: &[&str] = &["command", "unless", "onlyif", "validate"];

/// The only attributes a secret may reach: each hands its value to the host privately (a
/// 0600-or-as-asked file's content, a pipe, a private temp file, a password hash). Every other
/// attribute names something anyone on the host can see (paths, link targets, account fields in
/// /etc/passwd, package and service names) and would outlive a rotation there.
pub const SECRET_ATTRS: &[(&str, &str)] = &[
    ("file", "content"),
    ("exec", "stdin"),
    ("exec", "secret_file"),
    ("user", "password"),
    ("custom", "private_params"),
];

pub fn may_hold_secret(rtype: &str, attr: &str) -> bool {
    SECRET_ATTRS.contains(&(rtype, attr))
}

pub fn attrs_of(rtype: &str) -> Option<&'static [Attr]> {
    TYPES.iter().find(|(t, _)| *t == rtype).map(|(_, attrs)| *attrs)
}

pub fn type_names() -> String {
    TYPES.iter().map(|(t, _)| *t).collect::<Vec<_>>().join(", ")
}

/// Attributes handed over whole as private text (a file's content, a pipe, a 0600 file, a
/// password to hash): any character may be in them, and so may the text `secret:`.
const PRIVATE_TEXT: &[&str] = &["content", "stdin", "secret_file", "password", "private_params"];

/// Attributes that name a path on the managed host (symlink `points_to` may be relative).
const HOST_PATHS: &[&str] = &["target_path", "creates", "cwd", "home", "source"];
/// Attributes written into a file as several lines (a block, a replacement).
const TEXT_LINES: &[&str] = &["block", "replace", "key"];
/// Attributes that hold account names (one each, or one per list item).
const ACCOUNT_NAMES: &[&str] = &["username", "groupname", "groups", "members", "user"];

/// Checks one rendered value (or one list item) the way the agent will, so `config validate`
/// catches what would otherwise fail on every envoy.
pub fn check_value(attr: &Attr, value: &str) -> Result<(), String> {
    let name = attr.name;
    if PRIVATE_TEXT.contains(&name) {
        return Ok(());
    }
    if COMMAND_LINES.contains(&name) || TEXT_LINES.contains(&name) {
        let what = if matches!(name, "command" | "unless" | "onlyif") { "exec " } else { "" };
        check_visible_lines(&format!("{what}`{name}`"), value)?;
    } else {
        check_visible(&format!("`{name}`"), value)?;
    }
    if let Some(text) = super::secrets::embedded_ref(value) {
        return Err(embedded_ref_message(name, text));
    }
    let shown = format!("\"{}\"", excerpt(value));
    if attr.required && value.trim().is_empty() {
        return Err(format!("`{name}` is empty; it needs a value"));
    }
    if HOST_PATHS.contains(&name) && !value.is_empty() {
        if !value.starts_with('/') {
            return Err(format!("`{name}` {shown} must be an absolute path (start with /)"));
        }
        if value.split('/').any(|seg| seg == "..") {
            return Err(format!("`{name}` {shown} must not contain '..'; write the path it means"));
        }
    }
    if ACCOUNT_NAMES.contains(&name) && !crate::util::users::is_account_name(value) {
        return Err(format!(
            "{shown} in `{name}` is not a valid account name (1-32 of A-Z a-z 0-9 _ - ., not starting with -)"
        ));
    }
    if name == "timeout" {
        parse_timeout(value)?;
    }
    if matches!(name, "match" | "regexp") {
        crate::edits::compile_regex(name, value)?;
    }
    if name == "executor" {
        check_executor_name(value)?;
    }
    if name == "environment" {
        env_item(value)?;
    }
    if name == "returns" && value.trim().parse::<u8>().is_err() {
        return Err(format!("`returns` holds {shown}, not an exit code from 0 to 255"));
    }
    if name == "validate" && !value.contains('%') {
        return Err(format!("validate {shown} must contain % (the path of the new content to check)"));
    }
    if matches!(name, "uid" | "gid") && value.trim().parse::<u32>().is_err() {
        return Err(format!("{name} {shown} must be a whole number from 0 to 4294967295"));
    }
    if attr.kind == Kind::Mode && !is_mode(value) {
        return Err(format!("mode {shown} is not an octal mode; modes are strings like \"0644\""));
    }
    if attr.kind == Kind::Flag && !matches!(value, "true" | "false") {
        return Err(format!("{} must be true or false, not {shown}", attr.name));
    }
    if !attr.choices.is_empty() && !attr.choices.contains(&value) {
        return Err(format!("{} must be one of {}, not {shown}", attr.name, attr.choices.join(", ")));
    }
    Ok(())
}

/// A custom executor's name: the file name of an executable in the agent's executors directory.
pub fn check_executor_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['-', '.'])
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if !ok {
        return Err(format!(
            "`executor` \"{}\" must be 1-64 of letters, digits, _ - . (a file name)",
            excerpt(name)
        ));
    }
    Ok(())
}

/// One `environment` item of an exec: `NAME=value`, with a shell variable name.
pub fn env_item(item: &str) -> Result<(&str, &str), String> {
    let (name, value) = item.split_once('=').unwrap_or((item, ""));
    let name_ok = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !item.contains('=') || !name_ok {
        return Err(format!(
            "`environment` item \"{}\" must be NAME=value, NAME being letters, digits and _ (not starting with a digit)",
            excerpt(item)
        ));
    }
    Ok((name, value))
}

/// Rules between the attributes of one compiled resource (each attribute alone has passed
/// `check_value`): what the agent would refuse on every envoy.
pub fn check_resource(
    rtype: &str,
    name: &str,
    attrs: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), String> {
    let get = |k: &str| {
        attrs.get(k).filter(|v| !v.is_null()).map(|v| match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(items) => {
                items.iter().filter_map(|i| i.as_str()).collect::<Vec<_>>().join(" ")
            }
            other => other.to_string(),
        })
    };
    let present = get("ensure").as_deref() != Some("absent");
    match rtype {
        "cron" => {
            crate::edits::cron::check_job_name(&get("job").unwrap_or_default())?;
            if present {
                let schedule = get("schedule").ok_or("a cron job needs `schedule`")?;
                crate::edits::cron::check_schedule(&schedule)?;
                crate::edits::cron::check_command(&get("command").ok_or("a cron job needs `command`")?)?;
            }
        }
        "user" => {
            if let Some(serde_json::Value::Array(keys)) = attrs.get("authorized_keys") {
                for key in keys.iter().filter_map(|k| k.as_str()) {
                    crate::edits::authorized_keys::parse_key(key)?;
                }
            }
        }
        "package" => {
            let (one, many) = (get("package").is_some(), get("packages").is_some_and(|p| !p.is_empty()));
            if one == many {
                return Err(
                    "a package resource takes `package` (one) or `packages` (a list), exactly one of them"
                        .into(),
                );
            }
            if get("version").is_some() && (many || get("ensure").is_some_and(|e| e != "present")) {
                return Err("`version` pins one package with ensure: present".into());
            }
            if get("hold").as_deref() == Some("true") && !present {
                return Err("a removed package cannot be held".into());
            }
        }
        "repository" => {
            let repo = crate::edits::repos::Repo {
                name: get("repo").unwrap_or_default(),
                url: get("url").unwrap_or_default(),
                suites: get("suites").unwrap_or_else(|| "./".into()),
                components: get("components")
                    .map(|c| c.split_whitespace().map(String::from).collect())
                    .unwrap_or_default(),
                key: get("key"),
            };
            if present {
                repo.check()?;
            } else {
                crate::edits::repos::check_name(&repo.name)?;
            }
        }
        "systemd_unit" => {
            crate::edits::units::check_unit_file_name(&get("unit").unwrap_or_default())?;
            if present && get("content").is_none() {
                return Err("a systemd_unit needs `content` (the unit file) unless ensure is absent".into());
            }
        }
        "sysctl" => {
            crate::edits::sysctl::check_key(&get("key").unwrap_or_default())?;
            crate::edits::sysctl::check_value(&get("value").unwrap_or_default())?;
        }
        _ => {}
    }
    if rtype == "file" {
        if get("content").is_some() && get("source").is_some() {
            return Err("a file takes `content` or `source`, not both".into());
        }
        if get("validate").is_some() && get("content").is_none() && get("source").is_none() {
            return Err("`validate` checks new content: give the file `content` or `source`".into());
        }
        let holds_secret = get("content").is_some_and(|c| crate::placeholder::contains_marker(&c));
        if holds_secret && get("backup").as_deref() == Some("true") {
            return Err("backup: true on a file whose content holds a secret: a kept copy would be plaintext that outlives a rotation; remove backup".into());
        }
    }
    crate::edits::Edit::parse(rtype, name, &get).map(|_| ())
}

/// Text such as `tool --password secret:app/db/pw` is not a reference (only a whole value is):
/// it would reach the host as those very characters. Meant as a reference, it would put a
/// secret on a command line or into a path; either way it is refused.
fn embedded_ref_message(name: &str, text: &str) -> String {
    let found = excerpt(text);
    if COMMAND_LINES.contains(&name) {
        format!(
            "exec `{name}` contains `{found}` inside its text; only a whole value `secret:<key>` is a \
             reference, and a secret may never go on a command line (it shows in `ps`): pass it with \
             `stdin:`, or with `secret_file:` and `{{{{secret_file}}}}` in the command"
        )
    } else {
        format!(
            "`{name}` contains `{found}` inside its text; only a whole value `secret:<key>` is a \
             reference, and a secret may never be part of a path or name on the host: pass secrets \
             with exec `stdin:` / `secret_file:`, file `content` or user `password`"
        )
    }
}

/// "644", "0644", "4755", or with a leading zero before four digits ("04755").
fn is_mode(v: &str) -> bool {
    let digits = if v.len() == 5 { v.strip_prefix('0').unwrap_or("x") } else { v };
    (3..=4).contains(&digits.len()) && digits.bytes().all(|b| (b'0'..=b'7').contains(&b))
}

pub fn is_role_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Resource names are literal labels: no templates, secrets or control characters.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("resource name is empty".into());
    }
    if name.starts_with("secret:") {
        return Err("a resource name cannot be a secret; names show in logs and reports".into());
    }
    if name.contains("{{") {
        return Err("resource names are literal; remove the template".into());
    }
    check_visible("resource name", name)
}

/// The longest an exec (or its guards) may run: a day. A run holds the agent's lock for that
/// long, and anything larger is a typo, not a plan.
pub const MAX_TIMEOUT_SECS: u64 = 86_400;

/// An exec `timeout`: whole seconds, 1 to a day. The loader and the agent share this rule.
pub fn parse_timeout(value: &str) -> Result<u64, String> {
    match value.trim().parse::<u64>() {
        Ok(n) if (1..=MAX_TIMEOUT_SECS).contains(&n) => Ok(n),
        _ => Err(format!(
            "timeout \"{}\" must be a whole number of seconds from 1 to {MAX_TIMEOUT_SECS} (a day)",
            excerpt(value)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_choices() {
        let file = attrs_of("file").unwrap();
        let mode = file.iter().find(|x| x.name == "mode").unwrap();
        assert!(check_value(mode, "0644").is_ok());
        assert!(check_value(mode, "755").is_ok());
        assert!(check_value(mode, "0844").is_err());
        assert!(check_value(mode, "07777").is_ok() && check_value(mode, "04755").is_ok());
        assert!(check_value(mode, "17777").is_err() && check_value(mode, "007777").is_err());
        assert!(check_value(mode, "rw-r--r--").is_err());
        let svc = attrs_of("service").unwrap();
        assert!(check_value(&svc[1], "running").is_ok());
        assert!(check_value(&svc[1], "present").is_err());
        assert!(attrs_of("frobnicate").is_none());
    }
}
