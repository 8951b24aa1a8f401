//! Characters that make printed text lie: control characters (newlines, tabs, ANSI escapes, every
//! other C0 and C1 code), and invisible or direction-changing ones (zero-width characters, the
//! byte-order mark, bidi embeddings, overrides and isolates). A name holding one can fake a report
//! line or look like another name. `check_visible` refuses them where names and paths are
//! accepted; `escape_control` and `excerpt` render them as visible escapes wherever outside text
//! is printed.

use std::borrow::Cow;

/// The most characters of outside text an error message quotes (see `excerpt`).
pub const EXCERPT_CHARS: usize = 80;

/// Whether `c` is a control character or one that renders as nothing or reorders text around it.
pub fn is_hidden(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1f}'             // C0 controls: NUL, tab, newline, carriage return, ESC...
            | '\u{7f}'..='\u{9f}'      // DEL and the C1 controls (NEL, CSI...)
            | '\u{ad}'                 // soft hyphen
            | '\u{34f}'                // combining grapheme joiner
            | '\u{61c}'                // Arabic letter mark
            | '\u{115f}' | '\u{1160}' | '\u{3164}' | '\u{ffa0}' // Hangul fillers
            | '\u{17b4}' | '\u{17b5}'  // Khmer inherent vowels
            | '\u{180b}'..='\u{180f}'  // Mongolian variation selectors and vowel separator
            | '\u{200b}'..='\u{200f}'  // zero-width space, (non-)joiner, LRM, RLM
            | '\u{2028}'..='\u{202e}'  // line/paragraph separators, bidi embeddings and overrides
            | '\u{2060}'..='\u{206f}'  // word joiner, invisible operators, bidi isolates
            | '\u{fe00}'..='\u{fe0f}'  // variation selectors
            | '\u{feff}'               // byte-order mark / zero-width no-break space
            | '\u{fff0}'..='\u{fffb}'  // interlinear annotation controls
            | '\u{1bca0}'..='\u{1bca3}' // shorthand format controls
            | '\u{1d173}'..='\u{1d17a}' // musical formatting controls
            | '\u{e0000}'..='\u{e0fff}' // tag characters, variation selectors supplement
    )
}

/// A short name for the code points people meet most, for error messages.
fn describe(c: char) -> &'static str {
    match c {
        '\t' => "tab",
        '\n' => "line feed",
        '\r' => "carriage return",
        '\u{1b}' => "escape, which starts terminal control sequences",
        '\u{0}'..='\u{1f}' | '\u{7f}' => "control character",
        '\u{80}'..='\u{9f}' => "C1 control character",
        '\u{200b}' => "zero-width space",
        '\u{200c}' | '\u{200d}' => "zero-width joiner",
        '\u{200e}' | '\u{200f}' | '\u{61c}' => "direction mark",
        '\u{2028}' | '\u{2029}' => "line separator",
        '\u{202a}'..='\u{202e}' => "bidi embedding or override, which reorders the text after it",
        '\u{2066}'..='\u{2069}' => "bidi isolate, which reorders the text after it",
        '\u{feff}' => "byte-order mark",
        _ => "invisible character",
    }
}

/// Refuses `s` if it holds a character for which `is_hidden` is true. The message names `what`,
/// the code point and its position, and quotes `s` escaped, never the raw character.
pub fn check_visible(what: &str, s: &str) -> Result<(), String> {
    match s.chars().enumerate().find(|(_, c)| is_hidden(*c)) {
        None => Ok(()),
        Some((at, c)) => Err(format!(
            "{what} `{}` contains U+{:04X} ({}) at character {}; names and paths may not hold control \
             or invisible characters: remove it",
            excerpt(s),
            c as u32,
            describe(c),
            at + 1
        )),
    }
}

/// `check_visible` for multi-line text such as a command: line feeds and tabs are allowed, every
/// other hidden character is not.
pub fn check_visible_lines(what: &str, s: &str) -> Result<(), String> {
    match s.chars().enumerate().find(|(_, c)| is_hidden(*c) && !matches!(c, '\n' | '\t')) {
        None => Ok(()),
        Some((at, c)) => Err(format!(
            "{what} contains U+{:04X} ({}) at character {}; only line feeds and tabs may be invisible \
             here: remove it",
            c as u32,
            describe(c),
            at + 1
        )),
    }
}

