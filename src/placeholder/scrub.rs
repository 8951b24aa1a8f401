//! The scrubber: removes known secret values — in every spelling `forms` lists, and each line
//! of a multi-line value — from text before it leaves the agent.

use zeroize::Zeroizing;

use super::forms::{forms, lossy_form};

/// Lines of a multi-line value shorter than this are not scrubbed on their own: a `}` or an
/// empty line would blank out half of every report, and reveal nothing.
const MIN_SCRUBBED_LINE: usize = 4;

struct Entry {
    needle: Zeroizing<String>,
    replacement: String,
}

/// Known plaintext values to remove from any text leaving the agent.
#[derive(Default)]
pub struct Scrubber {
    /// Longest needle first, so that where several start at one position the longest wins
    /// (a value containing another must go whole, not leave its ends behind).
    entries: Vec<Entry>,
    /// For each first byte, the entries starting with it, in `entries` order.
    by_first_byte: Vec<Vec<usize>>,
}

impl Scrubber {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `value` under `key`: its spellings (hex, base64, URL, JSON, shell escaping; for a
    /// binary value its lossy reading and encodings) and, for a multi-line value (a PEM key, a
    /// config file), each line and its spellings — a line-based diff or a command that prints
    /// one line must not carry it out either.
    pub fn add(&mut self, key: &str, value: impl AsRef<[u8]>) {
        self.add_as(&format!("[REDACTED secret:{key}]"), value);
    }

    /// `add` with the text that replaces the value (for a value whose key is not known).
    pub fn add_as(&mut self, replacement: &str, value: impl AsRef<[u8]>) {
        let value = value.as_ref();
        if value.is_empty() {
            return;
        }
        let replacement = replacement.to_string();
        let mut needles = forms(value);
        // A one-line value yields itself again (or itself without its newline); dedup drops it.
        // The "lines" of a binary value are only ever printed as they are (`head`, `tail`,
        // `grep -a`): their lossy reading is enough, and keeps a large value's needles few.
        let binary = std::str::from_utf8(value).is_err();
        for line in value.split(|b| *b == b'\n').map(<[u8]>::trim_ascii) {
            if line.len() < MIN_SCRUBBED_LINE {
                continue;
            }
            match binary {
                true => needles.extend(lossy_form(line)),
                false => needles.extend(forms(line)),
            }
        }
        self.entries
            .extend(needles.into_iter().map(|needle| Entry { needle, replacement: replacement.clone() }));
        // A stable sort, then dedup: a spelling known twice (two keys with one value) keeps the
        // key it was first added under.
        self.entries
            .sort_by(|a, b| b.needle.len().cmp(&a.needle.len()).then_with(|| a.needle.cmp(&b.needle)));
        self.entries.dedup_by(|later, kept| later.needle == kept.needle);
        self.by_first_byte = vec![Vec::new(); 256];
        for (i, e) in self.entries.iter().enumerate() {
            self.by_first_byte[usize::from(e.needle.as_bytes()[0])].push(i);
        }
    }

    /// Replaces every occurrence of every known spelling with `[REDACTED secret:<key>]`.
    /// Leftmost match first, longest value at a position first; matches never overlap.
    pub fn scrub(&self, text: &str) -> String {
        if self.entries.is_empty() {
            return text.to_string();
        }
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        let mut copied_to = 0;
        while i < bytes.len() {
            let hit = self.by_first_byte[usize::from(bytes[i])]
                .iter()
                .map(|&e| &self.entries[e])
                .find(|e| bytes[i..].starts_with(e.needle.as_bytes()));
            match hit {
                Some(e) => {
                    out.push_str(&text[copied_to..i]);
                    out.push_str(&e.replacement);
                    i += e.needle.len();
                    copied_to = i;
                }
                None => i += 1,
            }
        }
        // Matches start and end on char boundaries because needles are whole UTF-8 strings.
        out.push_str(&text[copied_to..]);
        out
    }

    /// `scrub` for text that was cut off at its end (bounded command output): a value split by
    /// the cut is not whole, so `scrub` cannot see it, and its first part would leak. Any tail
    /// that is the beginning of a known spelling is dropped too.
    pub fn scrub_cut(&self, text: &str) -> String {
        let mut out = self.scrub(text);
        let keep = out.len() - self.partial_tail_len(&out);
        out.truncate(keep);
        out
    }

    /// The length of the longest beginning of `text` that is a proper end of some needle: what
    /// to drop from text whose start was cut off (an output's tail).
    pub fn partial_head_len(&self, text: &str) -> usize {
        let bytes = text.as_bytes();
        let mut longest = 0;
        for e in &self.entries {
            let needle = e.needle.as_bytes();
            let most = (needle.len() - 1).min(bytes.len());
            // Text starts on a char boundary, so a match never starts inside a char, and it
            // ends where the needle ends: on a char boundary.
            if let Some(n) =
                (longest + 1..=most).rev().find(|&n| bytes.starts_with(&needle[needle.len() - n..]))
            {
                longest = n;
            }
        }
        longest
    }

    /// The length of the longest end of `text` that is a proper beginning of some needle.
    pub fn partial_tail_len(&self, text: &str) -> usize {
        let bytes = text.as_bytes();
        let mut longest = 0;
        for e in &self.entries {
            let needle = e.needle.as_bytes();
            let most = (needle.len() - 1).min(bytes.len());
            // Needles begin with a char's first byte, so the cut lands on a char boundary.
            if let Some(n) = (longest + 1..=most).rev().find(|&n| bytes.ends_with(&needle[..n])) {
                longest = n;
            }
        }
        longest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn property_scrub_removes_every_planted_value() {
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        // Values use characters that never occur in the replacement text.
        let alphabet: &[u8] = b"0123456789#@!";
        for _ in 0..500 {
            let mut scrubber = Scrubber::new();
            let mut values = Vec::new();
            let base = rng.string(alphabet, 3, 12);
            for i in 0..(1 + rng.next() % 4) {
                // Overlapping and nested values: prefixes, suffixes and extensions of one base.
                let v = match rng.next() % 4 {
                    0 => base.clone(),
                    1 => base[..base.len() - 1].to_string(),
                    2 => format!("{base}{}", rng.string(alphabet, 1, 3)),
                    _ => format!("{}{}", rng.string(alphabet, 1, 3), &base[1..]),
                };
                scrubber.add(&format!("key/{}", (b'a' + i as u8) as char), &v);
                values.push(v);
            }
            let mut text = String::new();
            for _ in 0..6 {
                text.push_str(&rng.string(b"xyz \n", 0, 4));
                let v = &values[(rng.next() as usize) % values.len()];
                let cut = rng.next() as usize % (v.len() + 1);
                text.push_str(&v[..cut]); // fragments glue neighbours into new overlaps
                text.push_str(v);
            }
            let out = scrubber.scrub(&text);
            for v in &values {
                assert!(!out.contains(v.as_str()), "value {v:?} survived in {out:?} (from {text:?})");
            }
        }
    }

    /// A value that contains another must be replaced whole: replacing the shorter one first
    /// would leave the longer one's ends (`xx`, `yy`) in the report.
    #[test]
    fn a_value_containing_another_is_replaced_whole_and_leaves_nothing_behind() {
        let mut s = Scrubber::new();
        s.add("short", "abcd");
        s.add("long", "xxabcdyy");
        s.add("prefixed", "abcdzz");
        assert_eq!(s.scrub("xxabcdyy"), "[REDACTED secret:long]");
        assert_eq!(s.scrub("abcdzz"), "[REDACTED secret:prefixed]");
        assert_eq!(s.scrub("-abcd-"), "-[REDACTED secret:short]-");
        assert_eq!(
            s.scrub("abcdzzxxabcdyyabcd"),
            "[REDACTED secret:prefixed][REDACTED secret:long][REDACTED secret:short]"
        );
        // Whatever order the values were added in.
        let mut r = Scrubber::new();
        r.add("prefixed", "abcdzz");
        r.add("long", "xxabcdyy");
        r.add("short", "abcd");
        assert_eq!(r.scrub("abcdzz xxabcdyy"), "[REDACTED secret:prefixed] [REDACTED secret:long]");
    }

    #[test]
    fn every_line_of_a_multi_line_value_is_scrubbed() {
        let mut s = Scrubber::new();
        s.add("tls/key", "-----BEGIN KEY-----\nCANARYpartA\r\n  CANARYpartB  \n}\n");
        s.add("one", "CANARYsolo\n");
        let diff = "-CANARYpartA\n-  CANARYpartB\n+new\n }\n tail CANARYpartB and CANARYsolo.";
        let out = s.scrub(diff);
        assert!(!out.contains("CANARY"), "{out}");
        assert!(out.contains("[REDACTED secret:tls/key]") && out.contains("[REDACTED secret:one]"), "{out}");
        // Short lines stay: they carry nothing and would blank out every report.
        assert!(out.contains(" }\n"), "{out}");
    }

    #[test]
    fn scrub_names_the_key() {
        let mut s = Scrubber::new();
        s.add("vigo/db/password", "hunter2hunter2");
        s.add("vigo/other", "hunter2");
        assert_eq!(
            s.scrub("pw=hunter2hunter2 and hunter2!"),
            "pw=[REDACTED secret:vigo/db/password] and [REDACTED secret:vigo/other]!"
        );
    }

    /// What a command can do to a value before printing it: every spelling goes.
    #[test]
    fn encoded_values_are_scrubbed() {
        use base64::Engine;
        let value = "Cy7hQ+/=&x y'z";
        let mut s = Scrubber::new();
        s.add("k", value);
        let hex: String = value.bytes().map(|b| format!("{b:02x}")).collect();
        let mut printed = vec![
            hex.clone(),
            hex.to_uppercase(),
            "Cy7hQ%2B%2F%3D%26x%20y%27z".to_string(),
            "Cy7hQ%2B/%3D%26x%20y%27z".to_string(),
            "Cy7hQ%2B%2F%3D%26x+y%27z".to_string(),
            serde_json::to_string(value).unwrap(),
            r"Cy7hQ+/=\&x\ y\'z".to_string(),
            r"'Cy7hQ+/=&x y'\''z'".to_string(),
        ];
        for prefix in ["", "a", "ab"] {
            for engine in
                [&base64::engine::general_purpose::STANDARD, &base64::engine::general_purpose::URL_SAFE]
            {
                printed.push(engine.encode(format!("{prefix}{value}")));
            }
        }
        for p in printed {
            let out = s.scrub(&format!("out: {p}\n"));
            assert!(out.contains("[REDACTED secret:k]"), "{p:?} -> {out:?}");
            for (form, needle) in
                crate::placeholder::forms::forms(value.as_bytes()).iter().map(|f| (f, f.as_str()))
            {
                assert!(!out.contains(needle), "{form:?} survived in {out:?}");
            }
        }
    }

    /// Output cut at a size limit can end in the middle of a value: that beginning goes too.
    #[test]
    fn a_value_cut_at_the_end_of_bounded_output_leaves_no_prefix() {
        let mut s = Scrubber::new();
        s.add("k", "SuperSecretValue42");
        for cut in 1.."SuperSecretValue42".len() {
            let text = format!("line one\nthe value is {}", &"SuperSecretValue42"[..cut]);
            assert_eq!(s.scrub_cut(&text), "line one\nthe value is ", "cut {cut}");
        }
        assert_eq!(s.scrub_cut("all SuperSecretValue42 fine"), "all [REDACTED secret:k] fine");
        assert_eq!(s.scrub_cut("nothing to hide."), "nothing to hide.");
        assert_eq!(s.scrub_cut("ends with é"), "ends with é");
    }
}
