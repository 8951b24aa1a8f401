//! THE placeholder module: the secret marker format, the key grammar, and the functions that
//! find, substitute and scrub markers and values. Server, agent and CLI all go through here so
//! the format has exactly one definition.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use memchr::memmem::Finder;

// Explicit paths keep these files found when this file is included elsewhere (fuzz/).
#[path = "placeholder/forms.rs"]
pub(crate) mod forms;
#[path = "placeholder/scrub.rs"]
mod scrub;

pub use scrub::Scrubber;

pub const MARKER_START: &str = "__VIGO_SECRET__";
pub const MARKER_END: &str = "__END_VIGO_SECRET__";
pub const MAX_KEY_LEN: usize = 256;
/// The longest segment the vault can hold: each segment is a file or directory name, and a
/// value is first written to `.NAME.tmp-PID-RANDOM` (`util::fsutil::write_temp`), which adds
/// 26 bytes at most (a 7-digit PID, 12 hex digits) to a name limited to 255 bytes by Linux.
pub const MAX_SEGMENT_LEN: usize = 255 - 26;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceholderError {
    /// `key` is an excerpt of what was given (capped, hidden characters escaped): it reaches
    /// API answers and config errors.
    #[error("invalid secret key \"{key}\": {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("malformed secret marker at byte {offset}: {reason}")]
    Malformed { offset: usize, reason: &'static str },
    #[error("secret:{key} could not be resolved; refusing to leave its marker in place")]
    Unresolved { key: String },
}

/// The longest field name after `#`.
pub const MAX_FIELD_LEN: usize = 64;

/// A key's path and, for a key naming one field of a structured entry (`vigo/db#password`,
/// an isopass feature), the field.
pub fn split_field(key: &str) -> (&str, Option<&str>) {
    match key.split_once('#') {
        Some((path, field)) => (path, Some(field)),
        None => (key, None),
    }
}

/// Checks a secret key name: `/`-joined segments of `[A-Za-z0-9._-]` that do not start with a
/// dot and are at most `MAX_SEGMENT_LEN` bytes, no leading or trailing `/`, at most 256 bytes,
/// optionally followed by `#field` (1-64 of `[A-Za-z0-9._-]`) naming one field of a structured
/// entry. Runs before any path is built from a key.
pub fn validate_key(key: &str) -> Result<(), PlaceholderError> {
    let bad = |reason| {
        Err(PlaceholderError::InvalidKey { key: crate::util::text::excerpt(key).into_owned(), reason })
    };
    if key.is_empty() {
        return bad("the key is empty");
    }
    if key.len() > MAX_KEY_LEN {
        return bad("the key is longer than 256 bytes");
    }
    let (key, field) = split_field(key);
    if let Some(f) = field {
        if f.is_empty() || f.len() > MAX_FIELD_LEN {
            return bad("a field after '#' must be 1-64 characters");
        }
        if !f.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
            return bad("a field after '#' may only hold A-Z a-z 0-9 . _ - (and there is one '#' at most)");
        }
    }
    if key.is_empty() {
        return bad("the key is empty");
    }
    if key.starts_with('/') {
        return bad("the key must not start with '/'");
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return bad("the key has an empty segment ('//' or a trailing '/')");
        }
        if segment.len() > MAX_SEGMENT_LEN {
            return bad("a segment is longer than 229 bytes (each segment is a file name in the vault)");
        }
        if segment == "." || segment == ".." {
            return bad("'.' and '..' segments are not allowed");
        }
        // Dot names in the vault directory are its own files (the master key, temp files).
        if segment.starts_with('.') {
            return bad(
                "a segment must not start with '.' (such names are reserved for the vault's own files)",
            );
        }
        if !segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
            return bad("segments may only hold A-Z a-z 0-9 . _ -");
        }
    }
    if key.contains(MARKER_START) || key.contains(MARKER_END) {
        return bad("the key must not contain the marker delimiters");
    }
    Ok(())
}

/// The marker that stands in for `secret:<key>` everywhere outside the agent's memory.
pub fn marker(key: &str) -> Result<String, PlaceholderError> {
    validate_key(key)?;
    Ok(format!("{MARKER_START}{key}{MARKER_END}"))
}

/// One marker found in a string: byte range and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub start: usize,
    pub end: usize,
    pub key: String,
}

/// Every marker in `text`, in order. A start without an end, an end without a start, or an
/// invalid key is an error: nothing is ever half-recognised.
/// The marker delimiters as searchers built once: `str::find` builds one per call, which cost
/// a noticeable share of a noop run that scans every attribute of a thousand resources.
static START_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(MARKER_START));
static END_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(MARKER_END));

