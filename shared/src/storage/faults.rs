//! Fault-injecting wrappers around the item table, for tests of the retry and
//! all-or-nothing paths against either adapter.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{
    Condition, Item, ItemTable, Key, Page, Query, StorageError, TransactAction, Update,
    WriteRequest,
};

/// Passes everything through, except that each batch chunk — written or read — has its
/// second half refused (returned unprocessed, not done) until `refusals` chunks have been
/// cut short: what DynamoDB does under throttling. Records every write chunk's size.
pub struct RefusingPartOfBatches {
    inner: Arc<dyn ItemTable>,
    refusals_left: AtomicUsize,
    chunk_sizes: Mutex<Vec<usize>>,
}

impl RefusingPartOfBatches {
    pub fn new(inner: Arc<dyn ItemTable>, refusals: usize) -> Self {
        RefusingPartOfBatches {
            inner,
            refusals_left: AtomicUsize::new(refusals),
            chunk_sizes: Mutex::new(Vec::new()),
        }
    }

    /// Sizes of every chunk handed to `write_chunk`, in call order.
    pub fn chunk_sizes(&self) -> Vec<usize> {
        self.chunk_sizes
            .lock()
            .map(|sizes| sizes.clone())
            .unwrap_or_default()
    }

    /// Uses up one refusal, if any is left.
    fn take_refusal(&self) -> bool {
        self.refusals_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok()
    }

    /// How many refusals are still to come.
    pub fn refusals_left(&self) -> usize {
        self.refusals_left.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl ItemTable for RefusingPartOfBatches {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StorageError> {
        self.inner.get(key).await
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StorageError> {
        self.inner.put(item, condition).await
    }

    async fn update(
        &self,
        key: &Key,
        update: Update,
        condition: Condition,
    ) -> Result<Item, StorageError> {
        self.inner.update(key, update, condition).await
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<Option<Item>, StorageError> {
        self.inner.delete(key, condition).await
    }

    async fn query(&self, query: Query) -> Result<Page, StorageError> {
        self.inner.query(query).await
    }

    async fn write_chunk(
        &self,
        mut chunk: Vec<WriteRequest>,
    ) -> Result<Vec<WriteRequest>, StorageError> {
        if let Ok(mut sizes) = self.chunk_sizes.lock() {
            sizes.push(chunk.len());
        }
        let refuse = chunk.len() > 1 && self.take_refusal();
        if !refuse {
            return self.inner.write_chunk(chunk).await;
        }
        let refused = chunk.split_off(chunk.len() / 2);
        let mut unprocessed = self.inner.write_chunk(chunk).await?;
        unprocessed.extend(refused);
        Ok(unprocessed)
    }

    async fn get_chunk(&self, mut keys: Vec<Key>) -> Result<(Vec<Item>, Vec<Key>), StorageError> {
        if !(keys.len() > 1 && self.take_refusal()) {
            return self.inner.get_chunk(keys).await;
        }
        let refused = keys.split_off(keys.len() / 2);
        let (found, mut unprocessed) = self.inner.get_chunk(keys).await?;
        unprocessed.extend(refused);
        Ok((found, unprocessed))
    }

    async fn transact(&self, actions: Vec<TransactAction>) -> Result<(), StorageError> {
        self.inner.transact(actions).await
    }

    async fn scan_prefix(&self, pk_prefix: &str) -> Result<Vec<Item>, StorageError> {
        self.inner.scan_prefix(pk_prefix).await
    }

    async fn scrub_free_space(&self) -> Result<(), StorageError> {
        self.inner.scrub_free_space().await
    }
}

/// What an injected fault does to the write it hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The write is not applied and fails: an error answer, throttling beyond the SDK's
    /// retries, a timeout before the request reached the table.
    Refused,
    /// The write is applied and the caller is told it failed: a timeout after the table
    /// applied it.
    AppliedButLost,
    /// The process dies before this write: neither it nor any later write is applied.
    Crash,
}

impl Fault {
    pub const ALL: [Fault; 3] = [Fault::Refused, Fault::AppliedButLost, Fault::Crash];
}

/// Passes reads through and injects `fault` at the `at`-th write (1-based; 0 never) —
/// puts, updates, deletes, batch chunks and transactions all count. Counts every write, so
/// a clean run tells how many writes a path makes.
pub struct FaultAtWrite {
    inner: Arc<dyn ItemTable>,
    fault: Fault,
    at: usize,
    writes: AtomicUsize,
}

impl FaultAtWrite {
    pub fn new(inner: Arc<dyn ItemTable>, at: usize, fault: Fault) -> Self {
        FaultAtWrite {
            inner,
            fault,
            at,
            writes: AtomicUsize::new(0),
        }
    }

    /// Writes attempted so far, the faulted ones included.
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    async fn write<T>(
        &self,
        write: impl std::future::Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        let number = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        let hit =
            self.at != 0 && (number == self.at || (self.fault == Fault::Crash && number > self.at));
        if !hit {
            return write.await;
        }
        let injected =
            StorageError::Unavailable(format!("injected {:?} at write {number}", self.fault));
        if self.fault == Fault::AppliedButLost {
            let _ = write.await;
        }
        Err(injected)
    }
}

#[async_trait]
impl ItemTable for FaultAtWrite {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StorageError> {
        self.inner.get(key).await
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StorageError> {
        self.write(self.inner.put(item, condition)).await
    }

    async fn update(
        &self,
        key: &Key,
        update: Update,
        condition: Condition,
    ) -> Result<Item, StorageError> {
        self.write(self.inner.update(key, update, condition)).await
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<Option<Item>, StorageError> {
        self.write(self.inner.delete(key, condition)).await
    }

    async fn query(&self, query: Query) -> Result<Page, StorageError> {
        self.inner.query(query).await
    }

    async fn write_chunk(
        &self,
        chunk: Vec<WriteRequest>,
    ) -> Result<Vec<WriteRequest>, StorageError> {
        self.write(self.inner.write_chunk(chunk)).await
    }

    async fn get_chunk(&self, keys: Vec<Key>) -> Result<(Vec<Item>, Vec<Key>), StorageError> {
        self.inner.get_chunk(keys).await
    }

    async fn transact(&self, actions: Vec<TransactAction>) -> Result<(), StorageError> {
        self.write(self.inner.transact(actions)).await
    }

    async fn scan_prefix(&self, pk_prefix: &str) -> Result<Vec<Item>, StorageError> {
        self.inner.scan_prefix(pk_prefix).await
    }

    async fn scrub_free_space(&self) -> Result<(), StorageError> {
        self.inner.scrub_free_space().await
    }
}
