//! Storage ports: the item table and the blob store the domain talks to.
//!
//! Two adapters implement each port: [`embedded`] (redb file + blob directory, for the
//! local server and the quick start) and [`aws`] (DynamoDB + S3, production). The
//! conformance suite in `tests/tests/conformance.rs` runs the same cases against both;
//! a behaviour that differs between them is a bug.

pub mod aws;
pub mod batch;
pub mod blob;
pub mod condition;
pub mod cursor;
#[cfg(feature = "embedded")]
pub mod embedded;
#[cfg(feature = "test-kit")]
pub mod faults;
#[cfg(feature = "embedded")]
mod group_commit;
pub mod keys;
#[cfg(feature = "test-kit")]
pub mod metered;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use blob::{BlobError, BlobMeta, BlobReader, BlobStore, PresignedUpload};
pub use condition::{Comparison, Condition};
pub use cursor::CursorSigner;

/// DynamoDB refuses a BatchWriteItem of more than 25 requests.
pub const MAX_BATCH_CHUNK: usize = 25;
/// DynamoDB refuses a BatchGetItem of more than 100 keys.
pub const MAX_GET_CHUNK: usize = 100;
/// DynamoDB refuses a TransactWriteItems of more than 100 actions.
pub const MAX_TRANSACTION_ACTIONS: usize = 100;
/// Name of the attribute that holds an item's expiry (epoch seconds); the table's TTL attribute.
pub const EXPIRES_AT: &str = "expires_at";

/// One record of the item table: a partition key, a sort key and named JSON attributes.
///
/// `expires_at` (epoch seconds) is the TTL attribute; an expired item is treated as absent
/// by every read, because DynamoDB deletes expired items lazily (up to days later).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub pk: String,
    pub sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub attrs: BTreeMap<String, Value>,
}

impl Item {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Item {
            pk: pk.into(),
            sk: sk.into(),
            expires_at: None,
            attrs: BTreeMap::new(),
        }
    }

    /// Builder: sets one attribute.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attrs.insert(name.into(), value.into());
        self
    }

    /// Builder: sets the expiry (epoch seconds).
    pub fn expiring_at(mut self, epoch_seconds: i64) -> Self {
        self.expires_at = Some(epoch_seconds);
        self
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.attrs.get(name)
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).and_then(Value::as_str)
    }

    pub fn i64(&self, name: &str) -> Option<i64> {
        self.attrs.get(name).and_then(Value::as_i64)
    }

    pub fn is_expired(&self, now_epoch_seconds: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now_epoch_seconds)
    }

    /// The value a condition or comparison sees for `name`, including the key attributes.
    pub fn attribute(&self, name: &str) -> Option<Value> {
        match name {
            "pk" => Some(Value::String(self.pk.clone())),
            "sk" => Some(Value::String(self.sk.clone())),
            EXPIRES_AT => self.expires_at.map(Value::from),
            _ => self.attrs.get(name).cloned(),
        }
    }
}

/// The key of one item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Key {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

impl From<&Item> for Key {
    fn from(item: &Item) -> Self {
        Key::new(item.pk.clone(), item.sk.clone())
    }
}

/// An update of selected attributes of one item (created if absent, like DynamoDB's UpdateItem).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Update {
    /// Attributes set to a value.
    pub set: Vec<(String, Value)>,
    /// Numeric attributes incremented by a delta (a missing attribute counts as 0).
    pub add: Vec<(String, i64)>,
    /// Attributes removed.
    pub remove: Vec<String>,
    /// New expiry, if it changes.
    pub expires_at: Option<i64>,
}

impl Update {
    pub fn set(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.set.push((name.into(), value.into()));
        self
    }

    pub fn add(mut self, name: impl Into<String>, delta: i64) -> Self {
        self.add.push((name.into(), delta));
        self
    }

    pub fn remove(mut self, name: impl Into<String>) -> Self {
        self.remove.push(name.into());
        self
    }

    pub fn expiring_at(mut self, epoch_seconds: i64) -> Self {
        self.expires_at = Some(epoch_seconds);
        self
    }

    /// Applies the update to `item` in memory; the embedded adapter and tests use it.
    pub fn apply_to(&self, item: &mut Item) -> Result<(), StorageError> {
        for (name, value) in &self.set {
            item.attrs.insert(name.clone(), value.clone());
        }
        for (name, delta) in &self.add {
            let current = match item.attrs.get(name) {
                None | Some(Value::Null) => 0,
                Some(value) => value.as_i64().ok_or_else(|| {
                    StorageError::InvalidRequest(format!(
                        "cannot add to non-integer attribute {name}"
                    ))
                })?,
            };
            item.attrs
                .insert(name.clone(), Value::from(current + delta));
        }
        for name in &self.remove {
            item.attrs.remove(name);
        }
        if let Some(at) = self.expires_at {
            item.expires_at = Some(at);
        }
        Ok(())
    }
}

