//! Items to DynamoDB attribute maps and back: JSON values as attribute values, numbers kept
//! as integers when they are.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Number, Value};

use super::*;
use crate::storage::{EXPIRES_AT, Item, Key, StorageError};

pub(super) fn to_attribute(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(flag) => AttributeValue::Bool(*flag),
        Value::Number(number) => AttributeValue::N(number.to_string()),
        Value::String(text) => AttributeValue::S(text.clone()),
        Value::Array(values) => AttributeValue::L(values.iter().map(to_attribute).collect()),
        Value::Object(map) => AttributeValue::M(
            map.iter()
                .map(|(k, v)| (k.clone(), to_attribute(v)))
                .collect(),
        ),
    }
}

pub(super) fn number(text: &str) -> Value {
    if let Ok(integer) = text.parse::<i64>() {
        return Value::from(integer);
    }
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map_or_else(|| Value::String(text.to_string()), Value::Number)
}

pub(super) fn from_attribute(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(text) => Value::String(text.clone()),
        AttributeValue::N(text) => number(text),
        AttributeValue::Bool(flag) => Value::Bool(*flag),
        AttributeValue::L(values) => Value::Array(values.iter().map(from_attribute).collect()),
        AttributeValue::M(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), from_attribute(v)))
                .collect(),
        ),
        AttributeValue::Ss(values) => Value::from(values.clone()),
        AttributeValue::Ns(values) => Value::Array(values.iter().map(|n| number(n)).collect()),
        _ => Value::Null,
    }
}

pub(super) fn key_map(key: &Key) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_string(), AttributeValue::S(key.pk.clone())),
        ("sk".to_string(), AttributeValue::S(key.sk.clone())),
    ])
}

pub(super) fn item_map(item: &Item) -> HashMap<String, AttributeValue> {
    let mut map = key_map(&Key::from(item));
    if let Some(at) = item.expires_at {
        map.insert(EXPIRES_AT.to_string(), AttributeValue::N(at.to_string()));
    }
    for (name, value) in &item.attrs {
        map.insert(name.clone(), to_attribute(value));
    }
    map
}

pub(super) fn item_from(map: &HashMap<String, AttributeValue>) -> Result<Item, StorageError> {
    let text = |name: &str| match map.get(name) {
        Some(AttributeValue::S(text)) => Ok(text.clone()),
        _ => Err(fault(format!("stored item lacks a string {name}"))),
    };
    let mut item = Item::new(text("pk")?, text("sk")?);
    for (name, value) in map {
        match name.as_str() {
            "pk" | "sk" => {}
            EXPIRES_AT => item.expires_at = from_attribute(value).as_i64(),
            _ => {
                item.attrs.insert(name.clone(), from_attribute(value));
            }
        }
    }
    Ok(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_as_integers_when_they_are() {
        assert_eq!(
            from_attribute(&to_attribute(&Value::from(42))),
            Value::from(42)
        );
        assert_eq!(
            from_attribute(&to_attribute(&Value::from(1.5))),
            Value::from(1.5)
        );
    }
}
