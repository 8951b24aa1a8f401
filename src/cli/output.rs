//! `-o table|json` for every list and show verb. JSON carries the stable field names documented
//! in docs/OPERATIONS.md (built here from the server's answer, so a field the server adds does
//! not change what scripts read); times are RFC 3339 UTC strings, or null. A table is for
//! people: an empty one is a sentence on stderr, so a script reading stdout sees no rows.

use serde_json::Value;

use crate::exit::{CmdResult, Failure};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            _ => Err("use table or json".to_string()),
        }
    }
}

/// A unix time (seconds) as RFC 3339 UTC, `null` when absent.
pub fn time_json(v: &Value) -> Value {
    v.as_i64()
        .map(|t| Value::String(format!("{}Z", &crate::util::time::rfc3339_millis(t * 1000)[..19])))
        .unwrap_or(Value::Null)
}

/// A JSON time for a table cell: `2026-01-02 03:04:05`, or `-`.
fn time_cell(v: &Value) -> String {
    v.as_str().map(|t| t.trim_end_matches('Z').replace('T', " ")).unwrap_or_else(|| "-".into())
}

/// One table column: its header, the JSON field it shows, and whether that field is a time.
pub struct Column {
    pub header: &'static str,
    pub field: &'static str,
    pub time: bool,
}

pub const fn col(header: &'static str, field: &'static str) -> Column {
    Column { header, field, time: false }
}

pub const fn time_col(header: &'static str, field: &'static str) -> Column {
    Column { header, field, time: true }
}

fn cell(item: &Value, c: &Column) -> String {
    let v = &item[c.field];
    if c.time {
        return time_cell(v);
    }
    match v {
        Value::Null => "-".into(),
        // Names and texts from envoys are printed with their control characters escaped: a
        // cell can neither fake another line nor drive the terminal.
        Value::String(s) => crate::util::text::escape_control(s).into_owned(),
        other => crate::util::text::escape_control(&other.to_string()).into_owned(),
    }
}

fn print_json(v: &Value) -> CmdResult {
    let text = serde_json::to_string_pretty(v).map_err(|e| Failure::failed(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// Prints a list: a JSON array, or a table with a header (`columns`), or `empty` on stderr.
pub fn list(format: Format, items: Vec<Value>, columns: &[Column], empty: &str) -> CmdResult {
    if format == Format::Json {
        return print_json(&Value::Array(items));
    }
    if items.is_empty() {
        eprintln!("{empty}");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = items.iter().map(|i| columns.iter().map(|c| cell(i, c)).collect()).collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(n, c)| rows.iter().map(|r| r[n].chars().count()).chain([c.header.len()]).max().unwrap_or(0))
        .collect();
    let line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(n, s)| if n == last { s.to_string() } else { format!("{s:<w$}", w = widths[n]) })
            .collect();
        println!("{}", padded.join("  "));
    };
    line(columns.iter().map(|c| c.header).collect());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
    Ok(())
}

/// Prints one object: JSON, or `label: value` lines for `fields` (lists joined by commas).
pub fn show(format: Format, item: &Value, fields: &[Column]) -> CmdResult {
    if format == Format::Json {
        return print_json(item);
    }
    let width = fields.iter().map(|f| f.header.len()).max().unwrap_or(0) + 1;
    for f in fields {
        let value = match &item[f.field] {
            Value::Array(a) if a.is_empty() => "-".to_string(),
            Value::Array(a) => a
                .iter()
                .map(|v| v.as_str().map(String::from).unwrap_or(v.to_string()))
                .collect::<Vec<_>>()
                .join(", "),
            _ => cell(item, f),
        };
        println!("{:<width$} {value}", format!("{}:", f.header));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc_or_null() {
        assert_eq!(time_json(&Value::from(0)), Value::String("1970-01-01T00:00:00Z".into()));
        assert_eq!(time_json(&Value::Null), Value::Null);
        assert_eq!(time_cell(&time_json(&Value::from(86_400))), "1970-01-02 00:00:00");
        assert_eq!(time_cell(&Value::Null), "-");
    }
}
