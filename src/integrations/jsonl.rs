//! The file sink: rows appended as JSON Lines (`audit::to_line`) and fsynced before they count,
//! for a log shipper to follow. At start the file's last row is read, so rows already in it are
//! not written twice after a crash; a line cut short by a crash is removed first. A file moved
//! away (log rotation) is simply started again at the next row.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use crate::audit::Row;

#[derive(Clone)]
pub struct JsonlFile {
    path: PathBuf,
}

/// How much of the file's end is read to find its last row.
const TAIL: u64 = 1 << 20;

impl JsonlFile {
    pub fn new(path: &str) -> JsonlFile {
        JsonlFile { path: PathBuf::from(path) }
    }

    fn open(&self) -> Result<File, String> {
        OpenOptions::new()
            .append(true)
            .read(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(|e| format!("{}: {e}", self.path.display()))
    }

    /// The last row in the file (after removing a line cut short), if it holds any.
    pub fn last_seq(&self) -> Result<Option<i64>, String> {
        let shown = self.path.display();
        let mut f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{shown}: {e}")),
        };
        let len = f.metadata().map_err(|e| format!("{shown}: {e}"))?.len();
        let start = len.saturating_sub(TAIL);
        f.seek(SeekFrom::Start(start)).map_err(|e| format!("{shown}: {e}"))?;
        let mut tail = Vec::new();
        f.read_to_end(&mut tail).map_err(|e| format!("{shown}: {e}"))?;
        if !tail.is_empty() && !tail.ends_with(b"\n") {
            // Only a crash between write and fsync leaves this; the row never counted.
            let keep = tail.iter().rposition(|b| *b == b'\n').map_or(start, |i| start + i as u64 + 1);
            tracing::warn!(file = %shown, bytes = len - keep, "removing an audit line cut short by a crash");
            OpenOptions::new()
                .write(true)
                .open(&self.path)
                .and_then(|w| w.set_len(keep).and_then(|_| w.sync_all()))
                .map_err(|e| format!("{shown}: {e}"))?;
            tail.truncate((keep - start) as usize);
        }
        let last = tail.split(|b| *b == b'\n').rev().find(|l| !l.is_empty());
        Ok(last.and_then(|l| {
            let text = String::from_utf8_lossy(l);
            serde_json::from_str::<serde_json::Value>(&text).ok()?["seq"].as_i64()
        }))
    }

    /// Appends `rows` and syncs them; returns the last row written.
    pub fn send(&self, rows: &[Row]) -> Result<Option<i64>, String> {
        let mut bytes = Vec::new();
        for row in rows {
            bytes.extend_from_slice(crate::audit::to_line(row).as_bytes());
            bytes.push(b'\n');
        }
        let mut f = self.open()?;
        f.write_all(&bytes)
            .and_then(|_| f.sync_data())
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        Ok(rows.last().map(|r| r.seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn row(seq: i64) -> Row {
        Row {
            seq,
            ts: "t".into(),
            actor: "a".into(),
            action: "b".into(),
            target: "c".into(),
            detail: "{}".into(),
            prev_hash: vec![0; 32],
            hash: vec![0; 32],
        }
    }

    #[test]
    fn appends_owner_only_and_finds_its_last_row_after_a_torn_write() {
        let dir = std::env::temp_dir().join(format!("vigo-jsonl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.jsonl");
        let sink = JsonlFile::new(path.to_str().unwrap());
        assert_eq!(sink.last_seq().unwrap(), None);
        assert_eq!(sink.send(&[row(1), row(2)]).unwrap(), Some(2));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(sink.last_seq().unwrap(), Some(2));
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"seq\":3,\"ts\":").unwrap();
        assert_eq!(sink.last_seq().unwrap(), Some(2));
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
        sink.send(&[row(3)]).unwrap();
        assert_eq!(sink.last_seq().unwrap(), Some(3));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
