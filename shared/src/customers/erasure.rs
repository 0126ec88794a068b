//! Erasure and suppression: removing a customer on request, and refusing it afterwards.
//!
//! An erasure deletes the profile and the listing entry, turns every identifier's index
//! entry (and one for the tid) into a tombstone — a keyed hash and a date, no personal data
//! — which refuses later ingestion of that customer, because every write of an index entry
//! requires it absent or its own; and it records each hash in the tenant's suppression
//! catalogue, which only the admin reads. Lifting a suppression removes both.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::CustomerStore;
use super::Tid;
use super::identity::{Identifier, SUPPRESSED, find, tid_hash};
use super::{CustomerError, CustomerRef, listing};
use crate::domain::TenantId;
use crate::retry::{Attempt, optimistic};
use crate::storage::{
    Condition, Item, ItemTable, Key, Query, StorageError, TransactAction, Update, batch, keys,
};

/// Activities removed within an erasure request; the rest are removed in the background.
pub const INLINE_ERASURE_ROWS: usize = 2_000;

/// What an erasure removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Erased {
    pub tids: Vec<Tid>,
    pub identifiers: Vec<Identifier>,
    /// False while the rest of a long activity history is being removed in the background.
    pub complete: bool,
}

fn erasure_work(tenant: &TenantId, tid: &Tid) -> Key {
    keys::sweep_entry(0, tenant, "", &format!("erase-{tid}"))
}

/// Erases a customer: in one transaction, conditional on the profile's revision, the
/// suppressions, the profile and identifier entries, an erasure status and the background
/// work item; then as much activity as fits in the request (the sweep removes the rest).
/// `None` when no such customer exists.
pub async fn erase(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    named: &CustomerRef,
    now_millis: i64,
) -> Result<Option<Erased>, CustomerError> {
    erase_noting(store, tenant, named, now_millis, &BTreeMap::new()).await
}

/// [`erase`], recording on the erasure status, in the same transaction, how many rows each
/// other surface removed before it.
pub async fn erase_noting(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    named: &CustomerRef,
    now_millis: i64,
    surface_rows: &BTreeMap<&'static str, usize>,
) -> Result<Option<Erased>, CustomerError> {
    let marked = optimistic::<_, CustomerError, _>("customer-erasure", || async move {
        let Some(customer) = find(store, tenant, named).await? else {
            return Ok(Attempt::Done(None));
        };
        let rev = customer.rev();
        let mut actions = vec![TransactAction::Delete {
            key: keys::customer_profile(tenant, &customer.tid),
            condition: Condition::equals("rev", rev),
        }];
        if let Some(ordinal) = customer.profile.i64("ordinal") {
            actions.push(TransactAction::Delete {
                key: keys::customer_list_entry(tenant, ordinal),
                condition: Condition::Always,
            });
            actions.push(listing::holes_action(
                tenant,
                ordinal.div_euclid(keys::LIST_BLOCK),
                1,
            ));
        }
        let status_hash = tid_hash(store, &customer.tid);
        let mut hashes = vec![status_hash.clone()];
        hashes.extend(
            customer
                .identifiers
                .iter()
                .map(|identifier| identifier.hash(store)),
        );
        for hash in &hashes {
            let entry = keys::customer_identifier(tenant, hash);
            actions.push(TransactAction::Put {
                item: Item::new(entry.pk, entry.sk).with(SUPPRESSED, now_millis),
                condition: Condition::Always,
            });
            let listed = keys::suppression(tenant, hash);
            actions.push(TransactAction::Put {
                item: Item::new(listed.pk, listed.sk).with("since", now_millis),
                condition: Condition::Always,
            });
        }
        let status = keys::erasure(tenant, &status_hash);
        actions.push(TransactAction::Put {
            item: Item::new(status.pk, status.sk)
                .with("status", "removing-activity")
                .with("started", now_millis)
                .with(SURFACE_ROWS, json!(surface_rows)),
            condition: Condition::Always,
        });
        let work = erasure_work(tenant, &customer.tid);
        actions.push(TransactAction::Put {
            item: Item::new(work.pk, work.sk)
                .with("kind", "erasure")
                .with("tenant", tenant.as_str())
                .with("tid", customer.tid.as_str())
                .with("status_key", status_hash.as_str()),
            condition: Condition::Always,
        });
        // Changed or erased meanwhile: look again (a second erasure then finds nothing).
        Ok(Attempt::of_write(store.table.transact(actions).await)?
            .map(|()| Some((customer, status_hash))))
    })
    .await?;
    let Some((customer, status_hash)) = marked else {
        return Ok(None);
    };
    let (complete, _) =
        remove_customer_partition(store.table, tenant, &customer.tid, INLINE_ERASURE_ROWS).await?;
    if complete {
        finish_erasure(store.table, tenant, &status_hash, now_millis).await?;
        store
            .table
            .delete(&erasure_work(tenant, &customer.tid), Condition::Always)
            .await?;
    }
    Ok(Some(Erased {
        tids: vec![customer.tid],
        identifiers: customer.identifiers,
        complete,
    }))
}

