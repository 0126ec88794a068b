//! A data subject's requests across every surface: erasure (GDPR article 17) and access
//! (article 15).
//!
//! The customer store knows a customer's tids and identifiers; every other surface keeps
//! rows keyed by one of them: AIXON cells and Monetate schemas by the customer key, MXO
//! datastores by a primary key equal to any identifier's value or a tid. [`locate`] finds
//! them once, so the erasure removes exactly what the export shows. [`route`] serves the
//! export, to any vendor's credential of the tenant.

pub mod route;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::aixon::store as aixon_store;
use crate::customers::{
    self, CUSTOMER_KEY, CustomerError, CustomerRef, CustomerStore, Identifier, Tid,
};
use crate::domain::TenantId;
use crate::monetate::records as monetate_rows;
use crate::mxo::datastores::store::{KeyedRow, rows_keyed_by};
use crate::storage::{Item, Key, StorageError, batch, keys};

/// What an erasure removed, per surface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Erasure {
    pub tids: Vec<Tid>,
    pub identifiers: Vec<Identifier>,
    /// True once every surface is emptied of the customer; false while the customer store
    /// still removes a long activity history in the background.
    pub complete: bool,
    pub surfaces: BTreeMap<&'static str, SurfaceErasure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SurfaceErasure {
    /// Rows removed (absent for the customer store, whose profile, identifiers, activity and
    /// attribute history go together).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<usize>,
    pub complete: bool,
}

/// A customer's rows on the surfaces outside the customer store.
struct Located {
    /// (cell id, row item) per AIXON cell holding the customer.
    aixon: Vec<(String, Item)>,
    /// (schema name, row item) per Monetate row of the customer.
    monetate: Vec<(String, Item)>,
    datastores: Vec<KeyedRow>,
}

/// The customer keys among a customer's identifiers: what AIXON's customuid and Monetate's
/// identifier are.
fn customer_keys(identifiers: &[Identifier]) -> impl Iterator<Item = &str> {
    identifiers
        .iter()
        .filter(|identifier| identifier.api_name == CUSTOMER_KEY)
        .map(|identifier| identifier.value.as_str())
}

/// Finds the customer's rows on every surface outside the customer store.
async fn locate(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    tids: &[Tid],
    identifiers: &[Identifier],
) -> Result<Located, StorageError> {
    let cells = aixon_store::list_cells(store.table, tenant).await?;
    // Every cell's row of every customer key, in one batched read.
    let mut wanted: Vec<(String, Key)> = Vec::new();
    let mut monetate = Vec::new();
    for customuid in customer_keys(identifiers) {
        let hash = aixon_store::row_hash(store.hash_key, customuid);
        wanted.extend(
            cells
                .iter()
                .map(|cell| (cell.id.clone(), keys::aixon_row(tenant, &cell.id, &hash))),
        );
        monetate.extend(monetate_rows::customer_rows(store, tenant, customuid).await?);
    }
    let mut found = batch::get_many(store.table, wanted.iter().map(|(_, key)| key.clone())).await?;
    let aixon = wanted
        .into_iter()
        .filter_map(|(cell, key)| Some((cell, found.remove(&key)?)))
        .collect();
    let mut primary_keys: Vec<String> = identifiers
        .iter()
        .map(|identifier| identifier.value.clone())
        .chain(tids.iter().map(Tid::to_string))
        .collect();
    primary_keys.sort();
    primary_keys.dedup();
    Ok(Located {
        aixon,
        monetate,
        datastores: rows_keyed_by(store.table, tenant, &primary_keys).await?,
    })
}

/// Deletes the customer's rows on every surface outside the customer store; how many went,
/// per surface.
async fn remove_surface_rows(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    tids: &[Tid],
    identifiers: &[Identifier],
) -> Result<BTreeMap<&'static str, usize>, StorageError> {
    let located = locate(store, tenant, tids, identifiers).await?;
    let rows = BTreeMap::from([
        ("aixon", located.aixon.len()),
        ("monetate", located.monetate.len()),
        ("datastores", located.datastores.len()),
    ]);
    let doomed: Vec<Item> = located
        .aixon
        .into_iter()
        .map(|(_, item)| item)
        .chain(located.monetate.into_iter().map(|(_, item)| item))
        .chain(located.datastores.into_iter().map(|row| row.item))
        .collect();
    batch::delete_all(store.table, &doomed).await?;
    Ok(rows)
}

/// Erases a customer from every surface, all before the answer:
/// 1. every AIXON row, Monetate row and datastore row of it — first, so that a retry after a
///    failure part-way still finds the customer and what is left of its rows;
/// 2. the customer store's erasure in one transaction (profile, identifiers turned into
///    tombstones that refuse later ingestion on every surface, the erasure status with the
///    rows of step 1);
/// 3. the rows a surface wrote between steps 1 and 2, or of an identifier linked meanwhile,
///    now that the tombstones refuse any more.
///
/// Only a long activity history may outlive the answer, removed in the background, and
/// nothing reads it once the profile is gone. Once complete, the store's free space is
/// scrubbed (the sweep does it for a background erasure). `None` when no surface holds
/// anything of the customer. An erasure that removed something writes its metric lines
/// (`Erasures`, and `ErasedRows` per surface: [`crate::metrics::erasure`]).
pub async fn erase(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    named: &CustomerRef,
    now_millis: i64,
) -> Result<Option<Erasure>, CustomerError> {
    let erasure = erase_everywhere(store, tenant, named, now_millis).await?;
    if let Some(erasure) = &erasure {
        let rows: BTreeMap<&'static str, usize> = erasure
            .surfaces
            .iter()
            .filter_map(|(surface, erased)| Some((*surface, erased.rows?)))
            .collect();
        crate::metrics::erasure(&rows);
    }
    Ok(erasure)
}

