//! `mount`'s line in /etc/fstab: exactly one line for the mount point, with the device, type,
//! options and the dump and pass numbers asked for; other lines for that mount point go.
//! Fields are separated by tabs; a space in a path is written `\040`, as fstab(5) wants.

use super::lines::Lines;
use crate::util::text::excerpt;

#[derive(Debug)]
pub struct FstabEdit {
    fields: [String; 6],
    pub present: bool,
}

/// A path or device as fstab spells it.
fn escape(field: &str) -> String {
    field.replace('\\', "\\134").replace(' ', "\\040").replace('\t', "\\011")
}

/// The mount point of an fstab line, if it is one (not blank, not a comment).
fn mount_point(line: &str) -> Option<&str> {
    let t = line.trim_start();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    t.split_whitespace().nth(1)
}

impl FstabEdit {
    pub(super) fn parse(get: &dyn Fn(&str) -> Option<String>, present: bool) -> Result<FstabEdit, String> {
        let path = get("path").unwrap_or_default();
        if !path.starts_with('/') || path.split('/').any(|s| s == "..") || path.contains('\n') {
            return Err(format!("mount `path` \"{}\" must be an absolute path without ..", excerpt(&path)));
        }
        let device = get("device").unwrap_or_default();
        let fstype = get("fstype").unwrap_or_default();
        let options = get("options").unwrap_or_else(|| "defaults".into());
        if present {
            if device.trim().is_empty() || device.contains('\n') {
                return Err(
                    "a mount needs `device` (a device, UUID=…, LABEL=…, or a name such as tmpfs)".into()
                );
            }
            if fstype.is_empty() || !fstype.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            {
                return Err(format!(
                    "mount `fstype` \"{}\" is not a filesystem type (ext4, xfs, tmpfs, nfs…)",
                    excerpt(&fstype)
                ));
            }
            if options.is_empty() || options.contains(char::is_whitespace) {
                return Err(format!(
                    "mount `options` \"{}\" must be one comma-separated word",
                    excerpt(&options)
                ));
            }
        }
        let number = |name: &str, default: &str| -> Result<String, String> {
            let v = get(name).unwrap_or_else(|| default.into());
            v.trim()
                .parse::<u8>()
                .map(|n| n.to_string())
                .map_err(|_| format!("mount `{name}` must be a small number, not \"{}\"", excerpt(&v)))
        };
        let fields =
            [escape(&device), escape(&path), fstype, options, number("dump", "0")?, number("pass", "0")?];
        Ok(FstabEdit { fields, present })
    }

    pub(super) fn apply(&self, text: &str) -> String {
        let mut lines = Lines::split(text);
        let point = self.fields[1].as_str();
        let mut kept = !self.present;
        lines.lines.retain(|l| {
            if mount_point(l) != Some(point) {
                return true;
            }
            let same = l.split_whitespace().eq(self.fields.iter().map(String::as_str));
            let keep = same && !kept;
            kept |= keep;
            keep
        });
        if !kept {
            lines.push(self.fields.join("\t"));
        }
        lines.join()
    }
}
