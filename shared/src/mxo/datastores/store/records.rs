//! Records: writing rows into a table version (each record succeeds or fails alone),
//! reading them by key from the version a pointer names, and deleting them.

use crate::mxo::datastores::model::ApiName;
use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::{
    DatastoreError, DatastoreState, POINTER_SWITCH, Target, VersionId, all_references, attempt_of,
    attribute, list, require,
};
use crate::domain::TenantId;
use crate::mxo::datastores::model::ValidRecord;
use crate::retry::{Attempt, optimistic};
use crate::storage::{
    Item, ItemTable, Key, Query, StorageError, Update, WriteRequest, batch, keys, read_all,
    validate_item,
};

/// The version a write to `target` goes to; a sealed staging table gets a new, empty one
/// (the sealed one stays, named by its reference, until it goes live or is retired).
async fn writable_version(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &ApiName,
    target: Target,
) -> Result<(DatastoreState, VersionId), DatastoreError> {
    optimistic(POINTER_SWITCH, || async move {
        let state = require(table, tenant, api_name).await?;
        if target == Target::Live {
            let version = state.live_version.clone();
            return Ok(Attempt::Done((state, version)));
        }
        if state.staging_reference.is_none() {
            let version = state.staging_version.clone();
            return Ok(Attempt::Done((state, version)));
        }
        let version = VersionId::fresh();
        let open = state.switch(tenant, state.open_staging(Update::default(), &version));
        let Attempt::Done(()) = attempt_of(table.transact(vec![open]).await)? else {
            return Ok(Attempt::Contended);
        };
        let state = require(table, tenant, api_name).await?;
        Ok(Attempt::Done((state, version)))
    })
    .await
}

/// What became of one record of an insert. On the wire it is the HTTP-like status the vendor
/// reports in `result`: "204", "400" or "503".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertResult {
    Written,
    /// The record breaks a rule of the definition; sending it again will not help.
    Refused,
    /// Valid but not written (storage throttled); sending it again may succeed.
    NotWritten,
}

impl InsertResult {
    /// The status as the vendor reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            InsertResult::Written => "204",
            InsertResult::Refused => "400",
            InsertResult::NotWritten => "503",
        }
    }
}

