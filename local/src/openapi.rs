//! The OpenAPI 3.1 documents under `openapi/`, one per surface, served by the local server at
//! the base URL a client talks to, so a generated client or an API tester reads the very
//! document the tests keep true (tests/tests/openapi.rs).

use std::collections::HashMap;

use serde_json::{Value, json};

/// `GET` lists the documents.
pub const LIST_PATH: &str = "/custdata/v1/openapi";

/// One surface's document, as written (YAML).
pub struct Document {
    /// The name in its URL: `/custdata/v1/openapi/{surface}.json`.
    pub surface: &'static str,
    pub yaml: &'static str,
}

/// A surface's document, embedded from `openapi/{surface}.yaml`.
macro_rules! document {
    ($surface:literal) => {
        Document {
            surface: $surface,
            yaml: include_str!(concat!("../../openapi/", $surface, ".yaml")),
        }
    };
}

pub const DOCUMENTS: [Document; 7] = [
    document!("mxo-datastores"),
    document!("mxo-customer"),
    document!("monetate"),
    document!("aixon"),
    document!("optimove"),
    document!("custdata"),
    document!("local"),
];

impl Document {
    pub fn url(&self) -> String {
        format!("{LIST_PATH}/{}.json", self.surface)
    }

    /// The document as JSON, with `servers` naming `base_url`.
    pub fn to_json(&self, base_url: &str) -> Result<Value, String> {
        let mut document: Value = serde_yaml_ng::from_str(self.yaml)
            .map_err(|e| format!("openapi/{}.yaml: {e}", self.surface))?;
        let Some(fields) = document.as_object_mut() else {
            return Err(format!("openapi/{}.yaml is not a mapping", self.surface));
        };
        fields.insert("servers".into(), json!([{ "url": base_url }]));
        Ok(document)
    }
}

/// Every document as served from one base URL, parsed once when the server starts (so a
/// document that does not parse stops the start, never a request).
pub struct Served {
    list: Value,
    by_url: HashMap<String, Value>,
}

impl Served {
    pub fn new(base_url: &str) -> Result<Served, String> {
        let mut by_url = HashMap::new();
        let mut listed = Vec::new();
        for document in &DOCUMENTS {
            let json = document.to_json(base_url)?;
            listed.push(json!({
                "surface": document.surface,
                "title": json["info"]["title"],
                "url": document.url(),
            }));
            by_url.insert(document.url(), json);
        }
        Ok(Served {
            list: json!({ "documents": listed }),
            by_url,
        })
    }

    /// The answer to a `GET` of `path` when it is the list or under it (`Err` names the
    /// documents there are); `None` for any other path.
    pub fn answer(&self, path: &str) -> Option<Result<&Value, String>> {
        if path == LIST_PATH {
            return Some(Ok(&self.list));
        }
        let name = path.strip_prefix(LIST_PATH)?.strip_prefix('/')?;
        Some(self.by_url.get(path).ok_or_else(|| {
            let names: Vec<String> = DOCUMENTS
                .iter()
                .map(|document| format!("{}.json", document.surface))
                .collect();
            format!(
                "no OpenAPI document {name}: the documents are {}",
                names.join(", ")
            )
        }))
    }
}
