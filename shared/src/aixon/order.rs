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
//!   still storing it, so the body waits. The run lets go of the cell, so the earlier body's
//!   own import (its object-created event; locally, the next tick) can take both in order;
//!   a run with time left sleeps until the earlier one would be given up and looks again;
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
/// the function that stores it (29 s), so in AWS a request still running is always waited
/// for. The local server has no request timeout, but what is left of a request at that point
/// is one file write, so a minute is ample there too.
pub const ARRIVAL_WAIT_SECONDS: i64 = 60;

/// The problem an update gets when its body never arrived.
pub const NEVER_ARRIVED: &str =
    "the request that sent this body ended before storing it; nothing of it was applied";

/// Whether a queued body may be imported now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    Now,
    /// An update accepted before it is still being stored. It is given up at `until_millis`
    /// (on the app's clock), so the body may go then, if the earlier one has not come first.
    AfterAnEarlierBody {
        until_millis: i64,
    },
}

/// What [`turn_of`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub turn: Turn,
    /// Earlier updates it marked `FAILED` because their body never arrived.
    pub given_up: usize,
}

/// Whether `update`'s body may be imported now, marking earlier updates whose body will
/// never arrive as failed on the way.
pub async fn turn_of(
    table: &dyn ItemTable,
    tenant: &TenantId,
    update: &UpdateRecord,
    now: i64,
) -> Result<Verdict, StorageError> {
    let mut given_up = 0;
    let Some(mut expected) = update_seq(&update.id).map(|seq| seq.saturating_sub(1)) else {
        return Ok(Verdict {
            turn: Turn::Now,
            given_up,
        });
    };
    let wait_millis = ARRIVAL_WAIT_SECONDS * 1000;
    let still_storing =
        |taken_before_millis: i64| now.saturating_sub(taken_before_millis) < wait_millis;
    let wait_for = |taken_before_millis: i64| Turn::AfterAnEarlierBody {
        until_millis: taken_before_millis.saturating_add(wait_millis),
    };
    // The `created` time of the update just above the numbers being looked at: every
    // number below it was taken before that.
    let mut above_created = update.created;
    let earlier = store::updates_back_to_last_done(table, tenant, &update.cell, &update.id).await?;
    let turn = 'records: {
        for record in earlier {
            let Some(seq) = update_seq(&record.id) else {
                continue;
            };
            let numbers_without_record = seq < expected;
            if numbers_without_record && still_storing(above_created) {
                break 'records wait_for(above_created);
            }
            match record.status {
                Status::Done => break 'records Turn::Now,
                Status::Queued if still_storing(record.created) => {
                    break 'records wait_for(record.created);
                }
                Status::Queued => {
                    if store::fail_unarrived(table, tenant, &record, NEVER_ARRIVED, now).await? {
                        given_up += 1;
                        tracing::warn!(
                            "an accepted AIXON body never reached the blob store; its update is marked failed"
                        );
                    } else {
                        // Changed meanwhile: the one other writer is the request itself,
                        // marking it failed when the blob store refused the body. Anything
                        // else is unexpected; then the body waits another while.
                        let now_finished =
                            store::get_update(table, tenant, &record.cell, &record.id)
                                .await?
                                .is_some_and(|record| record.is_finished());
                        if !now_finished {
                            break 'records wait_for(now);
                        }
                    }
                }
                Status::WaitingForUpload | Status::Processing | Status::Failed => {}
            }
            expected = seq.saturating_sub(1);
            above_created = record.created;
        }
        if expected > 0 && still_storing(above_created) {
            wait_for(above_created)
        } else {
            Turn::Now
        }
    };
    Ok(Verdict { turn, given_up })
}
