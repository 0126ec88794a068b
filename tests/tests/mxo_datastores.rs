//! MXO Datastores API 1.0.0 over HTTP, as an MXO client uses it: every case runs on the
//! embedded store and on DynamoDB/S3 in the emulator.

use std::time::Duration;

use custdata::clock::Clock;
use custdata::domain::TenantId;
use custdata::mxo::datastores::model::ApiName;
use custdata::mxo::datastores::store;
use custdata::storage::{Query, keys};
use custdata_tests::{TestApp, create_tenant, mxo_token_for, on_both_adapters, raw_request};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The seed's create body, verbatim.
const SEED_CREATE: &str = r#"{ "name": "ProductTerms", "apiName": "terms", "primaryKey": "customerID", "secondaryKey": "productID", "definitions": [{ "name": "customerID", "type": "TEXT" }, { "name": "productID", "type": "TEXT" }, { "name": "creditLimit", "type": "NUMERIC" }, { "name": "expires", "type": "DATETIME" }] }"#;

/// The seed's staging body, verbatim.
const SEED_STAGE: &str = r#"[{ "customerID": "ABC-123-45678", "productID": "YP-25", "creditLimit": 11000, "expires": 1507676400000 }, { "customerID": "ABC-123-45678", "productID": "KF-40", "creditLimit": 2000, "expires": 1507676400000 }, { "customerID": "ABC-123-XYZZY", "productID": "YP-25", "creditLimit": 300000, "expires": 1507676400000 }]"#;

/// A client of one tenant: its token and workspace.
struct Client<'a> {
    app: &'a TestApp,
    token: String,
    workspace: String,
}

