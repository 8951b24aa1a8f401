//! Strict YAML reading for .vgo files. serde_yaml parses; our own visitor builds a small tree and
//! enforces what serde_yaml does not: duplicate keys, string-only keys, no tags, and a budget on
//! expanded values (serde_yaml's alias limit still lets one alias replay a huge anchor). Before
//! serde_yaml sees a file, `scan` bounds its nesting (libyaml is quadratic in it).
//! Positions for errors found later come from `locate` (see locate.rs). Error messages quote the
//! file only in short, escaped excerpts: the file may hold anything.

use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

pub use super::locate::{locate, Path, Seg};
use super::scan::{self, MAX_DEPTH};
use crate::util::text::{escape_control, excerpt};

/// Files larger than this are refused before parsing.
pub const MAX_FILE_BYTES: usize = 1 << 20;
/// Values a document may expand to (aliases count every time they are replayed).
pub const MAX_VALUES: usize = 200_000;

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in file order; duplicates are rejected while parsing.
    Map(Vec<(String, Node)>),
}

impl Node {
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Null => "nothing (null)",
            Node::Bool(_) => "a boolean",
            Node::Int(_) => "an integer",
            Node::Float(_) => "a number",
            Node::Str(_) => "a string",
            Node::Seq(_) => "a list",
            Node::Map(_) => "a mapping",
        }
    }
}

/// A parse failure: 1-based line and column plus a message.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// A parsed file: its tree, and where it holds unquoted YAML 1.1 booleans (see `scan::Scan`).
#[derive(Debug)]
pub struct Doc {
    pub root: Node,
    pub yaml11_words: Vec<(usize, usize, String)>,
}

/// Checks bytes (size, NUL, UTF-8) and nesting, then parses one YAML document into a `Node`.
/// An empty document is an empty mapping.
pub fn parse(bytes: &[u8]) -> Result<Doc, ParseError> {
    let text = check_text(bytes)?;
    let scanned = scan::scan(text).map_err(|at| ParseError {
        line: at.line,
        column: at.column,
        message: too_deep(),
    })?;
    let budget = Cell::new(MAX_VALUES);
    let de = serde_yaml::Deserializer::from_str(text);
    let root = match (Build { budget: &budget }).deserialize(de) {
        Ok(Node::Null) => Node::Map(Vec::new()),
        Ok(node) => node,
        Err(e) => return Err(from_yaml_error(&e)),
    };
    Ok(Doc { root, yaml11_words: scanned.yaml11_words })
}

fn too_deep() -> String {
    format!("nesting is deeper than {MAX_DEPTH} levels; flatten the structure")
}

/// The size, NUL and UTF-8 checks, with the position of the first offending byte.
pub fn check_text(bytes: &[u8]) -> Result<&str, ParseError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(ParseError {
            line: 1,
            column: 1,
            message: format!(
                "file is larger than {MAX_FILE_BYTES} bytes, the limit for .vgo files (1 MiB); split it into modules"
            ),
        });
    }
    let valid_to = match std::str::from_utf8(bytes) {
        Ok(_) => bytes.len(),
        Err(e) => e.valid_up_to(),
    };
    let nul = bytes[..valid_to].iter().position(|&b| b == 0);
    if let Some(at) = nul {
        let (line, column) = line_col(bytes, at);
        return Err(ParseError { line, column, message: "NUL byte; .vgo files are text: remove it".into() });
    }
    if valid_to < bytes.len() {
        let (line, column) = line_col(bytes, valid_to);
        return Err(ParseError { line, column, message: "invalid UTF-8; save the file as UTF-8".into() });
    }
    Ok(std::str::from_utf8(bytes).unwrap_or_default())
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = &bytes[..at];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    (line, column)
}

/// Marks the messages our visitors raise, so they can be told from serde_yaml's own.
const OURS: char = '\u{1}';

/// The longest message from libyaml or serde_yaml we pass on; theirs name no content, but a
/// path of keys can come with them.
const MAX_FOREIGN_MESSAGE: usize = 200;

