//! template.yaml as the single source of truth: the routes the local server serves and the
//! table and bucket the emulator bootstrap creates are read from it.

use std::collections::HashMap;

use serde_yaml_ng::Value;

/// template.yaml as this build was compiled with.
pub const TEMPLATE_YAML: &str = include_str!("../../template.yaml");

/// One HTTP route of one function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The function's logical id (`MxoTokenFunction`).
    pub function: String,
    /// The family its function serves (`mxo-token`): its `CUSTDATA_FAMILY`.
    pub family: String,
    /// Upper-case method, or `ANY`.
    pub method: String,
    pub path: String,
}

impl Route {
    /// `METHOD /path/{param}`: the route key API Gateway hands the function (HTTP API,
    /// payload 2.0), which its family dispatches on.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// One function resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionDef {
    pub logical_id: String,
    /// The cargo binary its artefact is built from (`Metadata.BuildProperties.Binary`).
    pub binary: String,
    /// The family or scheduled task it serves (`Environment.Variables.CUSTDATA_FAMILY`).
    pub family: String,
    /// `Properties.CodeUri`: the workspace root in template.yaml; in the template `sam build`
    /// writes, the artefact's directory beside it.
    pub code_uri: Option<String>,
    /// Runs on a `Schedule` event rather than (or besides) HTTP routes.
    pub scheduled: bool,
}

/// The table's key schema and TTL attribute, as declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDef {
    pub logical_id: String,
    pub partition_key: String,
    pub sort_key: String,
    pub ttl_attribute: Option<String>,
}

/// What custdata reads from the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub functions: Vec<FunctionDef>,
    pub routes: Vec<Route>,
    pub table: TableDef,
    pub bucket_logical_id: String,
}

fn text(value: &Value, path: &[&str]) -> Option<String> {
    let mut current = value;
    for key in path {
        current = current.get(*key)?;
    }
    current.as_str().map(str::to_string)
}

impl Template {
    /// The template this binary was built with.
    pub fn bundled() -> Result<Template, String> {
        Template::parse(TEMPLATE_YAML)
    }

    pub fn parse(yaml: &str) -> Result<Template, String> {
        let document: Value =
            serde_yaml_ng::from_str(yaml).map_err(|e| format!("template.yaml: {e}"))?;
        let resources = document
            .get("Resources")
            .and_then(Value::as_mapping)
            .ok_or("template.yaml has no Resources")?;
        let mut functions = Vec::new();
        let mut routes = Vec::new();
        let mut table = None;
        let mut bucket = None;
        for (id, resource) in resources {
            let id = id
                .as_str()
                .ok_or("a resource id is not a string")?
                .to_string();
            match text(resource, &["Type"]).as_deref() {
                Some("AWS::Serverless::Function") => {
                    let binary = text(resource, &["Metadata", "BuildProperties", "Binary"])
                        .ok_or_else(|| format!("{id} has no Metadata.BuildProperties.Binary"))?;
                    let family = text(
                        resource,
                        &["Properties", "Environment", "Variables", "CUSTDATA_FAMILY"],
                    )
                    .ok_or_else(|| {
                        format!("{id} has no Properties.Environment.Variables.CUSTDATA_FAMILY")
                    })?;
                    let events = resource
                        .get("Properties")
                        .and_then(|p| p.get("Events"))
                        .and_then(Value::as_mapping);
                    let mut scheduled = false;
                    for event in events.into_iter().flat_map(|events| events.values()) {
                        let kind = text(event, &["Type"]);
                        scheduled |= kind.as_deref() == Some("Schedule");
                        if kind.as_deref() != Some("HttpApi") {
                            continue;
                        }
                        let path = text(event, &["Properties", "Path"])
                            .ok_or_else(|| format!("{id}: an HttpApi event has no Path"))?;
                        let method = text(event, &["Properties", "Method"])
                            .ok_or_else(|| format!("{id}: an HttpApi event has no Method"))?;
                        routes.push(Route {
                            function: id.clone(),
                            family: family.clone(),
                            method: method.to_ascii_uppercase(),
                            path,
                        });
                    }
                    functions.push(FunctionDef {
                        code_uri: text(resource, &["Properties", "CodeUri"]),
                        logical_id: id,
                        binary,
                        family,
                        scheduled,
                    });
                }
                Some("AWS::DynamoDB::Table") => {
                    let schema = resource
                        .get("Properties")
                        .and_then(|p| p.get("KeySchema"))
                        .and_then(Value::as_sequence)
                        .ok_or_else(|| format!("{id} has no KeySchema"))?;
                    let key_of = |kind: &str| {
                        schema
                            .iter()
                            .find(|entry| text(entry, &["KeyType"]).as_deref() == Some(kind))
                            .and_then(|entry| text(entry, &["AttributeName"]))
                    };
                    table = Some(TableDef {
                        logical_id: id.clone(),
                        partition_key: key_of("HASH")
                            .ok_or_else(|| format!("{id} has no HASH key"))?,
                        sort_key: key_of("RANGE")
                            .ok_or_else(|| format!("{id} has no RANGE key"))?,
                        ttl_attribute: text(
                            resource,
                            &["Properties", "TimeToLiveSpecification", "AttributeName"],
                        ),
                    });
                }
                Some("AWS::S3::Bucket") => bucket = Some(id),
                _ => {}
            }
        }
        Ok(Template {
            functions,
            routes,
            table: table.ok_or("template.yaml declares no DynamoDB table")?,
            bucket_logical_id: bucket.ok_or("template.yaml declares no S3 bucket")?,
        })
    }
}

