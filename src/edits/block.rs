//! `blockinfile`: lines kept between a BEGIN and an END marker line. Present: the block is
//! replaced where the markers are, or added at the end with them. Absent: markers and block go.

use super::lines::{text_lines, Lines};
use super::one_line;
use crate::util::text::excerpt;

#[derive(Debug)]
pub struct BlockEdit {
    begin: String,
    end: String,
    block: Vec<String>,
    pub present: bool,
}

impl BlockEdit {
    pub(super) fn parse(
        get: &dyn Fn(&str) -> Option<String>,
        name: &str,
        present: bool,
    ) -> Result<BlockEdit, String> {
        let marker = get("marker").unwrap_or_else(|| format!("# {{mark}} VIGO MANAGED BLOCK {name}"));
        one_line("marker", &marker)?;
        if !marker.contains("{mark}") {
            return Err(format!(
                "`marker` \"{}\" must contain {{mark}} (it becomes BEGIN and END)",
                excerpt(&marker)
            ));
        }
        let begin = marker.replace("{mark}", "BEGIN");
        let end = marker.replace("{mark}", "END");
        let block = text_lines(&get("block").unwrap_or_default());
        if let Some(l) = block.iter().find(|l| **l == begin || **l == end) {
            return Err(format!(
                "`block` holds the marker line \"{}\" itself; the next run could not find its block",
                excerpt(l)
            ));
        }
        Ok(BlockEdit { begin, end, block, present })
    }

    pub(super) fn apply(&self, text: &str) -> Result<String, String> {
        let mut lines = Lines::split(text);
        let begin = lines.lines.iter().position(|l| *l == self.begin);
        let end = lines.lines.iter().position(|l| *l == self.end);
        let wanted = || {
            let mut v = vec![self.begin.clone()];
            v.extend(self.block.iter().cloned());
            v.push(self.end.clone());
            v
        };
        match (begin, end) {
            (Some(b), Some(e)) if b < e => {
                let replacement = if self.present { wanted() } else { Vec::new() };
                lines.lines.splice(b..=e, replacement.into_iter().map(Into::into));
            }
            (None, None) if self.present => {
                for l in wanted() {
                    lines.push(l);
                }
            }
            (None, None) => {}
            _ => {
                return Err(format!(
                    "the file has the marker lines \"{}\" and \"{}\" out of order or one without the other; \
                     fix the file by hand, then the next run manages the block again",
                    excerpt(&self.begin),
                    excerpt(&self.end)
                ))
            }
        }
        Ok(lines.join())
    }
}
