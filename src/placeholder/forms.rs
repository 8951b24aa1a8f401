//! The spellings of one secret value that a command or a report can carry: the value itself
//! and the encodings a command is likely to put it through (hex, base64 at every alignment,
//! URL-encoding, JSON and shell escaping, and the lines of hex and base64 as `xxd -p`,
//! `base64` and `openssl base64` wrap them). The scrubber removes each of them; the canary
//! sweep (`tests/canary_sweep.rs`) searches for the same list.
//!
//! A binary value (not UTF-8) cannot occur in a report as it is: reports are text, and command
//! output becomes text lossily (each invalid sequence turns into U+FFFD). Its spellings are that
//! lossy reading and the encodings of its bytes; JSON and shell escaping apply to text only.

use base64::Engine;
use zeroize::Zeroizing;

/// Encoded spellings shorter than this are not scrubbed on their own: a 2-character base64
/// fragment occurs everywhere and says nothing about the value.
const MIN_FORM: usize = 4;

/// Values up to this size also have their wrapped hex and base64 lines listed (a larger one
/// would make tens of thousands of needles).
const MAX_WRAPPED: usize = 64 * 1024;

/// Every spelling of `value` worth scrubbing, the value itself (or its lossy reading) first,
/// without duplicates. Each is as secret as the value: they are zeroized when dropped, as are
/// the buffers used to make them.
pub(crate) fn forms(value: &[u8]) -> Vec<Zeroizing<String>> {
    let text = std::str::from_utf8(value).ok();
    // The value itself is scrubbed whatever its length.
    let first = match text {
        Some(text) => Some(Zeroizing::new(text.to_string())),
        None => lossy_form(value),
    };
    let mut out: Vec<Zeroizing<String>> = first.into_iter().filter(|f| !f.is_empty()).collect();
    let mut push = |form: Zeroizing<String>| {
        if form.len() >= MIN_FORM && !out.contains(&form) {
            out.push(form);
        }
    };
    let hex: Zeroizing<String> = Zeroizing::new(value.iter().map(|b| format!("{b:02x}")).collect());
    push(Zeroizing::new(hex.to_uppercase()));
    for form in url_forms(value) {
        push(form);
    }
    for form in base64_forms(value) {
        push(form);
    }
    for form in wrapped_forms(value, &hex) {
        push(form);
    }
    push(hex);
    if let Some(text) = text {
        for form in json_forms(text) {
            push(form);
        }
        for form in shell_forms(text) {
            push(form);
        }
    }
    out
}

/// The lossy reading of a binary value (see `lossy_core`), unless it holds nothing but U+FFFD:
/// that tells nothing of the value (just how many invalid sequences it has), and scrubbing it
/// would blank out any binary output.
pub(crate) fn lossy_form(value: &[u8]) -> Option<Zeroizing<String>> {
    Some(lossy_core(value)).filter(|c| c.chars().any(|c| c != char::REPLACEMENT_CHARACTER))
}

/// How a binary value reads inside text decoded lossily (`String::from_utf8_lossy`, as command
/// output is): the part of it whose decoding does not depend on the bytes around it. Up to three
/// leading continuation bytes may complete a character begun before the value, and a character
/// begun in its last bytes may be completed by what follows; both are left out.
fn lossy_core(value: &[u8]) -> Zeroizing<String> {
    let start = value.iter().take(3).take_while(|b| *b & 0xc0 == 0x80).count();
    let rest = &value[start..];
    let mut end = rest.len();
    for back in 1..=rest.len().min(3) {
        let b = rest[rest.len() - back];
        if b & 0xc0 == 0x80 {
            continue;
        }
        let needs = match b {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => 1,
        };
        if needs > back {
            end = rest.len() - back;
        }
        break;
    }
    Zeroizing::new(String::from_utf8_lossy(&rest[..end]).into_owned())
}

/// The lines of the value's hex as `xxd -p` prints them (60 characters), and of its base64 as
/// `base64` (76) and `openssl base64` (64) print them: a wrapped encoding is not one string.
fn wrapped_forms(value: &[u8], hex: &str) -> Vec<Zeroizing<String>> {
    use base64::Engine;
    if value.len() > MAX_WRAPPED {
        return Vec::new();
    }
    let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(value));
    let mut out = Vec::new();
    for (encoded, width) in [(hex, 60), (b64.as_str(), 76), (b64.as_str(), 64)] {
        if encoded.len() > width {
            // Encodings are ASCII: every byte index is a char boundary.
            out.extend(
                encoded
                    .as_bytes()
                    .chunks(width)
                    .map(|line| Zeroizing::new(String::from_utf8_lossy(line).into_owned())),
            );
        }
    }
    out
}

