//! Optimove customer attributes over the shared customer store: the catalog (every surface's
//! attributes, plus those added here with a type), typed writes with per-customer errors,
//! and reading current values for `CustomerAttributes`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::customers::{self, CustomerRef, CustomerStore, Identifier, Upsert, UpsertOutcome};
use crate::domain::TenantId;
use crate::storage::{Condition, Item, ItemTable, Query, StorageError, keys, read_all};

/// Attributes a tenant may add through AddCustomerAttribute.
pub const MAX_API_ATTRIBUTES: usize = 40;
/// Customers in one UpdateCustomerAttributes call, and attributes per customer.
pub const MAX_UPDATE_CUSTOMERS: usize = 1_000;
pub const MAX_ATTRIBUTES_PER_CUSTOMER: usize = 10;
/// Characters of a CustomerID (the tenant's customer key).
pub const MAX_CUSTOMER_ID_CHARS: usize = 256;
/// The surface name on what this surface writes; attributes it added carry it too.
pub const SURFACE: &str = "optimove";

/// An attribute of the tenant's catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    pub name: String,
    /// The declared type of an attribute added here (`VARCHAR(10)`, `INT`, …); none for
    /// attributes other surfaces brought.
    pub declared: Option<AttributeType>,
    pub default: Option<Value>,
    pub surface: String,
}

/// The types AddCustomerAttribute takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeType {
    Decimal,
    Int,
    BigInt,
    Date,
    Varchar(usize),
}

impl AttributeType {
    pub fn parse(raw: &str) -> Option<AttributeType> {
        let upper = raw.trim().to_ascii_uppercase().replace(' ', "");
        match upper.as_str() {
            "DECIMAL(19,4)" => Some(AttributeType::Decimal),
            "INT" => Some(AttributeType::Int),
            "BIGINT" => Some(AttributeType::BigInt),
            "DATE" => Some(AttributeType::Date),
            _ => {
                let length = upper
                    .strip_prefix("NVARCHAR(")
                    .or_else(|| upper.strip_prefix("VARCHAR("))?
                    .strip_suffix(')')?
                    .parse()
                    .ok()?;
                (1..=4000)
                    .contains(&length)
                    .then_some(AttributeType::Varchar(length))
            }
        }
    }

    pub fn label(self) -> String {
        match self {
            AttributeType::Decimal => "DECIMAL(19,4)".into(),
            AttributeType::Int => "INT".into(),
            AttributeType::BigInt => "BIGINT".into(),
            AttributeType::Date => "DATE".into(),
            AttributeType::Varchar(length) => format!("VARCHAR({length})"),
        }
    }

    /// A value checked against the type, as it is stored (numbers as numbers).
    pub fn check(self, value: &Value) -> Result<Value, String> {
        let text = match value {
            Value::String(text) => text.trim().to_string(),
            Value::Number(number) => number.to_string(),
            Value::Bool(flag) => flag.to_string(),
            _ => return Err("a string or number".into()),
        };
        match self {
            AttributeType::Decimal => text
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && n.abs() < 1e15)
                .map(|n| json!(n))
                .ok_or_else(|| format!("{text:?} is not a DECIMAL(19,4)")),
            AttributeType::Int => text
                .parse::<i32>()
                .map(|n| json!(n))
                .map_err(|_| format!("{text:?} is not an INT")),
            AttributeType::BigInt => text
                .parse::<i64>()
                .map(|n| json!(n))
                .map_err(|_| format!("{text:?} is not a BIGINT")),
            AttributeType::Date => chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                .map(|_| json!(text))
                .map_err(|_| format!("{text:?} is not a date (YYYY-MM-DD)")),
            AttributeType::Varchar(length) if text.chars().count() <= length => Ok(json!(text)),
            AttributeType::Varchar(length) => Err(format!("longer than {length} characters")),
        }
    }
}

fn attribute_of(item: &Item) -> Attribute {
    Attribute {
        name: item.sk.clone(),
        declared: item.str("type").and_then(AttributeType::parse),
        default: item.get("default").cloned().filter(|v| !v.is_null()),
        surface: item.str("surface").unwrap_or_default().to_string(),
    }
}

/// Every attribute of the tenant's catalog.
pub async fn catalog(
    table: &dyn ItemTable,
    tenant: &TenantId,
) -> Result<Vec<Attribute>, StorageError> {
    let items = read_all(
        table,
        Query::partition(keys::attribute_catalog_pk(tenant)).limit(1000),
    )
    .await?;
    Ok(items.iter().map(attribute_of).collect())
}

/// The catalog's attribute of this name, compared without case (Optimove names are not
/// case-sensitive).
pub fn named<'a>(catalog: &'a [Attribute], name: &str) -> Option<&'a Attribute> {
    catalog
        .iter()
        .find(|attribute| attribute.name.eq_ignore_ascii_case(name.trim()))
}

/// Why AddCustomerAttribute refused, with the vendor's error id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddRefused {
    pub error_id: &'static str,
    pub message: String,
}

fn refused(error_id: &'static str, message: impl Into<String>) -> AddRefused {
    AddRefused {
        error_id,
        message: message.into(),
    }
}

