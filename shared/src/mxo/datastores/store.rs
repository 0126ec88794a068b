//! Datastores on the item table: definitions, versioned tables, references, go-live by
//! pointer switch, clear, and the background sweep of superseded versions.
//!
//! Each datastore's definition item holds two pointers, `live` and `staging`, each naming a
//! table *version* (a random id; its rows live under that id), and a `revision` that every
//! pointer change increments under the condition that it is unchanged — so concurrent
//! switches serialise, and each switch sees exactly the state it changes.
//!
//! - Taking a staging reference seals the staging version; the next write to staging opens a
//!   new, empty version, so the reference keeps naming exactly what it froze. Sealing a
//!   newer snapshot retires older sealed ones.
//! - Go-live is one transaction on the definition item and the reference: the cost does not
//!   depend on the number of rows. Going live with the staging snapshot also opens a new,
//!   empty staging table, so live and staging never share a version.
//! - A reader resolves the live pointer once per request, so it sees the old table or the
//!   new one, never a mix.
//! - Every switch queues the version it leaves for the sweep in the same transaction; the
//!   sweep deletes the rows after a grace period far longer than any request (API Gateway
//!   gives up after 30 s), and only if nothing names the version any more.

use std::collections::HashMap;
use std::time::Duration;

use rand::{Rng, RngCore};
use serde::Serialize;
use serde_json::{Value, json};

use super::model::{Definition, ValidRecord};
use crate::domain::Problem;
use crate::domain::TenantId;
use crate::storage::{
    Condition, Item, ItemTable, Key, Query, StorageError, TransactAction, Update, WriteRequest,
    batch, keys, read_all, validate_item,
};

/// How long a superseded version's rows stay readable before the sweep removes them.
pub const SWEEP_GRACE_SECONDS: i64 = 15 * 60;
/// Attempts at an optimistic pointer update before giving up (only under heavy contention).
const POINTER_ATTEMPTS: usize = 12;

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

fn no_datastore(api_name: &str) -> DatastoreError {
    DatastoreError::NotFound(format!(
        "no datastore with apiName {api_name:?} in this workspace"
    ))
}

fn busy() -> DatastoreError {
    DatastoreError::Busy("the datastore is being changed by other requests; retry".into())
}

/// A datastore's definition item: the definition and its pointers.
#[derive(Debug, Clone, PartialEq)]
pub struct DatastoreState {
    pub definition: Definition,
    pub created: i64,
    pub last_modified: i64,
    /// Distinguishes a datastore from an earlier one of the same apiName.
    pub incarnation: String,
    /// Incremented by every pointer change; each change is conditional on it.
    pub revision: i64,
    pub live_version: String,
    pub live_reference: String,
    pub staging_version: String,
    pub staging_seq: i64,
    /// Set once staging is sealed by a reference; cleared when a write opens a new version.
    pub staging_reference: Option<String>,
    /// The snapshot sequence number last made live by go-live: older snapshots are stale.
    pub golive_seq: i64,
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
            revision: item.i64("revision")?,
            live_version: text("live_version")?,
            live_reference: text("live_reference")?,
            staging_version: text("staging_version")?,
            staging_seq: item.i64("staging_seq")?,
            staging_reference: text("staging_reference"),
            golive_seq: item.i64("golive_seq")?,
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

    fn api_name(&self) -> &str {
        &self.definition.api_name
    }

