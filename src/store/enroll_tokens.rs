//! Enrollment tokens. Only the SHA-256 of a token's secret is stored; a token is spent by one
//! conditional UPDATE, so any number of racers on any number of connections get one winner.

use rusqlite::{params, Connection, OptionalExtension};

/// Which envoy names a token may enroll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Binding {
    /// Exactly this name.
    Name(String),
    /// Any name matching this glob (`web-*`).
    Pattern(String),
    /// Any valid name: the operator asked for it explicitly (`--any-name`).
    AnyName,
}

impl Binding {
    /// (envoy_name, envoy_pattern); both NULL is "any name".
    fn columns(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Binding::Name(n) => (Some(n), None),
            Binding::Pattern(p) => (None, Some(p)),
            Binding::AnyName => (None, None),
        }
    }

    fn from_columns(name: Option<String>, pattern: Option<String>) -> Binding {
        match (name, pattern) {
            (Some(n), _) => Binding::Name(n),
            (None, Some(p)) => Binding::Pattern(p),
            (None, None) => Binding::AnyName,
        }
    }

    /// How the binding reads in a list or an audit row.
    pub fn describe(&self) -> String {
        match self {
            Binding::Name(n) => format!("name {n}"),
            Binding::Pattern(p) => format!("pattern {p}"),
            Binding::AnyName => "any name".to_string(),
        }
    }
}

pub struct NewToken<'a> {
    pub id: &'a str,
    pub hash: &'a [u8; 32],
    pub binding: &'a Binding,
    pub created_by: &'a str,
    pub created_at: i64,
    pub expires_at: i64,
}

/// One row: the token, its binding and dates.
pub fn insert(conn: &Connection, t: &NewToken<'_>) -> rusqlite::Result<()> {
    let (name, pattern) = t.binding.columns();
    conn.execute(
        "INSERT INTO enroll_tokens (id, token_hash, envoy_name, envoy_pattern, created_by, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![t.id, t.hash.as_slice(), name, pattern, t.created_by, t.created_at, t.expires_at],
    )?;
    Ok(())
}

/// Why a token could not be spent. Callers answer all of these alike and keep the kind for
/// the audit row, so a caller learns nothing about which tokens exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unusable {
    Unknown,
    Used,
    Expired,
}

impl Unusable {
    pub fn as_str(self) -> &'static str {
        match self {
            Unusable::Unknown => "unknown token",
            Unusable::Used => "token already used",
            Unusable::Expired => "token expired",
        }
    }
}

/// Spends the token for `used_by`: one UPDATE whose WHERE clause is the whole decision, so the
/// winner is decided by SQLite whatever transaction (if any) the caller holds.
pub fn consume(
    conn: &Connection,
    hash: &[u8; 32],
    now: i64,
    used_by: &str,
) -> rusqlite::Result<Result<Binding, Unusable>> {
    let won: Option<(Option<String>, Option<String>)> = conn
        .prepare_cached(
            "UPDATE enroll_tokens SET used_at = ?2, used_by = ?3
             WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2
             RETURNING envoy_name, envoy_pattern",
        )?
        .query_row(params![hash.as_slice(), now, used_by], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((name, pattern)) = won {
        return Ok(Ok(Binding::from_columns(name, pattern)));
    }
    Ok(Err(why_unusable(conn, hash)?))
}

fn why_unusable(conn: &Connection, hash: &[u8; 32]) -> rusqlite::Result<Unusable> {
    let row: Option<bool> = conn
        .query_row(
            "SELECT used_at IS NOT NULL FROM enroll_tokens WHERE token_hash = ?1",
            [hash.as_slice()],
            |r| r.get(0),
        )
        .optional()?;
    Ok(match row {
        None => Unusable::Unknown,
        Some(true) => Unusable::Used,
        Some(false) => Unusable::Expired,
    })
}

/// A read-only look, for refusing a bad token before any write is queued.
pub fn check(conn: &Connection, hash: &[u8; 32], now: i64) -> rusqlite::Result<Result<(), Unusable>> {
    let usable: Option<bool> = conn
        .prepare_cached(
            "SELECT used_at IS NULL AND expires_at > ?2 FROM enroll_tokens WHERE token_hash = ?1",
        )?
        .query_row(params![hash.as_slice(), now], |r| r.get(0))
        .optional()?;
    match usable {
        Some(true) => Ok(Ok(())),
        _ => Ok(Err(why_unusable(conn, hash)?)),
    }
}

pub struct TokenRow {
    pub id: String,
    pub binding: Binding,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub used_by: Option<String>,
}

impl TokenRow {
    pub fn state(&self, now: i64) -> &'static str {
        if self.used_at.is_some() {
            "used"
        } else if self.expires_at <= now {
            "expired"
        } else {
            "valid"
        }
    }
}

