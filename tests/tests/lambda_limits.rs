//! Lambda's limits where the code runs (`custdata-local --lambda-limits`, and every Lambda):
//! an Optimove listing page whose answer would exceed Lambda's 6 MB response is refused in
//! Optimove's shape with a `$top` that fits, and that `$top` is then served. The same page
//! is served whole without the limits (the local server's default). Embedded store only:
//! the refusal happens in the dispatch both adapters share, after the store answered, and
//! seeding 8 MB of attributes on the emulator takes minutes.

use custdata::app::LAMBDA_LIMITS;
use custdata::customers::{self, Identifier, Upsert};
use custdata_tests::{Adapter, TestApp, spawn_app_limited};
use serde_json::{Value, json};

const CUSTOMERS: usize = 1_000;
const ATTRIBUTES: usize = 10;
/// 1,000 customers × 10 attributes × 800 characters: an 8 MB page.
const VALUE_LENGTH: usize = 800;

async fn seed(app: &TestApp) {
    let key = &app.server.credentials.optimove.api_key;
    for n in 0..ATTRIBUTES {
        let added = app
            .client
            .post(app.url("/current/customers/AddCustomerAttribute"))
            .header("x-api-key", key)
            .json(&json!({"Name": format!("Long{n}"), "Type": "VARCHAR(4000)"}))
            .send()
            .await
            .expect("add attribute");
        assert_eq!(added.status(), 200, "{:?}", added.text().await);
    }
    let tenant = custdata::domain::TenantId::parse(&app.server.credentials.tenant).expect("tenant");
    let upserts: Vec<Upsert> = (0..CUSTOMERS)
        .map(|c| Upsert {
            key: Identifier::customer_key(format!("C{c:04}")),
            identifiers: Vec::new(),
            attributes: (0..ATTRIBUTES)
                .map(|n| (format!("Long{n}"), json!("x".repeat(VALUE_LENGTH))))
                .collect(),
            items: Vec::new(),
        })
        .collect();
    let now = custdata::clock::Clock::now_millis(&app.clock);
    for chunk in upserts.chunks(250) {
        customers::upsert_many(app.server.app.customers(), &tenant, chunk, "test", now)
            .await
            .expect("customers");
    }
}

async fn page(app: &TestApp, top: u64) -> (u16, String) {
    let names: Vec<String> = (0..ATTRIBUTES).map(|n| format!("Long{n}")).collect();
    let response = app
        .client
        .get(app.url(&format!(
            "/custdata/v1/optimove/customers?$top={top}&CustomerAttributes={}",
            names.join(";")
        )))
        .header("x-api-key", &app.server.credentials.optimove.api_key)
        .send()
        .await
        .expect("listing");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_over_lambdas_response_limit_names_a_top_that_fits() {
    let app = spawn_app_limited(Adapter::Embedded, true).await;
    seed(&app).await;
    let (status, body) = page(&app, CUSTOMERS as u64).await;
    assert_eq!(status, 400, "{}", &body[..body.len().min(300)]);
    let error: Value = serde_json::from_str(&body).expect("Optimove's JSON error");
    let message = error.to_string();
    assert!(
        message.contains("Lambda function can return") && message.contains("6275072"),
        "the error says why and names the limit: {message}"
    );
    let advised: u64 = message
        .split("$top=")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the error names a $top: {message}"));
    assert!(advised > 0 && advised < CUSTOMERS as u64, "{advised}");
    let (status, body) = page(&app, advised).await;
    assert_eq!(status, 200, "the advised page is served");
    assert!(body.len() <= LAMBDA_LIMITS.response_payload);
    let served: Value = serde_json::from_str(&body).expect("a JSON page");
    assert_eq!(served.as_array().map(Vec::len), Some(advised as usize));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_limits_the_same_page_is_served_whole() {
    let app = spawn_app_limited(Adapter::Embedded, false).await;
    seed(&app).await;
    let (status, body) = page(&app, CUSTOMERS as u64).await;
    assert_eq!(status, 200);
    assert!(
        body.len() > LAMBDA_LIMITS.response_payload,
        "{}",
        body.len()
    );
    let served: Value = serde_json::from_str(&body).expect("a JSON page");
    assert_eq!(served.as_array().map(Vec::len), Some(CUSTOMERS));
}
