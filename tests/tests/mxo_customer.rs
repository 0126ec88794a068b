//! MXO Customer API 3.1.0 over HTTP, on the shared customer store: activity, pull
//! structures with eligibility rules, erasure and suppression. Every case runs on the
//! embedded store and on DynamoDB/S3 in the emulator.

use std::collections::BTreeMap;

use custdata::clock::Clock;
use custdata::customers::{self, Activity, CustomerRef, Identifier, Tid};
use custdata::domain::TenantId;
use custdata::mxo::datastores::store;
use custdata::storage::{Item, Key, WriteRequest, batch, keys};
use custdata_tests::{
    Adapter, TestApp, create_tenant, mxo_token_for, on_both_adapters, raw_request,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BASE: &str = "/one/oauth2/rt/api/3.1.0/customer";

/// A client of one tenant: its token and site key.
struct Client<'a> {
    app: &'a TestApp,
    token: String,
    site: String,
    workspace: String,
}

impl<'a> Client<'a> {
    async fn dev(app: &'a TestApp) -> Client<'a> {
        let mxo = &app.server.credentials.mxo;
        Client {
            app,
            token: app.mxo_token().await,
            site: mxo.site_key.clone(),
            workspace: mxo.workspace_id.clone(),
        }
    }

    async fn of(app: &'a TestApp, name: &str) -> Client<'a> {
        let bundle = create_tenant(app, name).await;
        let token = mxo_token_for(app, &bundle.mxo.client_id, &bundle.mxo.client_secret).await;
        Client {
            app,
            token,
            site: bundle.mxo.site_key,
            workspace: bundle.mxo.workspace_id,
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .app
            .client
            .request(method, self.app.url(path))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).expect("JSON")
            },
        )
    }

    async fn activity(&self, body: Value) -> (StatusCode, Value) {
        self.send(
            Method::POST,
            &format!("{BASE}/{}/activity", self.site),
            Some(body),
        )
        .await
    }

    async fn structure(&self, body: Value) -> (StatusCode, Value) {
        self.send(
            Method::POST,
            &format!("{BASE}/{}/structure", self.site),
            Some(body),
        )
        .await
    }

    async fn erase(&self, body: Value) -> (StatusCode, Value) {
        self.send(Method::DELETE, &format!("{BASE}/{}", self.site), Some(body))
            .await
    }

    async fn log(&self, tid: &str) -> (StatusCode, Value) {
        self.send(
            Method::GET,
            &format!("/custdata/v1/mxo/{}/customers/{tid}/activities", self.site),
            None,
        )
        .await
    }

    async fn define(&self, name: &str, definition: Value) -> (StatusCode, Value) {
        self.send(
            Method::PUT,
            &format!("/custdata/v1/mxo/{}/structures/{name}", self.site),
            Some(definition),
        )
        .await
    }
}

fn atm_activity(customer_key: &str, dynamic: &str) -> Value {
    json!({"customerContext": {"baseTouchpointUri": "https://bank.example", "identifiers": [{"apiName": "customerKey", "value": customer_key}]},
           "activities": [{"propositionCode": "atm", "dynamicPropositionCode": dynamic, "activityTypeCode": "withdrawal"}]})
}

fn tid_of(body: &Value) -> String {
    body["tid"].as_str().expect("a tid").to_string()
}

