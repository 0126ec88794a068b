//! The OpenAPI documents under `openapi/`: every route of template.yaml and every route only
//! the local server serves is in one, every documented operation has a route, the local
//! server serves them at `/custdata/v1/openapi`, and schemathesis (pinned in
//! scripts/requirements-tools.txt) finds every answer custdata gives to its generated
//! requests documented — status, content type and body — and no 5xx.
//!
//! The property-based run is bounded: 25 examples per operation, a fixed seed (the same
//! requests on every machine), and a wall-clock cap per document after which it fails.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use custdata::admin::ADMIN_ROUTE;
use custdata::storage::embedded::PRESIGNED_UPLOAD_PATH;
use custdata::template::Template;
use custdata_local::openapi::{DOCUMENTS, LIST_PATH};
use custdata_local::{ADMIN_TOKEN_FILE, Resolution, Router};
use custdata_tests::routes::{Objects, Tenant, furnish};
use custdata_tests::{
    Adapter, TestApp, admin, monetate, spawn_app_limited, spawn_app_on, workspace_root,
};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

/// The operations only custdata-local serves (not in template.yaml).
const LOCAL_ONLY: [(&str, &str); 4] = [
    ("POST", ADMIN_ROUTE),
    ("PUT", PRESIGNED_UPLOAD_PATH),
    ("GET", LIST_PATH),
    ("GET", "/custdata/v1/openapi/{surface}.json"),
];

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

/// Examples per operation, and the seed that makes the run the same everywhere.
const MAX_EXAMPLES: u32 = 25;
const SEED: u64 = 20_261_130;
/// What one document's run may take before it counts as a failure.
const RUN_CAP: Duration = Duration::from_secs(300);

/// `(METHOD, path)` of every operation of a document.
fn operations(document: &Value) -> Vec<(String, String)> {
    let paths = document["paths"].as_object().expect("a document has paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|method| item.get(**method).is_some())
                .map(|method| (method.to_uppercase(), path.clone()))
        })
        .collect()
}

/// The path with each `{parameter}` given a plain value, as a client would send it.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                "p1"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn every_route_is_documented_and_every_documented_operation_has_a_route() {
    let template = Template::bundled().expect("template.yaml parses");
    let router = Router::from_template(&template).expect("a router");
    let mut covered = HashSet::new();
    let mut unrouted = Vec::new();
    for document in &DOCUMENTS {
        let json = document
            .to_json("http://127.0.0.1:1")
            .expect("the document parses");
        assert_eq!(
            json["openapi"], "3.1.0",
            "{}: OpenAPI 3.1",
            document.surface
        );
        for (method, path) in operations(&json) {
            if LOCAL_ONLY.contains(&(method.as_str(), path.as_str())) {
                covered.insert(format!("{method} {path}"));
                continue;
            }
            match router.resolve(&method, &concrete(&path)) {
                Resolution::Found { route_key, .. } => {
                    covered.insert(route_key);
                }
                _ => unrouted.push(format!(
                    "{method} {path} (openapi/{}.yaml)",
                    document.surface
                )),
            }
        }
    }
    let undocumented: Vec<String> = template
        .routes
        .iter()
        .map(|route| format!("{} {}", route.method, route.path))
        .chain(
            LOCAL_ONLY
                .iter()
                .map(|(method, path)| format!("{method} {path}")),
        )
        .filter(|key| !covered.contains(key))
        .collect();
    assert!(
        undocumented.is_empty(),
        "routes in no OpenAPI document: {undocumented:#?}"
    );
    assert!(
        unrouted.is_empty(),
        "documented operations no route serves: {unrouted:#?}"
    );
}