    /// A pointer change: bumps the revision, on the condition that nobody else did.
    fn switch(&self, tenant: &TenantId, update: Update) -> TransactAction {
        TransactAction::Update {
            key: keys::datastore_definition(tenant, self.api_name()),
            update: update.set("revision", self.revision + 1),
            condition: Condition::equals("revision", self.revision),
        }
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

struct Snapshot<'a> {
    reference: &'a str,
    version: &'a str,
    seq: i64,
    state: &'a str,
}

fn reference_item(tenant: &TenantId, state: &DatastoreState, snapshot: Snapshot<'_>) -> Item {
    let key = keys::datastore_reference(tenant, state.api_name(), snapshot.reference);
    Item::new(key.pk, key.sk)
        .with("version", snapshot.version)
        .with("seq", snapshot.seq)
        .with("state", snapshot.state)
        .with("incarnation", state.incarnation.as_str())
}

fn retire_reference(
    tenant: &TenantId,
    api_name: &str,
    reference: &str,
    from: Condition,
) -> TransactAction {
    TransactAction::Update {
        key: keys::datastore_reference(tenant, api_name, reference),
        update: Update::default().set("state", "retired"),
        condition: from,
    }
}

fn sweep_entry(
    tenant: &TenantId,
    api_name: &str,
    version: &str,
    now_seconds: i64,
) -> TransactAction {
    let key = keys::sweep_entry(now_seconds + SWEEP_GRACE_SECONDS, tenant, api_name, version);
    let item = Item::new(key.pk, key.sk)
        .with("tenant", tenant.as_str())
        .with("api_name", api_name)
        .with("version", version);
    TransactAction::Put {
        item,
        condition: Condition::Always,
    }
}

/// After a lost race: a short random pause so that competing requests spread out.
async fn back_off() {
    let millis = rand::rng().random_range(5..40);
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

/// Whether a failed pointer change should be tried again on fresh state.
fn lost_race(error: &StorageError) -> bool {
    matches!(
        error,
        StorageError::TransactionCanceled { .. }
            | StorageError::ConditionFailed { .. }
            | StorageError::Contention(_)
    )
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
    load(table, tenant, api_name)
        .await?
        .ok_or_else(|| no_datastore(api_name))
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
    let state = DatastoreState {
        definition,
        created: now_millis,
        last_modified: now_millis,
        incarnation: random_hex(8),
        revision: 1,
        live_version: new_version(),
        live_reference: new_reference(),
        staging_version: new_version(),
        staging_seq: 2,
        staging_reference: None,
        golive_seq: 1,
        next_seq: 3,
    };
    let item = Item::new(key.pk, key.sk)
        .with("definition", json!(state.definition))
        .with("created", state.created)
        .with("last_modified", state.last_modified)
        .with("incarnation", state.incarnation.as_str())
        .with("revision", state.revision)
        .with("live_version", state.live_version.as_str())
        .with("live_reference", state.live_reference.as_str())
        .with("staging_version", state.staging_version.as_str())
        .with("staging_seq", state.staging_seq)
        .with("golive_seq", state.golive_seq)
        .with("next_seq", state.next_seq);
    let live = Snapshot {
        reference: &state.live_reference,
        version: &state.live_version,
        seq: 1,
        state: "live",
    };
    let created = table
        .transact(vec![
            TransactAction::Put {
                item,
                condition: Condition::NotExists,
            },
            TransactAction::Put {
                item: reference_item(tenant, &state, live),
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
    let items = read_all(
        table,
        Query::partition(keys::datastore_definitions_pk(tenant)).limit(1000),
    )
    .await?;
    Ok(items.iter().filter_map(DatastoreState::from_item).collect())
}

async fn all_references(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &str,
) -> Result<Vec<Item>, StorageError> {
    read_all(
        table,
        Query::partition(keys::datastore_references_pk(tenant, api_name)).limit(1000),
    )
    .await
}

/// Deletes a datastore; every version it had is queued for the sweep.
pub async fn delete(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &str,
    now_millis: i64,
) -> Result<(), DatastoreError> {
    for _ in 0..POINTER_ATTEMPTS {
        let state = match require(table, tenant, api_name).await {
            Ok(state) => state,
            Err(DatastoreError::NotFound(message)) => {
                // A delete that failed after removing the definition left its references:
                // the client's retry finishes it (and still hears that nothing is there).
                let leftovers = all_references(table, tenant, api_name).await?;
                batch::delete_all(table, &leftovers).await?;
                return Err(DatastoreError::NotFound(message));
            }
            Err(other) => return Err(other),
        };
        let references = all_references(table, tenant, api_name).await?;
        let mut versions = vec![state.live_version.clone(), state.staging_version.clone()];
        versions.extend(
            references
                .iter()
                .filter_map(|item| item.str("version").map(str::to_string)),
        );
        versions.sort();
        versions.dedup();
        // Queued first and due only after the grace period; the sweep skips a version its
        // datastore still names, so a failed delete below loses nothing.
        let entries = versions
            .iter()
            .filter_map(
                |version| match sweep_entry(tenant, api_name, version, now_millis / 1000) {
                    TransactAction::Put { item, .. } => Some(WriteRequest::Put(item)),
                    _ => None,
                },
            )
            .collect();
        batch::write_all(table, entries).await?;
        // The revision pins every pointer and the seal: nothing can appear that was not queued.
        let deleted = table
            .delete(
                &keys::datastore_definition(tenant, api_name),
                Condition::equals("revision", state.revision),
            )
            .await;
        match deleted {
            Ok(_) => {
                batch::delete_all(table, &references).await?;
                return Ok(());
            }
            Err(error) if lost_race(&error) => back_off().await,
            Err(other) => return Err(other.into()),
        }
    }
    Err(busy())
}

/// The version a write to `target` goes to; a sealed staging table gets a new, empty one
/// (the sealed one stays, named by its reference, until it goes live or is retired).
async fn writable_version(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &str,
    target: Target,
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
        let open = state.switch(
            tenant,
            Update::default()
                .set("staging_version", version.as_str())
                .set("staging_seq", state.next_seq)
                .set("next_seq", state.next_seq + 1)
                .remove("staging_reference"),
        );
        match table.transact(vec![open]).await {
            Ok(()) => {
                let state = require(table, tenant, api_name).await?;
                return Ok((state, version));
            }
            Err(error) if lost_race(&error) => back_off().await,
            Err(other) => return Err(other.into()),
        }
    }
    Err(busy())
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

/// A record's row item; the record is kept as JSON text, so it reads back the same on
/// every adapter (DynamoDB would otherwise normalise numbers).
fn row_item(tenant: &TenantId, api_name: &str, version: &str, record: &ValidRecord) -> Item {
    let key = keys::datastore_row(
        tenant,
        api_name,
        version,
        &record.primary_key,
        &record.secondary_key,
    );
    let text = serde_json::to_string(&record.fields).unwrap_or_default();
    Item::new(key.pk, key.sk).with("record", text)
}

/// Validates and writes records into a table; each record succeeds or fails alone. Two
/// records with the same keys in one request: the later one is the one kept.
pub async fn insert(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &str,
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
    read_all(
        table,
        Query::partition(pk)
            .prefix(keys::datastore_row_prefix(primary_key))
            .limit(1000),
    )
    .await
}

fn record_of(item: &Item) -> Value {
    item.str("record")
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_else(|| json!({}))
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
            if let Some(version) = reference.str("version")
                && !versions.iter().any(|(known, _)| known == version)
            {
                versions.push((version.to_string(), "snapshot"));
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

/// A reference to a table: the live table's, or the staging table's (sealing it).
pub async fn reference(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &str,
    target: Target,
    now_millis: i64,
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
        let sealed = Snapshot {
            reference: &reference,
            version: &state.staging_version,
            seq: state.staging_seq,
            state: "sealed",
        };
        let actions = vec![
            state.switch(
                tenant,
                Update::default().set("staging_reference", reference.as_str()),
            ),
            TransactAction::Put {
                item: reference_item(tenant, &state, sealed),
                condition: Condition::NotExists,
            },
        ];
        match table.transact(actions).await {
            Ok(()) => {
                retire_stale_snapshots(table, tenant, &state, state.staging_seq, now_millis / 1000)
                    .await;
                return Ok(reference);
            }
            Err(error) if lost_race(&error) => back_off().await,
            Err(other) => return Err(other.into()),
        }
    }
    Err(busy())
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
            state.api_name(),
            reference,
        ))
        .await?;
    Ok(item.filter(|item| item.str("incarnation") == Some(state.incarnation.as_str())))
}

fn unknown_reference(reference: &str) -> DatastoreError {
    DatastoreError::NotFound(format!("reference {reference:?} is unknown or stale"))
}

/// Makes the snapshot a staging reference names live, atomically, and opens a new, empty
/// staging table if that snapshot was staging's. Going live again with the reference that
/// is live is harmless; a snapshot older than the last one that went live, a retired or an
/// unknown reference is refused.
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
    let now = now_millis / 1000;
    for _ in 0..POINTER_ATTEMPTS {
        let state = require(table, tenant, api_name).await?;
        let item = load_reference(table, tenant, &state, reference)
            .await?
            .ok_or_else(|| unknown_reference(reference))?;
        let version = item.str("version").unwrap_or_default().to_string();
        let seq = item.i64("seq").unwrap_or_default();
        match item.str("state") {
            Some("live") if version == state.live_version => {
                // A retry after a go-live whose clean-up failed: finish the clean-up.
                retire_stale_snapshots(table, tenant, &state, seq, now).await;
                return Ok(());
            }
            Some("sealed") if seq > state.golive_seq => {}
            _ => return Err(unknown_reference(reference)),
        }
        let mut pointers = Update::default()
            .set("live_version", version.as_str())
            .set("live_reference", reference)
            .set("golive_seq", seq)
            .set("last_modified", now_millis);
        if version == state.staging_version {
            pointers = pointers
                .set("staging_version", new_version())
                .set("staging_seq", state.next_seq)
                .set("next_seq", state.next_seq + 1)
                .remove("staging_reference");
        }
        let actions = vec![
            state.switch(tenant, pointers),
            TransactAction::Update {
                key: Key::from(&item),
                update: Update::default().set("state", "live"),
                condition: Condition::equals("state", "sealed"),
            },
            retire_reference(tenant, api_name, &state.live_reference, Condition::Exists),
            sweep_entry(tenant, api_name, &state.live_version, now),
        ];
        match table.transact(actions).await {
            Ok(()) => {
                retire_stale_snapshots(table, tenant, &state, seq, now).await;
                return Ok(());
            }
            Err(error) if lost_race(&error) => back_off().await,
            Err(other) => return Err(other.into()),
        }
    }
    Err(busy())
}

/// Retires sealed snapshots older than `newest_seq` (a newer one exists, so they can never
/// go live) and queues their tables for the sweep; forgets retired references. Each step is
/// its own conditional transaction, so a go-live racing with it either wins or is refused.
/// Best effort after the switch that made them stale: a failure is logged, and the next
/// reference or go-live finishes the job.
async fn retire_stale_snapshots(
    table: &dyn ItemTable,
    tenant: &TenantId,
    state: &DatastoreState,
    newest_seq: i64,
    now: i64,
) {
    let api_name = state.api_name();
    let outcome: Result<(), StorageError> = async {
        for item in all_references(table, tenant, api_name).await? {
            let seq = item.i64("seq").unwrap_or_default();
            let reference = item.sk.as_str();
            match item.str("state") {
                Some("retired") => {
                    // Unknown and retired references answer alike (404), so the record can go.
                    table
                        .delete(&Key::from(&item), Condition::equals("state", "retired"))
                        .await
                        .map(drop)
                        .or_else(ignore_lost_race)?;
                }
                Some("sealed") if seq < newest_seq => {
                    let version = item.str("version").unwrap_or_default();
                    let actions = vec![
                        retire_reference(
                            tenant,
                            api_name,
                            reference,
                            Condition::equals("state", "sealed"),
                        ),
                        sweep_entry(tenant, api_name, version, now),
                    ];
                    table.transact(actions).await.or_else(ignore_lost_race)?;
                }
                _ => {}
            }
        }
        Ok(())
    }
    .await;
    if let Err(error) = outcome {
        tracing::warn!(%error, "retiring stale snapshots failed; the next switch retries");
    }
}

fn ignore_lost_race(error: StorageError) -> Result<(), StorageError> {
    if lost_race(&error) {
        Ok(())
    } else {
        Err(error)
    }
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
        let version = new_version();
        let actions = if reference == state.live_reference {
            let fresh = new_reference();
            let live = Snapshot {
                reference: &fresh,
                version: &version,
                seq: state.next_seq,
                state: "live",
            };
            vec![
                state.switch(
                    tenant,
                    Update::default()
                        .set("live_version", version.as_str())
                        .set("live_reference", fresh.as_str())
                        .set("next_seq", state.next_seq + 1)
                        .set("last_modified", now_millis),
                ),
                TransactAction::Put {
                    item: reference_item(tenant, &state, live),
                    condition: Condition::NotExists,
                },
                retire_reference(tenant, api_name, reference, Condition::Exists),
                sweep_entry(tenant, api_name, &state.live_version, now),
            ]
        } else if state.staging_reference.as_deref() == Some(reference) {
            vec![
                state.switch(
                    tenant,
                    Update::default()
                        .set("staging_version", version.as_str())
                        .set("staging_seq", state.next_seq)
                        .set("next_seq", state.next_seq + 1)
                        .remove("staging_reference"),
                ),
                retire_reference(tenant, api_name, reference, Condition::Exists),
                sweep_entry(tenant, api_name, &state.staging_version, now),
            ]
        } else {
            return Err(unknown_reference(reference));
        };
        match table.transact(actions).await {
            Ok(()) => return Ok(()),
            Err(error) if lost_race(&error) => back_off().await,
            Err(other) => return Err(other.into()),
        }
    }
    Err(busy())
}

/// What one sweep run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub versions_removed: usize,
    pub rows_deleted: usize,
    /// Customer erasures whose activity history is now gone.
    pub erasures_completed: usize,
    /// True when the row budget ran out with work left (the next run continues).
    pub more: bool,
}

/// Whether anything still names a version: a pointer, or a live or sealed reference.
/// References are read first: a go-live turns a sealed reference live before the pointer
/// moves, so a version cannot slip between the two reads.
async fn in_use(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &str,
    version: &str,
) -> Result<bool, StorageError> {
    let named = all_references(table, tenant, api_name)
        .await?
        .iter()
        .any(|item| {
            item.str("version") == Some(version)
                && matches!(item.str("state"), Some("sealed" | "live"))
        });
    let pointed_at = load(table, tenant, api_name)
        .await?
        .is_some_and(|state| state.live_version == version || state.staging_version == version);
    Ok(named || pointed_at)
}

/// Deletes the rows of every superseded version whose grace period has passed, up to about
/// `row_budget` rows; a version something still names is never touched.
pub async fn sweep_due(
    table: &dyn ItemTable,
    now_seconds: i64,
    row_budget: usize,
) -> Result<SweepReport, StorageError> {
    let mut report = SweepReport::default();
    let due = Query::partition(keys::SWEEP_PK)
        .between(format!("{:012}", 0), format!("{now_seconds:012}~"))
        .limit(100);
    for entry in table.query(due).await?.items {
        if entry.str("kind") == Some("erasure") {
            // The same queue carries customer erasures too long to finish within their request.
            let budget = row_budget.saturating_sub(report.rows_deleted);
            let (complete, removed) =
                crate::customers::continue_erasure(table, &entry, budget, now_seconds * 1000)
                    .await?;
            report.rows_deleted += removed;
            if complete {
                table.delete(&Key::from(&entry), Condition::Always).await?;
                report.erasures_completed += 1;
                continue;
            }
            report.more = true;
            return Ok(report);
        }
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
        if !in_use(table, &tenant, api_name, version).await? {
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
                    batch::delete_all(table, &page.items).await?;
                }
            }
            report.versions_removed += 1;
        }
        table.delete(&Key::from(&entry), Condition::Always).await?;
    }
    Ok(report)
}