/// `s` with every hidden character written as a visible escape: `\n`, `\r`, `\t`, `\x1b` for the
/// other C0 controls and DEL, `\u{85}` / `\u{202e}` for the rest. Backslashes are left as they
/// are, so escaping twice changes nothing. Clean text (the usual case) is returned unchanged
/// without copying.
pub fn escape_control(s: &str) -> Cow<'_, str> {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) || !s.chars().any(is_hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

fn push_escaped(out: &mut String, c: char) {
    use std::fmt::Write;
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{0}'..='\u{1f}' | '\u{7f}' => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if is_hidden(c) => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// The last `max` bytes of `text` at most, cut at a character boundary (where a command's
/// outcome usually is).
pub fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// Outside text as an error message may quote it: escaped like `escape_control` and cut to
/// `EXCERPT_CHARS` characters (escapes included), with `…` when something was cut. An error must
/// never replay a whole file, or a file's content that was not meant to be read at all.
pub fn excerpt(s: &str) -> Cow<'_, str> {
    let clean = escape_control(s);
    if clean.chars().nth(EXCERPT_CHARS).is_none() {
        return clean;
    }
    let mut out = String::with_capacity(EXCERPT_CHARS + 3);
    let mut used = 0;
    let mut piece = String::new();
    for c in s.chars() {
        piece.clear();
        push_escaped(&mut piece, c);
        let n = piece.chars().count();
        if used + n > EXCERPT_CHARS {
            break;
        }
        out.push_str(&piece);
        used += n;
    }
    out.push('…');
    Cow::Owned(out)
}

/// How much of one piece of outside text a message quotes.
pub const QUOTE_CHARS: usize = 64;

/// `text` quoted for a message: escaped, at most `QUOTE_CHARS` characters, `…` when cut.
pub fn quote_short(text: &str) -> String {
    let shown: String = text.chars().take(QUOTE_CHARS).collect();
    let more = if shown.len() < text.len() { "…" } else { "" };
    format!("{shown:?}{more}")
}

