//! Monetate schemas: the fields of a dataset, checked when created or extended. The schema
//! types the vendor lists are in [`types`]; storing schemas is [`store`].

mod store;
mod types;

pub use store::{SaveError, create, get, list, replace};
pub use types::{PRODUCT_FIELDS, SCHEMA_TYPES, schema_types};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::domain::Problem;

/// Fields of a schema.
pub const MAX_FIELDS: usize = 40;
/// Characters of a schema name and of a field name.
pub const MAX_NAME_CHARS: usize = 64;
/// Schemas of a tenant.
pub const MAX_SCHEMAS: usize = 500;

/// The data types of a field (the contract's six; decision 4).
pub const DATA_TYPES: [&str; 6] = [
    "STRING",
    "MULTI_STRING",
    "NUMBER",
    "DATETIME",
    "BOOLEAN",
    "GOOGLE_PRODUCT_CATEGORY",
];

/// One field of a schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub data_type: String,
    #[serde(default)]
    pub identifier: bool,
    #[serde(default)]
    pub unique_key: bool,
    #[serde(default)]
    pub event_time: bool,
    #[serde(default)]
    pub required: bool,
}

/// A schema as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    pub id: i64,
    pub name: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub schema_type: Option<String>,
    pub fields: BTreeMap<String, Field>,
    #[serde(default)]
    pub named_identifier: Option<String>,
    pub created_date: String,
}

impl Schema {
    /// The name of the identifier field (every stored schema has exactly one).
    pub fn identifier(&self) -> &str {
        self.field_with(|field| field.identifier)
            .unwrap_or_default()
    }

    pub fn unique_key(&self) -> Option<&str> {
        self.field_with(|field| field.unique_key)
    }

    fn field_with(&self, flag: impl Fn(&Field) -> bool) -> Option<&str> {
        self.fields
            .iter()
            .find(|(_, field)| flag(field))
            .map(|(name, _)| name.as_str())
    }

    /// Whether its rows are customer attributes (and so also set on the shared customer).
    pub fn holds_attributes(&self) -> bool {
        matches!(self.schema_type.as_deref(), None | Some("attribute"))
    }
}

fn problem(field: impl Into<String>, rule: impl Into<String>) -> Problem {
    Problem {
        row: None,
        field: Some(field.into()),
        rule: rule.into(),
    }
}

fn valid_schema_name(name: &str) -> bool {
    crate::names::is_schema_name(name)
}

