//! Conditions and updates as DynamoDB expressions, with their name and value placeholders.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::attributes::to_attribute;
use crate::storage::{Comparison, Condition, EXPIRES_AT, Update};

/// Builds one expression's placeholder maps (`#n0`, `:v0`) alongside its text.
#[derive(Default)]
pub(super) struct Placeholders {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Placeholders {
    pub(super) fn name(&mut self, name: &str) -> String {
        if let Some((placeholder, _)) = self
            .names
            .iter()
            .find(|(_, existing)| existing.as_str() == name)
        {
            return placeholder.clone();
        }
        let placeholder = format!("#n{}", self.names.len());
        self.names.insert(placeholder.clone(), name.to_string());
        placeholder
    }

    pub(super) fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    pub(super) fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    pub(super) fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }

    /// The predicate "the item exists and has not expired", which every condition is relative to.
    pub(super) fn live(&mut self, now: i64) -> String {
        let pk = self.name("pk");
        let expires = self.name(EXPIRES_AT);
        let now = self.value(AttributeValue::N(now.to_string()));
        format!(
            "(attribute_exists({pk}) AND (attribute_not_exists({expires}) OR {expires} > {now}))"
        )
    }

    /// An expression that always holds (DynamoDB has no literal `true`).
    pub(super) fn always(&mut self) -> String {
        let pk = self.name("pk");
        format!("(attribute_exists({pk}) OR attribute_not_exists({pk}))")
    }

    /// Translates a condition; `None` for [`Condition::Always`].
    pub(super) fn condition(&mut self, condition: &Condition, now: i64) -> Option<String> {
        let text = match condition {
            Condition::Always => return None,
            Condition::Exists => self.live(now),
            Condition::NotExists => format!("(NOT {})", self.live(now)),
            Condition::Compare(name, op, expected) => {
                let live = self.live(now);
                let name = self.name(name);
                let value = self.value(to_attribute(expected));
                let comparison = match op {
                    // DynamoDB's <> also holds between values of different types; ours does not
                    // (see condition.rs), so the type is pinned.
                    Comparison::Ne => {
                        let kind =
                            self.value(AttributeValue::S(attribute_type(&to_attribute(expected))));
                        format!("({name} <> {value} AND attribute_type({name}, {kind}))")
                    }
                    other => format!("{name} {} {value}", other.operator()),
                };
                format!("({live} AND {comparison})")
            }
            Condition::HasAttribute(name) => {
                let live = self.live(now);
                let name = self.name(name);
                format!("({live} AND attribute_exists({name}))")
            }
            Condition::LacksAttribute(name) => {
                let live = self.live(now);
                let name = self.name(name);
                format!("((NOT {live}) OR attribute_not_exists({name}))")
            }
            Condition::All(conditions) | Condition::Any(conditions) => {
                let all = matches!(condition, Condition::All(_));
                let parts: Vec<String> = conditions
                    .iter()
                    .map(|c| self.condition(c, now).unwrap_or_else(|| self.always()))
                    .collect();
                match parts.is_empty() {
                    // An empty All holds and an empty Any does not, as in condition.rs.
                    true if all => self.always(),
                    true => format!("(NOT {})", self.always()),
                    false => format!("({})", parts.join(if all { " AND " } else { " OR " })),
                }
            }
        };
        Some(text)
    }

    /// Translates an update into an UpdateExpression; `None` when it changes nothing.
    pub(super) fn update(&mut self, update: &Update) -> Option<String> {
        let mut set = Vec::new();
        for (name, value) in &update.set {
            let name = self.name(name);
            let value = self.value(to_attribute(value));
            set.push(format!("{name} = {value}"));
        }
        if let Some(at) = update.expires_at {
            let name = self.name(EXPIRES_AT);
            let value = self.value(AttributeValue::N(at.to_string()));
            set.push(format!("{name} = {value}"));
        }
        let add: Vec<String> = update
            .add
            .iter()
            .map(|(name, delta)| {
                let name = self.name(name);
                let value = self.value(AttributeValue::N(delta.to_string()));
                format!("{name} {value}")
            })
            .collect();
        let remove: Vec<String> = update.remove.iter().map(|name| self.name(name)).collect();
        let mut clauses = Vec::new();
        if !set.is_empty() {
            clauses.push(format!("SET {}", set.join(", ")));
        }
        if !add.is_empty() {
            clauses.push(format!("ADD {}", add.join(", ")));
        }
        if !remove.is_empty() {
            clauses.push(format!("REMOVE {}", remove.join(", ")));
        }
        (!clauses.is_empty()).then(|| clauses.join(" "))
    }
}

/// The DynamoDB type code of a comparison's value.
fn attribute_type(value: &AttributeValue) -> String {
    match value {
        AttributeValue::S(_) => "S",
        AttributeValue::N(_) => "N",
        AttributeValue::Bool(_) => "BOOL",
        AttributeValue::L(_) => "L",
        AttributeValue::M(_) => "M",
        _ => "NULL",
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_are_relative_to_the_live_item() {
        let mut placeholders = Placeholders::default();
        let text = placeholders
            .condition(&Condition::NotExists, 100)
            .expect("an expression");
        assert!(text.starts_with("(NOT (attribute_exists("), "{text}");
        assert_eq!(
            placeholders.values().expect("values").get(":v0"),
            Some(&AttributeValue::N("100".into()))
        );
        assert_eq!(
            Placeholders::default().condition(&Condition::Always, 0),
            None
        );
    }

    #[test]
    fn an_update_sets_adds_and_removes_in_one_expression() {
        let mut placeholders = Placeholders::default();
        let update = Update::default()
            .set("a", "x")
            .add("n", 2)
            .remove("old")
            .expiring_at(9);
        let text = placeholders.update(&update).expect("an expression");
        assert_eq!(text, "SET #n0 = :v0, #n1 = :v1 ADD #n2 :v2 REMOVE #n3");
    }
}
