//! Delivery cursors of the audit sinks (`src/integrations`): per sink, the last audit sequence
//! number it has taken and when. Rows are never deleted with a sink's config: a sink given the
//! same name again resumes where it stopped.

use rusqlite::{params, Connection, OptionalExtension};

/// A sink's cursor: the last sequence delivered (0 before the first) and when that was.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    pub last_seq: i64,
    pub last_success: Option<i64>,
}

pub fn read(conn: &Connection, name: &str) -> rusqlite::Result<Cursor> {
    Ok(conn
        .prepare_cached("SELECT last_seq, last_success FROM sink_cursors WHERE name = ?1")?
        .query_row([name], |r| Ok(Cursor { last_seq: r.get(0)?, last_success: r.get(1)? }))
        .optional()?
        .unwrap_or_default())
}

/// One unit: moves `name`'s cursor forward to `seq` (creating it), never back, so a late or
/// repeated write cannot undo a newer one. Touches one row, or none when `seq` is not ahead.
pub fn advance(conn: &Connection, name: &str, seq: i64, now: i64) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached(
            "INSERT INTO sink_cursors (name, last_seq, last_success) VALUES (?1, ?2, ?3)
             ON CONFLICT(name) DO UPDATE SET last_seq = excluded.last_seq, last_success = excluded.last_success
             WHERE sink_cursors.last_seq < excluded.last_seq",
        )?
        .execute(params![name, seq, now])?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_only_moves_forward() {
        let dir = std::env::temp_dir().join(format!("vigo-cursors-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let conn = crate::store::open(&dir.join("c.db")).unwrap();
        assert_eq!(read(&conn, "siem").unwrap(), Cursor::default());
        assert!(advance(&conn, "siem", 5, 100).unwrap());
        assert!(!advance(&conn, "siem", 3, 200).unwrap(), "never back");
        assert!(!advance(&conn, "siem", 5, 200).unwrap(), "not ahead");
        assert_eq!(read(&conn, "siem").unwrap(), Cursor { last_seq: 5, last_success: Some(100) });
        assert!(advance(&conn, "siem", 9, 300).unwrap());
        assert_eq!(read(&conn, "other").unwrap().last_seq, 0);
        assert_eq!(read(&conn, "siem").unwrap().last_seq, 9);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
