//! A short, bounded line diff for non-secret file content. It trims the common head and tail
//! and shows the differing middle: linear time, enough for a report, never the whole file.

const MAX_LINES: usize = 50;

pub(crate) fn line_diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let head = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let tail = a[head..].iter().rev().zip(b[head..].iter().rev()).take_while(|(x, y)| x == y).count();
    let removed = &a[head..a.len() - tail];
    let added = &b[head..b.len() - tail];
    let mut out = vec![format!("@@ -{},{} +{},{} @@", head + 1, removed.len(), head + 1, added.len())];
    out.extend(removed.iter().map(|l| format!("-{l}")));
    out.extend(added.iter().map(|l| format!("+{l}")));
    if removed.is_empty() && added.is_empty() {
        // Same lines, different bytes: only the trailing newline differs.
        out.push("\\ trailing newline changed".into());
    }
    let total = out.len();
    if total > MAX_LINES {
        out.truncate(MAX_LINES);
        out.push(format!("... ({} more diff lines)", total - MAX_LINES));
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_only_the_changed_middle_and_is_bounded() {
        let d = line_diff("a\nb\nc\n", "a\nB\nc\n");
        assert_eq!(d, "@@ -2,1 +2,1 @@\n-b\n+B");
        let big: String = (0..500).map(|i| format!("{i}\n")).collect();
        let d = line_diff("", &big);
        assert_eq!(d.lines().count(), MAX_LINES + 1);
        assert!(d.ends_with("(451 more diff lines)"));
        assert!(line_diff("a", "a\n").contains("trailing newline"));
    }
}
