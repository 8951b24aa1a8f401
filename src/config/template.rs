//! Templates in string attributes, in Go's text/template syntax (the `gotmpl` crate):
//! `{{ .Vars.NAME }}`, `{{ .Envoy.Name }}`, `{{ .Traits.os.family }}`, `if`/`else`, `range`
//! over list and map vars, `with`, comparisons, and a few string functions. `{{secret_file}}`
//! (exec `command` only) is written back as-is for the agent to fill in.
//!
//! Stricter than Go's defaults, so that a typo never ships as text: a missing var, trait or
//! map key is an error, and so is an unknown function. A secret var holds the secret's opaque
//! marker: it may be written out whole, never taken apart — every function refuses it as an
//! argument (the builtins that could change text are replaced by wrappers that check first),
//! and a rendered text whose markers are not exactly the ones the vars hold (a literal forging
//! one, say) is refused too.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::LazyLock;

use gotmpl::{MissingKey, Template, TemplateError, Value};
use serde_json::Value as Json;

use crate::placeholder;
use crate::util::text::excerpt;

pub const SECRET_FILE: &str = "{{secret_file}}";

/// The most `range` iterations one rendering may take (all loops together).
const MAX_RANGE_ITERATIONS: u64 = 100_000;

/// Var names usable as `.Vars.NAME`.
pub fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What a template can read: `.Vars`, `.Envoy.Name` and, once the envoy has reported them,
/// `.Traits`; plus the secret markers the vars hold (the only ones a rendering may contain).
pub struct Data {
    value: Value,
    markers: BTreeSet<String>,
}

impl Data {
    /// `vars` as JSON-like values (strings, lists, maps); `traits` as the envoy reported them.
    pub fn new(vars: &BTreeMap<String, Json>, envoy: &str, traits: Option<&Json>) -> Data {
        let mut markers = BTreeSet::new();
        for v in vars.values() {
            collect_markers(v, &mut markers);
        }
        let vars: BTreeMap<String, Value> = vars.iter().map(|(k, v)| (k.clone(), to_value(v))).collect();
        let mut top = BTreeMap::new();
        top.insert("Vars".to_string(), Value::from(vars));
        let envoy_map: BTreeMap<String, Value> = [("Name".to_string(), Value::from(envoy))].into();
        top.insert("Envoy".to_string(), Value::from(envoy_map));
        if let Some(t) = traits {
            top.insert("Traits".to_string(), to_value(t));
        }
        Data { value: Value::from(top), markers }
    }
}

fn collect_markers(v: &Json, out: &mut BTreeSet<String>) {
    match v {
        Json::String(s) => {
            out.extend(placeholder::find_markers(s).unwrap_or_default().into_iter().map(|f| f.key))
        }
        Json::Array(items) => items.iter().for_each(|i| collect_markers(i, out)),
        Json::Object(m) => m.values().for_each(|i| collect_markers(i, out)),
        _ => {}
    }
}

fn to_value(v: &Json) -> Value {
    match v {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => {
            n.as_i64().map(Value::Int).unwrap_or_else(|| Value::Float(n.as_f64().unwrap_or(0.0)))
        }
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(items) => Value::from(items.iter().map(to_value).collect::<Vec<_>>()),
        Json::Object(m) => {
            Value::from(m.iter().map(|(k, v)| (k.clone(), to_value(v))).collect::<BTreeMap<String, Value>>())
        }
    }
}

/// Why a template could not be rendered.
#[derive(Debug, PartialEq)]
pub enum RenderError {
    /// What to fix, for the operator.
    Invalid(String),
    /// The text would pass the `limit` given to `render`.
    TooLarge,
}

/// Checks a template's syntax (at read time, before any envoy's data exists).
pub fn check(src: &str) -> Result<(), String> {
    if !src.contains("{{") {
        return Ok(());
    }
    BASE.clone().parse(src).map(drop).map_err(|e| explain(&e, src))
}