async fn the_seed_atm_activity_creates_the_customer_and_is_read_back_newest_first(app: TestApp) {
    let client = Client::dev(&app).await;
    let (status, body) = client.activity(atm_activity("C-1", "atm-0042")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["errors"], json!([]));
    let tid = tid_of(&body);
    assert!(
        uuid::Uuid::parse_str(&tid).is_ok(),
        "a new tid is returned: {tid}"
    );

    app.clock.advance_seconds(60);
    let (_, again) = client.activity(atm_activity("C-1", "atm-0043")).await;
    assert_eq!(
        tid_of(&again),
        tid,
        "the same customer key is the same customer"
    );
    let by_tid = json!({"customerContext": {"baseTouchpointUri": "https://bank.example", "tid": tid},
                        "activities": [{"propositionCode": "atm", "activityTypeCode": "balance", "timestamp": "2020-01-01T10:00:00Z"}]});
    let (status, body) = client.activity(by_tid).await;
    assert_eq!(
        (status, tid_of(&body)),
        (StatusCode::OK, tid.clone()),
        "historical activity by tid"
    );

    let (status, log) = client.log(&tid).await;
    assert_eq!(status, 200);
    let codes: Vec<&str> = log["activities"]
        .as_array()
        .expect("activities")
        .iter()
        .filter_map(|a| {
            a["dynamicPropositionCode"]
                .as_str()
                .or(a["activityTypeCode"].as_str())
        })
        .collect();
    assert_eq!(
        codes,
        vec!["atm-0043", "atm-0042", "balance"],
        "newest first"
    );

    let unknown = "3f2b6f0e-8a51-4c7e-9d1a-2c3b4d5e6f70";
    let (status, body) = client.activity(json!({"customerContext": {"baseTouchpointUri": "u", "tid": unknown}, "activities": [{"propositionCode": "p", "activityTypeCode": "t"}]})).await;
    assert_eq!(
        (status, tid_of(&body)),
        (StatusCode::OK, unknown.to_string()),
        "an unknown tid is created as sent"
    );
}

