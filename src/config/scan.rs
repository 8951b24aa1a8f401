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

    /// `&name` or `*name`: letters, digits, `_`, `-`, then a blank or one of `?:,]}%@` and backtick.
    fn anchor(&mut self) -> Step {
        self.skip();
        let start = self.pos;
        while is_alpha(self.cur()) {
            self.skip();
        }
        let end_ok = is_blankz(self.cur())
            || matches!(self.cur(), Some('?' | ':' | ',' | ']' | '}' | '%' | '@' | '`'));
        if self.pos == start || !end_ok {
            return Err(Stop::Invalid);
        }
        Ok(())
    }

    /// `!tag`, `!handle!suffix` or `!<verbatim>`: URI characters, then a blank (or `,` in a flow).
    fn tag(&mut self) -> Step {
        let verbatim = self.at(1) == Some('<');
        self.skip();
        if verbatim {
            self.skip();
        }
        loop {
            match self.cur() {
                Some('%') => {
                    if !(is_hex(self.at(1)) && is_hex(self.at(2))) {
                        return Err(Stop::Invalid);
                    }
                    (0..3).for_each(|_| self.skip());
                }
                Some(c) if is_uri_char(c, verbatim) => self.skip(),
                _ => break,
            }
        }
        if verbatim {
            if self.cur() != Some('>') {
                return Err(Stop::Invalid);
            }
            self.skip();
        }
        let ends_tag = is_blankz(self.cur()) || (self.cur() == Some(',') && !self.in_block());
        if !ends_tag {
            return Err(Stop::Invalid);
        }
        Ok(())
    }

    /// libyaml's scan_plain_scalar. Returns the text when it is one YAML 1.1 word.
    fn plain_scalar(&mut self) -> Result<Option<String>, Stop> {
        let indent = self.indent + 1;
        let mut leading_blanks = false;
        let mut runs: Vec<(usize, usize)> = Vec::new();
        loop {
            if self.at_document_marker() || self.cur() == Some('#') {
                break;
            }
            let start = self.pos;
            while !is_blankz(self.cur()) {
                let (c, next) = (self.cur(), self.at(1));
                let flow = !self.in_block();
                if flow && c == Some(':') && matches!(next, Some(',' | '?' | '[' | ']' | '{' | '}')) {
                    return Err(Stop::Invalid);
                }
                if (c == Some(':') && is_blankz(next))
                    || (flow && matches!(c, Some(',' | '[' | ']' | '{' | '}')))
                {
                    break;
                }
                leading_blanks = false;
                self.skip();
            }
            if self.pos > start && runs.len() < 2 {
                runs.push((start, self.pos));
            }
            if !(is_blank(self.cur()) || is_break(self.cur())) {
                break;
            }
            while is_blank(self.cur()) || is_break(self.cur()) {
                if is_blank(self.cur()) {
                    if leading_blanks && self.col() < indent && self.cur() == Some('\t') {
                        return Err(Stop::Invalid);
                    }
                    self.skip();
                } else {
                    self.skip_line();
                    leading_blanks = true;
                }
            }
            if self.in_block() && self.col() < indent {
                break;
            }
        }
        if leading_blanks {
            self.simple_key_allowed = true;
        }
        let word = match runs.as_slice() {
            [(a, b)] if b - a <= 3 => self.text[*a..*b].iter().collect::<String>(),
            _ => return Ok(None),
        };
        Ok(YAML11_WORDS.contains(&word.to_ascii_lowercase().as_str()).then_some(word))
    }

    /// libyaml's scan_flow_scalar: '…' with '' for a quote, "…" with backslash escapes.
    fn quoted_scalar(&mut self, single: bool) -> Step {
        let quote = if single { '\'' } else { '"' };
        self.skip();
        loop {
            if self.at_document_marker() || self.cur().is_none() {
                return Err(Stop::Invalid);
            }
            while let Some(c) = self.cur().filter(|&c| !is_blankz(Some(c))) {
                if single && c == '\'' && self.at(1) == Some('\'') {
                    self.skip();
                    self.skip();
                } else if c == quote {
                    break;
                } else if !single && c == '\\' && is_break(self.at(1)) {
                    self.skip();
                    self.skip_line();
                    break;
                } else if !single && c == '\\' {
                    self.escape()?;
                } else {
                    self.skip();
                }
            }
            if self.cur() == Some(quote) {
                self.skip();
                return Ok(());
            }
            while is_blank(self.cur()) || is_break(self.cur()) {
                if is_blank(self.cur()) {
                    self.skip();
                } else {
                    self.skip_line();
                }
            }
        }
    }

    /// One backslash escape in a double-quoted scalar.
    fn escape(&mut self) -> Step {
        let digits = match self.at(1) {
            Some(
                '0' | 'a' | 'b' | 't' | '\t' | 'n' | 'v' | 'f' | 'r' | 'e' | ' ' | '"' | '/' | '\\' | 'N'
                | '_' | 'L' | 'P',
            ) => 0,
            Some('x') => 2,
            Some('u') => 4,
            Some('U') => 8,
            _ => return Err(Stop::Invalid),
        };
        self.skip();
        self.skip();
        let mut value: u32 = 0;
        for k in 0..digits {
            let d = self.at(k).and_then(|c| c.to_digit(16)).ok_or(Stop::Invalid)?;
            value = (value << 4) | d;
        }
        if (0xd800..=0xdfff).contains(&value) || value > 0x10ffff {
            return Err(Stop::Invalid);
        }
        (0..digits).for_each(|_| self.skip());
        Ok(())
    }

    /// libyaml's scan_block_scalar: the header line, then every line indented at least as far
    /// as the first content line (or as the header's explicit indentation says).
    fn block_scalar(&mut self) -> Step {
        self.skip();
        let mut increment: isize = 0;
        let mut digit = |s: &mut Self| -> Step {
            if let Some(d) = s.cur().filter(char::is_ascii_digit) {
                if d == '0' {
                    return Err(Stop::Invalid);
                }
                increment = d as isize - '0' as isize;
                s.skip();
            }
            Ok(())
        };
        if matches!(self.cur(), Some('+' | '-')) {
            self.skip();
            digit(self)?;
        } else if self.cur().is_some_and(|c| c.is_ascii_digit()) {
            digit(self)?;
            if matches!(self.cur(), Some('+' | '-')) {
                self.skip();
            }
        }
        while is_blank(self.cur()) {
            self.skip();
        }
        if self.cur() == Some('#') {
            while !is_breakz(self.cur()) {
                self.skip();
            }
        }
        if !is_breakz(self.cur()) {
            return Err(Stop::Invalid);
        }
        self.skip_line();
        let mut indent = match increment {
            0 => 0,
            n if self.indent >= 0 => self.indent + n,
            n => n,
        };
        self.block_breaks(&mut indent)?;
        while self.col() == indent && self.cur().is_some() {
            while !is_breakz(self.cur()) {
                self.skip();
            }
            self.skip_line();
            self.block_breaks(&mut indent)?;
        }
        Ok(())
    }

    /// Empty lines and indentation inside a block scalar; fixes the indentation if not yet known.
    fn block_breaks(&mut self, indent: &mut isize) -> Step {
        let mut max_indent: isize = 0;
        loop {
            while (*indent == 0 || self.col() < *indent) && self.cur() == Some(' ') {
                self.skip();
            }
            max_indent = max_indent.max(self.col());
            if (*indent == 0 || self.col() < *indent) && self.cur() == Some('\t') {
                return Err(Stop::Invalid);
            }
            if !is_break(self.cur()) {
                break;
            }
            self.skip_line();
        }
        if *indent == 0 {
            *indent = max_indent.max(self.indent + 1).max(1);
        }
        Ok(())
    }
}

fn is_breakz(c: Option<char>) -> bool {
    c.is_none() || is_break(c)
}

fn is_hex(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_hexdigit())
}

/// Characters libyaml accepts in a tag; `,`, `[` and `]` only in a verbatim `!<…>` tag.
fn is_uri_char(c: char, verbatim: bool) -> bool {
    is_alpha(Some(c))
        || matches!(
            c,
            ';' | '/' | '?' | ':' | '@' | '&' | '=' | '+' | '$' | '.' | '!' | '~' | '*' | '\'' | '(' | ')'
        )
        || (verbatim && matches!(c, ',' | '[' | ']'))
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

#[cfg(test)]
#[path = "scan_tests.rs"]
mod tests;
