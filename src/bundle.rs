//! The compiled policy bundle: what the config loader produces for one envoy, what the server
//! sends (as protobuf) and what the agent's run engine consumes. Secret values never appear
//! here: only `__VIGO_SECRET__<key>__END_VIGO_SECRET__` markers.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::placeholder::{self, PlaceholderError};

/// One resource after vars and templates are rendered and `secret:` refs became markers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompiledResource {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    /// Type-specific attributes (e.g. `target_path`, `content`, `mode` for a file).
    pub attributes: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(default)]
    pub notify: Vec<String>,
    #[serde(default)]
    pub watch_secret: Vec<String>,
    #[serde(default)]
    pub when: Option<String>,
}

/// Everything one envoy receives, in apply order as written (the run engine orders the graph).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompiledBundle {
    pub envoy_name: String,
    pub resources: Vec<CompiledResource>,
}

impl CompiledResource {
    /// Secret keys this resource's attributes and `when:` refer to.
    pub fn secret_keys(&self) -> Result<BTreeSet<String>, PlaceholderError> {
        let mut keys = BTreeSet::new();
        placeholder::collect_keys(&serde_json::Value::Object(self.attributes.clone()), &mut keys)?;
        if let Some(w) = &self.when {
            for f in placeholder::find_markers(w)? {
                keys.insert(f.key);
            }
        }
        Ok(keys)
    }
}

impl CompiledBundle {
    /// The bundle as the server sent it, back into this form (the agent's side of the wire).
    pub fn from_wire(b: &crate::proto::v1::PolicyBundle) -> Result<CompiledBundle, String> {
        let resources = b
            .resources
            .iter()
            .map(|r| {
                let attributes = match serde_json::from_slice(&r.attributes_json) {
                    Ok(serde_json::Value::Object(m)) => m,
                    _ => return Err(format!("resource {:?} has malformed attributes", r.name)),
                };
                Ok(CompiledResource {
                    name: r.name.clone(),
                    rtype: r.r#type.clone(),
                    attributes,
                    depends_on: r.depends_on.clone(),
                    notify: r.notify.clone(),
                    watch_secret: r.watch_secret.clone(),
                    when: (!r.when.is_empty()).then(|| r.when.clone()),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CompiledBundle { envoy_name: b.envoy_name.clone(), resources })
    }

    /// The keys this envoy may resolve: exactly those whose markers appear in its bundle.
    pub fn entitled_keys(&self) -> Result<BTreeSet<String>, PlaceholderError> {
        let mut keys = BTreeSet::new();
        for r in &self.resources {
            keys.extend(r.secret_keys()?);
        }
        Ok(keys)
    }

    /// SHA-256 (hex) over the canonical JSON of the bundle: stable for identical content.
    pub fn hash(&self) -> String {
        // serde_json writes struct fields in declaration order and maps sorted (BTreeMap-backed
        // Map without preserve_order), so equal bundles serialize identically.
        let json = serde_json::to_vec(self).unwrap_or_default();
        crate::crypto::sha256_hex(&json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res(name: &str, attrs: serde_json::Value) -> CompiledResource {
        CompiledResource {
            name: name.into(),
            rtype: "file".into(),
            attributes: attrs.as_object().unwrap().clone(),
            depends_on: vec![],
            notify: vec![],
            watch_secret: vec![],
            when: None,
        }
    }

    #[test]
    fn entitlement_is_the_set_of_markers_and_hash_is_stable() {
        let m = placeholder::marker("vigo/db/password").unwrap();
        let b = CompiledBundle {
            envoy_name: "db1".into(),
            resources: vec![
                res("a", json!({"content": format!("pw={m}")})),
                res("b", json!({"mode": "0644"})),
            ],
        };
        assert_eq!(b.entitled_keys().unwrap().into_iter().collect::<Vec<_>>(), ["vigo/db/password"]);
        assert_eq!(b.hash(), b.clone().hash());
        let mut c = b.clone();
        c.resources[1].attributes.insert("mode".into(), json!("0600"));
        assert_ne!(b.hash(), c.hash());
    }
}