/// Renders `src` with `data`, stopping before the text passes `limit` bytes (a short template
/// that repeats a large var could otherwise expand to gigabytes). `in_command`: the value is
/// an exec `command`, the one place `{{secret_file}}` works.
pub fn render(src: &str, data: &Data, in_command: bool, limit: usize) -> Result<String, RenderError> {
    if !src.contains("{{") {
        return if src.len() > limit { Err(RenderError::TooLarge) } else { Ok(src.to_string()) };
    }
    let base = if in_command { &*WITH_SECRET_FILE } else { &*BASE };
    let template = base.clone().parse(src).map_err(|e| RenderError::Invalid(explain(&e, src)))?;
    let mut out = Bounded { text: String::new(), limit, over: false };
    if let Err(e) = template.execute_fmt(&mut out, &data.value) {
        if out.over {
            return Err(RenderError::TooLarge);
        }
        return Err(RenderError::Invalid(explain(&e, src)));
    }
    check_markers(&out.text, &data.markers).map_err(RenderError::Invalid)?;
    Ok(out.text)
}

/// Every marker in a rendering must be one of the vars' markers, whole.
fn check_markers(text: &str, handed_out: &BTreeSet<String>) -> Result<(), String> {
    let cut = "a template function took a secret apart; a secret var can only be written out whole";
    let found = placeholder::find_markers(text).map_err(|_| cut.to_string())?;
    match found.iter().find(|f| !handed_out.contains(&f.key)) {
        Some(_) => Err(cut.to_string()),
        None => Ok(()),
    }
}

/// A writer that fails, rather than grow, past `limit` bytes.
struct Bounded {
    text: String,
    limit: usize,
    over: bool,
}

impl std::fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.text.len() + s.len() > self.limit {
            self.over = true;
            return Err(std::fmt::Error);
        }
        self.text.push_str(s);
        Ok(())
    }
}

/// An error for the operator: what went wrong, in our words where we know better.
fn explain(e: &TemplateError, src: &str) -> String {
    match e {
        TemplateError::MissingKey { key } if src.contains(&format!(".Vars.{key}")) => {
            format!("unknown var `{}`; define it under `vars:` in nodes.vgo or in the module", excerpt(key))
        }
        TemplateError::MissingKey { key } if src.contains(".Traits") => format!(
            "this envoy has no trait `{}` (see `vigocli envoys show NAME`); guard it with `{{{{ with .Traits.… }}}}` or require the trait in nodes.vgo",
            excerpt(key)
        ),
        TemplateError::MissingKey { key } => format!("no `{}` in this template's data", excerpt(key)),
        TemplateError::UndefinedFunction(name) if name == "secret_file" => {
            "{{secret_file}} only works in an exec `command`".to_string()
        }
        TemplateError::UndefinedFunction(name) => format!(
            "unknown template function `{}`; the functions are Go's builtins and {}",
            excerpt(name),
            FUNCTIONS.join(", ")
        ),
        TemplateError::Parse { line, col, message, .. } | TemplateError::Lex { line, col, message, .. } => {
            // The action the error is in, from its `{{`: the operator finds it by sight.
            let line_start: usize = src.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum();
            let in_line = &src[line_start.min(src.len())..];
            let at = line_start + in_line.chars().take(col.saturating_sub(1)).map(char::len_utf8).sum::<usize>();
            let action = &src[src[..at].rfind("{{").unwrap_or(0)..];
            format!("template syntax: {} in `{}`", excerpt(message), excerpt(action))
        }
        other => format!("template: {}", excerpt(&other.to_string())),
    }
}

/// Our functions beside Go's builtins (Sprig's names and argument order, so that a pipeline
/// `{{ .Vars.x | default "y" }}` reads as it does in Helm).
const FUNCTIONS: &[&str] = &["default", "lower", "upper", "trim", "join", "quote", "indent"];

type FnResult = gotmpl::Result<Value>;

