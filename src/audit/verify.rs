//! Walks the chain from the first row and names the first row that does not hold.

use rusqlite::{Connection, OptionalExtension};

use super::{read_row, row_hash, AuditError, GENESIS};
use crate::crypto::{ct_eq, hex_encode};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The chain holds: `rows` rows, ending in `head` (hex).
    Intact { rows: i64, head: String },
    /// The first row (by sequence number) that breaks the chain, and why.
    Broken { seq: i64, reason: String },
}

/// Verifies the whole chain. `expected_head` is a head hash (hex) recorded elsewhere, e.g. by a
/// SIEM or an earlier `audit verify`; the chain must contain it, which catches truncation.
pub fn verify(conn: &Connection, expected_head: Option<&str>) -> Result<Verdict, AuditError> {
    verify_from(conn, 1, expected_head)
}

/// Verifies only the last `n` rows (each against its predecessor and its own hash) and the
/// recorded head: a quick look for `doctor --quick`; `verify` is the real check.
pub fn verify_last(conn: &Connection, n: i64) -> Result<Verdict, AuditError> {
    let last: i64 = conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM audit", [], |r| r.get(0))?;
    verify_from(conn, (last - n + 1).max(1), None)
}

fn verify_from(conn: &Connection, from: i64, expected_head: Option<&str>) -> Result<Verdict, AuditError> {
    let mut stmt = conn.prepare(
        "SELECT seq, ts, actor, action, target, detail, prev_hash, hash FROM audit WHERE seq >= ?1 ORDER BY seq",
    )?;
    let mut rows = stmt.query([from])?;
    let mut prev = if from <= 1 {
        GENESIS.to_vec()
    } else {
        conn.query_row("SELECT hash FROM audit WHERE seq = ?1", [from - 1], |r| r.get(0))
            .optional()?
            .unwrap_or_default()
    };
    let mut expected_seq = from;
    let mut seen_expected = expected_head.is_none();
    while let Some(r) = rows.next()? {
        let row = read_row(r)?;
        if row.seq != expected_seq {
            return Ok(Verdict::Broken {
                seq: expected_seq,
                reason: format!("row {expected_seq} is missing (next row is {})", row.seq),
            });
        }
        if !ct_eq(&row.prev_hash, &prev) {
            return Ok(Verdict::Broken {
                seq: row.seq,
                reason: "prev_hash does not match the previous row".into(),
            });
        }
        if !ct_eq(&row_hash(&row), &row.hash) {
            return Ok(Verdict::Broken {
                seq: row.seq,
                reason: "row content does not match its hash (edited)".into(),
            });
        }
        if let Some(h) = expected_head {
            seen_expected |= hex_encode(&row.hash).eq_ignore_ascii_case(h);
        }
        prev = row.hash;
        expected_seq += 1;
    }
    let rows_seen = expected_seq - 1;
    let head: Option<(i64, Vec<u8>)> = conn
        .query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match head {
        Some((head_seq, head_hash)) if head_seq != rows_seen || !ct_eq(&head_hash, &prev) => {
            return Ok(Verdict::Broken {
                seq: rows_seen + 1,
                reason: format!(
                    "the recorded head is row {head_seq} but the chain ends at row {rows_seen}: rows were removed from the end"
                ),
            });
        }
        Some(_) => {}
        // Every append records the head, so rows without one, or a database that holds other
        // state but neither rows nor head, lost its head and perhaps its tail with it.
        None if rows_seen > 0 || holds_other_state(conn)? => {
            return Ok(Verdict::Broken {
                seq: rows_seen + 1,
                reason: "the recorded head (audit_head) is missing: it was deleted, and rows may have been removed from the end".into(),
            });
        }
        None => {}
    }
    if !seen_expected {
        return Ok(Verdict::Broken {
            seq: rows_seen + 1,
            reason: "the expected head hash is not in the chain: the log was truncated or replaced".into(),
        });
    }
    Ok(Verdict::Intact { rows: rows_seen, head: hex_encode(&prev) })
}

