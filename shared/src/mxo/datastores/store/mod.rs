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

use crate::mxo::datastores::model::ApiName;
use rand::RngCore;
use serde_json::{Value, json};

use super::model::Definition;
use crate::domain::Problem;
use crate::domain::TenantId;
use crate::retry::{Attempt, Exhausted};
use crate::storage::{
    Condition, Item, ItemTable, Key, Query, StorageError, TransactAction, Update, keys, read_all,
};

pub use definitions::{create, delete, list};
pub use pointers::{clear, go_live, reference, unknown_reference};
pub use records::{
    InsertOutcome, InsertResult, KeyedRow, delete_rows, insert, lookup_live, read, read_live,
    rows_keyed_by,
};
pub use sweep::{SWEEP_GRACE_SECONDS, SweepReport, sweep_due};

/// The retry budget of a pointer switch (reference, go-live, clear, opening a new staging
/// version): a metric dimension.
const POINTER_SWITCH: &str = "datastore-pointer";
/// The retry budget of deleting a datastore: a metric dimension.
const DATASTORE_DELETE: &str = "datastore-delete";

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

fn no_datastore(api_name: &ApiName) -> DatastoreError {
    DatastoreError::NotFound(format!(
        "no datastore with apiName {api_name:?} in this workspace"
    ))
}

/// A switch that kept losing races answers busy (503 with `Retry-After`), as before the one
/// retry helper: the client is not at fault.
impl From<Exhausted> for DatastoreError {
    fn from(_: Exhausted) -> Self {
        DatastoreError::Busy("the datastore is being changed by other requests; retry".into())
    }
}

/// The attribute names of the items this store keeps: a datastore's definition item (read
/// and written through [`DatastoreState`]), a reference item ([`Reference`]), a sweep entry
/// and a row. Stored data carries these names, so changing one is a data migration.
mod attribute {
    pub const DEFINITION: &str = "definition";
    pub const CREATED: &str = "created";
    pub const LAST_MODIFIED: &str = "last_modified";
    pub const INCARNATION: &str = "incarnation";
    pub const REVISION: &str = "revision";
    pub const LIVE_VERSION: &str = "live_version";
    pub const LIVE_REFERENCE: &str = "live_reference";
    pub const STAGING_VERSION: &str = "staging_version";
    pub const STAGING_SEQ: &str = "staging_seq";
    pub const STAGING_REFERENCE: &str = "staging_reference";
    pub const GOLIVE_SEQ: &str = "golive_seq";
    pub const NEXT_SEQ: &str = "next_seq";
    /// The table version a reference or a sweep entry names.
    pub const VERSION: &str = "version";
    /// A reference's snapshot sequence number.
    pub const SEQ: &str = "seq";
    /// A reference's [`super::ReferenceState`].
    pub const STATE: &str = "state";
    pub const TENANT: &str = "tenant";
    pub const API_NAME: &str = "api_name";
    /// A row's record, as JSON text.
    pub const RECORD: &str = "record";
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
    pub live_version: VersionId,
    pub live_reference: ReferenceId,
    pub staging_version: VersionId,
    pub staging_seq: i64,
    /// Set once staging is sealed by a reference; cleared when a write opens a new version.
    pub staging_reference: Option<ReferenceId>,
    /// The snapshot sequence number last made live by go-live: older snapshots are stale.
    pub golive_seq: i64,
    pub next_seq: i64,
}

impl DatastoreState {
    fn from_item(item: &Item) -> Option<DatastoreState> {
        use attribute::*;
        let text = |name: &str| item.str(name).map(str::to_string);
        Some(DatastoreState {
            definition: serde_json::from_value(item.get(DEFINITION)?.clone()).ok()?,
            created: item.i64(CREATED)?,
            last_modified: item.i64(LAST_MODIFIED)?,
            incarnation: text(INCARNATION)?,
            revision: item.i64(REVISION)?,
            live_version: item.str(LIVE_VERSION).map(VersionId::as_stored)?,
            live_reference: item.str(LIVE_REFERENCE).and_then(ReferenceId::parse)?,
            staging_version: item.str(STAGING_VERSION).map(VersionId::as_stored)?,
            staging_seq: item.i64(STAGING_SEQ)?,
            staging_reference: item.str(STAGING_REFERENCE).and_then(ReferenceId::parse),
            golive_seq: item.i64(GOLIVE_SEQ)?,
            next_seq: item.i64(NEXT_SEQ)?,
        })
    }

