//! `Idempotency-Key` on the write routes of every surface (issue 16): a retry with the same
//! key and body gets the first answer again and applies nothing; the same key with another
//! body is 422; concurrent requests with one key apply once; without the header nothing
//! changes. Every case runs on the embedded store and on DynamoDB/S3 in the emulator.

use custdata::domain::TenantId;
use custdata::storage::{Query, keys, read_all};
use custdata_tests::monetate::token;
use custdata_tests::{TestApp, on_both_adapters};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const KEY: &str = "Idempotency-Key";
const REPLAYED: &str = "idempotent-replayed";

/// One answer: status, whether it is a replay, and the body as JSON (`null` when empty).
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    replayed: bool,
    body: Value,
}

/// Sends one request with an auth header, an optional `Idempotency-Key` and a body.
async fn send(
    app: &TestApp,
    (method, path): (Method, &str),
    auth: (&str, &str),
    key: Option<&str>,
    (content_type, body): (&str, &str),
) -> Answer {
    let mut request = app
        .client
        .request(method, app.url(path))
        .header(auth.0, auth.1)
        .header("content-type", content_type)
        .body(body.to_string());
    if let Some(key) = key {
        request = request.header(KEY, key);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let replayed = response.headers().get(REPLAYED).is_some();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON, got {status} {text:?}"))
    };
    Answer {
        status,
        replayed,
        body,
    }
}

/// The MXO side of the development tenant: its bearer header value and site key.
struct Mxo {
    bearer: String,
    site: String,
}

impl Mxo {
    async fn dev(app: &TestApp) -> Mxo {
        Mxo {
            bearer: format!("Bearer {}", app.mxo_token().await),
            site: app.server.credentials.mxo.site_key.clone(),
        }
    }

    async fn activity(&self, app: &TestApp, key: Option<&str>, body: &Value) -> Answer {
        let path = format!("/one/oauth2/rt/api/3.1.0/customer/{}/activity", self.site);
        let auth = ("authorization", self.bearer.as_str());
        let body = body.to_string();
        send(app, (Method::POST, &path), auth, key, (JSON, &body)).await
    }

    /// How many activities the customer's log holds.
    async fn logged(&self, app: &TestApp, tid: &Value) -> usize {
        let tid = tid.as_str().expect("a tid");
        let path = format!("/custdata/v1/mxo/{}/customers/{tid}/activities", self.site);
        let auth = ("authorization", self.bearer.as_str());
        let log = send(app, (Method::GET, &path), auth, None, (JSON, "")).await;
        assert_eq!(log.status, StatusCode::OK, "{:?}", log.body);
        log.body["activities"].as_array().map_or(0, Vec::len)
    }
}

const JSON: &str = "application/json";
const CSV: &str = "text/csv";

fn withdrawal(customer_key: &str, atm: &str) -> Value {
    json!({"customerContext": {"baseTouchpointUri": "https://bank.example", "identifiers": [{"apiName": "customerKey", "value": customer_key}]},
           "activities": [{"propositionCode": "atm", "dynamicPropositionCode": atm, "activityTypeCode": "withdrawal"}]})
}

async fn a_retried_mxo_activity_is_recorded_once(app: TestApp) {
    let mxo = Mxo::dev(&app).await;
    let body = withdrawal("C-1", "atm-0042");
    let first = mxo.activity(&app, Some("activity-1"), &body).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert!(!first.replayed);
    let retry = mxo.activity(&app, Some("activity-1"), &body).await;
    assert_eq!((retry.status, &retry.body), (first.status, &first.body));
    assert!(retry.replayed, "the retry is marked as the kept answer");
    assert_eq!(mxo.logged(&app, &first.body["tid"]).await, 1);
    // A new key is a new request.
    let second = mxo.activity(&app, Some("activity-2"), &body).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(mxo.logged(&app, &first.body["tid"]).await, 2);
}

async fn without_the_header_every_post_applies_as_before(app: TestApp) {
    let mxo = Mxo::dev(&app).await;
    let body = withdrawal("C-2", "atm-0001");
    let first = mxo.activity(&app, None, &body).await;
    let second = mxo.activity(&app, None, &body).await;
    assert_eq!(
        (first.status, second.status),
        (StatusCode::OK, StatusCode::OK)
    );
    assert!(!second.replayed);
    assert_eq!(mxo.logged(&app, &first.body["tid"]).await, 2);
}

