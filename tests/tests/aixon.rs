//! AIXON csv-upload over HTTP: the seed's example requests replayed verbatim, every column
//! rule, all-or-nothing, queued imports (double delivery, crash and resume, restart),
//! presigned uploads, suppression and tenant isolation. Every case runs on the embedded
//! store and on DynamoDB/S3 in the emulator, where the import is driven by the S3 event a
//! Lambda would receive.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use custdata::aixon::body::Format;
use custdata::aixon::import::{self, ImportReport};
use custdata::aixon::lease;
use custdata::aixon::order;
use custdata::aixon::store::{self as aixon_store, Mode, Status, UpdateRecord};
use custdata::app::App;
use custdata::customers::{self, CustomerRef, Identifier};
use custdata::domain::TenantId;
use custdata::storage::faults::{Fault, FaultAtWrite};
use custdata::storage::keys;
use custdata::storage::{BlobError, BlobMeta, BlobReader, BlobStore, PresignedUpload};
use custdata_tests::aixon as aixon_http;
use custdata_tests::{Adapter, TestApp, create_tenant, on_both_adapters, raw_request};
use lambda_http::RequestExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const CELLS: &str = "/api_upload/v1/csv-upload";
const JSON: &str = "application/json; charset=utf-8";
const CSV: &str = "text/csv";

const SEED_CREATE: &str = include_str!("../fixtures/aixon/create.json");
const SEED_PATCH: &str = include_str!("../fixtures/aixon/patch.json");
const SEED_OVERWRITE: &str = include_str!("../fixtures/aixon/overwrite.json");
const SEED_FORMAT_JSON: &str = include_str!("../fixtures/aixon/format-example.json");
const SEED_FORMAT_CSV: &str = include_str!("../fixtures/aixon/format-example.csv");

/// A client of one tenant's AIXON surface.
struct Aixon<'a> {
    app: &'a TestApp,
    key: String,
    tenant: TenantId,
}

