//! The spellings of one secret value that a command or a report can carry: the value itself
//! and the encodings a command is likely to put it through (hex, base64 at every alignment,
//! URL-encoding, JSON and shell escaping). The scrubber removes each of them; the canary sweep
//! (`tests/canary_sweep.rs`) searches for the same list.

use base64::Engine;
use zeroize::Zeroizing;

/// Encoded spellings shorter than this are not scrubbed on their own: a 2-character base64
/// fragment occurs everywhere and says nothing about the value.
const MIN_FORM: usize = 4;

/// Every spelling of `value` worth scrubbing, the value itself first, without duplicates.
/// Each is as secret as the value: they are zeroized when dropped, as are the buffers used to
/// make them.
pub(crate) fn forms(value: &str) -> Vec<Zeroizing<String>> {
    let mut out = vec![Zeroizing::new(value.to_string())];
    let mut push = |form: Zeroizing<String>| {
        if form.len() >= MIN_FORM && !out.contains(&form) {
            out.push(form);
        }
    };
    let hex: Zeroizing<String> = Zeroizing::new(value.bytes().map(|b| format!("{b:02x}")).collect());
    push(Zeroizing::new(hex.to_uppercase()));
    push(hex);
    for form in url_forms(value) {
        push(form);
    }
    for form in base64_forms(value.as_bytes()) {
        push(form);
    }
    for form in json_forms(value) {
        push(form);
    }
    for form in shell_forms(value) {
        push(form);
    }
    out
}

/// Percent-encoding as the common encoders write it: everything but letters and digits
/// (upper- and lower-case hex), RFC 3986 (`-._~` kept), Python's `quote` (also `/`), and form
/// encoding (space as `+`).
fn url_forms(value: &str) -> Vec<Zeroizing<String>> {
    let encode = |keep: &dyn Fn(u8) -> bool, space_plus: bool, upper: bool| {
        let mut out = Zeroizing::new(String::with_capacity(value.len() * 3));
        for b in value.bytes() {
            match b {
                b' ' if space_plus => out.push('+'),
                b if keep(b) => out.push(b as char),
                b if upper => out.push_str(&format!("%{b:02X}")),
                b => out.push_str(&format!("%{b:02x}")),
            }
        }
        out
    };
    let alnum = |b: u8| b.is_ascii_alphanumeric();
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
    let python = |b: u8| unreserved(b) || b == b'/';
    let form = |b: u8| b.is_ascii_alphanumeric() || b"*-._".contains(&b);
    vec![
        encode(&alnum, false, true),
        encode(&alnum, false, false),
        encode(&unreserved, false, true),
        encode(&python, false, true),
        encode(&form, true, true),
    ]
}

/// The part of the base64 (standard and URL-safe alphabet) of `value` that does not depend on
/// the bytes around it, for each of the three alignments the value can start at. Characters
/// at either end that mix value bits with neighbouring bits are left out: they hold at most a
/// few bits of the value.
fn base64_forms(value: &[u8]) -> Vec<Zeroizing<String>> {
    let mut out = Vec::new();
    for engine in
        [&base64::engine::general_purpose::STANDARD_NO_PAD, &base64::engine::general_purpose::URL_SAFE_NO_PAD]
    {
        for offset in 0..3usize {
            let mut data = Zeroizing::new(vec![0u8; offset]);
            data.extend_from_slice(value);
            data.extend_from_slice(&[0, 0]);
            let encoded = Zeroizing::new(engine.encode(&*data));
            // Character c carries input bits [6c, 6c+6); the value owns bits [8*offset, 8*(offset+n)).
            let first = (8 * offset).div_ceil(6);
            let end = (8 * (offset + value.len())) / 6;
            if end > first {
                out.push(Zeroizing::new(encoded[first..end].to_string()));
            }
        }
    }
    out
}

/// A JSON string body as serde_json writes it, as ASCII-only encoders write it (`\u00e9`, as
/// Python's `json.dumps` does), and with `/` escaped (as PHP does).
fn json_forms(value: &str) -> Vec<Zeroizing<String>> {
    let quoted = Zeroizing::new(serde_json::to_string(value).unwrap_or_default());
    let plain = Zeroizing::new(quoted[1..quoted.len() - 1].to_string());
    let mut ascii = Zeroizing::new(String::new());
    for c in plain.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                ascii.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    let slashed = Zeroizing::new(plain.replace('/', "\\/"));
    vec![plain, ascii, slashed]
}

/// The value inside single quotes (`'` as `'\''`), inside double quotes, and escaped with
/// backslashes the way bash's `printf %q` does.
fn shell_forms(value: &str) -> Vec<Zeroizing<String>> {
    let single = Zeroizing::new(value.replace('\'', r"'\''"));
    let mut double = Zeroizing::new(String::new());
    let mut backslashed = Zeroizing::new(String::new());
    for c in value.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            double.push('\\');
        }
        double.push(c);
        if " \t&'\"$`\\^!*?[]{}(),;|<>".contains(c) {
            backslashed.push('\\');
        }
        backslashed.push(c);
    }
    vec![single, double, backslashed]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_encoding_of_a_value_is_listed() {
        let v = "Cy9 a+/=&é'\"";
        let f = forms(v);
        assert_eq!(*f[0], v);
        let hex: String = v.bytes().map(|b| format!("{b:02x}")).collect();
        for expected in [
            hex.as_str(),
            &hex.to_uppercase(),
            "Cy9%20a%2B%2F%3D%26%C3%A9%27%22",
            "Cy9%20a%2b%2f%3d%26%c3%a9%27%22",
            "Cy9%20a%2B/%3D%26%C3%A9%27%22",
            "Cy9+a%2B%2F%3D%26%C3%A9%27%22",
            r#"Cy9 a+/=&é'\""#,
            r#"Cy9 a+/=&\u00e9'\""#,
            r#"Cy9 a+\/=&é'\""#,
            r#"Cy9 a+/=&é'\''""#,
            r#"Cy9\ a+/=\&é\'\""#,
        ] {
            assert!(f.iter().any(|x| x.as_str() == expected), "{expected:?} missing from {f:?}");
        }
    }

    #[test]
    fn base64_forms_occur_in_the_encoding_at_every_alignment_and_surroundings() {
        let v = b"a value of some length!";
        let forms = base64_forms(v);
        for engine in [&base64::engine::general_purpose::STANDARD, &base64::engine::general_purpose::URL_SAFE]
        {
            for before in ["", "x", "xy", "xyz"] {
                for after in ["", "1", "12"] {
                    let text = engine.encode([before.as_bytes(), v, after.as_bytes()].concat());
                    assert!(forms.iter().any(|f| text.contains(f.as_str())), "{before:?} {after:?} {text}");
                }
            }
        }
        // At most one character on each side of the value's bytes is not covered.
        let text = base64::engine::general_purpose::STANDARD.encode(v);
        let longest = forms.iter().filter(|f| text.contains(f.as_str())).map(|f| f.len()).max().unwrap();
        assert!(text.trim_end_matches('=').len() - longest <= 1, "{text} {forms:?}");
    }
}
