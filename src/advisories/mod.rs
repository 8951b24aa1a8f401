//! RustSec advisories against the crates compiled into this binary. The list of crates and
//! versions is embedded at build time from `Cargo.lock` (build.rs); the advisories come from a
//! checkout of the RustSec advisory database that the operator imports offline
//! (`vigocli advisories import DIR`) into the database; the `/security` page matches the two.

mod parse;

pub use parse::read_dir;

/// One advisory as imported (withdrawn ones are not kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advisory {
    pub id: String,
    pub package: String,
    pub title: String,
    /// `YYYY-MM-DD`, as the advisory gives it.
    pub date: String,
    pub url: String,
    /// `unmaintained`, `unsound`, `notice`…, or None for a vulnerability.
    pub informational: Option<String>,
    pub aliases: Vec<String>,
    /// Version requirements (`>= 1.2.3, < 1.3`) of the fixed releases.
    pub patched: Vec<String>,
    /// Version requirements of releases the issue never touched.
    pub unaffected: Vec<String>,
}

/// The crates compiled into this binary as (name, exact version): the packages of `Cargo.lock`
/// reachable from vigo's own normal dependencies (build.rs). It errs on the side of listing:
/// the build-time helpers of dependencies and crates of other platforms stay in.
pub fn compiled_in() -> Vec<(&'static str, &'static str)> {
    include_str!(concat!(env!("OUT_DIR"), "/dependencies.txt"))
        .lines()
        .filter_map(|l| l.split_once(' '))
        .collect()
}

impl Advisory {
    /// Whether `version` is affected: neither patched nor unaffected. A requirement that does
    /// not parse is read as matching nothing, so such an advisory errs towards "affected".
    pub fn affects(&self, version: &str) -> bool {
        let Ok(v) = semver::Version::parse(version) else { return true };
        let matches = |reqs: &[String]| {
            reqs.iter().any(|r| semver::VersionReq::parse(r).is_ok_and(|req| matches_req(&req, &v)))
        };
        !matches(&self.patched) && !matches(&self.unaffected)
    }
}

/// Whether `v` is in `req`, pre-releases included: semver leaves a pre-release out of any range
/// that does not name one, but RustSec ranges are meant over every release (`1.2.0-rc.1` is
/// below `>= 1.2.0`, so not patched by it).
fn matches_req(req: &semver::VersionReq, v: &semver::Version) -> bool {
    req.comparators.iter().all(|c| comparator_matches(c, v))
}

fn comparator_matches(c: &semver::Comparator, v: &semver::Version) -> bool {
    use semver::Op;
    let full = c.minor.is_some() && c.patch.is_some();
    let bound = semver::Version {
        major: c.major,
        minor: c.minor.unwrap_or(0),
        patch: c.patch.unwrap_or(0),
        pre: c.pre.clone(),
        build: semver::BuildMetadata::EMPTY,
    };
    let plain = semver::Version { build: semver::BuildMetadata::EMPTY, ..v.clone() };
    match c.op {
        Op::GreaterEq => plain >= bound,
        Op::Less => plain < bound,
        Op::Greater if full => plain > bound,
        Op::LessEq if full => plain <= bound,
        Op::Exact if full => plain == bound,
        // Partial bounds, tilde, caret and wildcards: semver's own reading (on the release).
        _ => semver::VersionReq { comparators: vec![c.clone()] }
            .matches(&semver::Version::new(v.major, v.minor, v.patch)),
    }
}

/// The advisories that affect a crate compiled in, with that crate's version.
pub fn matching<'a>(
    advisories: &'a [Advisory],
    crates: &[(&'static str, &'static str)],
) -> Vec<(&'a Advisory, &'static str)> {
    let mut out = Vec::new();
    for a in advisories {
        for (_, version) in crates.iter().filter(|(n, _)| *n == a.package) {
            if a.affects(version) {
                out.push((a, *version));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adv(patched: &[&str], unaffected: &[&str]) -> Advisory {
        Advisory {
            id: "RUSTSEC-0000-0000".into(),
            package: "x".into(),
            title: "t".into(),
            date: "2024-01-01".into(),
            url: String::new(),
            informational: None,
            aliases: vec![],
            patched: patched.iter().map(|s| s.to_string()).collect(),
            unaffected: unaffected.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_version_is_affected_unless_patched_or_unaffected() {
        let a = adv(&[">= 1.18.4, < 1.19.0", ">= 1.20.3"], &["< 0.5"]);
        for (v, affected) in [
            ("1.18.3", true),
            ("1.18.4", false),
            ("1.19.9", true),
            ("1.20.3", false),
            ("2.0.0", false),
            ("0.4.9", false),
            ("0.5.0", true),
            ("1.20.3-rc.1", true),
        ] {
            assert_eq!(a.affects(v), affected, "{v}");
        }
        assert!(adv(&[], &[]).affects("9.9.9"), "no fix at all");
    }

    #[test]
    fn the_embedded_list_holds_this_builds_crates_and_not_its_build_tools() {
        let crates = compiled_in();
        let has = |n: &str| crates.iter().any(|(c, _)| *c == n);
        assert!(has("ring") && has("rustls") && has("tokio") && has("askama"), "{crates:?}");
        assert!(!has("vigo"), "the crate itself is not a dependency");
        assert!(!has("protox"), "a build dependency of vigo is not compiled in");
        let ring = crates.iter().find(|(c, _)| *c == "ring").unwrap().1;
        assert!(semver::Version::parse(ring).is_ok(), "exact versions: {ring}");
    }
}
