//! A linear pre-scan of a .vgo file, run before serde_yaml sees it. libyaml's work per token
//! grows with the flow nesting level (`[[[[…` or `{a: {a: …`), so a 1 MiB file of brackets takes
//! minutes, and serde_yaml's own depth limit applies only after libyaml has read everything.
//! This scanner follows libyaml's tokenizer (unsafe-libyaml's scanner.rs: the same token
//! boundaries, simple keys, indentation stack, plain/quoted/block scalar rules) closely enough to
//! know the nesting at every token, and stops at the first level too deep.
//!
//! The safety argument: every bracket this scanner treats as text (inside a quoted, block or
//! plain scalar, a comment, a tag) is text to libyaml too, because both take the same decisions
//! at the same places. Where libyaml would stop with an error, this scanner stops too (nothing
//! after that point reaches the parser). `scan_tests.rs` checks the two agree on generated input.
//!
//! It also lists the unquoted YAML 1.1 booleans (`yes`, `no`, `on`, `off`) with their positions,
//! which the loader otherwise had to find by re-parsing the file once per string.

/// Collections may nest this deep (flow and block levels together); serde_yaml's own limit is
/// the same, so one number holds for every kind of nesting.
pub const MAX_DEPTH: usize = 128;

/// What the scan found in a file libyaml will be able to parse in linear time.
#[derive(Debug, Default, PartialEq)]
pub struct Scan {
    /// Unquoted `yes`/`no`/`on`/`off` (any case) used as values: 1-based line, column, the word.
    pub yaml11_words: Vec<(usize, usize, String)>,
}

/// Nesting deeper than `MAX_DEPTH`: the 1-based line and column of the token that went over.
#[derive(Debug, PartialEq)]
pub struct TooDeep {
    pub line: usize,
    pub column: usize,
}

/// Scans `text`. The only failure is nesting deeper than `MAX_DEPTH`; anything else libyaml
/// would reject is left for it to report.
pub fn scan(text: &str) -> Result<Scan, TooDeep> {
    // libyaml's reader refuses these characters before the scanner reaches them.
    let readable: Vec<char> = text.chars().take_while(|&c| libyaml_reads(c)).collect();
    let mut s = Scanner {
        text: &readable,
        pos: 0,
        index: 0,
        line: 0,
        col: 0,
        flow_level: 0,
        indent: -1,
        indents: Vec::new(),
        simple_key_allowed: true,
        simple_keys: vec![SimpleKey::default()],
        out: Scan::default(),
    };
    match s.run() {
        Ok(()) | Err(Stop::Invalid) => Ok(s.out),
        Err(Stop::TooDeep) => Err(TooDeep { line: s.line + 1, column: s.col + 1 }),
    }
}

fn libyaml_reads(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
        || c >= '\u{10000}'
}

fn is_break(c: Option<char>) -> bool {
    matches!(c, Some('\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}'))
}

fn is_blank(c: Option<char>) -> bool {
    matches!(c, Some(' ' | '\t'))
}

fn is_blankz(c: Option<char>) -> bool {
    c.is_none() || is_blank(c) || is_break(c)
}

/// Anchor and alias names.
fn is_alpha(c: Option<char>) -> bool {
    matches!(c, Some('0'..='9' | 'A'..='Z' | 'a'..='z' | '_' | '-'))
}

const YAML11_WORDS: &[&str] = &["yes", "no", "on", "off"];

#[derive(Debug, Clone, Copy, Default)]
struct SimpleKey {
    possible: bool,
    line: usize,
    col: usize,
    index: usize,
    /// Where the key's entry in `yaml11_words` is, when the key is such a word: a key is not a
    /// value, so the entry is taken back once the `:` shows it is a key.
    word_at: Option<(usize, usize)>,
}

enum Stop {
    /// libyaml reports an error here and reads no further.
    Invalid,
    TooDeep,
}

type Step = Result<(), Stop>;

struct Scanner<'t> {
    text: &'t [char],
    pos: usize,
    /// Byte offset, as libyaml counts it for the 1024-byte simple-key limit.
    index: usize,
    line: usize,
    col: usize,
    flow_level: usize,
    indent: isize,
    indents: Vec<isize>,
    simple_key_allowed: bool,
    /// One per flow level plus the block level.
    simple_keys: Vec<SimpleKey>,
    out: Scan,
}

