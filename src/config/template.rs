//! Templates in string attributes: `{{ .Vars.NAME }}`, `{{ .Envoy.Name }}`, `{{secret_file}}`
//! (exec `command` only; the agent fills it in) and `{{ "text" }}` for a literal `{{`.
//! Anything else inside braces is an error, so a typo never ships as text.

use crate::util::text::excerpt;

#[derive(Debug, Clone, PartialEq)]
pub enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
    EnvoyName,
    SecretFile,
}

pub const SECRET_FILE: &str = "{{secret_file}}";

/// Splits a template into pieces; the error says what to write instead.
pub fn parse(s: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            out.push(Piece::Text(&rest[..open]));
        }
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err("`{{` without a closing `}}`; write {{ \"{{\" }} for a literal `{{`".into());
        };
        out.push(expr(after[..close].trim())?);
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

fn expr(e: &str) -> Result<Piece<'_>, String> {
    if let Some(name) = e.strip_prefix(".Vars.") {
        if !is_var_name(name) {
            let (e, name) = (excerpt(e), excerpt(name));
            return Err(format!("`{{{{ {e} }}}}`: `{name}` is not a var name (letters, digits, _)"));
        }
        return Ok(Piece::Var(name));
    }
    match e {
        ".Envoy.Name" => Ok(Piece::EnvoyName),
        "secret_file" => Ok(Piece::SecretFile),
        _ if e.len() >= 2 && e.starts_with('"') && e.ends_with('"') && !e[1..e.len() - 1].contains('"') => {
            Ok(Piece::Text(&e[1..e.len() - 1]))
        }
        _ => Err(format!(
            "unknown template expression `{{{{ {} }}}}`; use {{{{ .Vars.NAME }}}}, {{{{ .Envoy.Name }}}} \
             or {{{{ \"text\" }}}}",
            excerpt(e)
        )),
    }
}

/// Var names usable as `.Vars.NAME`.
pub fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Renders parsed pieces. `{{secret_file}}` is written back as-is for the agent.
pub fn render(
    pieces: &[Piece<'_>],
    var: impl Fn(&str) -> Option<String>,
    envoy: &str,
) -> Result<String, String> {
    let mut out = String::new();
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::EnvoyName => out.push_str(envoy),
            Piece::SecretFile => out.push_str(SECRET_FILE),
            Piece::Var(name) => match var(name) {
                Some(v) => out.push_str(&v),
                None => {
                    return Err(format!(
                        "unknown var `{}`; define it under `vars:` in nodes.vgo or in the module",
                        excerpt(name)
                    ))
                }
            },
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Result<String, String> {
        let pieces = parse(s)?;
        render(&pieces, |n| (n == "port").then(|| "5432".to_string()), "db1")
    }

    #[test]
    fn renders_vars_envoy_and_literals() {
        assert_eq!(r("p={{ .Vars.port }} h={{.Envoy.Name}}").unwrap(), "p=5432 h=db1");
        assert_eq!(r("{{   .Vars.port}}").unwrap(), "5432");
        assert_eq!(r("x {{ \"{{\" }} y").unwrap(), "x {{ y");
        assert_eq!(r("run --key {{ secret_file }}").unwrap(), "run --key {{secret_file}}");
        assert_eq!(r("no braces } here").unwrap(), "no braces } here");
    }

    #[test]
    fn template_errors_say_what_to_write() {
        assert!(r("{{ .Vars.nope }}").unwrap_err().contains("unknown var `nope`"));
        assert!(r("{{ .Vars.port").unwrap_err().contains("without a closing"));
        assert!(r("{{ .Values.x }}").unwrap_err().contains("unknown template expression"));
        assert!(r("{{ .Vars.a-b }}").unwrap_err().contains("not a var name"));
    }
}
