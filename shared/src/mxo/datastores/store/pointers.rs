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
    DatastoreError, DatastoreState, POINTER_ATTEMPTS, Target, all_references, back_off, busy,
    lost_race, new_reference, new_version, require,
};
use crate::domain::TenantId;
use crate::storage::{Condition, Item, ItemTable, Key, StorageError, TransactAction, Update, keys};

pub(super) struct Snapshot<'a> {
    pub(super) reference: &'a str,
    pub(super) version: &'a str,
    pub(super) seq: i64,
    pub(super) state: &'a str,
}

pub(super) fn reference_item(
    tenant: &TenantId,
    state: &DatastoreState,
    snapshot: Snapshot<'_>,
) -> Item {
    let key = keys::datastore_reference(tenant, state.api_name(), snapshot.reference);
    Item::new(key.pk, key.sk)
        .with("version", snapshot.version)
        .with("seq", snapshot.seq)
        .with("state", snapshot.state)
        .with("incarnation", state.incarnation.as_str())
}

fn retire_reference(
    tenant: &TenantId,
    api_name: &str,
    reference: &str,
    from: Condition,
) -> TransactAction {
    TransactAction::Update {
        key: keys::datastore_reference(tenant, api_name, reference),
        update: Update::default().set("state", "retired"),
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
    for _ in 0..POINTER_ATTEMPTS {
        let state = require(table, tenant, api_name).await?;
        if target == Target::Live {
            return Ok(state.live_reference);
        }
        if let Some(existing) = state.staging_reference {
            return Ok(existing);
        }
        let reference = new_reference();
        let sealed = Snapshot {
            reference: &reference,
            version: &state.staging_version,
            seq: state.staging_seq,
            state: "sealed",
        };
        let actions = vec![
            state.switch(
                tenant,
                Update::default().set("staging_reference", reference.as_str()),
            ),
            TransactAction::Put {
                item: reference_item(tenant, &state, sealed),
                condition: Condition::NotExists,
            },
        ];
        match table.transact(actions).await {
            Ok(()) => {
                retire_stale_snapshots(table, tenant, &state, state.staging_seq, now_millis / 1000)
                    .await;
                return Ok(reference);
            }
            Err(error) if lost_race(&error) => back_off().await,
            Err(other) => return Err(other.into()),
        }
    }
    Err(busy())
}

/// A reference as stored, if it belongs to this incarnation of the datastore.
async fn load_reference(
    table: &dyn ItemTable,
    tenant: &TenantId,
    state: &DatastoreState,
    reference: &str,
) -> Result<Option<Item>, StorageError> {
    let item = table
        .get(&keys::datastore_reference(
            tenant,
            state.api_name(),
            reference,
        ))
        .await?;
    Ok(item.filter(|item| item.str("incarnation") == Some(state.incarnation.as_str())))
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
    if !reference.starts_with("ds") || reference.len() > 64 {
        return Err(unknown_reference(reference));
    }
    let now = now_millis / 1000;
    for _ in 0..POINTER_ATTEMPTS {
        let state = require(table, tenant, api_name).await?;
        let item = load_reference(table, tenant, &state, reference)
            .await?
            .ok_or_else(|| unknown_reference(reference))?;
        let version = item.str("version").unwrap_or_default().to_string();
        let seq = item.i64("seq").unwrap_or_default();
        match item.str("state") {
            Some("live") if version == state.live_version => {
                // A retry after a go-live whose clean-up failed: finish the clean-up.
                retire_stale_snapshots(table, tenant, &state, seq, now).await;
                return Ok(());
            }
            Some("sealed") if seq > state.golive_seq => {}
            _ => return Err(unknown_reference(reference)),
        }
        let mut pointers = Update::default()
            .set("live_version", version.as_str())
            .set("live_reference", reference)
            .set("golive_seq", seq)
            .set("last_modified", now_millis);
        if version == state.staging_version {
            pointers = pointers
                .set("staging_version", new_version())
                .set("staging_seq", state.next_seq)
                .set("next_seq", state.next_seq + 1)
                .remove("staging_reference");
        }
        let actions = vec![
            state.switch(tenant, pointers),
            TransactAction::Update {
                key: Key::from(&item),
                update: Update::default().set("state", "live"),
                condition: Condition::equals("state", "sealed"),
            },
            retire_reference(tenant, api_name, &state.live_reference, Condition::Exists),
            sweep_entry(tenant, api_name, &state.live_version, now),
        ];
        match table.transact(actions).await {
            Ok(()) => {
                retire_stale_snapshots(table, tenant, &state, seq, now).await;
                return Ok(());
            }
            Err(error) if lost_race(&error) => back_off().await,
            Err(other) => return Err(other.into()),
        }
    }
    Err(busy())
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
        for item in all_references(table, tenant, api_name).await? {
            let seq = item.i64("seq").unwrap_or_default();
            let reference = item.sk.as_str();
            match item.str("state") {
                Some("retired") => {
                    // Unknown and retired references answer alike (404), so the record can go.
                    table
                        .delete(&Key::from(&item), Condition::equals("state", "retired"))
                        .await
                        .map(drop)
                        .or_else(ignore_lost_race)?;
                }
                Some("sealed") if seq < newest_seq => {
                    let version = item.str("version").unwrap_or_default();
                    let actions = vec![
                        retire_reference(
                            tenant,
                            api_name,
                            reference,
                            Condition::equals("state", "sealed"),
                        ),
                        sweep_entry(tenant, api_name, version, now),
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
    for _ in 0..POINTER_ATTEMPTS {
        let state = require(table, tenant, api_name).await?;
        let version = new_version();
        let actions = if reference == state.live_reference {
            let fresh = new_reference();
            let live = Snapshot {
                reference: &fresh,
                version: &version,
                seq: state.next_seq,
                state: "live",
            };
            vec![
                state.switch(
                    tenant,
                    Update::default()
                        .set("live_version", version.as_str())
                        .set("live_reference", fresh.as_str())
                        .set("next_seq", state.next_seq + 1)
                        .set("last_modified", now_millis),
                ),
                TransactAction::Put {
                    item: reference_item(tenant, &state, live),
                    condition: Condition::NotExists,
                },
                retire_reference(tenant, api_name, reference, Condition::Exists),
                sweep_entry(tenant, api_name, &state.live_version, now),
            ]
        } else if state.staging_reference.as_deref() == Some(reference) {
            vec![
                state.switch(
                    tenant,
                    Update::default()
                        .set("staging_version", version.as_str())
                        .set("staging_seq", state.next_seq)
                        .set("next_seq", state.next_seq + 1)
                        .remove("staging_reference"),
                ),
                retire_reference(tenant, api_name, reference, Condition::Exists),
                sweep_entry(tenant, api_name, &state.staging_version, now),
            ]
        } else {
            return Err(unknown_reference(reference));
        };
        match table.transact(actions).await {
            Ok(()) => return Ok(()),
            Err(error) if lost_race(&error) => back_off().await,
            Err(other) => return Err(other.into()),
        }
    }
    Err(busy())
}
