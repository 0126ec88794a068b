//! Checking a posted body: every row against its schema's fields, whole or refused with
//! the first problems listed.

use serde_json::{Map, Number, Value};

use super::{MAX_KEY_CHARS, MAX_LISTED_PROBLEMS, MAX_ROW_BYTES, MAX_ROWS, MAX_STRING_CHARS};
use crate::domain::Problem;
use crate::monetate::schemas::{Field, Schema};

/// One checked row: every field of the schema (absent ones null) and its keys.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedRow {
    /// Its 1-based position in `schema_rows`.
    pub row: usize,
    pub values: Map<String, Value>,
    pub identifier: String,
    pub unique: Option<String>,
}

/// A refused body: the first problems and how many there were.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub problems: Vec<Problem>,
    pub total: usize,
    pub rows: usize,
}

pub(super) fn row_problem(row: usize, field: &str, rule: impl Into<String>) -> Problem {
    Problem {
        row: Some(row),
        field: Some(field.to_string()),
        rule: rule.into(),
    }
}

/// Splits a MULTI_STRING on commas that are not escaped (`\,` stays inside a value).
pub fn split_multi_string(text: &str) -> Vec<String> {
    let mut values = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => {
                chars.next();
                current.push(',');
            }
            ',' => values.push(std::mem::take(&mut current)),
            other => current.push(other),
        }
    }
    values.push(current);
    values.into_iter().map(|v| v.trim().to_string()).collect()
}

fn checked_string(value: &Value) -> Result<&str, String> {
    let text = value.as_str().ok_or("must be a string")?;
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    if text.trim() != text {
        return Err("must not begin or end with whitespace".into());
    }
    if text.chars().count() > MAX_STRING_CHARS {
        return Err(format!("at most {MAX_STRING_CHARS} characters"));
    }
    Ok(text)
}

fn parse_datetime(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    if let Ok(parsed) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(parsed.with_timezone(&chrono::Utc));
    }
    if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(naive.and_utc());
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|naive| naive.and_utc())
}

/// A value checked against its field's data type, in the form it is stored.
pub fn checked_value(field: &Field, value: &Value) -> Result<Value, String> {
    match field.data_type.as_str() {
        "STRING" | "MULTI_STRING" => checked_string(value).map(Value::from),
        "GOOGLE_PRODUCT_CATEGORY" => match value {
            Value::Number(number) if number.is_u64() => Ok(value.clone()),
            _ => checked_string(value)
                .map(Value::from)
                .map_err(|rule| format!("{rule} (or a category id)")),
        },
        "NUMBER" => match value {
            Value::Number(_) => Ok(value.clone()),
            Value::String(text) => text
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .ok()
                .or_else(|| {
                    text.trim()
                        .parse::<f64>()
                        .ok()
                        .and_then(Number::from_f64)
                        .map(Value::Number)
                })
                .ok_or_else(|| format!("must be a number; {text:?} is not one")),
            _ => Err("must be a number (integer or decimal)".into()),
        },
        "DATETIME" => {
            let text = value
                .as_str()
                .ok_or("must be an ISO-8601 date-time string, e.g. 2024-05-01T10:00:00Z")?;
            parse_datetime(text)
                .map(|time| Value::from(time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)))
                .ok_or_else(|| {
                    format!("{text:?} is not an ISO-8601 date-time, e.g. 2024-05-01T10:00:00Z")
                })
        }
        "BOOLEAN" => match value {
            Value::Bool(_) => Ok(value.clone()),
            Value::String(text) if text.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Value::String(text) if text.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            _ => Err("must be true or false".into()),
        },
        other => Err(format!("the field's data type {other} is unknown")),
    }
}