impl Serialize for InsertResult {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The outcome of one record of an insert, in input order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InsertOutcome {
    pub primary_key: String,
    pub secondary_key: String,
    pub result: InsertResult,
    pub message: Option<String>,
}

/// A record's row item; the record is kept as JSON text, so it reads back the same on
/// every adapter (DynamoDB would otherwise normalise numbers).
fn row_item(
    tenant: &TenantId,
    api_name: &ApiName,
    version: &VersionId,
    record: &ValidRecord,
) -> Item {
    let key = keys::datastore_row(
        tenant,
        api_name,
        version,
        &record.primary_key,
        &record.secondary_key,
    );
    let text = serde_json::to_string(&record.fields).unwrap_or_default();
    Item::new(key.pk, key.sk).with(attribute::RECORD, text)
}

/// Validates and writes records into a table; each record succeeds or fails alone. Two
/// records with the same keys in one request: the later one is the one kept.
pub async fn insert(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &ApiName,
    target: Target,
    records: &[Value],
) -> Result<Vec<InsertOutcome>, DatastoreError> {
    let (state, version) = writable_version(table, tenant, api_name, target).await?;
    let definition = &state.definition;
    let key_text = |record: &Value, column: Option<&String>| {
        column
            .and_then(|column| record.get(column))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let mut outcomes = Vec::with_capacity(records.len());
    let mut rows: HashMap<Key, Item> = HashMap::with_capacity(records.len());
    for record in records {
        let checked = definition.check_record(record).and_then(|valid| {
            let item = row_item(tenant, api_name, &version, &valid);
            validate_item(&item).map_err(|_| {
                "the record is larger than a stored row can be (400 KB)".to_string()
            })?;
            Ok((valid, item))
        });
        match checked {
            Ok((valid, item)) => {
                rows.insert(Key::from(&item), item);
                outcomes.push(InsertOutcome {
                    primary_key: valid.primary_key,
                    secondary_key: valid.secondary_key,
                    result: InsertResult::Written,
                    message: None,
                });
            }
            Err(message) => outcomes.push(InsertOutcome {
                primary_key: key_text(record, Some(&definition.primary_key)),
                secondary_key: key_text(record, definition.secondary_key.as_ref()),
                result: InsertResult::Refused,
                message: Some(message),
            }),
        }
    }
    let writes = rows.into_values().map(WriteRequest::Put).collect();
    match batch::write_all(table, writes).await {
        Ok(()) => {}
        Err(StorageError::BatchIncomplete {
            keys: unwritten, ..
        }) => {
            // Reported per record: these were valid but not written, and can be sent again.
            for outcome in outcomes
                .iter_mut()
                .filter(|o| o.result == InsertResult::Written)
            {
                let key = keys::datastore_row(
                    tenant,
                    api_name,
                    &version,
                    &outcome.primary_key,
                    &outcome.secondary_key,
                );
                if unwritten.contains(&key) {
                    outcome.result = InsertResult::NotWritten;
                    outcome.message =
                        Some("not written: storage is throttling; send this record again".into());
                }
            }
        }
        Err(other) => return Err(other.into()),
    }
    Ok(outcomes)
}

async fn rows_of(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &ApiName,
    version: &VersionId,
    primary_key: &str,
    secondary_key: Option<&str>,
) -> Result<Vec<Item>, StorageError> {
    if let Some(secondary_key) = secondary_key {
        let key = keys::datastore_row(tenant, api_name, version, primary_key, secondary_key);
        return Ok(table.get(&key).await?.into_iter().collect());
    }
    let pk = keys::datastore_rows_pk(
        tenant,
        api_name,
        version,
        keys::datastore_row_shard(primary_key),
    );
    read_all(
        table,
        Query::partition(pk)
            .prefix(keys::datastore_row_prefix(primary_key))
            .limit(1000),
    )
    .await
}

fn record_of(item: &Item) -> Value {
    item.str(attribute::RECORD)
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_else(|| json!({}))
}

/// The records of a table with this primary key (and secondary key, if given).
pub async fn read(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &ApiName,
    target: Target,
    primary_key: &str,
    secondary_key: Option<&str>,
) -> Result<Vec<Value>, DatastoreError> {
    let state = require(table, tenant, api_name).await?;
    let version = match target {
        Target::Live => &state.live_version,
        Target::Staging => &state.staging_version,
    };
    let rows = rows_of(table, tenant, api_name, version, primary_key, secondary_key).await?;
    Ok(rows.iter().map(record_of).collect())
}

/// The decisioning read: live records of a datastore by keys. Other parts of custdata (the
/// Customer API's structures and eligibility rules) read datastores through this function.
pub async fn read_live(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &ApiName,
    primary_key: &str,
    secondary_key: Option<&str>,
) -> Result<Vec<Value>, DatastoreError> {
    read(
        table,
        tenant,
        api_name,
        Target::Live,
        primary_key,
        secondary_key,
    )
    .await
}

/// Live records for many keys, all read from one version of the live table.
pub async fn lookup_live(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &ApiName,
    lookups: &[(String, Option<String>)],
) -> Result<Vec<Value>, DatastoreError> {
    let state = require(table, tenant, api_name).await?;
    let reads = lookups.iter().map(|(primary_key, secondary_key)| {
        rows_of(
            table,
            tenant,
            api_name,
            &state.live_version,
            primary_key,
            secondary_key.as_deref(),
        )
    });
    let results = futures::future::try_join_all(reads).await?;
    Ok(results.iter().flatten().map(record_of).collect())
}

/// Deletes the records with this primary key (and secondary key, if given); returns how many.
pub async fn delete_rows(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &ApiName,
    target: Target,
    primary_key: &str,
    secondary_key: Option<&str>,
) -> Result<usize, DatastoreError> {
    let (_, version) = writable_version(table, tenant, api_name, target).await?;
    let rows = rows_of(
        table,
        tenant,
        api_name,
        &version,
        primary_key,
        secondary_key,
    )
    .await?;
    let count = rows.len();
    batch::delete_all(table, &rows).await?;
    Ok(count)
}

/// A stored row and where it lives.
pub struct KeyedRow {
    pub api_name: String,
    /// `live` or `staging` for the tables a client reads; `snapshot` for a version only a
    /// reference still names.
    pub table: &'static str,
    pub item: Item,
}

impl KeyedRow {
    /// The record as the API returns it.
    pub fn record(&self) -> Value {
        record_of(&self.item)
    }
}

/// Every row whose primary key is one of `primary_keys`, in every version of every datastore
/// of the tenant that can still be read — live, staging, and any version a reference names:
/// what an access export shows and an erasure removes (a sealed snapshot is otherwise never
/// changed; an erasure is the one exception).
pub async fn rows_keyed_by(
    table: &dyn ItemTable,
    tenant: &TenantId,
    primary_keys: &[String],
) -> Result<Vec<KeyedRow>, StorageError> {
    let mut found = Vec::new();
    for state in list(table, tenant).await? {
        let api_name = state.api_name();
        let mut versions = vec![
            (state.live_version.clone(), "live"),
            (state.staging_version.clone(), "staging"),
        ];
        for reference in all_references(table, tenant, api_name).await? {
            if let Some(version) = reference.version
                && !versions.iter().any(|(known, _)| *known == version)
            {
                versions.push((version, "snapshot"));
            }
        }
        for (version, kind) in &versions {
            for primary_key in primary_keys {
                let rows = rows_of(table, tenant, api_name, version, primary_key, None).await?;
                found.extend(rows.into_iter().map(|item| KeyedRow {
                    api_name: api_name.to_string(),
                    table: kind,
                    item,
                }));
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::{term, terms, terms_datastore};
    use super::*;

    #[tokio::test]
    async fn records_written_to_staging_read_back_from_staging_and_not_from_live() {
        let (_dir, app, tenant) = terms_datastore().await;
        let table = app.table.as_ref();
        let outcomes = insert(
            table,
            &tenant,
            &terms(),
            Target::Staging,
            &[term("C-1", 10)],
        )
        .await
        .expect("inserted");
        assert_eq!(outcomes[0].result, InsertResult::Written);
        let staged = read(table, &tenant, &terms(), Target::Staging, "C-1", Some("P"))
            .await
            .expect("read");
        assert_eq!(staged, vec![term("C-1", 10)]);
        let live = read_live(table, &tenant, &terms(), "C-1", None)
            .await
            .expect("read");
        assert!(live.is_empty(), "live is untouched: {live:?}");
    }

    #[tokio::test]
    async fn a_record_that_breaks_a_rule_is_refused_alone_and_the_later_of_two_same_keys_is_kept() {
        let (_dir, app, tenant) = terms_datastore().await;
        let table = app.table.as_ref();
        let bad = json!({"customerID": "C-2", "productID": "P", "creditLimit": "lots"});
        let records = [term("C-1", 1), bad, term("C-1", 2)];
        let outcomes = insert(table, &tenant, &terms(), Target::Live, &records)
            .await
            .expect("inserted");
        let results: Vec<_> = outcomes.iter().map(|o| o.result).collect();
        assert_eq!(
            results,
            [
                InsertResult::Written,
                InsertResult::Refused,
                InsertResult::Written
            ]
        );
        assert_eq!(outcomes[1].primary_key, "C-2");
        assert!(outcomes[1].message.is_some());
        let rows = lookup_live(
            table,
            &tenant,
            &terms(),
            &[("C-1".into(), None), ("C-2".into(), None)],
        )
        .await
        .expect("read");
        assert_eq!(rows, vec![term("C-1", 2)]);
    }

    #[test]
    fn each_insert_result_is_the_status_string_the_vendor_reports() {
        let wire = json!([
            InsertResult::Written,
            InsertResult::Refused,
            InsertResult::NotWritten
        ]);
        assert_eq!(wire, json!(["204", "400", "503"]));
    }

    #[tokio::test]
    async fn a_write_to_sealed_staging_goes_to_a_new_empty_version_and_the_snapshot_keeps_its_rows()
    {
        let (_dir, app, tenant) = terms_datastore().await;
        let table = app.table.as_ref();
        insert(table, &tenant, &terms(), Target::Staging, &[term("C-1", 1)])
            .await
            .expect("inserted");
        let sealed =
            crate::mxo::datastores::store::reference(table, &tenant, &terms(), Target::Staging, 0)
                .await
                .expect("sealed");
        let before = require(table, &tenant, &terms())
            .await
            .expect("a datastore");
        insert(table, &tenant, &terms(), Target::Staging, &[term("C-2", 2)])
            .await
            .expect("inserted");
        let after = require(table, &tenant, &terms())
            .await
            .expect("a datastore");
        assert_ne!(after.staging_version, before.staging_version);
        assert_eq!(after.staging_reference, None);
        let staged = read(table, &tenant, &terms(), Target::Staging, "C-1", None)
            .await
            .expect("read");
        assert!(staged.is_empty(), "the new version is empty: {staged:?}");
        let frozen = rows_of(
            table,
            &tenant,
            &terms(),
            &before.staging_version,
            "C-1",
            None,
        )
        .await
        .expect("read");
        assert_eq!(frozen.len(), 1, "{sealed} still names its row");
    }
}
