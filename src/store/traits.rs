//! Each envoy's traits (the JSON object its agent sent) and their digest.

use rusqlite::{params, Connection, OptionalExtension};

/// Stores what an envoy sent, replacing what it sent before.
pub fn put(
    conn: &Connection,
    envoy_id: &str,
    traits_json: &str,
    digest: &str,
    now: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO envoy_traits (envoy_id, traits, traits_jsonb, digest, updated_at)
           VALUES (?1, ?2, jsonb(?2), ?3, ?4)
         ON CONFLICT(envoy_id) DO UPDATE SET traits = excluded.traits,
           traits_jsonb = excluded.traits_jsonb, digest = excluded.digest, updated_at = excluded.updated_at",
    )?
    .execute(params![envoy_id, traits_json, digest, now])?;
    Ok(())
}

pub fn digest(conn: &Connection, envoy_id: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT digest FROM envoy_traits WHERE envoy_id = ?1")?
        .query_row([envoy_id], |r| r.get(0))
        .optional()
}

/// The traits (JSON text) and when they were last sent.
pub fn get(conn: &Connection, envoy_id: &str) -> rusqlite::Result<Option<(String, i64)>> {
    conn.query_row("SELECT traits, updated_at FROM envoy_traits WHERE envoy_id = ?1", [envoy_id], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .optional()
}

/// The traits as JSON (null if the stored text does not parse) and when they were last sent.
pub fn get_json(conn: &Connection, envoy_id: &str) -> rusqlite::Result<Option<(serde_json::Value, i64)>> {
    Ok(get(conn, envoy_id)?.map(|(text, at)| (serde_json::from_str(&text).unwrap_or_default(), at)))
}

/// The SQL condition on `envoy_traits` that every (path, glob) in `wheres` holds — a dotted
/// path into the traits object (`os.family`) and a glob (`*`, `?`, `[…]`) over its value as
/// text — with its parameters, numbered from `first`.
pub fn condition(wheres: &[(String, String)], first: usize) -> (String, Vec<String>) {
    let mut sql = String::from("1");
    let mut args: Vec<String> = Vec::new();
    for (path, glob) in wheres {
        args.push(format!("$.{path}"));
        args.push(glob.clone());
        let (p, g) = (first + args.len() - 2, first + args.len() - 1);
        sql.push_str(&format!(" AND CAST(json_extract(traits_jsonb, ?{p}) AS TEXT) GLOB ?{g}"));
    }
    (sql, args)
}

/// `PATH=GLOB`: a dotted path of trait names (`os.family`) and a glob over the value's text.
pub fn parse_where(text: &str) -> Result<(String, String), String> {
    let (path, glob) = text.split_once('=').ok_or_else(|| {
        format!("where {:?} must be PATH=GLOB, e.g. os.family=debian", crate::util::text::excerpt(text))
    })?;
    let path = path.trim();
    let path_ok = !path.is_empty()
        && path
            .split('.')
            .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    if !path_ok || glob.is_empty() {
        return Err(format!(
            "where {:?}: the path is trait names joined by dots (os.family, cpu.count) and the glob is not empty",
            crate::util::text::excerpt(text)
        ));
    }
    Ok((path.to_string(), glob.to_string()))
}
