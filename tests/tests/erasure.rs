//! One erasure, every surface: a customer known to all four surfaces is erased through each
//! surface's erasure route in turn (a fresh tenant per case), and afterwards no read route of
//! template.yaml — read from it, so a new read route is covered without touching this file —
//! serves any of the customer's values, while before the erasure each value was served by at
//! least one of them. The answer lists, per surface, what went. The access export shows
//! everything first, to any vendor's credential of the tenant, and nothing of another's.
//! Runs on the embedded store and on DynamoDB/S3 in the emulator.

use custdata::template::{Route, Template};
use custdata_tests::routes::{
    CUSTOMER, Call, Credential, EXPORT_PATH, JSON, MARK, Objects, Tenant, Vendor, calls_for,
    furnish, send, today, vendor_of,
};
use custdata_tests::{TestApp, create_tenant, on_both_adapters};
use reqwest::Method;
use serde_json::{Value, json};

/// A datastore row keyed by the customer's key; `furnish` keys its rows by another customer.
const DATASTORE_VALUE: &str = "P-erase-me";

/// Every value of the customer's that some surface stores, by the surface that stores it.
fn customer_values() -> Vec<(&'static str, String)> {
    vec![
        ("MXO activity", format!("atm-{MARK}")),
        ("Optimove attribute", format!("{MARK}-secret")),
        ("AIXON row", format!("{MARK}-north")),
        ("Monetate row", format!("{MARK}-gold")),
        ("MXO datastore row", DATASTORE_VALUE.to_string()),
    ]
}

/// Whether a route only reads: a GET, or one of the POST lookups.
fn reads(call: &Call) -> bool {
    call.method == Method::GET || call.path.ends_with("/lookup")
}

fn call(method: Method, path: String, body: Option<Value>) -> Call {
    Call {
        method,
        path,
        headers: Vec::new(),
        content_type: body.as_ref().map(|_| JSON),
        body: body.map(|body| body.to_string()),
        names_a: true,
        exchange: false,
    }
}

/// The customer on every surface: `furnish`'s objects, and datastore rows keyed by its key
/// in the live and the staging table.
async fn furnished(app: &TestApp) -> (Tenant, Objects) {
    let a = Tenant::sign_in(app, app.server.credentials.clone()).await;
    let objects = furnish(app, &a).await;
    let rows = json!([{"customerID": CUSTOMER, "productID": DATASTORE_VALUE, "creditLimit": 1, "expires": 1507676400000_i64}]);
    for target in ["live", "staging"] {
        let path = format!(
            "/datastores/1.0.0/{}/terms/{target}",
            a.bundle.mxo.workspace_id
        );
        let (status, body) = send(
            app,
            &call(Method::POST, path, Some(rows.clone())),
            &a.own(Vendor::Mxo, false),
        )
        .await;
        assert!((200..300).contains(&status), "{status} {body}");
    }
    (a, objects)
}

/// Every read call of every route, on the customer: datastore reads by its key.
fn read_calls(template: &Template, objects: &Objects, today: &str) -> Vec<(Route, Call)> {
    let mut calls = Vec::new();
    for route in &template.routes {
        for mut call in calls_for(route, objects, today) {
            if !reads(&call) {
                continue;
            }
            call.path = call.path.replace("C-A", CUSTOMER);
            call.body = call.body.map(|body| body.replace("C-A", CUSTOMER));
            calls.push((route.clone(), call));
        }
    }
    calls
}

/// The answers of every read call, signed in afresh (the clock moves a second per call, so
/// per-second limits never decide an answer).
async fn read_everything(app: &TestApp, calls: &[(Route, Call)]) -> Vec<(String, u16, String)> {
    let a = Tenant::sign_in(app, app.server.credentials.clone()).await;
    let mut answers = Vec::new();
    for (route, call) in calls {
        app.clock.advance_millis(1_000);
        let credential = a.own(vendor_of(&route.family), call.exchange);
        let (status, body) = send(app, call, &credential).await;
        let what = format!("{} {} ({})", call.method, call.path, route.path);
        assert!(status < 500, "{what}: {status} {body}");
        answers.push((what, status, body));
    }
    answers
}