    fn to_item(&self, tenant: &TenantId) -> Item {
        use attribute::*;
        let key = keys::datastore_definition(tenant, self.api_name());
        let item = Item::new(key.pk, key.sk)
            .with(DEFINITION, json!(self.definition))
            .with(CREATED, self.created)
            .with(LAST_MODIFIED, self.last_modified)
            .with(INCARNATION, self.incarnation.as_str())
            .with(REVISION, self.revision)
            .with(LIVE_VERSION, self.live_version.as_str())
            .with(LIVE_REFERENCE, self.live_reference.as_str())
            .with(STAGING_VERSION, self.staging_version.as_str())
            .with(STAGING_SEQ, self.staging_seq)
            .with(GOLIVE_SEQ, self.golive_seq)
            .with(NEXT_SEQ, self.next_seq);
        match &self.staging_reference {
            Some(reference) => item.with(STAGING_REFERENCE, reference.as_str()),
            None => item,
        }
    }

    /// The Datastore object as the API returns it.
    pub fn view(&self) -> Value {
        let mut view = json!(self.definition);
        view["created"] = json!(self.created);
        view["lastModified"] = json!(self.last_modified);
        view
    }

    fn api_name(&self) -> &ApiName {
        &self.definition.api_name
    }

    /// Adds to `pointers` the change that gives staging a new, empty, unsealed `version`.
    fn open_staging(&self, pointers: Update, version: &VersionId) -> Update {
        pointers
            .set(attribute::STAGING_VERSION, version.as_str())
            .set(attribute::STAGING_SEQ, self.next_seq)
            .set(attribute::NEXT_SEQ, self.next_seq + 1)
            .remove(attribute::STAGING_REFERENCE)
    }

    /// A pointer change: bumps the revision, on the condition that nobody else did.
    fn switch(&self, tenant: &TenantId, update: Update) -> TransactAction {
        TransactAction::Update {
            key: keys::datastore_definition(tenant, self.api_name()),
            update: update.set(attribute::REVISION, self.revision + 1),
            condition: Condition::equals(attribute::REVISION, self.revision),
        }
    }
}

/// Where a reference is in its life: `Live` names the live table, `Sealed` a frozen staging
/// snapshot that may still go live, `Retired` one that never will (it answers as unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReferenceState {
    Live,
    Sealed,
    Retired,
}

impl ReferenceState {
    fn parse(raw: &str) -> Option<ReferenceState> {
        match raw {
            "live" => Some(ReferenceState::Live),
            "sealed" => Some(ReferenceState::Sealed),
            "retired" => Some(ReferenceState::Retired),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            ReferenceState::Live => "live",
            ReferenceState::Sealed => "sealed",
            ReferenceState::Retired => "retired",
        }
    }

    /// The condition that a reference item is in this state.
    fn holds(self) -> Condition {
        Condition::equals(attribute::STATE, self.as_str())
    }

    /// The update that puts a reference item in this state.
    fn set(self) -> Update {
        Update::default().set(attribute::STATE, self.as_str())
    }
}

/// A reference item: the snapshot of a table that a reference id names. Read tolerantly —
/// an attribute missing reads as empty, and a state this code does not know as `None`, which
/// no switch accepts.
#[derive(Debug, Clone, PartialEq)]
struct Reference {
    key: Key,
    /// `None` when the item names no version (read tolerantly, see above).
    version: Option<VersionId>,
    seq: i64,
    state: Option<ReferenceState>,
    incarnation: Option<String>,
}

impl Reference {
    fn from_item(item: &Item) -> Reference {
        Reference {
            key: Key::from(item),
            version: item.str(attribute::VERSION).and_then(VersionId::named),
            seq: item.i64(attribute::SEQ).unwrap_or_default(),
            state: item.str(attribute::STATE).and_then(ReferenceState::parse),
            incarnation: item.str(attribute::INCARNATION).map(str::to_string),
        }
    }

    /// The reference id (the item's sort key).
    fn id(&self) -> &str {
        &self.key.sk
    }

    /// Whether something may still read this reference's version: it is live, or sealed and
    /// able to go live.
    fn names_a_readable_version(&self) -> bool {
        matches!(
            self.state,
            Some(ReferenceState::Live | ReferenceState::Sealed)
        )
    }
}

/// A new reference of a datastore, as written.
struct Snapshot<'a> {
    reference: &'a ReferenceId,
    version: &'a VersionId,
    seq: i64,
    state: ReferenceState,
}

impl Snapshot<'_> {
    fn to_item(&self, tenant: &TenantId, state: &DatastoreState) -> Item {
        let key = keys::datastore_reference(tenant, state.api_name(), self.reference);
        Item::new(key.pk, key.sk)
            .with(attribute::VERSION, self.version.as_str())
            .with(attribute::SEQ, self.seq)
            .with(attribute::STATE, self.state.as_str())
            .with(attribute::INCARNATION, state.incarnation.as_str())
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    hex::encode(buffer)
}

/// A table version of a datastore: its rows live under it. The store issues it (`v` and 16
/// hex digits) and never takes one from a client; it is read back from stored items as
/// written. Reads as a `&str` where a key is built from it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct VersionId(String);

