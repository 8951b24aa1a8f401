//! Reads a checkout of the RustSec advisory database: `crates/<crate>/RUSTSEC-*.md`, each a
//! TOML front matter in a ```` ```toml ```` fence followed by Markdown whose first `# ` line is
//! the title. Bounded: a directory that is not such a checkout is refused with the reason.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Advisory;

/// Advisory files read at most (the real database holds about a thousand).
const MAX_FILES: usize = 20_000;
/// Largest advisory file read.
const MAX_FILE: u64 = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0} has no crates/ directory: give the root of a RustSec advisory-db checkout")]
    NotADatabase(String),
    #[error("{path}: {why}")]
    Bad { path: String, why: String },
    #[error("{0}: more than {MAX_FILES} advisory files; is this the advisory database?")]
    TooMany(String),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

#[derive(Deserialize)]
struct Front {
    advisory: Meta,
    #[serde(default)]
    versions: Versions,
}

/// The fields used here; the rest of an advisory (categories, keywords, cvss, affected
/// functions…) is read past.
#[derive(Deserialize)]
struct Meta {
    id: String,
    package: String,
    date: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    informational: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    withdrawn: Option<String>,
}

#[derive(Deserialize, Default)]
struct Versions {
    #[serde(default)]
    patched: Vec<String>,
    #[serde(default)]
    unaffected: Vec<String>,
}

/// Every advisory under `dir/crates`, withdrawn ones left out, sorted by id.
pub fn read_dir(dir: &Path) -> Result<Vec<Advisory>, ImportError> {
    let crates = dir.join("crates");
    if !crates.is_dir() {
        return Err(ImportError::NotADatabase(dir.display().to_string()));
    }
    let mut files = Vec::new();
    collect(&crates, &mut files, 0)?;
    if files.len() > MAX_FILES {
        return Err(ImportError::TooMany(dir.display().to_string()));
    }
    let mut out = Vec::new();
    for path in files {
        if let Some(a) = read_one(&path)? {
            out.push(a);
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// `.md` files under `dir`, two levels at most (`crates/<crate>/<id>.md`); symlinks skipped.
fn collect(dir: &Path, out: &mut Vec<PathBuf>, depth: u8) -> Result<(), ImportError> {
    let io = |e| ImportError::Io { path: dir.display().to_string(), source: e };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let kind = entry.file_type().map_err(io)?;
        let path = entry.path();
        if kind.is_dir() && depth == 0 {
            collect(&path, out, depth + 1)?;
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "md") {
            out.push(path);
            if out.len() > MAX_FILES {
                return Ok(());
            }
        }
    }
    Ok(())
}

fn read_one(path: &Path) -> Result<Option<Advisory>, ImportError> {
    let shown = path.display().to_string();
    let bad = |why: String| ImportError::Bad { path: shown.clone(), why };
    let meta = std::fs::metadata(path).map_err(|e| ImportError::Io { path: shown.clone(), source: e })?;
    if meta.len() > MAX_FILE {
        return Err(bad(format!("larger than {MAX_FILE} bytes")));
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| ImportError::Io { path: shown.clone(), source: e })?;
    let (front, body) = split_front_matter(&text).ok_or_else(|| bad("no ```toml front matter".into()))?;
    let parsed: Front = basic_toml::from_str(front).map_err(|e| bad(format!("front matter: {e}")))?;
    let a = parsed.advisory;
    if a.withdrawn.is_some() {
        return Ok(None);
    }
    if !a.id.starts_with("RUSTSEC-") && !a.id.starts_with("CVE-") && !a.id.starts_with("GHSA-") {
        return Err(bad(format!("unexpected advisory id {:?}", crate::util::text::excerpt(&a.id))));
    }
    for req in parsed.versions.patched.iter().chain(&parsed.versions.unaffected) {
        semver::VersionReq::parse(req).map_err(|e| bad(format!("version requirement {req:?}: {e}")))?;
    }
    let title = body
        .lines()
        .find_map(|l| l.strip_prefix("# "))
        .map(|t| t.trim().to_string())
        .unwrap_or_else(|| a.id.clone());
    Ok(Some(Advisory {
        url: a.url.unwrap_or_else(|| format!("https://rustsec.org/advisories/{}.html", a.id)),
        id: a.id,
        package: a.package,
        title,
        date: a.date,
        informational: a.informational,
        aliases: a.aliases,
        patched: parsed.versions.patched,
        unaffected: parsed.versions.unaffected,
    }))
}

/// (TOML, the Markdown after it) of a ```` ```toml ```` fenced front matter.
fn split_front_matter(text: &str) -> Option<(&str, &str)> {
    let rest = text.trim_start().strip_prefix("```toml")?;
    let end = rest.find("\n```")?;
    Some((&rest[..end], &rest[end + 4..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/advisories")
    }

    #[test]
    fn the_fixture_database_reads_and_withdrawn_advisories_are_left_out() {
        let all = read_dir(&fixtures()).unwrap();
        let ids: Vec<&str> = all.iter().map(|a| a.id.as_str()).collect();
        assert!(ids.contains(&"RUSTSEC-2099-0001"), "{ids:?}");
        assert!(!ids.contains(&"RUSTSEC-2099-0004"), "withdrawn: {ids:?}");
        let one = all.iter().find(|a| a.id == "RUSTSEC-2099-0001").unwrap();
        assert_eq!(one.package, "ring");
        assert!(one.title.starts_with("Fixture:"), "{}", one.title);
        assert_eq!(one.aliases, ["CVE-2099-0001"]);
    }

    #[test]
    fn a_directory_that_is_not_the_database_is_refused_with_the_reason() {
        let e = read_dir(Path::new("/nonexistent-vigo")).unwrap_err();
        assert!(e.to_string().contains("crates/"), "{e}");
        let dir = std::env::temp_dir().join(format!("vigo-adv-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("crates/x")).unwrap();
        std::fs::write(dir.join("crates/x/RUSTSEC-2099-9999.md"), "# no front matter\n").unwrap();
        let e = read_dir(&dir).unwrap_err();
        assert!(e.to_string().contains("front matter"), "{e}");
        std::fs::write(
            dir.join("crates/x/RUSTSEC-2099-9999.md"),
            "```toml\n[advisory]\nid = \"RUSTSEC-2099-9999\"\npackage = \"x\"\ndate = \"2099-01-01\"\n[versions]\npatched = [\"not a version\"]\n```\n# T\n",
        )
        .unwrap();
        let e = read_dir(&dir).unwrap_err();
        assert!(e.to_string().contains("version requirement"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