/// A message from a parser that quotes its input (serde: `string "…"`, `` unknown field `…` ``)
/// with every quoted piece cut to `QUOTE_CHARS` characters and control characters escaped,
/// so a long bad value is never replayed whole.
pub fn cap_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(1024));
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        let close = match c {
            '"' => '"',
            '`' => '`',
            _ => {
                push_escaped(&mut out, c);
                continue;
            }
        };
        out.push(c);
        let (mut kept, mut cut) = (0, false);
        let mut escaped = false;
        for d in chars.by_ref() {
            if d == close && !escaped {
                break;
            }
            escaped = close == '"' && d == '\\' && !escaped;
            if kept < QUOTE_CHARS {
                push_escaped(&mut out, d);
                kept += 1;
            } else {
                cut = true;
            }
        }
        if cut {
            out.push('…');
        }
        out.push(close);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_pieces_of_a_message_are_cut() {
        let long = "a".repeat(10_000);
        let m = cap_quoted(&format!("invalid type: string \"{long}\", expected u32; unknown field `{long}`"));
        assert!(m.len() < 200, "{m}");
        assert!(m.contains(&format!("\"{}…\"", "a".repeat(QUOTE_CHARS))), "{m}");
        assert!(m.contains(&format!("`{}…`", "a".repeat(QUOTE_CHARS))), "{m}");
        assert_eq!(cap_quoted("say \"a\\\"b\" now"), "say \"a\\\"b\" now", "escaped quotes stay inside");
        assert_eq!(cap_quoted("x\ny"), "x\\ny", "control characters escaped");
        assert_eq!(quote_short(&long), format!("\"{}\"…", "a".repeat(QUOTE_CHARS)));
    }

    #[test]
    fn check_visible_refuses_every_hidden_class_naming_the_code_point() {
        let cases = [
            ("a\u{200b}b", "U+200B (zero-width space) at character 2"),
            ("a\u{200f}b", "U+200F (direction mark)"),
            ("\u{feff}ab", "U+FEFF (byte-order mark) at character 1"),
            ("ab\u{202e}txt", "U+202E (bidi embedding or override"),
            ("a\u{2066}b", "U+2066 (bidi isolate"),
            ("a\u{2060}b", "U+2060 (invisible character)"),
            ("a\nb", "U+000A (line feed)"),
            ("a\tb", "U+0009 (tab)"),
            ("a\u{1b}[31mb", "U+001B (escape"),
            ("a\u{7}b", "U+0007 (control character)"),
            ("a\u{7f}b", "U+007F (control character)"),
            ("a\u{85}b", "U+0085 (C1 control character)"),
            ("a\u{9b}b", "U+009B (C1 control character)"),
            ("a\u{2028}b", "U+2028 (line separator)"),
            ("a\u{e0041}b", "U+E0041 (invisible character)"),
        ];
        for (s, want) in cases {
            let e = check_visible("resource name", s).unwrap_err();
            assert!(e.starts_with("resource name `"), "{e}");
            assert!(e.contains(want), "{s:?}: {e}");
            assert!(!e.chars().any(is_hidden), "the message echoes a raw hidden character: {e:?}");
        }
        for ok in ["web-1", "/etc/nginx/sites enabled/x.conf", "Grüße", "日本語", "a\\nb", ""] {
            assert!(check_visible("name", ok).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn check_visible_lines_allows_only_newlines_and_tabs() {
        assert!(check_visible_lines("command", "set -e\n\tmake install\n").is_ok());
        let e = check_visible_lines("command", "rm -rf /tmp/x \u{202e}").unwrap_err();
        assert!(e.contains("U+202E") && !e.contains('\u{202e}'), "{e}");
        assert!(check_visible_lines("command", "a\rb").is_err());
        assert!(check_visible_lines("command", "a\u{1b}b").is_err());
    }

    #[test]
    fn escape_control_makes_every_hidden_character_visible() {
        assert_eq!(escape_control("a\nb\tc\r"), "a\\nb\\tc\\r");
        assert_eq!(escape_control("\u{1b}[31m"), "\\x1b[31m");
        assert_eq!(escape_control("x\u{7f}"), "x\\x7f");
        assert_eq!(escape_control("\u{85}"), "\\u{85}");
        assert_eq!(escape_control("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(escape_control("a\u{200b}b\u{feff}"), "a\\u{200b}b\\u{feff}");
        assert_eq!(escape_control("Grüße 日本"), "Grüße 日本");
        let escaped = escape_control("a\u{2067}b\u{0}");
        assert_eq!(escape_control(&escaped), escaped, "escaping twice changes nothing");
    }

    #[test]
    fn escape_control_borrows_clean_text() {
        assert!(matches!(escape_control("plain ascii line"), Cow::Borrowed(_)));
        assert!(matches!(escape_control("naïve café"), Cow::Borrowed(_)));
        assert!(matches!(escape_control("a\nb"), Cow::Owned(_)));
    }

    #[test]
    fn excerpt_caps_and_escapes() {
        assert_eq!(excerpt("short"), "short");
        let long = "x".repeat(10_000);
        let e = excerpt(&long);
        assert_eq!(e.chars().count(), EXCERPT_CHARS + 1);
        assert!(e.ends_with('…'));
        let e = excerpt(&"\n".repeat(1000)).into_owned();
        assert_eq!(e, format!("{}…", "\\n".repeat(EXCERPT_CHARS / 2)));
        // An escape is never cut in half.
        let e = excerpt(&format!("{}\u{202e}tail", "a".repeat(EXCERPT_CHARS - 3))).into_owned();
        assert_eq!(e, format!("{}…", "a".repeat(EXCERPT_CHARS - 3)));
        assert_eq!(excerpt(&"b".repeat(EXCERPT_CHARS)), "b".repeat(EXCERPT_CHARS));
    }
}
