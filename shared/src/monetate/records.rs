//! Monetate records: bulk posts of `schema_rows` (checked whole, all or nothing), the
//! single-record spot check with its 1 request/s limit, and the file-upload log.
//!
//! A row's identifier is the tenant's customer key: each posted row also finds or creates
//! that customer in the shared store, and rows of attribute schemas set its attributes.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value, json};
use sha2::{Digest, Sha256};

use super::schemas::{Field, Schema};
use crate::app::App;
use crate::customers::{self, CustomerError, Identifier, Upsert, UpsertOutcome};
use crate::domain::Problem;
use crate::domain::TenantId;
use crate::storage::{Condition, Item, Key, Query, StorageError, WriteRequest, batch, keys};

/// The first hex digit of a row's hash names its partition of the schema.
const ROW_SHARDS: &str = "0123456789abcdef";

/// Rows in one POST.
pub const MAX_ROWS: usize = 50_000;
/// Characters of a STRING, MULTI_STRING or GOOGLE_PRODUCT_CATEGORY value.
pub const MAX_STRING_CHARS: usize = 2_048;
/// Characters of an identifier (a customer key) or unique key.
pub const MAX_KEY_CHARS: usize = 256;
/// Bytes of one row as JSON: a DynamoDB item is at most 400 KB.
pub const MAX_ROW_BYTES: usize = 100_000;
/// Problems listed in one refusal (all are counted).
pub const MAX_LISTED_PROBLEMS: usize = 100;
/// Rows one spot check returns (appended rows of one identifier can be many).
pub const MAX_SPOT_CHECK_ROWS: usize = 1_000;
/// Ids in one call of the lookup extension.
pub const MAX_LOOKUP_IDS: usize = 100;
/// The spot check's limit: one request per this many milliseconds per API user.
pub const SPOT_CHECK_INTERVAL_MILLIS: i64 = 1_000;
/// How long the upload log keeps an upload.
pub const UPLOAD_RETENTION_SECONDS: i64 = 30 * 86_400;
/// The surface name on customer attributes this surface sets.
pub const SURFACE: &str = "monetate";

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

fn row_problem(row: usize, field: &str, rule: impl Into<String>) -> Problem {
    Problem {
        row: Some(row),
        field: Some(field.to_string()),
        rule: rule.into(),
    }
}

/// Splits a MULTI_STRING on commas that are not escaped (`\,` stays inside a value).
pub fn split_multi_string(text: &str) -> Vec<String> {
    let mut values = vec![String::new()];
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => {
                chars.next();
                values.last_mut().expect("never empty").push(',');
            }
            ',' => values.push(String::new()),
            other => values.last_mut().expect("never empty").push(other),
        }
    }
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

fn row_hash(app: &App, value: &str) -> String {
    app.keyed_hash(&format!("monetate-row\u{0}{value}"))
}

/// A row's key: by its unique key when the schema has one (a repeat replaces it), else by
/// its identifier and a row id.
fn row_key(app: &App, tenant: &TenantId, schema: &Schema, row: &CheckedRow, row_id: &str) -> Key {
    let sk = match &row.unique {
        Some(unique) => format!("U{}", row_hash(app, unique)),
        None => format!("I{}#{row_id}", row_hash(app, &row.identifier)),
    };
    keys::monetate_row(tenant, &schema.name, sk)
}

/// One entry of the upload log (Monetate's FileUpload).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileUpload {
    pub id: String,
    pub status: String,
    pub upload_time: String,
    pub import_start_time: Option<String>,
    pub import_end_time: Option<String>,
    pub row_count: usize,
    pub validation_errors: Vec<String>,
    pub validation_warnings: Vec<String>,
}

fn describe(problem: &Problem) -> String {
    let mut text = String::new();
    if let Some(row) = problem.row {
        text.push_str(&format!("row {row}, "));
    }
    if let Some(field) = &problem.field {
        text.push_str(&format!("field {field}: "));
    }
    text.push_str(&problem.rule);
    text
}