fn valid_field_name(name: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn valid_named_identifier(value: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&value.len())
        && value.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// Reads `fields` of a create or patch body, checking each field's own rules.
fn parse_fields(value: Option<&Value>, problems: &mut Vec<Problem>) -> BTreeMap<String, Field> {
    let mut fields = BTreeMap::new();
    let Some(value) = value else {
        problems.push(problem("fields", "required: a map of field name to field"));
        return fields;
    };
    let Some(map) = value.as_object() else {
        problems.push(problem(
            "fields",
            "must be an object of field name to field",
        ));
        return fields;
    };
    if map.is_empty() || map.len() > MAX_FIELDS {
        problems.push(problem(
            "fields",
            format!("1 to {MAX_FIELDS} fields; got {}", map.len()),
        ));
    }
    for (name, definition) in map {
        let path = format!("fields.{name}");
        if !valid_field_name(name) {
            problems.push(problem(
                &path,
                format!("a field name is 1-{MAX_NAME_CHARS} of letters, digits and '_', not starting with a digit"),
            ));
            continue;
        }
        let Some(definition) = definition.as_object() else {
            problems.push(problem(&path, "must be an object with data_type"));
            continue;
        };
        let mut flags = [false; 4];
        let mut good = true;
        for (key, value) in definition {
            let flag = match key.as_str() {
                "data_type" => continue,
                "identifier" => 0,
                "unique_key" => 1,
                "event_time" => 2,
                "required" => 3,
                other => {
                    problems.push(problem(
                        format!("{path}.{other}"),
                        "unknown; a field has data_type, identifier, unique_key, event_time, required",
                    ));
                    good = false;
                    continue;
                }
            };
            match value.as_bool() {
                Some(set) => flags[flag] = set,
                None => {
                    problems.push(problem(format!("{path}.{key}"), "must be true or false"));
                    good = false;
                }
            }
        }
        let data_type = definition.get("data_type").and_then(Value::as_str);
        let Some(data_type) = data_type.filter(|t| DATA_TYPES.contains(t)) else {
            problems.push(problem(
                format!("{path}.data_type"),
                format!("required, one of {}", DATA_TYPES.join(", ")),
            ));
            continue;
        };
        if good {
            let [identifier, unique_key, event_time, required] = flags;
            fields.insert(
                name.clone(),
                Field {
                    data_type: data_type.to_string(),
                    identifier,
                    unique_key,
                    event_time,
                    required,
                },
            );
        }
    }
    fields
}

/// The rules across fields: exactly one STRING identifier, at most one STRING unique key,
/// event_time on DATETIME fields (exactly one in an event schema).
fn check_field_roles(
    fields: &BTreeMap<String, Field>,
    schema_type: Option<&str>,
    problems: &mut Vec<Problem>,
) {
    let with = |flag: fn(&Field) -> bool| -> Vec<(&String, &Field)> {
        fields.iter().filter(|(_, field)| flag(field)).collect()
    };
    let identifiers = with(|field| field.identifier);
    if identifiers.len() != 1 {
        problems.push(problem(
            "fields",
            format!(
                "exactly one field has identifier: true; found {}",
                identifiers.len()
            ),
        ));
    }
    let unique_keys = with(|field| field.unique_key);
    if unique_keys.len() > 1 {
        problems.push(problem(
            "fields",
            format!(
                "at most one field has unique_key: true; found {}",
                unique_keys.len()
            ),
        ));
    }
    for (name, _) in identifiers
        .iter()
        .chain(unique_keys.iter())
        .filter(|(_, field)| field.data_type != "STRING")
    {
        problems.push(problem(
            format!("fields.{name}.data_type"),
            "an identifier or unique key is a STRING",
        ));
    }
    let event_times = with(|field| field.event_time);
    for (name, _) in event_times
        .iter()
        .filter(|(_, field)| field.data_type != "DATETIME")
    {
        problems.push(problem(
            format!("fields.{name}.data_type"),
            "an event_time field is a DATETIME",
        ));
    }
    let needed = if schema_type == Some("event") {
        1..=1
    } else {
        0..=1
    };
    if !needed.contains(&event_times.len()) {
        problems.push(problem(
            "fields",
            format!(
                "{} event_time field; found {}",
                if schema_type == Some("event") {
                    "an event schema has exactly one"
                } else {
                    "at most one"
                },
                event_times.len()
            ),
        ));
    }
}

/// A schema to create, checked whole: every problem is listed.
pub fn parse_new_schema(body: &Value) -> Result<Schema, Vec<Problem>> {
    let mut problems = Vec::new();
    let Some(object) = body.as_object() else {
        return Err(vec![problem("body", "a JSON object with name and fields")]);
    };
    for key in object.keys() {
        if !matches!(
            key.as_str(),
            "name" | "type" | "fields" | "named_identifier" | "id" | "created_date"
        ) {
            problems.push(problem(
                key,
                "unknown; a schema has name, type, fields, named_identifier",
            ));
        }
    }
    let name = object
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !valid_schema_name(name) {
        problems.push(problem(
            "name",
            format!("required, 1-{MAX_NAME_CHARS} characters of letters, digits, '_' and '-', starting with a letter"),
        ));
    }
    let schema_type = match object.get("type") {
        None | Some(Value::Null) => None,
        Some(Value::String(given)) if SCHEMA_TYPES.iter().any(|(name, _)| name == given) => {
            Some(given.clone())
        }
        Some(_) => {
            let names: Vec<&str> = SCHEMA_TYPES.iter().map(|(name, _)| *name).collect();
            problems.push(problem("type", format!("one of {}", names.join(", "))));
            None
        }
    };
    let named_identifier = named_identifier(object.get("named_identifier"), &mut problems);
    let fields = parse_fields(object.get("fields"), &mut problems);
    if problems.is_empty() {
        check_field_roles(&fields, schema_type.as_deref(), &mut problems);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Schema {
        id: 0,
        name: name.to_string(),
        schema_type,
        fields,
        named_identifier,
        created_date: String::new(),
    })
}

fn named_identifier(value: Option<&Value>, problems: &mut Vec<Problem>) -> Option<String> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::String(given)) if valid_named_identifier(given) => Some(given.clone()),
        Some(_) => {
            problems.push(problem(
                "named_identifier",
                format!("1-{MAX_NAME_CHARS} word characters (^\\w+$)"),
            ));
            None
        }
    }
}