impl VersionId {
    /// A new version id.
    fn fresh() -> VersionId {
        VersionId(format!("v{}", random_hex(8)))
    }

    /// The version a datastore's pointer holds, as written: a pointer always holds one, and
    /// even a damaged (empty) one keeps the datastore readable, as an empty table, and
    /// deletable.
    fn as_stored(raw: &str) -> VersionId {
        VersionId(raw.to_string())
    }

    /// The version a reference item or a sweep entry names; an empty attribute names none.
    fn named(raw: &str) -> Option<VersionId> {
        (!raw.is_empty()).then(|| VersionId(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for VersionId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// Debug shows the id as the string it is.
impl std::fmt::Debug for VersionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

/// A reference id: `ds` and at most 62 more bytes. custdata issues `ds` and 32 hex digits,
/// shaped like the vendor's; anything else names no reference and is refused without a read.
/// Reads as a `&str` where a key is built from it.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct ReferenceId(String);

impl ReferenceId {
    /// The id, if it could be a reference at all.
    pub fn parse(raw: &str) -> Option<ReferenceId> {
        (raw.starts_with("ds") && raw.len() <= 64).then(|| ReferenceId(raw.to_string()))
    }

    /// A new reference id.
    fn fresh() -> ReferenceId {
        ReferenceId(format!("ds{}", random_hex(16)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for ReferenceId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// Debug shows the id as the string it is, so messages that quote it read as before.
impl std::fmt::Debug for ReferenceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

impl std::fmt::Display for ReferenceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
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

/// A conditional write's outcome as an attempt of [`crate::retry::optimistic`]: a lost race is worth
/// another attempt on fresh state; any other failure ends the operation.
fn attempt_of<T>(written: Result<T, StorageError>) -> Result<Attempt<T>, DatastoreError> {
    match written {
        Ok(answer) => Ok(Attempt::Done(answer)),
        Err(error) if lost_race(&error) => Ok(Attempt::Contended),
        Err(other) => Err(other.into()),
    }
}

/// Reads a datastore's definition item.
pub async fn load(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &ApiName,
) -> Result<Option<DatastoreState>, StorageError> {
    let item = table
        .get(&keys::datastore_definition(tenant, api_name))
        .await?;
    Ok(item.as_ref().and_then(DatastoreState::from_item))
}

async fn require(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &ApiName,
) -> Result<DatastoreState, DatastoreError> {
    load(table, tenant, api_name)
        .await?
        .ok_or_else(|| no_datastore(api_name))
}

/// The reference items of a datastore, of whichever incarnation.
async fn reference_items(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &ApiName,
) -> Result<Vec<Item>, StorageError> {
    read_all(
        table,
        Query::partition(keys::datastore_references_pk(tenant, api_name)).limit(1000),
    )
    .await
}

/// Every reference of a datastore, of whichever incarnation.
async fn all_references(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &ApiName,
) -> Result<Vec<Reference>, StorageError> {
    let items = reference_items(table, tenant, api_name).await?;
    Ok(items.iter().map(Reference::from_item).collect())
}

/// What the unit tests of every part of the store start from.
#[cfg(test)]
mod test_support {
    use std::sync::Arc;

    use serde_json::{Value, json};

    use crate::app::App;
    use crate::clock::ManualClock;
    use crate::domain::TenantId;
    use crate::mxo::datastores::model::{ApiName, Definition};

    pub const NOW_MILLIS: i64 = 1_790_000_000_000;

    /// An embedded app on a fresh directory (removed when the returned guard drops) and a
    /// tenant that has the `terms` datastore, keyed by customerID and productID.
    /// The apiName of the datastore [`terms_datastore`] creates.
    pub fn terms() -> ApiName {
        ApiName::parse("terms").expect("a valid apiName")
    }

    pub async fn terms_datastore() -> (tempfile::TempDir, App, TenantId) {
        let dir = tempfile::tempdir().expect("a directory");
        let clock = ManualClock::at_millis(NOW_MILLIS);
        let (app, _) = App::embedded(dir.path(), Arc::new(clock), "http://127.0.0.1:9")
            .expect("an embedded app");
        let tenant = TenantId::parse("acme").expect("a tenant");
        let definition = Definition::parse(&json!({"name": "Terms", "apiName": "terms",
            "primaryKey": "customerID", "secondaryKey": "productID",
            "definitions": [{"name": "customerID", "type": "TEXT"}, {"name": "productID", "type": "TEXT"},
                            {"name": "creditLimit", "type": "NUMERIC"}]}))
        .expect("a valid definition");
        super::create(app.table.as_ref(), &tenant, definition, NOW_MILLIS)
            .await
            .expect("created");
        (dir, app, tenant)
    }

    /// A valid record of `terms`.
    pub fn term(customer: &str, limit: i64) -> Value {
        json!({"customerID": customer, "productID": "P", "creditLimit": limit})
    }
}