fn find_start(text: &str) -> Option<usize> {
    START_FINDER.find(text.as_bytes())
}

fn find_end(text: &str) -> Option<usize> {
    END_FINDER.find(text.as_bytes())
}

pub fn find_markers(text: &str) -> Result<Vec<Found>, PlaceholderError> {
    let mut found = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        let rest = &text[pos..];
        let next_start = find_start(rest);
        let next_end = find_end(rest);
        match (next_start, next_end) {
            (None, None) => break,
            (None, Some(e)) => {
                return Err(PlaceholderError::Malformed {
                    offset: pos + e,
                    reason: "marker end without a start",
                })
            }
            (Some(s), Some(e)) if e < s => {
                return Err(PlaceholderError::Malformed {
                    offset: pos + e,
                    reason: "marker end without a start",
                })
            }
            (Some(s), _) => {
                let key_from = pos + s + MARKER_START.len();
                let Some(len) = find_end(&text[key_from..]) else {
                    return Err(PlaceholderError::Malformed {
                        offset: pos + s,
                        reason: "truncated marker (no end)",
                    });
                };
                let key = &text[key_from..key_from + len];
                if find_start(key).is_some() {
                    return Err(PlaceholderError::Malformed { offset: pos + s, reason: "nested marker" });
                }
                validate_key(key).map_err(|_| PlaceholderError::Malformed {
                    offset: pos + s,
                    reason: "marker holds an invalid key",
                })?;
                let end = key_from + len + MARKER_END.len();
                found.push(Found { start: pos + s, end, key: key.to_string() });
                pos = end;
            }
        }
    }
    Ok(found)
}

/// The key when `text` is exactly one marker and nothing else (`content: secret:KEY`): the
/// one place a binary value may go, since it is then used whole.
pub fn whole_marker(text: &str) -> Option<String> {
    match find_markers(text).ok()?.as_slice() {
        [only] if only.start == 0 && only.end == text.len() => Some(only.key.clone()),
        _ => None,
    }
}

pub fn contains_marker(text: &str) -> bool {
    find_start(text).is_some() || find_end(text).is_some()
}