#[tokio::test]
async fn the_local_server_lists_and_serves_every_document() {
    let app = spawn_app_on(Adapter::Embedded).await;
    let list: Value = app
        .client
        .get(app.url(LIST_PATH))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("JSON");
    let listed: BTreeSet<&str> = list["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .map(|entry| entry["url"].as_str().expect("a url"))
        .collect();
    let expected: Vec<String> = DOCUMENTS.iter().map(|document| document.url()).collect();
    assert_eq!(
        listed,
        expected.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    for document in &DOCUMENTS {
        let served = app
            .client
            .get(app.url(&document.url()))
            .send()
            .await
            .expect("get");
        assert_eq!(served.status(), 200, "{}", document.url());
        let served: Value = served.json().await.expect("JSON");
        assert_eq!(served["servers"], json!([{ "url": app.server.base_url }]));
        let mut written: Value = serde_yaml_ng::from_str(document.yaml).expect("YAML");
        written["servers"] = served["servers"].clone();
        assert_eq!(served, written, "{} is served as written", document.surface);
        assert!(
            served["info"]["title"]
                .as_str()
                .is_some_and(|t| !t.is_empty()),
            "{} has a title",
            document.surface
        );
    }
    let unknown = app
        .client
        .get(app.url("/custdata/v1/openapi/nope.json"))
        .send()
        .await
        .expect("get");
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.expect("JSON");
    assert!(
        body.to_string().contains("mxo-datastores.json"),
        "the 404 names the documents there are: {body}"
    );
    let posted = app
        .client
        .post(app.url(LIST_PATH))
        .send()
        .await
        .expect("post");
    assert_eq!(posted.status(), 405);
    assert_eq!(posted.headers()["allow"], "GET");
}

/// Path parameters fixed to the tenant's own objects, so that generated requests reach the
/// success paths and not only "not found". Left free: `target` and `schemaType` (the
/// documents enumerate them) and `keyId` (a generated deactivation would end the run's own
/// Monetate key).
const FIXED_PARAMETERS: [&str; 14] = [
    "workspaceId",
    "apiName",
    "stagingReference",
    "tableReference",
    "sk",
    "tid",
    "structureApiName",
    "resourceId",
    "updateId",
    "customuid",
    "retailer",
    "schemaName",
    "username",
    "customerId",
];

/// Credentials by the security scheme names every document uses, and the fixed parameters.
fn schemathesis_config(app: &TestApp, tenant: &Tenant, objects: &Objects) -> String {
    let bundle = &tenant.bundle;
    let assertion = monetate::assertion(
        &bundle.monetate.private_key_pem,
        &bundle.monetate.api_username,
        monetate::now(app),
        Algorithm::RS256,
    );
    let admin_token = std::fs::read_to_string(app.server.data_dir.join(ADMIN_TOKEN_FILE))
        .expect("the admin token");
    let schemes = [
        (
            "mxoClient",
            format!(
                "username = {}\npassword = {}",
                toml_string(&bundle.mxo.client_id),
                toml_string(&bundle.mxo.client_secret)
            ),
        ),
        (
            "mxoBearer",
            format!("bearer = {}", toml_string(&tenant.mxo_token)),
        ),
        (
            "monetateAssertion",
            format!("api_key = {}", toml_string(&format!("JWT {assertion}"))),
        ),
        (
            "monetateToken",
            format!(
                "api_key = {}",
                toml_string(&format!("Token {}", tenant.monetate_token))
            ),
        ),
        (
            "aixonKey",
            format!("api_key = {}", toml_string(&bundle.aixon.api_key)),
        ),
        (
            "optimoveToken",
            format!("api_key = {}", toml_string(&tenant.optimove_token)),
        ),
        (
            "optimoveKey",
            format!("api_key = {}", toml_string(&bundle.optimove.api_key)),
        ),
        (
            "adminBearer",
            format!("bearer = {}", toml_string(admin_token.trim())),
        ),
    ];
    let parameters: Vec<String> = FIXED_PARAMETERS
        .iter()
        .map(|name| format!("\"path.{name}\" = {}", toml_string(objects.get(name))))
        .collect();
    let auth = schemes
        .iter()
        .map(|(name, body)| format!("[auth.openapi.{name}]\n{body}\n"));
    std::iter::once(format!("[parameters]\n{}\n", parameters.join("\n")))
        .chain(auth)
        .collect::<Vec<_>>()
        .join("\n")
}

fn toml_string(value: &str) -> String {
    serde_json::to_string(value).expect("a string")
}

/// Runs schemathesis on one document against the server; its output, or why it failed.
async fn run_schemathesis(
    app: &TestApp,
    config: &std::path::Path,
    surface: &str,
) -> Result<String, String> {
    let tool = workspace_root().join("target/venv/bin/schemathesis");
    let work = config.parent().expect("a directory");
    let mut child = tokio::process::Command::new(&tool)
        .current_dir(work)
        .arg("--config-file")
        .arg(config)
        .arg("run")
        .arg(app.url(&format!("{LIST_PATH}/{surface}.json")))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            // Not the stateful phase: it follows links from one answer to the next request
            // and ends in the run's own credentials revoked (a listed Monetate key
            // deactivated), and its length is not bounded by the examples per operation.
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            &MAX_EXAMPLES.to_string(),
            "--seed",
            &SEED.to_string(),
            "--generation-database",
            "none",
            // One worker: threads parsing Python source at once trip a CPython 3.11 bug
            // (gh-106905) inside schemathesis.
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--no-color",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{} does not start ({e}): run scripts/ensure-tools.sh", tool.display()));
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let read = async {
        use tokio::io::AsyncReadExt;
        let (mut out, mut err) = (String::new(), String::new());
        let (mut stdout, mut stderr) = (stdout, stderr);
        let _ = tokio::join!(
            stdout.read_to_string(&mut out),
            stderr.read_to_string(&mut err)
        );
        (out, err, child.wait().await)
    };
    match tokio::time::timeout(RUN_CAP, read).await {
        Err(_) => Err(format!(
            "schemathesis on {surface} ran past {} s",
            RUN_CAP.as_secs()
        )),
        Ok((out, err, status)) => {
            let status = status.expect("schemathesis ends");
            if status.success() {
                Ok(out)
            } else {
                Err(format!("schemathesis on {surface}: {status}\n{out}\n{err}"))
            }
        }
    }
}

