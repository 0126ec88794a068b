//! References and the pointer switches: sealing a staging snapshot by taking its
//! reference, go-live, and clear.
//!
//! - Taking a staging reference seals the staging version; the next write to staging opens a
//!   new, empty version, so the reference keeps naming exactly what it froze. Sealing a
//!   newer snapshot retires older sealed ones.
//! - Go-live is one transaction on the definition item and the reference: the cost does not
//!   depend on the number of rows. Going live with the staging snapshot also opens a new,
//!   empty staging table, so live and staging never share a version.
//! - A reader resolves the live pointer once per request, so it sees the old table or the
//!   new one, never a mix.
//! - Every switch queues the version it leaves for the sweep in the same transaction.

use super::sweep::sweep_entry;
use super::{
    DatastoreError, DatastoreState, POINTER_SWITCH, Reference, ReferenceState, Snapshot, Target,
    all_references, attempt_of, attribute, could_be_reference, lost_race, new_reference,
    new_version, require,
};
use crate::domain::TenantId;
use crate::retry::{Attempt, optimistic};
use crate::storage::{Condition, ItemTable, StorageError, TransactAction, Update, keys};

fn retire_reference(
    tenant: &TenantId,
    api_name: &str,
    reference: &str,
    from: Condition,
) -> TransactAction {
    TransactAction::Update {
        key: keys::datastore_reference(tenant, api_name, reference),
        update: ReferenceState::Retired.set(),
        condition: from,
    }
}

/// A reference to a table: the live table's, or the staging table's (sealing it).
pub async fn reference(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &str,
    target: Target,
    now_millis: i64,
) -> Result<String, DatastoreError> {
    optimistic(POINTER_SWITCH, || async move {
        let state = require(table, tenant, api_name).await?;
        if target == Target::Live {
            return Ok(Attempt::Done(state.live_reference));
        }
        if let Some(existing) = state.staging_reference {
            return Ok(Attempt::Done(existing));
        }
        let reference = new_reference();
        let sealed = Snapshot {
            reference: &reference,
            version: &state.staging_version,
            seq: state.staging_seq,
            state: ReferenceState::Sealed,
        };
        let actions = vec![
            state.switch(
                tenant,
                Update::default().set(attribute::STAGING_REFERENCE, reference.as_str()),
            ),
            TransactAction::Put {
                item: sealed.to_item(tenant, &state),
                condition: Condition::NotExists,
            },
        ];
        let Attempt::Done(()) = attempt_of(table.transact(actions).await)? else {
            return Ok(Attempt::Contended);
        };
        retire_stale_snapshots(table, tenant, &state, state.staging_seq, now_millis / 1000).await;
        Ok(Attempt::Done(reference))
    })
    .await
}

/// A reference as stored, if it belongs to this incarnation of the datastore.
async fn load_reference(
    table: &dyn ItemTable,
    tenant: &TenantId,
    state: &DatastoreState,
    reference: &str,
) -> Result<Option<Reference>, StorageError> {
    let item = table
        .get(&keys::datastore_reference(
            tenant,
            state.api_name(),
            reference,
        ))
        .await?;
    Ok(item
        .map(|item| Reference::from_item(&item))
        .filter(|stored| stored.incarnation.as_ref() == Some(&state.incarnation)))
}

fn unknown_reference(reference: &str) -> DatastoreError {
    DatastoreError::NotFound(format!("reference {reference:?} is unknown or stale"))
}

