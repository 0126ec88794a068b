//! Datastores on the item table: what every part shares — the definition item with its
//! pointers ([`DatastoreState`]), the error every operation answers, the table a request
//! names ([`Target`]) and the new ids of versions and references.
//!
//! Each datastore's definition item holds two pointers, `live` and `staging`, each naming a
//! table *version* (a random id; its rows live under that id), and a `revision` that every
//! pointer change increments under the condition that it is unchanged — so concurrent
//! switches serialise, and each switch sees exactly the state it changes.
//!
//! One idea per module: [`definitions`] (create, list, delete), [`records`] (rows in, read,
//! deleted), [`pointers`] (references, go-live, clear) and [`sweep`] (removing superseded
//! versions).

mod definitions;
mod pointers;
mod records;
mod sweep;

use std::time::Duration;

use rand::{Rng, RngCore};
use serde_json::{Value, json};

use super::model::Definition;
use crate::domain::Problem;
use crate::domain::TenantId;
use crate::storage::{
    Condition, Item, ItemTable, Query, StorageError, TransactAction, Update, keys, read_all,
};

pub use definitions::{create, delete, list};
pub use pointers::{clear, go_live, reference};
pub use records::{
    InsertOutcome, KeyedRow, delete_rows, insert, lookup_live, read, read_live, rows_keyed_by,
};
pub use sweep::{SWEEP_GRACE_SECONDS, SweepReport, sweep_due};

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
