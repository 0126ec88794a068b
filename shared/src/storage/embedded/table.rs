//! The item table on one redb database file.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::fault;
use crate::clock::SharedClock;
use crate::storage::group_commit::{GroupWriter, WriteCall, Written, stored, updated};
use crate::storage::{
    Condition, CursorSigner, Item, ItemTable, Key, Page, Query, SortKeyRange, StorageError,
    TransactAction, Update, WriteRequest, validate_get_chunk, validate_query, validate_transaction,
};

const ITEMS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("items");

/// The part of an item stored as the redb value.
#[derive(Deserialize)]
struct StoredValue {
    #[serde(default)]
    expires_at: Option<i64>,
    attrs: BTreeMap<String, Value>,
}

/// The same, borrowed from the item being written (no copy of its attributes).
#[derive(Serialize)]
struct StoredRef<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    attrs: &'a BTreeMap<String, Value>,
}

pub(in crate::storage) fn encode(item: &Item) -> Result<Vec<u8>, StorageError> {
    serde_json::to_vec(&StoredRef {
        expires_at: item.expires_at,
        attrs: &item.attrs,
    })
    .map_err(fault)
}

pub(in crate::storage) fn decode(pk: &str, sk: &str, bytes: &[u8]) -> Result<Item, StorageError> {
    let stored: StoredValue = serde_json::from_slice(bytes).map_err(fault)?;
    Ok(Item {
        pk: pk.to_string(),
        sk: sk.to_string(),
        expires_at: stored.expires_at,
        attrs: stored.attrs,
    })
}

