//! Group commit for the embedded store: one writer owns redb's write transactions.
//!
//! A redb commit with `Durability::Immediate` costs a sync of the file (about 0.4 ms on the
//! development disk), whatever it holds. So every write call — a conditional put, update
//! or delete, a batch chunk, a transaction — is queued; whichever caller finds the writer
//! idle starts it, and it takes whatever is waiting (at most [`MAX_GROUP_CALLS`] calls and
//! about [`MAX_GROUP_BYTES`]), applies each call in queue order inside one write
//! transaction, commits once and then answers every caller. Each call keeps its own
//! semantics: it reads and checks everything it needs before it writes anything, so a call
//! whose condition fails changes nothing and gets its own error while the others commit.
//! An answer is sent only after the commit returned, so an acknowledged write is as durable
//! as before; a failed commit answers every call of the group as unavailable.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use redb::{Database, Durability, ReadableTable, Table, TableDefinition};
use tokio::sync::oneshot;

use super::{Condition, Item, Key, StorageError, TransactAction, WriteRequest};
use crate::clock::SharedClock;

/// At most this many calls share one commit...
pub const MAX_GROUP_CALLS: usize = 1024;
/// ...and about this many bytes of items (more is taken only as a group's first call).
pub const MAX_GROUP_BYTES: usize = 32 * 1024 * 1024;

pub(super) type ItemsTable<'txn> = Table<'txn, (&'static str, &'static str), &'static [u8]>;

/// Turns the stored item (if any) into what replaces it (`None` deletes).
pub(super) type Rewrite =
    Box<dyn FnOnce(Option<Item>) -> Result<Option<Item>, StorageError> + Send + 'static>;

/// One write call of the item table port.
pub(super) enum WriteCall {
    /// One item, rewritten if the condition holds on the stored one.
    One {
        key: Key,
        condition: Condition,
        rewrite: Rewrite,
    },
    /// A batch chunk: unconditional puts and deletes.
    Chunk(Vec<WriteRequest>),
    /// All actions or none.
    Transact(Vec<TransactAction>),
}

/// What a call reports once its group committed.
pub(super) enum Written {
    /// The item before and after a [`WriteCall::One`].
    One {
        before: Option<Item>,
        after: Option<Item>,
    },
    Done,
}

impl WriteCall {
    /// Roughly the bytes the call writes: what bounds a group.
    fn approximate_bytes(&self) -> usize {
        match self {
            WriteCall::One { .. } => 4096,
            WriteCall::Chunk(requests) => requests
                .iter()
                .map(|request| match request {
                    WriteRequest::Put(item) => item_bytes(item),
                    WriteRequest::Delete(key) => key.pk.len() + key.sk.len(),
                })
                .sum(),
            WriteCall::Transact(actions) => actions
                .iter()
                .map(|action| match action {
                    TransactAction::Put { item, .. } => item_bytes(item),
                    _ => 4096,
                })
                .sum(),
        }
    }
}

fn item_bytes(item: &Item) -> usize {
    item.pk.len() + item.sk.len() + super::approximate_attrs_bytes(&item.attrs)
}

struct Queued {
    call: WriteCall,
    bytes: usize,
    reply: oneshot::Sender<Result<Written, StorageError>>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Queued>,
    /// Whether a writer thread is draining the queue.
    writing: bool,
}

/// The one writer of a redb file, shared by every clone of the embedded table.
///
/// The writer thread holds the database only while it applies a group, and lets go of it
/// before it answers: once the last caller has its answer and drops the table, the file is
/// closed and can be opened again at once (tests and restarts do).
#[derive(Clone)]
pub(super) struct GroupWriter {
    db: Weak<Database>,
    clock: SharedClock,
    table: TableDefinition<'static, (&'static str, &'static str), &'static [u8]>,
    queue: Arc<Mutex<Queue>>,
    /// Commits so far, and the calls they carried: what the benches report.
    commits: Arc<AtomicU64>,
    calls: Arc<AtomicU64>,
}

fn fault(error: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(error.to_string())
}