/// [`erase`]'s work; `erase` adds the metric lines.
async fn erase_everywhere(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    named: &CustomerRef,
    now_millis: i64,
) -> Result<Option<Erasure>, CustomerError> {
    let (tids, identifiers) = match customers::find(store, tenant, named).await? {
        Some(customer) => (vec![customer.tid], customer.identifiers),
        None => (
            named.tid.iter().cloned().collect(),
            named.identifiers.clone(),
        ),
    };
    let mut rows = remove_surface_rows(store, tenant, &tids, &identifiers).await?;
    let erased = customers::erase_noting(store, tenant, named, now_millis, &rows).await?;
    let Some(erased) = erased else {
        if rows.values().all(|count| *count == 0) {
            return Ok(None);
        }
        store.table.scrub_free_space().await?;
        return Ok(Some(Erasure {
            tids,
            identifiers,
            complete: true,
            surfaces: surfaces(true, &rows),
        }));
    };
    let late = remove_surface_rows(store, tenant, &erased.tids, &erased.identifiers).await?;
    if late.values().any(|count| *count > 0) {
        for (surface, count) in late {
            *rows.entry(surface).or_default() += count;
        }
        for tid in &erased.tids {
            customers::record_surface_rows(store, tenant, tid, &rows).await?;
        }
    }
    if erased.complete {
        store.table.scrub_free_space().await?;
    }
    Ok(Some(Erasure {
        tids: erased.tids,
        identifiers: erased.identifiers,
        complete: erased.complete,
        surfaces: surfaces(erased.complete, &rows),
    }))
}

/// [`erase`] of the customer a customer key names (AIXON's customuid, Monetate's identifier,
/// Optimove's CustomerID).
pub async fn erase_customer_key(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    customer_key: &str,
    now_millis: i64,
) -> Result<Option<Erasure>, CustomerError> {
    let named = CustomerRef {
        tid: None,
        identifiers: vec![Identifier::customer_key(customer_key)],
    };
    erase(store, tenant, &named, now_millis).await
}

fn surfaces(
    customers_complete: bool,
    rows: &BTreeMap<&'static str, usize>,
) -> BTreeMap<&'static str, SurfaceErasure> {
    let mut surfaces = BTreeMap::from([(
        "customers",
        SurfaceErasure {
            rows: None,
            complete: customers_complete,
        },
    )]);
    surfaces.extend(rows.iter().map(|(surface, count)| {
        (
            *surface,
            SurfaceErasure {
                rows: Some(*count),
                complete: true,
            },
        )
    }));
    surfaces
}

/// Activities an export lists, newest first.
pub const MAX_EXPORT_ACTIVITIES: usize = 10_000;

/// Everything custdata holds about one customer, across the four surfaces, as one JSON
/// document: the access request's answer. `None` when no surface holds anything of it.
pub async fn export(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    named: &CustomerRef,
) -> Result<Option<Value>, CustomerError> {
    let customer = customers::find(store, tenant, named).await?;
    let (tids, identifiers) = match &customer {
        Some(customer) => (vec![customer.tid.clone()], customer.identifiers.clone()),
        None => (
            named.tid.iter().cloned().collect(),
            named.identifiers.clone(),
        ),
    };
    let located = locate(store, tenant, &tids, &identifiers).await?;
    if customer.is_none()
        && located.aixon.is_empty()
        && located.monetate.is_empty()
        && located.datastores.is_empty()
    {
        return Ok(None);
    }
    let profile = match &customer {
        Some(customer) => {
            let mut activities = Vec::new();
            let mut cursor = None;
            loop {
                let (page, next) =
                    customers::activity_page(store, tenant, &customer.tid, 1000, cursor).await?;
                activities.extend(page);
                cursor = next;
                if cursor.is_none() || activities.len() >= MAX_EXPORT_ACTIVITIES {
                    break;
                }
            }
            json!({
                "tid": customer.tid,
                "identifiers": customer.identifiers,
                "attributes": customer.attributes,
                "attributeHistory":
                    customers::attribute_history(store, tenant, &customer.tid).await?,
                "activities": activities,
            })
        }
        None => Value::Null,
    };
    let aixon: Vec<Value> = located
        .aixon
        .iter()
        .map(|(cell, item)| json!({"resourceId": cell, "row": aixon_store::row_view(item)}))
        .collect();
    let monetate: Vec<Value> = located
        .monetate
        .iter()
        .map(|(schema, item)| json!({"schema": schema, "row": monetate_rows::row_view(item)}))
        .collect();
    let datastores: Vec<Value> = located
        .datastores
        .iter()
        .map(|row| json!({"apiName": row.api_name, "table": row.table, "record": row.record()}))
        .collect();
    Ok(Some(json!({
        "customer": profile,
        "aixon": {"rows": aixon},
        "monetate": {"rows": monetate},
        "mxoDatastores": {"rows": datastores},
    })))
}