/// Checks one row against the schema, adding its problems.
fn check_row(
    schema: &Schema,
    row: usize,
    value: &Value,
    problems: &mut Vec<Problem>,
) -> Option<CheckedRow> {
    let Some(object) = value.as_object() else {
        problems.push(Problem {
            row: Some(row),
            field: None,
            rule: "a row is an object of field name to value".into(),
        });
        return None;
    };
    let before = problems.len();
    for name in object.keys() {
        if !schema.fields.contains_key(name) {
            problems.push(row_problem(
                row,
                name,
                format!("not a field of schema {}", schema.name),
            ));
        }
    }
    let mut values = Map::new();
    for (name, field) in &schema.fields {
        let given = object.get(name).filter(|value| !value.is_null());
        let Some(given) = given else {
            if field.identifier || field.unique_key || field.required {
                problems.push(row_problem(row, name, "required value missing"));
            }
            values.insert(name.clone(), Value::Null);
            continue;
        };
        match checked_value(field, given) {
            Ok(stored) => {
                let too_long = (field.identifier || field.unique_key)
                    && stored.as_str().map_or(0, |s| s.chars().count()) > MAX_KEY_CHARS;
                if too_long {
                    problems.push(row_problem(
                        row,
                        name,
                        format!(
                            "an identifier or unique key has at most {MAX_KEY_CHARS} characters"
                        ),
                    ));
                }
                values.insert(name.clone(), stored);
            }
            Err(rule) => problems.push(row_problem(
                row,
                name,
                format!("{} field: {rule}", field.data_type),
            )),
        }
    }
    let size = serde_json::to_string(&values).map_or(0, |text| text.len());
    if size > MAX_ROW_BYTES {
        problems.push(Problem {
            row: Some(row),
            field: None,
            rule: format!("a row is at most {MAX_ROW_BYTES} bytes of JSON; this one is {size}"),
        });
    }
    if problems.len() > before {
        return None;
    }
    let key_of = |name: Option<&str>| {
        name.and_then(|name| values.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Some(CheckedRow {
        row,
        identifier: key_of(Some(schema.identifier())).unwrap_or_default(),
        unique: key_of(schema.unique_key()),
        values,
    })
}

/// Reads and checks a POST body whole: `{"schema_rows": […], "_sent_time": "…"}`.
pub fn check_body(schema: &Schema, body: &Value) -> Result<Vec<CheckedRow>, Refusal> {
    let refuse = |field: &str, rule: String| Refusal {
        problems: vec![Problem {
            row: None,
            field: Some(field.to_string()),
            rule,
        }],
        total: 1,
        rows: 0,
    };
    let Some(object) = body.as_object() else {
        return Err(refuse(
            "body",
            "a JSON object {\"schema_rows\": [...]}".into(),
        ));
    };
    if let Some(unknown) = object
        .keys()
        .find(|key| !matches!(key.as_str(), "schema_rows" | "_sent_time"))
    {
        return Err(refuse(
            unknown,
            "unknown; the body has schema_rows and _sent_time".into(),
        ));
    }
    if object
        .get("_sent_time")
        .is_some_and(|sent| !sent.is_string() && !sent.is_null())
    {
        return Err(refuse("_sent_time", "a string".into()));
    }
    let Some(rows) = object.get("schema_rows").and_then(Value::as_array) else {
        return Err(refuse("schema_rows", "required: an array of rows".into()));
    };
    if rows.is_empty() || rows.len() > MAX_ROWS {
        return Err(refuse(
            "schema_rows",
            format!("1 to {MAX_ROWS} rows; got {}", rows.len()),
        ));
    }
    let mut problems = Vec::new();
    let mut total = 0;
    let mut checked = Vec::with_capacity(rows.len());
    let mut bad_rows = 0;
    for (index, row) in rows.iter().enumerate() {
        let mut found = Vec::new();
        match check_row(schema, index + 1, row, &mut found) {
            Some(row) => checked.push(row),
            None => bad_rows += 1,
        }
        total += found.len();
        let room = MAX_LISTED_PROBLEMS.saturating_sub(problems.len());
        problems.extend(found.into_iter().take(room));
    }
    if bad_rows > 0 {
        return Err(Refusal {
            problems,
            total,
            rows: bad_rows,
        });
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field(data_type: &str) -> Field {
        Field {
            data_type: data_type.into(),
            identifier: false,
            unique_key: false,
            event_time: false,
            required: false,
        }
    }

    #[test]
    fn multi_strings_split_on_unescaped_commas_only() {
        assert_eq!(split_multi_string("a, b,c"), ["a", "b", "c"]);
        assert_eq!(
            split_multi_string(r"early\,adopter,vip"),
            ["early,adopter", "vip"]
        );
        assert_eq!(split_multi_string(r"back\slash"), [r"back\slash"]);
    }

    #[test]
    fn values_are_checked_and_stored_in_their_type() {
        let number = field("NUMBER");
        assert_eq!(checked_value(&number, &json!("12")), Ok(json!(12)));
        assert_eq!(checked_value(&number, &json!("1.5")), Ok(json!(1.5)));
        assert!(checked_value(&number, &json!("NaN")).is_err());
        assert!(checked_value(&number, &json!(true)).is_err());
        let when = field("DATETIME");
        assert_eq!(
            checked_value(&when, &json!("2024-05-01T12:00:00+02:00")),
            Ok(json!("2024-05-01T10:00:00Z"))
        );
        assert_eq!(
            checked_value(&when, &json!("2024-05-01")),
            Ok(json!("2024-05-01T00:00:00Z"))
        );
        assert!(checked_value(&when, &json!("May 1st")).is_err());
        let flag = field("BOOLEAN");
        assert_eq!(checked_value(&flag, &json!("False")), Ok(json!(false)));
        assert!(checked_value(&flag, &json!(1)).is_err());
        let text = field("STRING");
        assert!(checked_value(&text, &json!("")).is_err());
        assert!(checked_value(&text, &json!("x ")).is_err());
        assert!(checked_value(&text, &json!("x".repeat(MAX_STRING_CHARS + 1))).is_err());
        let category = field("GOOGLE_PRODUCT_CATEGORY");
        assert_eq!(checked_value(&category, &json!(166)), Ok(json!(166)));
        assert!(checked_value(&category, &json!(-1)).is_err());
    }
}