impl GroupWriter {
    pub(super) fn new(
        db: &Arc<Database>,
        clock: SharedClock,
        table: TableDefinition<'static, (&'static str, &'static str), &'static [u8]>,
    ) -> Self {
        GroupWriter {
            db: Arc::downgrade(db),
            clock,
            table,
            queue: Arc::new(Mutex::new(Queue::default())),
            commits: Arc::new(AtomicU64::new(0)),
            calls: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Commits made so far, and the write calls they carried.
    pub(super) fn commits(&self) -> (u64, u64) {
        (
            self.commits.load(Ordering::Relaxed),
            self.calls.load(Ordering::Relaxed),
        )
    }

    /// Queues a call and waits until the group that holds it committed (or failed).
    pub(super) async fn write(&self, call: WriteCall) -> Result<Written, StorageError> {
        let (reply, answer) = oneshot::channel();
        let bytes = call.approximate_bytes();
        let start_writer = {
            let mut queue = self.queue.lock().map_err(fault)?;
            queue.waiting.push_back(Queued { call, bytes, reply });
            !std::mem::replace(&mut queue.writing, true)
        };
        if start_writer {
            // A plain thread rather than tokio's blocking pool: it lives only while there
            // is work, and needs no runtime (tests drop theirs at will).
            let writer = self.clone();
            if let Err(error) = std::thread::Builder::new()
                .name("custdata-redb-writer".into())
                .spawn(move || writer.drain())
            {
                let mut queue = self.queue.lock().map_err(fault)?;
                queue.writing = false;
                for queued in queue.waiting.drain(..) {
                    let _ = queued.reply.send(Err(fault(&error)));
                }
                return Err(fault(error));
            }
        }
        answer
            .await
            .map_err(|_| fault("the embedded store's writer stopped"))?
    }

    /// Commits group after group until the queue is empty.
    fn drain(&self) {
        loop {
            let group = {
                let Ok(mut queue) = self.queue.lock() else {
                    return;
                };
                if queue.waiting.is_empty() {
                    queue.writing = false;
                    return;
                }
                let mut group = Vec::new();
                let mut bytes = 0;
                while let Some(next) = queue.waiting.front() {
                    let full = group.len() == MAX_GROUP_CALLS
                        || (!group.is_empty() && bytes + next.bytes > MAX_GROUP_BYTES);
                    if full {
                        break;
                    }
                    bytes += next.bytes;
                    group.extend(queue.waiting.pop_front());
                }
                group
            };
            self.commit(group);
        }
    }

    fn commit(&self, group: Vec<Queued>) {
        let (calls, replies): (Vec<WriteCall>, Vec<_>) = group
            .into_iter()
            .map(|queued| (queued.call, queued.reply))
            .unzip();
        let applied = match self.db.upgrade() {
            // Dropped before the answers go out, so a caller that drops the table after
            // its answer leaves the file closed.
            Some(db) => self.apply_all(&db, calls),
            None => Err(fault("the embedded store was closed")),
        };
        match applied {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
            Err(error) => {
                let message = error.to_string();
                for reply in replies {
                    let _ = reply.send(Err(StorageError::Unavailable(message.clone())));
                }
            }
        }
    }

    /// One write transaction for the whole group: each call's own outcome, or the fault
    /// that made the transaction unusable (then nothing of the group is committed).
    fn apply_all(
        &self,
        db: &Database,
        calls: Vec<WriteCall>,
    ) -> Result<Vec<Result<Written, StorageError>>, StorageError> {
        let now = self.clock.now_seconds();
        let mut txn = db.begin_write().map_err(fault)?;
        txn.set_durability(Durability::Immediate).map_err(fault)?;
        let mut outcomes = Vec::with_capacity(calls.len());
        {
            let mut table = txn.open_table(self.table).map_err(fault)?;
            for call in calls {
                outcomes.push(match plan(&table, call, now) {
                    Ok((writes, written)) => {
                        apply(&mut table, &writes)?;
                        Ok(written)
                    }
                    Err(refused) => Err(refused),
                });
            }
        }
        txn.commit().map_err(fault)?;
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.calls
            .fetch_add(outcomes.len() as u64, Ordering::Relaxed);
        Ok(outcomes)
    }
}

/// The encoded value of each key a call writes (`None` removes it).
type Writes = Vec<(Key, Option<Vec<u8>>)>;

/// Reads and checks everything a call needs, writing nothing: the writes it makes and its
/// answer, or why it is refused.
fn plan(
    table: &ItemsTable<'_>,
    call: WriteCall,
    now: i64,
) -> Result<(Writes, Written), StorageError> {
    match call {
        WriteCall::One {
            key,
            condition,
            rewrite,
        } => {
            let before = stored(table, &key)?;
            check(&condition, before.as_ref(), now, &key)?;
            let after = rewrite(before.clone())?;
            let value = match &after {
                Some(item) => {
                    // What DynamoDB refuses after an update (an item over 400 KB), this refuses too.
                    super::validate_item(item)?;
                    Some(encode(item)?)
                }
                None => None,
            };
            Ok((vec![(key, value)], Written::One { before, after }))
        }
        WriteCall::Chunk(requests) => {
            let writes = requests
                .into_iter()
                .map(|request| match request {
                    WriteRequest::Put(item) => Ok((Key::from(&item), Some(encode(&item)?))),
                    WriteRequest::Delete(key) => Ok((key, None)),
                })
                .collect::<Result<_, StorageError>>()?;
            Ok((writes, Written::Done))
        }
        WriteCall::Transact(actions) => {
            let mut writes = Vec::with_capacity(actions.len());
            // Keys are distinct within a transaction, so checking every condition before
            // writing anything sees what applying them one by one would see.
            for (index, action) in actions.into_iter().enumerate() {
                let key = action.key();
                let condition = match &action {
                    TransactAction::Put { condition, .. }
                    | TransactAction::Update { condition, .. }
                    | TransactAction::Delete { condition, .. }
                    | TransactAction::Check { condition, .. } => condition,
                };
                // An unconditional put or delete needs nothing of the stored item.
                let blind = *condition == Condition::Always
                    && matches!(
                        action,
                        TransactAction::Put { .. } | TransactAction::Delete { .. }
                    );
                let current = if blind { None } else { stored(table, &key)? };
                if check(condition, current.as_ref(), now, &key).is_err() {
                    return Err(StorageError::TransactionCanceled { index });
                }
                match action {
                    TransactAction::Put { item, .. } => writes.push((key, Some(encode(&item)?))),
                    TransactAction::Update { update, .. } => {
                        let item = updated(current, &key, &update)?;
                        writes.push((key, Some(encode(&item)?)));
                    }
                    TransactAction::Delete { .. } => writes.push((key, None)),
                    TransactAction::Check { .. } => {}
                }
            }
            Ok((writes, Written::Done))
        }
    }
}

fn apply(table: &mut ItemsTable<'_>, writes: &Writes) -> Result<(), StorageError> {
    for (key, value) in writes {
        let pair = (key.pk.as_str(), key.sk.as_str());
        match value {
            Some(bytes) => table.insert(pair, bytes.as_slice()).map(drop),
            None => table.remove(pair).map(drop),
        }
        .map_err(fault)?;
    }
    Ok(())
}

/// Reads the stored item, expired or not (updates merge onto it, as in DynamoDB).
pub(super) fn stored(
    table: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    key: &Key,
) -> Result<Option<Item>, StorageError> {
    match table
        .get((key.pk.as_str(), key.sk.as_str()))
        .map_err(fault)?
    {
        Some(bytes) => Ok(Some(super::embedded::decode(
            &key.pk,
            &key.sk,
            bytes.value(),
        )?)),
        None => Ok(None),
    }
}

fn encode(item: &Item) -> Result<Vec<u8>, StorageError> {
    super::embedded::encode(item)
}

fn check(
    condition: &Condition,
    current: Option<&Item>,
    now: i64,
    key: &Key,
) -> Result<(), StorageError> {
    let live = current.filter(|item| !item.is_expired(now));
    if condition.holds_for(live) {
        Ok(())
    } else {
        Err(StorageError::ConditionFailed {
            pk: key.pk.clone(),
            sk: key.sk.clone(),
        })
    }
}

pub(super) fn updated(
    current: Option<Item>,
    key: &Key,
    update: &super::Update,
) -> Result<Item, StorageError> {
    let mut item = current.unwrap_or_else(|| Item::new(key.pk.clone(), key.sk.clone()));
    update.apply_to(&mut item)?;
    Ok(item)
}
