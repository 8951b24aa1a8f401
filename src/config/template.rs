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

/// Why a template could not be rendered.
#[derive(Debug, PartialEq)]
pub enum RenderError {
    /// What to fix, for the operator.
    Invalid(String),
    /// The text would pass the `limit` given to `render`.
    TooLarge,
}

/// Renders parsed pieces, stopping before the text passes `limit` bytes (a short template that
/// repeats a large var could otherwise expand to gigabytes). `{{secret_file}}` is written back
/// as-is for the agent.
pub fn render<'v>(
    pieces: &[Piece<'v>],
    var: impl Fn(&str) -> Option<&'v str>,
    envoy: &str,
    limit: usize,
) -> Result<String, RenderError> {
    let mut out = String::new();
    for p in pieces {
        let piece = match p {
            Piece::Text(t) => *t,
            Piece::EnvoyName => envoy,
            Piece::SecretFile => SECRET_FILE,
            Piece::Var(name) => var(name).ok_or_else(|| {
                RenderError::Invalid(format!(
                    "unknown var `{}`; define it under `vars:` in nodes.vgo or in the module",
                    excerpt(name)
                ))
            })?,
        };
        if out.len() + piece.len() > limit {
            return Err(RenderError::TooLarge);
        }
        out.push_str(piece);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Result<String, String> {
        let pieces = parse(s)?;
        render(&pieces, |n| (n == "port").then_some("5432"), "db1", 1000).map_err(|e| format!("{e:?}"))
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

    #[test]
    fn rendering_stops_at_the_limit_before_it_allocates_more() {
        let big = "x".repeat(1 << 20);
        let template = "{{ .Vars.big }}".repeat(100_000);
        let pieces = parse(&template).unwrap();
        let start = std::time::Instant::now();
        let out = render(&pieces, |_| Some(big.as_str()), "h", 8 << 20);
        assert_eq!(out, Err(RenderError::TooLarge));
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(render(&parse("ab{{ .Envoy.Name }}").unwrap(), |_| None, "cd", 4).unwrap(), "abcd");
        assert_eq!(
            render(&parse("ab{{ .Envoy.Name }}").unwrap(), |_| None, "cd", 3),
            Err(RenderError::TooLarge)
        );
    }
}