async fn dynamic_proposition_codes_stop_at_255_characters_and_a_bad_request_stores_nothing(
    app: TestApp,
) {
    let client = Client::dev(&app).await;
    let (status, body) = client.activity(atm_activity("C-2", &"d".repeat(255))).await;
    assert_eq!(status, 200, "255 characters are allowed: {body}");
    let tid = tid_of(&body);
    let mut too_long = atm_activity("C-2", "ok-first");
    too_long["activities"].as_array_mut().expect("array").push(json!({"propositionCode": "atm", "activityTypeCode": "withdrawal", "dynamicPropositionCode": "d".repeat(256)}));
    let (status, error) = client.activity(too_long).await;
    assert_eq!(status, 400);
    assert_eq!(error["errorCode"], "INVALID_PROPOSITION_CODE");
    assert!(
        error["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("255")),
        "{error}"
    );
    assert_eq!(
        error["activity"]["dynamicPropositionCode"]
            .as_str()
            .map(str::len),
        Some(256),
        "the ActivityError names the activity"
    );
    let (_, log) = client.log(&tid).await;
    assert_eq!(
        log["activities"].as_array().map(Vec::len),
        Some(1),
        "all or nothing: the valid first activity was not stored either"
    );
}

async fn every_error_code_of_the_contract_is_given_where_it_applies(app: TestApp) {
    let client = Client::dev(&app).await;
    let context = json!({"baseTouchpointUri": "https://bank.example", "identifiers": [{"apiName": "customerKey", "value": "C-3"}]});
    let with = |activity: Value| json!({"customerContext": context, "activities": [activity]});
    let future = chrono::DateTime::from_timestamp_millis(app.clock.now_millis() + 10 * 60 * 1000)
        .expect("a date")
        .to_rfc3339();
    let cases = vec![
        (
            with(json!({"activityTypeCode": "t"})),
            "INVALID_PROPOSITION_CODE",
        ),
        (
            with(json!({"propositionCode": "", "activityTypeCode": "t"})),
            "INVALID_PROPOSITION_CODE",
        ),
        (
            with(json!({"propositionCode": "p"})),
            "INVALID_ACTIVITY_TYPE_CODE",
        ),
        (
            with(
                json!({"propositionCode": "p", "activityTypeCode": "t", "timestamp": "1969-12-31T23:59:59Z"}),
            ),
            "INVALID_DATE_TIME",
        ),
        (
            with(
                json!({"propositionCode": "p", "activityTypeCode": "t", "timestamp": "yesterday"}),
            ),
            "INVALID_DATE_TIME",
        ),
        (
            with(json!({"propositionCode": "p", "activityTypeCode": "t", "timestamp": future})),
            "INVALID_DATE_TIME",
        ),
        (
            json!({"customerContext": {"baseTouchpointUri": "u"}, "activities": [{"propositionCode": "p", "activityTypeCode": "t"}]}),
            "GENERAL",
        ),
        (
            json!({"customerContext": context, "activities": []}),
            "GENERAL",
        ),
        (
            json!({"customerContext": context, "activities": vec![json!({"propositionCode": "p", "activityTypeCode": "t"}); 101]}),
            "GENERAL",
        ),
        (
            json!({"activities": [{"propositionCode": "p", "activityTypeCode": "t"}]}),
            "GENERAL",
        ),
        (
            json!({"customerContext": {"baseTouchpointUri": "u", "tid": "not-a-uuid"}, "activities": [{"propositionCode": "p", "activityTypeCode": "t"}]}),
            "GENERAL",
        ),
    ];
    for (body, code) in cases {
        let (status, error) = client.activity(body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(error["errorCode"], code, "{body}: {error}");
        assert!(
            error["errorMessage"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let (status, _) = client
        .activity(with(
            json!({"propositionCode": "unknown-to-any-catalogue", "activityTypeCode": "whatever"}),
        ))
        .await;
    assert_eq!(
        status, 200,
        "codes are stored as given, not checked against a catalogue"
    );

    let other_site = Client {
        site: "ONE-XXXXXXXXXX-9999".into(),
        token: client.token.clone(),
        app: &app,
        workspace: String::new(),
    };
    let (status, error) = other_site.activity(atm_activity("C-3", "a")).await;
    assert_eq!(
        (status, error["errorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_SITEKEY"))
    );
    let (status, error) = client
        .erase(json!({"identifier": {"apiName": "customerKey", "value": "nobody"}}))
        .await;
    assert_eq!(
        (status, error["errorCode"].as_str()),
        (StatusCode::NOT_FOUND, Some("CUSTOMER_NOT_FOUND"))
    );
    assert_eq!(error["errorMessage"], "no customer for customerKey=nobody");
    let (status, error) = client
        .structure(json!({"structureApiName": "missing", "customerContext": context}))
        .await;
    assert_eq!(
        (status, error["errorCode"].as_str()),
        (StatusCode::NOT_FOUND, Some("INVALID_API_NAME"))
    );
    assert_eq!(error["structureApiName"], "missing");
    let anonymous = app
        .client
        .post(app.url(&format!("{BASE}/{}/activity", client.site)))
        .json(&atm_activity("C-3", "a"))
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status(), 401);
}

/// The datastore `terms` (the Datastores seed) with one live row for C-1.
async fn live_terms(app: &TestApp, client: &Client<'_>) {
    let datastores = format!("/datastores/1.0.0/{}", client.workspace);
    let definition = json!({"name": "ProductTerms", "apiName": "terms", "primaryKey": "customerID", "secondaryKey": "productID",
        "definitions": [{"name": "customerID", "type": "TEXT"}, {"name": "productID", "type": "TEXT"}, {"name": "creditLimit", "type": "NUMERIC"}]});
    assert_eq!(
        client
            .send(Method::POST, &datastores, Some(definition))
            .await
            .0,
        201
    );
    let rows = json!([{"customerID": "C-1", "productID": "YP-25", "creditLimit": 11000}]);
    assert_eq!(
        client
            .send(
                Method::POST,
                &format!("{datastores}/terms/live"),
                Some(rows)
            )
            .await
            .0,
        200
    );
    let _ = app;
}

async fn a_structure_returns_only_its_pairs_as_its_rules_decide(app: TestApp) {
    let client = Client::dev(&app).await;
    live_terms(&app, &client).await;
    for _ in 0..3 {
        client.activity(atm_activity("C-1", "atm-1")).await;
    }
    let tenant = TenantId::parse("dev").expect("tenant");
    let named = CustomerRef {
        tid: None,
        identifiers: vec![Identifier::customer_key("C-1")],
    };
    let customer = customers::find(app.server.app.customers(), &tenant, &named)
        .await
        .expect("find")
        .expect("customer");
    let attributes: BTreeMap<String, Value> =
        [("tier".to_string(), json!("gold"))].into_iter().collect();
    customers::set_attributes(
        app.server.app.customers(),
        &tenant,
        &customer.tid,
        &attributes,
        "test",
        app.clock.now_millis(),
    )
    .await
    .expect("attributes");

    let definition = json!({"attributes": [
        {"name": "creditLimit", "value": {"datastore": {"apiName": "terms", "column": "creditLimit", "pk": {"identifier": "customerKey"}, "sk": {"context": "productID"}}}},
        {"name": "renewalOffer", "value": {"literal": "renew-now"}, "when": {"eq": [{"context": "renewalDue"}, {"literal": "true"}]}},
        {"name": "atmPerk", "value": {"literal": "fee-free"},
         "when": {"all": [{"ge": [{"activityCount": {"proposition": "atm", "activityType": "withdrawal"}}, {"literal": 3}]},
                          {"le": [{"daysSinceActivity": {"proposition": "atm"}}, {"literal": 30}]}]}},
        {"name": "profile", "attributes": [
            {"name": "tier", "value": {"attribute": "tier"}},
            {"name": "highLimit", "value": {"literal": true}, "when": {"gt": [{"datastore": {"apiName": "terms", "column": "creditLimit", "pk": {"identifier": "customerKey"}, "sk": {"literal": "YP-25"}}}, {"literal": 10000}]}},
            {"name": "vip", "value": {"literal": true}, "when": {"any": [{"in": [{"attribute": "tier"}, {"literal": ["platinum"]}]}, {"not": {"exists": {"attribute": "tier"}}}]}}
        ]}
    ]});
    let (status, saved) = client.define("offers", definition.clone()).await;
    assert_eq!(status, 200, "{saved}");

    let request = |properties: Value| {
        json!({"structureApiName": "offers",
        "customerContext": {"baseTouchpointUri": "https://bank.example", "identifiers": [{"apiName": "customerKey", "value": "C-1"}], "properties": properties}})
    };
    let (status, body) = client.structure(request(json!([{"name": "productID", "value": "YP-25"}, {"name": "renewalDue", "value": "true"}]))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["structureApiName"], "offers");
    assert_eq!(body["tid"], json!(customer.tid));
    assert_eq!(
        body["structure"],
        json!({"creditLimit": 11000, "renewalOffer": "renew-now", "atmPerk": "fee-free", "profile": {"tier": "gold", "highLimit": true}})
    );

    let (_, body) = client
        .structure(request(json!([{"name": "renewalDue", "value": "false"}])))
        .await;
    assert_eq!(
        body["structure"],
        json!({"creditLimit": null, "atmPerk": "fee-free", "profile": {"tier": "gold", "highLimit": true}}),
        "the context decides"
    );
    let (status, stored) = client
        .send(
            Method::GET,
            &format!("/custdata/v1/mxo/{}/structures/offers", client.site),
            None,
        )
        .await;
    assert_eq!((status, stored), (StatusCode::OK, definition));
    app.clock.advance_seconds(31 * 86_400);
    let client = Client::dev(&app).await;
    let (_, body) = client.structure(request(json!([]))).await;
    assert!(
        body["structure"].get("atmPerk").is_none(),
        "recency: the last ATM activity is 31 days old: {body}"
    );
}

async fn a_structure_naming_an_unknown_attribute_or_column_is_refused_when_saved(app: TestApp) {
    let client = Client::dev(&app).await;
    live_terms(&app, &client).await;
    let cases = [
        (
            json!({"attributes": [{"name": "x", "value": {"attribute": "neverWritten"}}]}),
            "attributes[0].value",
            "unknown customer attribute",
        ),
        (
            json!({"attributes": [{"name": "x", "value": {"literal": 1}, "when": {"eq": [{"attribute": "nope"}, {"literal": 1}]}}]}),
            "attributes[0].when",
            "unknown customer attribute",
        ),
        (
            json!({"attributes": [{"name": "x", "value": {"datastore": {"apiName": "terms", "column": "limit", "pk": {"literal": "C-1"}}}}]}),
            "attributes[0].value",
            "has no column",
        ),
        (
            json!({"attributes": [{"name": "x", "value": {"datastore": {"apiName": "nothing", "column": "c", "pk": {"literal": "C-1"}}}}]}),
            "attributes[0].value",
            "unknown datastore",
        ),
        (
            json!({"attributes": [{"name": "x"}]}),
            "attributes[0]",
            "exactly one of value and attributes",
        ),
        (
            json!({"attributes": [{"name": "x", "value": {"literal": 1}, "when": {"like": [{"literal": 1}, {"literal": 1}]}}]}),
            "body",
            "not a structure definition",
        ),
    ];
    for (definition, field, rule) in cases {
        let (status, error) = client.define("bad", definition.clone()).await;
        assert_eq!(status, 400, "{definition}");
        let problems = error["errors"].as_array().expect("errors");
        assert!(
            problems.iter().any(
                |p| p["field"] == field && p["rule"].as_str().is_some_and(|r| r.contains(rule))
            ),
            "{field}: {rule} not in {error}"
        );
    }
    let (status, _) = client
        .send(
            Method::GET,
            &format!("/custdata/v1/mxo/{}/structures/bad", client.site),
            None,
        )
        .await;
    assert_eq!(status, 404, "nothing invalid was saved");
}

async fn erasure_by_tid_and_by_identifier_removes_the_customer_and_suppresses_it(app: TestApp) {
    let client = Client::dev(&app).await;
    let (_, first) = client.activity(atm_activity("C-10", "a")).await;
    let tid = tid_of(&first);
    let mut second_identifier = atm_activity("C-10", "b");
    second_identifier["customerContext"]["identifiers"]
        .as_array_mut()
        .expect("array")
        .push(json!({"apiName": "email", "value": "c10@example.com"}));
    client.activity(second_identifier).await;

    let (status, body) = client.erase(json!({"tid": tid})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tids"], json!([tid]));
    let mut identifiers = body["identifiers"].as_array().expect("identifiers").clone();
    identifiers.sort_by_key(|i| i["apiName"].as_str().unwrap_or_default().to_string());
    assert_eq!(
        identifiers,
        vec![
            json!({"apiName": "customerKey", "value": "C-10"}),
            json!({"apiName": "email", "value": "c10@example.com"})
        ]
    );
    assert_eq!(client.log(&tid).await.0, 404);
    let (status, error) = client.activity(atm_activity("C-10", "c")).await;
    assert_eq!(status, 400, "a suppressed customer's activity is refused");
    assert!(
        error["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("suppressed")),
        "{error}"
    );
    assert_eq!(
        client.erase(json!({"tid": tid})).await.0,
        404,
        "erasing again: no such customer"
    );

    let (_, other) = client.activity(atm_activity("C-11", "a")).await;
    let (status, body) = client
        .erase(json!({"identifier": {"apiName": "customerKey", "value": "C-11"}}))
        .await;
    assert_eq!(
        (status, body["tids"].clone()),
        (StatusCode::OK, json!([tid_of(&other)]))
    );
    // Leniency for stacks that drop a DELETE's body.
    let (_, third) = client.activity(atm_activity("C-12", "a")).await;
    let (status, _) = client
        .send(
            Method::DELETE,
            &format!("{BASE}/{}?apiName=customerKey&value=C-12", client.site),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(client.log(&tid_of(&third)).await.0, 404);

    let tenant = TenantId::parse("dev").expect("tenant");
    let suppressions = app
        .server
        .app
        .table
        .scan_prefix(&keys::suppressions_pk(&tenant))
        .await
        .expect("scan");
    let stored = serde_json::to_string(
        &suppressions
            .iter()
            .map(|i| (&i.pk, &i.sk, &i.attrs))
            .collect::<Vec<_>>(),
    )
    .expect("json");
    assert!(
        !stored.contains("C-10") && !stored.contains("c10@example.com") && !stored.contains(&tid),
        "suppressions hold keyed hashes only"
    );
    let lifted = customers::lift_suppression(
        app.server.app.customers(),
        &tenant,
        &CustomerRef {
            tid: None,
            identifiers: vec![Identifier::customer_key("C-10")],
        },
    )
    .await
    .expect("lift");
    assert!(lifted);
    let (status, listed) = client
        .send(
            Method::GET,
            &format!("/custdata/v1/mxo/{}/suppressions", client.site),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let listed = listed["suppressions"]
        .as_array()
        .expect("suppressions")
        .clone();
    assert_eq!(
        listed.len(),
        suppressions.len() - 1,
        "the lifted one is gone from the list"
    );
    assert!(
        !serde_json::to_string(&listed)
            .expect("json")
            .contains("C-10")
    );
    assert_eq!(
        client.activity(atm_activity("C-10", "d")).await.0,
        200,
        "after an admin lifts it, the identifier is accepted again"
    );
}

async fn erasing_a_long_history_finishes_in_the_background_and_leaves_nothing(app: TestApp) {
    // 100,000 activities on the embedded store; 20,000 on the emulator, whose transactions
    // and scans slow down with the table's size.
    let history = if app.adapter == Adapter::Aws {
        20_000
    } else {
        100_000
    };
    let client = Client::dev(&app).await;
    let (_, body) = client.activity(atm_activity("C-20", "seed")).await;
    let tid = tid_of(&body);
    let tenant = TenantId::parse("dev").expect("tenant");
    let table = app.server.app.table.as_ref();
    let writes: Vec<WriteRequest> = (0..history)
        .map(|n| {
            let activity = Activity {
                proposition_code: "atm".into(),
                activity_type_code: "withdrawal".into(),
                dynamic_proposition_code: None,
                timestamp: 1_600_000_000_000 + n as i64,
            };
            let key =
                keys::customer_activity(&tenant, &tid, activity.timestamp, &format!("{n:08}"));
            WriteRequest::Put(Item::new(key.pk, key.sk).with("activities", json!([activity])))
        })
        .collect();
    batch::write_all(table, writes).await.expect("history");

    let (status, body) = client
        .erase(json!({"identifier": {"apiName": "customerKey", "value": "C-20"}}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        client.log(&tid).await.0,
        404,
        "the customer is gone at once"
    );
    let status_of = || async {
        customers::erasure_status(
            app.server.app.customers(),
            &tenant,
            &Tid::parse(&tid).expect("a tid"),
        )
        .await
        .expect("status")
        .expect("an erasure status")
    };
    assert_eq!(status_of().await["status"], "removing-activity");
    for _ in 0..100 {
        let report = store::sweep_due(table, app.clock.now_seconds(), 50_000)
            .await
            .expect("sweep");
        if !report.more {
            break;
        }
    }
    assert_eq!(status_of().await["status"], "done");
    let left = table.scan_prefix("T#dev#CUST#").await.expect("scan");
    assert!(left.is_empty(), "{} customer items left", left.len());
    let everything = table.scan_prefix("T#dev").await.expect("scan");
    // What stays is the suppression: tombstones in the identifier index holding a date only.
    let is_tombstone =
        |item: &Item| item.pk.contains("#CUSTID#") && item.attrs.keys().eq(["suppressed"].iter());
    let leftovers: Vec<&Item> = everything
        .iter()
        .filter(|item| item.pk.contains("CUST") || item.pk.contains(&tid))
        .filter(|item| !is_tombstone(item))
        .collect();
    assert!(
        leftovers.is_empty(),
        "nothing of the customer is left in the tenant: {:?}",
        leftovers.iter().map(|i| Key::from(*i)).collect::<Vec<_>>()
    );
    assert!(
        table
            .scan_prefix(keys::SWEEP_PK)
            .await
            .expect("scan")
            .is_empty(),
        "the background work is done"
    );
}

async fn another_tenant_touches_nothing_through_any_customer_route(app: TestApp) {
    let a = Client::dev(&app).await;
    let (_, body) = a.activity(atm_activity("C-30", "a")).await;
    let tid = tid_of(&body);
    let tenant = TenantId::parse("dev").expect("tenant");
    let attributes: BTreeMap<String, Value> =
        [("tier".to_string(), json!("gold"))].into_iter().collect();
    customers::set_attributes(
        app.server.app.customers(),
        &tenant,
        &Tid::parse(&tid).expect("a tid"),
        &attributes,
        "test",
        app.clock.now_millis(),
    )
    .await
    .expect("attributes");
    a.define(
        "mine",
        json!({"attributes": [{"name": "tier", "value": {"attribute": "tier"}}]}),
    )
    .await;
    let before = app
        .server
        .app
        .table
        .scan_prefix("T#dev#")
        .await
        .expect("scan");

    let b = Client::of(&app, "Tenant B").await;
    let b_on_a = Client {
        app: &app,
        token: b.token.clone(),
        site: a.site.clone(),
        workspace: String::new(),
    };
    for (status, body) in [
        b_on_a.activity(atm_activity("C-30", "x")).await,
        b_on_a.structure(json!({"structureApiName": "mine", "customerContext": {"baseTouchpointUri": "u", "tid": tid}})).await,
        b_on_a.erase(json!({"tid": tid})).await,
        b_on_a.log(&tid).await,
        b_on_a.send(Method::GET, &format!("/custdata/v1/mxo/{}/suppressions", a.site), None).await,
        b_on_a.define("mine", json!({"attributes": []})).await,
        b_on_a.send(Method::DELETE, &format!("/custdata/v1/mxo/{}/structures/mine", a.site), None).await,
    ] {
        assert_eq!((status, body["errorCode"].as_str()), (StatusCode::BAD_REQUEST, Some("INVALID_SITEKEY")), "{body}");
    }
    // On its own site, B cannot reach A's customer by A's tid or identifiers, nor A's structure.
    assert_eq!(b.erase(json!({"tid": tid})).await.0, 404);
    assert_eq!(
        b.erase(json!({"identifier": {"apiName": "customerKey", "value": "C-30"}}))
            .await
            .0,
        404
    );
    assert_eq!(b.log(&tid).await.0, 404);
    let (status, _) = b.structure(json!({"structureApiName": "mine", "customerContext": {"baseTouchpointUri": "u", "tid": tid}})).await;
    assert_eq!(status, 404);
    let (_, created) = b.activity(atm_activity("C-30", "b-side")).await;
    assert_ne!(
        tid_of(&created),
        tid,
        "the same customer key in another tenant is another customer"
    );

    let after = app
        .server
        .app
        .table
        .scan_prefix("T#dev#")
        .await
        .expect("scan");
    assert_eq!(after, before, "tenant A's data is unchanged");
}

async fn a_hundred_activities_are_stored_and_counted_in_one_go(app: TestApp) {
    let client = Client::dev(&app).await;
    let activities: Vec<Value> = (0..100)
        .map(|n| json!({"propositionCode": "atm", "activityTypeCode": if n % 2 == 0 { "withdrawal" } else { "balance" }, "dynamicPropositionCode": format!("atm-{n}")}))
        .collect();
    let body = json!({"customerContext": {"baseTouchpointUri": "u", "identifiers": [{"apiName": "customerKey", "value": "C-40"}, {"apiName": "customerKey", "value": "C-40"}]}, "activities": activities});
    let (status, body) = client.activity(body).await;
    assert_eq!(
        status, 200,
        "a repeated identifier is one identifier: {body}"
    );
    let tid = tid_of(&body);
    let (_, log) = client
        .send(
            Method::GET,
            &format!(
                "/custdata/v1/mxo/{}/customers/{tid}/activities?limit=1000",
                client.site
            ),
            None,
        )
        .await;
    assert_eq!(log["activities"].as_array().map(Vec::len), Some(100));
    let tenant = TenantId::parse("dev").expect("tenant");
    let customer = customers::find(
        app.server.app.customers(),
        &tenant,
        &CustomerRef {
            tid: Some(Tid::parse(&tid).expect("a tid")),
            identifiers: Vec::new(),
        },
    )
    .await
    .expect("find")
    .expect("customer");
    let stats = |proposition: Option<&str>, activity_type: Option<&str>| {
        customer
            .activity_stats(&customers::ActivityFilter {
                proposition: proposition.map(str::to_string),
                activity_type: activity_type.map(str::to_string),
            })
            .0
    };
    assert_eq!(
        (
            stats(None, None),
            stats(Some("atm"), None),
            stats(Some("atm"), Some("withdrawal")),
            stats(None, Some("balance"))
        ),
        (100, 100, 50, 50)
    );
}

/// Path spellings of names no structure may have: dot segments (plain and percent-encoded,
/// which arrive decoded), a slash, control characters, and dots alone.
const HOSTILE_STRUCTURE_NAMES: [&str; 8] = [
    "..", "%2e%2e", "%2E%2e", ".", "%2e", "a%2Fb", "a%00b", "...",
];

async fn a_structure_name_with_dot_segments_slashes_or_control_characters_is_refused(app: TestApp) {
    let client = Client::dev(&app).await;
    let definition = json!({"attributes": [{"name": "x", "value": {"literal": 1}}]}).to_string();
    let authorization = format!("Bearer {}", client.token);
    let headers = [
        ("authorization", authorization.as_str()),
        ("content-type", "application/json"),
    ];
    for name in HOSTILE_STRUCTURE_NAMES {
        let path = format!("/custdata/v1/mxo/{}/structures/{name}", client.site);
        for method in ["PUT", "GET", "DELETE"] {
            let body = if method == "PUT" {
                definition.as_str()
            } else {
                ""
            };
            let (status, error) = raw_request(&app, method, &path, &headers, body).await;
            assert_eq!(status, 400, "{method} {path}: {error}");
            assert_eq!(error["errorCode"], "INVALID_API_NAME", "{error}");
            assert_eq!(error["errors"][0]["field"], "structureApiName", "{error}");
            let message = error["errorMessage"].as_str().unwrap_or_default();
            assert!(
                message.contains("'.' or '..'")
                    || message.contains("starting with a letter or digit"),
                "the rule is named: {message}"
            );
        }
    }
    let tenant = TenantId::parse(&app.server.credentials.tenant).expect("tenant");
    let stored = custdata::mxo::customer::structures::list(app.server.app.table.as_ref(), &tenant)
        .await
        .expect("structures");
    assert_eq!(stored, Vec::<String>::new(), "nothing was stored");
    // A dotted name that is a name is still one.
    let (status, body) = client
        .define(
            "offers.v2",
            serde_json::from_str(&definition).expect("JSON"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// StructureResponse and StructureError type `tid` and `structureApiName` as strings: a
/// generated client rejects `null`, so a value custdata does not have is left out.
async fn a_structure_answer_never_holds_null_where_the_spec_types_a_string(app: TestApp) {
    let client = Client::dev(&app).await;
    let definition = json!({"attributes": [{"name": "greeting", "value": {"literal": "hello"}}]});
    let (status, saved) = client.define("welcome", definition).await;
    assert_eq!(status, 200, "{saved}");
    let (status, body) = client
        .structure(json!({"structureApiName": "welcome",
            "customerContext": {"baseTouchpointUri": "https://bank.example",
                "identifiers": [{"apiName": "customerKey", "value": "C-unknown"}]}}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["structure"], json!({"greeting": "hello"}));
    assert!(
        body.get("tid").is_none(),
        "no tid for an unknown customer: {body}"
    );
    let (status, body) = client
        .structure(
            json!({"customerContext": {"baseTouchpointUri": "https://bank.example",
            "identifiers": [{"apiName": "customerKey", "value": "C-1"}]}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errorCode"], "INVALID_API_NAME");
    assert!(
        body.get("structureApiName").is_none_or(Value::is_string),
        "{body}"
    );
}

on_both_adapters!(
    the_seed_atm_activity_creates_the_customer_and_is_read_back_newest_first,
    dynamic_proposition_codes_stop_at_255_characters_and_a_bad_request_stores_nothing,
    every_error_code_of_the_contract_is_given_where_it_applies,
    a_structure_returns_only_its_pairs_as_its_rules_decide,
    a_structure_naming_an_unknown_attribute_or_column_is_refused_when_saved,
    erasure_by_tid_and_by_identifier_removes_the_customer_and_suppresses_it,
    erasing_a_long_history_finishes_in_the_background_and_leaves_nothing,
    another_tenant_touches_nothing_through_any_customer_route,
    a_hundred_activities_are_stored_and_counted_in_one_go,
    a_structure_name_with_dot_segments_slashes_or_control_characters_is_refused,
    a_structure_answer_never_holds_null_where_the_spec_types_a_string,
);
