//! `host`: one name's line in /etc/hosts. Present: exactly one line gives `hostname` (with its
//! aliases) the address `ip`; the name is taken out of any other line, and a line left with no
//! name goes. Absent: the name is taken out of every line. Comments and other names stay.

use super::lines::Lines;
use crate::util::text::excerpt;

#[derive(Debug)]
pub struct HostEdit {
    ip: String,
    hostname: String,
    aliases: Vec<String>,
    pub present: bool,
}

pub fn check_hostname(attr: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !ok {
        return Err(format!("`{attr}` \"{}\" is not a host name", excerpt(name)));
    }
    Ok(())
}

/// A line's address and names, without its comment; `None` for a blank or comment line.
fn parse_line(line: &str) -> Option<(&str, Vec<&str>, &str)> {
    let (body, comment) = match line.find('#') {
        Some(i) => (&line[..i], &line[i..]),
        None => (line, ""),
    };
    let mut words = body.split_whitespace();
    let ip = words.next()?;
    Some((ip, words.collect(), comment))
}

impl HostEdit {
    pub(super) fn parse(get: &dyn Fn(&str) -> Option<String>, present: bool) -> Result<HostEdit, String> {
        let hostname = get("hostname").unwrap_or_default();
        check_hostname("hostname", &hostname)?;
        let aliases: Vec<String> =
            get("aliases").unwrap_or_default().split_whitespace().map(String::from).collect();
        for a in &aliases {
            check_hostname("aliases", a)?;
        }
        let ip = get("ip").unwrap_or_default();
        if present || !ip.is_empty() {
            ip.parse::<std::net::IpAddr>()
                .map_err(|_| format!("`ip` \"{}\" is not an IPv4 or IPv6 address", excerpt(&ip)))?;
        }
        Ok(HostEdit { ip, hostname, aliases, present })
    }

    fn wanted(&self) -> String {
        let mut line = format!("{}\t{}", self.ip, self.hostname);
        for a in &self.aliases {
            line.push(' ');
            line.push_str(a);
        }
        line
    }

    pub(super) fn apply(&self, text: &str) -> String {
        let mut lines = Lines::split(text);
        let wanted = self.wanted();
        let mut names_wanted = vec![self.hostname.as_str()];
        names_wanted.extend(self.aliases.iter().map(String::as_str));
        let mut kept_ours = !self.present;
        let mut out = Vec::with_capacity(lines.lines.len() + 1);
        for line in lines.lines.drain(..) {
            let Some((ip, names, comment)) = parse_line(&line) else {
                out.push(line);
                continue;
            };
            if !names.contains(&self.hostname.as_str()) {
                out.push(line);
                continue;
            }
            if !kept_ours && ip == self.ip && names == names_wanted {
                kept_ours = true;
                out.push(line);
                continue;
            }
            let rest: Vec<&str> = names.into_iter().filter(|n| *n != self.hostname).collect();
            if !rest.is_empty() {
                let mut l = format!("{ip}\t{}", rest.join(" "));
                if !comment.is_empty() {
                    l.push(' ');
                    l.push_str(comment);
                }
                out.push(l.into());
            }
        }
        lines.lines = out;
        if !kept_ours {
            lines.push(wanted);
        }
        lines.join()
    }
}
