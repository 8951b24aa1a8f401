//! `repository`: a package source and the key it is signed with. On Debian-family hosts a
//! deb822 file in /etc/apt/sources.list.d with `Signed-By` naming the key's own file in
//! /etc/apt/keyrings (so the key vouches for this source only, not for every source); on
//! rpm hosts a .repo file in /etc/yum.repos.d with `gpgcheck=1` (always) and the key beside
//! the distribution's.

use crate::util::text::excerpt;

#[derive(Debug)]
pub struct Repo {
    pub name: String,
    pub url: String,
    pub suites: String,
    pub components: Vec<String>,
    pub key: Option<String>,
}

const ARMOR: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";

pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if !ok {
        return Err(format!(
            "repository `repo` \"{}\" must be 1-64 of a-z 0-9 . _ - (a file name)",
            excerpt(name)
        ));
    }
    Ok(())
}

impl Repo {
    pub fn check(&self) -> Result<(), String> {
        check_name(&self.name)?;
        let url_ok = ["https://", "http://", "file:/"].iter().any(|p| self.url.starts_with(p))
            && !self.url.chars().any(char::is_whitespace);
        if !url_ok {
            return Err(format!(
                "repository `url` \"{}\" must be an http(s) or file: URL",
                excerpt(&self.url)
            ));
        }
        if self.suites.trim().is_empty() || self.suites.contains('\n') {
            return Err("repository `suites` must be one line (`./` for a flat repository)".into());
        }
        if self.components.iter().any(|c| c.is_empty() || c.contains(char::is_whitespace)) {
            return Err("repository `components` are single words (main, contrib)".into());
        }
        if let Some(key) = &self.key {
            if !key.trim_start().starts_with(ARMOR) {
                return Err(format!("repository `key` must be an ASCII-armored public key ({ARMOR} …)"));
            }
        }
        Ok(())
    }

    pub fn apt_key_path(&self) -> String {
        format!("/etc/apt/keyrings/vigo-{}.asc", self.name)
    }

    pub fn apt_source_path(&self) -> String {
        format!("/etc/apt/sources.list.d/vigo-{}.sources", self.name)
    }

    pub fn apt_source(&self, resource: &str) -> String {
        let mut s = format!(
            "# Managed by Vigo (resource {resource}).\nTypes: deb\nURIs: {}\nSuites: {}\n",
            self.url,
            self.suites.trim()
        );
        if !self.components.is_empty() {
            s += &format!("Components: {}\n", self.components.join(" "));
        }
        if self.key.is_some() {
            s += &format!("Signed-By: {}\n", self.apt_key_path());
        }
        s
    }

    pub fn rpm_key_path(&self) -> String {
        format!("/etc/pki/rpm-gpg/RPM-GPG-KEY-vigo-{}", self.name)
    }

    pub fn rpm_repo_path(&self) -> String {
        format!("/etc/yum.repos.d/vigo-{}.repo", self.name)
    }

    pub fn rpm_repo(&self, resource: &str) -> String {
        let mut s = format!(
            "# Managed by Vigo (resource {resource}).\n[vigo-{name}]\nname={name}\nbaseurl={}\nenabled=1\n",
            self.url,
            name = self.name
        );
        // Packages are checked whatever: without a key of its own, against keys rpm has.
        s += "gpgcheck=1\n";
        if self.key.is_some() {
            s += &format!("gpgkey=file://{}\n", self.rpm_key_path());
        }
        s
    }
}
