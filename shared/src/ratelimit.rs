//! Rate limits that hold across Lambda instances: their state is a small item in the table
//! and taking a slot is one conditional update, so the write is the check and two instances
//! can never both pass on the same slot.

use crate::storage::{Comparison, Condition, ItemTable, Key, StorageError, Update};

/// At most one call per `interval_millis` for this key: whether this call may go ahead.
pub async fn take_interval(
    table: &dyn ItemTable,
    key: &Key,
    now_millis: i64,
    interval_millis: i64,
) -> Result<bool, StorageError> {
    let free = Condition::Any(vec![
        Condition::LacksAttribute("last_call".into()),
        Condition::compare("last_call", Comparison::Le, now_millis - interval_millis),
    ]);
    let update = Update::default()
        .set("last_call", now_millis)
        .expiring_at(now_millis / 1000 + interval_millis / 1000 + 60);
    match table.update(key, update, free).await {
        Ok(_) => Ok(true),
        Err(StorageError::ConditionFailed { .. }) => Ok(false),
        Err(other) => Err(other),
    }
}

/// A limit of `calls` per fixed window of `window_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowLimit {
    pub calls: i64,
    pub window_seconds: i64,
}

/// Takes one call of `client`'s current window under `pk`: `Ok(Ok(()))` when it may go
/// ahead, `Ok(Err(seconds))` with the seconds until the window ends when it may not.
pub async fn take_in_window(
    table: &dyn ItemTable,
    pk: String,
    client: &str,
    now_millis: i64,
    limit: WindowLimit,
) -> Result<Result<(), i64>, StorageError> {
    let Window { key, start, now } = Window::of(pk, client, now_millis, limit);
    let window = limit.window_seconds.max(1);
    let room = Condition::Any(vec![
        Condition::LacksAttribute("calls".into()),
        Condition::compare("calls", Comparison::Lt, limit.calls),
    ]);
    let update = Update::default()
        .add("calls", 1)
        .expiring_at(start + window + 60);
    match table.update(&key, update, room).await {
        Ok(_) => Ok(Ok(())),
        Err(StorageError::ConditionFailed { .. }) => Ok(Err((start + window - now).max(1))),
        Err(other) => Err(other),
    }
}

/// Whether `client`'s current window under `pk` is used up, without taking a call: the
/// seconds until the window ends when it is. For limits counted after the fact (failed
/// logins are counted once they have failed, and checked before the next one).
pub async fn window_used_up(
    table: &dyn ItemTable,
    pk: String,
    client: &str,
    now_millis: i64,
    limit: WindowLimit,
) -> Result<Option<i64>, StorageError> {
    let Window { key, start, now } = Window::of(pk, client, now_millis, limit);
    let calls = table
        .get(&key)
        .await?
        .and_then(|item| item.i64("calls"))
        .unwrap_or(0);
    Ok((calls >= limit.calls).then(|| (start + limit.window_seconds.max(1) - now).max(1)))
}

/// The counter item of a fixed window, its start and the current second.
struct Window {
    key: Key,
    start: i64,
    now: i64,
}

impl Window {
    fn of(pk: String, client: &str, now_millis: i64, limit: WindowLimit) -> Window {
        let window = limit.window_seconds.max(1);
        let now = now_millis.div_euclid(1000);
        let start = now - now.rem_euclid(window);
        Window {
            key: Key::new(pk, format!("{client}#{start}")),
            start,
            now,
        }
    }
}
