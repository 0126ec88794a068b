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
    DatastoreError, DatastoreState, POINTER_SWITCH, Reference, ReferenceId, ReferenceState,
    Snapshot, Target, VersionId, all_references, attempt_of, attribute, lost_race, require,
};
use crate::domain::TenantId;
use crate::mxo::datastores::model::ApiName;
use crate::retry::{Attempt, optimistic};
use crate::storage::{Condition, ItemTable, StorageError, TransactAction, Update, keys};

fn retire_reference(
    tenant: &TenantId,
    api_name: &ApiName,
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
    api_name: &ApiName,
    target: Target,
    now_millis: i64,
) -> Result<ReferenceId, DatastoreError> {
    optimistic(POINTER_SWITCH, || async move {
        let state = require(table, tenant, api_name).await?;
        if target == Target::Live {
            return Ok(Attempt::Done(state.live_reference));
        }
        if let Some(existing) = state.staging_reference {
            return Ok(Attempt::Done(existing));
        }
        let reference = ReferenceId::fresh();
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
    reference: &ReferenceId,
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

/// The answer to a reference that is unknown, retired or not a reference id at all.
pub fn unknown_reference(reference: &str) -> DatastoreError {
    DatastoreError::NotFound(format!("reference {reference:?} is unknown or stale"))
}

/// Makes the snapshot a staging reference names live, atomically, and opens a new, empty
/// staging table if that snapshot was staging's. Going live again with the reference that
/// is live is harmless; a snapshot older than the last one that went live, a retired or an
/// unknown reference is refused.
pub async fn go_live(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &ApiName,
    reference: &ReferenceId,
    now_millis: i64,
) -> Result<(), DatastoreError> {
    let now = now_millis / 1000;
    optimistic(POINTER_SWITCH, || async move {
        let state = require(table, tenant, api_name).await?;
        let snapshot = load_reference(table, tenant, &state, reference)
            .await?
            .ok_or_else(|| unknown_reference(reference))?;
        // A reference item that names no version cannot go live: it answers as unknown.
        let Some(version) = snapshot.version.as_ref() else {
            return Err(unknown_reference(reference));
        };
        let seq = snapshot.seq;
        match snapshot.state {
            Some(ReferenceState::Live) if *version == state.live_version => {
                // A retry after a go-live whose clean-up failed: finish the clean-up.
                retire_stale_snapshots(table, tenant, &state, seq, now).await;
                return Ok(Attempt::Done(()));
            }
            Some(ReferenceState::Sealed) if seq > state.golive_seq => {}
            _ => return Err(unknown_reference(reference)),
        }
        let mut pointers = Update::default()
            .set(attribute::LIVE_VERSION, version.as_str())
            .set(attribute::LIVE_REFERENCE, reference.as_str())
            .set(attribute::GOLIVE_SEQ, seq)
            .set(attribute::LAST_MODIFIED, now_millis);
        if *version == state.staging_version {
            pointers = state.open_staging(pointers, &VersionId::fresh());
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
                    let mut actions = vec![retire_reference(
                        tenant,
                        api_name,
                        stored.id(),
                        ReferenceState::Sealed.holds(),
                    )];
                    if let Some(version) = &stored.version {
                        actions.push(sweep_entry(tenant, api_name, version, now));
                    }
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
    api_name: &ApiName,
    reference: &ReferenceId,
    now_millis: i64,
) -> Result<(), DatastoreError> {
    let now = now_millis / 1000;
    optimistic(POINTER_SWITCH, || async move {
        let state = require(table, tenant, api_name).await?;
        let version = VersionId::fresh();
        let actions = if *reference == state.live_reference {
            let fresh = ReferenceId::fresh();
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
        } else if state.staging_reference.as_ref() == Some(reference) {
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

#[cfg(test)]
mod tests {
    use super::super::test_support::{NOW_MILLIS, term, terms, terms_datastore};
    use super::*;
    use crate::mxo::datastores::store::{insert, read, read_live};
    use crate::retry::Exhausted;

    /// The stored state of a reference of `terms`, or `None` when it is gone.
    async fn state_of(
        table: &dyn ItemTable,
        tenant: &TenantId,
        reference: &ReferenceId,
    ) -> Option<ReferenceState> {
        let datastore = require(table, tenant, &terms()).await.expect("a datastore");
        load_reference(table, tenant, &datastore, reference)
            .await
            .expect("read")
            .and_then(|stored| stored.state)
    }

    #[tokio::test]
    async fn a_staging_reference_seals_staging_and_asking_again_gives_the_same_reference() {
        let (_dir, app, tenant) = terms_datastore().await;
        let table = app.table.as_ref();
        let sealed = reference(table, &tenant, &terms(), Target::Staging, NOW_MILLIS)
            .await
            .expect("sealed");
        assert_eq!(
            state_of(table, &tenant, &sealed).await,
            Some(ReferenceState::Sealed)
        );
        let again = reference(table, &tenant, &terms(), Target::Staging, NOW_MILLIS)
            .await
            .expect("sealed");
        assert_eq!(again, sealed);
        let live = reference(table, &tenant, &terms(), Target::Live, NOW_MILLIS)
            .await
            .expect("live");
        assert_eq!(
            state_of(table, &tenant, &live).await,
            Some(ReferenceState::Live)
        );
    }

    #[tokio::test]
    async fn go_live_of_a_sealed_reference_makes_it_live_and_retires_the_old_live_version() {
        let (_dir, app, tenant) = terms_datastore().await;
        let table = app.table.as_ref();
        insert(table, &tenant, &terms(), Target::Staging, &[term("C-1", 7)])
            .await
            .expect("inserted");
        let before = require(table, &tenant, &terms())
            .await
            .expect("a datastore");
        let sealed = reference(table, &tenant, &terms(), Target::Staging, NOW_MILLIS)
            .await
            .expect("sealed");
        go_live(table, &tenant, &terms(), &sealed, NOW_MILLIS)
            .await
            .expect("live");
        let after = require(table, &tenant, &terms())
            .await
            .expect("a datastore");
        assert_eq!(after.live_version, before.staging_version);
        assert_eq!(after.live_reference, sealed);
        assert_ne!(after.staging_version, before.staging_version);
        assert_eq!(after.staging_reference, None);
        assert_eq!(
            state_of(table, &tenant, &sealed).await,
            Some(ReferenceState::Live)
        );
        assert_eq!(
            state_of(table, &tenant, &before.live_reference).await,
            None,
            "the old live reference is retired, then forgotten"
        );
        let live = read_live(table, &tenant, &terms(), "C-1", None)
            .await
            .expect("read");
        assert_eq!(live, vec![term("C-1", 7)]);
        let staged = read(table, &tenant, &terms(), Target::Staging, "C-1", None)
            .await
            .expect("read");
        assert!(staged.is_empty(), "staging is a new, empty table");
    }

    #[tokio::test]
    async fn going_live_again_with_the_live_reference_is_harmless_and_a_retired_one_is_refused() {
        let (_dir, app, tenant) = terms_datastore().await;
        let table = app.table.as_ref();
        let old_live = reference(table, &tenant, &terms(), Target::Live, NOW_MILLIS)
            .await
            .expect("live");
        let sealed = reference(table, &tenant, &terms(), Target::Staging, NOW_MILLIS)
            .await
            .expect("sealed");
        go_live(table, &tenant, &terms(), &sealed, NOW_MILLIS)
            .await
            .expect("live");
        let switched = require(table, &tenant, &terms())
            .await
            .expect("a datastore");
        go_live(table, &tenant, &terms(), &sealed, NOW_MILLIS)
            .await
            .expect("live again");
        let unchanged = require(table, &tenant, &terms())
            .await
            .expect("a datastore");
        assert_eq!(unchanged, switched, "a repeated go-live changes nothing");
        let refused = go_live(table, &tenant, &terms(), &old_live, NOW_MILLIS).await;
        assert!(matches!(refused, Err(DatastoreError::NotFound(_))));
        // What is not a reference id never reaches the store: the handler refuses it alike.
        assert_eq!(ReferenceId::parse("not-a-reference"), None);
    }

    #[tokio::test]
    async fn a_newer_snapshot_retires_older_sealed_ones_so_they_can_never_go_live() {
        let (_dir, app, tenant) = terms_datastore().await;
        let table = app.table.as_ref();
        let older = reference(table, &tenant, &terms(), Target::Staging, NOW_MILLIS)
            .await
            .expect("sealed");
        insert(table, &tenant, &terms(), Target::Staging, &[term("C-1", 1)])
            .await
            .expect("inserted");
        let newer = reference(table, &tenant, &terms(), Target::Staging, NOW_MILLIS)
            .await
            .expect("sealed");
        assert_ne!(newer, older);
        assert_eq!(
            state_of(table, &tenant, &older).await,
            Some(ReferenceState::Retired)
        );
        let refused = go_live(table, &tenant, &terms(), &older, NOW_MILLIS).await;
        assert!(matches!(refused, Err(DatastoreError::NotFound(_))));
        go_live(table, &tenant, &terms(), &newer, NOW_MILLIS)
            .await
            .expect("live");
    }

    #[tokio::test]
    async fn clear_of_the_live_reference_empties_live_under_a_new_reference() {
        let (_dir, app, tenant) = terms_datastore().await;
        let table = app.table.as_ref();
        insert(table, &tenant, &terms(), Target::Live, &[term("C-1", 1)])
            .await
            .expect("inserted");
        let before = require(table, &tenant, &terms())
            .await
            .expect("a datastore");
        clear(table, &tenant, &terms(), &before.live_reference, NOW_MILLIS)
            .await
            .expect("cleared");
        let after = require(table, &tenant, &terms())
            .await
            .expect("a datastore");
        assert_ne!(after.live_version, before.live_version);
        assert_ne!(after.live_reference, before.live_reference);
        assert_eq!(
            state_of(table, &tenant, &after.live_reference).await,
            Some(ReferenceState::Live)
        );
        assert_eq!(
            state_of(table, &tenant, &before.live_reference).await,
            Some(ReferenceState::Retired)
        );
        let live = read_live(table, &tenant, &terms(), "C-1", None)
            .await
            .expect("read");
        assert!(live.is_empty(), "{live:?}");
    }

    #[tokio::test]
    async fn clear_of_the_sealed_staging_reference_empties_staging_and_unknown_ones_are_refused() {
        let (_dir, app, tenant) = terms_datastore().await;
        let table = app.table.as_ref();
        insert(table, &tenant, &terms(), Target::Staging, &[term("C-1", 1)])
            .await
            .expect("inserted");
        let sealed = reference(table, &tenant, &terms(), Target::Staging, NOW_MILLIS)
            .await
            .expect("sealed");
        clear(table, &tenant, &terms(), &sealed, NOW_MILLIS)
            .await
            .expect("cleared");
        let after = require(table, &tenant, &terms())
            .await
            .expect("a datastore");
        assert_eq!(after.staging_reference, None);
        assert_eq!(
            state_of(table, &tenant, &sealed).await,
            Some(ReferenceState::Retired)
        );
        let staged = read(table, &tenant, &terms(), Target::Staging, "C-1", None)
            .await
            .expect("read");
        assert!(staged.is_empty(), "{staged:?}");
        let unknown = ReferenceId::parse("ds00").expect("a reference id");
        let unknown = clear(table, &tenant, &terms(), &unknown, NOW_MILLIS).await;
        assert!(matches!(unknown, Err(DatastoreError::NotFound(_))));
    }

    #[test]
    fn a_switch_that_keeps_losing_races_answers_busy() {
        let exhausted = Exhausted {
            operation: POINTER_SWITCH,
        };
        assert!(matches!(
            DatastoreError::from(exhausted),
            DatastoreError::Busy(_)
        ));
    }
}