/// Adds an attribute with a type and an optional default (applied when a customer has no
/// value). Error ids as the vendor's: 1 over the limit, 2 exists, 3 bad type, 4 default
/// does not fit, 5 anything else.
pub async fn add(
    table: &dyn ItemTable,
    tenant: &TenantId,
    name: &str,
    declared: &str,
    default: Option<&Value>,
    now_millis: i64,
) -> Result<Result<(), AddRefused>, StorageError> {
    let valid_name = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        return Ok(Err(refused(
            "5",
            "Name is 1-64 letters, digits and '_', starting with a letter",
        )));
    }
    let Some(kind) = AttributeType::parse(declared) else {
        return Ok(Err(refused(
            "3",
            "Type is one of DECIMAL(19,4), INT, BIGINT, DATE, VARCHAR(X), NVARCHAR(X) (X 1-4000)",
        )));
    };
    let default = match default.filter(|value| !value.is_null()) {
        Some(value) => match kind.check(value) {
            Ok(stored) => Some(stored),
            Err(why) => return Ok(Err(refused("4", format!("DefaultValue: {why}")))),
        },
        None => None,
    };
    let existing = catalog(table, tenant).await?;
    if named(&existing, name).is_some() {
        return Ok(Err(refused("2", format!("an attribute {name:?} exists"))));
    }
    let added = existing.iter().filter(|a| a.surface == SURFACE).count();
    if added >= MAX_API_ATTRIBUTES {
        return Ok(Err(refused(
            "1",
            format!("at most {MAX_API_ATTRIBUTES} attributes can be added through the API"),
        )));
    }
    let key = keys::attribute_definition(tenant, name);
    let item = Item::new(key.pk, key.sk)
        .with("surface", SURFACE)
        .with("type", kind.label())
        .with("default", json!(default))
        .with("created", now_millis);
    match table.put(item, Condition::NotExists).await {
        Ok(()) => Ok(Ok(())),
        Err(StorageError::ConditionFailed { .. }) => {
            Ok(Err(refused("2", format!("an attribute {name:?} exists"))))
        }
        Err(other) => Err(other),
    }
}

/// One customer's error in a write's answer.
pub fn write_error(error: &str, customer: &str, field: Option<&str>) -> Value {
    json!({"error": error, "customerId": customer, "realFieldName": field})
}

/// One customer's requested changes, as read from a body.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub customer: String,
    pub values: Vec<(String, Value)>,
}

/// Checks changes against the catalog: the values that may be written per customer, and
/// an error per customer and field that may not.
pub fn check_changes(catalog: &[Attribute], changes: &[Change]) -> (Vec<Upsert>, Vec<Value>) {
    let mut upserts = Vec::new();
    let mut errors = Vec::new();
    for change in changes {
        if change.customer.is_empty() || change.customer.chars().count() > MAX_CUSTOMER_ID_CHARS {
            errors.push(write_error("INVALID_CUSTOMER", &change.customer, None));
            continue;
        }
        let mut attributes = BTreeMap::new();
        for (name, value) in &change.values {
            let Some(attribute) = named(catalog, name) else {
                errors.push(write_error("INVALID_FIELD", &change.customer, Some(name)));
                continue;
            };
            let stored = match attribute.declared {
                Some(kind) => kind.check(value),
                None if value.is_null() || value.is_object() || value.is_array() => {
                    Err("a string, number or boolean".into())
                }
                None => Ok(value.clone()),
            };
            match stored {
                Ok(stored) => {
                    attributes.insert(attribute.name.clone(), stored);
                }
                Err(_) => errors.push(write_error("INVALID_VALUE", &change.customer, Some(name))),
            }
        }
        if !attributes.is_empty() {
            upserts.push(Upsert {
                key: Identifier::customer_key(change.customer.clone()),
                identifiers: Vec::new(),
                attributes,
                items: Vec::new(),
            });
        }
    }
    (upserts, errors)
}

/// Writes checked changes; `only_existing` leaves unknown customers out (an error each),
/// as UpdateCustomerAttributes does, where UpsertCustomer creates them.
pub async fn apply(
    store: CustomerStore<'_>,
    tenant: &TenantId,
    upserts: Vec<Upsert>,
    only_existing: bool,
    errors: &mut Vec<Value>,
    now_millis: i64,
) -> Result<(), customers::CustomerError> {
    let mut kept = Vec::with_capacity(upserts.len());
    for upsert in upserts {
        let named = CustomerRef {
            tid: None,
            identifiers: vec![upsert.key.clone()],
        };
        if only_existing && customers::find(store, tenant, &named).await?.is_none() {
            errors.push(write_error("INVALID_CUSTOMER", &upsert.key.value, None));
        } else {
            kept.push(upsert);
        }
    }
    let outcomes = customers::upsert_many(store, tenant, &kept, SURFACE, now_millis).await?;
    for (upsert, outcome) in kept.iter().zip(outcomes) {
        if let UpsertOutcome::Refused(_) = outcome {
            errors.push(write_error("INVALID_CUSTOMER", &upsert.key.value, None));
        }
    }
    Ok(())
}

/// The current values of `names` for a customer, in that order (an attribute's default when
/// the customer has none; null when neither), as strings the way Optimove returns them.
pub fn values_of(
    catalog: &[Attribute],
    customer: Option<&customers::Customer>,
    names: &[String],
) -> Vec<Value> {
    names
        .iter()
        .map(|name| {
            let attribute = named(catalog, name);
            let canonical = attribute.map_or(name.as_str(), |a| a.name.as_str());
            let value = customer
                .and_then(|customer| customer.attributes.get(canonical).cloned())
                .filter(|value| !value.is_null())
                .or_else(|| attribute.and_then(|a| a.default.clone()));
            value.map_or(Value::Null, |value| as_text(&value))
        })
        .collect()
}

/// A stored value as Optimove returns values: a string (lists comma-joined), or null.
pub fn as_text(value: &Value) -> Value {
    match value {
        Value::Null => Value::Null,
        Value::String(text) => Value::String(text.clone()),
        Value::Array(items) => Value::String(
            items
                .iter()
                .map(|item| item.as_str().map_or(item.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(","),
        ),
        other => Value::String(other.to_string()),
    }
}
