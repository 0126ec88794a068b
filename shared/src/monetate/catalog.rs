//! Monetate default account catalogs: which product schema an account uses by default.

use serde_json::{Value, json};

use super::schemas;
use crate::domain::Problem;
use crate::domain::TenantId;
use crate::storage::{
    Condition, Item, ItemTable, Key, Query, StorageError, TransactAction, keys, read_all,
};

/// Entries in one bulk call (one transaction).
pub const MAX_BULK: usize = 100;
/// Characters of an account id.
pub const MAX_ACCOUNT_CHARS: usize = 64;

/// One `{account, schema}` pair, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultCatalog {
    pub account: String,
    pub schema: String,
}

/// An id the vendor sends as a string or a number.
fn id_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_string()),
        Value::Number(number) if number.is_u64() => Some(number.to_string()),
        _ => None,
    }
}

/// Checks one entry; `row` numbers it within a bulk call.
pub fn parse_entry(value: &Value, row: Option<usize>) -> Result<DefaultCatalog, Vec<Problem>> {
    let problem = |field: &str, rule: &str| Problem {
        row,
        field: Some(field.to_string()),
        rule: rule.to_string(),
    };
    let account = id_text(value.get("account"))
        .filter(|account| account.chars().count() <= MAX_ACCOUNT_CHARS);
    let schema = id_text(value.get("schema"));
    let mut problems = Vec::new();
    if account.is_none() {
        problems.push(problem(
            "account",
            "required: the account id, a string or number of at most 64 characters",
        ));
    }
    if schema.is_none() {
        problems.push(problem("schema", "required: the id of one of your schemas"));
    }
    match (account, schema) {
        (Some(account), Some(schema)) => Ok(DefaultCatalog { account, schema }),
        _ => Err(problems),
    }
}

/// The schema ids among `entries` that name none of the tenant's schemas.
pub async fn unknown_schemas(
    table: &dyn ItemTable,
    tenant: &TenantId,
    entries: &[DefaultCatalog],
) -> Result<Vec<String>, StorageError> {
    let known: Vec<String> = schemas::list(table, tenant)
        .await?
        .iter()
        .map(|schema| schema.id.to_string())
        .collect();
    Ok(entries
        .iter()
        .filter(|entry| !known.contains(&entry.schema))
        .map(|entry| entry.schema.clone())
        .collect())
}

fn item(tenant: &TenantId, entry: &DefaultCatalog) -> Item {
    let key = Key::new(keys::monetate_catalogs_pk(tenant), &entry.account);
    Item::new(key.pk, key.sk)
        .with("account", entry.account.clone())
        .with("schema", entry.schema.clone())
}

/// Stores the entries in one transaction: all or none.
pub async fn save(
    table: &dyn ItemTable,
    tenant: &TenantId,
    entries: &[DefaultCatalog],
) -> Result<(), StorageError> {
    let actions = entries
        .iter()
        .map(|entry| TransactAction::Put {
            item: item(tenant, entry),
            condition: Condition::Always,
        })
        .collect();
    table.transact(actions).await
}

pub async fn list(table: &dyn ItemTable, tenant: &TenantId) -> Result<Vec<Value>, StorageError> {
    let items = read_all(
        table,
        Query::partition(keys::monetate_catalogs_pk(tenant)).limit(1000),
    )
    .await?;
    Ok(items
        .iter()
        .map(|item| json!({"account": item.str("account"), "schema": item.str("schema")}))
        .collect())
}
