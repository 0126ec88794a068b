//! Batched reads and writes over any item table: split into chunks DynamoDB accepts, retry
//! what the table leaves unprocessed with exponential backoff, report what could not be done.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use futures::{StreamExt, TryStreamExt};

use super::{Item, ItemTable, Key, MAX_BATCH_CHUNK, MAX_GET_CHUNK, StorageError, WriteRequest};

/// How many chunks are in flight at once: enough for the embedded store to commit many
/// chunks with one sync (group commit), few enough not to flood DynamoDB with one caller.
const CONCURRENT_CHUNKS: usize = 16;

fn backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(20))
        .with_max_delay(Duration::from_secs(2))
        .with_max_times(10)
        .with_jitter()
        .build()
}

/// Writes every request, in chunks of at most [`MAX_BATCH_CHUNK`]. Not atomic: on failure
/// the error names the keys that were not written (all others were).
pub async fn write_all(
    table: &dyn ItemTable,
    requests: Vec<WriteRequest>,
) -> Result<(), StorageError> {
    let mut seen = HashSet::with_capacity(requests.len());
    if let Some(duplicate) = requests
        .iter()
        .map(WriteRequest::key)
        .find(|key| !seen.insert(key.clone()))
    {
        return Err(StorageError::InvalidRequest(format!(
            "a batch touches an item of {} more than once",
            super::key_kind(&duplicate.pk)
        )));
    }
    let total = requests.len();
    let mut chunks = Vec::with_capacity(total.div_ceil(MAX_BATCH_CHUNK));
    let mut requests = requests.into_iter().peekable();
    while requests.peek().is_some() {
        chunks.push(requests.by_ref().take(MAX_BATCH_CHUNK).collect::<Vec<_>>());
    }
    let unwritten: Vec<Key> = futures::stream::iter(chunks)
        .map(|chunk| write_chunk_with_retries(table, chunk))
        .buffer_unordered(CONCURRENT_CHUNKS)
        .try_fold(Vec::new(), |mut unwritten, mut left| async move {
            unwritten.append(&mut left);
            Ok(unwritten)
        })
        .await?;
    if unwritten.is_empty() {
        Ok(())
    } else {
        Err(StorageError::BatchIncomplete {
            unwritten: unwritten.len(),
            total,
            keys: unwritten,
        })
    }
}

/// Reads every key given (duplicates read once), in chunks of at most [`MAX_GET_CHUNK`]
/// with several in flight: the live items found, by key. Keys the table keeps leaving
/// unprocessed after the retries make the whole read fail as unavailable.
pub fn get_many(
    table: &dyn ItemTable,
    keys: impl IntoIterator<Item = Key>,
) -> impl Future<Output = Result<HashMap<Key, Item>, StorageError>> + Send + '_ {
    // The keys are gathered before the future starts, so it holds no caller's iterator.
    let mut seen = HashSet::new();
    let distinct: Vec<Key> = keys
        .into_iter()
        .filter(|key| seen.insert(key.clone()))
        .collect();
    get_distinct(table, distinct)
}

async fn get_distinct(
    table: &dyn ItemTable,
    distinct: Vec<Key>,
) -> Result<HashMap<Key, Item>, StorageError> {
    let chunks: Vec<Vec<Key>> = distinct
        .chunks(MAX_GET_CHUNK)
        .map(<[Key]>::to_vec)
        .collect();
    futures::stream::iter(chunks)
        .map(|chunk| get_chunk_with_retries(table, chunk))
        .buffer_unordered(CONCURRENT_CHUNKS)
        .try_fold(HashMap::new(), |mut found, items| async move {
            found.extend(items.into_iter().map(|item| (Key::from(&item), item)));
            Ok(found)
        })
        .await
}

/// Reads one chunk, asking again for what the table leaves unprocessed.
async fn get_chunk_with_retries(
    table: &dyn ItemTable,
    chunk: Vec<Key>,
) -> Result<Vec<Item>, StorageError> {
    let (mut found, mut pending) = table.get_chunk(chunk).await?;
    let mut delays = backoff();
    while !pending.is_empty() {
        let Some(delay) = delays.next() else {
            return Err(StorageError::Unavailable(format!(
                "{} keys of a batched read stayed unprocessed after retries",
                pending.len()
            )));
        };
        tracing::debug!(
            unprocessed = pending.len(),
            ?delay,
            "retrying unprocessed batched reads"
        );
        tokio::time::sleep(delay).await;
        let (more, left) = table.get_chunk(pending).await?;
        found.extend(more);
        pending = left;
    }
    Ok(found)
}

/// Deletes every item given (batched like [`write_all`]): how callers empty a partition page
/// by page.
pub async fn delete_all(table: &dyn ItemTable, items: &[super::Item]) -> Result<(), StorageError> {
    write_all(
        table,
        items
            .iter()
            .map(|item| WriteRequest::Delete(Key::from(item)))
            .collect(),
    )
    .await
}

/// Writes one chunk; returns the keys still unprocessed when the retries run out.
async fn write_chunk_with_retries(
    table: &dyn ItemTable,
    chunk: Vec<WriteRequest>,
) -> Result<Vec<Key>, StorageError> {
    let mut pending = table.write_chunk(chunk).await?;
    let mut delays = backoff();
    while !pending.is_empty() {
        let Some(delay) = delays.next() else {
            return Ok(pending.iter().map(WriteRequest::key).collect());
        };
        tracing::debug!(
            unprocessed = pending.len(),
            ?delay,
            "retrying unprocessed batch items"
        );
        tokio::time::sleep(delay).await;
        pending = table.write_chunk(pending).await?;
    }
    Ok(Vec::new())
}