async fn log_upload(
    app: &App,
    tenant: &TenantId,
    schema: &Schema,
    upload: &FileUpload,
) -> Result<(), StorageError> {
    let key = Key::new(keys::monetate_uploads_pk(tenant, &schema.name), &upload.id);
    let now = app.clock.now_seconds();
    let item = Item::new(key.pk, key.sk)
        .with("upload", json!(upload))
        .expiring_at(now + UPLOAD_RETENTION_SECONDS);
    app.table.put(item, Condition::Always).await
}

fn new_upload(app: &App, status: &str, rows: usize) -> FileUpload {
    let now = app.clock.now_millis();
    let time = crate::clock::iso8601_millis(now);
    FileUpload {
        id: format!("{now:013}{}", &crate::tenancy::new_id("")[..8]),
        status: status.to_string(),
        upload_time: time.clone(),
        import_start_time: Some(time),
        import_end_time: None,
        row_count: rows,
        validation_errors: Vec::new(),
        validation_warnings: Vec::new(),
    }
}

/// Logs a refused body as a VALIDATION_ERROR upload.
pub async fn log_refusal(
    app: &App,
    tenant: &TenantId,
    schema: &Schema,
    refusal: &Refusal,
) -> Result<(), StorageError> {
    let mut upload = new_upload(app, "VALIDATION_ERROR", 0);
    upload.validation_errors = refusal.problems.iter().map(describe).collect();
    upload.import_end_time = upload.import_start_time.clone();
    log_upload(app, tenant, schema, &upload).await
}

/// What a post wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Posted {
    pub rows: Vec<Value>,
    /// Rows not written, and why (their customer was erased and is suppressed).
    pub warnings: Vec<Problem>,
}

/// The attributes a row of an attribute schema sets on its customer.
fn attributes_of(schema: &Schema, row: &CheckedRow) -> BTreeMap<String, Value> {
    if !schema.holds_attributes() {
        return BTreeMap::new();
    }
    row.values
        .iter()
        .filter(|(name, value)| !value.is_null() && name.as_str() != schema.identifier())
        .map(|(name, value)| {
            let is_multi = schema
                .fields
                .get(name)
                .is_some_and(|field| field.data_type == "MULTI_STRING");
            let value = match value.as_str() {
                Some(text) if is_multi => json!(split_multi_string(text)),
                _ => value.clone(),
            };
            (name.clone(), value)
        })
        .collect()
}

/// Rows of one customer written in the transaction that writes the customer; more
/// (a long history of one customer in one post) are written in batches after it.
const MAX_ROWS_WITH_CUSTOMER: usize = 64;
/// ... and about this many bytes of them (a transaction holds 4 MB on DynamoDB).
const MAX_BYTES_WITH_CUSTOMER: usize = 1_000_000;

