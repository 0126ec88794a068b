//! Fuzzing entry points, one per body parser a route runs on input from the wire. The
//! cargo-fuzz targets under `fuzz/` call them, and so does the regression test that replays
//! every kept corpus input and every crash on stable (`tests/tests/fuzz_corpus.rs`).
//!
//! Each takes raw bytes, feeds them to the parser exactly as its route does, and panics only
//! when a rule of the project breaks: a refusal that names no rule, a row number outside the
//! body, an answer with a 5xx status. Parsers that need the store (the Optimove functions,
//! the Monetate token exchange) run through [`crate::http::dispatch`] on an embedded app in a
//! temporary directory, built once per process.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};

use crate::aixon::body::Format;
use crate::aixon::columns;
use crate::app::App;
use crate::clock::SystemClock;
use crate::domain::Problem;
use crate::http::{Request, dispatch, with_route_key};
use crate::monetate::{records, schemas};
use crate::mxo::customer::structures::Structure;
use crate::mxo::datastores::model::Definition;

/// An entry point: takes any bytes, panics only when a rule breaks.
pub type Target = fn(&[u8]);

/// Every target: its name (the directory of its corpus) and its entry point.
pub const TARGETS: &[(&str, Target)] = &[
    ("aixon_csv", aixon_csv),
    ("aixon_json", aixon_json),
    ("mxo_definition", mxo_definition),
    ("mxo_records", mxo_records),
    ("mxo_structure", mxo_structure),
    ("monetate_schema", monetate_schema),
    ("monetate_rows", monetate_rows),
    ("monetate_assertion", monetate_assertion),
    ("optimove_functions", optimove_functions),
];

fn check_problems(problems: &[Problem], rows: usize) {
    assert!(!problems.is_empty(), "a refusal lists at least one problem");
    for problem in problems {
        assert!(
            !problem.rule.trim().is_empty(),
            "a problem without a rule: {problem:?}"
        );
        if let Some(row) = problem.row {
            assert!(
                row <= rows + 2,
                "row {row} of a body of {rows} rows: {problem:?}"
            );
        }
    }
}

fn json_of(data: &[u8]) -> Option<Value> {
    serde_json::from_slice(data).ok()
}

fn aixon_body(format: Format, data: &[u8]) {
    let mut applied = 0;
    match columns::check_body(format, data, |_| applied += 1) {
        Ok(checked) => assert_eq!(checked.rows, applied, "every checked row is handed on"),
        Err(rejection) => {
            assert!(rejection.total >= rejection.problems.len());
            check_problems(&rejection.problems, data.len());
        }
    }
}

/// An AIXON body as `text/csv`.
pub fn aixon_csv(data: &[u8]) {
    aixon_body(Format::Csv, data);
}

/// An AIXON body as JSON (`{"header": [...], "data": [[...]]}`).
pub fn aixon_json(data: &[u8]) {
    aixon_body(Format::Json, data);
}

/// The seed's datastore definition, which the record target checks against.
fn seed_definition() -> &'static Definition {
    static DEFINITION: OnceLock<Definition> = OnceLock::new();
    DEFINITION.get_or_init(|| {
        Definition::parse(&json!({"name": "ProductTerms", "apiName": "terms", "primaryKey": "customerID", "secondaryKey": "productID",
            "definitions": [{"name": "customerID", "type": "TEXT"}, {"name": "productID", "type": "TEXT"}, {"name": "creditLimit", "type": "NUMERIC"},
                            {"name": "expires", "type": "DATETIME"}, {"name": "active", "type": "BOOLEAN"}, {"name": "tags", "type": "TEXT_LIST"}]}))
        .expect("the seed definition is valid")
    })
}

/// An MXO datastore definition (`POST /datastores/1.0.0/{workspaceId}`).
pub fn mxo_definition(data: &[u8]) {
    let Some(body) = json_of(data) else { return };
    match Definition::parse(&body) {
        Ok(definition) => {
            let _ = definition.check_record(&body);
        }
        Err(problems) => check_problems(&problems, 0),
    }
}

/// MXO records against the seed's definition (`POST …/{apiName}/{target}`).
pub fn mxo_records(data: &[u8]) {
    let Some(Value::Array(records)) = json_of(data) else {
        return;
    };
    for record in &records {
        if let Err(rule) = seed_definition().check_record(record) {
            assert!(!rule.trim().is_empty(), "a refused record names its rule");
        }
    }
}

/// An MXO pull structure (`PUT /custdata/v1/mxo/{sk}/structures/{name}`).
pub fn mxo_structure(data: &[u8]) {
    let Some(body) = json_of(data) else { return };
    if let Err(problems) = Structure::parse(&body) {
        check_problems(&problems, 0);
    }
}

/// A Monetate schema with a field of every type, the rows target's schema.
fn every_type_schema() -> &'static schemas::Schema {
    static SCHEMA: OnceLock<schemas::Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        schemas::parse_new_schema(&json!({"name": "crm", "type": "attribute", "fields": {
            "customer_id": {"data_type": "STRING", "identifier": true, "unique_key": true},
            "tier": {"data_type": "STRING"}, "ltv": {"data_type": "NUMBER"}, "opted_in": {"data_type": "BOOLEAN"},
            "signup": {"data_type": "DATETIME"}, "tags": {"data_type": "MULTI_STRING"},
            "category": {"data_type": "GOOGLE_PRODUCT_CATEGORY"}}}))
        .expect("the schema is valid")
    })
}