/// Percent-encoding as the common encoders write it: everything but letters and digits
/// (upper- and lower-case hex), RFC 3986 (`-._~` kept), Python's `quote` (also `/`), and form
/// encoding (space as `+`).
fn url_forms(value: &[u8]) -> Vec<Zeroizing<String>> {
    let encode = |keep: &dyn Fn(u8) -> bool, space_plus: bool, upper: bool| {
        let mut out = Zeroizing::new(String::with_capacity(value.len() * 3));
        for &b in value {
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
        let f = forms(v.as_bytes());
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

    /// A binary value is listed by its lossy reading and the encodings of its bytes; the
    /// wrapped lines of a long value's hex and base64 are listed one by one.
    #[test]
    fn a_binary_value_is_listed_by_its_lossy_reading_and_its_encodings() {
        use base64::Engine;
        let mut v = vec![0x30, 0x82, 0x00, 0xff, b'k', b'e', b'y', 0xfe, b'\n'];
        v.extend((0..100u8).map(|i| i.wrapping_mul(37)));
        let f = forms(&v);
        let lossy = String::from_utf8_lossy(&v).into_owned();
        assert!(lossy.contains(f[0].as_str()) && f[0].contains("\u{fffd}key\u{fffd}\n"), "{:?}", f[0]);
        let hex: String = v.iter().map(|b| format!("{b:02x}")).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&v);
        let mut expected = vec![hex.clone(), hex.to_uppercase(), "0%82%00%FF".to_string()];
        expected.extend(hex.as_bytes().chunks(60).map(|l| String::from_utf8(l.to_vec()).unwrap()));
        expected.extend(b64.as_bytes().chunks(76).map(|l| String::from_utf8(l.to_vec()).unwrap()));
        expected.extend(b64.as_bytes().chunks(64).map(|l| String::from_utf8(l.to_vec()).unwrap()));
        for e in expected {
            assert!(f.iter().any(|x| x.starts_with(e.as_str())), "{e:?} missing");
        }
        assert!(
            !f[1..].iter().any(|x| x.contains('"') || x.contains('\\')),
            "no JSON or shell forms for bytes"
        );
    }

    /// A long text value printed through `base64` or `xxd -p` is wrapped too.
    #[test]
    fn a_long_text_value_is_listed_by_its_wrapped_lines() {
        use base64::Engine;
        let v =
            "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END KEY-----\n";
        let f = forms(v.as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD.encode(v);
        let hex: String = v.bytes().map(|b| format!("{b:02x}")).collect();
        let lines =
            b64.as_bytes().chunks(76).chain(b64.as_bytes().chunks(64)).chain(hex.as_bytes().chunks(60));
        // A last line shorter than MIN_FORM is too short to say anything (see `push`).
        for line in lines.filter(|l| l.len() >= MIN_FORM).map(|l| std::str::from_utf8(l).unwrap()) {
            assert!(f.iter().any(|x| x.as_str() == line), "{line:?} missing from {f:?}");
        }
    }

    /// The lossy core of a value occurs in the lossy reading of any text around it, whatever
    /// bytes come before and after (which may complete or break its first and last characters).
    #[test]
    fn property_the_lossy_core_survives_any_surroundings() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut byte = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Bias towards the bytes that make UTF-8 interesting.
            [0x80, 0xbf, 0xc3, 0xe2, 0xf0, 0x9f, 0xff, b'a', (x >> 8) as u8][(x % 9) as usize]
        };
        for _ in 0..5000 {
            let value: Vec<u8> = (0..1 + (byte() as usize % 9)).map(|_| byte()).collect();
            let before: Vec<u8> = (0..byte() as usize % 4).map(|_| byte()).collect();
            let after: Vec<u8> = (0..byte() as usize % 4).map(|_| byte()).collect();
            let core = lossy_core(&value);
            let around = String::from_utf8_lossy(&[&before[..], &value, &after].concat()).into_owned();
            assert!(
                around.contains(core.as_str()),
                "{before:x?} {value:x?} {after:x?}: {core:?} not in {around:?}"
            );
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
