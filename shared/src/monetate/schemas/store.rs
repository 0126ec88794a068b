//! Schemas in the table: read, listed, created (within the retailer's limit) and replaced
//! on the version read.

use serde_json::json;

use super::{MAX_SCHEMAS, Schema, valid_schema_name};
use crate::domain::TenantId;
use crate::storage::{
    Comparison, Condition, Item, ItemTable, Query, StorageError, Update, keys, read_all,
};

fn schema_of(item: &Item) -> Option<(Schema, i64)> {
    let schema = serde_json::from_value(item.get("schema")?.clone()).ok()?;
    Some((schema, item.i64("version").unwrap_or(0)))
}

/// One schema by name, with its version (for a conditional update).
pub async fn get(
    table: &dyn ItemTable,
    tenant: &TenantId,
    name: &str,
) -> Result<Option<(Schema, i64)>, StorageError> {
    if !valid_schema_name(name) {
        return Ok(None);
    }
    let item = table.get(&keys::monetate_schema(tenant, name)).await?;
    Ok(item.as_ref().and_then(schema_of))
}

/// Every schema of the tenant, by name.
pub async fn list(table: &dyn ItemTable, tenant: &TenantId) -> Result<Vec<Schema>, StorageError> {
    let items = read_all(
        table,
        Query::partition(keys::monetate_schemas_pk(tenant)).limit(1000),
    )
    .await?;
    Ok(items
        .iter()
        .filter(|item| !item.sk.starts_with('#'))
        .filter_map(schema_of)
        .map(|(schema, _)| schema)
        .collect())
}

/// Why a schema was not stored.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Stores a new schema with the next id; refuses a taken name.
pub async fn create(
    table: &dyn ItemTable,
    tenant: &TenantId,
    mut schema: Schema,
    now_millis: i64,
) -> Result<Schema, SaveError> {
    if list(table, tenant).await?.len() >= MAX_SCHEMAS {
        return Err(SaveError::Refused(format!(
            "a retailer has at most {MAX_SCHEMAS} schemas"
        )));
    }
    if get(table, tenant, &schema.name).await?.is_some() {
        return Err(SaveError::Refused(format!(
            "a schema named {:?} already exists",
            schema.name
        )));
    }
    let sequence = table
        .update(
            &keys::monetate_schema_sequence(tenant),
            Update::default().add("seq", 1),
            Condition::Always,
        )
        .await?;
    schema.id = sequence.i64("seq").unwrap_or(1);
    schema.created_date = crate::clock::iso8601_millis(now_millis);
    let key = keys::monetate_schema(tenant, &schema.name);
    let item = Item::new(key.pk, key.sk)
        .with("schema", json!(schema))
        .with("version", 1);
    match table.put(item, Condition::NotExists).await {
        Ok(()) => Ok(schema),
        Err(StorageError::ConditionFailed { .. }) => Err(SaveError::Refused(format!(
            "a schema named {:?} already exists",
            schema.name
        ))),
        Err(other) => Err(other.into()),
    }
}

/// Replaces a schema if nobody changed it since it was read at `version`.
pub async fn replace(
    table: &dyn ItemTable,
    tenant: &TenantId,
    schema: &Schema,
    version: i64,
) -> Result<(), SaveError> {
    let update = Update::default()
        .set("schema", json!(schema))
        .set("version", version + 1);
    match table
        .update(
            &keys::monetate_schema(tenant, &schema.name),
            update,
            Condition::compare("version", Comparison::Eq, version),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(StorageError::ConditionFailed { .. }) => Err(SaveError::Refused(
            "the schema was changed by another request; read it again and retry".into(),
        )),
        Err(other) => Err(other.into()),
    }
}