/// Writes checked rows with their customers (a suppressed customer's rows are refused). Appended rows get ids derived from the body, so a retried post writes the
/// same rows again instead of adding copies.
pub async fn post(
    app: &App,
    tenant: &TenantId,
    schema: &Schema,
    body: &[u8],
    rows: Vec<CheckedRow>,
) -> Result<Posted, CustomerError> {
    let now = app.clock.now_millis();
    let body_id = hex::encode(&Sha256::digest(body)[..8]);
    // A repeated unique key replaces the row: within a body, the last one wins.
    let mut last_of_key: HashMap<String, usize> = HashMap::new();
    for (index, row) in rows.iter().enumerate() {
        if let Some(unique) = &row.unique {
            last_of_key.insert(unique.clone(), index);
        }
    }
    let rows: Vec<CheckedRow> = rows
        .into_iter()
        .enumerate()
        .filter(|(index, row)| {
            row.unique
                .as_ref()
                .is_none_or(|key| last_of_key[key] == *index)
        })
        .map(|(_, row)| row)
        .collect();
    let mut by_customer: BTreeMap<&str, Vec<&CheckedRow>> = BTreeMap::new();
    for row in &rows {
        by_customer.entry(&row.identifier).or_default().push(row);
    }
    if schema.holds_attributes() {
        let names: Vec<&str> = schema
            .fields
            .keys()
            .map(String::as_str)
            .filter(|name| *name != schema.identifier())
            .collect();
        customers::register_attributes(app, tenant, names, SURFACE, now).await?;
    }
    let item_of = |row: &CheckedRow| {
        let key = row_key(
            app,
            tenant,
            schema,
            row,
            &format!("{body_id}{:06}", row.row),
        );
        Item::new(key.pk, key.sk)
            .with("row", Value::Object(row.values.clone()))
            .with("identifier", row.identifier.clone())
            .with("received_at", now)
    };
    // A customer's rows commit in the transaction that writes the customer, so concurrent
    // posts leave each customer's attributes and rows from the same post; rows past
    // MAX_ROWS_WITH_CUSTOMER (one customer's long history in one post) follow in batches.
    let mut after = Vec::new();
    let upserts: Vec<Upsert> = by_customer
        .values()
        .map(|rows| {
            let mut items: Vec<Item> = rows.iter().map(|row| item_of(row)).collect();
            let mut bytes = 0;
            let with_customer = rows
                .iter()
                .take(MAX_ROWS_WITH_CUSTOMER)
                .take_while(|row| {
                    bytes += Value::Object(row.values.clone()).to_string().len();
                    bytes <= MAX_BYTES_WITH_CUSTOMER
                })
                .count();
            after.extend(
                items
                    .split_off(with_customer)
                    .into_iter()
                    .map(|item| (rows[0].identifier.as_str(), item)),
            );
            Upsert {
                key: Identifier::customer_key(rows[0].identifier.clone()),
                identifiers: Vec::new(),
                attributes: rows
                    .iter()
                    .flat_map(|row| attributes_of(schema, row))
                    .collect(),
                items,
            }
        })
        .collect();
    let outcomes = customers::upsert_many(app, tenant, &upserts, SURFACE, now).await?;
    let mut refused: HashMap<&str, String> = HashMap::new();
    for (rows, outcome) in by_customer.values().zip(&outcomes) {
        if let UpsertOutcome::Refused(why) = outcome {
            refused.insert(&rows[0].identifier, why.clone());
        }
    }
    let writes = after
        .into_iter()
        .filter(|(identifier, _)| !refused.contains_key(identifier))
        .map(|(_, item)| WriteRequest::Put(item))
        .collect();
    batch::write_all(app.table.as_ref(), writes).await?;
    let mut written = Vec::new();
    let mut warnings = Vec::new();
    for row in &rows {
        match refused.get(row.identifier.as_str()) {
            Some(why) => warnings.push(row_problem(
                row.row,
                schema.identifier(),
                format!("not written: {why}"),
            )),
            None => written.push(Value::Object(row.values.clone())),
        }
    }
    let mut upload = new_upload(app, "COMPLETE", written.len());
    upload.import_end_time = Some(crate::clock::iso8601_millis(app.clock.now_millis()));
    upload.validation_warnings = warnings.iter().map(describe).collect();
    log_upload(app, tenant, schema, &upload).await?;
    Ok(Posted {
        rows: written,
        warnings,
    })
}

/// The rows a spot check's id matches: by the unique key when the schema has one, else by
/// the identifier (every row appended for it, oldest first).
pub async fn find(
    app: &App,
    tenant: &TenantId,
    schema: &Schema,
    id: &str,
) -> Result<Vec<Value>, StorageError> {
    let hash = row_hash(app, id);
    let items = if schema.unique_key().is_some() {
        let key = keys::monetate_row(tenant, &schema.name, format!("U{hash}"));
        app.table.get(&key).await?.into_iter().collect()
    } else {
        let pk = keys::monetate_rows_pk(tenant, &schema.name, &hash[..1]);
        let query = Query::partition(pk)
            .prefix(format!("I{hash}#"))
            .limit(MAX_SPOT_CHECK_ROWS);
        let mut items = app.table.query(query).await?.items;
        items.sort_by_key(|item| item.i64("received_at").unwrap_or_default());
        items
    };
    Ok(items
        .into_iter()
        .filter_map(|item| item.get("row").cloned())
        .collect())
}

