//! Reads shell text the way `sh` splits it, for the dangerous-command scan: simple commands
//! separated by `;` `&` `&&` `||` `|` newlines and parentheses, words with their quotes
//! removed, and what a word is made of — literal text, unquoted glob characters, variables,
//! and command substitutions (`$(…)`, backquotes, `<(…)`), whose text is kept so it can be
//! scanned in turn. Redirections are kept apart from the words. Text it cannot read (an
//! unclosed quote or substitution) is an error, which the scan treats as dangerous.

/// One piece of a word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// Text with quotes and escapes removed.
    Lit(String),
    /// An unquoted `*`, `?`, `[`, `{` or `}`: the shell may expand it.
    Glob(char),
    /// `$NAME`, `${NAME}`, `~` (HOME); with the default of `${NAME:-WORD}` and the like.
    Var(String, Option<Word>),
    /// The text of a command whose output lands here.
    Subst(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Word(pub Vec<Part>);

impl Word {
    fn push_char(&mut self, c: char) {
        match self.0.last_mut() {
            Some(Part::Lit(s)) => s.push(c),
            _ => self.0.push(Part::Lit(c.to_string())),
        }
    }

    /// The word's text when it is plain literal text (quotes removed), else `None`.
    pub fn literal(&self) -> Option<String> {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Part::Lit(s) => out.push_str(s),
                _ => return None,
            }
        }
        Some(out)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Redir {
    /// `>` `>>` `>|` `&>` `<>`: the word is written to.
    Write,
    /// `<`: the word is read.
    Read,
    /// `<<<`: the word is the command's input.
    HereString,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Command {
    pub words: Vec<Word>,
    pub redirects: Vec<(Redir, Word)>,
    /// Its input is the previous command's output (`|`).
    pub piped: bool,
}

struct Reader {
    chars: Vec<char>,
    i: usize,
}

pub(crate) fn parse(text: &str) -> Result<Vec<Command>, String> {
    let mut r = Reader { chars: text.chars().collect(), i: 0 };
    let mut cmds = Vec::new();
    let mut cur = Command::default();
    let mut word: Option<Word> = None;
    let mut redirect: Option<Redir> = None;
    // Ends the word being read: as a redirection target, a group brace, or a word.
    let finish = |cur: &mut Command, word: &mut Option<Word>, redirect: &mut Option<Redir>| {
        if let Some(w) = word.take() {
            match redirect.take() {
                Some(kind) => cur.redirects.push((kind, w)),
                None if w.0 == [Part::Glob('{')] || w.0 == [Part::Glob('}')] => {}
                None => cur.words.push(w),
            }
        }
    };
    let end = |cmds: &mut Vec<Command>, cur: &mut Command, piped: bool| {
        let done = std::mem::replace(cur, Command { piped, ..Command::default() });
        if !done.words.is_empty() || !done.redirects.is_empty() {
            cmds.push(done);
        }
    };
    while let Some(c) = r.peek(0) {
        let next = r.peek(1);
        match c {
            ' ' | '\t' => {
                finish(&mut cur, &mut word, &mut redirect);
                r.i += 1;
            }
            '\n' | ';' | '(' | ')' => {
                finish(&mut cur, &mut word, &mut redirect);
                end(&mut cmds, &mut cur, false);
                r.i += 1;
            }
            '&' if next == Some('>') => {
                finish(&mut cur, &mut word, &mut redirect);
                r.i += if r.peek(2) == Some('>') { 3 } else { 2 };
                redirect = Some(Redir::Write);
            }
            '&' | '|' => {
                finish(&mut cur, &mut word, &mut redirect);
                let double = next == Some(c);
                let piped = c == '|' && !double;
                r.i += if double || (c == '|' && next == Some('&')) { 2 } else { 1 };
                end(&mut cmds, &mut cur, piped);
            }
            '<' | '>' if next == Some('(') => {
                r.i += 2;
                let inner = r.until_close_paren()?;
                word.get_or_insert_with(Word::default).0.push(Part::Subst(inner));
            }
            '<' | '>' => {
                // A bare number right before is the descriptor, not a word (`2>`).
                if word
                    .as_ref()
                    .and_then(Word::literal)
                    .is_some_and(|w| w.bytes().all(|b| b.is_ascii_digit()))
                {
                    word = None;
                }
                finish(&mut cur, &mut word, &mut redirect);
                redirect = r.redirection(c);
            }
            '#' if word.is_none() => {
                while r.peek(0).is_some_and(|c| c != '\n') {
                    r.i += 1;
                }
            }
            _ => r.word_part(word.get_or_insert_with(Word::default))?,
        }
    }
    finish(&mut cur, &mut word, &mut redirect);
    end(&mut cmds, &mut cur, false);
    Ok(cmds)
}

impl Reader {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.i + ahead).copied()
    }

    /// Reads the operator at `<`/`>`; returns what its target word is, `None` for a heredoc
    /// (its body lines are read as commands, which errs on the side of scanning them) or a
    /// descriptor copy (`2>&1`, `<&-`).
    fn redirection(&mut self, c: char) -> Option<Redir> {
        let rest: String = self.chars[self.i..].iter().take(3).collect();
        let (len, kind) = match (c, rest.as_str()) {
            ('<', r) if r.starts_with("<<<") => (3, Some(Redir::HereString)),
            ('<', r) if r.starts_with("<<-") => (3, None),
            ('<', r) if r.starts_with("<<") => (2, None),
            ('<', r) if r.starts_with("<>") => (2, Some(Redir::Write)),
            ('<', r) if r.starts_with("<&") => (2, None),
            ('<', _) => (1, Some(Redir::Read)),
            ('>', r) if r.starts_with(">>") || r.starts_with(">|") => (2, Some(Redir::Write)),
            ('>', r) if r.starts_with(">&") => {
                // `>&2` or `>&-` copies a descriptor; `>&file` writes a file, as `&>` does.
                let fd = self.chars.get(self.i + 2).is_some_and(|c| c.is_ascii_digit() || *c == '-');
                (2, (!fd).then_some(Redir::Write))
            }
            _ => (1, Some(Redir::Write)),
        };
        self.i += len;
        if kind.is_none() {
            // Skip the descriptor or the heredoc delimiter, which is not a command word.
            while self.peek(0).is_some_and(|c| c == ' ' || c == '\t') {
                self.i += 1;
            }
            while self.peek(0).is_some_and(|c| !" \t\n;&|()<>".contains(c)) {
                self.i += 1;
            }
        }
        kind
    }

    /// Reads one piece of an unquoted word at the cursor into `w`.
    fn word_part(&mut self, w: &mut Word) -> Result<(), String> {
        let c = self.peek(0).unwrap_or_default();
        self.i += 1;
        match c {
            '\'' => {
                let s = self.until('\'').ok_or("an unclosed ' quote")?;
                w.0.push(Part::Lit(s));
            }
            '"' => self.double_quoted(w)?,
            '\\' => match self.peek(0) {
                Some('\n') => self.i += 1,
                Some(n) => {
                    w.push_char(n);
                    self.i += 1;
                }
                None => w.push_char('\\'),
            },
            '$' => self.dollar(w, false)?,
            '`' => {
                let s = self.until('`').ok_or("an unclosed ` substitution")?;
                w.0.push(Part::Subst(s.replace("\\`", "`")));
            }
            '~' if w.0.is_empty() => w.0.push(Part::Var("HOME".into(), None)),
            '*' | '?' | '[' | '{' | '}' => w.0.push(Part::Glob(c)),
            _ => w.push_char(c),
        }
        Ok(())
    }

    /// The text up to the next `end` (consumed); `None` when there is none.
    fn until(&mut self, end: char) -> Option<String> {
        let mut s = String::new();
        loop {
            let c = self.peek(0)?;
            self.i += 1;
            if c == end {
                return Some(s);
            }
            if c == '\\' && end == '`' {
                if let Some(n) = self.peek(0) {
                    s.push(c);
                    s.push(n);
                    self.i += 1;
                    continue;
                }
            }
            s.push(c);
        }
    }

    fn double_quoted(&mut self, w: &mut Word) -> Result<(), String> {
        // An empty "" is still a word.
        w.0.push(Part::Lit(String::new()));
        loop {
            let c = self.peek(0).ok_or("an unclosed \" quote")?;
            self.i += 1;
            match c {
                '"' => return Ok(()),
                '\\' if self.peek(0).is_some_and(|n| "$`\"\\\n".contains(n)) => {
                    let n = self.peek(0).unwrap_or_default();
                    self.i += 1;
                    if n != '\n' {
                        w.push_char(n);
                    }
                }
                '$' => self.dollar(w, true)?,
                '`' => {
                    let s = self.until('`').ok_or("an unclosed ` substitution")?;
                    w.0.push(Part::Subst(s.replace("\\`", "`")));
                }
                _ => w.push_char(c),
            }
        }
    }

    /// After a `$`: a substitution, arithmetic, a variable, `$'…'`, or a plain `$`.
    fn dollar(&mut self, w: &mut Word, quoted: bool) -> Result<(), String> {
        match self.peek(0) {
            Some('(') => {
                self.i += 1;
                let inner = self.until_close_paren()?;
                w.0.push(Part::Subst(inner));
            }
            Some('{') => {
                self.i += 1;
                let inner = self.until('}').ok_or("an unclosed ${")?;
                w.0.push(braced_variable(&inner)?);
            }
            Some('\'') if !quoted => {
                self.i += 1;
                let raw = self.until_unescaped('\'').ok_or("an unclosed $' quote")?;
                w.0.push(Part::Lit(ansi_c(&raw)));
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let mut name = String::new();
                while let Some(c) = self.peek(0).filter(|c| c.is_ascii_alphanumeric() || *c == '_') {
                    name.push(c);
                    self.i += 1;
                }
                w.0.push(Part::Var(name, None));
            }
            Some(c) if c.is_ascii_digit() || "@*#?$!-".contains(c) => {
                self.i += 1;
                w.0.push(Part::Var(c.to_string(), None));
            }
            _ => w.push_char('$'),
        }
        Ok(())
    }

    /// The text up to the `)` that closes an opening `(` just consumed (nested parentheses
    /// and quotes respected).
    fn until_close_paren(&mut self) -> Result<String, String> {
        let mut depth = 1;
        let mut s = String::new();
        while let Some(c) = self.peek(0) {
            self.i += 1;
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(s);
                    }
                }
                '\'' | '"' | '`' => {
                    let inner = if c == '\'' { self.until(c) } else { self.until_unescaped(c) };
                    let inner = inner.ok_or("an unclosed quote inside $(…)")?;
                    s.push(c);
                    s.push_str(&inner);
                }
                '\\' => {
                    s.push(c);
                    if let Some(n) = self.peek(0) {
                        s.push(n);
                        self.i += 1;
                    }
                    continue;
                }
                _ => {}
            }
            s.push(c);
        }
        Err("an unclosed $( or ( substitution".into())
    }

    /// Like `until`, but a backslash escapes the next character (kept as written).
    fn until_unescaped(&mut self, end: char) -> Option<String> {
        let mut s = String::new();
        loop {
            let c = self.peek(0)?;
            self.i += 1;
            if c == end {
                return Some(s);
            }
            s.push(c);
            if c == '\\' {
                s.push(self.peek(0)?);
                self.i += 1;
            }
        }
    }
}

