//! The version a built binary reports. Normally the crate's version; a release engineer may
//! stamp another into a built binary (`vigocli release stamp`), which is how the tests make a
//! "next" version without a second build. The stamp lives in a static the compiler cannot fold:
//! a fixed marker followed by a NUL-padded field, found and rewritten in the file.

use std::sync::OnceLock;

const MARK_LEN: usize = 16;
const FIELD_LEN: usize = 48;
/// The marker, XOR-masked so that its plain bytes appear in the binary only inside `STAMP`
/// (the stamping code searches for the unmasked form it builds at run time).
const MASKED_MARK: [u8; MARK_LEN] = mask(*b"VIGO-VERSTAMP-v1");
const MASK: u8 = 0x5a;

const fn mask(bytes: [u8; MARK_LEN]) -> [u8; MARK_LEN] {
    let mut out = [0u8; MARK_LEN];
    let mut i = 0;
    while i < MARK_LEN {
        out[i] = bytes[i] ^ MASK;
        i += 1;
    }
    out
}

const fn stamp_area() -> [u8; MARK_LEN + FIELD_LEN] {
    let mark = mask(MASKED_MARK);
    let mut out = [0u8; MARK_LEN + FIELD_LEN];
    let mut i = 0;
    while i < MARK_LEN {
        out[i] = mark[i];
        i += 1;
    }
    out
}

#[used]
static STAMP: [u8; MARK_LEN + FIELD_LEN] = stamp_area();

fn marker() -> [u8; MARK_LEN] {
    let mut m = MASKED_MARK;
    for b in &mut m {
        *b ^= MASK;
    }
    m
}

/// The version the crate was built as (what an unstamped binary reports).
pub fn crate_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// This binary's version: the stamped one if there is a valid stamp, else the crate's.
pub fn version() -> &'static str {
    static VERSION: OnceLock<&'static str> = OnceLock::new();
    VERSION.get_or_init(|| {
        let area: &'static [u8; MARK_LEN + FIELD_LEN] = std::hint::black_box(&STAMP);
        let field = &area[MARK_LEN..];
        let len = field.iter().position(|&b| b == 0).unwrap_or(FIELD_LEN);
        match std::str::from_utf8(&field[..len]) {
            Ok(v) if !v.is_empty() && semver::Version::parse(v).is_ok() => v,
            _ => crate_version(),
        }
    })
}

/// The target triple this binary was built for.
pub const TARGET: &str = env!("VIGO_TARGET");

/// The version stamped into a binary file's bytes (None: no stamp area, or an empty one).
pub fn stamped_version(binary: &[u8]) -> Option<String> {
    let at = area_of(binary).ok()?;
    let field = &binary[at..at + FIELD_LEN];
    let len = field.iter().position(|&b| b == 0).unwrap_or(FIELD_LEN);
    let v = std::str::from_utf8(&field[..len]).ok()?;
    (!v.is_empty() && semver::Version::parse(v).is_ok()).then(|| v.to_string())
}

/// Where the stamp field of `binary` starts.
fn area_of(binary: &[u8]) -> Result<usize, String> {
    let mark = marker();
    let found: Vec<usize> =
        binary.windows(MARK_LEN).enumerate().filter(|(_, w)| *w == mark).map(|(i, _)| i).collect();
    match found.as_slice() {
        [one] if one + MARK_LEN + FIELD_LEN <= binary.len() => Ok(one + MARK_LEN),
        [] => Err("this file holds no version stamp area: is it a vigo binary?".into()),
        _ => Err("this file holds more than one version stamp area".into()),
    }
}

/// Writes `version` into the stamp area of `binary` (its bytes). Exactly one stamp area must be
/// there; the version must be semver and fit.
pub fn stamp(binary: &mut [u8], version: &str) -> Result<(), String> {
    semver::Version::parse(version).map_err(|e| format!("{version:?} is not a semver version: {e}"))?;
    if version.len() > FIELD_LEN {
        return Err(format!("a version is at most {FIELD_LEN} bytes"));
    }
    let at = area_of(binary)?;
    let field = &mut binary[at..at + FIELD_LEN];
    field.fill(0);
    field[..version.len()].copy_from_slice(version.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_is_found_once_and_rewritten() {
        let mut file = vec![1u8; 100];
        file.extend_from_slice(&stamp_area());
        file.extend_from_slice(&[2u8; 10]);
        assert_eq!(stamped_version(&file), None);
        stamp(&mut file, "1.2.3").unwrap();
        assert_eq!(stamped_version(&file).as_deref(), Some("1.2.3"));
        assert_eq!(&file[100 + MARK_LEN..100 + MARK_LEN + 6], b"1.2.3\0");
        stamp(&mut file, "1.2").unwrap_err();
        let mut twice = file.clone();
        twice.extend_from_slice(&stamp_area());
        assert!(stamp(&mut twice, "2.0.0").unwrap_err().contains("more than one"));
        assert!(stamp(&mut [0u8; 10], "2.0.0").unwrap_err().contains("no version stamp"));
        assert!(semver::Version::parse(version()).is_ok());
    }
}