impl Scanner<'_> {
    fn at(&self, k: usize) -> Option<char> {
        self.text.get(self.pos + k).copied()
    }

    fn cur(&self) -> Option<char> {
        self.at(0)
    }

    fn skip(&mut self) {
        if let Some(c) = self.cur() {
            self.pos += 1;
            self.index += c.len_utf8();
            self.col += 1;
        }
    }

    fn skip_line(&mut self) {
        if self.cur() == Some('\r') && self.at(1) == Some('\n') {
            self.pos += 2;
            self.index += 2;
        } else if let Some(c) = self.cur().filter(|&c| is_break(Some(c))) {
            self.pos += 1;
            self.index += c.len_utf8();
        } else {
            return;
        }
        self.line += 1;
        self.col = 0;
    }

    fn in_block(&self) -> bool {
        self.flow_level == 0
    }

    fn col(&self) -> isize {
        self.col as isize
    }

    fn depth_ok(&self) -> Step {
        if self.flow_level + self.indents.len() > MAX_DEPTH {
            Err(Stop::TooDeep)
        } else {
            Ok(())
        }
    }

    /// `---` or `...` at the start of a line, followed by a blank or the end.
    fn at_document_marker(&self) -> bool {
        let rest = &self.text[self.pos..];
        self.col == 0
            && (rest.starts_with(&['-', '-', '-']) || rest.starts_with(&['.', '.', '.']))
            && is_blankz(self.at(3))
    }

    /// libyaml's fetch_next_token, one token per turn.
    fn run(&mut self) -> Step {
        loop {
            self.skip_to_next_token();
            self.unroll_indent(self.col());
            let Some(c) = self.cur() else { return Ok(()) };
            let next = self.at(1);
            let block = self.in_block();
            if self.col == 0 && c == '%' {
                // A directive: libyaml reads it to the end of its line (or fails).
                self.unroll_indent(-1);
                self.remove_simple_key();
                self.simple_key_allowed = false;
                while !is_breakz(self.cur()) {
                    self.skip();
                }
            } else if self.at_document_marker() {
                self.unroll_indent(-1);
                self.remove_simple_key();
                self.simple_key_allowed = false;
                (0..3).for_each(|_| self.skip());
            } else if c == '[' || c == '{' {
                self.save_simple_key();
                self.simple_keys.push(SimpleKey::default());
                self.flow_level += 1;
                self.depth_ok()?;
                self.simple_key_allowed = true;
                self.skip();
            } else if c == ']' || c == '}' {
                self.remove_simple_key();
                if self.flow_level > 0 {
                    self.flow_level -= 1;
                    self.simple_keys.pop();
                }
                self.simple_key_allowed = false;
                self.skip();
            } else if c == ',' {
                self.remove_simple_key();
                self.simple_key_allowed = true;
                self.skip();
            } else if c == '-' && is_blankz(next) {
                self.block_indicator()?;
                self.simple_key_allowed = true;
            } else if c == '?' && (!block || is_blankz(next)) {
                self.block_indicator()?;
                self.simple_key_allowed = block;
            } else if c == ':' && (!block || is_blankz(next)) {
                self.value()?;
            } else if c == '*' || c == '&' {
                self.save_simple_key();
                self.simple_key_allowed = false;
                self.anchor()?;
            } else if c == '!' {
                self.save_simple_key();
                self.simple_key_allowed = false;
                self.tag()?;
            } else if (c == '|' || c == '>') && block {
                self.remove_simple_key();
                self.simple_key_allowed = true;
                self.block_scalar()?;
            } else if c == '\'' || c == '"' {
                self.save_simple_key();
                self.simple_key_allowed = false;
                self.quoted_scalar(c == '\'')?;
            } else if starts_plain(c, next, block) {
                let (line, col) = (self.line + 1, self.col + 1);
                let saved = self.save_simple_key();
                self.simple_key_allowed = false;
                if let Some(word) = self.plain_scalar()? {
                    self.out.yaml11_words.push((line, col, word));
                    if saved {
                        if let Some(k) = self.simple_keys.last_mut() {
                            k.word_at = Some((line, col));
                        }
                    }
                }
            } else {
                return Err(Stop::Invalid);
            }
        }
    }

    /// libyaml's scan_to_next_token: spaces, tabs where allowed, comments and line breaks.
    fn skip_to_next_token(&mut self) {
        loop {
            if self.col == 0 && self.cur() == Some('\u{feff}') {
                self.skip();
            }
            while self.cur() == Some(' ')
                || ((!self.in_block() || !self.simple_key_allowed) && self.cur() == Some('\t'))
            {
                self.skip();
            }
            if self.cur() == Some('#') {
                while !is_breakz(self.cur()) {
                    self.skip();
                }
            }
            if !is_break(self.cur()) {
                return;
            }
            self.skip_line();
            if self.in_block() {
                self.simple_key_allowed = true;
            }
        }
    }

    /// Records a possible simple key here, if one may start here; says whether it did.
    fn save_simple_key(&mut self) -> bool {
        if !self.simple_key_allowed {
            return false;
        }
        let key =
            SimpleKey { possible: true, line: self.line, col: self.col, index: self.index, word_at: None };
        if let Some(top) = self.simple_keys.last_mut() {
            *top = key;
        }
        true
    }

    fn remove_simple_key(&mut self) {
        if let Some(k) = self.simple_keys.last_mut() {
            k.possible = false;
        }
    }

    fn roll_indent(&mut self, column: isize) -> Step {
        if self.in_block() && self.indent < column {
            self.indents.push(self.indent);
            self.indent = column;
            self.depth_ok()?;
        }
        Ok(())
    }

    fn unroll_indent(&mut self, column: isize) {
        if !self.in_block() {
            return;
        }
        while self.indent > column {
            self.indent = self.indents.pop().unwrap_or(-1);
        }
    }

    /// `- ` (block entry) and `? ` (complex key): in a block they may open a collection.
    fn block_indicator(&mut self) -> Step {
        if self.in_block() {
            if !self.simple_key_allowed {
                return Err(Stop::Invalid);
            }
            self.roll_indent(self.col())?;
        }
        self.remove_simple_key();
        self.skip();
        Ok(())
    }

    /// `:` — a mapping value. The saved simple key, if it is still on this line and at most
    /// 1024 bytes back, becomes the key (and may open a block mapping at its column).
    fn value(&mut self) -> Step {
        let block = self.in_block();
        let key = self.simple_keys.last().copied().unwrap_or_default();
        if key.possible && key.line == self.line && key.index + 1024 >= self.index {
            if block {
                self.roll_indent(key.col as isize)?;
            }
            if key.word_at.is_some() && self.out.yaml11_words.last().map(|w| (w.0, w.1)) == key.word_at {
                self.out.yaml11_words.pop();
            }
            self.remove_simple_key();
            self.simple_key_allowed = false;
        } else {
            if block {
                if !self.simple_key_allowed {
                    return Err(Stop::Invalid);
                }
                self.roll_indent(self.col())?;
            }
            self.simple_key_allowed = block;
        }
        self.skip();
        Ok(())
    }
}

fn is_breakz(c: Option<char>) -> bool {
    c.is_none() || is_break(c)
}

/// libyaml's test for a character that starts a plain scalar.
fn starts_plain(c: char, next: Option<char>, block: bool) -> bool {
    let indicator = matches!(
        c,
        '-' | '?'
            | ':'
            | ','
            | '['
            | ']'
            | '{'
            | '}'
            | '#'
            | '&'
            | '*'
            | '!'
            | '|'
            | '>'
            | '\''
            | '"'
            | '%'
            | '@'
            | '`'
    );
    !(is_blankz(Some(c)) || indicator)
        || (c == '-' && !is_blank(next))
        || (block && (c == '?' || c == ':') && !is_blankz(next))
}

#[path = "scan_scalars.rs"]
mod scalars;

#[cfg(test)]
#[path = "scan_tests.rs"]
mod tests;