/// Replaces every marker with its value from `resolve`. Any unresolved or malformed marker
/// fails the whole call: the caller gets either a fully substituted string or an error.
pub fn substitute<'v>(
    text: &str,
    mut resolve: impl FnMut(&str) -> Option<&'v str>,
) -> Result<String, PlaceholderError> {
    let found = find_markers(text)?;
    if found.is_empty() {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for f in found {
        let value = resolve(&f.key).ok_or_else(|| PlaceholderError::Unresolved { key: f.key.clone() })?;
        out.push_str(&text[last..f.start]);
        out.push_str(value);
        last = f.end;
    }
    out.push_str(&text[last..]);
    Ok(out)
}

/// The distinct keys of every marker anywhere in a nested JSON value (keys of maps included).
pub fn collect_keys(value: &serde_json::Value, into: &mut BTreeSet<String>) -> Result<(), PlaceholderError> {
    match value {
        serde_json::Value::String(s) => {
            for f in find_markers(s)? {
                into.insert(f.key);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                collect_keys(item, into)?;
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                for f in find_markers(k)? {
                    into.insert(f.key);
                }
                collect_keys(v, into)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Small deterministic generator so property tests are reproducible without extra crates.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn pick(&mut self, from: &[u8]) -> u8 {
            from[(self.next() % from.len() as u64) as usize]
        }
        fn string(&mut self, alphabet: &[u8], min: usize, max: usize) -> String {
            let len = min + (self.next() % (max - min + 1) as u64) as usize;
            (0..len).map(|_| self.pick(alphabet) as char).collect()
        }
    }

    #[test]
    fn key_grammar() {
        for good in ["vigo/db/dsn", "a", "a.b_c-d/E9", "x/y/z", "vigo/db#password", "tls/web#private_key"] {
            assert!(validate_key(good).is_ok(), "{good}");
        }
        let long = "a".repeat(257);
        for bad in [
            "",
            "../x",
            "/abs",
            "a//b",
            "a/./b",
            "a/",
            "a\0b",
            "a b",
            "é",
            long.as_str(),
            "x/..",
            ".master.key",
            "app/.hidden",
            "a__END_VIGO_SECRET__b",
            "vigo/db#",
            "#password",
            "vigo/db#a#b",
            "vigo/db#pass word",
            "vigo/db#a/b",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
        // 256 bytes in all; one segment may hold at most what a file name (and its temp) can.
        assert!(validate_key(&format!("{}/{}", "a".repeat(128), "a".repeat(127))).is_ok());
        assert!(validate_key(&"a".repeat(MAX_SEGMENT_LEN)).is_ok());
        assert!(validate_key(&"a".repeat(MAX_SEGMENT_LEN + 1)).is_err());
        assert_eq!(split_field("vigo/db#password"), ("vigo/db", Some("password")));
        assert_eq!(split_field("vigo/db"), ("vigo/db", None));
        // A field survives the marker round trip.
        let m = marker("vigo/db#password").unwrap();
        assert_eq!(find_markers(&format!("x{m}y")).unwrap()[0].key, "vigo/db#password");
    }

    #[test]
    fn finds_markers_and_reports_malformed_ones() {
        let text = format!("a {} b {} c", marker("k/1").unwrap(), marker("k_2_").unwrap());
        let keys: Vec<_> = find_markers(&text).unwrap().into_iter().map(|f| f.key).collect();
        assert_eq!(keys, ["k/1", "k_2_"]);
        assert!(matches!(
            find_markers("x __VIGO_SECRET__abc"),
            Err(PlaceholderError::Malformed { offset: 2, .. })
        ));
        assert!(find_markers("abc__END_VIGO_SECRET__").is_err());
        assert!(find_markers("__VIGO_SECRET__../x__END_VIGO_SECRET__").is_err());
        assert!(find_markers("__VIGO_SECRET____VIGO_SECRET__a__END_VIGO_SECRET__").is_err());
    }

    #[test]
    fn unresolved_marker_is_an_error_not_left_in_place() {
        let text = format!("pw={}", marker("missing").unwrap());
        let err = substitute(&text, |_| None).unwrap_err();
        assert_eq!(err, PlaceholderError::Unresolved { key: "missing".into() });
        let text = format!("{}{}", marker("a").unwrap(), "__VIGO_SECRET__b");
        assert!(substitute(&text, |_| Some("v")).is_err());
    }

    #[test]
    fn property_substitute_of_mark_is_identity() {
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        let value_alphabet: &[u8] = b"abcXYZ019 _-$\\{}\n\"'/=%";
        for _ in 0..500 {
            let mut values: HashMap<String, String> = HashMap::new();
            let mut original = String::new();
            let mut marked = String::new();
            for _ in 0..(rng.next() % 6) {
                let literal = rng.string(b"plain text 123 ", 0, 8);
                original.push_str(&literal);
                marked.push_str(&literal);
                let key = format!("k/{}.d", rng.string(b"abcdef_-", 1, 6));
                let value =
                    values.entry(key.clone()).or_insert_with(|| rng.string(value_alphabet, 0, 20)).clone();
                original.push_str(&value);
                marked.push_str(&marker(&key).unwrap());
            }
            let out = substitute(&marked, |k| values.get(k).map(String::as_str)).unwrap();
            assert_eq!(out, original);
        }
    }

    #[test]
    fn property_truncated_markers_are_reported_never_half_substituted() {
        let mut rng = Rng(0xdead_beef_0000_0042);
        for _ in 0..300 {
            let m = marker(&format!("k/{}", rng.string(b"abc", 1, 5))).unwrap();
            let cut = 1 + (rng.next() as usize % (m.len() - 1));
            let text = format!("pre {} post", &m[..cut]);
            match substitute(&text, |_| Some("VALUE")) {
                // A cut before the start delimiter is complete is just text.
                Ok(out) => {
                    assert!(!out.contains("VALUE"));
                    assert_eq!(out, text);
                    assert!(cut < MARKER_START.len());
                }
                Err(PlaceholderError::Malformed { .. }) => {}
                Err(e) => panic!("unexpected {e}"),
            }
        }
    }

    #[test]
    fn a_whole_marker_is_told_from_a_marker_inside_text() {
        let m = marker("tls/der").unwrap();
        assert_eq!(whole_marker(&m).as_deref(), Some("tls/der"));
        for not_whole in [format!("{m}\n"), format!(" {m}"), format!("{m}{m}"), "plain".into(), String::new()]
        {
            assert_eq!(whole_marker(&not_whole), None, "{not_whole:?}");
        }
    }

    #[test]
    fn collect_keys_walks_nested_values() {
        let v = serde_json::json!({
            "a": marker("one").unwrap(),
            "b": [1, {"c": format!("x{}y{}", marker("two").unwrap(), marker("one").unwrap())}],
            marker("three").unwrap(): true,
        });
        let mut keys = BTreeSet::new();
        collect_keys(&v, &mut keys).unwrap();
        assert_eq!(keys.into_iter().collect::<Vec<_>>(), ["one", "three", "two"]);
    }
}