async fn erased_everywhere_by(app: TestApp, erasure: fn(&Tenant, &Objects) -> (Call, Vendor)) {
    let template = Template::bundled().expect("template.yaml parses");
    let (a, objects) = furnished(&app).await;
    let calls = read_calls(&template, &objects, &today(&app));
    let before = read_everything(&app, &calls).await;
    for (surface, value) in customer_values() {
        assert!(
            before
                .iter()
                .any(|(_, status, body)| *status == 200 && body.contains(&value)),
            "before the erasure no read route shows the {surface} ({value})"
        );
    }

    let (erase, vendor) = erasure(&a, &objects);
    let (status, body) = send(&app, &erase, &a.own(vendor, false)).await;
    assert_eq!(status, 200, "{} {}: {body}", erase.method, erase.path);
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    let surfaces = ["surfaces", "SURFACES"]
        .iter()
        .find_map(|name| {
            answer.get(*name).or_else(|| {
                // Monetate's envelope is `data`, AIXON's `message`.
                ["data", "message"]
                    .iter()
                    .find_map(|envelope| answer.get(*envelope)?.get(*name))
            })
        })
        .unwrap_or_else(|| panic!("the answer lists the surfaces: {body}"));
    assert_eq!(surfaces["customers"]["complete"], true, "{body}");
    assert_eq!(surfaces["aixon"]["rows"], 1, "{body}");
    assert_eq!(surfaces["monetate"]["rows"], 1, "{body}");
    assert_eq!(
        surfaces["datastores"]["rows"], 2,
        "live and staging: {body}"
    );

    let after = read_everything(&app, &calls).await;
    for (what, status, body) in &after {
        for (surface, value) in customer_values() {
            assert!(
                !body.contains(&value),
                "after the erasure {what} shows the {surface}: {status} {body}"
            );
        }
    }
    // The rows of another customer stay.
    let other = call(
        Method::GET,
        format!(
            "/datastores/1.0.0/{}/terms/live?pk=C-A",
            a.bundle.mxo.workspace_id
        ),
        None,
    );
    let (status, body) = send(&app, &other, &a.own(Vendor::Mxo, false)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("P-{MARK}")), "{body}");
}

async fn mxo_delete_erases_every_surface(app: TestApp) {
    erased_everywhere_by(app, |a, _| {
        let path = format!(
            "/one/oauth2/rt/api/3.1.0/customer/{}",
            a.bundle.mxo.site_key
        );
        let body = json!({"identifier": {"apiName": "customerKey", "value": CUSTOMER}});
        (call(Method::DELETE, path, Some(body)), Vendor::Mxo)
    })
    .await;
}

async fn aixon_erasure_erases_every_surface(app: TestApp) {
    erased_everywhere_by(app, |_, _| {
        let path = format!("/custdata/v1/aixon/customers/{CUSTOMER}");
        (call(Method::DELETE, path, None), Vendor::Aixon)
    })
    .await;
}

async fn monetate_erasure_erases_every_surface(app: TestApp) {
    erased_everywhere_by(app, |a, _| {
        let path = format!(
            "/custdata/v1/monetate/{}/customers/{CUSTOMER}",
            a.bundle.monetate.retailer
        );
        (call(Method::DELETE, path, None), Vendor::Monetate)
    })
    .await;
}

async fn optimove_erasure_erases_every_surface(app: TestApp) {
    erased_everywhere_by(app, |_, _| {
        let path = format!("/custdata/v1/optimove/customers/{CUSTOMER}");
        (call(Method::DELETE, path, None), Vendor::Optimove)
    })
    .await;
}