/// Every row of one customer (rows whose identifier is its customer key) in every schema,
/// with its schema's name: what an access export shows and an erasure removes. Appended rows
/// and rows kept by the identifier itself are found by the identifier's hash; a schema whose
/// unique key is another field is read through, since its rows are keyed by that field
/// (erasures and exports are rare; a secondary index would cost every row write).
pub async fn customer_rows(
    app: &App,
    tenant: &TenantId,
    customer_key: &str,
) -> Result<Vec<(String, Item)>, StorageError> {
    let hash = row_hash(app, customer_key);
    let mut found = Vec::new();
    for schema in super::schemas::list(app, tenant).await? {
        let rows = match schema.unique_key() {
            Some(unique) if unique == schema.identifier() => {
                let key = keys::monetate_row(tenant, &schema.name, format!("U{hash}"));
                app.table.get(&key).await?.into_iter().collect()
            }
            Some(_) => {
                let mut rows = Vec::new();
                for shard in ROW_SHARDS.chars() {
                    let pk = keys::monetate_rows_pk(tenant, &schema.name, &shard.to_string());
                    let query = Query::partition(pk).limit(1000);
                    rows.extend(
                        crate::storage::read_all(app.table.as_ref(), query)
                            .await?
                            .into_iter()
                            .filter(|row| row.str("identifier") == Some(customer_key)),
                    );
                }
                rows
            }
            None => {
                let pk = keys::monetate_rows_pk(tenant, &schema.name, &hash[..1]);
                let query = Query::partition(pk).prefix(format!("I{hash}#")).limit(1000);
                crate::storage::read_all(app.table.as_ref(), query).await?
            }
        };
        found.extend(rows.into_iter().map(|row| (schema.name.clone(), row)));
    }
    Ok(found)
}

/// The row as a spot check shows it.
pub fn row_view(item: &Item) -> Value {
    item.get("row").cloned().unwrap_or(Value::Null)
}

/// Takes the API user's one spot check of this second, if it is still free (the state is
/// in the store, so the limit holds across Lambda instances).
pub async fn take_spot_check(
    app: &App,
    tenant: &TenantId,
    username: &str,
) -> Result<bool, StorageError> {
    crate::ratelimit::take_interval(
        app.table.as_ref(),
        &keys::monetate_rate(tenant, username),
        app.clock.now_millis(),
        SPOT_CHECK_INTERVAL_MILLIS,
    )
    .await
}

/// The upload log of a schema, newest first.
pub async fn uploads(
    app: &App,
    tenant: &TenantId,
    schema: &str,
    limit: usize,
) -> Result<Vec<FileUpload>, StorageError> {
    let query = Query::partition(keys::monetate_uploads_pk(tenant, schema))
        .descending()
        .limit(limit);
    Ok(app
        .table
        .query(query)
        .await?
        .items
        .iter()
        .filter_map(|item| serde_json::from_value(item.get("upload")?.clone()).ok())
        .collect())
}

/// How many rows a schema has, counted up to `cap` (rows are only ever read to count them).
pub async fn count_rows(
    app: &App,
    tenant: &TenantId,
    schema: &str,
    cap: usize,
) -> Result<Option<usize>, StorageError> {
    let mut count = 0;
    for shard in ROW_SHARDS.chars() {
        let mut cursor = None;
        loop {
            let query =
                Query::partition(keys::monetate_rows_pk(tenant, schema, &shard.to_string()))
                    .limit(1000)
                    .after(cursor);
            let page = app.table.query(query).await?;
            count += page.items.len();
            if count > cap {
                return Ok(None);
            }
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
    }
    Ok(Some(count))
}

#[cfg(test)]
mod tests {
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
