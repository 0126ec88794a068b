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

use crate::aixon;
use crate::app::App;
use crate::customers::{self, CUSTOMER_KEY, CustomerError, CustomerRef, Identifier};
use crate::monetate::records as monetate_rows;
use crate::mxo::datastores::store::{KeyedRow, rows_keyed_by};
use crate::storage::{Item, StorageError, batch, keys};
use crate::tenancy::TenantId;

/// What an erasure removed, per surface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Erasure {
    pub tids: Vec<String>,
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
    app: &App,
    tenant: &TenantId,
    tids: &[String],
    identifiers: &[Identifier],
) -> Result<Located, StorageError> {
    let cells = aixon::store::list_cells(app, tenant).await?;
    let mut located = Located {
        aixon: Vec::new(),
        monetate: Vec::new(),
        datastores: Vec::new(),
    };
    for customuid in customer_keys(identifiers) {
        let hash = aixon::store::row_hash(app, customuid);
        for cell in &cells {
            let key = keys::aixon_row(tenant, &cell.id, &hash);
            if let Some(item) = app.table.get(&key).await? {
                located.aixon.push((cell.id.clone(), item));
            }
        }
        located
            .monetate
            .extend(monetate_rows::customer_rows(app, tenant, customuid).await?);
    }
    let mut primary_keys: Vec<String> = identifiers
        .iter()
        .map(|identifier| identifier.value.clone())
        .chain(tids.iter().cloned())
        .collect();
    primary_keys.sort();
    primary_keys.dedup();
    located.datastores = rows_keyed_by(app.table.as_ref(), tenant, &primary_keys).await?;
    Ok(located)
}

/// Erases a customer from every surface: the customer store's erasure (profile, identifiers
/// turned into suppressing tombstones, activity, attribute history), then every AIXON row,
/// Monetate row and datastore row of it, all before the answer. Only a long activity
/// history may outlive the answer, removed in the background, and nothing reads it once the
/// profile is gone. `None` when no surface holds anything of the customer.
pub async fn erase(
    app: &App,
    tenant: &TenantId,
    named: &CustomerRef,
    now_millis: i64,
) -> Result<Option<Erasure>, CustomerError> {
    let erased = customers::erase(app, tenant, named, now_millis).await?;
    let (tids, identifiers) = match &erased {
        Some(erased) => (erased.tids.clone(), erased.identifiers.clone()),
        None => (
            named.tid.iter().cloned().collect(),
            named.identifiers.clone(),
        ),
    };
    let located = locate(app, tenant, &tids, &identifiers).await?;
    let mut doomed: Vec<Item> = Vec::new();
    let mut rows = BTreeMap::new();
    rows.insert("aixon", located.aixon.len());
    doomed.extend(located.aixon.into_iter().map(|(_, item)| item));
    rows.insert("monetate", located.monetate.len());
    doomed.extend(located.monetate.into_iter().map(|(_, item)| item));
    rows.insert("datastores", located.datastores.len());
    doomed.extend(located.datastores.into_iter().map(|row| row.item));
    batch::delete_all(app.table.as_ref(), &doomed).await?;
    let Some(erased) = erased else {
        if doomed.is_empty() {
            return Ok(None);
        }
        return Ok(Some(Erasure {
            tids,
            identifiers,
            complete: true,
            surfaces: surfaces(true, &rows),
        }));
    };
    for tid in &erased.tids {
        customers::record_surface_rows(app, tenant, tid, &rows).await?;
    }
    Ok(Some(Erasure {
        tids,
        identifiers,
        complete: erased.complete,
        surfaces: surfaces(erased.complete, &rows),
    }))
}

/// [`erase`] of the customer a customer key names (AIXON's customuid, Monetate's identifier,
/// Optimove's CustomerID).
pub async fn erase_customer_key(
    app: &App,
    tenant: &TenantId,
    customer_key: &str,
) -> Result<Option<Erasure>, CustomerError> {
    let named = CustomerRef {
        tid: None,
        identifiers: vec![Identifier::customer_key(customer_key)],
    };
    erase(app, tenant, &named, app.clock.now_millis()).await
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
    app: &App,
    tenant: &TenantId,
    named: &CustomerRef,
) -> Result<Option<Value>, CustomerError> {
    let customer = customers::find(app, tenant, named).await?;
    let (tids, identifiers) = match &customer {
        Some(customer) => (vec![customer.tid.clone()], customer.identifiers.clone()),
        None => (
            named.tid.iter().cloned().collect(),
            named.identifiers.clone(),
        ),
    };
    let located = locate(app, tenant, &tids, &identifiers).await?;
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
                    customers::activity_page(app, tenant, &customer.tid, 1000, cursor).await?;
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
                "activities": activities,
            })
        }
        None => Value::Null,
    };
    let aixon: Vec<Value> = located
        .aixon
        .iter()
        .map(|(cell, item)| json!({"resourceId": cell, "row": aixon::store::row_view(item)}))
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