async fn concurrent_requests_with_one_key_apply_once(app: TestApp) {
    let mxo = Mxo::dev(&app).await;
    let body = withdrawal("C-3", "atm-0003");
    let answers = futures::future::join_all(
        (0..8).map(|_| mxo.activity(&app, Some("one-key-for-eight"), &body)),
    )
    .await;
    let applied: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.status == StatusCode::OK)
        .collect();
    assert!(!applied.is_empty(), "{answers:?}");
    for answer in &answers {
        match answer.status {
            StatusCode::OK => assert_eq!(answer.body, applied[0].body),
            StatusCode::CONFLICT => assert_eq!(answer.body["errorCode"], "IDEMPOTENCY_KEY_IN_USE"),
            other => panic!("{other}: {:?}", answer.body),
        }
    }
    assert_eq!(mxo.logged(&app, &applied[0].body["tid"]).await, 1);
    let after = mxo.activity(&app, Some("one-key-for-eight"), &body).await;
    assert_eq!((after.status, after.replayed), (StatusCode::OK, true));
    assert_eq!(mxo.logged(&app, &applied[0].body["tid"]).await, 1);
}

/// The queued updates of a data cell (its update log).
async fn updates_of(app: &TestApp, cell: &str) -> usize {
    let tenant = TenantId::parse(&app.server.credentials.tenant).expect("tenant");
    let pk = keys::aixon_update(&tenant, cell, "-").pk;
    read_all(app.server.app.table.as_ref(), Query::partition(pk))
        .await
        .expect("the store answers")
        .len()
}

async fn a_retried_aixon_patch_is_queued_once(app: TestApp) {
    let api_key = app.server.credentials.aixon.api_key.clone();
    let auth = ("x-api-key", api_key.as_str());
    let create = app
        .client
        .put(app.url("/api_upload/v1/csv-upload"))
        .header("x-api-key", &api_key)
        .header("x-node-description", "crm")
        .header("content-type", CSV)
        .body("customuid,txt_region\ncrm001,north\n")
        .send()
        .await
        .expect("create");
    let created: Value = create.json().await.expect("JSON");
    let cell = created["message"]["RESOURCE_ID"].as_str().expect("a cell");
    let path = format!("/api_upload/v1/csv-upload/{cell}");
    let patch = (CSV, "customuid,txt_region\ncrm001,south\n");
    let first = send(&app, (Method::PATCH, &path), auth, Some("patch-1"), patch).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let retry = send(&app, (Method::PATCH, &path), auth, Some("patch-1"), patch).await;
    assert_eq!((retry.status, &retry.body), (first.status, &first.body));
    assert!(retry.replayed);
    assert_eq!(updates_of(&app, cell).await, 2, "the create and one patch");
    // The same key on another cell's path, or with other rows, is another request.
    let other = (CSV, "customuid,txt_region\ncrm001,east\n");
    let reused = send(&app, (Method::PATCH, &path), auth, Some("patch-1"), other).await;
    assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reused.body["status"], "error");
    assert_eq!(
        reused.body["message"].as_str().map(|m| m.contains(KEY)),
        Some(true)
    );
    assert_eq!(updates_of(&app, cell).await, 2);
}

async fn a_retried_monetate_row_post_is_written_once(app: TestApp) {
    let monetate = &app.server.credentials.monetate;
    let token = token(&app, &monetate.private_key_pem, &monetate.api_username).await;
    let auth_value = format!("Token {token}");
    let auth = ("authorization", auth_value.as_str());
    let base = format!("/api/data/v1/{}/production", monetate.retailer);
    let schema = json!({"name": "web-events", "type": "event", "fields": {
        "visitor": {"data_type": "STRING", "identifier": true},
        "at": {"data_type": "DATETIME", "event_time": true, "required": true}}});
    let schema_path = format!("{base}/schema/");
    let schema = schema.to_string();
    let created = send(
        &app,
        (Method::POST, &schema_path),
        auth,
        None,
        (JSON, &schema),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let rows = json!({"schema_rows": [{"visitor": "v-1", "at": "2026-11-23T08:00:00Z"}]});
    let rows = rows.to_string();
    let rows_path = format!("{base}/data/web-events/");
    let post = (Method::POST, rows_path.as_str());
    let first = send(&app, post.clone(), auth, Some("rows-1"), (JSON, &rows)).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    let retry = send(&app, post.clone(), auth, Some("rows-1"), (JSON, &rows)).await;
    assert_eq!((retry.status, &retry.body), (first.status, &first.body));
    assert!(retry.replayed);
    let uploads_path = format!("{base}/upload/web-events/");
    let uploads = send(&app, (Method::GET, &uploads_path), auth, None, (JSON, "")).await;
    assert_eq!(
        uploads.body["data"].as_array().map(Vec::len),
        Some(1),
        "one upload, not two: {:?}",
        uploads.body
    );
    let other = json!({"schema_rows": [{"visitor": "v-2", "at": "2026-11-23T08:00:00Z"}]});
    let reused = send(&app, post, auth, Some("rows-1"), (JSON, &other.to_string())).await;
    assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reused.body["meta"]["code"], 422, "{:?}", reused.body);
}

