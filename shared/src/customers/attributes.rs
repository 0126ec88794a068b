//! Attributes: typed values on the profile (with the surface and time they came from),
//! their history (one item per change in the customer's own partition, and a per-day
//! index of who changed), and the tenant's catalog of attribute names.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::CustomerStore;
use super::Tid;
use super::identity::{Customer, profile};
use crate::domain::TenantId;
use crate::retry::{Attempt, optimistic};
use crate::storage::{Condition, Item, Query, StorageError, TransactAction, Update, batch, keys};

/// How long attribute history is kept (GetCustomerAttributeChangers reads it).
pub const HISTORY_DAYS: i64 = 400;

/// The attribute changes a write makes: name, value before (null for a new one), value after.
pub(super) fn changes(
    before: &Value,
    values: &BTreeMap<String, Value>,
) -> Vec<(String, Value, Value)> {
    values
        .iter()
        .filter_map(|(name, value)| {
            let old = before
                .get(name)
                .and_then(|entry| entry.get("value"))
                .cloned()
                .unwrap_or(Value::Null);
            (old != *value).then(|| (name.clone(), old, value.clone()))
        })
        .collect()
}

/// The writes that keep a write's attribute changes: one history item in the customer's own
/// partition (so an erasure removes it with the rest) and the day's index entry, which holds
/// only the tid. Nothing when nothing changed.
pub(super) fn history_actions(
    tenant: &TenantId,
    tid: &Tid,
    changed: &[(String, Value, Value)],
    now_millis: i64,
) -> Vec<TransactAction> {
    if changed.is_empty() {
        return Vec::new();
    }
    let expires = now_millis / 1000 + HISTORY_DAYS * 86_400;
    let entries: serde_json::Map<String, Value> = changed
        .iter()
        .map(|(name, old, new)| (name.clone(), json!([old, new])))
        .collect();
    let suffix = &crate::tenancy::new_id("")[..8];
    let history = keys::attribute_history(tenant, tid, now_millis, suffix);
    let day = crate::clock::iso8601_millis(now_millis);
    let index = keys::attribute_changes(tenant, day.get(..10).unwrap_or_default(), tid);
    vec![
        TransactAction::Put {
            item: Item::new(history.pk, history.sk)
                .with("at", now_millis)
                .with("changes", Value::Object(entries))
                .expiring_at(expires),
            condition: Condition::Always,
        },
        TransactAction::Put {
            item: Item::new(index.pk, index.sk)
                .with("tid", tid)
                .expiring_at(expires),
            condition: Condition::Always,
        },
    ]
}

/// Sets customer attributes (typed values, with the surface and time they came from) and
/// registers their names in the tenant's attribute catalog.
pub async fn set_attributes(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    tid: &Tid,
    values: &BTreeMap<String, Value>,
    surface: &str,
    now_millis: i64,
) -> Result<(), StorageError> {
    optimistic("customer-attributes", || async move {
        let Some(customer) = profile(store.table, tenant, tid).await? else {
            return Err(StorageError::ConditionFailed {
                pk: keys::customer_pk(tenant, tid),
                sk: "PROFILE".into(),
            });
        };
        let mut attributes = customer
            .profile
            .get("attributes")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let changed = changes(&attributes, values);
        for (name, value) in values {
            attributes[name] = json!({"value": value, "surface": surface, "at": now_millis});
        }
        let rev = customer.rev();
        let mut actions = vec![TransactAction::Update {
            key: keys::customer_profile(tenant, tid),
            update: Update::default()
                .set("attributes", attributes)
                .set("updated", now_millis)
                .set("rev", rev + 1),
            condition: Condition::equals("rev", rev),
        }];
        actions.extend(history_actions(tenant, tid, &changed, now_millis));
        Attempt::of_write(store.table.transact(actions).await)
    })
    .await?;
    register_attributes(
        store,
        tenant,
        values.keys().map(String::as_str),
        surface,
        now_millis,
    )
    .await
}