pub fn list(conn: &Connection) -> rusqlite::Result<Vec<TokenRow>> {
    let mut stmt = conn.prepare(
        "SELECT id, envoy_name, envoy_pattern, created_by, created_at, expires_at, used_at, used_by
         FROM enroll_tokens ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(TokenRow {
            id: r.get(0)?,
            binding: Binding::from_columns(r.get(1)?, r.get(2)?),
            created_by: r.get(3)?,
            created_at: r.get(4)?,
            expires_at: r.get(5)?,
            used_at: r.get(6)?,
            used_by: r.get(7)?,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(tag: &str) -> (std::path::PathBuf, Connection) {
        let dir = std::env::temp_dir().join(format!("vigo-tokens-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("t.db");
        let conn = crate::store::open(&path).unwrap();
        (dir, conn)
    }

    fn add(conn: &Connection, n: u8, expires_at: i64) -> [u8; 32] {
        let hash = [n; 32];
        let id = format!("t{n}");
        let binding = Binding::AnyName;
        insert(
            conn,
            &NewToken {
                id: &id,
                hash: &hash,
                binding: &binding,
                created_by: "test",
                created_at: 0,
                expires_at,
            },
        )
        .unwrap();
        hash
    }

    /// Sixteen threads, each on its own connection and with no transaction and no lock of
    /// ours around the call, race for each of 40 tokens: exactly one wins each. A check-then-
    /// update (SELECT, then an unconditional UPDATE) lets several win here.
    #[test]
    fn racers_on_separate_connections_get_exactly_one_winner() {
        let (dir, conn) = db("race");
        let hashes: Vec<[u8; 32]> = (1..=40).map(|n| add(&conn, n, i64::MAX)).collect();
        let path = dir.join("t.db");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(16));
        let threads: Vec<_> = (0..16)
            .map(|i| {
                let (path, hashes, barrier) = (path.clone(), hashes.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let c = crate::store::open(&path).unwrap();
                    let mut wins = vec![];
                    for h in &hashes {
                        barrier.wait();
                        if consume(&c, h, 1, &format!("racer{i}")).unwrap().is_ok() {
                            wins.push(h[0]);
                        }
                    }
                    wins
                })
            })
            .collect();
        let mut all: Vec<u8> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
        all.sort_unstable();
        assert_eq!(all, (1..=40).collect::<Vec<u8>>(), "each token is won exactly once");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unusable_tokens_say_why_only_to_the_caller() {
        let (dir, conn) = db("why");
        let live = add(&conn, 1, 100);
        let old = add(&conn, 2, 10);
        assert_eq!(check(&conn, &live, 50).unwrap(), Ok(()));
        assert_eq!(consume(&conn, &live, 50, "e1").unwrap(), Ok(Binding::AnyName));
        assert_eq!(consume(&conn, &live, 51, "e2").unwrap(), Err(Unusable::Used));
        assert_eq!(check(&conn, &old, 50).unwrap(), Err(Unusable::Expired));
        assert_eq!(consume(&conn, &[9; 32], 50, "e3").unwrap(), Err(Unusable::Unknown));
        let rows = list(&conn).unwrap();
        assert_eq!(rows[0].used_by.as_deref(), Some("e1"));
        assert_eq!(rows[0].state(60), "used");
        assert_eq!(rows[1].state(60), "expired");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
