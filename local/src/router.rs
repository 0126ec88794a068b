//! Routes read from template.yaml, matched the way API Gateway HTTP APIs match them.

use std::collections::HashMap;

use custdata::http::Family;
use custdata::routes;
use custdata::template::{PathPattern, Template};

/// One route bound to the family that serves it.
struct BoundRoute {
    method: String,
    /// `METHOD /path/{param}`, as API Gateway's route key names it.
    key: String,
    pattern: PathPattern,
    family: &'static Family,
}

/// Every route of the template, most specific first.
pub struct Router {
    routes: Vec<BoundRoute>,
}

/// What a request's method and path resolve to.
pub enum Resolution {
    Found {
        family: &'static Family,
        /// The route template it matched (`GET /…/{param}`): what the logs name.
        route_key: String,
        path_parameters: HashMap<String, String>,
    },
    /// The path exists, not with this method; the methods it has.
    WrongMethod(Vec<String>),
    NotFound,
}

impl Router {
    pub fn from_template(template: &Template) -> Result<Router, String> {
        let mut routes = template
            .routes
            .iter()
            .map(|route| {
                let family = routes::family(&route.family).ok_or_else(|| {
                    format!("template.yaml routes {} {} to family {}, which shared/src/routes.rs does not know", route.method, route.path, route.family)
                })?;
                Ok(BoundRoute { method: route.method.clone(), key: route.key(), pattern: PathPattern::parse(&route.path), family })
            })
            .collect::<Result<Vec<_>, String>>()?;
        routes.sort_by_key(|route| std::cmp::Reverse(route.pattern.specificity()));
        Ok(Router { routes })
    }

    pub fn resolve(&self, method: &str, path: &str) -> Resolution {
        let mut allowed = Vec::new();
        for route in &self.routes {
            let Some(path_parameters) = route.pattern.matches(path) else {
                continue;
            };
            if route.method == method || route.method == "ANY" {
                return Resolution::Found {
                    family: route.family,
                    route_key: route.key.clone(),
                    path_parameters,
                };
            }
            allowed.push(route.method.clone());
        }
        if allowed.is_empty() {
            Resolution::NotFound
        } else {
            Resolution::WrongMethod(allowed)
        }
    }
}
