//! One importer per cell: a lease item that expires by itself, so a crashed importer's cell
//! is taken up again once [`LEASE_SECONDS`] have passed.

use crate::clock::Clock;
use crate::domain::TenantId;
use crate::storage::{Condition, Item, ItemTable, Key, Query, StorageError, Update, keys};

/// How long a lease lasts without renewal. It is renewed after every chunk, so it must
/// outlast the slowest chunk (moto, whose transactions copy the whole table, took over
/// 120 s for 100 rows under load; DynamoDB takes a second or two), and it is how long a
/// crashed importer's cell waits before another run resumes it.
pub const LEASE_SECONDS: i64 = 300;

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("the cell's import lease was taken over; the new holder continues")]
    Lost,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A held lease on one cell (the import run holds it while it works on the cell).
pub struct Lease<'a> {
    table: &'a dyn ItemTable,
    clock: &'a dyn Clock,
    key: Key,
    holder: String,
}

impl<'a> Lease<'a> {
    /// Takes the cell's lease; `None` while another importer holds it.
    pub async fn acquire(
        table: &'a dyn ItemTable,
        clock: &'a dyn Clock,
        tenant: &TenantId,
        cell: &str,
    ) -> Result<Option<Lease<'a>>, StorageError> {
        let key = keys::aixon_lease(tenant, cell);
        let holder = crate::tenancy::new_id("imp");
        let item = Item::new(key.pk.clone(), key.sk.clone())
            .with("holder", holder.as_str())
            .expiring_at(clock.now_seconds() + LEASE_SECONDS);
        match table.put(item, Condition::NotExists).await {
            Ok(()) => Ok(Some(Lease {
                table,
                clock,
                key,
                holder,
            })),
            Err(StorageError::ConditionFailed { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Extends the lease by [`LEASE_SECONDS`] from now, unless it expired and another
    /// importer took it meanwhile.
    pub async fn renew(&self) -> Result<(), LeaseError> {
        let renewed = self
            .table
            .update(
                &self.key,
                Update::default()
                    .set("holder", self.holder.as_str())
                    .expiring_at(self.clock.now_seconds() + LEASE_SECONDS),
                Condition::equals("holder", self.holder.as_str()),
            )
            .await;
        match renewed {
            Ok(_) => Ok(()),
            Err(StorageError::ConditionFailed { .. }) => Err(LeaseError::Lost),
            Err(other) => Err(other.into()),
        }
    }

    /// Gives the lease up (if it is still ours); a failure only logs, as the lease expires.
    pub async fn release(self) {
        let released = self
            .table
            .delete(&self.key, Condition::equals("holder", self.holder.as_str()))
            .await;
        if let Err(error) = released
            && !matches!(error, StorageError::ConditionFailed { .. })
        {
            tracing::warn!(%error, "could not release an import lease; it expires by itself");
        }
    }
}

/// Drops every import lease in the table; how many there were. Only for a store one process
/// owns (the embedded store, which redb locks to one process): there, a lease found at
/// start-up belongs to a process that died mid-import, and waiting [`LEASE_SECONDS`] for it
/// would only delay the resumption.
pub async fn break_leases_of_dead_process(table: &dyn ItemTable) -> Result<usize, StorageError> {
    let mut broken = 0;
    for tenant in crate::tenancy::list_tenants(table).await? {
        let Ok(tenant) = TenantId::parse(&tenant.tenant) else {
            continue;
        };
        let leases = crate::storage::read_all(
            table,
            Query::partition(keys::aixon_cells_pk(&tenant)).prefix("LEASE#"),
        )
        .await?;
        for lease in leases {
            table
                .delete(&Key::new(lease.pk, lease.sk), Condition::Always)
                .await?;
            broken += 1;
        }
    }
    Ok(broken)
}
