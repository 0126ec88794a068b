//! A wrapper that counts the requests an item table receives, by operation: how the
//! benchmarks report DynamoDB requests per 1,000 rows.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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
    pub transact: u64,
}

impl RequestCounts {
    /// Requests that write (what DynamoDB bills as write requests, batches counted once).
    pub fn write_requests(&self) -> u64 {
        self.put + self.update + self.delete + self.batch_write + self.transact
    }

    pub fn read_requests(&self) -> u64 {
        self.get + self.query
    }
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
    transact: AtomicU64,
}

/// Counts every call, then passes it to the wrapped table.
pub struct Metered {
    inner: Arc<dyn ItemTable>,
    counters: Counters,
}

impl Metered {
    pub fn new(inner: Arc<dyn ItemTable>) -> Self {
        Metered {
            inner,
            counters: Counters::default(),
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
        self.inner.get(key).await
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StorageError> {
        bump(&self.counters.put, 1);
        self.inner.put(item, condition).await
    }

    async fn update(
        &self,
        key: &Key,
        update: Update,
        condition: Condition,
    ) -> Result<Item, StorageError> {
        bump(&self.counters.update, 1);
        self.inner.update(key, update, condition).await
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<Option<Item>, StorageError> {
        bump(&self.counters.delete, 1);
        self.inner.delete(key, condition).await
    }

    async fn query(&self, query: Query) -> Result<Page, StorageError> {
        bump(&self.counters.query, 1);
        self.inner.query(query).await
    }

    async fn write_chunk(
        &self,
        chunk: Vec<WriteRequest>,
    ) -> Result<Vec<WriteRequest>, StorageError> {
        bump(&self.counters.batch_write, 1);
        bump(&self.counters.batch_items, chunk.len() as u64);
        self.inner.write_chunk(chunk).await
    }

    async fn transact(&self, actions: Vec<TransactAction>) -> Result<(), StorageError> {
        bump(&self.counters.transact, 1);
        self.inner.transact(actions).await
    }

    async fn scan_prefix(&self, pk_prefix: &str) -> Result<Vec<Item>, StorageError> {
        bump(&self.counters.query, 1);
        self.inner.scan_prefix(pk_prefix).await
    }
}