async fn the_export_shows_everything_to_any_vendors_credential_of_the_tenant(app: TestApp) {
    let (a, objects) = furnished(&app).await;
    let export = |query: &str| call(Method::GET, format!("{EXPORT_PATH}{query}"), None);
    let by_key = export(&format!("?apiName=customerKey&value={CUSTOMER}"));
    let mut documents = Vec::new();
    for credential in a.credentials() {
        if matches!(
            credential,
            Credential::MxoClient { .. }
                | Credential::MonetateAssertion { .. }
                | Credential::OptimoveLogin { .. }
        ) {
            continue;
        }
        app.clock.advance_millis(1_000);
        let (status, body) = send(&app, &by_key, &credential).await;
        assert_eq!(status, 200, "{credential:?}: {body}");
        let document: Value = serde_json::from_str(&body).expect("JSON");
        for (surface, value) in customer_values() {
            assert!(
                body.contains(&value),
                "the export lacks the {surface}: {body}"
            );
        }
        assert_eq!(document["customer"]["tid"], objects.tid.as_str());
        let history = &document["customer"]["attributeHistory"];
        assert!(
            history.to_string().contains(&format!("{MARK}-secret")),
            "the attribute's change is in its history: {history}"
        );
        assert!(
            !body.contains(&format!("P-{MARK}")),
            "another customer's row: {body}"
        );
        documents.push(document);
    }
    assert_eq!(documents.len(), 5, "every vendor's API credential");
    assert!(documents.windows(2).all(|pair| pair[0] == pair[1]));

    let by_tid = export(&format!("?tid={}", objects.tid));
    let (status, body) = send(&app, &by_tid, &a.own(Vendor::Mxo, false)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("JSON"),
        documents[0]
    );

    let (status, body) = send(&app, &by_key, &Credential::Nothing).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = send(
        &app,
        &export("?apiName=customerKey"),
        &a.own(Vendor::Aixon, false),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("value"), "{body}");

    // Another tenant's credentials see nothing of it.
    let b = Tenant::sign_in(&app, create_tenant(&app, "Tenant B").await).await;
    for credential in [b.own(Vendor::Mxo, false), b.own(Vendor::Monetate, false)] {
        let (status, body) = send(&app, &by_key, &credential).await;
        assert_eq!(status, 404, "{body}");
        assert!(!body.contains(MARK), "{body}");
    }
}

/// Whether any file under `dir` holds `needle`, and which.
fn file_holding(dir: &std::path::Path, needle: &[u8]) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).expect("the data directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            if let Some(found) = file_holding(&path, needle) {
                return Some(found);
            }
        } else if std::fs::read(&path)
            .expect("a readable file")
            .windows(needle.len())
            .any(|window| window == needle)
        {
            return Some(path);
        }
    }
    None
}

/// The embedded store's files keep nothing of an erased customer: redb leaves a deleted
/// value in a free page until it reuses it, so a complete erasure overwrites the free pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erased_values_are_not_in_the_data_directorys_files() {
    let app = custdata_tests::spawn_app_on(custdata_tests::Adapter::Embedded).await;
    let (a, _) = furnished(&app).await;
    let dir = app.server.data_dir.clone();
    for (surface, value) in customer_values() {
        assert!(
            file_holding(&dir, value.as_bytes()).is_some(),
            "before the erasure the files hold the {surface} (else this search proves nothing)"
        );
    }
    let path = format!(
        "/one/oauth2/rt/api/3.1.0/customer/{}",
        a.bundle.mxo.site_key
    );
    let body = json!({"identifier": {"apiName": "customerKey", "value": CUSTOMER}});
    let erase = call(Method::DELETE, path, Some(body));
    let (status, body) = send(&app, &erase, &a.own(Vendor::Mxo, false)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""complete":true"#), "{body}");
    for (surface, value) in customer_values() {
        assert_eq!(
            file_holding(&dir, value.as_bytes()),
            None,
            "after the erasure a file still holds the {surface} ({value})"
        );
    }
}

on_both_adapters!(
    mxo_delete_erases_every_surface,
    aixon_erasure_erases_every_surface,
    monetate_erasure_erases_every_surface,
    optimove_erasure_erases_every_surface,
    the_export_shows_everything_to_any_vendors_credential_of_the_tenant,
);
