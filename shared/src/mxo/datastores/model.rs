//! Datastore definitions and records, parsed and validated at the edge: past this module a
//! definition is known to be valid and a record to match its definition.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::Problem;

/// Longest datastore name.
pub const MAX_NAME_CHARS: usize = 50;
/// Longest apiName (it is a path segment).
pub const MAX_API_NAME_CHARS: usize = crate::names::MAX_DATASTORE_API_NAME_CHARS;
/// Definitions per datastore.
pub const MAX_DEFINITIONS: usize = 40;
/// Longest column name.
pub const MAX_COLUMN_NAME_CHARS: usize = 64;
/// TEXT values.
pub const MAX_TEXT_CHARS: usize = 500;
/// LARGE_TEXT values, and TEXT_LIST values as a whole.
pub const MAX_LARGE_TEXT_CHARS: usize = 4096;
/// LARGE_TEXT columns per datastore.
pub const MAX_LARGE_TEXT_COLUMNS: usize = 5;

/// A column type. NUMERIC and NUMBER validate alike and echo back as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ColumnType {
    Text,
    LargeText,
    Boolean,
    Numeric,
    Number,
    Datetime,
    TextList,
}

impl ColumnType {
    const NAMES: &'static str = "TEXT, LARGE_TEXT, BOOLEAN, NUMERIC, NUMBER, DATETIME, TEXT_LIST";

    fn parse(raw: &str) -> Option<ColumnType> {
        Some(match raw {
            "TEXT" => ColumnType::Text,
            "LARGE_TEXT" => ColumnType::LargeText,
            "BOOLEAN" => ColumnType::Boolean,
            "NUMERIC" => ColumnType::Numeric,
            "NUMBER" => ColumnType::Number,
            "DATETIME" => ColumnType::Datetime,
            "TEXT_LIST" => ColumnType::TextList,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            ColumnType::Text => "TEXT",
            ColumnType::LargeText => "LARGE_TEXT",
            ColumnType::Boolean => "BOOLEAN",
            ColumnType::Numeric => "NUMERIC",
            ColumnType::Number => "NUMBER",
            ColumnType::Datetime => "DATETIME",
            ColumnType::TextList => "TEXT_LIST",
        }
    }
}

/// One column of a datastore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub column_type: ColumnType,
}

/// A validated datastore definition, as stored and as returned (plus timestamps).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Definition {
    pub name: String,
    pub api_name: ApiName,
    pub primary_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_key: Option<String>,
    pub definitions: Vec<Column>,
}

/// A datastore's apiName: letters, digits, `_` and `-`, starting with a letter; a path segment.
pub fn valid_api_name(raw: &str) -> bool {
    crate::names::is_datastore_api_name(raw)
}

/// A datastore's apiName, checked against its grammar: what every store function takes, so a
/// name that was never checked (or an identifier's apiName of the Customer API, a different
/// thing with the same vendor name) cannot reach the store. Reads as a `&str` where a key is
/// built from it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ApiName(String);

impl TryFrom<String> for ApiName {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        ApiName::parse(&raw).ok_or_else(|| format!("{raw:?} is not a datastore apiName"))
    }
}

impl From<ApiName> for String {
    fn from(name: ApiName) -> String {
        name.0
    }
}