/// Whether any table besides the audit log's own holds a row.
fn holds_other_state(conn: &Connection) -> Result<bool, AuditError> {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('audit', 'audit_head') AND name NOT LIKE 'sqlite_%'")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for t in tables {
        let quoted = t.replace('"', "\"\"");
        let any: bool =
            conn.query_row(&format!("SELECT EXISTS(SELECT 1 FROM \"{quoted}\")"), [], |r| r.get(0))?;
        if any {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{append, append_all, Event};
    use serde_json::json;

    fn db(tag: &str) -> (std::path::PathBuf, Connection) {
        let dir = std::env::temp_dir().join(format!("vigo-audit-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let conn = crate::store::open(&dir.join("a.db")).unwrap();
        (dir, conn)
    }

    fn fill(conn: &mut Connection, n: usize) {
        let events: Vec<_> =
            (0..n).map(|i| Event::new("test", "secret.set", "vigo/k").detail(json!({ "i": i }))).collect();
        append_all(conn, &events).unwrap();
    }

    #[test]
    fn intact_chain_verifies() {
        let (dir, mut conn) = db("ok");
        assert_eq!(verify(&conn, None).unwrap(), Verdict::Intact { rows: 0, head: hex_encode(&GENESIS) });
        fill(&mut conn, 10);
        let row = append(&mut conn, &Event::new("a", "b", "c")).unwrap();
        assert_eq!(row.seq, 11);
        let Verdict::Intact { rows, head } = verify(&conn, None).unwrap() else { panic!() };
        assert_eq!(rows, 11);
        assert_eq!(head, hex_encode(&row.hash));
        assert!(matches!(verify(&conn, Some(&head)).unwrap(), Verdict::Intact { .. }));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn update_and_delete_are_refused_by_triggers() {
        let (dir, mut conn) = db("trig");
        fill(&mut conn, 3);
        let upd = conn.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 2", []);
        assert!(upd.unwrap_err().to_string().contains("append-only"));
        let del = conn.execute("DELETE FROM audit WHERE seq = 3", []);
        assert!(del.unwrap_err().to_string().contains("append-only"));
        assert!(matches!(verify(&conn, None).unwrap(), Verdict::Intact { rows: 3, .. }));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn edited_row_is_named_when_triggers_are_dropped() {
        let (dir, mut conn) = db("edit");
        fill(&mut conn, 20);
        conn.execute_batch(
            "DROP TRIGGER audit_no_update; UPDATE audit SET detail = '{\"i\":999}' WHERE seq = 7;",
        )
        .unwrap();
        match verify(&conn, None).unwrap() {
            Verdict::Broken { seq, reason } => {
                assert_eq!(seq, 7);
                assert!(reason.contains("edited"));
            }
            v => panic!("expected broken, got {v:?}"),
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// An edited row whose own hash was recomputed passes its own check; the next row's link
    /// to it does not.
    #[test]
    fn edited_and_rehashed_middle_row_breaks_the_next_link() {
        let (dir, mut conn) = db("rehash");
        fill(&mut conn, 20);
        conn.execute_batch(
            "DROP TRIGGER audit_no_update; UPDATE audit SET detail = '{\"i\":999}' WHERE seq = 7;",
        )
        .unwrap();
        let mut row = conn
            .query_row(
                "SELECT seq, ts, actor, action, target, detail, prev_hash, hash FROM audit WHERE seq = 7",
                [],
                read_row,
            )
            .unwrap();
        row.hash = row_hash(&row).to_vec();
        conn.execute("UPDATE audit SET hash = ?1 WHERE seq = 7", [&row.hash]).unwrap();
        match verify(&conn, None).unwrap() {
            Verdict::Broken { seq, reason } => {
                assert_eq!(seq, 8, "{reason}");
                assert!(reason.contains("prev_hash"), "{reason}");
            }
            v => panic!("expected broken, got {v:?}"),
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// The head row deleted, with the tail cut or with every row gone, is flagged; a fresh
    /// database with nothing in it is not.
    #[test]
    fn a_deleted_head_is_flagged_with_or_without_rows() {
        let (dir, mut conn) = db("nohead");
        assert!(matches!(verify(&conn, None).unwrap(), Verdict::Intact { rows: 0, .. }), "a new database");
        fill(&mut conn, 10);
        conn.execute_batch(
            "DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq > 6; DELETE FROM audit_head;",
        )
        .unwrap();
        match verify(&conn, None).unwrap() {
            Verdict::Broken { seq, reason } => {
                assert_eq!(seq, 7);
                assert!(reason.contains("audit_head"), "{reason}");
            }
            v => panic!("{v:?}"),
        }
        conn.execute_batch(
            "DELETE FROM audit; INSERT INTO server_state (key, value) VALUES ('config_epoch', '3');",
        )
        .unwrap();
        assert!(
            matches!(verify(&conn, None).unwrap(), Verdict::Broken { seq: 1, .. }),
            "no rows, but other state"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn deleted_middle_row_and_truncated_tail_are_detected() {
        let (dir, mut conn) = db("trunc");
        fill(&mut conn, 10);
        let Verdict::Intact { head, .. } = verify(&conn, None).unwrap() else { panic!() };
        conn.execute_batch("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq >= 9;").unwrap();
        match verify(&conn, None).unwrap() {
            Verdict::Broken { seq, reason } => {
                assert_eq!(seq, 9);
                assert!(reason.contains("removed from the end"), "{reason}");
            }
            v => panic!("{v:?}"),
        }
        // A DBA who also rewinds the recorded head is caught by an externally kept head.
        conn.execute("UPDATE audit_head SET seq = 8, hash = (SELECT hash FROM audit WHERE seq = 8)", [])
            .unwrap();
        assert!(matches!(verify(&conn, None).unwrap(), Verdict::Intact { rows: 8, .. }));
        assert!(matches!(verify(&conn, Some(&head)).unwrap(), Verdict::Broken { seq: 9, .. }));
        conn.execute("DELETE FROM audit WHERE seq = 4", []).unwrap();
        assert!(matches!(verify(&conn, None).unwrap(), Verdict::Broken { seq: 4, .. }));
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Child half of the two-process test (run only by it, through `--ignored`): appends rows
    /// to the database named in the environment.
    #[test]
    #[ignore = "run as a child process by two_processes_appending_concurrently_keep_one_chain"]
    fn child_appender() {
        let db = std::env::var("VIGO_AUDIT_CHILD_DB").expect("VIGO_AUDIT_CHILD_DB");
        let mut conn = crate::store::open(std::path::Path::new(&db)).unwrap();
        let who = std::env::var("VIGO_AUDIT_CHILD_NAME").unwrap();
        for i in 0..1000 {
            append(&mut conn, &Event::new(&who, "test.append", "chain").detail(json!({ "i": i }))).unwrap();
        }
    }

    #[test]
    fn two_processes_appending_concurrently_keep_one_chain() {
        let (dir, conn) = db("procs");
        let db_path = dir.join("a.db");
        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = ["p1", "p2"]
            .iter()
            .map(|name| {
                std::process::Command::new(&exe)
                    .args([
                        "--exact",
                        "audit::verify::tests::child_appender",
                        "--ignored",
                        "--test-threads=1",
                    ])
                    .env("VIGO_AUDIT_CHILD_DB", &db_path)
                    .env("VIGO_AUDIT_CHILD_NAME", name)
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success());
        }
        assert!(matches!(verify(&conn, None).unwrap(), Verdict::Intact { rows: 2000, .. }));
        let per_actor: i64 =
            conn.query_row("SELECT COUNT(DISTINCT actor) FROM audit", [], |r| r.get(0)).unwrap();
        assert_eq!(per_actor, 2);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
