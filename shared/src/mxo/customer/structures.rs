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

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::app::App;
use crate::customers::{self, ActivityFilter, Customer};
use crate::domain::Problem;
use crate::domain::TenantId;
use crate::mxo::datastores::model::ApiName;
use crate::mxo::datastores::store as datastores;
use crate::storage::{Condition, Item, Query, StorageError, keys, read_all};

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
        app: &App,
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
            if !customers::attribute_known(app, tenant, &name).await? {
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
            match datastores::load(app.table.as_ref(), tenant, &api_name).await? {
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
    app: &'a App,
    subject: Subject<'a>,
    datastore_reads: RowCache,
}

impl<'a> Evaluator<'a> {
    pub fn new(app: &'a App, subject: Subject<'a>) -> Self {
        Evaluator {
            app,
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
            self.app.table.as_ref(),
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

/// Parses, checks and stores a structure definition (the admin route and the admin CLI).
pub async fn save(
    app: &App,
    tenant: &TenantId,
    name: &str,
    body: &Value,
) -> Result<Structure, SaveError> {
    if !valid_name(name) {
        return Err(SaveError::Invalid(vec![problem(
            "structureApiName".into(),
            crate::names::STRUCTURE_NAME.rule,
        )]));
    }
    let definition = Structure::parse(body).map_err(SaveError::Invalid)?;
    let problems = definition.validate(app, tenant).await?;
    if !problems.is_empty() {
        return Err(SaveError::Invalid(problems));
    }
    let key = keys::structure(tenant, name);
    let item = Item::new(key.pk, key.sk)
        .with("definition", serde_json::json!(definition))
        .with("updated", app.clock.now_millis());
    app.table.put(item, Condition::Always).await?;
    Ok(definition)
}

pub async fn load(
    app: &App,
    tenant: &TenantId,
    name: &str,
) -> Result<Option<Structure>, StorageError> {
    if !valid_name(name) {
        return Ok(None);
    }
    let item = app.table.get(&keys::structure(tenant, name)).await?;
    Ok(item
        .and_then(|item| item.get("definition").cloned())
        .and_then(|definition| serde_json::from_value(definition).ok()))
}

/// Deletes a structure; false if there was none.
pub async fn remove(app: &App, tenant: &TenantId, name: &str) -> Result<bool, StorageError> {
    if !valid_name(name) {
        return Ok(false);
    }
    Ok(app
        .table
        .delete(&keys::structure(tenant, name), Condition::Always)
        .await?
        .is_some())
}

/// Every structure of a tenant, by name.
pub async fn list(app: &App, tenant: &TenantId) -> Result<Vec<String>, StorageError> {
    let items = read_all(
        app.table.as_ref(),
        Query::partition(keys::structures_pk(tenant)).limit(1000),
    )
    .await?;
    Ok(items.into_iter().map(|item| item.sk).collect())
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
