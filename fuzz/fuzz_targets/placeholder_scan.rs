//! Arbitrary text through the marker scanner, substitution and scrubbing. Nothing may panic,
//! a scanned key (with or without `#field`) is a valid key, a successful substitution leaves no marker behind, and scrubbing removes the planted value.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/placeholder.rs"]
#[allow(dead_code)]
mod placeholder;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let found = placeholder::find_markers(text);
    // Every key the scanner accepts obeys the key grammar (fields after '#' included) and
    // makes the same marker again.
    for f in found.iter().flatten() {
        assert!(placeholder::validate_key(&f.key).is_ok(), "scanned an invalid key {:?}", f.key);
        assert_eq!(placeholder::marker(&f.key).unwrap(), text[f.start..f.end]);
    }
    if let Ok(out) = placeholder::substitute(text, |_| Some("value")) {
        assert!(found.is_ok());
        assert!(!placeholder::contains_marker(&out), "a marker survived substitution: {out:?}");
    }
    if let Some((value, rest)) = text.split_once('\n') {
        if !value.is_empty() && !"[REDACTED secret:k]".contains(value) {
            let mut s = placeholder::Scrubber::new();
            s.add("k", value);
            assert!(!s.scrub(rest).contains(value), "scrub left {value:?} in place");
        }
    }
});