/// The summary lines of a run (operations, test cases, failures), for the log.
fn summary(output: &str) -> String {
    output
        .lines()
        .filter(|line| {
            [
                "API Operations",
                "Test Phases",
                "Test cases",
                "failures",
                "passed",
                "Seed",
            ]
            .iter()
            .any(|word| line.contains(word))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_every_answer_documented_and_no_server_error() {
    // Under Lambda's limits, as `custdata-local --lambda-limits` serves: the suite's HTTP
    // pass over every documented operation as a deployment would answer it.
    let app = spawn_app_limited(Adapter::Embedded, true).await;
    let tenant = Tenant::sign_in(&app, app.server.credentials.clone()).await;
    let objects = furnish(&app, &tenant).await;
    // Optimove's default of 50 calls per 10 s per client would answer most of the run 429 on
    // the test's stopped clock; the tenant's own limit is what this setting is for.
    let (status, body) = admin(
        &app,
        json!({"command": "optimove-rate-limit", "tenant": tenant.tenant(), "calls": 1_000_000, "per_seconds": 1}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let work = tempfile::tempdir().expect("a directory");
    let config = work.path().join("schemathesis.toml");
    std::fs::write(&config, schemathesis_config(&app, &tenant, &objects)).expect("config written");
    let mut failures = Vec::new();
    // The local document last: its admin route can revoke the credentials the others use.
    for document in &DOCUMENTS {
        let started = Instant::now();
        match run_schemathesis(&app, &config, document.surface).await {
            Ok(output) => eprintln!(
                "schemathesis {} in {:.1} s:\n{}",
                document.surface,
                started.elapsed().as_secs_f64(),
                summary(&output)
            ),
            Err(failure) => failures.push(failure),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