/// Deletes what is left in a customer's partition, up to about `budget` items; returns
/// whether it is empty now and how many items went.
pub async fn remove_customer_partition(
    table: &dyn ItemTable,
    tenant: &TenantId,
    tid: &Tid,
    budget: usize,
) -> Result<(bool, usize), StorageError> {
    let mut removed = 0;
    loop {
        let page = table
            .query(Query::partition(keys::customer_pk(tenant, tid)).limit(1000))
            .await?;
        if page.items.is_empty() {
            return Ok((true, removed));
        }
        if removed >= budget {
            return Ok((false, removed));
        }
        removed += page.items.len();
        // A history item names the day whose index lists the customer: that entry goes too.
        let mut days = std::collections::BTreeSet::new();
        for item in &page.items {
            if item.sk.starts_with(keys::HISTORY_PREFIX)
                && let Some(at) = item.i64("at")
            {
                days.insert(crate::clock::iso8601_millis(at)[..10].to_string());
            }
        }
        let mut doomed = page.items;
        doomed.extend(days.iter().map(|day| {
            let entry = keys::attribute_changes(tenant, day, tid);
            Item::new(entry.pk, entry.sk)
        }));
        batch::delete_all(table, &doomed).await?;
    }
}

async fn finish_erasure(
    table: &dyn ItemTable,
    tenant: &TenantId,
    status_key: &str,
    now_millis: i64,
) -> Result<(), StorageError> {
    table
        .update(
            &keys::erasure(tenant, status_key),
            Update::default()
                .set("status", "done")
                .set("finished", now_millis),
            Condition::Always,
        )
        .await
        .map(drop)
}

/// Continues a background erasure (run by the sweep): whether it finished, and how many
/// items it removed.
pub async fn continue_erasure(
    table: &dyn ItemTable,
    entry: &Item,
    budget: usize,
    now_millis: i64,
) -> Result<(bool, usize), StorageError> {
    let (Some(tenant), Some(tid), Some(status_key)) = (
        entry
            .str("tenant")
            .and_then(|raw| TenantId::parse(raw).ok()),
        entry.str("tid").and_then(Tid::parse),
        entry.str("status_key"),
    ) else {
        return Ok((true, 0));
    };
    let (complete, removed) = remove_customer_partition(table, &tenant, &tid, budget).await?;
    if complete {
        table.scrub_free_space().await?;
        finish_erasure(table, &tenant, status_key, now_millis).await?;
    }
    Ok((complete, removed))
}

/// The status of an erasure, for the admin: `removing-activity` or `done`.
pub async fn erasure_status(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    tid: &Tid,
) -> Result<Option<Value>, StorageError> {
    let item = store
        .table
        .get(&keys::erasure(tenant, &tid_hash(store, tid)))
        .await?;
    Ok(item.map(|item| {
        let done = item.str("status") == Some("done");
        let mut surfaces = json!({"customers": {"complete": done}});
        if let Some(Value::Object(rows)) = item.get(SURFACE_ROWS) {
            for (surface, count) in rows {
                surfaces[surface] = json!({"rows": count, "complete": true});
            }
        }
        json!({"status": item.str("status"), "started": item.i64("started"), "finished": item.i64("finished"), "surfaces": surfaces})
    }))
}

/// Attribute of an erasure status: rows removed per surface outside the customer store.
const SURFACE_ROWS: &str = "surface_rows";

/// Records on a customer's erasure status how many rows each other surface removed (they
/// are removed within the erasure request, so each of them is complete).
pub async fn record_surface_rows(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    tid: &Tid,
    rows: &BTreeMap<&'static str, usize>,
) -> Result<(), StorageError> {
    store
        .table
        .update(
            &keys::erasure(tenant, &tid_hash(store, tid)),
            Update::default().set(SURFACE_ROWS, json!(rows)),
            Condition::Always,
        )
        .await
        .map(drop)
}

/// A tenant's suppressions: each a keyed hash (of a tid or an identifier) and its date.
pub async fn suppressions(
    store: CustomerStore<'_>,
    tenant: &TenantId,
) -> Result<Vec<Value>, StorageError> {
    let items = crate::storage::read_all(
        store.table,
        Query::partition(keys::suppressions_pk(tenant)).limit(1000),
    )
    .await?;
    Ok(items
        .iter()
        .map(|item| json!({"hash": item.sk, "since": item.i64("since")}))
        .collect())
}

/// Lifts the suppression of a tid or an identifier; true if there was one. Refused while
/// the erasure of that tid is still removing activity (a customer re-created with it would
/// be emptied by the sweep).
pub async fn lift_suppression(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    named: &CustomerRef,
) -> Result<bool, CustomerError> {
    if let Some(tid) = &named.tid
        && erasure_status(store, tenant, tid)
            .await?
            .is_some_and(|status| status["status"] == "removing-activity")
    {
        return Err(CustomerError::Conflict(format!(
            "the erasure of tid {tid} is still removing activity; lift it when it is done"
        )));
    }
    let mut hashes: Vec<String> = named.tid.iter().map(|tid| tid_hash(store, tid)).collect();
    hashes.extend(
        named
            .identifiers
            .iter()
            .map(|identifier| identifier.hash(store)),
    );
    let mut lifted = false;
    for hash in hashes {
        let entry = keys::customer_identifier(tenant, &hash);
        // Only a tombstone goes: an entry that names a customer again stays.
        match store
            .table
            .delete(&entry, Condition::HasAttribute(SUPPRESSED.into()))
            .await
        {
            Ok(removed) => lifted |= removed.is_some(),
            Err(StorageError::ConditionFailed { .. }) => {}
            Err(other) => return Err(other.into()),
        }
        lifted |= store
            .table
            .delete(&keys::suppression(tenant, &hash), Condition::Always)
            .await?
            .is_some();
    }
    Ok(lifted)
}
