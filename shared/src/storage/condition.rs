//! Conditions on the current item, evaluated by the embedded adapter in Rust and
//! translated to a ConditionExpression by the DynamoDB adapter.
//!
//! A condition always sees the *live* item: an item whose `expires_at` has passed
//! counts as absent, in both adapters.

use std::cmp::Ordering;

use serde_json::Value;

use super::Item;

/// How an attribute is compared with a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Comparison {
    /// The DynamoDB operator.
    pub fn operator(self) -> &'static str {
        match self {
            Comparison::Eq => "=",
            Comparison::Ne => "<>",
            Comparison::Lt => "<",
            Comparison::Le => "<=",
            Comparison::Gt => ">",
            Comparison::Ge => ">=",
        }
    }
}

/// A condition a write checks atomically against the current item.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Condition {
    /// No condition.
    #[default]
    Always,
    /// The item exists (and has not expired).
    Exists,
    /// The item does not exist (or has expired).
    NotExists,
    /// The item exists and its attribute compares as given with the value. Numbers compare
    /// as numbers, strings as strings; values of different types never compare true.
    Compare(String, Comparison, Value),
    /// The item exists and has the attribute.
    HasAttribute(String),
    /// The item is absent or lacks the attribute.
    LacksAttribute(String),
    All(Vec<Condition>),
    Any(Vec<Condition>),
}

impl Condition {
    pub fn equals(name: impl Into<String>, value: impl Into<Value>) -> Self {
        Condition::Compare(name.into(), Comparison::Eq, value.into())
    }

    pub fn compare(name: impl Into<String>, op: Comparison, value: impl Into<Value>) -> Self {
        Condition::Compare(name.into(), op, value.into())
    }

    /// Evaluates against the live item (`None` when absent or expired).
    pub fn holds_for(&self, live: Option<&Item>) -> bool {
        match self {
            Condition::Always => true,
            Condition::Exists => live.is_some(),
            Condition::NotExists => live.is_none(),
            Condition::Compare(name, op, expected) => live
                .and_then(|item| item.attribute(name))
                .is_some_and(|actual| compare(&actual, *op, expected)),
            Condition::HasAttribute(name) => {
                live.is_some_and(|item| item.attribute(name).is_some())
            }
            Condition::LacksAttribute(name) => {
                live.is_none_or(|item| item.attribute(name).is_none())
            }
            Condition::All(conditions) => conditions.iter().all(|c| c.holds_for(live)),
            Condition::Any(conditions) => conditions.iter().any(|c| c.holds_for(live)),
        }
    }
}

fn compare(actual: &Value, op: Comparison, expected: &Value) -> bool {
    let ordering = match (actual, expected) {
        (Value::Number(a), Value::Number(b)) => a
            .as_f64()
            .zip(b.as_f64())
            .and_then(|(a, b)| a.partial_cmp(&b)),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        // Values of other types only compare for (in)equality, and only with their own type.
        (a, b) if std::mem::discriminant(a) == std::mem::discriminant(b) => match op {
            Comparison::Eq => return a == b,
            Comparison::Ne => return a != b,
            _ => None,
        },
        _ => None,
    };
    ordering.is_some_and(|ordering| match op {
        Comparison::Eq => ordering == Ordering::Equal,
        Comparison::Ne => ordering != Ordering::Equal,
        Comparison::Lt => ordering == Ordering::Less,
        Comparison::Le => ordering != Ordering::Greater,
        Comparison::Gt => ordering == Ordering::Greater,
        Comparison::Ge => ordering != Ordering::Less,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_numerically_and_mixed_types_never_hold() {
        let item = Item::new("p", "s").with("n", 10).with("s", "10");
        assert!(Condition::compare("n", Comparison::Lt, 11).holds_for(Some(&item)));
        assert!(!Condition::compare("n", Comparison::Lt, 9.5).holds_for(Some(&item)));
        assert!(!Condition::compare("s", Comparison::Lt, 11).holds_for(Some(&item)));
        assert!(!Condition::equals("missing", 1).holds_for(Some(&item)));
        assert!(!Condition::equals("n", 10).holds_for(None));
    }

    #[test]
    fn lacks_attribute_holds_for_an_absent_item() {
        assert!(Condition::LacksAttribute("x".into()).holds_for(None));
        assert!(
            Condition::Any(vec![Condition::NotExists, Condition::equals("v", 1)]).holds_for(None)
        );
    }
}
