//! Positions on demand. serde_yaml keeps no positions on success, but it stamps the line and
//! column of the node being visited onto any error a visitor returns. `locate` walks to one node
//! and fails there on purpose; it runs only when an error needs a position.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One step from a node to a child.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Where a node is: its path, and whether the error belongs on the last key rather than its value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path {
    pub segs: Vec<Seg>,
    pub on_key: bool,
}

impl Path {
    pub fn root() -> Self {
        Path { segs: Vec::new(), on_key: false }
    }
    pub fn key(&self, k: &str) -> Self {
        let mut segs = self.segs.clone();
        segs.push(Seg::Key(k.to_string()));
        Path { segs, on_key: false }
    }
    pub fn index(&self, i: usize) -> Self {
        let mut segs = self.segs.clone();
        segs.push(Seg::Index(i));
        Path { segs, on_key: false }
    }
    /// The same node, but pointing at its key (for unknown or misplaced keys).
    pub fn at_key(mut self) -> Self {
        self.on_key = true;
        self
    }
}

const FOUND: &str = "\u{1}vigo-located\u{1}";

/// The 1-based line and column of the node at `path` in `text`, if it exists. `text` must be a
/// document `parse` accepted (so its expansion is already known to be bounded).
pub fn locate(text: &str, path: &Path) -> Option<(usize, usize)> {
    let de = serde_yaml::Deserializer::from_str(text);
    let found = Locate { segs: &path.segs, on_key: path.on_key }
        .deserialize(de)
        .err()
        .filter(|e| e.to_string().contains(FOUND))
        .and_then(|e| e.location().map(|l| (l.line(), l.column())));
    // An empty document has no root node to fail on; its root is the file's start.
    match found {
        None if path.segs.is_empty() => Some((1, 1)),
        other => other,
    }
}

/// Whether the scalar starting at this position is written quoted or as a block scalar, which
/// is how a deliberate string `"yes"` differs from a YAML 1.1 boolean `yes`.
#[cfg(test)]
pub fn is_quoted_at(text: &str, line: usize, column: usize) -> bool {
    let Some(l) = text.lines().nth(line.saturating_sub(1)) else { return false };
    matches!(l.chars().nth(column.saturating_sub(1)), Some('"' | '\'' | '|' | '>' | '!'))
}

struct Locate<'p> {
    segs: &'p [Seg],
    on_key: bool,
}

impl<'de> DeserializeSeed<'de> for Locate<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Locate<'_> {
    fn here<E: de::Error>(&self) -> Result<(), E> {
        Err(E::custom(if self.segs.is_empty() { FOUND } else { "not found" }))
    }
}

impl<'de> Visitor<'de> for Locate<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.here()
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.here()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.here()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.here()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.here()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.here()
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        self.here()
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Seg::Index(want), rest)) = self.segs.split_first() else { return self.here() };
        for _ in 0..*want {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Err(de::Error::custom("not found"));
            }
        }
        seq.next_element_seed(Locate { segs: rest, on_key: self.on_key })?;
        Err(de::Error::custom("not found"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Seg::Key(want), rest)) = self.segs.split_first() else { return self.here() };
        let stop_on_key = self.on_key && rest.is_empty();
        while let Some(hit) = map.next_key_seed(Probe { want, stop: stop_on_key })? {
            if hit {
                map.next_value_seed(Locate { segs: rest, on_key: self.on_key })?;
                break;
            }
            map.next_value::<IgnoredAny>()?;
        }
        Err(de::Error::custom("not found"))
    }
}

/// Reads one key; fails on it when it is the wanted key and the key itself is the target.
struct Probe<'w> {
    want: &'w str,
    stop: bool,
}

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = bool;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Probe<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        if v == self.want && self.stop {
            return Err(E::custom(FOUND));
        }
        Ok(v == self.want)
    }
}