fn ours<E: de::Error>(message: impl fmt::Display) -> E {
    E::custom(format!("{OURS}{message}"))
}

fn from_yaml_error(e: &serde_yaml::Error) -> ParseError {
    let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
    // serde_yaml writes positions into the text; we print the position in front instead.
    let text = e.to_string();
    // Our own message, without the path of keys serde_yaml puts in front (the keys are the
    // file's content, and the position already says where).
    if let Some((_, mine)) = text.split_once(OURS) {
        return ParseError { line, column, message: strip_positions(mine) };
    }
    let message = strip_positions(&text);
    let message = match message.as_str() {
        "recursion limit exceeded" => too_deep(),
        "repetition limit exceeded" => {
            "aliases expand too far (alias bomb?); write the values out or use fewer aliases".to_string()
        }
        _ => {
            let mut shown: String = escape_control(&message).chars().take(MAX_FOREIGN_MESSAGE).collect();
            if shown.len() < message.len() && message.chars().nth(MAX_FOREIGN_MESSAGE).is_some() {
                shown.push('…');
            }
            format!("invalid YAML: {shown}")
        }
    };
    ParseError { line, column, message }
}

/// Removes every " at line N column M" from a serde_yaml / libyaml message.
fn strip_positions(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(" at line ") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + " at line ".len()..];
        let skip = tail.find(|c: char| !c.is_ascii_digit()).unwrap_or(tail.len());
        let tail = &tail[skip..];
        rest = match tail.strip_prefix(" column ") {
            Some(t) => &t[t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len())..],
            None => tail,
        };
    }
    out.push_str(rest);
    out
}

/// The visitor that builds `Node`s, spending one unit of budget per value it creates.
struct Build<'b> {
    budget: &'b Cell<usize>,
}

impl Build<'_> {
    fn spend<E: de::Error>(&self) -> Result<(), E> {
        match self.budget.get().checked_sub(1) {
            Some(left) => {
                self.budget.set(left);
                Ok(())
            }
            None => Err(ours(format_args!(
                "the document expands to more than {MAX_VALUES} values (alias bomb?); \
                 write the values out or use fewer aliases"
            ))),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Build<'_> {
    type Value = Node;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Build<'_> {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        self.spend()?;
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        self.visit_unit()
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        self.spend()?;
        Ok(Node::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        self.spend()?;
        Ok(Node::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        self.spend()?;
        i64::try_from(v).map(Node::Int).map_err(|_| ours("integer too large; quote it"))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        self.spend()?;
        Ok(Node::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        self.spend()?;
        Ok(Node::Str(v.to_string()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        self.spend()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Build { budget: self.budget })? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        self.spend()?;
        let mut seen = HashSet::new();
        let mut entries = Vec::new();
        while let Some(key) = map.next_key_seed(Key { seen: &seen })? {
            seen.insert(key.clone());
            let value = map.next_value_seed(Build { budget: self.budget })?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<Node, A::Error> {
        Err(ours("YAML tags (`!name`) are not supported; remove the tag"))
    }
}

/// Mapping keys: strings only, each once. Failing here puts the error on the key itself.
struct Key<'s> {
    seen: &'s HashSet<String>,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = String;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        if self.seen.contains(v) {
            return Err(ours(format_args!(
                "duplicate key `{}`; a key may appear only once in a mapping",
                excerpt(v)
            )));
        }
        Ok(v.to_string())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Err(ours(format_args!("key `{v}` is a boolean; keys must be names (quote it)")))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Err(ours(format_args!("key `{v}` is a number; keys must be names (quote it)")))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        self.visit_i64(v as i64)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Err(ours(format_args!("key `{v}` is a number; keys must be names (quote it)")))
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Err(ours("empty key; keys must be names"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<String, A::Error> {
        Err(ours("a list cannot be a key; keys must be names"))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<String, A::Error> {
        Err(ours("a mapping cannot be a key; keys must be names"))
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<String, A::Error> {
        Err(ours("YAML tags (`!name`) are not supported; remove the tag"))
    }
}

#[cfg(test)]
#[path = "yaml_tests.rs"]
mod tests;