/// Which sort keys of a partition a query returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortKeyRange {
    All,
    /// Sort keys that start with the prefix.
    Prefix(String),
    /// Sort keys from `start` to `end`, both inclusive.
    Between(String, String),
}

impl SortKeyRange {
    pub fn contains(&self, sk: &str) -> bool {
        match self {
            SortKeyRange::All => true,
            SortKeyRange::Prefix(prefix) => sk.starts_with(prefix.as_str()),
            SortKeyRange::Between(start, end) => sk >= start.as_str() && sk <= end.as_str(),
        }
    }
}

/// A query of one partition.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub pk: String,
    pub range: SortKeyRange,
    /// At most this many items in one page (1..=1000).
    pub limit: usize,
    /// Newest (highest sort key) first when true.
    pub descending: bool,
    /// The opaque cursor of the previous page, as handed out in [`Page::next`].
    pub cursor: Option<String>,
}

impl Query {
    pub fn partition(pk: impl Into<String>) -> Self {
        Query {
            pk: pk.into(),
            range: SortKeyRange::All,
            limit: 100,
            descending: false,
            cursor: None,
        }
    }

    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.range = SortKeyRange::Prefix(prefix.into());
        self
    }

    pub fn between(mut self, start: impl Into<String>, end: impl Into<String>) -> Self {
        self.range = SortKeyRange::Between(start.into(), end.into());
        self
    }

    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    pub fn descending(mut self) -> Self {
        self.descending = true;
        self
    }

    pub fn after(mut self, cursor: Option<String>) -> Self {
        self.cursor = cursor;
        self
    }
}

/// One page of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Item>,
    /// Opaque, tamper-checked cursor of the next page; `None` on the last page.
    pub next: Option<String>,
}

/// One request of a batched write.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteRequest {
    Put(Item),
    Delete(Key),
}

impl WriteRequest {
    pub fn key(&self) -> Key {
        match self {
            WriteRequest::Put(item) => Key::from(item),
            WriteRequest::Delete(key) => key.clone(),
        }
    }
}

/// One action of a transactional write; all succeed or none is applied.
#[derive(Debug, Clone, PartialEq)]
pub enum TransactAction {
    Put {
        item: Item,
        condition: Condition,
    },
    Update {
        key: Key,
        update: Update,
        condition: Condition,
    },
    Delete {
        key: Key,
        condition: Condition,
    },
    Check {
        key: Key,
        condition: Condition,
    },
}

impl TransactAction {
    pub fn key(&self) -> Key {
        match self {
            TransactAction::Put { item, .. } => Key::from(item),
            TransactAction::Update { key, .. }
            | TransactAction::Delete { key, .. }
            | TransactAction::Check { key, .. } => key.clone(),
        }
    }
}

/// What can go wrong in the item table. Only `Unavailable` is an infrastructure fault.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StorageError {
    #[error("the condition on an item of {} does not hold", key_kind(.pk))]
    ConditionFailed { pk: String, sk: String },
    #[error("the transaction was cancelled: the condition of action {index} does not hold")]
    TransactionCanceled { index: usize },
    #[error("the cursor is not one this table handed out, or it belongs to another query")]
    InvalidCursor,
    #[error("invalid storage request: {0}")]
    InvalidRequest(String),
    #[error("{unwritten} of {total} batched writes could not be applied after retries")]
    BatchIncomplete {
        unwritten: usize,
        total: usize,
        keys: Vec<Key>,
    },
    #[error("another request changed the same items at the same time: {0}")]
    Contention(String),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

/// A partition key as errors and logs may show it: the tenant and the item type, never what
/// follows (a customer's tid, an identifier's hash, a datastore's row shard).
pub fn key_kind(pk: &str) -> String {
    let mut parts = pk.splitn(4, '#');
    let shown: Vec<&str> = parts.by_ref().take(3).collect();
    match parts.next() {
        Some(_) => format!("{}#…", shown.join("#")),
        None => shown.join("#"),
    }
}

/// The item table port (partition key + sort key items).
#[async_trait]
pub trait ItemTable: Send + Sync {
    /// Reads one item; an expired item reads as absent.
    async fn get(&self, key: &Key) -> Result<Option<Item>, StorageError>;

    /// Writes a whole item if the condition holds on the current one.
    async fn put(&self, item: Item, condition: Condition) -> Result<(), StorageError>;

