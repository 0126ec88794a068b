//! Datastores on the item table: definitions, versioned tables, references, go-live by
//! pointer switch, and the background sweep of superseded versions.
//!
//! Each datastore has two pointers on its definition item: `live` and `staging`, each naming
//! a table *version* (a random id; its rows live under that id). Taking a staging reference
//! seals the staging version; the next write to staging opens a new, empty version, so the
//! reference keeps naming exactly what it froze. Go-live is one conditional update of the
//! definition item — the cost does not depend on the number of rows — and a reader resolves
//! the live pointer once per request, so it sees the old table or the new one, never a mix.
//! Superseded versions are queued for the sweep, which deletes their rows after a grace
//! period far longer than any request (API Gateway gives up after 30 s).

use std::collections::HashMap;

use rand::RngCore;
use serde::Serialize;
use serde_json::{Value, json};

use super::model::{Definition, ValidRecord};
use crate::http::Problem;
use crate::storage::{
    Condition, Item, ItemTable, Key, Query, StorageError, TransactAction, Update, WriteRequest,
    batch, keys,
};
use crate::tenancy::TenantId;

/// How long a superseded version's rows stay readable before the sweep removes them.
pub const SWEEP_GRACE_SECONDS: i64 = 15 * 60;
/// Attempts at an optimistic pointer update before giving up (only under heavy contention).
const POINTER_ATTEMPTS: usize = 8;

/// Which table of a datastore a request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Live,
    Staging,
}

