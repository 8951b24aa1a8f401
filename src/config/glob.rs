//! Envoy-name globs: `*` any run, `?` one character, `[abc]` / `[a-z]` / `[!a-z]` a class.
//! Matching is iterative with single-star backtracking, so it is linear-ish, never exponential.

use crate::util::text::excerpt;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Char(char),
    Any,
    Star,
    Class { negated: bool, ranges: Vec<(char, char)> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Glob {
    toks: Vec<Tok>,
    /// The pattern when it has no wildcard: compiling one envoy's bundle tests every entry of
    /// nodes.vgo, and fleets often list thousands of hosts by exact name.
    literal: Option<String>,
}

impl Glob {
    pub fn new(pattern: &str) -> Result<Glob, String> {
        if pattern.is_empty() {
            return Err("empty match pattern; use \"*\" to match every envoy".into());
        }
        let chars: Vec<char> = pattern.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => {
                    if toks.last() != Some(&Tok::Star) {
                        toks.push(Tok::Star);
                    }
                }
                '?' => toks.push(Tok::Any),
                '[' => {
                    let mut j = i + 1;
                    let negated = matches!(chars.get(j), Some('!' | '^'));
                    if negated {
                        j += 1;
                    }
                    let mut ranges = Vec::new();
                    let mut first = true;
                    loop {
                        let Some(&c) = chars.get(j) else {
                            return Err(format!(
                                "unclosed `[` in match pattern \"{}\"; close it with `]`",
                                excerpt(pattern)
                            ));
                        };
                        if c == ']' && !first {
                            break;
                        }
                        first = false;
                        if chars.get(j + 1) == Some(&'-') && chars.get(j + 2).is_some_and(|&e| e != ']') {
                            let end = chars[j + 2];
                            if end < c {
                                return Err(format!(
                                    "backwards range `{}` in match pattern \"{}\"",
                                    excerpt(&format!("{c}-{end}")),
                                    excerpt(pattern)
                                ));
                            }
                            ranges.push((c, end));
                            j += 3;
                        } else {
                            ranges.push((c, c));
                            j += 1;
                        }
                    }
                    toks.push(Tok::Class { negated, ranges });
                    i = j;
                }
                c => toks.push(Tok::Char(c)),
            }
            i += 1;
        }
        let literal = toks.iter().all(|t| matches!(t, Tok::Char(_))).then(|| pattern.to_string());
        Ok(Glob { toks, literal })
    }

    fn one(tok: &Tok, c: char) -> bool {
        match tok {
            Tok::Char(t) => *t == c,
            Tok::Any => true,
            Tok::Class { negated, ranges } => ranges.iter().any(|&(a, b)| a <= c && c <= b) != *negated,
            Tok::Star => false,
        }
    }

    pub fn matches(&self, name: &str) -> bool {
        if let Some(literal) = &self.literal {
            return literal == name;
        }
        let s: Vec<char> = name.chars().collect();
        let (mut p, mut i) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while i < s.len() {
            if p < self.toks.len() && self.toks[p] == Tok::Star {
                star = Some((p, i));
                p += 1;
            } else if p < self.toks.len() && Self::one(&self.toks[p], s[i]) {
                p += 1;
                i += 1;
            } else if let Some((sp, si)) = star {
                p = sp + 1;
                i = si + 1;
                star = Some((sp, si + 1));
            } else {
                return false;
            }
        }
        self.toks[p..].iter().all(|t| *t == Tok::Star)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Glob::new(p).unwrap().matches(s)
    }

    #[test]
    fn glob_matching() {
        assert!(m("db*.example.com", "db1.example.com"));
        assert!(m("db*.example.com", "db.example.com"));
        assert!(!m("db*.example.com", "web1.example.com"));
        assert!(m("*", ""));
        assert!(m("web?", "web1"));
        assert!(!m("web?", "web12"));
        assert!(m("web[0-9]", "web7"));
        assert!(!m("web[!0-9]", "web7"));
        assert!(m("web[!0-9]", "webx"));
        assert!(m("[]]x", "]x"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("exact", "exact"));
        assert!(!m("exact", "exactly"));
    }

    #[test]
    fn glob_errors_and_pathological_input() {
        assert!(Glob::new("[abc").is_err());
        assert!(Glob::new("[z-a]").is_err());
        assert!(Glob::new("").is_err());
        let g = Glob::new(&("a*".repeat(50) + "c")).unwrap();
        let start = std::time::Instant::now();
        assert!(!g.matches(&("a".repeat(5000) + "b")));
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }
}