    /// Updates attributes if the condition holds; returns the item as it is afterwards.
    async fn update(
        &self,
        key: &Key,
        update: Update,
        condition: Condition,
    ) -> Result<Item, StorageError>;

    /// Deletes an item if the condition holds; returns the deleted item if there was one.
    async fn delete(&self, key: &Key, condition: Condition) -> Result<Option<Item>, StorageError>;

    /// Reads one page of a partition in sort-key order.
    async fn query(&self, query: Query) -> Result<Page, StorageError>;

    /// Applies up to [`MAX_BATCH_CHUNK`] puts/deletes without atomicity; returns the
    /// requests that were not processed (throttled) and must be retried.
    /// Callers use [`batch::write_all`], which splits, retries and backs off.
    async fn write_chunk(
        &self,
        chunk: Vec<WriteRequest>,
    ) -> Result<Vec<WriteRequest>, StorageError>;

    /// Reads up to [`MAX_GET_CHUNK`] distinct keys in one request: the live items found, in
    /// no particular order, and the keys the table left unprocessed (throttled), to be asked
    /// again. Callers use [`batch::get_many`], which splits, retries and backs off.
    async fn get_chunk(&self, keys: Vec<Key>) -> Result<(Vec<Item>, Vec<Key>), StorageError>;

    /// Applies up to [`MAX_TRANSACTION_ACTIONS`] actions atomically.
    async fn transact(&self, actions: Vec<TransactAction>) -> Result<(), StorageError>;

    /// Every live item whose partition key starts with `pk_prefix`. A full scan on DynamoDB:
    /// for tests (an erasure leaves nothing behind), never on a request path, so it is
    /// part of the test kit and not of what a Lambda function links.
    #[cfg(feature = "test-kit")]
    async fn scan_prefix(&self, pk_prefix: &str) -> Result<Vec<Item>, StorageError>;