impl<'a> Client<'a> {
    async fn dev(app: &'a TestApp) -> Client<'a> {
        Client {
            app,
            token: app.mxo_token().await,
            workspace: app.server.credentials.mxo.workspace_id.clone(),
        }
    }

    async fn of(app: &'a TestApp, tenant: &str) -> Client<'a> {
        let bundle = create_tenant(app, tenant).await;
        let token = mxo_token_for(app, &bundle.mxo.client_id, &bundle.mxo.client_secret).await;
        Client {
            app,
            token,
            workspace: bundle.mxo.workspace_id,
        }
    }

    fn url(&self, rest: &str) -> String {
        self.app
            .url(&format!("/datastores/1.0.0/{}{rest}", self.workspace))
    }

    async fn send(&self, method: Method, rest: &str, body: Option<&str>) -> (StatusCode, Value) {
        let mut request = self
            .app
            .client
            .request(method, self.url(rest))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).expect("a JSON body")
            },
        )
    }

    async fn create_seed_datastore(&self) {
        let (status, body) = self.send(Method::POST, "", Some(SEED_CREATE)).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body, Value::Null, "201 with an empty body");
    }

    async fn reference(&self, target: &str) -> String {
        let (status, body) = self
            .send(Method::GET, &format!("/terms/{target}/reference"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        body["referenceId"]
            .as_str()
            .expect("referenceId")
            .to_string()
    }

    async fn live_limit(&self, customer: &str, product: &str) -> Option<Value> {
        let (status, body) = self
            .send(
                Method::GET,
                &format!("/terms/live?pk={customer}&sk={product}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body.as_array()
            .and_then(|rows| rows.first())
            .map(|row| row["creditLimit"].clone())
    }
}

fn rows(values: &[(&str, &str, i64)]) -> String {
    let rows: Vec<Value> = values
        .iter()
        .map(|(customer, product, limit)| json!({"customerID": customer, "productID": product, "creditLimit": limit}))
        .collect();
    json!(rows).to_string()
}

async fn the_seed_flow_creates_stages_goes_live_and_reads_back(app: TestApp) {
    let client = Client::dev(&app).await;
    client.create_seed_datastore().await;

    let (status, results) = client
        .send(Method::POST, "/terms/staging", Some(SEED_STAGE))
        .await;
    assert_eq!(status, 200, "{results}");
    let results = results.as_array().expect("one result per record");
    assert_eq!(results.len(), 3);
    for (result, (customer, product)) in results.iter().zip([
        ("ABC-123-45678", "YP-25"),
        ("ABC-123-45678", "KF-40"),
        ("ABC-123-XYZZY", "YP-25"),
    ]) {
        assert_eq!(result["result"], "204", "a string, not a number: {result}");
        assert_eq!(result["primaryKey"], customer);
        assert_eq!(result["secondaryKey"], product);
        let url = result["url"].as_str().expect("url");
        assert!(
            url.starts_with(&format!(
                "{}/datastores/1.0.0/{}/terms/staging?pk={customer}&sk={product}",
                app.server.base_url, client.workspace
            )),
            "{url}"
        );
    }
    assert_eq!(
        client.live_limit("ABC-123-45678", "YP-25").await,
        None,
        "nothing is live before go-live"
    );

    let reference = client.reference("staging").await;
    assert!(
        reference.starts_with("ds")
            && reference.len() == 34
            && reference[2..].chars().all(|c| c.is_ascii_hexdigit()),
        "{reference}"
    );
    let (status, body) = client
        .send(Method::POST, &format!("/terms/golive/{reference}"), None)
        .await;
    assert_eq!((status, body), (StatusCode::OK, Value::Null));

    let (status, both) = client
        .send(Method::GET, "/terms/live?pk=ABC-123-45678", None)
        .await;
    assert_eq!(status, 200);
    let mut products: Vec<&str> = both
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["productID"].as_str())
        .collect();
    products.sort();
    assert_eq!(products, vec!["KF-40", "YP-25"]);
    let (_, one) = client
        .send(Method::GET, "/terms/live?pk=ABC-123-45678&sk=YP-25", None)
        .await;
    assert_eq!(
        one,
        json!([{"customerID": "ABC-123-45678", "productID": "YP-25", "creditLimit": 11000, "expires": 1507676400000_i64}])
    );
    assert_eq!(
        client.live_limit("ABC-123-XYZZY", "YP-25").await,
        Some(json!(300000))
    );

    let (status, datastore) = client.send(Method::GET, "/terms", None).await;
    assert_eq!(status, 200);
    let mut expected: Value = serde_json::from_str(SEED_CREATE).expect("seed JSON");
    expected["created"] = datastore["created"].clone();
    expected["lastModified"] = datastore["lastModified"].clone();
    assert!(datastore["created"].is_i64());
    assert_eq!(datastore, expected);
    let (status, list) = client.send(Method::GET, "", None).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(list[0]["apiName"], "terms");
}

async fn each_definition_rule_is_reported_with_its_field(app: TestApp) {
    let client = Client::dev(&app).await;
    let base: Value = serde_json::from_str(SEED_CREATE).expect("seed");
    let with = |field: &str, value: Value| {
        let mut body = base.clone();
        body[field] = value;
        body.to_string()
    };
    let many = |n: usize, kind: &str| -> Value {
        let mut columns = vec![
            json!({"name": "customerID", "type": "TEXT"}),
            json!({"name": "productID", "type": "TEXT"}),
        ];
        columns.extend((0..n).map(|i| json!({"name": format!("c{i}"), "type": kind})));
        json!(columns)
    };
    let cases: Vec<(String, &str, &str)> = vec![
        (
            with("name", json!("x".repeat(51))),
            "name",
            "1 to 50 characters",
        ),
        (
            with("apiName", json!("my terms")),
            "apiName",
            "letters, digits",
        ),
        (with("apiName", json!(42)), "apiName", "must be a string"),
        (
            with("definitions", json!([])),
            "definitions",
            "1 to 40 columns",
        ),
        (
            with("definitions", many(39, "TEXT")),
            "definitions",
            "1 to 40 columns, got 41",
        ),
        (
            with("definitions", many(6, "LARGE_TEXT")),
            "definitions",
            "at most 5 LARGE_TEXT",
        ),
        (
            with(
                "definitions",
                json!([{"name": "customerID", "type": "TEXT"}, {"name": "productID", "type": "TEXT"}, {"name": "productID", "type": "TEXT"}]),
            ),
            "definitions[2].name",
            "defined twice",
        ),
        (
            with(
                "definitions",
                json!([{"name": "customerID", "type": "TEXT"}, {"name": "productID", "type": "TEXT"}, {"name": "x", "type": "MONEY"}]),
            ),
            "definitions[2].type",
            "not a column type",
        ),
        (
            with(
                "definitions",
                json!([{"name": "customerID", "type": "NUMERIC"}, {"name": "productID", "type": "TEXT"}]),
            ),
            "primaryKey",
            "key columns must be TEXT",
        ),
        (
            with("secondaryKey", json!("missing")),
            "secondaryKey",
            "not among the definitions",
        ),
        (with("primaryKey", Value::Null), "primaryKey", "is required"),
        ("[1, 2]".to_string(), "body", "JSON object"),
    ];
    for (body, field, rule) in cases {
        let (status, error) = client.send(Method::POST, "", Some(&body)).await;
        assert_eq!(status, 400, "{body}");
        assert!(error["errorCode"].is_string(), "{error}");
        let problems = error["errors"]
            .as_array()
            .expect("errors naming the field and rule");
        assert!(
            problems.iter().any(
                |p| p["field"] == field && p["rule"].as_str().is_some_and(|r| r.contains(rule))
            ),
            "{field}: {rule} not in {error}"
        );
        assert!(
            error["errorMessage"]
                .as_str()
                .is_some_and(|m| m.contains(field)),
            "{error}"
        );
    }
    let (status, error) = client.send(Method::POST, "", Some("{not json")).await;
    assert_eq!(status, 400);
    assert!(
        error["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("not valid JSON")),
        "{error}"
    );

    client.create_seed_datastore().await;
    let (status, error) = client.send(Method::POST, "", Some(SEED_CREATE)).await;
    assert_eq!(status, 400, "apiName is unique per workspace");
    assert_eq!(error["errorCode"], "INVALID_API_NAME");
    let (_, list) = client.send(Method::GET, "", None).await;
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(1),
        "nothing invalid was created"
    );
}

async fn a_mixed_batch_writes_its_good_records_and_reports_each_bad_one(app: TestApp) {
    let client = Client::dev(&app).await;
    let (status, _) = client
        .send(
            Method::POST,
            "",
            Some(r#"{"name":"All","apiName":"all","primaryKey":"id","definitions":[{"name":"id","type":"TEXT"},{"name":"note","type":"LARGE_TEXT"},
                {"name":"flag","type":"BOOLEAN"},{"name":"amount","type":"NUMBER"},{"name":"at","type":"DATETIME"},{"name":"tags","type":"TEXT_LIST"}]}"#),
        )
        .await;
    assert_eq!(status, 201);
    let batch = json!([
        {"id": "ok-1", "note": "n".repeat(4096), "flag": true, "amount": 1.5e2, "at": 1507676400000_i64, "tags": "a|\"b|c\""},
        {"id": "bad-text", "note": "n".repeat(4097)},
        {"id": "bad-bool", "flag": "yes"},
        {"id": "bad-number", "amount": "12"},
        {"id": "bad-datetime", "at": "2017-10-10"},
        {"id": "bad-list", "tags": "\"open"},
        {"id": "bad-column", "colour": "red"},
        {"note": "no key"},
        {"id": "x".repeat(501)},
        "not an object",
        {"id": "ok-2", "flag": false, "at": null},
    ]);
    let (status, results) = client
        .send(Method::POST, "/all/staging", Some(&batch.to_string()))
        .await;
    assert_eq!(status, 200, "{results}");
    let results = results.as_array().expect("results");
    assert_eq!(results.len(), 11);
    let statuses: Vec<&str> = results
        .iter()
        .map(|r| r["result"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        statuses,
        vec![
            "204", "400", "400", "400", "400", "400", "400", "400", "400", "400", "204"
        ]
    );
    // InsertRecord requires primaryKey, secondaryKey, result and url: every result has
    // them as strings, a refused record too.
    for result in results {
        for field in ["primaryKey", "secondaryKey", "result", "url"] {
            assert!(result[field].is_string(), "{field} in {result}");
        }
    }
    let messages: Vec<&str> = results
        .iter()
        .filter_map(|r| r["message"].as_str())
        .collect();
    for expected in [
        "note: LARGE_TEXT allows at most 4096",
        "flag: expected BOOLEAN",
        "amount: expected NUMBER",
        "at: expected DATETIME",
        "tags: TEXT_LIST",
        "colour: not a column",
        "id: the primary key is required",
        "id: TEXT allows at most 500",
        "a record must be a JSON object",
    ] {
        assert!(
            messages.iter().any(|m| m.starts_with(expected)),
            "{expected} not in {messages:?}"
        );
    }
    for (id, expected) in [("ok-1", 1), ("ok-2", 1), ("bad-bool", 0), ("bad-column", 0)] {
        let (_, rows) = client
            .send(Method::GET, &format!("/all/staging?pk={id}"), None)
            .await;
        assert_eq!(rows.as_array().map(Vec::len), Some(expected), "{id}");
    }
    let (_, rows) = client.send(Method::GET, "/all/staging?pk=ok-2", None).await;
    assert_eq!(
        rows,
        json!([{"id": "ok-2", "flag": false}]),
        "null values are not stored"
    );
}

async fn a_body_that_is_not_a_json_array_writes_nothing(app: TestApp) {
    let client = Client::dev(&app).await;
    client.create_seed_datastore().await;
    for body in [
        r#"{"customerID": "C-1", "productID": "P-1"}"#,
        "not json",
        r#"[{"customerID": "C-1", "productID": "P-1"}"#,
    ] {
        let (status, error) = client
            .send(Method::POST, "/terms/staging", Some(body))
            .await;
        assert_eq!(status, 400, "{body}");
        assert!(error["errorMessage"].is_string(), "{error}");
    }
    let (_, rows) = client
        .send(Method::GET, "/terms/staging?pk=C-1", None)
        .await;
    assert_eq!(rows, json!([]));
    let response = app
        .client
        .post(client.url("/terms/staging"))
        .bearer_auth(&client.token)
        .header("content-type", "text/csv")
        .body("customerID,productID\nC-1,P-1\n")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 415);
}

async fn a_reference_freezes_what_it_names_and_go_live_is_idempotent(app: TestApp) {
    let client = Client::dev(&app).await;
    client.create_seed_datastore().await;
    client
        .send(
            Method::POST,
            "/terms/staging",
            Some(&rows(&[("C-1", "P-1", 1), ("C-2", "P-1", 2)])),
        )
        .await;
    let first = client.reference("staging").await;
    assert_eq!(
        client.reference("staging").await,
        first,
        "asking again without writes names the same snapshot"
    );
    client
        .send(
            Method::POST,
            "/terms/staging",
            Some(&rows(&[("C-3", "P-1", 3)])),
        )
        .await;
    let (status, _) = client
        .send(Method::POST, &format!("/terms/golive/{first}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(client.live_limit("C-1", "P-1").await, Some(json!(1)));
    assert_eq!(
        client.live_limit("C-3", "P-1").await,
        None,
        "written after the reference: not in its snapshot"
    );
    let (status, _) = client
        .send(Method::POST, &format!("/terms/golive/{first}"), None)
        .await;
    assert_eq!(status, 200, "repeating the same go-live is harmless");
    assert_eq!(client.live_limit("C-1", "P-1").await, Some(json!(1)));

    let second = client.reference("staging").await;
    assert_ne!(second, first);
    assert_eq!(
        client
            .send(Method::POST, &format!("/terms/golive/{second}"), None)
            .await
            .0,
        200
    );
    assert_eq!(client.live_limit("C-3", "P-1").await, Some(json!(3)));
    assert_eq!(
        client.live_limit("C-1", "P-1").await,
        None,
        "the new snapshot replaced the old live table"
    );
    let (status, error) = client
        .send(Method::POST, &format!("/terms/golive/{first}"), None)
        .await;
    assert_eq!(status, 404, "a stale reference: {error}");
    assert_eq!(
        client.live_limit("C-3", "P-1").await,
        Some(json!(3)),
        "and it changed nothing"
    );
    let (status, _) = client
        .send(
            Method::POST,
            "/terms/golive/ds00000000000000000000000000000000",
            None,
        )
        .await;
    assert_eq!(status, 404, "an unknown reference");
    assert_eq!(client.reference("live").await, second);
}

async fn clear_empties_the_table_a_reference_names(app: TestApp) {
    let client = Client::dev(&app).await;
    client.create_seed_datastore().await;
    client
        .send(
            Method::POST,
            "/terms/live",
            Some(&rows(&[("C-1", "P-1", 1)])),
        )
        .await;
    assert_eq!(
        client.live_limit("C-1", "P-1").await,
        Some(json!(1)),
        "records can be written to live directly"
    );
    let live = client.reference("live").await;
    assert_eq!(
        client
            .send(Method::POST, &format!("/terms/clear/{live}"), None)
            .await
            .0,
        200
    );
    assert_eq!(client.live_limit("C-1", "P-1").await, None);
    assert_eq!(
        client
            .send(Method::POST, &format!("/terms/clear/{live}"), None)
            .await
            .0,
        404,
        "that table is gone"
    );

    client
        .send(
            Method::POST,
            "/terms/staging",
            Some(&rows(&[("C-2", "P-1", 2)])),
        )
        .await;
    let staging = client.reference("staging").await;
    assert_eq!(
        client
            .send(Method::POST, &format!("/terms/clear/{staging}"), None)
            .await
            .0,
        200
    );
    let (_, rows_left) = client
        .send(Method::GET, "/terms/staging?pk=C-2", None)
        .await;
    assert_eq!(rows_left, json!([]));
    assert_eq!(
        client
            .send(Method::POST, &format!("/terms/golive/{staging}"), None)
            .await
            .0,
        404,
        "a cleared snapshot cannot go live"
    );
    assert_eq!(
        client
            .send(Method::POST, "/terms/clear/ds-unknown", None)
            .await
            .0,
        404
    );
}

async fn records_are_deleted_by_key_and_a_deleted_datastore_is_gone(app: TestApp) {
    let client = Client::dev(&app).await;
    client.create_seed_datastore().await;
    client
        .send(
            Method::POST,
            "/terms/live",
            Some(&rows(&[
                ("C-1", "P-1", 1),
                ("C-1", "P-2", 2),
                ("C-2", "P-1", 3),
            ])),
        )
        .await;
    assert_eq!(
        client
            .send(Method::DELETE, "/terms/live?pk=C-1&sk=P-2", None)
            .await
            .0,
        200
    );
    let (_, left) = client.send(Method::GET, "/terms/live?pk=C-1", None).await;
    assert_eq!(left.as_array().map(Vec::len), Some(1));
    assert_eq!(
        client
            .send(Method::DELETE, "/terms/live?pk=C-1", None)
            .await
            .0,
        200
    );
    assert_eq!(client.live_limit("C-1", "P-1").await, None);
    assert_eq!(client.live_limit("C-2", "P-1").await, Some(json!(3)));

    assert_eq!(client.send(Method::DELETE, "/terms", None).await.0, 200);
    for (method, rest) in [
        (Method::GET, "/terms"),
        (Method::GET, "/terms/live?pk=C-2"),
        (Method::GET, "/terms/staging/reference"),
        (Method::DELETE, "/terms"),
    ] {
        assert_eq!(
            client.send(method.clone(), rest, None).await.0,
            404,
            "{method} {rest}"
        );
    }
    client.create_seed_datastore().await;
    assert_eq!(
        client.live_limit("C-2", "P-1").await,
        None,
        "a new datastore of the same apiName starts empty"
    );
}

async fn bad_targets_keys_and_names_are_refused_clearly(app: TestApp) {
    let client = Client::dev(&app).await;
    client.create_seed_datastore().await;
    let (status, error) = client
        .send(Method::GET, "/terms/preview?pk=C-1", None)
        .await;
    assert_eq!(status, 404);
    assert!(
        error["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("live or staging")),
        "{error}"
    );
    let (status, error) = client.send(Method::GET, "/terms/live", None).await;
    assert_eq!(status, 400);
    assert_eq!(error["errors"][0]["field"], "pk");
    assert_eq!(
        client
            .send(Method::GET, "/nothing/live?pk=C-1", None)
            .await
            .0,
        404
    );
    assert_eq!(
        client
            .send(Method::POST, "/nothing/staging", Some("[]"))
            .await
            .0,
        404
    );
    assert_eq!(
        client
            .send(Method::POST, "/nothing/golive/ds1", None)
            .await
            .0,
        404
    );
}

async fn tokens_and_workspaces_are_checked_on_every_route(app: TestApp) {
    let client = Client::dev(&app).await;
    client.create_seed_datastore().await;
    let unauthenticated = app
        .client
        .get(client.url(""))
        .send()
        .await
        .expect("request");
    assert_eq!(unauthenticated.status(), 401);
    assert_eq!(
        unauthenticated
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer error=\"invalid_token\"")
    );
    let body: Value = unauthenticated.json().await.expect("JSON");
    assert_eq!(
        body,
        json!({"errorCode": "GENERAL", "errorMessage": "Invalid OAuth 2.0 token"})
    );
    let forged = Client {
        app: &app,
        token: "forged".into(),
        workspace: client.workspace.clone(),
    };
    assert_eq!(forged.send(Method::GET, "/terms", None).await.0, 401);

    let by_site_key = Client {
        app: &app,
        token: client.token.clone(),
        workspace: app.server.credentials.mxo.site_key.clone(),
    };
    assert_eq!(
        by_site_key.send(Method::GET, "/terms", None).await.0,
        200,
        "the site key is accepted as the workspace id"
    );
    let wrong = Client {
        app: &app,
        token: client.token.clone(),
        workspace: "bm9wZQ".into(),
    };
    assert_eq!(
        wrong.send(Method::GET, "", None).await.0,
        401,
        "list: a workspace that is not the token's → 401"
    );
    assert_eq!(
        wrong.send(Method::POST, "", Some(SEED_CREATE)).await.0,
        401,
        "create → 401"
    );
    assert_eq!(
        wrong.send(Method::GET, "/terms", None).await.0,
        404,
        "get → 404"
    );

    app.clock.advance_seconds(3601);
    assert_eq!(
        client.send(Method::GET, "/terms", None).await.0,
        401,
        "an expired token"
    );
}

/// The apiName of the datastore the cases create.
fn terms() -> ApiName {
    ApiName::parse("terms").expect("a valid apiName")
}

/// Everything tenant A has, as one value, read through the storage port.
async fn dump(app: &TestApp, tenant: &str) -> Value {
    let tenant = TenantId::parse(tenant).expect("tenant");
    let table = app.server.app.table.as_ref();
    let state = store::load(table, &tenant, &terms())
        .await
        .expect("load")
        .expect("A's datastore");
    let mut rows = Vec::new();
    for version in [&state.live_version, &state.staging_version] {
        for shard in 0..keys::DATASTORE_ROW_SHARDS {
            let page = table
                .query(
                    Query::partition(keys::datastore_rows_pk(&tenant, "terms", version, shard))
                        .limit(1000),
                )
                .await
                .expect("rows");
            rows.extend(
                page.items
                    .iter()
                    .map(|item| json!([item.pk, item.sk, item.attrs])),
            );
        }
    }
    json!({"definition": state.view(), "live": state.live_reference, "staging": state.staging_version, "sealed": state.staging_reference, "rows": rows})
}

async fn another_tenants_token_touches_nothing_on_any_datastores_route(app: TestApp) {
    let a = Client::dev(&app).await;
    a.create_seed_datastore().await;
    a.send(Method::POST, "/terms/staging", Some(SEED_STAGE))
        .await;
    let live = a.reference("live").await;
    let staged = a.reference("staging").await;
    a.send(
        Method::POST,
        "/terms/live",
        Some(&rows(&[("C-9", "P-9", 9)])),
    )
    .await;
    let before = dump(&app, "dev").await;

    let b = Client::of(&app, "Tenant B").await;
    b.create_seed_datastore().await;
    // B's token on A's workspace, on every route.
    let b_on_a = Client {
        app: &app,
        token: b.token.clone(),
        workspace: a.workspace.clone(),
    };
    let attempts: Vec<(Method, String, Option<String>, u16)> = vec![
        (Method::GET, String::new(), None, 401),
        (
            Method::POST,
            String::new(),
            Some(SEED_CREATE.replace("\"terms\"", "\"other\"")),
            401,
        ),
        (Method::GET, "/terms".into(), None, 404),
        (Method::DELETE, "/terms".into(), None, 404),
        (
            Method::POST,
            "/terms/staging".into(),
            Some(SEED_STAGE.into()),
            404,
        ),
        (
            Method::POST,
            "/terms/live".into(),
            Some(SEED_STAGE.into()),
            404,
        ),
        (Method::GET, "/terms/live?pk=C-9".into(), None, 404),
        (Method::DELETE, "/terms/live?pk=C-9".into(), None, 404),
        (Method::GET, "/terms/staging/reference".into(), None, 404),
        (Method::POST, format!("/terms/golive/{staged}"), None, 404),
        (Method::POST, format!("/terms/clear/{live}"), None, 404),
    ];
    for (method, rest, body, status) in &attempts {
        let (got, _) = b_on_a.send(method.clone(), rest, body.as_deref()).await;
        assert_eq!(
            got.as_u16(),
            *status,
            "B's token on A's workspace: {method} {rest}"
        );
    }
    let lookup = app
        .client
        .post(app.url(&format!(
            "/custdata/v1/mxo/{}/terms/live/lookup",
            a.workspace
        )))
        .bearer_auth(&b.token)
        .json(&json!({"keys": [{"pk": "C-9"}]}))
        .send()
        .await
        .expect("request");
    assert_eq!(lookup.status(), 404);
    // B's token on B's own workspace with A's references: they mean nothing there.
    assert_eq!(
        b.send(Method::POST, &format!("/terms/golive/{staged}"), None)
            .await
            .0,
        404
    );
    assert_eq!(
        b.send(Method::POST, &format!("/terms/clear/{live}"), None)
            .await
            .0,
        404
    );
    let (_, rows) = b.send(Method::GET, "/terms/live?pk=C-9", None).await;
    assert_eq!(rows, json!([]));
    assert_eq!(
        dump(&app, "dev").await,
        before,
        "tenant A's data is unchanged"
    );
}

async fn readers_during_go_live_see_the_old_table_or_the_new_never_a_mix(app: TestApp) {
    let client = Client::dev(&app).await;
    client.create_seed_datastore().await;
    let customers: Vec<String> = (0..40).map(|n| format!("C-{n:03}")).collect();
    let table_of = |limit: i64| {
        json!(
            customers
                .iter()
                .map(|c| json!({"customerID": c, "productID": "P", "creditLimit": limit}))
                .collect::<Vec<_>>()
        )
        .to_string()
    };
    client
        .send(Method::POST, "/terms/staging", Some(&table_of(1)))
        .await;
    let old = client.reference("staging").await;
    client
        .send(Method::POST, &format!("/terms/golive/{old}"), None)
        .await;
    client
        .send(Method::POST, "/terms/staging", Some(&table_of(2)))
        .await;
    let new = client.reference("staging").await;

    let lookup_url = app.url(&format!(
        "/custdata/v1/mxo/{}/terms/live/lookup",
        client.workspace
    ));
    let keys =
        json!({"keys": customers.iter().map(|c| json!({"pk": c, "sk": "P"})).collect::<Vec<_>>()});
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (client, url, keys, token, stop) = (
                app.client.clone(),
                lookup_url.clone(),
                keys.clone(),
                client.token.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut seen = Vec::new();
                // Bounded: at most 400 lookups per reader, or until go-live is done.
                for _ in 0..400 {
                    let done = stop.load(std::sync::atomic::Ordering::SeqCst);
                    let body: Value = client
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&keys)
                        .send()
                        .await
                        .expect("lookup")
                        .json()
                        .await
                        .expect("JSON");
                    let limits: Vec<i64> = body["records"]
                        .as_array()
                        .expect("records")
                        .iter()
                        .filter_map(|r| r["creditLimit"].as_i64())
                        .collect();
                    seen.push(limits);
                    if done {
                        break;
                    }
                }
                seen
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (status, _) = client
        .send(Method::POST, &format!("/terms/golive/{new}"), None)
        .await;
    assert_eq!(status, 200);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut saw = std::collections::BTreeSet::new();
    let mut overlapping_readers = 0;
    for reader in readers {
        let mut tables_seen = Vec::new();
        for limits in reader.await.expect("reader") {
            assert_eq!(limits.len(), 40, "every key found in one version");
            assert!(
                limits.iter().all(|l| *l == limits[0]),
                "a mix of tables: {limits:?}"
            );
            saw.insert(limits[0]);
            if tables_seen.last() != Some(&limits[0]) {
                tables_seen.push(limits[0]);
            }
        }
        // Only a reader that read the old table, then the new one, ran across the switch.
        if tables_seen == [1, 2] {
            overlapping_readers += 1;
        }
    }
    assert!(
        overlapping_readers > 0,
        "no reader read both before and after the switch, so none overlapped it"
    );
    assert!(
        saw.contains(&2),
        "the readers saw the new table after go-live: {saw:?}"
    );
}

async fn superseded_tables_are_swept_after_the_grace_period_only(app: TestApp) {
    let client = Client::dev(&app).await;
    client.create_seed_datastore().await;
    client
        .send(Method::POST, "/terms/staging", Some(SEED_STAGE))
        .await;
    let first = client.reference("staging").await;
    client
        .send(Method::POST, &format!("/terms/golive/{first}"), None)
        .await;
    let tenant = TenantId::parse("dev").expect("tenant");
    let table = app.server.app.table.as_ref();
    let old_version = store::load(table, &tenant, &terms())
        .await
        .expect("load")
        .expect("state")
        .live_version;
    client
        .send(
            Method::POST,
            "/terms/staging",
            Some(&rows(&[("C-1", "P-1", 1)])),
        )
        .await;
    let second = client.reference("staging").await;
    client
        .send(Method::POST, &format!("/terms/golive/{second}"), None)
        .await;

    let count_old = || async {
        let mut count = 0;
        for shard in 0..keys::DATASTORE_ROW_SHARDS {
            count += table
                .query(
                    Query::partition(keys::datastore_rows_pk(
                        &tenant,
                        "terms",
                        &old_version,
                        shard,
                    ))
                    .limit(1000),
                )
                .await
                .expect("rows")
                .items
                .len();
        }
        count
    };
    assert_eq!(count_old().await, 3);
    let early = store::sweep_due(table, app.clock.now_seconds(), 10_000)
        .await
        .expect("sweep");
    assert_eq!(
        early.rows_deleted, 0,
        "nothing is removed within the grace period"
    );
    app.clock.advance_seconds(store::SWEEP_GRACE_SECONDS + 1);
    let swept = store::sweep_due(table, app.clock.now_seconds(), 10_000)
        .await
        .expect("sweep");
    // The first, empty live table and the seed's table, superseded by the two go-lives.
    assert_eq!((swept.versions_removed, swept.rows_deleted), (2, 3));
    assert_eq!(count_old().await, 0);
    assert_eq!(
        client.live_limit("C-1", "P-1").await,
        Some(json!(1)),
        "the live table is untouched"
    );
    let again = store::sweep_due(table, app.clock.now_seconds(), 10_000)
        .await
        .expect("sweep");
    assert_eq!(again.rows_deleted, 0);
}

async fn go_live_opens_a_new_empty_staging_table_and_newer_snapshots_make_older_ones_stale(
    app: TestApp,
) {
    let client = Client::dev(&app).await;
    client.create_seed_datastore().await;
    client
        .send(
            Method::POST,
            "/terms/staging",
            Some(&rows(&[("C-1", "P-1", 1)])),
        )
        .await;
    let first = client.reference("staging").await;
    assert_eq!(
        client
            .send(Method::POST, &format!("/terms/golive/{first}"), None)
            .await
            .0,
        200
    );
    let (_, staged) = client
        .send(Method::GET, "/terms/staging?pk=C-1", None)
        .await;
    assert_eq!(
        staged,
        json!([]),
        "after go-live, staging is a new, empty table"
    );
    let staging_reference = client.reference("staging").await;
    assert_ne!(
        staging_reference, first,
        "staging and live never share a table"
    );
    assert_eq!(
        client
            .send(
                Method::POST,
                &format!("/terms/clear/{staging_reference}"),
                None
            )
            .await
            .0,
        200
    );
    assert_eq!(
        client.live_limit("C-1", "P-1").await,
        Some(json!(1)),
        "clearing staging leaves live alone"
    );

    client
        .send(
            Method::POST,
            "/terms/staging",
            Some(&rows(&[("C-2", "P-1", 2)])),
        )
        .await;
    let older = client.reference("staging").await;
    client
        .send(
            Method::POST,
            "/terms/staging",
            Some(&rows(&[("C-3", "P-1", 3)])),
        )
        .await;
    let newer = client.reference("staging").await;
    assert_eq!(
        client
            .send(Method::POST, &format!("/terms/golive/{older}"), None)
            .await
            .0,
        404,
        "a newer snapshot exists"
    );
    assert_eq!(
        client
            .send(Method::POST, &format!("/terms/golive/{newer}"), None)
            .await
            .0,
        200
    );
    assert_eq!(client.live_limit("C-3", "P-1").await, Some(json!(3)));
    assert_eq!(client.live_limit("C-1", "P-1").await, None);
}

async fn keys_of_any_text_and_oversized_records_are_handled_alike(app: TestApp) {
    let client = Client::dev(&app).await;
    client.create_seed_datastore().await;
    let long_key = "€".repeat(500);
    let record =
        json!([{"customerID": long_key, "productID": "ü".repeat(500), "creditLimit": 1e3}])
            .to_string();
    let (status, results) = client
        .send(Method::POST, "/terms/live", Some(&record))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        results[0]["result"], "204",
        "a 500-character key of 3-byte characters is a valid TEXT key: {results}"
    );
    let url = format!("/terms/live?pk={}", urlencode(&long_key));
    let (status, rows) = client.send(Method::GET, &url, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        rows[0]["creditLimit"],
        json!(1000.0),
        "numbers read back the same on every adapter"
    );
    assert_eq!(rows[0]["customerID"], json!(long_key));

    let too_long = format!("/terms/live?pk={}", "k".repeat(501));
    let (status, error) = client.send(Method::GET, &too_long, None).await;
    assert_eq!(status, 400);
    assert_eq!(error["errors"][0]["field"], "pk");
    let (status, _) = client
        .send(
            Method::GET,
            &format!("/{}/live?pk=C-1", "a".repeat(2000)),
            None,
        )
        .await;
    assert_eq!(status, 404, "an apiName no datastore can have is not found");

    let columns: Vec<Value> = std::iter::once(json!({"name": "id", "type": "TEXT"}))
        .chain((0..35).map(|n| json!({"name": format!("list{n}"), "type": "TEXT_LIST"})))
        .collect();
    let definition =
        json!({"name": "Wide", "apiName": "wide", "primaryKey": "id", "definitions": columns});
    assert_eq!(
        client
            .send(Method::POST, "", Some(&definition.to_string()))
            .await
            .0,
        201
    );
    let mut wide = serde_json::Map::new();
    wide.insert("id".into(), json!("w-1"));
    for n in 0..35 {
        wide.insert(format!("list{n}"), json!("€".repeat(4096)));
    }
    let batch = json!([wide, {"id": "w-2", "list0": "a|b"}]).to_string();
    let (status, results) = client.send(Method::POST, "/wide/live", Some(&batch)).await;
    assert_eq!(status, 200, "{results}");
    assert_eq!(
        results[0]["result"], "400",
        "a record too large to store fails alone"
    );
    assert!(
        results[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("400 KB")),
        "{results}"
    );
    assert_eq!(results[1]["result"], "204");

    let lookup = app
        .client
        .post(app.url(&format!(
            "/custdata/v1/mxo/{}/terms/live/lookup",
            client.workspace
        )))
        .bearer_auth(&client.token)
        .json(&json!({"keys": [{"pk": "C-1", "sk": 5}]}))
        .send()
        .await
        .expect("request");
    assert_eq!(
        lookup.status(),
        400,
        "a key that is not a string is refused, not ignored"
    );
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn dot_segments_slashes_and_control_characters_in_path_names_are_refused(app: TestApp) {
    let client = Client::dev(&app).await;
    client.create_seed_datastore().await;
    let (status, body) = client
        .send(Method::POST, "/terms/staging", Some(SEED_STAGE))
        .await;
    assert_eq!(status, 200, "{body}");
    let authorization = format!("Bearer {}", client.token);
    let headers = [
        ("authorization", authorization.as_str()),
        ("content-type", "application/json"),
    ];
    let ws = client.workspace.clone();
    let hostile = ["..", "%2e%2e", ".", "%2E", "a%2Fb", "a%00b", "%0a"];
    for name in hostile {
        let cases = [
            ("GET", format!("/datastores/1.0.0/{ws}/{name}"), "apiName"),
            (
                "DELETE",
                format!("/datastores/1.0.0/{ws}/{name}"),
                "apiName",
            ),
            (
                "POST",
                format!("/datastores/1.0.0/{ws}/{name}/staging"),
                "apiName",
            ),
            (
                "GET",
                format!("/datastores/1.0.0/{ws}/{name}/live?pk=C-1"),
                "apiName",
            ),
            (
                "POST",
                format!("/datastores/1.0.0/{ws}/terms/{name}"),
                "target",
            ),
            (
                "DELETE",
                format!("/datastores/1.0.0/{ws}/terms/{name}?pk=C-1"),
                "target",
            ),
            (
                "POST",
                format!("/datastores/1.0.0/{ws}/terms/golive/{name}"),
                "stagingReference",
            ),
            ("GET", format!("/datastores/1.0.0/{name}"), "workspaceId"),
        ];
        for (method, path, parameter) in cases {
            let (status, error) = raw_request(&app, method, &path, &headers, "[]").await;
            assert_eq!(status, 400, "{method} {path}: {error}");
            assert_eq!(error["errorCode"], "GENERAL", "{error}");
            assert_eq!(
                error["errors"][0]["field"], parameter,
                "{method} {path}: {error}"
            );
            assert!(
                error["errorMessage"]
                    .as_str()
                    .is_some_and(|m| m.contains("'.' or '..'")),
                "the rule is named: {error}"
            );
        }
    }
    // A name that breaks only the apiName grammar is refused with that grammar's rule.
    let (status, error) = raw_request(
        &app,
        "GET",
        &format!("/datastores/1.0.0/{ws}/9terms"),
        &headers,
        "",
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert!(
        error["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("starting with a letter")),
        "{error}"
    );
    // Nothing was changed: the datastore and its staged rows are all there.
    let (status, rows) = client
        .send(Method::GET, "/terms/staging?pk=ABC-123-45678", None)
        .await;
    assert_eq!(status, 200, "{rows}");
    assert_eq!(rows.as_array().map(Vec::len), Some(2), "{rows}");
    let (status, _) = client.send(Method::GET, "/terms", None).await;
    assert_eq!(status, 200);
}

/// The README's quick start stages with curl's `-d` and no Content-Type, so curl sends
/// `application/x-www-form-urlencoded`: a body that parses as JSON is read as JSON; one
/// that does not is 415 naming the header to send.
async fn json_sent_with_curls_default_content_type_is_staged(app: TestApp) {
    let client = Client::dev(&app).await;
    client.create_seed_datastore().await;
    let post = |content_type: &'static str, body: &'static str| {
        app.client
            .post(client.url("/terms/staging"))
            .bearer_auth(&client.token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let response = post("application/x-www-form-urlencoded", SEED_STAGE)
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let results: Value = response.json().await.expect("JSON");
    let results = results.as_array().expect("one result per record");
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| r["result"] == "204"), "{results:?}");
    let (_, rows) = client
        .send(Method::GET, "/terms/staging?pk=ABC-123-XYZZY", None)
        .await;
    assert_eq!(rows[0]["creditLimit"], 300000, "{rows}");
    let response = post(
        "application/x-www-form-urlencoded",
        "customerID=C-1&productID=P-1",
    )
    .await
    .expect("request");
    assert_eq!(response.status(), 415);
    let error: Value = response.json().await.expect("JSON");
    assert!(
        error["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("Content-Type: application/json")),
        "{error}"
    );
}

on_both_adapters!(
    the_seed_flow_creates_stages_goes_live_and_reads_back,
    each_definition_rule_is_reported_with_its_field,
    a_mixed_batch_writes_its_good_records_and_reports_each_bad_one,
    a_body_that_is_not_a_json_array_writes_nothing,
    a_reference_freezes_what_it_names_and_go_live_is_idempotent,
    clear_empties_the_table_a_reference_names,
    records_are_deleted_by_key_and_a_deleted_datastore_is_gone,
    bad_targets_keys_and_names_are_refused_clearly,
    tokens_and_workspaces_are_checked_on_every_route,
    another_tenants_token_touches_nothing_on_any_datastores_route,
    readers_during_go_live_see_the_old_table_or_the_new_never_a_mix,
    superseded_tables_are_swept_after_the_grace_period_only,
    go_live_opens_a_new_empty_staging_table_and_newer_snapshots_make_older_ones_stale,
    keys_of_any_text_and_oversized_records_are_handled_alike,
    dot_segments_slashes_and_control_characters_in_path_names_are_refused,
    json_sent_with_curls_default_content_type_is_staged,
);