/// Adds attribute names to the tenant's catalog (names already there are left as they are).
/// The catalog is one partition per tenant, so it is read first (one batched read) and
/// only names it lacks are written: a bulk path does not write it on every request.
pub async fn register_attributes(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    names: impl IntoIterator<Item = &str>,
    surface: &str,
    now_millis: i64,
) -> Result<(), StorageError> {
    let wanted: Vec<_> = names
        .into_iter()
        .map(|name| keys::attribute_definition(tenant, name))
        .collect();
    let known = batch::get_many(store.table, wanted.iter().cloned()).await?;
    for key in wanted.into_iter().filter(|key| !known.contains_key(key)) {
        let entry = Item::new(key.pk, key.sk)
            .with("surface", surface)
            .with("created", now_millis);
        match store.table.put(entry, Condition::NotExists).await {
            Ok(()) | Err(StorageError::ConditionFailed { .. }) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(())
}

/// A customer whose attribute changed in a period: the value before the first change in it
/// (null when the customer or the attribute was new) and the value after the last.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeChange {
    pub customer: Customer,
    pub initial: Value,
    pub last: Value,
}

/// A customer's attribute changes of the last [`HISTORY_DAYS`], oldest first: when, and
/// each changed attribute's `[old, new]` value.
pub async fn attribute_history(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    tid: &Tid,
) -> Result<Vec<Value>, StorageError> {
    let query = Query::partition(keys::customer_pk(tenant, tid))
        .prefix(keys::HISTORY_PREFIX)
        .limit(1000);
    let items = crate::storage::read_all(store.table, query).await?;
    Ok(items
        .iter()
        .map(|item| {
            json!({
                "at": item.i64("at").map(crate::clock::iso8601_millis),
                "changes": item.get("changes"),
            })
        })
        .collect())
}

/// The customers whose `attribute` changed from `from_millis` (inclusive) to `to_millis`
/// (exclusive), found through the per-day index of the `days` the period covers (UTC
/// dates); erased customers are left out. Costs what the changers of those days cost.
pub async fn attribute_changers(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    attribute: &str,
    days: &[String],
    from_millis: i64,
    to_millis: i64,
) -> Result<Vec<AttributeChange>, StorageError> {
    use futures::StreamExt;
    let mut tids = std::collections::BTreeSet::new();
    let mut shards = Vec::new();
    for day in days {
        for shard in 0..keys::ATTRIBUTE_CHANGE_SHARDS {
            shards
                .push(Query::partition(keys::attribute_changes_pk(tenant, day, shard)).limit(1000));
        }
    }
    let pages: Vec<Vec<Item>> = futures::stream::iter(shards)
        .map(|query| crate::storage::read_all(store.table, query))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    for item in pages.into_iter().flatten() {
        // A tid as the sort key: one that is not a tid names no customer.
        tids.extend(Tid::parse(&item.sk));
    }
    let found: Vec<Option<AttributeChange>> = futures::stream::iter(tids)
        .map(|tid| async move {
            let query = Query::partition(keys::customer_pk(tenant, &tid))
                .between(
                    format!("{}{from_millis:013}", keys::HISTORY_PREFIX),
                    format!("{}{:013}", keys::HISTORY_PREFIX, to_millis - 1) + "~",
                )
                .limit(1000);
            let history = crate::storage::read_all(store.table, query).await?;
            let values: Vec<(Value, Value)> = history
                .iter()
                .filter_map(|item| {
                    let pair = item.get("changes")?.get(attribute)?.as_array()?.clone();
                    Some((pair.first()?.clone(), pair.get(1)?.clone()))
                })
                .collect();
            let (Some((initial, _)), Some((_, last))) = (values.first(), values.last()) else {
                return Ok(None);
            };
            let (initial, last) = (initial.clone(), last.clone());
            Ok(profile(store.table, tenant, &tid)
                .await?
                .map(|customer| AttributeChange {
                    customer,
                    initial,
                    last,
                }))
        })
        .buffered(32)
        .collect::<Vec<Result<_, StorageError>>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    Ok(found.into_iter().flatten().collect())
}

/// Whether the tenant's catalog has an attribute of this name.
pub async fn attribute_known(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    name: &str,
) -> Result<bool, StorageError> {
    Ok(store
        .table
        .get(&keys::attribute_definition(tenant, name))
        .await?
        .is_some())
}