    /// Overwrites what deleted items left in the store's own files, where it keeps any: the
    /// embedded file's free pages, which hold deleted values until reused. DynamoDB leaves
    /// nothing a caller can reach. Run when an erasure is complete.
    async fn scrub_free_space(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

/// Checks the shape of a transaction the same way in every adapter.
pub fn validate_transaction(actions: &[TransactAction]) -> Result<(), StorageError> {
    if actions.is_empty() || actions.len() > MAX_TRANSACTION_ACTIONS {
        return Err(StorageError::InvalidRequest(format!(
            "a transaction holds 1 to {MAX_TRANSACTION_ACTIONS} actions, got {}",
            actions.len()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for action in actions {
        check_key(&action.key())?;
        if let TransactAction::Put { item, .. } = action {
            validate_item(item)?;
        }
        if !seen.insert(action.key()) {
            let key = action.key();
            return Err(StorageError::InvalidRequest(format!(
                "a transaction touches an item of {} more than once",
                key_kind(&key.pk)
            )));
        }
    }
    Ok(())
}

/// Checks a query's limit the same way in every adapter.
pub fn validate_query(query: &Query) -> Result<(), StorageError> {
    if query.limit == 0 || query.limit > 1000 {
        return Err(StorageError::InvalidRequest(format!(
            "a query limit is 1 to 1000, got {}",
            query.limit
        )));
    }
    if query.pk.is_empty() {
        return Err(StorageError::InvalidRequest(
            "a query needs a partition key".into(),
        ));
    }
    check_key(&Key::new(query.pk.clone(), ""))?;
    // DynamoDB refuses an empty string in a key condition; both adapters refuse it alike.
    let empty_bound = match &query.range {
        SortKeyRange::All => false,
        SortKeyRange::Prefix(prefix) => prefix.is_empty(),
        SortKeyRange::Between(start, end) => start.is_empty() || end.is_empty(),
    };
    if empty_bound {
        return Err(StorageError::InvalidRequest(
            "a sort-key prefix or bound cannot be empty; query the whole partition instead".into(),
        ));
    }
    Ok(())
}

/// Roughly the bytes a value takes as JSON, without writing it out: what bounds groups of
/// writes (an estimate; [`validate_item`] measures exactly where the limit matters).
pub fn approximate_value_bytes(value: &Value) -> usize {
    match value {
        Value::String(text) => text.len() + 2,
        Value::Array(values) => values.iter().map(approximate_value_bytes).sum::<usize>() + 2,
        Value::Object(map) => approximate_attrs_bytes(map.iter()) + 2,
        _ => 8,
    }
}

/// Roughly the bytes of named attributes as JSON (see [`approximate_value_bytes`]).
pub fn approximate_attrs_bytes<'a>(
    attrs: impl IntoIterator<Item = (&'a String, &'a Value)>,
) -> usize {
    attrs
        .into_iter()
        .map(|(name, value)| name.len() + 4 + approximate_value_bytes(value))
        .sum()
}

/// DynamoDB's item size limit; both adapters refuse larger items alike.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// Checks an item the same way in every adapter: key attributes present, no attribute
/// named like a key attribute, and within DynamoDB's size limit.
pub fn validate_item(item: &Item) -> Result<(), StorageError> {
    if item.pk.is_empty() || item.sk.is_empty() {
        return Err(StorageError::InvalidRequest(
            "an item needs a non-empty pk and sk".into(),
        ));
    }
    if let Some(reserved) = ["pk", "sk", EXPIRES_AT]
        .into_iter()
        .find(|name| item.attrs.contains_key(*name))
    {
        return Err(StorageError::InvalidRequest(format!(
            "attribute name {reserved} is reserved for the key and TTL"
        )));
    }
    check_key(&Key::from(item))?;
    let size = item.pk.len()
        + item.sk.len()
        + serde_json::to_vec(&item.attrs)
            .map(|bytes| bytes.len())
            .unwrap_or(0);
    if size > MAX_ITEM_BYTES {
        return Err(StorageError::InvalidRequest(format!(
            "an item of {} is {size} bytes; an item holds at most {MAX_ITEM_BYTES}",
            key_kind(&item.pk)
        )));
    }
    Ok(())
}

/// DynamoDB's key size limits: a partition key of at most 2,048 bytes, a sort key of at
/// most 1,024. Both adapters refuse longer keys alike, on reads as on writes.
pub const MAX_PARTITION_KEY_BYTES: usize = 2048;
pub const MAX_SORT_KEY_BYTES: usize = 1024;

pub fn check_key(key: &Key) -> Result<(), StorageError> {
    if key.pk.len() > MAX_PARTITION_KEY_BYTES || key.sk.len() > MAX_SORT_KEY_BYTES {
        return Err(StorageError::InvalidRequest(format!(
            "a key holds at most {MAX_PARTITION_KEY_BYTES} bytes of pk and {MAX_SORT_KEY_BYTES} of sk, got {} and {}",
            key.pk.len(),
            key.sk.len()
        )));
    }
    Ok(())
}

/// Checks a batch chunk the same way in every adapter: size and every item written.
pub fn validate_chunk(chunk: &[WriteRequest]) -> Result<(), StorageError> {
    if chunk.len() > MAX_BATCH_CHUNK {
        return Err(StorageError::InvalidRequest(format!(
            "a batch chunk holds at most {MAX_BATCH_CHUNK} requests, got {}",
            chunk.len()
        )));
    }
    chunk.iter().try_for_each(|request| match request {
        WriteRequest::Put(item) => validate_item(item),
        WriteRequest::Delete(key) => check_key(key),
    })
}

/// Checks a batched read the same way in every adapter: size, distinct keys (DynamoDB
/// refuses a BatchGetItem that names a key twice), every key within the limits.
pub fn validate_get_chunk(keys: &[Key]) -> Result<(), StorageError> {
    if keys.len() > MAX_GET_CHUNK {
        return Err(StorageError::InvalidRequest(format!(
            "a batched read holds at most {MAX_GET_CHUNK} keys, got {}",
            keys.len()
        )));
    }
    let mut seen = std::collections::HashSet::with_capacity(keys.len());
    for key in keys {
        check_key(key)?;
        if !seen.insert(key) {
            return Err(StorageError::InvalidRequest(format!(
                "a batched read names an item of {} more than once",
                key_kind(&key.pk)
            )));
        }
    }
    Ok(())
}

/// Reads every page of a query. For partitions known to be small (definitions, references,
/// a key's rows); large ones are paged by their callers.
pub async fn read_all(table: &dyn ItemTable, query: Query) -> Result<Vec<Item>, StorageError> {
    let mut items = Vec::new();
    let mut query = query;
    loop {
        let page = table.query(query.clone()).await?;
        items.extend(page.items);
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => return Ok(items),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_names_the_item_type_and_tenant_never_the_customer() {
        assert_eq!(key_kind("T#dev#CUST#tid-123"), "T#dev#CUST#…");
        assert_eq!(key_kind("T#dev#PROFILE"), "T#dev#PROFILE");
        assert_eq!(key_kind("TENANTS"), "TENANTS");
        let error = StorageError::ConditionFailed {
            pk: "T#dev#CUST#tid-123".into(),
            sk: "jane.doe@example.com".into(),
        };
        let text = error.to_string();
        assert!(
            !text.contains("tid-123") && !text.contains("jane"),
            "{text}"
        );
    }
}
