//! Datastore definitions: creating one (with its empty live and staging tables), listing
//! them, and deleting one with every version it had queued for the sweep.

use super::sweep::sweep_entry_item;
use super::{
    DATASTORE_DELETE, DatastoreError, DatastoreState, Reference, ReferenceId, ReferenceState,
    Snapshot, VersionId, attempt_of, attribute, random_hex, reference_items, require,
};
use crate::domain::{Problem, TenantId};
use crate::mxo::datastores::model::ApiName;
use crate::mxo::datastores::model::Definition;
use crate::retry::{Attempt, optimistic};
use crate::storage::{
    Condition, ItemTable, Query, StorageError, TransactAction, WriteRequest, batch, keys, read_all,
};

/// Creates a datastore with an empty live table and an empty staging table.
pub async fn create(
    table: &dyn ItemTable,
    tenant: &TenantId,
    definition: Definition,
    now_millis: i64,
) -> Result<(), DatastoreError> {
    let api_name = definition.api_name.clone();
    let state = DatastoreState {
        definition,
        created: now_millis,
        last_modified: now_millis,
        incarnation: random_hex(8),
        revision: 1,
        live_version: VersionId::fresh(),
        live_reference: ReferenceId::fresh(),
        staging_version: VersionId::fresh(),
        staging_seq: 2,
        staging_reference: None,
        golive_seq: 1,
        next_seq: 3,
    };
    let live = Snapshot {
        reference: &state.live_reference,
        version: &state.live_version,
        seq: 1,
        state: ReferenceState::Live,
    };
    let created = table
        .transact(vec![
            TransactAction::Put {
                item: state.to_item(tenant),
                condition: Condition::NotExists,
            },
            TransactAction::Put {
                item: live.to_item(tenant, &state),
                condition: Condition::NotExists,
            },
        ])
        .await;
    match created {
        Ok(()) => Ok(()),
        Err(StorageError::TransactionCanceled { .. }) => {
            Err(DatastoreError::Invalid(vec![Problem {
                row: None,
                field: Some("apiName".into()),
                rule: format!(
                    "a datastore with apiName {api_name:?} already exists in this workspace"
                ),
            }]))
        }
        Err(other) => Err(other.into()),
    }
}

/// Every datastore of a tenant.
pub async fn list(
    table: &dyn ItemTable,
    tenant: &TenantId,
) -> Result<Vec<DatastoreState>, StorageError> {
    let items = read_all(
        table,
        Query::partition(keys::datastore_definitions_pk(tenant)).limit(1000),
    )
    .await?;
    Ok(items.iter().filter_map(DatastoreState::from_item).collect())
}

/// Deletes a datastore; every version it had is queued for the sweep.
pub async fn delete(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &ApiName,
    now_millis: i64,
) -> Result<(), DatastoreError> {
    optimistic(DATASTORE_DELETE, || async move {
        let state = match require(table, tenant, api_name).await {
            Ok(state) => state,
            Err(DatastoreError::NotFound(message)) => {
                // A delete that failed after removing the definition left its references:
                // the client's retry finishes it (and still hears that nothing is there).
                let leftovers = reference_items(table, tenant, api_name).await?;
                batch::delete_all(table, &leftovers).await?;
                return Err(DatastoreError::NotFound(message));
            }
            Err(other) => return Err(other),
        };
        let references = reference_items(table, tenant, api_name).await?;
        let mut versions = vec![state.live_version.clone(), state.staging_version.clone()];
        versions.extend(
            references
                .iter()
                .filter_map(|item| Reference::from_item(item).version),
        );
        versions.sort();
        versions.dedup();
        // Queued first and due only after the grace period; the sweep skips a version its
        // datastore still names, so a failed delete below loses nothing.
        let entries = versions
            .iter()
            .map(|version| {
                WriteRequest::Put(sweep_entry_item(
                    tenant,
                    api_name,
                    version,
                    now_millis / 1000,
                ))
            })
            .collect();
        batch::write_all(table, entries).await?;
        // The revision pins every pointer and the seal: nothing can appear that was not queued.
        let deleted = table
            .delete(
                &keys::datastore_definition(tenant, api_name),
                Condition::equals(attribute::REVISION, state.revision),
            )
            .await;
        let Attempt::Done(()) = attempt_of(deleted.map(drop))? else {
            return Ok(Attempt::Contended);
        };
        batch::delete_all(table, &references).await?;
        Ok(Attempt::Done(()))
    })
    .await
}
