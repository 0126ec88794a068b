//! Evaluating a structure for one request: each part's rule and value against the
//! customer, the request's identifiers and context, and datastore rows read once.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{Expr, Node, Rule, Structure};
use crate::customers::{self, Customer};
use crate::domain::TenantId;
use crate::mxo::datastores::model::ApiName;
use crate::mxo::datastores::store as datastores;
use crate::storage::{ItemTable, StorageError};

/// What a structure is evaluated against.
pub struct Subject<'a> {
    pub tenant: &'a TenantId,
    pub customer: Option<&'a Customer>,
    /// Identifiers sent with the request.
    pub identifiers: &'a [customers::Identifier],
    pub properties: &'a HashMap<String, String>,
    pub now_millis: i64,
}

/// Datastore rows read during one evaluation, by (apiName, pk, sk).
type RowCache = HashMap<(String, String, Option<String>), Option<Map<String, Value>>>;

/// Evaluates structures, caching datastore reads within one request.
pub struct Evaluator<'a> {
    table: &'a dyn ItemTable,
    subject: Subject<'a>,
    datastore_reads: RowCache,
}

impl<'a> Evaluator<'a> {
    pub fn new(table: &'a dyn ItemTable, subject: Subject<'a>) -> Self {
        Evaluator {
            table,
            subject,
            datastore_reads: HashMap::new(),
        }
    }

    /// The structure's name:value pairs (root node not included), parts whose rule fails left out.
    pub async fn evaluate(&mut self, structure: &Structure) -> Result<Value, StorageError> {
        self.nodes(&structure.attributes).await
    }

    async fn nodes(&mut self, nodes: &[Node]) -> Result<Value, StorageError> {
        let mut object = Map::new();
        for node in nodes {
            if let Some(rule) = &node.when
                && !Box::pin(self.rule(rule)).await?
            {
                continue;
            }
            let value = match (&node.value, &node.attributes) {
                (Some(expr), _) => self.expr(expr).await?,
                (None, Some(children)) => Box::pin(self.nodes(children)).await?,
                (None, None) => Value::Null,
            };
            object.insert(node.name.clone(), value);
        }
        Ok(Value::Object(object))
    }

    async fn rule(&mut self, rule: &Rule) -> Result<bool, StorageError> {
        Ok(match rule {
            Rule::All(rules) => {
                for rule in rules {
                    if !Box::pin(self.rule(rule)).await? {
                        return Ok(false);
                    }
                }
                true
            }
            Rule::Any(rules) => {
                for rule in rules {
                    if Box::pin(self.rule(rule)).await? {
                        return Ok(true);
                    }
                }
                false
            }
            Rule::Not(rule) => !Box::pin(self.rule(rule)).await?,
            Rule::Exists(expr) => !self.expr(expr).await?.is_null(),
            Rule::Eq([a, b]) => {
                compare(&self.expr(a).await?, &self.expr(b).await?)
                    == Some(std::cmp::Ordering::Equal)
            }
            Rule::Ne([a, b]) => {
                let (a, b) = (self.expr(a).await?, self.expr(b).await?);
                !a.is_null() && !b.is_null() && compare(&a, &b) != Some(std::cmp::Ordering::Equal)
            }
            Rule::Lt([a, b]) => {
                compare(&self.expr(a).await?, &self.expr(b).await?)
                    == Some(std::cmp::Ordering::Less)
            }
            Rule::Le([a, b]) => matches!(
                compare(&self.expr(a).await?, &self.expr(b).await?),
                Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
            ),
            Rule::Gt([a, b]) => {
                compare(&self.expr(a).await?, &self.expr(b).await?)
                    == Some(std::cmp::Ordering::Greater)
            }
            Rule::Ge([a, b]) => matches!(
                compare(&self.expr(a).await?, &self.expr(b).await?),
                Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
            ),
            Rule::In([a, b]) => {
                let (needle, haystack) = (self.expr(a).await?, self.expr(b).await?);
                haystack.as_array().is_some_and(|items| {
                    items
                        .iter()
                        .any(|item| compare(&needle, item) == Some(std::cmp::Ordering::Equal))
                })
            }
            Rule::Contains([a, b]) => {
                let (whole, part) = (self.expr(a).await?, self.expr(b).await?);
                match (&whole, &part) {
                    (Value::String(whole), Value::String(part)) => whole.contains(part.as_str()),
                    (Value::Array(items), part) => items
                        .iter()
                        .any(|item| compare(item, part) == Some(std::cmp::Ordering::Equal)),
                    _ => false,
                }
            }
        })
    }