/// `${NAME}`, `${NAME:-WORD}` (and `-`, `:=`, `=`): the word is what an empty or unset
/// variable becomes. Other operators keep the variable (its value is not known anyway).
fn braced_variable(inner: &str) -> Result<Part, String> {
    let name_len = inner.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').count();
    let (name, op) = inner.split_at(name_len);
    let name =
        if name.is_empty() { op.chars().next().map(String::from).unwrap_or_default() } else { name.into() };
    let default = ["-", ":-", "=", ":="]
        .iter()
        .find_map(|p| op.strip_prefix(p))
        .filter(|_| name_len > 0)
        .map(|text| {
            let words = parse(text)?;
            Ok::<_, String>(Word(words.into_iter().flat_map(|c| c.words).flat_map(|w| w.0).collect()))
        })
        .transpose()?;
    Ok(Part::Var(name, default))
}

/// Decodes bash's `$'…'` escapes (`\x72m` is `rm`).
fn ansi_c(raw: &str) -> String {
    let mut out = String::new();
    let mut it = raw.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = it.next() else { break };
        let mut number = |radix: u32, max: usize, first: Option<char>| {
            let mut digits: String = first.into_iter().collect();
            while digits.len() < max {
                match it.peek() {
                    Some(d) if d.is_digit(radix) => {
                        digits.push(*d);
                        it.next();
                    }
                    _ => break,
                }
            }
            u32::from_str_radix(&digits, radix).ok().and_then(char::from_u32)
        };
        let decoded = match e {
            'n' => Some('\n'),
            't' => Some('\t'),
            'r' => Some('\r'),
            'e' | 'E' => Some('\x1b'),
            'x' => number(16, 2, None),
            'u' => number(16, 4, None),
            'U' => number(16, 8, None),
            '0'..='7' => number(8, 3, Some(e)),
            other => Some(other),
        };
        out.extend(decoded);
    }
    out
}

#[cfg(test)]
#[path = "shell_tests.rs"]
mod tests;
