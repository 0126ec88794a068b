//! The order a cell's bodies are imported in: the order their updates were accepted.
//!
//! Accepting an inline body takes the cell's next sequence number (the start of the update
//! id, so of the object key), then writes the update record, then the body. Two requests on
//! one cell can finish these steps in either order, so the body of a later update may be in
//! the blob store before an earlier one's. Importing it first would let the earlier body
//! overwrite its rows. So before a body is imported, the updates accepted before it are
//! looked at, back to the last one an import finished:
//!
//! - a sequence number with no record yet, or a `QUEUED` record with no body: its request is
//!   still storing it, so the body waits (the import returns and the earlier body's arrival,
//!   or the next scheduled run, starts it again);
//! - once [`ARRIVAL_WAIT_SECONDS`] have passed, the request that was storing it is over (the
//!   upload function's timeout is 29 s): a number with no record is dropped (its request got
//!   an error and stored nothing), and a record without a body is marked `FAILED`;
//! - a presigned upload waiting for its body holds nothing back: it takes its place when its
//!   body arrives (docs/aixon.md, "Order").
//!
//! How long ago a number was taken is bounded by its successor: numbers are taken one after
//! another, and a record's `created` time is read after its number was taken.

use super::store::{self, Status, UpdateRecord, update_seq};
use crate::domain::TenantId;
use crate::storage::{ItemTable, StorageError};

/// How long an accepted update's body may take to reach the blob store: twice the timeout of
/// the function that stores it, so a request still running is always waited for.
pub const ARRIVAL_WAIT_SECONDS: i64 = 60;

/// The problem an update gets when its body never arrived.
pub const NEVER_ARRIVED: &str =
    "the request that sent this body ended before storing it; nothing of it was applied";

/// Whether a queued body may be imported now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    Now,
    /// An update accepted before it is still being stored.
    AfterAnEarlierBody,
}

/// Whether `update`'s body may be imported now, marking earlier updates whose body will
/// never arrive as failed on the way.
pub async fn turn_of(
    table: &dyn ItemTable,
    tenant: &TenantId,
    update: &UpdateRecord,
    now_millis: i64,
) -> Result<Turn, StorageError> {
    let Some(mut expected) = update_seq(&update.id).map(|seq| seq.saturating_sub(1)) else {
        return Ok(Turn::Now);
    };
    let now = now_millis;
    let still_storing = |taken_before_millis: i64| {
        now.saturating_sub(taken_before_millis) < ARRIVAL_WAIT_SECONDS * 1000
    };
    // The `created` time of the update just above the numbers being looked at: every
    // number below it was taken before that.
    let mut above_created = update.created;
    let earlier = store::updates_back_to_last_done(table, tenant, &update.cell, &update.id).await?;
    for record in earlier {
        let Some(seq) = update_seq(&record.id) else {
            continue;
        };
        let numbers_without_record = seq < expected;
        if numbers_without_record && still_storing(above_created) {
            return Ok(Turn::AfterAnEarlierBody);
        }
        match record.status {
            Status::Done => return Ok(Turn::Now),
            Status::Queued if still_storing(record.created) => {
                return Ok(Turn::AfterAnEarlierBody);
            }
            Status::Queued => {
                if !store::fail_unarrived(table, tenant, &record, NEVER_ARRIVED, now).await? {
                    // It changed under us (its body came after all): look again later.
                    return Ok(Turn::AfterAnEarlierBody);
                }
                tracing::warn!(
                    "an accepted AIXON body never reached the blob store; its update is marked failed"
                );
            }
            Status::WaitingForUpload | Status::Processing | Status::Failed => {}
        }
        expected = seq.saturating_sub(1);
        above_created = record.created;
    }
    if expected > 0 && still_storing(above_created) {
        return Ok(Turn::AfterAnEarlierBody);
    }
    Ok(Turn::Now)
}