/// Applies a PATCH body to a schema: `{"fields": {…}}` adds fields, `{"named_identifier"}`
/// sets it; never both, and existing fields never change.
pub fn patched(schema: &Schema, body: &Value) -> Result<Schema, Vec<Problem>> {
    let mut problems = Vec::new();
    let Some(object) = body.as_object() else {
        return Err(vec![problem(
            "body",
            "a JSON object with fields or named_identifier",
        )]);
    };
    let mut updated = schema.clone();
    match (object.get("fields"), object.get("named_identifier")) {
        (Some(_), Some(_)) => {
            problems.push(problem("body", "send fields or named_identifier, not both"))
        }
        (None, None) => problems.push(problem("body", "send fields (to add) or named_identifier")),
        (Some(fields), None) => {
            for (name, field) in parse_fields(Some(fields), &mut problems) {
                let path = format!("fields.{name}");
                if schema.fields.contains_key(&name) {
                    problems.push(problem(&path, "already a field; fields can only be added"));
                } else if field.identifier || field.unique_key {
                    problems.push(problem(
                        &path,
                        "the identifier and the unique key are set when the schema is created",
                    ));
                } else {
                    updated.fields.insert(name, field);
                }
            }
            if updated.fields.len() > MAX_FIELDS {
                problems.push(problem(
                    "fields",
                    format!(
                        "a schema has at most {MAX_FIELDS} fields; this would make {}",
                        updated.fields.len()
                    ),
                ));
            }
            if problems.is_empty() {
                check_field_roles(
                    &updated.fields,
                    schema.schema_type.as_deref(),
                    &mut problems,
                );
            }
        }
        (None, Some(value)) => {
            updated.named_identifier = named_identifier(Some(value), &mut problems);
            if updated.named_identifier.is_none() && problems.is_empty() {
                problems.push(problem("named_identifier", "must not be null"));
            }
        }
    }
    for key in object.keys() {
        match key.as_str() {
            "fields" | "named_identifier" => {}
            "name" => same_as_stored(object, "name", Some(&schema.name), &mut problems),
            "type" => same_as_stored(
                object,
                "type",
                schema.schema_type.as_ref(),
                &mut problems,
            ),
            _ => problems.push(problem(
                key,
                "unknown; PATCH takes fields or named_identifier (and name and type, equal to the schema's own)",
            )),
        }
    }
    if problems.is_empty() {
        Ok(updated)
    } else {
        Err(problems)
    }
}

/// A PATCH body may repeat the schema's `name` and `type` (the vendor's own example does);
/// they identify the schema and never change it, so a different value is refused.
fn same_as_stored(
    object: &Map<String, Value>,
    key: &str,
    stored: Option<&String>,
    problems: &mut Vec<Problem>,
) {
    let given = object.get(key);
    if given.and_then(Value::as_str) == stored.map(String::as_str) {
        return;
    }
    let rule = match stored {
        Some(stored) => format!(
            "must equal the schema's own {key} {stored:?} when given; a schema's {key} cannot change"
        ),
        None => format!("the schema has no {key}; a schema's {key} cannot change"),
    };
    problems.push(problem(key, rule));
}

/// The schema as the API shows it, with the optional extras.
pub fn shown(schema: &Schema, extras: Map<String, Value>) -> Value {
    let mut value = json!(schema);
    if let Some(object) = value.as_object_mut() {
        object.extend(extras);
    }
    value
}