impl Target {
    pub fn parse(raw: &str) -> Option<Target> {
        match raw {
            "live" => Some(Target::Live),
            "staging" => Some(Target::Staging),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Target::Live => "live",
            Target::Staging => "staging",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DatastoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("the datastore is invalid")]
    Invalid(Vec<Problem>),
    #[error("{0}")]
    Busy(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A datastore's definition item: the definition and its two pointers.
#[derive(Debug, Clone, PartialEq)]
pub struct DatastoreState {
    pub definition: Definition,
    pub created: i64,
    pub last_modified: i64,
    /// Distinguishes a datastore from an earlier one of the same apiName.
    pub incarnation: String,
    pub live_version: String,
    pub live_reference: String,
    pub staging_version: String,
    pub staging_seq: i64,
    /// Set once staging is sealed by a reference; cleared when a write opens a new version.
    pub staging_reference: Option<String>,
    pub next_seq: i64,
}

impl DatastoreState {
    fn from_item(item: &Item) -> Option<DatastoreState> {
        let text = |name: &str| item.str(name).map(str::to_string);
        Some(DatastoreState {
            definition: serde_json::from_value(item.get("definition")?.clone()).ok()?,
            created: item.i64("created")?,
            last_modified: item.i64("last_modified")?,
            incarnation: text("incarnation")?,
            live_version: text("live_version")?,
            live_reference: text("live_reference")?,
            staging_version: text("staging_version")?,
            staging_seq: item.i64("staging_seq")?,
            staging_reference: text("staging_reference"),
            next_seq: item.i64("next_seq")?,
        })
    }

    /// The Datastore object as the API returns it.
    pub fn view(&self) -> Value {
        let mut view = json!(self.definition);
        view["created"] = json!(self.created);
        view["lastModified"] = json!(self.last_modified);
        view
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    hex::encode(buffer)
}

/// A new table version id.
fn new_version() -> String {
    format!("v{}", random_hex(8))
}

/// A new reference id, shaped like the vendor's (`ds` + 32 hex digits).
fn new_reference() -> String {
    format!("ds{}", random_hex(16))
}

fn reference_item(
    tenant: &TenantId,
    api_name: &str,
    reference: &str,
    version: &str,
    seq: i64,
    state: &str,
    incarnation: &str,
) -> Item {
    let key = keys::datastore_reference(tenant, api_name, reference);
    Item::new(key.pk, key.sk)
        .with("version", version)
        .with("seq", seq)
        .with("state", state)
        .with("incarnation", incarnation)
}

fn sweep_item(tenant: &TenantId, api_name: &str, version: &str, now_seconds: i64) -> Item {
    let key = keys::sweep_entry(now_seconds + SWEEP_GRACE_SECONDS, tenant, api_name, version);
    Item::new(key.pk, key.sk)
        .with("tenant", tenant.as_str())
        .with("api_name", api_name)
        .with("version", version)
}

/// Reads a datastore's definition item.
pub async fn load(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &str,
) -> Result<Option<DatastoreState>, StorageError> {
    let item = table
        .get(&keys::datastore_definition(tenant, api_name))
        .await?;
    Ok(item.as_ref().and_then(DatastoreState::from_item))
}

async fn require(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &str,
) -> Result<DatastoreState, DatastoreError> {
    load(table, tenant, api_name).await?.ok_or_else(|| {
        DatastoreError::NotFound(format!(
            "no datastore with apiName {api_name:?} in this workspace"
        ))
    })
}

/// Creates a datastore with an empty live table and an empty staging table.
pub async fn create(
    table: &dyn ItemTable,
    tenant: &TenantId,
    definition: Definition,
    now_millis: i64,
) -> Result<(), DatastoreError> {
    let api_name = definition.api_name.clone();
    let key = keys::datastore_definition(tenant, &api_name);
    let (incarnation, live_version, live_reference) =
        (random_hex(8), new_version(), new_reference());
    let item = Item::new(key.pk, key.sk)
        .with("definition", json!(definition))
        .with("created", now_millis)
        .with("last_modified", now_millis)
        .with("incarnation", incarnation.as_str())
        .with("live_version", live_version.as_str())
        .with("live_reference", live_reference.as_str())
        .with("staging_version", new_version())
        .with("staging_seq", 2)
        .with("next_seq", 3);
    let created = table
        .transact(vec![
            TransactAction::Put {
                item,
                condition: Condition::NotExists,
            },
            TransactAction::Put {
                item: reference_item(
                    tenant,
                    &api_name,
                    &live_reference,
                    &live_version,
                    1,
                    "live",
                    &incarnation,
                ),
                condition: Condition::NotExists,
            },
        ])
        .await;
    match created {
        Ok(()) => Ok(()),
        Err(StorageError::TransactionCanceled { .. }) => {
            Err(DatastoreError::Invalid(vec![Problem {
                row: None,
                field: Some("apiName".into()),
                rule: format!(
                    "a datastore with apiName {api_name:?} already exists in this workspace"
                ),
            }]))
        }
        Err(other) => Err(other.into()),
    }
}

/// Every datastore of a tenant.
pub async fn list(
    table: &dyn ItemTable,
    tenant: &TenantId,
) -> Result<Vec<DatastoreState>, StorageError> {
    let mut found = Vec::new();
    let mut cursor = None;
    loop {
        let page = table
            .query(
                Query::partition(keys::datastore_definitions_pk(tenant))
                    .limit(1000)
                    .after(cursor),
            )
            .await?;
        found.extend(page.items.iter().filter_map(DatastoreState::from_item));
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(found),
        }
    }
}

/// Deletes a datastore; its tables are queued for the sweep.
pub async fn delete(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &str,
    now_millis: i64,
) -> Result<(), DatastoreError> {
    let state = require(table, tenant, api_name).await?;
    let now = now_millis / 1000;
    let mut versions = vec![state.live_version.clone(), state.staging_version.clone()];
    let references = all_references(table, tenant, api_name).await?;
    versions.extend(
        references
            .iter()
            .filter_map(|item| item.str("version").map(str::to_string)),
    );
    versions.sort();
    versions.dedup();
    // Queue first: the sweep skips a version its datastore still points at, and an entry is
    // due only after the grace period, so a crash before the delete below loses nothing.
    let entries = versions
        .iter()
        .map(|version| WriteRequest::Put(sweep_item(tenant, api_name, version, now)))
        .collect();
    batch::write_all(table, entries).await?;
    let deleted = table
        .delete(
            &keys::datastore_definition(tenant, api_name),
            Condition::equals("incarnation", state.incarnation.as_str()),
        )
        .await;
    match deleted {
        Ok(_) => {}
        Err(StorageError::ConditionFailed { .. }) => {
            return Err(DatastoreError::NotFound(format!(
                "no datastore with apiName {api_name:?} in this workspace"
            )));
        }
        Err(other) => return Err(other.into()),
    }
    let deletes = references
        .iter()
        .map(|item| WriteRequest::Delete(Key::from(item)))
        .collect();
    batch::write_all(table, deletes).await?;
    Ok(())
}

async fn all_references(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &str,
) -> Result<Vec<Item>, StorageError> {
    let mut found = Vec::new();
    let mut cursor = None;
    loop {
        let page = table
            .query(
                Query::partition(keys::datastore_references_pk(tenant, api_name))
                    .limit(1000)
                    .after(cursor),
            )
            .await?;
        found.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(found),
        }
    }
}

/// The version a write to `target` goes to; a sealed staging table gets a new, empty one.
async fn writable_version(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &str,
    target: Target,
    now_seconds: i64,
) -> Result<(DatastoreState, String), DatastoreError> {
    for _ in 0..POINTER_ATTEMPTS {
        let state = require(table, tenant, api_name).await?;
        if target == Target::Live {
            let version = state.live_version.clone();
            return Ok((state, version));
        }
        if state.staging_reference.is_none() {
            let version = state.staging_version.clone();
            return Ok((state, version));
        }
        let version = new_version();
        let opened = table
            .update(
                &keys::datastore_definition(tenant, api_name),
                Update::default()
                    .set("staging_version", version.as_str())
                    .set("staging_seq", state.next_seq)
                    .set("next_seq", state.next_seq + 1)
                    .remove("staging_reference"),
                Condition::equals("staging_version", state.staging_version.as_str()),
            )
            .await;
        match opened {
            Ok(item) => {
                let previous = state;
                let state = DatastoreState::from_item(&item)
                    .ok_or_else(|| StorageError::Unavailable("datastore item unreadable".into()))?;
                if previous.staging_version != previous.live_version {
                    // A sealed snapshot may still go live; one already retired (by a clear)
                    // will not, and nothing else points at it now.
                    let snapshot = match &previous.staging_reference {
                        Some(reference) => {
                            load_reference(table, tenant, &previous, reference).await?
                        }
                        None => None,
                    };
                    if snapshot.is_none_or(|item| item.str("state") != Some("sealed")) {
                        table
                            .put(
                                sweep_item(
                                    tenant,
                                    api_name,
                                    &previous.staging_version,
                                    now_seconds,
                                ),
                                Condition::Always,
                            )
                            .await?;
                    }
                }
                return Ok((state, version));
            }
            Err(StorageError::ConditionFailed { .. }) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(DatastoreError::Busy(
        "the staging table is being changed by other requests; retry".into(),
    ))
}

/// The outcome of one record of an insert, in input order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InsertOutcome {
    pub primary_key: String,
    pub secondary_key: String,
    /// HTTP-like status as the vendor reports it: "204" written, "400" refused, "503" not written.
    pub result: &'static str,
    pub message: Option<String>,
}

/// Validates and writes records into a table; each record succeeds or fails alone. Two
/// records with the same keys in one request: the later one is the one kept.
pub async fn insert(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &str,
    target: Target,
    records: &[Value],
    now_millis: i64,
) -> Result<Vec<InsertOutcome>, DatastoreError> {
    let (state, version) =
        writable_version(table, tenant, api_name, target, now_millis / 1000).await?;
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
        match definition.check_record(record) {
            Ok(ValidRecord {
                primary_key,
                secondary_key,
                fields,
            }) => {
                let key =
                    keys::datastore_row(tenant, api_name, &version, &primary_key, &secondary_key);
                let item = Item::new(key.pk.clone(), key.sk.clone()).with("record", json!(fields));
                rows.insert(key, item);
                outcomes.push(InsertOutcome {
                    primary_key,
                    secondary_key,
                    result: "204",
                    message: None,
                });
            }
            Err(message) => outcomes.push(InsertOutcome {
                primary_key: key_text(record, Some(&definition.primary_key)),
                secondary_key: key_text(record, definition.secondary_key.as_ref()),
                result: "400",
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
            for outcome in outcomes.iter_mut().filter(|o| o.result == "204") {
                let key = keys::datastore_row(
                    tenant,
                    api_name,
                    &version,
                    &outcome.primary_key,
                    &outcome.secondary_key,
                );
                if unwritten.contains(&key) {
                    outcome.result = "503";
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
    api_name: &str,
    version: &str,
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
    let mut found = Vec::new();
    let mut cursor = None;
    loop {
        let page = table
            .query(
                Query::partition(pk.as_str())
                    .prefix(keys::datastore_row_prefix(primary_key))
                    .limit(1000)
                    .after(cursor),
            )
            .await?;
        found.extend(page.items);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(found),
        }
    }
}

fn record_of(item: &Item) -> Value {
    item.get("record").cloned().unwrap_or_else(|| json!({}))
}

/// The records of a table with this primary key (and secondary key, if given).
pub async fn read(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &str,
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
    api_name: &str,
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
    api_name: &str,
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
    api_name: &str,
    target: Target,
    primary_key: &str,
    secondary_key: Option<&str>,
    now_millis: i64,
) -> Result<usize, DatastoreError> {
    let (_, version) = writable_version(table, tenant, api_name, target, now_millis / 1000).await?;
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
    batch::write_all(
        table,
        rows.iter()
            .map(|row| WriteRequest::Delete(Key::from(row)))
            .collect(),
    )
    .await?;
    Ok(count)
}

/// A reference to a table: the live table's, or the staging table's (sealing it).
pub async fn reference(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &str,
    target: Target,
) -> Result<String, DatastoreError> {
    for _ in 0..POINTER_ATTEMPTS {
        let state = require(table, tenant, api_name).await?;
        if target == Target::Live {
            return Ok(state.live_reference);
        }
        if let Some(existing) = state.staging_reference {
            return Ok(existing);
        }
        let reference = new_reference();
        let sealed = table
            .transact(vec![
                TransactAction::Update {
                    key: keys::datastore_definition(tenant, api_name),
                    update: Update::default().set("staging_reference", reference.as_str()),
                    condition: Condition::All(vec![
                        Condition::equals("staging_version", state.staging_version.as_str()),
                        Condition::LacksAttribute("staging_reference".into()),
                    ]),
                },
                TransactAction::Put {
                    item: reference_item(
                        tenant,
                        api_name,
                        &reference,
                        &state.staging_version,
                        state.staging_seq,
                        "sealed",
                        &state.incarnation,
                    ),
                    condition: Condition::NotExists,
                },
            ])
            .await;
        match sealed {
            Ok(()) => return Ok(reference),
            Err(StorageError::TransactionCanceled { .. }) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(DatastoreError::Busy(
        "the staging table is being changed by other requests; retry".into(),
    ))
}

/// A reference as stored, if it belongs to this incarnation of the datastore.
async fn load_reference(
    table: &dyn ItemTable,
    tenant: &TenantId,
    state: &DatastoreState,
    reference: &str,
) -> Result<Option<Item>, StorageError> {
    let item = table
        .get(&keys::datastore_reference(
            tenant,
            &state.definition.api_name,
            reference,
        ))
        .await?;
    Ok(item.filter(|item| item.str("incarnation") == Some(state.incarnation.as_str())))
}

fn unknown_reference(reference: &str) -> DatastoreError {
    DatastoreError::NotFound(format!("reference {reference:?} is unknown or stale"))
}

/// Makes the snapshot a staging reference names live, atomically. Going live again with the
/// reference that is live is harmless; an older or unknown reference is refused.
pub async fn go_live(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &str,
    reference: &str,
    now_millis: i64,
) -> Result<(), DatastoreError> {
    if !reference.starts_with("ds") || reference.len() > 64 {
        return Err(unknown_reference(reference));
    }
    for _ in 0..POINTER_ATTEMPTS {
        let state = require(table, tenant, api_name).await?;
        let item = load_reference(table, tenant, &state, reference)
            .await?
            .ok_or_else(|| unknown_reference(reference))?;
        let version = item.str("version").unwrap_or_default().to_string();
        let seq = item.i64("seq").unwrap_or_default();
        match item.str("state") {
            Some("live") if version == state.live_version => return Ok(()),
            Some("sealed") => {}
            _ => return Err(unknown_reference(reference)),
        }
        let switched = table
            .transact(vec![
                TransactAction::Update {
                    key: keys::datastore_definition(tenant, api_name),
                    update: Update::default()
                        .set("live_version", version.as_str())
                        .set("live_reference", reference)
                        .set("last_modified", now_millis),
                    condition: Condition::equals("live_version", state.live_version.as_str()),
                },
                TransactAction::Update {
                    key: Key::from(&item),
                    update: Update::default().set("state", "live"),
                    condition: Condition::equals("state", "sealed"),
                },
                TransactAction::Update {
                    key: keys::datastore_reference(tenant, api_name, &state.live_reference),
                    update: Update::default().set("state", "retired"),
                    condition: Condition::Always,
                },
            ])
            .await;
        match switched {
            Ok(()) => {
                let now = now_millis / 1000;
                if state.live_version != state.staging_version {
                    table
                        .put(
                            sweep_item(tenant, api_name, &state.live_version, now),
                            Condition::Always,
                        )
                        .await?;
                }
                retire_older_snapshots(table, tenant, &state, seq, now).await?;
                return Ok(());
            }
            Err(StorageError::TransactionCanceled { .. }) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(DatastoreError::Busy(
        "the live table is being changed by other requests; retry".into(),
    ))
}

/// Sealed snapshots older than the one that just went live can never go live: queue their
/// tables for the sweep. Best effort after the switch; a later go-live finishes the job.
async fn retire_older_snapshots(
    table: &dyn ItemTable,
    tenant: &TenantId,
    state: &DatastoreState,
    live_seq: i64,
    now: i64,
) -> Result<(), StorageError> {
    let api_name = &state.definition.api_name;
    for item in all_references(table, tenant, api_name).await? {
        let older = item.i64("seq").is_some_and(|seq| seq < live_seq);
        if item.str("state") == Some("retired") {
            // Unknown and retired references answer alike (404), so the record can go.
            table
                .delete(&Key::from(&item), Condition::equals("state", "retired"))
                .await?;
        } else if older && item.str("state") == Some("sealed") {
            let version = item.str("version").unwrap_or_default();
            if version != state.staging_version && version != state.live_version {
                table
                    .put(
                        sweep_item(tenant, api_name, version, now),
                        Condition::Always,
                    )
                    .await?;
            }
            table
                .update(
                    &Key::from(&item),
                    Update::default().set("state", "retired"),
                    Condition::Exists,
                )
                .await?;
        }
    }
    Ok(())
}

/// Empties the table a reference names (the live table or the sealed staging table) by
/// pointing it at a new, empty version.
pub async fn clear(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &str,
    reference: &str,
    now_millis: i64,
) -> Result<(), DatastoreError> {
    let now = now_millis / 1000;
    for _ in 0..POINTER_ATTEMPTS {
        let state = require(table, tenant, api_name).await?;
        let definition_key = keys::datastore_definition(tenant, api_name);
        let version = new_version();
        let actions = if reference == state.live_reference {
            let new_reference = new_reference();
            vec![
                TransactAction::Update {
                    key: definition_key,
                    update: Update::default()
                        .set("live_version", version.as_str())
                        .set("live_reference", new_reference.as_str())
                        .set("next_seq", state.next_seq + 1)
                        .set("last_modified", now_millis),
                    condition: Condition::equals("live_version", state.live_version.as_str()),
                },
                TransactAction::Put {
                    item: reference_item(
                        tenant,
                        api_name,
                        &new_reference,
                        &version,
                        state.next_seq,
                        "live",
                        &state.incarnation,
                    ),
                    condition: Condition::NotExists,
                },
                TransactAction::Update {
                    key: keys::datastore_reference(tenant, api_name, reference),
                    update: Update::default().set("state", "retired"),
                    condition: Condition::Always,
                },
            ]
        } else if state.staging_reference.as_deref() == Some(reference) {
            vec![
                TransactAction::Update {
                    key: definition_key,
                    update: Update::default()
                        .set("staging_version", version.as_str())
                        .set("staging_seq", state.next_seq)
                        .set("next_seq", state.next_seq + 1)
                        .remove("staging_reference"),
                    condition: Condition::equals("staging_reference", reference),
                },
                TransactAction::Update {
                    key: keys::datastore_reference(tenant, api_name, reference),
                    update: Update::default().set("state", "retired"),
                    condition: Condition::Always,
                },
            ]
        } else {
            return Err(unknown_reference(reference));
        };
        let (cleared, other) = if reference == state.live_reference {
            (&state.live_version, &state.staging_version)
        } else {
            (&state.staging_version, &state.live_version)
        };
        match table.transact(actions).await {
            Ok(()) => {
                if cleared != other {
                    table
                        .put(
                            sweep_item(tenant, api_name, cleared, now),
                            Condition::Always,
                        )
                        .await?;
                }
                return Ok(());
            }
            Err(StorageError::TransactionCanceled { .. }) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(DatastoreError::Busy(
        "the table is being changed by other requests; retry".into(),
    ))
}

/// What one sweep run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub versions_removed: usize,
    pub rows_deleted: usize,
    /// True when the row budget ran out with work left (the next run continues).
    pub more: bool,
}

/// Deletes the rows of every superseded version whose grace period has passed, up to about
/// `row_budget` rows; a version still named by its datastore's pointers is never touched.
pub async fn sweep_due(
    table: &dyn ItemTable,
    now_seconds: i64,
    row_budget: usize,
) -> Result<SweepReport, StorageError> {
    let mut report = SweepReport::default();
    let due = Query::partition(keys::SWEEP_PK)
        .between(format!("{:012}", 0), format!("{now_seconds:012}~"))
        .limit(100);
    let entries = table.query(due).await?.items;
    for entry in entries {
        let (Some(tenant), Some(api_name), Some(version)) = (
            entry
                .str("tenant")
                .and_then(|raw| TenantId::parse(raw).ok()),
            entry.str("api_name"),
            entry.str("version"),
        ) else {
            table.delete(&Key::from(&entry), Condition::Always).await?;
            continue;
        };
        let pointed_at = load(table, &tenant, api_name)
            .await?
            .is_some_and(|state| state.live_version == version || state.staging_version == version);
        let sealed_snapshot = all_references(table, &tenant, api_name)
            .await?
            .iter()
            .any(|item| {
                item.str("version") == Some(version) && item.str("state") == Some("sealed")
            });
        let in_use = pointed_at || sealed_snapshot;
        if !in_use {
            for shard in 0..keys::DATASTORE_ROW_SHARDS {
                let pk = keys::datastore_rows_pk(&tenant, api_name, version, shard);
                loop {
                    if report.rows_deleted >= row_budget {
                        report.more = true;
                        return Ok(report);
                    }
                    let page = table
                        .query(Query::partition(pk.as_str()).limit(1000))
                        .await?;
                    if page.items.is_empty() {
                        break;
                    }
                    report.rows_deleted += page.items.len();
                    batch::write_all(
                        table,
                        page.items
                            .iter()
                            .map(|row| WriteRequest::Delete(Key::from(row)))
                            .collect(),
                    )
                    .await?;
                }
            }
            report.versions_removed += 1;
        }
        table.delete(&Key::from(&entry), Condition::Always).await?;
    }
    Ok(report)
}
