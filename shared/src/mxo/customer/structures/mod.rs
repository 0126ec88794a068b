//! Pull structures: per-tenant definitions of the name:value pairs a structure request
//! returns, nested as defined, each part gated by an eligibility rule. Rules and values are
//! data (JSON), checked when the structure is saved and evaluated per request.
//!
//! ```json
//! {"attributes": [
//!   {"name": "creditLimit",
//!    "value": {"datastore": {"apiName": "terms", "column": "creditLimit",
//!                            "pk": {"identifier": "customerKey"}, "sk": {"context": "productID"}}}},
//!   {"name": "atmOffer", "value": {"literal": "fee-free"},
//!    "when": {"all": [{"ge": [{"activityCount": {"proposition": "atm"}}, {"literal": 3}]},
//!                     {"eq": [{"context": "channel"}, {"literal": "app"}]}]}},
//!   {"name": "profile", "attributes": [{"name": "tier", "value": {"attribute": "tier"}}]}
//! ]}
//! ```
//!
//! This module holds the definition: its parts, rules and values, parsed and checked when
//! saved. [`evaluate`] evaluates a structure for a request, and [`store`] saves, loads,
//! removes and lists definitions.

mod evaluate;
mod store;

pub use evaluate::{Evaluator, Subject};
pub use store::{SaveError, list, load, remove, save, valid_name};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::customers::CustomerStore;
use crate::customers::{self, ActivityFilter};
use crate::domain::Problem;
use crate::domain::TenantId;
use crate::mxo::datastores::model::ApiName;
use crate::mxo::datastores::store as datastores;
use crate::storage::StorageError;

/// Nesting depth of a structure.
pub const MAX_DEPTH: usize = 5;
/// Nodes in one structure.
pub const MAX_NODES: usize = 200;

/// A value: where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Expr {
    /// A constant.
    Literal(Value),
    /// A context property sent with the request (`customerContext.properties`).
    Context(String),
    /// An identifier of the customer, by apiName (sent with the request or stored).
    Identifier(String),
    /// A customer attribute (from any surface).
    Attribute(String),
    /// A column of a live datastore row, read through the Datastores read function.
    Datastore(DatastoreRead),
    /// How many activities match.
    ActivityCount(ActivityFilter),
    /// Whole days since the latest matching activity (null if none).
    DaysSinceActivity(ActivityFilter),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DatastoreRead {
    pub api_name: String,
    pub column: String,
    pub pk: Box<Expr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sk: Option<Box<Expr>>,
}

/// An eligibility rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Rule {
    All(Vec<Rule>),
    Any(Vec<Rule>),
    Not(Box<Rule>),
    Eq([Expr; 2]),
    Ne([Expr; 2]),
    Lt([Expr; 2]),
    Le([Expr; 2]),
    Gt([Expr; 2]),
    Ge([Expr; 2]),
    /// The left value is one of the right value's items.
    In([Expr; 2]),
    /// The left string contains the right one, or the left array holds the right value.
    Contains([Expr; 2]),
    /// The value is present (not null).
    Exists(Expr),
}

/// One name:value pair of a structure, or a nested group of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Expr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Vec<Node>>,
    /// The part is returned only when the rule holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Rule>,
}

/// A pull structure's definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Structure {
    pub attributes: Vec<Node>,
}

fn problem(field: String, rule: impl Into<String>) -> Problem {
    Problem {
        row: None,
        field: Some(field),
        rule: rule.into(),
    }
}

/// What a structure refers to that must exist when it is saved.
#[derive(Default)]
struct References {
    attributes: Vec<(String, String)>,
    datastores: Vec<(String, String, String)>,
}

