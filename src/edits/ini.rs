//! `ini`: one `key = value` in a section (or before the first section when `section` is empty).
//! Present: the first line of the key in that section gets the value (a line that already has
//! it is left as written, spacing included); a missing key is added after the section's last
//! entry, and a missing section at the end of the file. Absent: every line of the key in that
//! section goes. Lines starting with `;` or `#` are comments.

use super::lines::Lines;
use super::one_line;
use crate::util::text::excerpt;

#[derive(Debug)]
pub struct IniEdit {
    section: String,
    key: String,
    value: Option<String>,
    pub present: bool,
}

/// What one line of an ini file is.
enum Kind<'a> {
    Section(&'a str),
    Entry { key: &'a str, value: &'a str },
    Other,
}

fn classify(line: &str) -> Kind<'_> {
    let t = line.trim();
    if t.starts_with(';') || t.starts_with('#') {
        return Kind::Other;
    }
    if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return Kind::Section(name.trim());
    }
    match t.split_once('=') {
        Some((k, v)) => Kind::Entry { key: k.trim(), value: v.trim() },
        None => Kind::Other,
    }
}

impl IniEdit {
    pub(super) fn parse(get: &dyn Fn(&str) -> Option<String>, present: bool) -> Result<IniEdit, String> {
        let section = get("section").unwrap_or_default().trim().to_string();
        let key = get("key").unwrap_or_default().trim().to_string();
        let value = get("value").map(|v| v.trim().to_string());
        one_line("section", &section)?;
        one_line("key", &key)?;
        if let Some(v) = &value {
            one_line("value", v)?;
        }
        if section.contains(']') || section.contains('[') {
            return Err(format!(
                "`section` \"{}\" is the name between the brackets, without them",
                excerpt(&section)
            ));
        }
        if key.is_empty() || key.contains('=') || key.starts_with(['[', ';', '#']) {
            return Err(format!(
                "`key` \"{}\" is not an ini key (not empty, no `=`, not starting with [, ; or #)",
                excerpt(&key)
            ));
        }
        if present && value.is_none() {
            return Err("ini needs `value` unless ensure is absent".into());
        }
        Ok(IniEdit { section, key, value, present })
    }

    pub(super) fn apply(&self, text: &str) -> String {
        let mut lines = Lines::split(text);
        // The section's span runs from its header (the top of the file for the unnamed
        // section) to the next header; a new key goes after its last line that is not blank.
        let mut in_section = self.section.is_empty();
        let mut found = self.section.is_empty();
        let mut last_line: Option<usize> = None;
        let mut entries = Vec::new();
        for (i, l) in lines.lines.iter().enumerate() {
            match classify(l) {
                Kind::Section(name) => {
                    in_section = name == self.section && !found;
                    if in_section {
                        found = true;
                        last_line = Some(i);
                    }
                }
                Kind::Entry { key, .. } if in_section && key == self.key => {
                    entries.push(i);
                    last_line = Some(i);
                }
                _ if in_section && !l.trim().is_empty() => last_line = Some(i),
                _ => {}
            }
        }
        if !self.present {
            for &i in entries.iter().rev() {
                lines.lines.remove(i);
            }
            return lines.join();
        }
        let value = self.value.as_deref().unwrap_or_default();
        let wanted = format!("{} = {value}", self.key);
        if let Some(&first) = entries.first() {
            if let Kind::Entry { value: has, .. } = classify(&lines.lines[first]) {
                if has == value {
                    return text.to_string();
                }
            }
            lines.lines[first] = wanted.into();
            return lines.join();
        }
        if !found {
            if lines.lines.last().is_some_and(|l| !l.trim().is_empty()) {
                lines.push(String::new());
            }
            lines.push(format!("[{}]", self.section));
            lines.push(wanted);
            return lines.join();
        }
        let at = last_line.map_or(0, |i| i + 1);
        if at == lines.lines.len() {
            lines.push(wanted);
        } else {
            lines.lines.insert(at, wanted.into());
        }
        lines.join()
    }
}