/// One segment of a route path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    /// `{name+}`: the rest of the path.
    Greedy(String),
}

/// A route path such as `/datastores/1.0.0/{workspaceId}/{apiName}`, matched the way
/// API Gateway HTTP APIs match: the most specific route wins, and a trailing slash (the
/// Monetate routes have one) is part of the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    segments: Vec<Segment>,
    trailing_slash: bool,
}

impl PathPattern {
    pub fn parse(path: &str) -> PathPattern {
        let segments = path
            .trim_matches('/')
            .split('/')
            .filter(|segment| !segment.is_empty())
            .map(
                |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => match name.strip_suffix('+') {
                        Some(greedy) => Segment::Greedy(greedy.to_string()),
                        None => Segment::Param(name.to_string()),
                    },
                    None => Segment::Literal(segment.to_string()),
                },
            )
            .collect();
        PathPattern {
            segments,
            trailing_slash: path.len() > 1 && path.ends_with('/'),
        }
    }

    /// Higher is more specific: literal segments count most, a greedy tail least.
    pub fn specificity(&self) -> (usize, usize, bool) {
        let literals = self
            .segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count();
        let greedy = self
            .segments
            .iter()
            .any(|s| matches!(s, Segment::Greedy(_)));
        (literals, self.segments.len(), !greedy)
    }

    /// The path parameters, if `path` (already without the query) matches.
    pub fn matches(&self, path: &str) -> Option<HashMap<String, String>> {
        let path = if self.trailing_slash {
            path.strip_suffix('/').filter(|rest| !rest.is_empty())?
        } else {
            path
        };
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let parts: Vec<&str> = if parts == [""] { Vec::new() } else { parts };
        let mut params = HashMap::new();
        for (index, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Greedy(name) => {
                    let rest = parts.get(index..).filter(|rest| !rest.is_empty())?;
                    params.insert(name.clone(), rest.join("/"));
                    return Some(params);
                }
                Segment::Literal(literal) => {
                    if parts.get(index) != Some(&literal.as_str()) {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    let part = parts.get(index).filter(|part| !part.is_empty())?;
                    let decoded = urlencoding::decode(part).ok()?.into_owned();
                    params.insert(name.clone(), decoded);
                }
            }
        }
        (parts.len() == self.segments.len()).then_some(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_segments_are_more_specific_than_parameters() {
        let literal = PathPattern::parse("/d/{ws}/{api}/golive/{ref}");
        let param = PathPattern::parse("/d/{ws}/{api}/{target}/{x}");
        assert!(literal.specificity() > param.specificity());
        let params = literal
            .matches("/d/MjIy/terms/golive/ds1")
            .expect("a match");
        assert_eq!(params.get("ref").map(String::as_str), Some("ds1"));
        assert_eq!(PathPattern::parse("/a/{b}").matches("/a/"), None);
        assert_eq!(PathPattern::parse("/a/{b}").matches("/a/x/y"), None);
        assert_eq!(
            PathPattern::parse("/a/{rest+}")
                .matches("/a/x/y")
                .and_then(|p| p.get("rest").cloned()),
            Some("x/y".to_string())
        );
        // A trailing slash belongs to the route, as in API Gateway.
        let slashed = PathPattern::parse("/v1/{retailer}/schema/");
        assert!(slashed.matches("/v1/dev/schema/").is_some());
        assert_eq!(slashed.matches("/v1/dev/schema"), None);
        assert_eq!(
            PathPattern::parse("/v1/{retailer}/schema").matches("/v1/dev/schema/"),
            None
        );
    }

    #[test]
    fn the_bundled_template_declares_the_table_and_a_route_per_function() {
        let template = Template::bundled().expect("template.yaml parses");
        assert_eq!(template.table.partition_key, "pk");
        assert_eq!(template.table.sort_key, "sk");
        assert_eq!(
            template.table.ttl_attribute.as_deref(),
            Some(crate::storage::EXPIRES_AT)
        );
        for function in template.functions.iter().filter(|f| !f.scheduled) {
            assert!(
                template
                    .routes
                    .iter()
                    .any(|r| r.function == function.logical_id),
                "{} has no route",
                function.logical_id
            );
        }
    }
}