impl ApiName {
    /// The name, if it follows the grammar of [`valid_api_name`].
    pub fn parse(raw: &str) -> Option<ApiName> {
        valid_api_name(raw).then(|| ApiName(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for ApiName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ApiName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn problem(field: impl Into<String>, rule: impl Into<String>) -> Problem {
    Problem {
        row: None,
        field: Some(field.into()),
        rule: rule.into(),
    }
}

fn string_field<'a>(
    body: &'a Map<String, Value>,
    field: &str,
    problems: &mut Vec<Problem>,
) -> Option<&'a str> {
    match body.get(field) {
        Some(Value::String(text)) => Some(text),
        None | Some(Value::Null) => {
            problems.push(problem(field, "is required"));
            None
        }
        Some(_) => {
            problems.push(problem(field, "must be a string"));
            None
        }
    }
}

impl Definition {
    /// Parses a create body; every rule that fails is reported, not only the first.
    /// `created` and `lastModified` are read-only and ignored.
    pub fn parse(body: &Value) -> Result<Definition, Vec<Problem>> {
        let Some(body) = body.as_object() else {
            return Err(vec![problem(
                "body",
                "must be a JSON object describing the datastore",
            )]);
        };
        let mut problems = Vec::new();
        let name = string_field(body, "name", &mut problems);
        if let Some(name) = name {
            let chars = name.chars().count();
            if chars == 0 || chars > MAX_NAME_CHARS {
                problems.push(problem(
                    "name",
                    format!("must be 1 to {MAX_NAME_CHARS} characters, got {chars}"),
                ));
            }
        }
        let api_name = string_field(body, "apiName", &mut problems).and_then(|raw| {
            let parsed = ApiName::parse(raw);
            if parsed.is_none() {
                problems.push(problem(
                    "apiName",
                    format!("{raw:?} must be 1 to {MAX_API_NAME_CHARS} letters, digits, '_' or '-', starting with a letter (it is used in paths)"),
                ));
            }
            parsed
        });
        let primary_key = string_field(body, "primaryKey", &mut problems);
        let secondary_key = match body.get("secondaryKey") {
            None | Some(Value::Null) => None,
            Some(Value::String(key)) if key.is_empty() => None,
            Some(Value::String(key)) => Some(key.as_str()),
            Some(_) => {
                problems.push(problem("secondaryKey", "must be a string"));
                None
            }
        };
        let columns = Self::parse_columns(body.get("definitions"), &mut problems);
        let type_of = |column: &str| {
            columns
                .iter()
                .find(|c| c.name == column)
                .map(|c| c.column_type)
        };
        for (field, key) in [("primaryKey", primary_key), ("secondaryKey", secondary_key)] {
            let Some(key) = key else { continue };
            match type_of(key) {
                None if !columns.is_empty() => problems.push(problem(
                    field,
                    format!("names {key:?}, which is not among the definitions"),
                )),
                Some(ColumnType::Text) | None => {}
                Some(other) => problems.push(problem(
                    field,
                    format!("{key:?} is {}; key columns must be TEXT", other.name()),
                )),
            }
        }
        if primary_key.is_some() && primary_key == secondary_key {
            problems.push(problem("secondaryKey", "must differ from primaryKey"));
        }
        // A missing or broken apiName is one of the problems already.
        let Some(api_name) = api_name.filter(|_| problems.is_empty()) else {
            return Err(problems);
        };
        Ok(Definition {
            name: name.unwrap_or_default().to_string(),
            api_name,
            primary_key: primary_key.unwrap_or_default().to_string(),
            secondary_key: secondary_key.map(str::to_string),
            definitions: columns,
        })
    }

    fn parse_columns(raw: Option<&Value>, problems: &mut Vec<Problem>) -> Vec<Column> {
        let Some(entries) = raw.and_then(Value::as_array) else {
            problems.push(problem(
                "definitions",
                "is required: an array of {name, type}",
            ));
            return Vec::new();
        };
        if entries.is_empty() || entries.len() > MAX_DEFINITIONS {
            problems.push(problem(
                "definitions",
                format!(
                    "must hold 1 to {MAX_DEFINITIONS} columns, got {}",
                    entries.len()
                ),
            ));
        }
        let mut columns = Vec::with_capacity(entries.len());
        let mut seen = HashSet::new();
        for (index, entry) in entries.iter().enumerate() {
            let field = format!("definitions[{index}]");
            let name = entry.get("name").and_then(Value::as_str);
            let column_type = entry.get("type").and_then(Value::as_str);
            let Some(name) = name else {
                problems.push(problem(format!("{field}.name"), "is required: a string"));
                continue;
            };
            let chars = name.chars().count();
            if chars == 0 || chars > MAX_COLUMN_NAME_CHARS || name.chars().any(char::is_control) {
                problems.push(problem(
                    format!("{field}.name"),
                    format!("must be 1 to {MAX_COLUMN_NAME_CHARS} printable characters"),
                ));
            }
            if !seen.insert(name) {
                problems.push(problem(
                    format!("{field}.name"),
                    format!("{name:?} is defined twice; column names are unique"),
                ));
            }
            match column_type.and_then(ColumnType::parse) {
                Some(column_type) => columns.push(Column {
                    name: name.to_string(),
                    column_type,
                }),
                None => problems.push(problem(
                    format!("{field}.type"),
                    format!(
                        "{} is not a column type; one of {}",
                        column_type.map_or("missing".to_string(), |t| format!("{t:?}")),
                        ColumnType::NAMES
                    ),
                )),
            }
        }
        let large = columns
            .iter()
            .filter(|c| c.column_type == ColumnType::LargeText)
            .count();
        if large > MAX_LARGE_TEXT_COLUMNS {
            problems.push(problem(
                "definitions",
                format!("at most {MAX_LARGE_TEXT_COLUMNS} LARGE_TEXT columns, got {large}"),
            ));
        }
        columns
    }

    fn column(&self, name: &str) -> Option<&Column> {
        self.definitions.iter().find(|c| c.name == name)
    }

    /// Checks one record; `Ok` holds its keys and the record as stored (nulls dropped).
    pub fn check_record(&self, record: &Value) -> Result<ValidRecord, String> {
        let Some(fields) = record.as_object() else {
            return Err("a record must be a JSON object keyed by column name".into());
        };
        let mut stored = BTreeMap::new();
        for (name, value) in fields {
            let Some(column) = self.column(name) else {
                return Err(format!("{name}: not a column of this datastore"));
            };
            if value.is_null() {
                continue;
            }
            check_value(column, value).map_err(|rule| format!("{name}: {rule}"))?;
            stored.insert(name.clone(), value.clone());
        }
        let key = |column: &str| {
            stored
                .get(column)
                .and_then(Value::as_str)
                .filter(|key| !key.is_empty())
                .map(str::to_string)
        };
        let primary_key = key(&self.primary_key)
            .ok_or_else(|| format!("{}: the primary key is required", self.primary_key))?;
        let secondary_key = match &self.secondary_key {
            Some(column) => {
                key(column).ok_or_else(|| format!("{column}: the secondary key is required"))?
            }
            None => String::new(),
        };
        Ok(ValidRecord {
            primary_key,
            secondary_key,
            fields: stored,
        })
    }
}

/// A record that matches its definition.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidRecord {
    pub primary_key: String,
    /// `""` when the datastore has no secondary key.
    pub secondary_key: String,
    pub fields: BTreeMap<String, Value>,
}

fn check_value(column: &Column, value: &Value) -> Result<(), String> {
    let text_within = |limit: usize| match value {
        Value::String(text) if text.chars().count() <= limit => Ok(()),
        Value::String(text) => Err(format!(
            "{} allows at most {limit} characters, got {}",
            column.column_type.name(),
            text.chars().count()
        )),
        other => Err(format!(
            "expected {} (a string), got {}",
            column.column_type.name(),
            kind(other)
        )),
    };
    match column.column_type {
        ColumnType::Text => text_within(MAX_TEXT_CHARS),
        ColumnType::LargeText => text_within(MAX_LARGE_TEXT_CHARS),
        ColumnType::TextList => {
            text_within(MAX_LARGE_TEXT_CHARS)?;
            split_text_list(value.as_str().unwrap_or_default()).map(drop)
        }
        ColumnType::Boolean => match value {
            Value::Bool(_) => Ok(()),
            other => Err(format!("expected BOOLEAN (true or false), got {}", kind(other))),
        },
        ColumnType::Numeric | ColumnType::Number => match value {
            Value::Number(_) => Ok(()),
            other => Err(format!("expected {} (a JSON number), got {}", column.column_type.name(), kind(other))),
        },
        ColumnType::Datetime => match value {
            Value::Number(number) if number.is_i64() => Ok(()),
            Value::Number(_) => Err("expected DATETIME as whole milliseconds since the epoch, got a fraction or an out-of-range number".into()),
            other => Err(format!("expected DATETIME (integer milliseconds since the epoch), got {}", kind(other))),
        },
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Splits a TEXT_LIST value on `|`; an item in double quotes may hold `|`, and `""` inside
/// quotes is a literal quote. An unterminated quote is refused.
pub fn split_text_list(raw: &str) -> Result<Vec<String>, String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut chars = raw.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', false) if current.is_empty() => quoted = true,
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                current.push('"');
            }
            ('"', true) => {
                quoted = false;
                if chars.peek().is_some_and(|next| *next != '|') {
                    return Err("TEXT_LIST: a closing quote must end its item".into());
                }
            }
            ('|', false) => items.push(std::mem::take(&mut current)),
            (c, _) => current.push(c),
        }
    }
    if quoted {
        return Err("TEXT_LIST: an item's opening quote is never closed".into());
    }
    items.push(current);
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seed_definition() -> Definition {
        Definition::parse(&json!({"name": "ProductTerms", "apiName": "terms", "primaryKey": "customerID", "secondaryKey": "productID",
            "definitions": [{"name": "customerID", "type": "TEXT"}, {"name": "productID", "type": "TEXT"},
                            {"name": "creditLimit", "type": "NUMERIC"}, {"name": "expires", "type": "DATETIME"}]}))
        .expect("the seed's definition is valid")
    }

    #[test]
    fn text_lists_split_on_bars_with_quoted_items() {
        assert_eq!(split_text_list("a|b").expect("list"), vec!["a", "b"]);
        assert_eq!(
            split_text_list("\"a|b\"|c").expect("list"),
            vec!["a|b", "c"]
        );
        assert_eq!(
            split_text_list("\"say \"\"hi\"\"\"").expect("list"),
            vec!["say \"hi\""]
        );
        assert!(split_text_list("\"open").is_err());
    }

    #[test]
    fn a_record_is_checked_against_every_column_rule() {
        let definition = seed_definition();
        let good = definition.check_record(&json!({"customerID": "C-1", "productID": "P-1", "creditLimit": 1.5e3, "expires": 1507676400000_i64}));
        assert_eq!(
            good.map(|r| (r.primary_key, r.secondary_key)),
            Ok(("C-1".into(), "P-1".into()))
        );
        let cases = [
            (
                json!({"customerID": "C-1", "productID": "P-1", "creditLimit": "1"}),
                "creditLimit: expected NUMERIC",
            ),
            (
                json!({"customerID": "C-1", "productID": "P-1", "expires": 1.5}),
                "expires: expected DATETIME",
            ),
            (
                json!({"customerID": "C-1", "productID": "P-1", "colour": "red"}),
                "colour: not a column",
            ),
            (
                json!({"productID": "P-1"}),
                "customerID: the primary key is required",
            ),
            (
                json!({"customerID": "C-1"}),
                "productID: the secondary key is required",
            ),
            (
                json!({"customerID": "x".repeat(501), "productID": "P-1"}),
                "customerID: TEXT allows at most 500",
            ),
            (json!(["C-1"]), "a record must be a JSON object"),
        ];
        for (record, expected) in cases {
            let error = definition.check_record(&record).expect_err("refused");
            assert!(
                error.starts_with(expected),
                "{error} does not start with {expected}"
            );
        }
    }
}