async fn a_retried_optimove_write_gets_its_first_answer(app: TestApp) {
    let api_key = app.server.credentials.optimove.api_key.clone();
    let auth = ("X-API-KEY", api_key.as_str());
    let add = (Method::POST, "/current/customers/AddCustomerAttribute");
    let attribute = json!({"Name": "VIP_Level", "Type": "VARCHAR(10)"}).to_string();
    let first = send(&app, add.clone(), auth, Some("add-1"), (JSON, &attribute)).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    // Applied again, the add would be refused as a duplicate; the retry gets the first answer.
    let retry = send(&app, add.clone(), auth, Some("add-1"), (JSON, &attribute)).await;
    assert_eq!((retry.status, &retry.body), (first.status, &first.body));
    assert!(retry.replayed);
    let upsert = (Method::PUT, "/current/customers/UpsertCustomer");
    let customer = json!({"CustomerId": "C1", "Attributes": [{"RealFieldName": "VIP_Level", "Value": "Gold"}]});
    let customer = customer.to_string();
    let first = send(&app, upsert.clone(), auth, Some("up-1"), (JSON, &customer)).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let retry = send(&app, upsert.clone(), auth, Some("up-1"), (JSON, &customer)).await;
    assert_eq!(
        retry.body["requestId"], first.body["requestId"],
        "the same answer, not a second write"
    );
    let other = json!({"CustomerId": "C2", "Attributes": []}).to_string();
    let reused = send(&app, upsert, auth, Some("up-1"), (JSON, &other)).await;
    assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reused.body["status"], 422, "{:?}", reused.body);
}

async fn a_key_reused_with_another_body_or_outside_the_rule_is_refused_in_the_mxo_shape(
    app: TestApp,
) {
    let mxo = Mxo::dev(&app).await;
    let first = mxo
        .activity(&app, Some("k-1"), &withdrawal("C-4", "atm-1"))
        .await;
    assert_eq!(first.status, StatusCode::OK);
    let reused = mxo
        .activity(&app, Some("k-1"), &withdrawal("C-4", "atm-2"))
        .await;
    assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reused.body["errorCode"], "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(reused.body["errors"][0]["field"], KEY);
    assert_eq!(mxo.logged(&app, &first.body["tid"]).await, 1);
    let too_long = "k".repeat(256);
    let refused = mxo
        .activity(&app, Some(&too_long), &withdrawal("C-4", "atm-3"))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.body["errors"][0]["field"], KEY);
    assert_eq!(mxo.logged(&app, &first.body["tid"]).await, 1);
}

async fn a_kept_answer_is_given_for_a_day_then_the_key_is_free(app: TestApp) {
    let mxo = Mxo::dev(&app).await;
    let body = withdrawal("C-5", "atm-5");
    let first = mxo.activity(&app, Some("daily"), &body).await;
    app.clock.advance_seconds(24 * 3600 - 60);
    // A new token each time: the first has expired.
    let mxo = Mxo::dev(&app).await;
    assert!(mxo.activity(&app, Some("daily"), &body).await.replayed);
    app.clock.advance_seconds(120);
    let mxo = Mxo::dev(&app).await;
    let after = mxo.activity(&app, Some("daily"), &body).await;
    assert_eq!((after.status, after.replayed), (StatusCode::OK, false));
    assert_eq!(mxo.logged(&app, &first.body["tid"]).await, 2);
}

on_both_adapters!(
    a_retried_mxo_activity_is_recorded_once,
    without_the_header_every_post_applies_as_before,
    concurrent_requests_with_one_key_apply_once,
    a_retried_aixon_patch_is_queued_once,
    a_retried_monetate_row_post_is_written_once,
    a_retried_optimove_write_gets_its_first_answer,
    a_key_reused_with_another_body_or_outside_the_rule_is_refused_in_the_mxo_shape,
    a_kept_answer_is_given_for_a_day_then_the_key_is_free,
);
