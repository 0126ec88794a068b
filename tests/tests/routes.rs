//! Every family's dispatch, in process and without sockets: each route key a family lists
//! reaches its handler through `http::dispatch` on an embedded app, and every other key
//! (another family's, or one no family serves) is answered as not served. API Gateway
//! invokes a function only for its own routes, so a listed key that falls through the
//! family's match would be a route that answers 405 in production.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use custdata::app::App;
use custdata::clock::SystemClock;
use custdata::http::{Family, dispatch, with_route_key};
use custdata::routes::FAMILIES;
use lambda_http::RequestExt;

/// A route key no family serves.
const UNSERVED: &str = "GET /custdata/v1/no-such-route";

/// What every family answers a route key it does not serve (`http::route_not_served` and
/// each vendor's own 405).
const NOT_SERVED: u16 = 405;

/// A value for a path parameter that its grammar (`custdata::names`) accepts and that picks
/// a route a handler serves: a datastore target, an Optimove function other than Login.
fn value_of(parameter: &str) -> &'static str {
    match parameter {
        "target" => "live",
        "function" => "GetLastDataUpdate",
        "category" => "general",
        _ => "abc",
    }
}

/// The request API Gateway hands a function for `key` (`METHOD /path/{param}`), its path
/// parameters filled in and no credential: a served route answers from its handler (an
/// auth error at the latest), never as not served.
fn request_for(key: &str) -> custdata::http::Request {
    let (method, route) = key.split_once(' ').expect("METHOD /path");
    let mut parameters = HashMap::new();
    let path: Vec<String> = route
        .split('/')
        .map(|segment| {
            match segment
                .strip_prefix('{')
                .and_then(|rest| rest.strip_suffix('}'))
            {
                Some(name) => {
                    parameters.insert(name.to_string(), value_of(name).to_string());
                    value_of(name).to_string()
                }
                None => segment.to_string(),
            }
        })
        .collect();
    // `ANY` is a route's method, never a request's.
    let method = if method == "ANY" { "POST" } else { method };
    let request = http::Request::builder()
        .method(method)
        .uri(format!("https://api.example{}", path.join("/")))
        .body(lambda_http::Body::Empty)
        .expect("a request");
    with_route_key(request, key).with_path_parameters(parameters)
}

async fn status(app: &Arc<App>, family: &'static Family, key: &str) -> (u16, String) {
    let response = dispatch(app.clone(), family, request_for(key)).await;
    let body = match response.body() {
        lambda_http::Body::Text(text) => text.clone(),
        _ => String::new(),
    };
    (response.status().as_u16(), body)
}

#[tokio::test]
async fn every_family_serves_its_route_keys_and_no_other() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (app, _) = App::embedded(dir.path(), Arc::new(SystemClock), "http://127.0.0.1:9")
        .expect("an embedded app");
    let app = Arc::new(app);
    let mut keys: BTreeSet<&str> = FAMILIES
        .iter()
        .flat_map(|family| family.routes.iter().copied())
        .collect();
    keys.insert(UNSERVED);
    let mut wrong = Vec::new();
    for &family in FAMILIES {
        assert!(!family.routes.is_empty(), "{} serves no route", family.name);
        for &key in &keys {
            let (status, body) = status(&app, family, key).await;
            let served = family.routes.contains(&key);
            if served && (status == NOT_SERVED || status == 404) {
                wrong.push(format!(
                    "{} does not serve its route {key:?}: {status} {body}",
                    family.name
                ));
            }
            if !served && status != NOT_SERVED {
                wrong.push(format!(
                    "{} answers {key:?}, not its route, with {status} {body}",
                    family.name
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn a_request_without_a_route_key_is_not_served() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (app, _) = App::embedded(dir.path(), Arc::new(SystemClock), "http://127.0.0.1:9")
        .expect("an embedded app");
    let app = Arc::new(app);
    for &family in FAMILIES {
        let request = http::Request::builder()
            .method("GET")
            .uri("https://api.example/custdata/v1/health")
            .body(lambda_http::Body::Empty)
            .expect("a request");
        let response = dispatch(app.clone(), family, request).await;
        assert_eq!(response.status().as_u16(), NOT_SERVED, "{}", family.name);
    }
}