/// Makes the snapshot a staging reference names live, atomically, and opens a new, empty
/// staging table if that snapshot was staging's. Going live again with the reference that
/// is live is harmless; a snapshot older than the last one that went live, a retired or an
/// unknown reference is refused.
pub async fn go_live(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &str,
    reference: &str,
    now_millis: i64,
) -> Result<(), DatastoreError> {
    if !could_be_reference(reference) {
        return Err(unknown_reference(reference));
    }
    let now = now_millis / 1000;
    optimistic(POINTER_SWITCH, || async move {
        let state = require(table, tenant, api_name).await?;
        let snapshot = load_reference(table, tenant, &state, reference)
            .await?
            .ok_or_else(|| unknown_reference(reference))?;
        let (version, seq) = (snapshot.version.as_str(), snapshot.seq);
        match snapshot.state {
            Some(ReferenceState::Live) if version == state.live_version => {
                // A retry after a go-live whose clean-up failed: finish the clean-up.
                retire_stale_snapshots(table, tenant, &state, seq, now).await;
                return Ok(Attempt::Done(()));
            }
            Some(ReferenceState::Sealed) if seq > state.golive_seq => {}
            _ => return Err(unknown_reference(reference)),
        }
        let mut pointers = Update::default()
            .set(attribute::LIVE_VERSION, version)
            .set(attribute::LIVE_REFERENCE, reference)
            .set(attribute::GOLIVE_SEQ, seq)
            .set(attribute::LAST_MODIFIED, now_millis);
        if version == state.staging_version {
            pointers = state.open_staging(pointers, &new_version());
        }
        let actions = vec![
            state.switch(tenant, pointers),
            TransactAction::Update {
                key: snapshot.key.clone(),
                update: ReferenceState::Live.set(),
                condition: ReferenceState::Sealed.holds(),
            },
            retire_reference(tenant, api_name, &state.live_reference, Condition::Exists),
            sweep_entry(tenant, api_name, &state.live_version, now),
        ];
        let Attempt::Done(()) = attempt_of(table.transact(actions).await)? else {
            return Ok(Attempt::Contended);
        };
        retire_stale_snapshots(table, tenant, &state, seq, now).await;
        Ok(Attempt::Done(()))
    })
    .await
}

/// Retires sealed snapshots older than `newest_seq` (a newer one exists, so they can never
/// go live) and queues their tables for the sweep; forgets retired references. Each step is
/// its own conditional transaction, so a go-live racing with it either wins or is refused.
/// Best effort after the switch that made them stale: a failure is logged, and the next
/// reference or go-live finishes the job.
async fn retire_stale_snapshots(
    table: &dyn ItemTable,
    tenant: &TenantId,
    state: &DatastoreState,
    newest_seq: i64,
    now: i64,
) {
    let api_name = state.api_name();
    let outcome: Result<(), StorageError> = async {
        for stored in all_references(table, tenant, api_name).await? {
            match stored.state {
                Some(ReferenceState::Retired) => {
                    // Unknown and retired references answer alike (404), so the record can go.
                    table
                        .delete(&stored.key, ReferenceState::Retired.holds())
                        .await
                        .map(drop)
                        .or_else(ignore_lost_race)?;
                }
                Some(ReferenceState::Sealed) if stored.seq < newest_seq => {
                    let actions = vec![
                        retire_reference(
                            tenant,
                            api_name,
                            stored.id(),
                            ReferenceState::Sealed.holds(),
                        ),
                        sweep_entry(tenant, api_name, &stored.version, now),
                    ];
                    table.transact(actions).await.or_else(ignore_lost_race)?;
                }
                _ => {}
            }
        }
        Ok(())
    }
    .await;
    if let Err(error) = outcome {
        tracing::warn!(%error, "retiring stale snapshots failed; the next switch retries");
    }
}

fn ignore_lost_race(error: StorageError) -> Result<(), StorageError> {
    if lost_race(&error) {
        Ok(())
    } else {
        Err(error)
    }
}

/// Empties the table a reference names (the live table or the sealed staging table) by
/// pointing it at a new, empty version.
pub async fn clear(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &str,
    reference: &str,
    now_millis: i64,
) -> Result<(), DatastoreError> {
    let now = now_millis / 1000;
    optimistic(POINTER_SWITCH, || async move {
        let state = require(table, tenant, api_name).await?;
        let version = new_version();
        let actions = if reference == state.live_reference {
            let fresh = new_reference();
            let live = Snapshot {
                reference: &fresh,
                version: &version,
                seq: state.next_seq,
                state: ReferenceState::Live,
            };
            vec![
                state.switch(
                    tenant,
                    Update::default()
                        .set(attribute::LIVE_VERSION, version.as_str())
                        .set(attribute::LIVE_REFERENCE, fresh.as_str())
                        .set(attribute::NEXT_SEQ, state.next_seq + 1)
                        .set(attribute::LAST_MODIFIED, now_millis),
                ),
                TransactAction::Put {
                    item: live.to_item(tenant, &state),
                    condition: Condition::NotExists,
                },
                retire_reference(tenant, api_name, reference, Condition::Exists),
                sweep_entry(tenant, api_name, &state.live_version, now),
            ]
        } else if state.staging_reference.as_deref() == Some(reference) {
            vec![
                state.switch(tenant, state.open_staging(Update::default(), &version)),
                retire_reference(tenant, api_name, reference, Condition::Exists),
                sweep_entry(tenant, api_name, &state.staging_version, now),
            ]
        } else {
            return Err(unknown_reference(reference));
        };
        attempt_of(table.transact(actions).await)
    })
    .await
}
