//! The scanner's token bodies (scan.rs drives): anchors, tags and the three kinds of scalar,
//! each consuming exactly what libyaml's function of the same name consumes.

use super::{is_alpha, is_blank, is_blankz, is_break, is_breakz, Scanner, Step, Stop, YAML11_WORDS};

impl Scanner<'_> {
    /// `&name` or `*name`: letters, digits, `_`, `-`, then a blank or one of `?:,]}%@` and backtick.
    pub(super) fn anchor(&mut self) -> Step {
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
    pub(super) fn tag(&mut self) -> Step {
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
    pub(super) fn plain_scalar(&mut self) -> Result<Option<String>, Stop> {
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
    pub(super) fn quoted_scalar(&mut self, single: bool) -> Step {
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
    pub(super) fn block_scalar(&mut self) -> Step {
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