/// A Monetate schema body, as created (`POST …/schema/`) and as a PATCH of a schema.
pub fn monetate_schema(data: &[u8]) {
    let Some(body) = json_of(data) else { return };
    if let Err(problems) = schemas::parse_new_schema(&body) {
        check_problems(&problems, 0);
    }
    if let Err(problems) = schemas::patched(every_type_schema(), &body) {
        check_problems(&problems, 0);
    }
}

/// Monetate rows (`POST …/data/{schemaName}/`).
pub fn monetate_rows(data: &[u8]) {
    let Some(body) = json_of(data) else { return };
    let rows = body
        .get("schema_rows")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    match records::check_body(every_type_schema(), &body) {
        Ok(checked) => assert_eq!(checked.len(), rows, "every row is checked and kept"),
        Err(refusal) => {
            assert!(refusal.total >= refusal.problems.len());
            check_problems(&refusal.problems, rows);
        }
    }
}

/// An embedded app with one tenant, in a temporary directory, and a runtime to drive it.
struct Harness {
    runtime: tokio::runtime::Runtime,
    app: Arc<App>,
    optimove_key: String,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let dir = std::env::temp_dir().join(format!("custdata-fuzz-{}", uuid::Uuid::new_v4()));
        let (app, _) = App::embedded(&dir, Arc::new(SystemClock), "http://127.0.0.1:9")
            .expect("an embedded app");
        let app = Arc::new(app);
        let optimove_key = runtime.block_on(async {
            let bundle = crate::admin::execute(
                &app,
                "http://127.0.0.1:9",
                crate::admin::AdminCommand::CreateTenant {
                    name: "fuzz".into(),
                },
            )
            .await
            .expect("a tenant");
            let tenant = crate::domain::TenantId::parse("fuzz").expect("tenant");
            // The per-client limit would answer most inputs with 429 before any parsing.
            crate::optimove::set_rate_limit(
                &app,
                &tenant,
                crate::ratelimit::WindowLimit {
                    calls: i64::MAX / 2,
                    window_seconds: 1,
                },
            )
            .await
            .expect("a limit");
            bundle["optimove"]["api_key"]
                .as_str()
                .expect("an API key")
                .to_string()
        });
        Harness {
            runtime,
            app,
            optimove_key,
        }
    })
}

fn answer_status(family: &'static crate::http::Family, request: Request) -> u16 {
    let harness = harness();
    let response = harness
        .runtime
        .block_on(dispatch(harness.app.clone(), family, request));
    response.status().as_u16()
}

/// Splits an input into lines: the first ones shape the request, the rest is the body.
fn split_lines(data: &[u8], lines: usize) -> (Vec<String>, Vec<u8>) {
    let mut parts = data.splitn(lines + 1, |byte| *byte == b'\n');
    let head = (0..lines)
        .map(|_| String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned())
        .collect();
    (head, parts.next().unwrap_or_default().to_vec())
}

/// An Optimove function call: line 1 is the method, line 2 the function name and query
/// string, the rest the body.
pub fn optimove_functions(data: &[u8]) {
    let (head, body) = split_lines(data, 2);
    let method = match head[0].trim() {
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        _ => "GET",
    };
    let (function, query) = head[1].split_once('?').unwrap_or((&head[1], ""));
    let uri = format!("https://api.example/current/customers/fn?{query}");
    let Ok(request) = http::Request::builder()
        .method(method)
        .uri(uri.as_str())
        .header("x-api-key", &harness().optimove_key)
        .header("content-type", "application/json")
        .body(lambda_http::Body::Binary(body))
    else {
        return;
    };
    let parameters: HashMap<String, String> = [
        ("category".to_string(), "customers".to_string()),
        ("function".to_string(), function.to_string()),
    ]
    .into_iter()
    .collect();
    let request = lambda_http::RequestExt::with_path_parameters(request, parameters);
    let request = with_route_key(request, "ANY /current/{category}/{function}");
    let request = lambda_http::RequestExt::with_query_string_parameters(
        request,
        url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect::<HashMap<String, String>>(),
    );
    let status = answer_status(&crate::optimove::FUNCTIONS_FAMILY, request);
    assert!(
        status < 500,
        "{method} {function}?{query} answered {status}"
    );
}

/// A Monetate assertion (`Authorization: JWT …` on `GET /api/auth/v0/refresh/`).
pub fn monetate_assertion(data: &[u8]) {
    let assertion = String::from_utf8_lossy(data);
    let Ok(request) = http::Request::builder()
        .method("GET")
        .uri("https://api.example/api/auth/v0/refresh/")
        .header("authorization", format!("JWT {}", assertion.trim()))
        .body(lambda_http::Body::Empty)
    else {
        return;
    };
    let request = with_route_key(request, "GET /api/auth/v0/refresh/");
    let status = answer_status(&crate::monetate::AUTH_FAMILY, request);
    assert!(
        status == 400 || status == 401 || status == 403,
        "an assertion nobody signed answered {status}"
    );
}
