//! `json_file`: one value at a path of object keys. `path` is dotted (`server.tls.port`) or a
//! JSON Pointer (`/server/tls/port`, with `~1` for `/` and `~0` for `~` inside a key). `value`
//! is JSON text (`8080`, `true`, `["a"]`, `"text"`); anything that does not parse as JSON is
//! taken as a string. Present: missing objects on the way are created. Absent: the key goes.
//! The file is rewritten only when its parsed value changes, then pretty-printed.

use serde_json::{Map, Value};

use crate::util::text::excerpt;

#[derive(Debug)]
pub struct JsonEdit {
    path: Vec<String>,
    value: Option<Value>,
    pub present: bool,
}

fn parse_path(path: &str) -> Result<Vec<String>, String> {
    let segs: Vec<String> = match path.strip_prefix('/') {
        Some(pointer) => pointer.split('/').map(|s| s.replace("~1", "/").replace("~0", "~")).collect(),
        None => path.split('.').map(String::from).collect(),
    };
    if path.is_empty() || segs.iter().any(String::is_empty) {
        return Err(format!(
            "`path` \"{}\" is not a path of keys: write a.b.c or /a/b/c, with no empty key",
            excerpt(path)
        ));
    }
    Ok(segs)
}

impl JsonEdit {
    pub(super) fn parse(get: &dyn Fn(&str) -> Option<String>, present: bool) -> Result<JsonEdit, String> {
        let path = parse_path(&get("path").unwrap_or_default())?;
        let value = get("value").map(|v| serde_json::from_str(&v).unwrap_or(Value::String(v)));
        if present && value.is_none() {
            return Err("json_file needs `value` unless ensure is absent".into());
        }
        Ok(JsonEdit { path, value, present })
    }

    pub(super) fn apply(&self, text: &str) -> Result<String, String> {
        let old: Value = if text.trim().is_empty() {
            Value::Object(Map::new())
        } else {
            serde_json::from_str(text)
                .map_err(|e| format!("the file is not valid JSON ({e}); fix it by hand"))?
        };
        let mut new = old.clone();
        let (last, parents) = self.path.split_last().expect("parse refuses an empty path");
        let mut here = &mut new;
        for (depth, key) in parents.iter().enumerate() {
            let obj = as_object(here, &self.path[..depth])?;
            if !obj.contains_key(key) {
                if !self.present {
                    return Ok(text.to_string());
                }
                obj.insert(key.clone(), Value::Object(Map::new()));
            }
            here = obj.get_mut(key).expect("inserted above");
        }
        let obj = as_object(here, parents)?;
        match &self.value {
            Some(v) if self.present => {
                obj.insert(last.clone(), v.clone());
            }
            _ => {
                obj.remove(last);
            }
        }
        if new == old {
            return Ok(text.to_string());
        }
        let mut out = serde_json::to_string_pretty(&new).map_err(|e| e.to_string())?;
        out.push('\n');
        Ok(out)
    }
}

fn as_object<'v>(v: &'v mut Value, at: &[String]) -> Result<&'v mut Map<String, Value>, String> {
    let kind = match v {
        Value::Object(_) => "",
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
    };
    match v {
        Value::Object(map) => Ok(map),
        _ => {
            let shown = if at.is_empty() { "the top of the file".to_string() } else { at.join(".") };
            Err(format!("{} is {kind}, not an object; the path cannot go into it", excerpt(&shown)))
        }
    }
}
