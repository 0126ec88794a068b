//! Monetate records: bulk posts of `schema_rows` (checked whole, all or nothing), the
//! single-record spot check with its 1 request/s limit, and the file-upload log.
//!
//! A row's identifier is the tenant's customer key: each posted row also finds or creates
//! that customer in the shared store, and rows of attribute schemas set its attributes.
//!
//! This module holds the limits and the rows themselves: writing checked rows with their
//! customers, finding them for a spot check (and its rate), reading a customer's rows, and
//! counting a schema's. [`check`] checks a body against its schema, and
//! [`uploads`](mod@uploads) keeps the upload log.

mod check;
mod uploads;

pub use check::{CheckedRow, Refusal, check_body, checked_value, split_multi_string};
pub use uploads::{FileUpload, log_refusal, uploads};

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::customers::{self, CustomerError, CustomerStore, Identifier, Upsert, UpsertOutcome};
use crate::domain::Problem;
use crate::domain::TenantId;
use crate::monetate::schemas::Schema;
use crate::storage::{Item, ItemTable, Key, Query, StorageError, WriteRequest, batch, keys};
use check::row_problem;
use uploads::{describe, log_upload, new_upload};

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

fn row_hash(store: CustomerStore<'_>, value: &str) -> String {
    store.keyed_hash(&format!("monetate-row\u{0}{value}"))
}

/// A row's key: by its unique key when the schema has one (a repeat replaces it), else by
/// its identifier and a row id.
fn row_key(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    schema: &Schema,
    row: &CheckedRow,
    row_id: &str,
) -> Key {
    let sk = match &row.unique {
        Some(unique) => format!("U{}", row_hash(store, unique)),
        None => format!("I{}#{row_id}", row_hash(store, &row.identifier)),
    };
    keys::monetate_row(tenant, &schema.name, sk)
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
///
/// The clock is read when the post starts (the customers' writes carry that time) and again
/// when it ends (the upload log's entry): a post of many rows takes a while.
pub async fn post(
    store: CustomerStore<'_>,
    clock: &dyn Clock,
    tenant: &TenantId,
    schema: &Schema,
    body: &[u8],
    rows: Vec<CheckedRow>,
) -> Result<Posted, CustomerError> {
    let now = clock.now_millis();
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
        customers::register_attributes(store, tenant, names, SURFACE, now).await?;
    }
    let item_of = |row: &CheckedRow| {
        let key = row_key(
            store,
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
    let outcomes = customers::upsert_many(store, tenant, &upserts, SURFACE, now).await?;
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
    batch::write_all(store.table, writes).await?;
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
    let now = clock.now_millis();
    let mut upload = new_upload(now, "COMPLETE", written.len());
    upload.import_end_time = Some(crate::clock::iso8601_millis(now));
    upload.validation_warnings = warnings.iter().map(describe).collect();
    log_upload(store.table, tenant, schema, &upload, now).await?;
    Ok(Posted {
        rows: written,
        warnings,
    })
}

/// The rows a spot check's id matches: by the unique key when the schema has one, else by
/// the identifier (every row appended for it, oldest first).
pub async fn find(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    schema: &Schema,
    id: &str,
) -> Result<Vec<Value>, StorageError> {
    let hash = row_hash(store, id);
    let items = if schema.unique_key().is_some() {
        let key = keys::monetate_row(tenant, &schema.name, format!("U{hash}"));
        store.table.get(&key).await?.into_iter().collect()
    } else {
        let pk = keys::monetate_rows_pk(tenant, &schema.name, &hash[..1]);
        let query = Query::partition(pk)
            .prefix(format!("I{hash}#"))
            .limit(MAX_SPOT_CHECK_ROWS);
        let mut items = store.table.query(query).await?.items;
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
    store: CustomerStore<'_>,
    tenant: &TenantId,
    customer_key: &str,
) -> Result<Vec<(String, Item)>, StorageError> {
    let hash = row_hash(store, customer_key);
    let mut found = Vec::new();
    for schema in crate::monetate::schemas::list(store.table, tenant).await? {
        let rows = match schema.unique_key() {
            Some(unique) if unique == schema.identifier() => {
                let key = keys::monetate_row(tenant, &schema.name, format!("U{hash}"));
                store.table.get(&key).await?.into_iter().collect()
            }
            Some(_) => {
                let mut rows = Vec::new();
                for shard in ROW_SHARDS.chars() {
                    let pk = keys::monetate_rows_pk(tenant, &schema.name, &shard.to_string());
                    let query = Query::partition(pk).limit(1000);
                    rows.extend(
                        crate::storage::read_all(store.table, query)
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
                crate::storage::read_all(store.table, query).await?
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
    table: &dyn ItemTable,
    tenant: &TenantId,
    username: &str,
    now_millis: i64,
) -> Result<bool, StorageError> {
    crate::ratelimit::take_interval(
        table,
        &keys::monetate_rate(tenant, username),
        now_millis,
        SPOT_CHECK_INTERVAL_MILLIS,
    )
    .await
}

/// How many rows a schema has, counted up to `cap` (rows are only ever read to count them).
pub async fn count_rows(
    table: &dyn ItemTable,
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
            let page = table.query(query).await?;
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