    async fn expr(&mut self, expr: &Expr) -> Result<Value, StorageError> {
        let subject = &self.subject;
        Ok(match expr {
            Expr::Literal(value) => value.clone(),
            Expr::Context(name) => subject
                .properties
                .get(name)
                .map_or(Value::Null, |value| Value::String(value.clone())),
            Expr::Identifier(api_name) => subject
                .identifiers
                .iter()
                .find(|i| &i.api_name == api_name)
                .map(|i| i.value.as_str())
                .or_else(|| subject.customer.and_then(|c| c.identifier(api_name)))
                .map_or(Value::Null, |value| Value::String(value.to_string())),
            Expr::Attribute(name) => subject
                .customer
                .and_then(|c| c.attributes.get(name))
                .cloned()
                .unwrap_or(Value::Null),
            Expr::ActivityCount(filter) => {
                Value::from(subject.customer.map_or(0, |c| c.activity_stats(filter).0))
            }
            Expr::DaysSinceActivity(filter) => {
                match subject.customer.and_then(|c| c.activity_stats(filter).1) {
                    Some(latest) => Value::from((subject.now_millis - latest).max(0) / 86_400_000),
                    None => Value::Null,
                }
            }
            Expr::Datastore(read) => {
                let pk = Box::pin(self.expr(&read.pk)).await?;
                let sk = match &read.sk {
                    Some(sk) => Some(Box::pin(self.expr(sk)).await?),
                    None => None,
                };
                let (Some(pk), sk) = (as_key(&pk), sk.as_ref().map(as_key)) else {
                    return Ok(Value::Null);
                };
                if sk == Some(None) {
                    return Ok(Value::Null);
                }
                let sk = sk.flatten();
                let row = self.datastore_row(&read.api_name, pk, sk).await?;
                row.and_then(|row| row.get(&read.column).cloned())
                    .unwrap_or(Value::Null)
            }
        })
    }

    async fn datastore_row(
        &mut self,
        api_name: &str,
        pk: String,
        sk: Option<String>,
    ) -> Result<Option<Map<String, Value>>, StorageError> {
        let key = (api_name.to_string(), pk, sk);
        if let Some(row) = self.datastore_reads.get(&key) {
            return Ok(row.clone());
        }
        // Checked when the structure was saved; a name that no longer parses names nothing.
        let Some(api_name) = ApiName::parse(api_name) else {
            return Ok(None);
        };
        let rows = datastores::read_live(
            self.table,
            self.subject.tenant,
            &api_name,
            &key.1,
            key.2.as_deref(),
        )
        .await;
        let row = match rows {
            Ok(rows) => rows
                .into_iter()
                .next()
                .and_then(|row| row.as_object().cloned()),
            Err(datastores::DatastoreError::Storage(error)) => return Err(error),
            // A datastore deleted since the structure was saved reads as empty.
            Err(_) => None,
        };
        self.datastore_reads.insert(key, row.clone());
        Ok(row)
    }
}

/// A datastore key from a value: strings as they are, numbers as text.
fn as_key(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// Orders two values: numbers numerically (a string that is a number counts as one, since
/// context properties are strings), strings by text, booleans by equality only.
fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    let number = |value: &Value| match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse::<f64>().ok(),
        _ => None,
    };
    match (a, b) {
        (Value::Null, _) | (_, Value::Null) => None,
        (Value::String(x), Value::String(y)) => match (number(a), number(b)) {
            (Some(x), Some(y)) => x.partial_cmp(&y),
            _ => Some(x.cmp(y)),
        },
        (Value::Number(_), _) | (_, Value::Number(_)) => number(a)
            .zip(number(b))
            .and_then(|(x, y)| x.partial_cmp(&y)),
        (x, y) if x == y => Some(std::cmp::Ordering::Equal),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn context_strings_compare_as_numbers_when_they_are() {
        assert_eq!(
            compare(&json!("5000"), &json!(1000)),
            Some(std::cmp::Ordering::Greater)
        );
        assert_eq!(
            compare(&json!("gold"), &json!("gold")),
            Some(std::cmp::Ordering::Equal)
        );
        assert_eq!(compare(&json!(null), &json!(1)), None);
        assert_eq!(
            compare(&json!(true), &json!(true)),
            Some(std::cmp::Ordering::Equal)
        );
    }
}
