//! Storing structure definitions: saved checked, loaded, removed and listed per tenant.

use serde_json::Value;

use super::{Structure, problem};
use crate::customers::CustomerStore;
use crate::domain::Problem;
use crate::domain::TenantId;
use crate::storage::{Condition, Item, ItemTable, Query, StorageError, keys, read_all};

/// A structureApiName: 1 to 100 letters, digits, `_`, `-` or `.`, starting with a letter
/// or digit (so never `.` or `..`).
pub fn valid_name(name: &str) -> bool {
    crate::names::is_structure_name(name)
}

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("the structure definition is invalid")]
    Invalid(Vec<Problem>),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Parses, checks (its attributes against the customer store's catalogue) and stores a
/// structure definition, saved at `now_millis` (the admin route and the admin CLI).
pub async fn save(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    name: &str,
    body: &Value,
    now_millis: i64,
) -> Result<Structure, SaveError> {
    if !valid_name(name) {
        return Err(SaveError::Invalid(vec![problem(
            "structureApiName".into(),
            crate::names::STRUCTURE_NAME.rule,
        )]));
    }
    let definition = Structure::parse(body).map_err(SaveError::Invalid)?;
    let problems = definition.validate(store, tenant).await?;
    if !problems.is_empty() {
        return Err(SaveError::Invalid(problems));
    }
    let key = keys::structure(tenant, name);
    let item = Item::new(key.pk, key.sk)
        .with("definition", serde_json::json!(definition))
        .with("updated", now_millis);
    store.table.put(item, Condition::Always).await?;
    Ok(definition)
}

pub async fn load(
    table: &dyn ItemTable,
    tenant: &TenantId,
    name: &str,
) -> Result<Option<Structure>, StorageError> {
    if !valid_name(name) {
        return Ok(None);
    }
    let item = table.get(&keys::structure(tenant, name)).await?;
    Ok(item
        .and_then(|item| item.get("definition").cloned())
        .and_then(|definition| serde_json::from_value(definition).ok()))
}

/// Deletes a structure; false if there was none.
pub async fn remove(
    table: &dyn ItemTable,
    tenant: &TenantId,
    name: &str,
) -> Result<bool, StorageError> {
    if !valid_name(name) {
        return Ok(false);
    }
    Ok(table
        .delete(&keys::structure(tenant, name), Condition::Always)
        .await?
        .is_some())
}

/// Every structure of a tenant, by name.
pub async fn list(table: &dyn ItemTable, tenant: &TenantId) -> Result<Vec<String>, StorageError> {
    let items = read_all(
        table,
        Query::partition(keys::structures_pk(tenant)).limit(1000),
    )
    .await?;
    Ok(items.into_iter().map(|item| item.sk).collect())
}