static BASE: LazyLock<Template> = LazyLock::new(|| {
    Template::new("")
        .missing_key(MissingKey::Error)
        .max_range_iters(MAX_RANGE_ITERATIONS)
        .func("default", default)
        .func("lower", |a| one_string("lower", a).map(|s| Value::from(s.to_lowercase())))
        .func("upper", |a| one_string("upper", a).map(|s| Value::from(s.to_uppercase())))
        .func("trim", |a| one_string("trim", a).map(|s| Value::from(s.trim())))
        .func("quote", |a| one_string("quote", a).map(|s| Value::from(quote(&s))))
        .func("indent", indent)
        .func("join", join)
        .func("len", len)
        .func("index", index)
        .func("slice", slice)
        .func("print", |a| builtin("print", a))
        .func("println", |a| builtin("println", a))
        .func("printf", |a| builtin("printf", a))
        .func("html", |a| builtin("html", a))
        .func("js", |a| builtin("js", a))
        .func("urlquery", |a| builtin("urlquery", a))
        .func("call", |_| Err(fail("`call` is not available: templates hold no functions".into())))
        .func("eq", |a| compare("eq", a))
        .func("ne", |a| compare("ne", a))
        .func("lt", |a| compare("lt", a))
        .func("le", |a| compare("le", a))
        .func("gt", |a| compare("gt", a))
        .func("ge", |a| compare("ge", a))
});

static WITH_SECRET_FILE: LazyLock<Template> =
    LazyLock::new(|| BASE.clone().func("secret_file", |_| Ok(Value::from(SECRET_FILE))));

fn fail(message: String) -> TemplateError {
    TemplateError::Exec(message)
}

/// Refuses a secret marker anywhere in a function's arguments.
fn no_secret(name: &str, args: &[Value]) -> Result<(), TemplateError> {
    fn holds(v: &Value) -> bool {
        match v {
            Value::String(s) => placeholder::contains_marker(s),
            Value::List(items) => items.iter().any(holds),
            Value::Map(m) => m.values().any(holds),
            _ => false,
        }
    }
    if args.iter().any(holds) {
        return Err(fail(format!(
            "`{name}` was given a secret; a secret var can only be written out whole, never passed to a function"
        )));
    }
    Ok(())
}

fn one_string(name: &str, args: &[Value]) -> Result<String, TemplateError> {
    no_secret(name, args)?;
    match args {
        [Value::String(s)] => Ok(s.to_string()),
        [Value::Int(_) | Value::Float(_) | Value::Bool(_)] => Ok(args[0].to_string()),
        [other] => Err(fail(format!("`{name}` takes a string, not a {}", other.type_name()))),
        _ => Err(fail(format!("`{name}` takes one argument, not {}", args.len()))),
    }
}

/// `default FALLBACK VALUE`: VALUE unless it is empty (nil, false, 0, "", an empty list or map).
fn default(args: &[Value]) -> FnResult {
    no_secret("default", args)?;
    match args {
        [fallback, value] => Ok(if gotmpl::is_true(value) { value.clone() } else { fallback.clone() }),
        [fallback] => Ok(fallback.clone()),
        _ => Err(fail(format!("`default` takes a fallback and a value, not {} arguments", args.len()))),
    }
}

/// `quote S`: S in double quotes, with `"`, `\` and control characters escaped.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `indent N S`: every line of S after N spaces.
fn indent(args: &[Value]) -> FnResult {
    no_secret("indent", args)?;
    let [Value::Int(n), text] = args else {
        return Err(fail("`indent` takes a number of spaces and a text".into()));
    };
    let n = usize::try_from(*n)
        .ok()
        .filter(|n| *n <= 256)
        .ok_or_else(|| fail("`indent` takes 0 to 256 spaces".into()))?;
    let pad = " ".repeat(n);
    let text = one_string("indent", std::slice::from_ref(text))?;
    Ok(Value::from(text.split('\n').map(|l| format!("{pad}{l}")).collect::<Vec<_>>().join("\n")))
}

