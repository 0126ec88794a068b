//! A wrapper that counts the requests an item table receives, by operation, and the items
//! each partition key reads and writes: how the benchmarks report DynamoDB requests per
//! 1,000 rows, and the hottest partition's share of a run (DynamoDB serves one partition
//! about 1,000 write units and 3,000 read units a second, so that share caps a tenant).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::Serialize;

use super::{
    Condition, Item, ItemTable, Key, Page, Query, StorageError, TransactAction, Update,
    WriteRequest,
};

/// Request counts, one per table API call (a batch chunk is one BatchWriteItem request).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RequestCounts {
    pub get: u64,
    pub put: u64,
    pub update: u64,
    pub delete: u64,
    pub query: u64,
    pub batch_write: u64,
    pub batch_items: u64,
    pub batch_get: u64,
    pub batch_get_keys: u64,
    pub transact: u64,
}

impl RequestCounts {
    /// Requests that write (what DynamoDB bills as write requests, batches counted once).
    pub fn write_requests(&self) -> u64 {
        self.put + self.update + self.delete + self.batch_write + self.transact
    }

    pub fn read_requests(&self) -> u64 {
        self.get + self.query + self.batch_get
    }

    /// Every request, reads and writes.
    pub fn requests(&self) -> u64 {
        self.read_requests() + self.write_requests()
    }

    /// What happened between `earlier` and these counts.
    pub fn since(&self, earlier: &RequestCounts) -> RequestCounts {
        RequestCounts {
            get: self.get - earlier.get,
            put: self.put - earlier.put,
            update: self.update - earlier.update,
            delete: self.delete - earlier.delete,
            query: self.query - earlier.query,
            batch_write: self.batch_write - earlier.batch_write,
            batch_items: self.batch_items - earlier.batch_items,
            batch_get: self.batch_get - earlier.batch_get,
            batch_get_keys: self.batch_get_keys - earlier.batch_get_keys,
            transact: self.transact - earlier.transact,
        }
    }
}

/// DynamoDB's throughput of one partition, per second.
pub const PARTITION_WRITE_UNITS: f64 = 1_000.0;
pub const PARTITION_READ_UNITS: f64 = 3_000.0;

/// The hottest partition of a run: item reads and writes per partition key, counted one per
/// item touched (a transaction's condition check counts as a read).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Heat {
    pub writes: u64,
    pub reads: u64,
    pub hottest_write_pk: String,
    pub hottest_writes: u64,
    pub hottest_read_pk: String,
    pub hottest_reads: u64,
}

impl Heat {
    pub fn hottest_write_share(&self) -> f64 {
        share(self.hottest_writes, self.writes)
    }

    pub fn hottest_read_share(&self) -> f64 {
        share(self.hottest_reads, self.reads)
    }

    /// The item writes a second one tenant's run of this shape could reach on DynamoDB
    /// before its hottest partition is saturated.
    pub fn write_ceiling_per_second(&self) -> f64 {
        PARTITION_WRITE_UNITS / self.hottest_write_share().max(f64::MIN_POSITIVE)
    }

    pub fn read_ceiling_per_second(&self) -> f64 {
        PARTITION_READ_UNITS / self.hottest_read_share().max(f64::MIN_POSITIVE)
    }

    /// The partition keys with the tenant's name masked, for printing.
    pub fn describe(&self) -> String {
        format!(
            "hottest write partition {} ({} of {} item writes, share {:.4}, ceiling {:.0} item writes/s); \
             hottest read partition {} ({} of {} item reads, share {:.4}, ceiling {:.0} item reads/s)",
            self.hottest_write_pk,
            self.hottest_writes,
            self.writes,
            self.hottest_write_share(),
            self.write_ceiling_per_second(),
            self.hottest_read_pk,
            self.hottest_reads,
            self.reads,
            self.hottest_read_share(),
            self.read_ceiling_per_second(),
        )
    }
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

#[derive(Default)]
struct PartitionCounts {
    writes: HashMap<String, u64>,
    reads: HashMap<String, u64>,
}

#[derive(Default)]
struct Counters {
    get: AtomicU64,
    put: AtomicU64,
    update: AtomicU64,
    delete: AtomicU64,
    query: AtomicU64,
    batch_write: AtomicU64,
    batch_items: AtomicU64,
    batch_get: AtomicU64,
    batch_get_keys: AtomicU64,
    transact: AtomicU64,
}

/// Counts every call, then passes it to the wrapped table.
pub struct Metered {
    inner: Arc<dyn ItemTable>,
    counters: Counters,
    partitions: Mutex<PartitionCounts>,
}

impl Metered {
    pub fn new(inner: Arc<dyn ItemTable>) -> Self {
        Metered {
            inner,
            counters: Counters::default(),
            partitions: Mutex::new(PartitionCounts::default()),
        }
    }

