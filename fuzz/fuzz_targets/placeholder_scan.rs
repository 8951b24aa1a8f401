//! Arbitrary text through the marker scanner, substitution and scrubbing. Nothing may panic,
//! a successful substitution leaves no marker behind, and scrubbing removes the planted value.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../src/placeholder.rs"]
#[allow(dead_code)]
mod placeholder;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let found = placeholder::find_markers(text);
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