/// `join SEP LIST`.
fn join(args: &[Value]) -> FnResult {
    no_secret("join", args)?;
    let [Value::String(sep), Value::List(items)] = args else {
        return Err(fail("`join` takes a separator and a list".into()));
    };
    let parts: Vec<String> = items.iter().map(Value::to_string).collect();
    Ok(Value::from(parts.join(sep)))
}

/// Go's builtin `name` on `args` once they hold no secret: every builtin that can turn a value
/// into other text is wrapped so (the builtins themselves cannot be wrapped, only replaced).
fn builtin(name: &str, args: &[Value]) -> FnResult {
    no_secret(name, args)?;
    let operands: String = (0..args.len()).map(|i| format!(" .A{i}")).collect();
    let data: BTreeMap<String, Value> =
        args.iter().enumerate().map(|(i, v)| (format!("A{i}"), v.clone())).collect();
    let text = Template::new("")
        .parse(&format!("{{{{ {name}{operands} }}}}"))?
        .execute_to_string(&Value::from(data))?;
    Ok(Value::from(text))
}

/// `index X I J …`: X[I][J]….
fn index(args: &[Value]) -> FnResult {
    no_secret("index", args)?;
    let [first, keys @ ..] = args else { return Err(fail("`index` takes a value and indexes".into())) };
    keys.iter().try_fold(first.clone(), |at, key| at.index(key))
}

/// `slice X [I [J]]`: part of a string or list.
fn slice(args: &[Value]) -> FnResult {
    no_secret("slice", args)?;
    let bound = |v: &Value| v.as_int().ok_or_else(|| fail("`slice` bounds are integers".into()));
    match args {
        [v] => v.slice(None, None),
        [v, i] => v.slice(Some(bound(i)?), None),
        [v, i, j] => v.slice(Some(bound(i)?), Some(bound(j)?)),
        _ => Err(fail("`slice` takes a value and up to two bounds".into())),
    }
}

fn len(args: &[Value]) -> FnResult {
    no_secret("len", args)?;
    match args {
        [v] => {
            v.len().map(|n| Value::Int(n as i64)).ok_or_else(|| fail(format!("`len` of a {}", v.type_name())))
        }
        _ => Err(fail("`len` takes one argument".into())),
    }
}

/// Go's comparison functions on strings, numbers and booleans (`eq` with several operands is
/// true when the first equals any of the others), refusing a secret.
fn compare(name: &str, args: &[Value]) -> FnResult {
    no_secret(name, args)?;
    let order = |a: &Value, b: &Value| -> Result<std::cmp::Ordering, TemplateError> {
        match (a, b) {
            (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
            (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
            (Value::Bool(x), Value::Bool(y)) => Ok(x.cmp(y)),
            (Value::Float(_) | Value::Int(_), Value::Float(_) | Value::Int(_)) => {
                let f = |v: &Value| match v {
                    Value::Int(i) => *i as f64,
                    Value::Float(f) => *f,
                    _ => 0.0,
                };
                f(a).partial_cmp(&f(b)).ok_or_else(|| fail(format!("`{name}`: NaN does not compare")))
            }
            _ => Err(fail(format!("`{name}` cannot compare a {} with a {}", a.type_name(), b.type_name()))),
        }
    };
    use std::cmp::Ordering::*;
    match (name, args) {
        ("eq", [first, rest @ ..]) if !rest.is_empty() => {
            for r in rest {
                if order(first, r)? == Equal {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        (_, [a, b]) => {
            let o = order(a, b)?;
            Ok(Value::Bool(match name {
                "ne" => o != Equal,
                "lt" => o == Less,
                "le" => o != Greater,
                "gt" => o == Greater,
                "ge" => o != Less,
                _ => o == Equal,
            }))
        }
        _ => Err(fail(format!("`{name}` takes two arguments"))),
    }
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