    /// Forgets the partition counts (request counts are read as differences instead).
    pub fn reset_heat(&self) {
        if let Ok(mut partitions) = self.partitions.lock() {
            *partitions = PartitionCounts::default();
        }
    }

    /// The hottest partitions since the start or the last [`Metered::reset_heat`].
    pub fn heat(&self) -> Heat {
        let Ok(partitions) = self.partitions.lock() else {
            return Heat::default();
        };
        let hottest = |counts: &HashMap<String, u64>| {
            counts
                .iter()
                .max_by_key(|(pk, count)| (**count, std::cmp::Reverse((*pk).clone())))
                .map(|(pk, count)| (pk.clone(), *count))
                .unwrap_or_default()
        };
        let (hottest_write_pk, hottest_writes) = hottest(&partitions.writes);
        let (hottest_read_pk, hottest_reads) = hottest(&partitions.reads);
        Heat {
            writes: partitions.writes.values().sum(),
            reads: partitions.reads.values().sum(),
            hottest_write_pk,
            hottest_writes,
            hottest_read_pk,
            hottest_reads,
        }
    }

    fn touch<'a>(
        &self,
        writes: impl IntoIterator<Item = &'a str>,
        reads: impl IntoIterator<Item = &'a str>,
    ) {
        if let Ok(mut partitions) = self.partitions.lock() {
            for pk in writes {
                *partitions.writes.entry(pk.to_string()).or_default() += 1;
            }
            for pk in reads {
                *partitions.reads.entry(pk.to_string()).or_default() += 1;
            }
        }
    }

    pub fn counts(&self) -> RequestCounts {
        let c = &self.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        RequestCounts {
            get: load(&c.get),
            put: load(&c.put),
            update: load(&c.update),
            delete: load(&c.delete),
            query: load(&c.query),
            batch_write: load(&c.batch_write),
            batch_items: load(&c.batch_items),
            batch_get: load(&c.batch_get),
            batch_get_keys: load(&c.batch_get_keys),
            transact: load(&c.transact),
        }
    }
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

#[async_trait]
impl ItemTable for Metered {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StorageError> {
        bump(&self.counters.get, 1);
        self.touch([], [key.pk.as_str()]);
        self.inner.get(key).await
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StorageError> {
        bump(&self.counters.put, 1);
        self.touch([item.pk.as_str()], []);
        self.inner.put(item, condition).await
    }

    async fn update(
        &self,
        key: &Key,
        update: Update,
        condition: Condition,
    ) -> Result<Item, StorageError> {
        bump(&self.counters.update, 1);
        self.touch([key.pk.as_str()], []);
        self.inner.update(key, update, condition).await
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<Option<Item>, StorageError> {
        bump(&self.counters.delete, 1);
        self.touch([key.pk.as_str()], []);
        self.inner.delete(key, condition).await
    }

    async fn query(&self, query: Query) -> Result<Page, StorageError> {
        bump(&self.counters.query, 1);
        self.touch([], [query.pk.as_str()]);
        self.inner.query(query).await
    }

    async fn write_chunk(
        &self,
        chunk: Vec<WriteRequest>,
    ) -> Result<Vec<WriteRequest>, StorageError> {
        bump(&self.counters.batch_write, 1);
        bump(&self.counters.batch_items, chunk.len() as u64);
        let keys: Vec<Key> = chunk.iter().map(WriteRequest::key).collect();
        self.touch(keys.iter().map(|key| key.pk.as_str()), []);
        self.inner.write_chunk(chunk).await
    }

    async fn get_chunk(&self, keys: Vec<Key>) -> Result<(Vec<Item>, Vec<Key>), StorageError> {
        bump(&self.counters.batch_get, 1);
        bump(&self.counters.batch_get_keys, keys.len() as u64);
        self.touch([], keys.iter().map(|key| key.pk.as_str()));
        self.inner.get_chunk(keys).await
    }

    async fn transact(&self, actions: Vec<TransactAction>) -> Result<(), StorageError> {
        bump(&self.counters.transact, 1);
        let keys: Vec<(Key, bool)> = actions
            .iter()
            .map(|action| (action.key(), matches!(action, TransactAction::Check { .. })))
            .collect();
        self.touch(
            keys.iter()
                .filter(|(_, check)| !check)
                .map(|(key, _)| key.pk.as_str()),
            keys.iter()
                .filter(|(_, check)| *check)
                .map(|(key, _)| key.pk.as_str()),
        );
        self.inner.transact(actions).await
    }

    async fn scan_prefix(&self, pk_prefix: &str) -> Result<Vec<Item>, StorageError> {
        bump(&self.counters.query, 1);
        self.inner.scan_prefix(pk_prefix).await
    }

    async fn scrub_free_space(&self) -> Result<(), StorageError> {
        self.inner.scrub_free_space().await
    }
}