impl<'a> Aixon<'a> {
    fn dev(app: &'a TestApp) -> Aixon<'a> {
        Aixon {
            app,
            key: app.server.credentials.aixon.api_key.clone(),
            tenant: TenantId::parse(&app.server.credentials.tenant).expect("dev tenant"),
        }
    }

    async fn of(app: &'a TestApp, name: &str) -> Aixon<'a> {
        let bundle = create_tenant(app, name).await;
        Aixon {
            app,
            key: bundle.aixon.api_key,
            tenant: TenantId::parse(&bundle.tenant).expect("tenant"),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut request = self
            .app
            .client
            .request(method, self.app.url(path))
            .header("x-api-key", &self.key);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("a JSON body, got {status} {text:?}"));
        (status, body)
    }

    /// Creates a data cell with a body and returns its resource id and update id.
    async fn create(&self, description: &str, content_type: &str, body: &str) -> (String, String) {
        let (status, reply) = self
            .send(
                Method::PUT,
                CELLS,
                Some(content_type),
                Some(body),
                &[("x-node-description", description)],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        assert_eq!(reply["status"], "success");
        assert_eq!(reply["message"]["STATUS"], "CREATED");
        (
            reply["message"]["RESOURCE_ID"]
                .as_str()
                .expect("id")
                .to_string(),
            reply["message"]["UPDATE_ID"]
                .as_str()
                .expect("update")
                .to_string(),
        )
    }

    /// Sends an update and returns its update id (asserting RECEIVED).
    async fn update(&self, method: Method, cell: &str, content_type: &str, body: &str) -> String {
        let (status, reply) = self
            .send(
                method,
                &format!("{CELLS}/{cell}"),
                Some(content_type),
                Some(body),
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        assert_eq!(
            reply,
            json!({"message": {"RESOURCE_ID": cell, "STATUS": "RECEIVED", "UPDATE_ID": reply["message"]["UPDATE_ID"]}, "status": "success"})
        );
        reply["message"]["UPDATE_ID"]
            .as_str()
            .expect("update")
            .to_string()
    }

    /// Runs the import the way the deployment would for this update's object: on AWS the
    /// S3 object-created notification Lambda receives, locally the worker's tick.
    /// Runs the import of one cell until it has nothing left: on AWS through the S3
    /// object-created notification Lambda receives for this update's object, locally as the
    /// worker does (runs are time slices; each resumes where the last stopped).
    async fn import(&self, cell: &str, update: &str) -> ImportReport {
        let mut total = ImportReport::default();
        for _ in 0..200 {
            let report = match self.app.adapter {
                Adapter::Aws => {
                    let key = keys::aixon_blob(&self.tenant, cell, update);
                    let event = aixon_http::s3_event("custdata-test", &key);
                    let report = import::handle_event(self.app.server.app.clone(), event)
                        .await
                        .expect("the import runs");
                    serde_json::from_value(report).expect("a report")
                }
                Adapter::Embedded => {
                    let deadline = Instant::now() + self.app.server.app.settings.import_budget;
                    import::import_cell(&self.app.server.app, &self.tenant, cell, deadline)
                        .await
                        .expect("the import runs")
                }
            };
            total.updates_finished += report.updates_finished;
            total.rows_processed += report.rows_processed;
            total.row_errors += report.row_errors;
            total.updates_failed += report.updates_failed;
            total.cells_busy += report.cells_busy;
            total.cells_waiting += report.cells_waiting;
            if !report.paused {
                return total;
            }
        }
        panic!("the import did not finish in 200 runs");
    }

    async fn status(&self, cell: &str, update: &str) -> Value {
        let (status, body) = self
            .send(
                Method::GET,
                &format!("/custdata/v1/aixon/csv-upload/{cell}/updates/{update}"),
                None,
                None,
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn row(&self, cell: &str, customuid: &str) -> (StatusCode, Value) {
        self.send(
            Method::GET,
            &format!("/custdata/v1/aixon/csv-upload/{cell}/rows/{customuid}"),
            None,
            None,
            &[],
        )
        .await
    }

    async fn customer(&self, customuid: &str) -> Option<customers::Customer> {
        customers::find(
            self.app.server.app.customers(),
            &self.tenant,
            &CustomerRef {
                tid: None,
                identifiers: vec![Identifier::customer_key(customuid)],
            },
        )
        .await
        .expect("the store answers")
    }
}

/// The same object's event as EventBridge delivers it (the deployed rule's shape).
fn eventbridge_event(key: &str) -> Value {
    json!({
        "version": "0",
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": "custdata-test"}, "object": {"key": key, "size": 1}, "reason": "PutObject"}
    })
}

fn rules(body: &Value) -> Vec<(Value, Value, String)> {
    body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["row"].clone(),
                e["column"].clone(),
                e["rule"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

async fn the_seed_examples_replayed_verbatim_get_the_documented_answers(app: TestApp) {
    let aixon = Aixon::dev(&app);
    let (status, listed) = aixon.send(Method::GET, CELLS, Some(JSON), None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        listed,
        json!({"message": [
            {"DESCRIPTION": "GET all csv-upload resources", "SUPPORT_METHODS": ["GET"], "URL": "/api_upload/v1/csv-upload"},
            {"DESCRIPTION": "Create a new CSV Upload node", "SUPPORT_METHODS": ["PUT"], "URL": "/api_upload/v1/csv-upload"}
        ], "status": "success"})
    );

    // Create: the rows end in `, ,]` (not JSON) and read as two empty values.
    let (cell, created) = aixon.create("This new node name", JSON, SEED_CREATE).await;
    assert_eq!(aixon.status(&cell, &created).await["status"], "QUEUED");
    let report = aixon.import(&cell, &created).await;
    assert_eq!(report.rows_processed, 5);
    let status = aixon.status(&cell, &created).await;
    assert_eq!(
        (
            &status["status"],
            &status["rows"],
            &status["applied"],
            &status["errorCount"]
        ),
        (&json!("DONE"), &json!(5), &json!(5), &json!(0)),
        "{status}"
    );
    let (found, row) = aixon.row(&cell, "crm002").await;
    assert_eq!(found, StatusCode::OK, "{row}");
    assert_eq!(row["values"]["attr_interest"], json!(["reading", "biking"]));
    assert_eq!(
        row["values"]["emailsha256"].as_array().map(Vec::len),
        Some(2)
    );
    assert!(row["values"].get("goal_conversion_subscription").is_none());
    let crm001 = aixon
        .customer("crm001")
        .await
        .expect("crm001 is a customer");
    assert_eq!(crm001.attributes["num_spending"], json!(2135.0));
    assert_eq!(
        crm001.attributes["goal_conversion_subscription"],
        json!(true)
    );
    assert_eq!(
        crm001.attributes["goal_conversion_subscription_timestamp"],
        json!(1514254499)
    );
    assert_eq!(
        crm001.attributes["attr_interest"],
        json!(["cooking", "writing"])
    );
    assert_eq!(
        crm001.identifier("emailsha256"),
        Some("f660ab912ec121d1b1e928a0bb4bc61b15f5ad44d5efdc4e1c92a25e99b8e44a")
    );
    assert_eq!(crm001.identifier("customerKey"), Some("crm001"));

    // Update, as the seed's curl sends it (no -X: POST, served as PATCH).
    let patched = aixon.update(Method::POST, &cell, JSON, SEED_PATCH).await;
    aixon.import(&cell, &patched).await;
    assert_eq!(aixon.status(&cell, &patched).await["applied"], 5);
    let crm001 = aixon.customer("crm001").await.expect("crm001");
    assert_eq!(crm001.attributes["num_spending"], json!(5321.0));
    assert!(crm001.identifiers.contains(&Identifier::new(
        "emailsha256",
        "2b96e23f4121c0d939da02ac6c842ee508496d0de2bfbc37ad6c3fe1c161d618"
    )));
    let (found, crm007) = aixon.row(&cell, "crm007").await;
    assert_eq!(found, StatusCode::OK);
    assert_eq!(crm007["values"]["num_spending"], json!(1234.0));
    let (_, crm005) = aixon.row(&cell, "crm005").await;
    assert_eq!(
        crm005["values"]["num_spending"],
        json!(7291.0),
        "rows not in the PATCH stay"
    );

    // Overwrite, both as written (POST) and as meant (PUT): 12 columns, 9 values a row,
    // original columns dropped, "M" in num_a. Refused whole.
    for method in [Method::POST, Method::PUT] {
        let (status, refused) = aixon
            .send(
                method.clone(),
                &format!("{CELLS}/{cell}"),
                Some(JSON),
                Some(SEED_OVERWRITE),
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {refused}");
        assert_eq!(refused["status"], "error");
        let found = rules(&refused);
        for row in 1..=5 {
            assert!(
                found
                    .iter()
                    .any(|(r, _, rule)| *r == json!(row)
                        && rule == "row has 9 values, header has 12"),
                "row {row} in {refused}"
            );
        }
        assert!(found.iter().any(|(r, c, rule)| *r == json!(1)
            && *c == json!("num_a")
            && rule.contains("got \"M\"")));
        if method == Method::PUT {
            for dropped in ["txt_region", "num_spending", "attr_interest"] {
                assert!(
                    found.iter().any(|(_, c, _)| *c == json!(dropped)),
                    "{dropped} in {refused}"
                );
            }
        }
    }
    let (_, crm001_row) = aixon.row(&cell, "crm001").await;
    assert_eq!(
        crm001_row["values"]["num_spending"],
        json!(5321.0),
        "nothing of a refused body is written"
    );

    // The two format examples, each as a new cell.
    let (csv_cell, csv_update) = aixon.create("csv example", CSV, SEED_FORMAT_CSV).await;
    let (json_cell, json_update) = aixon.create("json example", JSON, SEED_FORMAT_JSON).await;
    aixon.import(&csv_cell, &csv_update).await;
    aixon.import(&json_cell, &json_update).await;
    for (cell, update) in [(&csv_cell, &csv_update), (&json_cell, &json_update)] {
        let status = aixon.status(cell, update).await;
        assert_eq!(
            (&status["status"], &status["applied"]),
            (&json!("DONE"), &json!(6)),
            "{status}"
        );
        let (_, row) = aixon.row(cell, "crm002").await;
        assert_eq!(row["values"]["attr_interest"], json!(["reading", "biking"]));
        assert_eq!(row["values"]["txt_gender"], json!("F"));
    }
    let (_, listed) = aixon.send(Method::GET, CELLS, None, None, &[]).await;
    let entries = listed["message"].as_array().expect("entries");
    assert_eq!(entries.len(), 5);
    let url = format!("{CELLS}/{cell}");
    let entry = entries.iter().find(|entry| entry["URL"] == json!(url));
    assert_eq!(
        entry,
        Some(
            &json!({"DESCRIPTION": format!("Upload csv data {cell}: This new node name"), "SUPPORT_METHODS": ["PUT", "PATCH"], "URL": url})
        )
    );
}

/// A request that must be refused: method, path, content type, body, status, and the
/// column and rule the error names.
struct Refusal<'a>(
    Method,
    &'a str,
    Option<&'a str>,
    String,
    StatusCode,
    Option<&'a str>,
    &'a str,
);

async fn each_column_rule_gives_a_400_naming_row_column_and_rule_and_writes_nothing(app: TestApp) {
    let aixon = Aixon::dev(&app);
    let (cell, first) = aixon
        .create(
            "rules",
            CSV,
            "customuid,num_a,goal_click_x,goal_click_x_timestamp,attr_t\nc0,1,1,0,a\n",
        )
        .await;
    aixon.import(&cell, &first).await;
    let bad = "customuid,num_a,goal_click_x,goal_click_x_timestamp,attr_t\n\
               c1,M,1,0,a\n\
               c2,1,2,1.5,b\n\
               c3,1\n\
               c1,2,0,0,c\n\
               ,1,1,0,d\n\
               c9,1,1,0,fine\n";
    let (status, refused) = aixon
        .send(
            Method::PATCH,
            &format!("{CELLS}/{cell}"),
            Some(CSV),
            Some(bad),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(
        refused["message"],
        "5 rows rejected, 6 problems; nothing was written"
    );
    let found: Vec<(Value, Value)> = rules(&refused)
        .into_iter()
        .map(|(r, c, _)| (r, c))
        .collect();
    assert_eq!(
        found,
        vec![
            (json!(2), json!("num_a")),
            (json!(3), json!("goal_click_x")),
            (json!(3), json!("goal_click_x_timestamp")),
            (json!(4), Value::Null),
            (json!(5), json!("customuid")),
            (json!(6), json!("customuid")),
        ]
    );
    let (missing, _) = aixon.row(&cell, "c9").await;
    assert_eq!(
        missing,
        StatusCode::NOT_FOUND,
        "the good row of a refused body is not written"
    );

    let cases: Vec<Refusal> = vec![
        Refusal(
            Method::PUT,
            CELLS,
            Some(CSV),
            "customuid,age\nc1,1\n".into(),
            StatusCode::BAD_REQUEST,
            Some("age"),
            "not an AIXON column",
        ),
        Refusal(
            Method::PUT,
            CELLS,
            Some(CSV),
            "email\nx@y\n".into(),
            StatusCode::BAD_REQUEST,
            Some("customuid"),
            "needs a customuid column",
        ),
        Refusal(
            Method::PUT,
            CELLS,
            Some(JSON),
            r#"{"header":["customuid","goal_churn_a"],"data":[["c1",true]]}"#.into(),
            StatusCode::BAD_REQUEST,
            None,
            "true/false",
        ),
        Refusal(
            Method::PUT,
            CELLS,
            Some(JSON),
            r#"{"header":["customuid"],"data":[["c1"] ["c2"]]}"#.into(),
            StatusCode::BAD_REQUEST,
            None,
            "body is not valid JSON at line 1",
        ),
        Refusal(
            Method::PUT,
            CELLS,
            Some("text/plain"),
            "customuid\nc1\n".into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            None,
            "",
        ),
        Refusal(
            Method::PUT,
            CELLS,
            Some(CSV),
            format!("customuid,txt_a\nc1,{}\n", "x".repeat(1001)),
            StatusCode::BAD_REQUEST,
            Some("txt_a"),
            "at most 1000 characters",
        ),
        Refusal(
            Method::PATCH,
            "/api_upload/v1/csv-upload/nosuchcell",
            Some(CSV),
            "customuid\nc1\n".into(),
            StatusCode::NOT_FOUND,
            None,
            "",
        ),
    ];
    for Refusal(method, path, content_type, body, expected, column, rule) in cases {
        let (status, reply) = aixon
            .send(
                method,
                path,
                content_type,
                Some(&body),
                &[("x-node-description", "x")],
            )
            .await;
        assert_eq!(status, expected, "{path} {body:.60}: {reply}");
        assert_eq!(reply["status"], "error", "{reply}");
        if !rule.is_empty() {
            assert!(
                rules(&reply)
                    .iter()
                    .any(|(_, c, r)| column.is_none_or(|c2| *c == json!(c2)) && r.contains(rule)),
                "{rule} on {column:?} in {reply}"
            );
        }
    }
    let (status, reply) = aixon
        .send(Method::PUT, CELLS, Some(CSV), Some("customuid\nc1\n"), &[])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(rules(&reply)[0].1, json!("x-node-description"));

    // PATCH must repeat the columns in order; PUT may add but not drop.
    let (status, reply) = aixon
        .send(
            Method::PATCH,
            &format!("{CELLS}/{cell}"),
            Some(CSV),
            Some("customuid,goal_click_x,num_a,goal_click_x_timestamp,attr_t\nc1,1,1,0,a\n"),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert!(
        rules(&reply)[0]
            .2
            .contains("PATCH needs the cell's columns in the cell's order")
    );
    let (status, reply) = aixon
        .send(
            Method::PUT,
            &format!("{CELLS}/{cell}"),
            Some(CSV),
            Some("customuid,num_a\nc1,1\n"),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    let dropped: Vec<Value> = rules(&reply).into_iter().map(|(_, c, _)| c).collect();
    assert_eq!(
        dropped,
        vec![
            json!("goal_click_x"),
            json!("goal_click_x_timestamp"),
            json!("attr_t")
        ]
    );
    let widened =
        "customuid,num_a,goal_click_x,goal_click_x_timestamp,attr_t,txt_new\nc1,1,1,0,a,hello\n";
    let put = aixon.update(Method::PUT, &cell, CSV, widened).await;
    // The widened header is the cell's at once: a PATCH sent before the import fits it.
    let patch = aixon
        .update(
            Method::PATCH,
            &cell,
            CSV,
            "customuid,num_a,goal_click_x,goal_click_x_timestamp,attr_t,txt_new\nc1,2,,,,\n",
        )
        .await;
    aixon.import(&cell, &put).await;
    aixon.import(&cell, &patch).await;
    let (_, row) = aixon.row(&cell, "c1").await;
    assert_eq!(
        row["values"],
        json!({"customuid": "c1", "num_a": 2.0}),
        "applied in order; a row is replaced whole"
    );
    let (_, row) = aixon.row(&cell, "c0").await;
    assert_eq!(
        row["values"]["num_a"],
        json!(1.0),
        "customers absent from a PUT keep their rows"
    );

    // Credentials.
    for key in ["", "not-a-key", &app.server.credentials.optimove.api_key] {
        let response = app
            .client
            .get(app.url(CELLS))
            .header("x-api-key", key)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "key {key:?}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["status"], "error");
    }
}

async fn a_double_delivered_or_late_event_applies_once(app: TestApp) {
    let aixon = Aixon::dev(&app);
    let (cell, created) = aixon.create("twice", JSON, SEED_CREATE).await;
    let blob = keys::aixon_blob(&aixon.tenant, &cell, &created);
    let first = aixon.import(&cell, &created).await;
    assert_eq!((first.updates_finished, first.rows_processed), (1, 5));
    let before = aixon.customer("crm003").await.expect("crm003");
    for event in [
        aixon_http::s3_event("custdata-test", &blob),
        eventbridge_event(&blob),
        aixon_http::s3_event("custdata-test", &blob),
    ] {
        let again = import::handle_event(app.server.app.clone(), event)
            .await
            .expect("runs");
        assert_eq!(
            again["rows_processed"], 0,
            "a finished object is not imported again: {again}"
        );
    }
    let status = aixon.status(&cell, &created).await;
    assert_eq!(
        (&status["applied"], &status["processed"]),
        (&json!(5), &json!(5))
    );
    let after = aixon.customer("crm003").await.expect("crm003");
    assert_eq!(before, after);
    assert!(
        app.server
            .app
            .blobs
            .get(&blob)
            .await
            .expect("blob store")
            .is_none(),
        "a finished body is removed"
    );
}

/// Takes the cell's next update number as an inline PATCH does first, and returns what
/// finishes that PATCH later: its record and its body, stored as `accept` stores them.
async fn patch_in_flight(
    aixon: &Aixon<'_>,
    cell: &str,
    body: &'static str,
) -> (UpdateRecord, impl Future<Output = ()>) {
    let app = aixon.app.server.app.clone();
    let id = aixon_store::next_update_id(app.table.as_ref(), &aixon.tenant, cell)
        .await
        .expect("a number");
    let mut update = UpdateRecord::new(id, cell, Mode::Patch, Format::Csv, app.clock.now_millis());
    update.checked = true;
    update.rows = 1;
    let record = update.clone();
    let tenant = aixon.tenant.clone();
    let finish = async move {
        aixon_store::put_update(app.table.as_ref(), &tenant, &update, None)
            .await
            .expect("the record");
        let reader: BlobReader = Box::pin(std::io::Cursor::new(body.as_bytes()));
        app.blobs
            .put(
                &keys::aixon_blob(&tenant, &update.cell, &update.id),
                CSV,
                reader,
            )
            .await
            .expect("the body");
    };
    (record, finish)
}

async fn a_later_body_that_arrives_first_waits_for_the_earlier_one(app: TestApp) {
    let aixon = Aixon::dev(&app);
    let (cell, created) = aixon
        .create("order", CSV, "customuid,txt_region\ncrm101,created\n")
        .await;
    aixon.import(&cell, &created).await;

    // A PATCH has its number and is still storing its body when the next PATCH is done.
    let (earlier, finish_earlier) =
        patch_in_flight(&aixon, &cell, "customuid,txt_region\ncrm101,earlier\n").await;
    let later = aixon
        .update(
            Method::PATCH,
            &cell,
            CSV,
            "customuid,txt_region\ncrm101,later\n",
        )
        .await;
    assert!(earlier.id < later, "{} before {later}", earlier.id);
    let waited = aixon.import(&cell, &later).await;
    assert_eq!(
        (waited.rows_processed, waited.cells_waiting),
        (0, 1),
        "the later body waits: {waited:?}"
    );
    assert_eq!(aixon.status(&cell, &later).await["status"], "QUEUED");
    let (_, row) = aixon.row(&cell, "crm101").await;
    assert_eq!(row["values"]["txt_region"], "created");

    // The earlier body arrives: both are imported, in the order they were accepted.
    finish_earlier.await;
    let both = aixon.import(&cell, &earlier.id).await;
    assert_eq!(
        (both.updates_finished, both.cells_waiting),
        (2, 0),
        "{both:?}"
    );
    for update in [&earlier.id, &later] {
        assert_eq!(aixon.status(&cell, update).await["status"], "DONE");
    }
    let (_, row) = aixon.row(&cell, "crm101").await;
    assert_eq!(row["values"]["txt_region"], "later", "{row}");
    assert_eq!(row["updateId"], later.as_str());
}

/// A blob store that refuses every body and does everything else as the real one.
struct RefusingBodies(Arc<dyn BlobStore>);

#[async_trait::async_trait]
impl BlobStore for RefusingBodies {
    async fn put(&self, _: &str, _: &str, _: BlobReader) -> Result<u64, BlobError> {
        Err(BlobError::Unavailable("refused by the test".into()))
    }
    async fn get(&self, key: &str) -> Result<Option<(BlobMeta, BlobReader)>, BlobError> {
        self.0.get(key).await
    }
    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        expires_in: Duration,
    ) -> Result<PresignedUpload, BlobError> {
        self.0.presign_put(key, content_type, expires_in).await
    }
    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        self.0.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError> {
        self.0.list(prefix).await
    }
}

async fn a_body_the_blob_store_refuses_fails_its_update_and_holds_nothing_back(app: TestApp) {
    let aixon = Aixon::dev(&app);
    let (cell, created) = aixon
        .create("refused", CSV, "customuid,txt_region\ncrm301,created\n")
        .await;
    aixon.import(&cell, &created).await;

    let real = app.server.app.clone();
    let refusing = Arc::new(real.with_blobs(Arc::new(RefusingBodies(real.blobs.clone()))));
    let request = http::Request::builder()
        .method("PATCH")
        .uri(format!("https://api.example{CELLS}/{cell}"))
        .header("x-api-key", &aixon.key)
        .header("content-type", CSV)
        .body(lambda_http::Body::from(
            "customuid,txt_region\ncrm301,refused\n",
        ))
        .expect("a request");
    let request =
        custdata::http::with_route_key(request, "PATCH /api_upload/v1/csv-upload/{resourceId}")
            .with_path_parameters(HashMap::from([("resourceId".to_string(), cell.clone())]));
    let response =
        custdata::http::dispatch(refusing, &custdata::aixon::UPLOAD_FAMILY, request).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let refused = aixon_store::updates_back_to_last_done(
        real.table.as_ref(),
        &aixon.tenant,
        &cell,
        "999999999999",
    )
    .await
    .expect("the records");
    assert_eq!(
        refused.len(),
        2,
        "the refused update, then the created one: {refused:?}"
    );
    assert_eq!(refused[0].status, Status::Failed, "{refused:?}");
    assert_eq!(refused[0].errors[0].rule, order::NEVER_ARRIVED);

    // The next PATCH is imported at once, without waiting for the refused body.
    let later = aixon
        .update(
            Method::PATCH,
            &cell,
            CSV,
            "customuid,txt_region\ncrm301,later\n",
        )
        .await;
    let imported = aixon.import(&cell, &later).await;
    assert_eq!(
        (imported.updates_finished, imported.cells_waiting),
        (1, 0),
        "{imported:?}"
    );
    let (_, row) = aixon.row(&cell, "crm301").await;
    assert_eq!(row["values"]["txt_region"], "later", "{row}");
}

async fn a_body_that_never_arrives_holds_the_cell_back_for_a_minute_only(app: TestApp) {
    let aixon = Aixon::dev(&app);
    let (cell, created) = aixon
        .create("lost", CSV, "customuid,txt_region\ncrm201,created\n")
        .await;
    aixon.import(&cell, &created).await;

    // One request took a number and died; another wrote its record and died before the body.
    let (_numbered, _never_finished) =
        patch_in_flight(&aixon, &cell, "customuid,txt_region\ncrm201,lost\n").await;
    let (recorded, _) = patch_in_flight(&aixon, &cell, "customuid,txt_region\ncrm201,lost\n").await;
    aixon_store::put_update(
        app.server.app.table.as_ref(),
        &aixon.tenant,
        &recorded,
        None,
    )
    .await
    .expect("the record");
    let later = aixon
        .update(
            Method::PATCH,
            &cell,
            CSV,
            "customuid,txt_region\ncrm201,later\n",
        )
        .await;
    let waited = aixon.import(&cell, &later).await;
    assert_eq!(
        (waited.rows_processed, waited.cells_waiting),
        (0, 1),
        "{waited:?}"
    );

    app.clock.advance_seconds(order::ARRIVAL_WAIT_SECONDS);
    let imported = aixon.import(&cell, &later).await;
    assert_eq!(
        (
            imported.updates_finished,
            imported.updates_failed,
            imported.cells_waiting
        ),
        (1, 1, 0),
        "the later body imported, the recorded one given up: {imported:?}"
    );
    let (_, row) = aixon.row(&cell, "crm201").await;
    assert_eq!(row["values"]["txt_region"], "later", "{row}");
    let lost = aixon.status(&cell, &recorded.id).await;
    assert_eq!(lost["status"], "FAILED", "{lost}");
    assert_eq!(lost["errors"][0]["rule"], order::NEVER_ARRIVED, "{lost}");
}

async fn a_run_with_time_left_waits_out_a_body_that_never_arrives_and_goes_on(app: TestApp) {
    let aixon = Aixon::dev(&app);
    let (cell, created) = aixon
        .create("patient", CSV, "customuid,txt_region\ncrm401,created\n")
        .await;
    aixon.import(&cell, &created).await;
    // A request took a number and died; the next PATCH is stored.
    let (_numbered, _never_finished) =
        patch_in_flight(&aixon, &cell, "customuid,txt_region\ncrm401,lost\n").await;
    let later = aixon
        .update(
            Method::PATCH,
            &cell,
            CSV,
            "customuid,txt_region\ncrm401,later\n",
        )
        .await;

    // A run with ten seconds left, a second before the lost number is given up: it sleeps
    // that second (the test's clock is moved on meanwhile, as real time would be) and
    // imports the later body in the same run.
    app.clock.advance_seconds(order::ARRIVAL_WAIT_SECONDS - 1);
    let clock = app.clock.clone();
    let moved_on = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        clock.advance_seconds(2);
    });
    let report = import::import_cell(
        &app.server.app,
        &aixon.tenant,
        &cell,
        Instant::now() + Duration::from_secs(10),
    )
    .await
    .expect("the import runs");
    moved_on.await.expect("the clock moved on");
    assert_eq!(
        (report.updates_finished, report.cells_waiting),
        (1, 0),
        "{report:?}"
    );
    assert_eq!(aixon.status(&cell, &later).await["status"], "DONE");
    let (_, row) = aixon.row(&cell, "crm401").await;
    assert_eq!(row["values"]["txt_region"], "later", "{row}");
}

fn generated_csv(rows: usize, seed: usize) -> String {
    let mut body =
        String::from("customuid,emailsha256,num_score,txt_tier,attr_tags,goal_purchase_any\n");
    for i in 0..rows {
        body.push_str(&format!(
            "cust{i:05},{:064x},{},{},\"t{},t{}\",{}\n",
            i + 1,
            i * seed,
            ["gold", "silver"][i % 2],
            i % 7,
            i % 3,
            i % 2
        ));
    }
    body
}

async fn a_crash_mid_import_resumes_to_the_state_of_a_clean_run(app: TestApp) {
    // moto answers a request in tens of milliseconds: fewer rows there.
    let rows = match app.adapter {
        Adapter::Embedded => 1_000,
        Adapter::Aws => 60,
    };
    let body = generated_csv(rows, 3);
    let crashed = Aixon::dev(&app);
    let clean = Aixon::of(&app, "clean").await;
    let (cell, update) = crashed.create("crash", CSV, &body).await;
    let (clean_cell, clean_update) = clean.create("clean", CSV, &body).await;
    clean.import(&clean_cell, &clean_update).await;

    // The importer dies at its 9th write (lease, status, four attribute names, the listing
    // ordinals of the chunk, one customer transaction, then the crash): customers of the
    // first chunk partly written, the lease held, the checkpoint behind.
    let real = app.server.app.clone();
    let dying = Arc::new(real.with_table(Arc::new(FaultAtWrite::new(
        real.table.clone(),
        9,
        Fault::Crash,
    ))));
    let deadline = Instant::now() + Duration::from_secs(60);
    let crash = import::import_cell(&dying, &crashed.tenant, &cell, deadline).await;
    assert!(crash.is_err(), "the injected crash stops the import");
    let midway = crashed.status(&cell, &update).await;
    assert_eq!(midway["status"], "PROCESSING", "{midway}");
    assert_eq!(midway["processed"], 0, "{midway}");
    assert!(
        crashed.customer("cust00000").await.is_some()
            && crashed
                .customer(&format!("cust{:05}", rows - 1))
                .await
                .is_none(),
        "the crash came after the first customers were written and before the last"
    );

    // Another importer finds the lease held until it expires, then resumes.
    let blocked = crashed.import(&cell, &update).await;
    assert_eq!((blocked.cells_busy, blocked.rows_processed), (1, 0));
    app.clock.advance_seconds(lease::LEASE_SECONDS + 1);
    crashed.import(&cell, &update).await;
    let done = crashed.status(&cell, &update).await;
    assert_eq!(
        (
            &done["status"],
            &done["rows"],
            &done["processed"],
            &done["applied"],
            &done["errorCount"]
        ),
        (
            &json!("DONE"),
            &json!(rows),
            &json!(rows),
            &json!(rows),
            &json!(0)
        ),
        "{done}"
    );
    for i in 0..rows {
        let customuid = format!("cust{i:05}");
        let (_, resumed_row) = crashed.row(&cell, &customuid).await;
        let (_, clean_row) = clean.row(&clean_cell, &customuid).await;
        assert_eq!(resumed_row["values"], clean_row["values"], "{customuid}");
        let resumed = crashed.customer(&customuid).await.expect("customer");
        let reference = clean.customer(&customuid).await.expect("customer");
        assert_eq!(resumed.attributes, reference.attributes, "{customuid}");
        assert_eq!(
            resumed.identifiers.len(),
            reference.identifiers.len(),
            "{customuid}"
        );
    }
}

async fn a_suppressed_customer_is_refused_per_row(app: TestApp) {
    let aixon = Aixon::dev(&app);
    let (cell, created) = aixon.create("erasure", JSON, SEED_CREATE).await;
    aixon.import(&cell, &created).await;
    let (status, erased) = aixon
        .send(
            Method::DELETE,
            "/custdata/v1/aixon/customers/crm001",
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{erased}");
    assert_eq!(erased["message"]["CELLS"], 1);
    assert!(aixon.customer("crm001").await.is_none());
    assert_eq!(aixon.row(&cell, "crm001").await.0, StatusCode::NOT_FOUND);
    let patched = aixon.update(Method::PATCH, &cell, JSON, SEED_CREATE).await;
    aixon.import(&cell, &patched).await;
    let status = aixon.status(&cell, &patched).await;
    assert_eq!(
        (&status["status"], &status["applied"], &status["errorCount"]),
        (&json!("DONE"), &json!(4), &json!(1))
    );
    let refused = rules(&status);
    assert_eq!(
        (refused[0].0.clone(), refused[0].1.clone()),
        (json!(1), json!("customuid"))
    );
    assert!(refused[0].2.contains("suppressed"), "{status}");
    assert!(
        aixon.customer("crm001").await.is_none(),
        "an erased customer is not re-created"
    );
    assert_eq!(aixon.row(&cell, "crm001").await.0, StatusCode::NOT_FOUND);
    let (status, _) = aixon
        .send(
            Method::DELETE,
            "/custdata/v1/aixon/customers/nobody",
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn presigned_uploads_take_bodies_above_the_inline_limit(app: TestApp) {
    let aixon = Aixon::dev(&app);
    // 100 MB in rows of 10 KB on the embedded store; on the emulator, where each request
    // takes tens of milliseconds, 6 MB (over Lambda's inline limit) in rows of 100 KB.
    let (target, columns): (usize, usize) = match app.adapter {
        Adapter::Embedded => (100 * 1024 * 1024, 10),
        Adapter::Aws => (6 * 1024 * 1024, 100),
    };
    let names: Vec<String> = (0..columns).map(|i| format!("txt_{i}")).collect();
    let header = format!("customuid,{}", names.join(","));
    let (cell, created) = aixon
        .create(
            "large",
            CSV,
            &format!("{header}\nc0{}\n", ",".repeat(columns)),
        )
        .await;
    aixon.import(&cell, &created).await;
    let value = "v".repeat(990);
    let mut body = format!("{header}\n");
    let mut rows = 0;
    while body.len() < target {
        body.push_str(&format!("c{rows}"));
        for _ in 0..columns {
            body.push(',');
            body.push_str(&value);
        }
        body.push('\n');
        rows += 1;
    }
    let upload = new_upload(&aixon, &cell).await;
    let update = upload["UPDATE_ID"].as_str().expect("update").to_string();
    assert_eq!(
        aixon.status(&cell, &update).await["status"],
        "WAITING_FOR_UPLOAD"
    );
    let mut put = app.client.put(upload["UPLOAD_URL"].as_str().expect("url"));
    for (name, value) in upload["HEADERS"].as_object().expect("headers") {
        put = put.header(name.as_str(), value.as_str().expect("value"));
    }
    let uploaded = put.body(body.into_bytes()).send().await.expect("upload");
    assert!(uploaded.status().is_success(), "{}", uploaded.status());
    aixon.import(&cell, &update).await;
    let status = aixon.status(&cell, &update).await;
    assert_eq!(
        (&status["status"], &status["applied"]),
        (&json!("DONE"), &json!(rows)),
        "{status}"
    );
    let (_, last) = aixon.row(&cell, &format!("c{}", rows - 1)).await;
    assert_eq!(last["values"][&names[columns - 1]], json!(value));

    // A bad uploaded body is refused whole when it is imported, and says why.
    let (_, upload) = aixon
        .send(
            Method::POST,
            &format!("/custdata/v1/aixon/csv-upload/{cell}/uploads"),
            Some("application/json"),
            Some(r#"{"mode":"PATCH","contentType":"application/json"}"#),
            &[],
        )
        .await;
    let update = upload["UPDATE_ID"].as_str().expect("update").to_string();
    let bad = r#"{"header":["customuid","txt_a"],"data":[["zz1","x"]]}"#;
    let mut put = app.client.put(upload["UPLOAD_URL"].as_str().expect("url"));
    for (name, value) in upload["HEADERS"].as_object().expect("headers") {
        put = put.header(name.as_str(), value.as_str().expect("value"));
    }
    assert!(
        put.body(bad)
            .send()
            .await
            .expect("upload")
            .status()
            .is_success()
    );
    aixon.import(&cell, &update).await;
    let status = aixon.status(&cell, &update).await;
    assert_eq!(
        (&status["status"], &status["applied"]),
        (&json!("FAILED"), &json!(0)),
        "{status}"
    );
    assert!(
        rules(&status)[0]
            .2
            .contains("PATCH needs the cell's columns")
    );
    assert_eq!(aixon.row(&cell, "zz1").await.0, StatusCode::NOT_FOUND);

    // In Lambda a body above the inline limit is refused before the handler, pointing here.
    let real = app.server.app.clone();
    let mut settings = real.settings.clone();
    settings.lambda_limits = Some(custdata::app::LAMBDA_LIMITS);
    let lambda_app = Arc::new(App {
        table: real.table.clone(),
        blobs: real.blobs.clone(),
        clock: real.clock.clone(),
        settings,
        hash_key: real.hash_key.clone(),
        signing: real.signing.clone(),
    });
    let request = http::Request::builder()
        .method("PATCH")
        .uri(format!("https://api.example{CELLS}/{cell}"))
        .header("x-api-key", &aixon.key)
        .header("content-type", CSV)
        .body(lambda_http::Body::Text("x".repeat(5_500_000)))
        .expect("request");
    let request =
        custdata::http::with_route_key(request, "PATCH /api_upload/v1/csv-upload/{resourceId}");
    let response =
        custdata::http::dispatch(lambda_app, &custdata::aixon::UPLOAD_FAMILY, request).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = match response.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).expect("json"),
        other => panic!("a text body, got {other:?}"),
    };
    let message = body["message"].as_str().expect("message");
    assert!(
        message.contains("5000000 bytes")
            && message.contains("/custdata/v1/aixon/csv-upload/{resourceId}/uploads"),
        "{message}"
    );
}

/// Asks the uploads extension for a presigned URL (PATCH, CSV).
async fn new_upload(aixon: &Aixon<'_>, cell: &str) -> Value {
    let (status, upload) = aixon
        .send(
            Method::POST,
            &format!("/custdata/v1/aixon/csv-upload/{cell}/uploads"),
            Some("application/json"),
            Some(r#"{"mode":"PATCH","contentType":"text/csv"}"#),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{upload}");
    upload
}

/// PUTs a body to a presigned URL with the headers it names: the status and the body.
async fn put_upload(client: &reqwest::Client, upload: &Value, body: &str) -> (StatusCode, String) {
    let mut put = client.put(upload["UPLOAD_URL"].as_str().expect("url"));
    for (name, value) in upload["HEADERS"].as_object().expect("headers") {
        put = put.header(name.as_str(), value.as_str().expect("value"));
    }
    let response = put.body(body.to_string()).send().await.expect("upload");
    let status = response.status();
    (status, response.text().await.expect("a body"))
}

async fn a_presigned_upload_url_takes_one_body_before_and_after_its_import(app: TestApp) {
    let aixon = Aixon::dev(&app);
    let (cell, created) = aixon
        .create("once", CSV, "customuid,txt_a\nu0,zero\n")
        .await;
    aixon.import(&cell, &created).await;
    let refused_as_used = |status: StatusCode, text: &str| {
        assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{text}");
        if app.adapter == Adapter::Embedded {
            // In AWS the client talks to S3, which answers its own 412 (XML).
            let body: Value = serde_json::from_str(text).expect("AIXON's error shape");
            assert_eq!(body["status"], "error", "{body}");
            assert!(
                body["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("has been used already")),
                "{body}"
            );
        }
    };

    // A second PUT before the import is refused, and the first body is the one imported.
    let upload = new_upload(&aixon, &cell).await;
    let update = upload["UPDATE_ID"].as_str().expect("update").to_string();
    let (status, text) = put_upload(&app.client, &upload, "customuid,txt_a\nu1,first\n").await;
    assert!(status.is_success(), "{status} {text}");
    let (status, text) = put_upload(&app.client, &upload, "customuid,txt_a\nu2,second\n").await;
    refused_as_used(status, &text);
    aixon.import(&cell, &update).await;
    let done = aixon.status(&cell, &update).await;
    assert_eq!(
        (&done["status"], &done["applied"]),
        (&json!("DONE"), &json!(1)),
        "{done}"
    );
    assert_eq!(aixon.row(&cell, "u1").await.1["values"]["txt_a"], "first");
    assert_eq!(aixon.row(&cell, "u2").await.0, StatusCode::NOT_FOUND);

    // After the import too: the URL still works for its hour, and still takes no second body.
    let (status, text) = put_upload(&app.client, &upload, "customuid,txt_a\nu3,third\n").await;
    refused_as_used(status, &text);
    aixon.import(&cell, &update).await;
    assert_eq!(aixon.status(&cell, &update).await, done);
    assert_eq!(aixon.row(&cell, "u3").await.0, StatusCode::NOT_FOUND);

    // Two PUTs racing on a fresh URL: exactly one is taken, and it is the one imported.
    let upload = new_upload(&aixon, &cell).await;
    let update = upload["UPDATE_ID"].as_str().expect("update").to_string();
    let ((first, _), (second, text)) = tokio::join!(
        put_upload(&app.client, &upload, "customuid,txt_a\nu4,racer a\n"),
        put_upload(&app.client, &upload, "customuid,txt_a\nu5,racer b\n"),
    );
    assert_eq!(
        [first, second].iter().filter(|s| s.is_success()).count(),
        1,
        "{first} {second} {text}"
    );
    let loser = if first.is_success() { second } else { first };
    // S3 answers 409 to a PUT that races another conditional PUT of the same key.
    assert!(
        [StatusCode::PRECONDITION_FAILED, StatusCode::CONFLICT].contains(&loser),
        "{loser}"
    );
    aixon.import(&cell, &update).await;
    let (winner, lost) = if first.is_success() {
        ("u4", "u5")
    } else {
        ("u5", "u4")
    };
    assert_eq!(aixon.row(&cell, winner).await.0, StatusCode::OK);
    assert_eq!(aixon.row(&cell, lost).await.0, StatusCode::NOT_FOUND);
    assert_eq!(aixon.status(&cell, &update).await["applied"], 1);

    // The used mark goes once the URL has expired; nothing else is left queued.
    app.clock.advance_seconds(
        custdata::aixon::UPLOAD_URL_SECONDS as i64 + import::USED_UPLOAD_GRACE_SECONDS + 1,
    );
    aixon.import(&cell, &update).await;
    // (S3's URLs expire by the real clock, which this test does not move.)
    if app.adapter == Adapter::Embedded {
        let queued = app
            .server
            .app
            .blobs
            .list(&format!(
                "{}{}/{cell}/",
                keys::AIXON_BLOB_PREFIX,
                aixon.tenant
            ))
            .await
            .expect("list");
        assert!(queued.is_empty(), "{queued:?}");
    }
}

async fn another_tenant_reaches_nothing_through_any_route(app: TestApp) {
    let owner = Aixon::dev(&app);
    let other = Aixon::of(&app, "other").await;
    let (cell, created) = owner.create("mine", JSON, SEED_CREATE).await;
    owner.import(&cell, &created).await;
    let (_, before) = owner.row(&cell, "crm001").await;

    let (_, listed) = other.send(Method::GET, CELLS, None, None, &[]).await;
    assert_eq!(
        listed["message"].as_array().map(Vec::len),
        Some(2),
        "{listed}"
    );
    let attempts: Vec<(Method, String, Option<&str>, Option<&str>)> = vec![
        (
            Method::PATCH,
            format!("{CELLS}/{cell}"),
            Some(JSON),
            Some(SEED_PATCH),
        ),
        (
            Method::POST,
            format!("{CELLS}/{cell}"),
            Some(JSON),
            Some(SEED_PATCH),
        ),
        (
            Method::PUT,
            format!("{CELLS}/{cell}"),
            Some(JSON),
            Some(SEED_CREATE),
        ),
        (
            Method::POST,
            format!("/custdata/v1/aixon/csv-upload/{cell}/uploads"),
            Some("application/json"),
            Some(r#"{"mode":"PUT","contentType":"text/csv"}"#),
        ),
        (
            Method::GET,
            format!("/custdata/v1/aixon/csv-upload/{cell}/updates/{created}"),
            None,
            None,
        ),
        (
            Method::GET,
            format!("/custdata/v1/aixon/csv-upload/{cell}/rows/crm001"),
            None,
            None,
        ),
        (
            Method::DELETE,
            "/custdata/v1/aixon/customers/crm001".to_string(),
            None,
            None,
        ),
    ];
    for (method, path, content_type, body) in &attempts {
        let (status, reply) = other
            .send(method.clone(), path, *content_type, *body, &[])
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {reply}");
        let nobody = Aixon {
            key: String::new(),
            ..Aixon::dev(&app)
        };
        let (status, _) = nobody
            .send(method.clone(), path, *content_type, *body, &[])
            .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} without a key"
        );
    }
    let (found, after) = owner.row(&cell, "crm001").await;
    assert_eq!(found, StatusCode::OK);
    assert_eq!(before, after);
    assert!(owner.customer("crm001").await.is_some());
    assert!(other.customer("crm001").await.is_none());
    let report = other.import(&cell, &created).await;
    assert_eq!(report.rows_processed, 0);
}

async fn a_resource_id_with_dot_segments_slashes_or_control_characters_is_refused(app: TestApp) {
    let client = Aixon::dev(&app);
    let (cell, _) = aixon_http::create_cell(
        &app.client,
        &app.server.base_url,
        &client.key,
        "names",
        "customuid,txt_region\nc-1,north\n",
    )
    .await;
    let headers = [("x-api-key", client.key.as_str()), ("content-type", CSV)];
    let body = "customuid,txt_region\nc-1,south\n";
    for name in ["..", "%2e%2e", ".", "%2E", "a%2Fb", "a%00b", "dc.1"] {
        let cases = [
            ("PATCH", format!("{CELLS}/{name}"), "resourceId"),
            ("PUT", format!("{CELLS}/{name}"), "resourceId"),
            ("POST", format!("{CELLS}/{name}"), "resourceId"),
            (
                "POST",
                format!("/custdata/v1/aixon/csv-upload/{name}/uploads"),
                "resourceId",
            ),
            (
                "GET",
                format!("/custdata/v1/aixon/csv-upload/{name}/rows/c-1"),
                "resourceId",
            ),
            (
                "GET",
                format!("/custdata/v1/aixon/csv-upload/{name}/updates/u-1"),
                "resourceId",
            ),
            (
                "GET",
                format!("/custdata/v1/aixon/csv-upload/{cell}/updates/{name}"),
                "updateId",
            ),
        ];
        for (method, path, parameter) in cases {
            if parameter == "updateId" && name == "dc.1" {
                continue; // a dot inside an id is not a dot segment
            }
            let (status, error) = raw_request(&app, method, &path, &headers, body).await;
            assert_eq!(status, 400, "{method} {path}: {error}");
            assert_eq!(error["status"], "error", "{error}");
            assert_eq!(
                error["errors"][0]["column"], parameter,
                "{method} {path}: {error}"
            );
            let rule = error["errors"][0]["rule"].as_str().unwrap_or_default();
            assert!(
                rule.contains("'.' or '..'") || rule.contains("letters, digits, '_' or '-'"),
                "the rule is named: {error}"
            );
        }
    }
    // A customuid is customer data, not a name: any spelling still reaches the row route.
    let (status, error) = raw_request(
        &app,
        "GET",
        &format!("/custdata/v1/aixon/csv-upload/{cell}/rows/%2e%2e"),
        &headers,
        "",
    )
    .await;
    assert_eq!(status, 404, "{error}");
    // Nothing was created: the two fixed entries and the one cell.
    let (status, listed) = client.send(Method::GET, CELLS, None, None, &[]).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed["message"].as_array().map(Vec::len),
        Some(3),
        "{listed}"
    );
}

on_both_adapters!(
    the_seed_examples_replayed_verbatim_get_the_documented_answers,
    each_column_rule_gives_a_400_naming_row_column_and_rule_and_writes_nothing,
    a_double_delivered_or_late_event_applies_once,
    a_later_body_that_arrives_first_waits_for_the_earlier_one,
    a_body_that_never_arrives_holds_the_cell_back_for_a_minute_only,
    a_body_the_blob_store_refuses_fails_its_update_and_holds_nothing_back,
    a_run_with_time_left_waits_out_a_body_that_never_arrives_and_goes_on,
    a_crash_mid_import_resumes_to_the_state_of_a_clean_run,
    a_suppressed_customer_is_refused_per_row,
    presigned_uploads_take_bodies_above_the_inline_limit,
    a_presigned_upload_url_takes_one_body_before_and_after_its_import,
    another_tenant_reaches_nothing_through_any_route,
    a_resource_id_with_dot_segments_slashes_or_control_characters_is_refused,
);

/// The local worker imports by itself, including bodies left over from before a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_worker_imports_what_was_left_when_the_server_stopped() {
    let dir = tempfile::tempdir().expect("dir");
    let config = |run_scheduled_tasks| custdata_local::Config {
        port: 0,
        data_dir: dir.path().to_path_buf(),
        clock: Arc::new(custdata::clock::SystemClock),
        backend: custdata_local::Backend::Embedded,
        run_scheduled_tasks,
        lambda_limits: false,
    };
    let server = custdata_local::start(config(false)).await.expect("starts");
    let client = reqwest::Client::new();
    let key = server.credentials.aixon.api_key.clone();
    let (cell, update) = aixon_http::create_cell(
        &client,
        &server.base_url,
        &key,
        "left over",
        generated_csv(50, 1),
    )
    .await;
    server.shutdown().await;

    let server = custdata_local::start(config(true)).await.expect("restarts");
    let status = aixon_http::wait_until_finished(
        &client,
        &server.base_url,
        &key,
        &cell,
        &update,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(
        (&status["status"], &status["applied"]),
        (&json!("DONE"), &json!(50)),
        "{status}"
    );
    server.shutdown().await;
}