impl Structure {
    /// Parses a definition and checks its shape; `validate` checks what it refers to.
    pub fn parse(body: &Value) -> Result<Structure, Vec<Problem>> {
        let mut body = body.clone();
        if let Some(nodes) = body.get_mut("attributes").and_then(Value::as_array_mut) {
            nodes.iter_mut().for_each(expand_source);
        }
        let structure: Structure = serde_json::from_value(body).map_err(|error| {
            vec![problem(
                "body".into(),
                format!("not a structure definition: {error}"),
            )]
        })?;
        let mut problems = Vec::new();
        let mut count = 0;
        check_nodes(
            &structure.attributes,
            "attributes",
            1,
            &mut count,
            &mut problems,
        );
        if count > MAX_NODES {
            problems.push(problem(
                "attributes".into(),
                format!("at most {MAX_NODES} nodes, got {count}"),
            ));
        }
        if problems.is_empty() {
            Ok(structure)
        } else {
            Err(problems)
        }
    }

    /// Refuses a structure that names an unknown attribute, datastore or column.
    pub async fn validate(
        &self,
        store: CustomerStore<'_>,
        tenant: &TenantId,
    ) -> Result<Vec<Problem>, StorageError> {
        let mut references = References::default();
        for (index, node) in self.attributes.iter().enumerate() {
            collect_node(node, &format!("attributes[{index}]"), &mut references);
        }
        let mut problems = Vec::new();
        for (path, name) in references.attributes {
            if name.is_empty() || name.chars().count() > 200 {
                problems.push(problem(path, "an attribute name is 1 to 200 characters"));
                continue;
            }
            if !customers::attribute_known(store, tenant, &name).await? {
                problems.push(problem(
                    path,
                    format!("unknown customer attribute {name:?}"),
                ));
            }
        }
        for (path, api_name, column) in references.datastores {
            let Some(api_name) = ApiName::parse(&api_name) else {
                problems.push(problem(path, format!("unknown datastore {api_name:?}")));
                continue;
            };
            match datastores::load(store.table, tenant, &api_name).await? {
                None => problems.push(problem(path, format!("unknown datastore {api_name:?}"))),
                Some(state)
                    if !state
                        .definition
                        .definitions
                        .iter()
                        .any(|c| c.name == column) =>
                {
                    problems.push(problem(
                        path,
                        format!("datastore {api_name:?} has no column {column:?}"),
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(problems)
    }
}

/// The contract's shorthand, `{"name": "creditLimit", "source": "datastore:terms.creditLimit"}`
/// (also `context:`, `attribute:`, `identifier:`), becomes the full `value` form; a datastore
/// source is keyed by the customer's `customerKey`.
fn expand_source(node: &mut Value) {
    if let Some(children) = node.get_mut("attributes").and_then(Value::as_array_mut) {
        children.iter_mut().for_each(expand_source);
    }
    let Some(object) = node.as_object_mut() else {
        return;
    };
    if object.contains_key("value") {
        return;
    }
    let Some(Value::String(source)) = object.get("source").cloned() else {
        return;
    };
    let value = match source.split_once(':') {
        Some(("datastore", path)) => match path.split_once('.') {
            Some((api_name, column)) => {
                serde_json::json!({"datastore": {"apiName": api_name, "column": column,
                "pk": {"identifier": customers::CUSTOMER_KEY}}})
            }
            None => return,
        },
        Some((kind @ ("context" | "attribute" | "identifier"), name)) => {
            serde_json::json!({kind: name})
        }
        _ => return,
    };
    object.remove("source");
    object.insert("value".into(), value);
}

fn check_nodes(
    nodes: &[Node],
    path: &str,
    depth: usize,
    count: &mut usize,
    problems: &mut Vec<Problem>,
) {
    if depth > MAX_DEPTH {
        problems.push(problem(
            path.to_string(),
            format!("structures nest at most {MAX_DEPTH} levels"),
        ));
        return;
    }
    let mut names = std::collections::HashSet::new();
    for (index, node) in nodes.iter().enumerate() {
        *count += 1;
        let here = format!("{path}[{index}]");
        if node.name.is_empty() || node.name.chars().count() > 100 {
            problems.push(problem(
                format!("{here}.name"),
                "must be 1 to 100 characters",
            ));
        }
        if !names.insert(node.name.as_str()) {
            problems.push(problem(
                format!("{here}.name"),
                format!("{:?} appears twice at this level", node.name),
            ));
        }
        match (&node.value, &node.attributes) {
            (Some(_), None) => {}
            (None, Some(children)) => check_nodes(
                children,
                &format!("{here}.attributes"),
                depth + 1,
                count,
                problems,
            ),
            _ => problems.push(problem(here, "needs exactly one of value and attributes")),
        }
    }
}

fn collect_node(node: &Node, path: &str, references: &mut References) {
    if let Some(value) = &node.value {
        collect_expr(value, &format!("{path}.value"), references);
    }
    if let Some(rule) = &node.when {
        collect_rule(rule, &format!("{path}.when"), references);
    }
    for (index, child) in node.attributes.iter().flatten().enumerate() {
        collect_node(child, &format!("{path}.attributes[{index}]"), references);
    }
}

fn collect_rule(rule: &Rule, path: &str, references: &mut References) {
    match rule {
        Rule::All(rules) | Rule::Any(rules) => {
            for (index, rule) in rules.iter().enumerate() {
                collect_rule(rule, &format!("{path}[{index}]"), references);
            }
        }
        Rule::Not(rule) => collect_rule(rule, path, references),
        Rule::Exists(expr) => collect_expr(expr, path, references),
        Rule::Eq(pair)
        | Rule::Ne(pair)
        | Rule::Lt(pair)
        | Rule::Le(pair)
        | Rule::Gt(pair)
        | Rule::Ge(pair)
        | Rule::In(pair)
        | Rule::Contains(pair) => {
            for expr in pair {
                collect_expr(expr, path, references);
            }
        }
    }
}

fn collect_expr(expr: &Expr, path: &str, references: &mut References) {
    match expr {
        Expr::Attribute(name) => references.attributes.push((path.to_string(), name.clone())),
        Expr::Datastore(read) => {
            references.datastores.push((
                path.to_string(),
                read.api_name.clone(),
                read.column.clone(),
            ));
            collect_expr(&read.pk, path, references);
            if let Some(sk) = &read.sk {
                collect_expr(sk, path, references);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_definition_with_rules_parses_and_its_shape_is_checked() {
        let body = json!({"attributes": [
            {"name": "offer", "value": {"literal": "x"},
             "when": {"all": [{"ge": [{"activityCount": {"proposition": "atm"}}, {"literal": 3}]}, {"not": {"exists": {"context": "optOut"}}}]}},
            {"name": "group", "attributes": [{"name": "tier", "value": {"attribute": "tier"}}]}
        ]});
        Structure::parse(&body).expect("a valid definition");
        let both =
            json!({"attributes": [{"name": "x", "value": {"literal": 1}, "attributes": []}]});
        assert!(Structure::parse(&both).is_err());
        let unknown_operator =
            json!({"attributes": [{"name": "x", "value": {"literal": 1}, "when": {"like": []}}]});
        assert!(Structure::parse(&unknown_operator).is_err());
        let twice = json!({"attributes": [{"name": "x", "value": {"literal": 1}}, {"name": "x", "value": {"literal": 2}}]});
        assert!(Structure::parse(&twice).is_err());
    }

    #[test]
    fn the_contracts_source_shorthand_is_accepted() {
        let body = json!({"attributes": [{"name": "creditLimit", "source": "datastore:terms.creditLimit"},
                                         {"name": "segment", "source": "context:segment"}]});
        let structure = Structure::parse(&body).expect("the contract's example");
        assert_eq!(
            structure.attributes[1].value,
            Some(Expr::Context("segment".into()))
        );
        match &structure.attributes[0].value {
            Some(Expr::Datastore(read)) => {
                assert_eq!(
                    (read.api_name.as_str(), read.column.as_str()),
                    ("terms", "creditLimit")
                );
                assert_eq!(*read.pk, Expr::Identifier("customerKey".into()));
            }
            other => panic!("{other:?}"),
        }
    }
}