/// The smallest string greater than every string that starts with `prefix`, if any.
fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..=0xDFFF).contains(&next) {
            next = 0xE000;
        }
        if let Some(successor) = char::from_u32(next) {
            chars.push(successor);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The item table on a redb file.
#[derive(Clone)]
pub struct EmbeddedTable {
    db: Arc<Database>,
    path: PathBuf,
    writer: GroupWriter,
    clock: SharedClock,
    cursors: CursorSigner,
}

/// redb's page cache. Its default (1 GiB) is a ceiling the cache grows to and keeps, so a
/// large import would leave the local server holding up to a gigabyte. Lookups re-read the
/// B-tree's upper interior pages, which 8 MiB holds for millions of items; the lowest
/// interior level and the leaves are read at random and come from the operating system's
/// page cache (one `pread` each), which is also where a larger cache would get them from.
pub const EMBEDDED_CACHE_BYTES: usize = 8 * 1024 * 1024;

impl EmbeddedTable {
    /// Opens (or creates) the database file. Fails with a clear message when another
    /// process holds it: redb allows one writer process per file.
    pub fn open(
        path: &Path,
        clock: SharedClock,
        cursors: CursorSigner,
    ) -> Result<Self, StorageError> {
        // Created 0600 before redb opens it (redb would create it with the umask's mode).
        crate::files::private_file(path).map_err(|error| {
            StorageError::Unavailable(format!("cannot open {}: {error}", path.display()))
        })?;
        let db = redb::Builder::new()
            .set_cache_size(EMBEDDED_CACHE_BYTES)
            .create(path)
            .map_err(|error| match error {
                redb::DatabaseError::DatabaseAlreadyOpen => StorageError::Unavailable(format!(
                    "{} is open in another process (a running custdata-local?)",
                    path.display()
                )),
                other => fault(other),
            })?;
        let txn = db.begin_write().map_err(fault)?;
        txn.open_table(ITEMS).map_err(fault)?;
        txn.commit().map_err(fault)?;
        let db = Arc::new(db);
        Ok(EmbeddedTable {
            writer: GroupWriter::new(&db, clock.clone(), ITEMS),
            db,
            path: path.to_path_buf(),
            clock,
            cursors,
        })
    }

    /// Durable commits made since the file was opened, and the write calls they carried
    /// (more calls than commits is group commit at work).
    pub fn commits(&self) -> (u64, u64) {
        self.writer.commits()
    }

    /// Replaces one item atomically with what `rewrite` makes of the stored one (`None`
    /// deletes), if the condition holds; returns the item before and after.
    async fn write_one(
        &self,
        key: Key,
        condition: Condition,
        rewrite: impl FnOnce(Option<Item>) -> Result<Option<Item>, StorageError> + Send + 'static,
    ) -> Result<(Option<Item>, Option<Item>), StorageError> {
        let call = WriteCall::One {
            key,
            condition,
            rewrite: Box::new(rewrite),
        };
        match self.writer.write(call).await? {
            Written::One { before, after } => Ok((before, after)),
            Written::Done => Err(fault("a single write answered as a batch")),
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database, i64) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let db = self.db.clone();
        let now = self.clock.now_seconds();
        tokio::task::spawn_blocking(move || work(&db, now))
            .await
            .map_err(fault)?
    }
}

/// What the scrub fills the file's free pages with, then drops.
const SCRUB: TableDefinition<u64, &[u8]> = TableDefinition::new("scrub");
const SCRUB_VALUE_BYTES: usize = 1024;

/// Overwrites every free page of the file with zeros. redb leaves a freed page's bytes in
/// place until it reuses the page, so an erased customer's values would stay readable in
/// the file; it also writes each page it allocates whole, and grows the file only when no
/// free page is left. So filling a scratch table until the file grows overwrites every free
/// page, and dropping it frees them again holding zeros. Costs a write of the free space.
fn scrub_free_pages(db: &Database, path: &Path) -> Result<(), StorageError> {
    // Commits first, so that redb releases the pages the last deletions freed for reuse.
    for _ in 0..2 {
        db.begin_write().map_err(fault)?.commit().map_err(fault)?;
    }
    let file_bytes = |path: &Path| {
        std::fs::metadata(path)
            .map(|meta| meta.len())
            .map_err(fault)
    };
    let before = file_bytes(path)?;
    // Bounded even if growth went unseen: more filler than the file has bytes.
    let most = before / SCRUB_VALUE_BYTES as u64 * 2 + 1024;
    let filler = [0u8; SCRUB_VALUE_BYTES];
    let txn = db.begin_write().map_err(fault)?;
    {
        let mut table = txn.open_table(SCRUB).map_err(fault)?;
        let mut written = 0u64;
        while file_bytes(path)? == before && written < most {
            for _ in 0..64 {
                table.insert(written, filler.as_slice()).map_err(fault)?;
                written += 1;
            }
        }
    }
    txn.commit().map_err(fault)?;
    let txn = db.begin_write().map_err(fault)?;
    txn.delete_table(SCRUB).map_err(fault)?;
    txn.commit().map_err(fault)
}

fn live(item: Option<Item>, now: i64) -> Option<Item> {
    item.filter(|item| !item.is_expired(now))
}

#[async_trait]
impl ItemTable for EmbeddedTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StorageError> {
        crate::storage::check_key(key)?;
        // A point read takes microseconds (redb's cache, else one read from the operating
        // system's page cache): handing it to the blocking pool, a thread wake-up each way,
        // cost more than the read itself on every request.
        let txn = self.db.begin_read().map_err(fault)?;
        let table = txn.open_table(ITEMS).map_err(fault)?;
        Ok(live(stored(&table, key)?, self.clock.now_seconds()))
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StorageError> {
        crate::storage::validate_item(&item)?;
        let key = Key::from(&item);
        self.write_one(key, condition, move |_| Ok(Some(item)))
            .await
            .map(drop)
    }

    async fn update(
        &self,
        key: &Key,
        update: Update,
        condition: Condition,
    ) -> Result<Item, StorageError> {
        crate::storage::check_key(key)?;
        let key = key.clone();
        let (_, after) = self
            .write_one(key.clone(), condition, move |current| {
                updated(current, &key, &update).map(Some)
            })
            .await?;
        after.ok_or_else(|| fault("an update produced no item"))
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<Option<Item>, StorageError> {
        crate::storage::check_key(key)?;
        let now = self.clock.now_seconds();
        let (before, _) = self.write_one(key.clone(), condition, |_| Ok(None)).await?;
        Ok(live(before, now))
    }

    async fn query(&self, query: Query) -> Result<Page, StorageError> {
        validate_query(&query)?;
        let after = self.cursors.decode(&query, self.clock.now_seconds())?;
        let signer = self.cursors.clone();
        self.blocking(move |db, now| {
            let txn = db.begin_read().map_err(fault)?;
            let table = txn.open_table(ITEMS).map_err(fault)?;
            let pk = query.pk.as_str();
            let (mut low, mut high): (Bound<String>, Bound<String>) = match &query.range {
                SortKeyRange::All => (Bound::Unbounded, Bound::Unbounded),
                SortKeyRange::Prefix(prefix) => (
                    Bound::Included(prefix.clone()),
                    prefix_successor(prefix).map_or(Bound::Unbounded, Bound::Excluded),
                ),
                SortKeyRange::Between(start, end) => {
                    (Bound::Included(start.clone()), Bound::Included(end.clone()))
                }
            };
            if let Some(after) = after {
                if query.descending {
                    high = Bound::Excluded(after);
                } else {
                    low = Bound::Excluded(after);
                }
            }
            // An unbounded side stays inside the partition: "" is the least sort key, and no
            // key of this partition reaches the successor of pk.
            let low_key = match &low {
                Bound::Included(sk) | Bound::Excluded(sk) => (pk, sk.as_str()),
                Bound::Unbounded => (pk, ""),
            };
            let next_pk = prefix_successor(pk).unwrap_or_default();
            let high_key = match &high {
                Bound::Included(sk) | Bound::Excluded(sk) => (pk, sk.as_str()),
                Bound::Unbounded => (next_pk.as_str(), ""),
            };
            let low_bound = match low {
                Bound::Excluded(_) => Bound::Excluded(low_key),
                _ => Bound::Included(low_key),
            };
            let high_bound = match high {
                Bound::Included(_) => Bound::Included(high_key),
                _ => Bound::Excluded(high_key),
            };
            let range = table
                .range::<(&str, &str)>((low_bound, high_bound))
                .map_err(fault)?;
            let mut entries: Box<dyn Iterator<Item = _>> = if query.descending {
                Box::new(range.rev())
            } else {
                Box::new(range)
            };
            let mut items: Vec<Item> = Vec::with_capacity(query.limit.min(128));
            let mut more = false;
            for entry in entries.by_ref() {
                let (key, value) = entry.map_err(fault)?;
                let (entry_pk, sk) = key.value();
                if entry_pk != pk {
                    break;
                }
                let item = decode(entry_pk, sk, value.value())?;
                if item.is_expired(now) {
                    continue;
                }
                if items.len() == query.limit {
                    more = true;
                    break;
                }
                items.push(item);
            }
            let last_sk = items.last().map(|item| item.sk.clone());
            let next = match (more, last_sk) {
                (true, Some(last)) => Some(signer.encode(&query, &last)),
                _ => None,
            };
            Ok(Page { items, next })
        })
        .await
    }

    async fn write_chunk(
        &self,
        chunk: Vec<WriteRequest>,
    ) -> Result<Vec<WriteRequest>, StorageError> {
        crate::storage::validate_chunk(&chunk)?;
        if !chunk.is_empty() {
            self.writer.write(WriteCall::Chunk(chunk)).await?;
        }
        Ok(Vec::new())
    }

    async fn get_chunk(&self, keys: Vec<Key>) -> Result<(Vec<Item>, Vec<Key>), StorageError> {
        validate_get_chunk(&keys)?;
        self.blocking(move |db, now| {
            let txn = db.begin_read().map_err(fault)?;
            let table = txn.open_table(ITEMS).map_err(fault)?;
            let mut found = Vec::with_capacity(keys.len());
            for key in &keys {
                found.extend(live(stored(&table, key)?, now));
            }
            Ok((found, Vec::new()))
        })
        .await
    }

    async fn transact(&self, actions: Vec<TransactAction>) -> Result<(), StorageError> {
        validate_transaction(&actions)?;
        self.writer
            .write(WriteCall::Transact(actions))
            .await
            .map(drop)
    }

    async fn scrub_free_space(&self) -> Result<(), StorageError> {
        let path = self.path.clone();
        self.blocking(move |db, _| scrub_free_pages(db, &path))
            .await
    }

    #[cfg(feature = "test-kit")]
    async fn scan_prefix(&self, pk_prefix: &str) -> Result<Vec<Item>, StorageError> {
        let prefix = pk_prefix.to_string();
        self.blocking(move |db, now| {
            let txn = db.begin_read().map_err(fault)?;
            let table = txn.open_table(ITEMS).map_err(fault)?;
            let end = prefix_successor(&prefix);
            let low = Bound::Included((prefix.as_str(), ""));
            let high = match &end {
                Some(end) => Bound::Excluded((end.as_str(), "")),
                None => Bound::Unbounded,
            };
            let mut found = Vec::new();
            for entry in table.range::<(&str, &str)>((low, high)).map_err(fault)? {
                let (key, value) = entry.map_err(fault)?;
                let (pk, sk) = key.value();
                let item = decode(pk, sk, value.value())?;
                if !item.is_expired(now) {
                    found.push(item);
                }
            }
            Ok(found)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Keyring;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_that_arrive_together_share_a_commit_and_each_is_durable() {
        let dir = tempfile::tempdir().expect("a directory");
        let clock: SharedClock = Arc::new(crate::clock::SystemClock);
        let path = dir.path().join("items.redb");
        let table = EmbeddedTable::open(
            &path,
            clock.clone(),
            CursorSigner::new(Keyring::in_memory(crate::keys::SigningKeys::generate())),
        )
        .expect("open");
        let writes = (0..200).map(|n| {
            let item = Item::new("T#a#g", format!("{n:03}")).with("n", n);
            table.put(item, Condition::NotExists)
        });
        let results = futures::future::join_all(writes).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        let (commits, calls) = table.commits();
        assert_eq!(calls, 200);
        assert!(
            commits < 200,
            "{commits} commits for 200 calls: no group formed"
        );
        drop(table);
        // Reopened, every acknowledged write is there.
        let reopened = EmbeddedTable::open(
            &path,
            clock,
            CursorSigner::new(Keyring::in_memory(crate::keys::SigningKeys::generate())),
        )
        .expect("reopen");
        let page = reopened
            .query(Query::partition("T#a#g").limit(1000))
            .await
            .expect("query");
        assert_eq!(page.items.len(), 200);
    }

    #[test]
    fn the_prefix_successor_bounds_every_key_with_the_prefix() {
        assert_eq!(prefix_successor("row#").as_deref(), Some("row$"));
        assert_eq!(prefix_successor("").as_deref(), None);
        let successor = prefix_successor("a\u{10FFFF}").expect("a successor");
        assert_eq!(successor, "b");
    }
}
