//! Concurrency over HTTP, on the shared customer store: many clients at once creating
//! customers and recording MXO activity (distinct customers, then a few shared ones), and
//! AIXON PATCHes racing Monetate row posts for an overlapping pool of customers. Every
//! answer must be a success (no 503 from contention), every customer must exist exactly
//! once, and the final state must be one that some serial order of the requests gives.
//! Every case runs on the embedded store and on DynamoDB/S3 in the emulator.
//!
//! The cases are bounded in count (fixed numbers of clients and requests) and in time (a
//! hang guard and a per-request timeout); nothing asserts on how long anything took. The
//! elapsed times are printed (`--nocapture`) for the record.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

use custdata::aixon::import::{self, ImportReport};
use custdata::customers::{self, ActivityFilter, CustomerRef, Identifier};
use custdata::domain::TenantId;
use custdata::storage::keys;
use custdata_tests::aixon as aixon_http;
use custdata_tests::{Adapter, TestApp, on_both_adapters};
use futures::StreamExt;
use futures::future::join_all;
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};

/// Concurrent clients in every case.
const CLIENTS: usize = 32;
/// A case that has not finished after this long has hung: it fails instead of blocking
/// the suite. (A bound, not a performance assertion.)
const HANG_GUARD: Duration = Duration::from_secs(900);
/// One request that has not been answered after this long fails the case.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Reads of the final state run this many at a time.
const READERS: usize = 16;

const MXO_BASE: &str = "/one/oauth2/rt/api/3.1.0/customer";
const OPTIMOVE_LISTING: &str = "/custdata/v1/optimove/customers";

/// MXO activity posts per client. The embedded store takes the full 32 × 40 (1–4 s of
/// posts on two cores). On the emulator every TransactWriteItems copies the whole
/// table: 32 × 40 new customers had not finished after 10 minutes (moto at 11 GB), and
/// 32 × 10 took 137 s (new customers) and 103 s (four shared ones), so the AWS variant is
/// 32 × 5 — still 32 requests in flight at once: 34 s (new customers; 50 s with the
/// checks) and 24 s (shared ones).
fn posts_per_client(adapter: Adapter) -> usize {
    match adapter {
        Adapter::Embedded => 40,
        Adapter::Aws => 5,
    }
}

/// Fails the case if `body` has not finished within [`HANG_GUARD`].
async fn bounded(what: &str, body: impl Future<Output = ()>) {
    if tokio::time::timeout(HANG_GUARD, body).await.is_err() {
        panic!("{what} did not finish within {HANG_GUARD:?}");
    }
}

/// A client of its own (its own connections), as a separate caller would have.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("an HTTP client")
}

/// Sends a request; the status and the body (JSON, or the text as a JSON string).
async fn exchange(request: RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// Asserts that nothing was refused: `refusals` lists each refused request.
fn assert_none_refused(what: &str, total: usize, refusals: &[String]) {
    assert!(
        refusals.is_empty(),
        "{} of {total} {what} were not answered 2xx; the first: {:#?}",
        refusals.len(),
        &refusals[..refusals.len().min(5)]
    );
}

fn dev_tenant(app: &TestApp) -> TenantId {
    TenantId::parse(&app.server.credentials.tenant).expect("the dev tenant")
}

/// The store's customer for a customer key.
async fn customer_by_key(app: &TestApp, key: &str) -> Option<customers::Customer> {
    customers::find(
        app.server.app.customers(),
        &dev_tenant(app),
        &CustomerRef {
            tid: None,
            identifiers: vec![Identifier::customer_key(key)],
        },
    )
    .await
    .expect("the store answers")
}

/// The whole Optimove customer listing (one page), optionally with attributes.
async fn optimove_listing(app: &TestApp, attributes: Option<&str>) -> Vec<Value> {
    let mut url = app.url(&format!("{OPTIMOVE_LISTING}?$top=200000"));
    if let Some(names) = attributes {
        url.push_str(&format!("&CustomerAttributes={names}"));
    }
    let (status, body) = exchange(
        http_client()
            .get(url)
            .header("X-API-KEY", &app.server.credentials.optimove.api_key),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the Optimove listing: {body}");
    body.as_array().expect("the listing is an array").clone()
}

/// Asserts that the listing names every expected customer key exactly once, and nothing
/// else.
fn assert_listed_once(listing: &[Value], expected: &BTreeSet<String>) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for entry in listing {
        let id = entry["CustomerID"]
            .as_str()
            .unwrap_or_else(|| panic!("a listed customer without a CustomerID: {entry}"));
        *seen.entry(id.to_string()).or_default() += 1;
    }
    let twice: Vec<(&String, &usize)> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "customers listed more than once (CustomerID, times): {twice:?}"
    );
    let listed: BTreeSet<String> = seen.into_keys().collect();
    let missing: Vec<&String> = expected.difference(&listed).collect();
    let unexpected: Vec<&String> = listed.difference(expected).collect();
    assert!(
        missing.is_empty() && unexpected.is_empty(),
        "the listing differs: missing {missing:?}, unexpected {unexpected:?}"
    );
    assert_eq!(listing.len(), expected.len(), "listing length");
}

// ---------------------------------------------------------------------------------------
// MXO activity

/// The dev tenant's MXO client: token and site key.
struct Mxo {
    base_url: String,
    token: String,
    site: String,
}

impl Mxo {
    async fn dev(app: &TestApp) -> Mxo {
        Mxo {
            base_url: app.server.base_url.clone(),
            token: app.mxo_token().await,
            site: app.server.credentials.mxo.site_key.clone(),
        }
    }

    /// Posts one activity (`dynamicPropositionCode` = `code`) for the customer `key`.
    async fn activity(
        &self,
        client: &reqwest::Client,
        key: &str,
        code: &str,
    ) -> (StatusCode, Value) {
        let body = json!({
            "customerContext": {"baseTouchpointUri": "https://bank.example",
                                "identifiers": [{"apiName": "customerKey", "value": key}]},
            "activities": [{"propositionCode": "atm", "activityTypeCode": "withdrawal",
                            "dynamicPropositionCode": code}]
        });
        exchange(
            client
                .post(format!(
                    "{}{MXO_BASE}/{}/activity",
                    self.base_url, self.site
                ))
                .bearer_auth(&self.token)
                .json(&body),
        )
        .await
    }

    /// The dynamic proposition codes of a customer's whole activity log (≤ 1,000), sorted.
    async fn logged_codes(&self, client: &reqwest::Client, tid: &str) -> Vec<String> {
        let (status, log) = exchange(
            client
                .get(format!(
                    "{}/custdata/v1/mxo/{}/customers/{tid}/activities?limit=1000",
                    self.base_url, self.site
                ))
                .bearer_auth(&self.token),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "the activity log of {tid}: {log}");
        assert!(
            log["next"].is_null(),
            "the log of {tid} fits one page: {log}"
        );
        let mut codes: Vec<String> = log["activities"]
            .as_array()
            .expect("activities")
            .iter()
            .map(|a| {
                a["dynamicPropositionCode"]
                    .as_str()
                    .unwrap_or_else(|| panic!("an activity without its code: {a}"))
                    .to_string()
            })
            .collect();
        codes.sort();
        codes
    }
}

/// One activity post as sent and answered.
struct Posted {
    key: String,
    code: String,
    status: StatusCode,
    body: Value,
}

/// `CLIENTS` clients at once, each posting `posts` activities one after another; post `n`
/// of client `c` goes to `key_of(c, n)` with the code `act-c-n`.
async fn post_activities(
    mxo: &Mxo,
    posts: usize,
    key_of: impl Fn(usize, usize) -> String,
) -> Vec<Posted> {
    let key_of = &key_of;
    let clients = (0..CLIENTS).map(|c| async move {
        let client = http_client();
        let mut sent = Vec::with_capacity(posts);
        for n in 0..posts {
            let key = key_of(c, n);
            let code = format!("act-{c:02}-{n:03}");
            let (status, body) = mxo.activity(&client, &key, &code).await;
            sent.push(Posted {
                key,
                code,
                status,
                body,
            });
        }
        sent
    });
    join_all(clients).await.into_iter().flatten().collect()
}

fn refused_posts(posted: &[Posted]) -> Vec<String> {
    posted
        .iter()
        .filter(|p| !p.status.is_success() || p.body["tid"].as_str().is_none())
        .map(|p| format!("{} {}: {} {}", p.key, p.code, p.status, p.body))
        .collect()
}

/// 32 clients × 40 activity posts, each for a new customer of its own: every post is
/// answered 200 with a tid; afterwards each customer key is one customer (the store finds
/// it under the tid it was answered with, all tids distinct) holding exactly its one
/// activity (counter and log), and the Optimove listing names each key exactly once.
async fn distinct_new_customers_each_get_exactly_their_activity(app: TestApp) {
    bounded("distinct new customers", distinct_new_customers(&app)).await;
}

async fn distinct_new_customers(app: &TestApp) {
    let posts = posts_per_client(app.adapter);
    let mxo = Mxo::dev(app).await;
    let started = Instant::now();
    let posted = post_activities(&mxo, posts, |c, n| format!("new-{c:02}-{n:03}")).await;
    eprintln!(
        "[{:?}] {CLIENTS} clients x {posts} activity posts for new customers: {:.1?}",
        app.adapter,
        started.elapsed()
    );
    assert_eq!(posted.len(), CLIENTS * posts);
    assert_none_refused("activity posts", posted.len(), &refused_posts(&posted));

    let tids: BTreeSet<&str> = posted
        .iter()
        .filter_map(|p| p.body["tid"].as_str())
        .collect();
    assert_eq!(
        tids.len(),
        posted.len(),
        "every new customer got a tid of its own"
    );

    let checked = Instant::now();
    let mxo = &mxo;
    let problems: Vec<String> = futures::stream::iter(&posted)
        .map(|p| async move {
            let client = http_client();
            let tid = p.body["tid"].as_str().unwrap_or_default();
            let Some(customer) = customer_by_key(app, &p.key).await else {
                return Some(format!("{}: no customer in the store", p.key));
            };
            if customer.tid.as_str() != tid {
                return Some(format!(
                    "{}: the store has tid {}, the answer said {tid}",
                    p.key, customer.tid
                ));
            }
            let (count, _) = customer.activity_stats(&ActivityFilter::default());
            if count != 1 {
                return Some(format!("{}: activity count {count}, not 1", p.key));
            }
            let codes = mxo.logged_codes(&client, tid).await;
            (codes != [p.code.clone()])
                .then(|| format!("{}: logged {codes:?}, posted [{}]", p.key, p.code))
        })
        .buffer_unordered(READERS)
        .filter_map(|problem| async move { problem })
        .collect()
        .await;
    assert!(
        problems.is_empty(),
        "{} customers differ from what was posted; the first: {:#?}",
        problems.len(),
        &problems[..problems.len().min(5)]
    );

    let expected: BTreeSet<String> = posted.iter().map(|p| p.key.clone()).collect();
    assert_listed_once(&optimove_listing(app, None).await, &expected);
    eprintln!(
        "[{:?}] checking {} customers: {:.1?}",
        app.adapter,
        expected.len(),
        checked.elapsed()
    );
}

/// Shared customer keys of `few_shared_customers_count_every_activity_once`.
const SHARED: usize = 4;

/// 32 clients × 40 activity posts spread over 4 customer keys (post n of client c goes to
/// key (c + n) mod 4, so every key is hit by every client): every post is answered 200;
/// every answer for one key names the same tid, the 4 tids differ; each customer's
/// activity counter equals the number of posts for it and its log holds exactly the codes
/// posted for it (none lost, none twice) — the state of any serial order; the listing
/// names the 4 keys once each.
async fn few_shared_customers_count_every_activity_once(app: TestApp) {
    bounded("few shared customers", few_shared_customers(&app)).await;
}

async fn few_shared_customers(app: &TestApp) {
    let posts = posts_per_client(app.adapter);
    let mxo = Mxo::dev(app).await;
    let started = Instant::now();
    let posted = post_activities(&mxo, posts, |c, n| format!("shared-{}", (c + n) % SHARED)).await;
    eprintln!(
        "[{:?}] {CLIENTS} clients x {posts} activity posts for {SHARED} shared customers: {:.1?}",
        app.adapter,
        started.elapsed()
    );
    assert_eq!(posted.len(), CLIENTS * posts);
    assert_none_refused("activity posts", posted.len(), &refused_posts(&posted));

    let mut by_key: BTreeMap<&str, (BTreeSet<&str>, Vec<String>)> = BTreeMap::new();
    for p in &posted {
        let entry = by_key.entry(&p.key).or_default();
        entry.0.insert(p.body["tid"].as_str().unwrap_or_default());
        entry.1.push(p.code.clone());
    }
    assert_eq!(by_key.len(), SHARED);
    let mut all_tids = BTreeSet::new();
    for (key, (tids, _)) in &by_key {
        assert_eq!(
            tids.len(),
            1,
            "the posts for {key} were answered with different tids: {tids:?}"
        );
        all_tids.extend(tids.iter().copied());
    }
    assert_eq!(all_tids.len(), SHARED, "each key is a customer of its own");

    let client = http_client();
    for (key, (tids, codes)) in &mut by_key {
        let tid = *tids.first().expect("a tid");
        let customer = customer_by_key(app, key)
            .await
            .unwrap_or_else(|| panic!("{key}: no customer in the store"));
        assert_eq!(customer.tid.as_str(), tid, "{key}: the store's tid");
        let (count, _) = customer.activity_stats(&ActivityFilter::default());
        let (atm, _) = customer.activity_stats(&ActivityFilter {
            proposition: Some("atm".into()),
            activity_type: Some("withdrawal".into()),
        });
        assert_eq!(
            (count, atm),
            (codes.len() as i64, codes.len() as i64),
            "{key}: the activity counters (all, atm/withdrawal) against the posts for it"
        );
        codes.sort();
        let logged = mxo.logged_codes(&client, tid).await;
        assert_eq!(logged.len(), codes.len(), "{key}: activities in the log");
        assert_eq!(
            &logged, codes,
            "{key}: the log holds exactly the posted codes"
        );
    }

    let expected: BTreeSet<String> = by_key.keys().map(|k| k.to_string()).collect();
    assert_listed_once(&optimove_listing(app, None).await, &expected);
}

// ---------------------------------------------------------------------------------------
// AIXON and Monetate on an overlapping pool of customers

/// AIXON cells the PATCHes are spread over (different cells import in parallel).
const CELLS: usize = 4;
/// The sizes of `overlapping_aixon_and_monetate_writes_leave_one_customer_each`: the
/// customer keys both surfaces draw from, and the rows of each Monetate event post.
struct Mix {
    pool: usize,
    /// One in this many Monetate attribute posts carries a given customer (times two).
    monetate_spread: usize,
    event_rows: usize,
}

/// The embedded store takes 50 keys (about 20 rows a request) and 5 event rows a post
/// (about 2 s of racing requests). On the emulator a Monetate post of that size waited
/// more than the 120 s request timeout, and even with 20 keys the 32 attribute posts of 8
/// rows alone took 100 s (they conflict on the shared profiles and moto copies the table
/// for every transaction): there the pool is 20 keys, an AIXON PATCH carries 8 of them, a
/// Monetate attribute post 4 and an event post 2 — still 32 + 32 + 32 requests at once,
/// whose racing phase took 61–66 s (110 s with setup and checks).
fn mix_size(adapter: Adapter) -> Mix {
    match adapter {
        Adapter::Embedded => Mix {
            pool: 50,
            monetate_spread: 5,
            event_rows: 5,
        },
        Adapter::Aws => Mix {
            pool: 20,
            monetate_spread: 10,
            event_rows: 2,
        },
    }
}

const CELL_HEADER: &str = "customuid,txt_tag,num_req";
const CRM: &str = "mix-crm";
const EVENTS: &str = "mix-visits";

fn pool_key(k: usize) -> String {
    format!("pool-{k:02}")
}

fn anchor_key(cell: usize) -> String {
    format!("anchor-{cell}")
}

/// Whether AIXON PATCH `r` carries pool customer `k` (about 40% of the pool, every
/// customer in about 13 PATCHes, over every cell).
fn aixon_carries(r: usize, k: usize) -> bool {
    (k * 31 + r * 17) % 5 < 2
}

/// Whether Monetate attribute post `r` carries pool customer `k` (a different 40% of the
/// pool, or 20% with a spread of 10).
fn monetate_carries(r: usize, k: usize, mix: &Mix) -> bool {
    (k * 13 + r * 3 + 1) % mix.monetate_spread < 2
}

/// The pool customers of Monetate event post `r`.
fn event_keys(r: usize, mix: &Mix) -> Vec<usize> {
    (0..mix.event_rows)
        .map(|j| (r * 3 + j * 11) % mix.pool)
        .collect()
}

/// The dev tenant's AIXON and Monetate clients.
struct Surfaces<'a> {
    app: &'a TestApp,
    tenant: TenantId,
    aixon_key: String,
    monetate_token: String,
}

impl<'a> Surfaces<'a> {
    async fn dev(app: &'a TestApp) -> Surfaces<'a> {
        let monetate = &app.server.credentials.monetate;
        Surfaces {
            app,
            tenant: dev_tenant(app),
            aixon_key: app.server.credentials.aixon.api_key.clone(),
            monetate_token: custdata_tests::monetate::token(
                app,
                &monetate.private_key_pem,
                &monetate.api_username,
            )
            .await,
        }
    }

    fn aixon(&self, request: RequestBuilder) -> RequestBuilder {
        request.header("x-api-key", &self.aixon_key)
    }

    fn monetate(&self, request: RequestBuilder) -> RequestBuilder {
        request.header("authorization", format!("Token {}", self.monetate_token))
    }

    fn monetate_data(&self, rest: &str) -> String {
        self.app.url(&format!(
            "/api/data/v1/{}/production/{rest}",
            self.app.server.credentials.monetate.retailer
        ))
    }

    /// Creates a cell holding its anchor customer's row; its id and update id.
    async fn create_cell(&self, cell: usize) -> (String, String) {
        let (status, body) = exchange(
            self.aixon(http_client().put(self.app.url("/api_upload/v1/csv-upload")))
                .header("content-type", "text/csv")
                .header("x-node-description", format!("concurrency {cell}"))
                .body(format!("{CELL_HEADER}\n{},anchor,-1\n", anchor_key(cell))),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "cell creation: {body}");
        let id = |name: &str| {
            body["message"][name]
                .as_str()
                .unwrap_or_else(|| panic!("{name} in {body}"))
                .to_string()
        };
        (id("RESOURCE_ID"), id("UPDATE_ID"))
    }

    /// PATCHes a cell with a CSV body; status and body.
    async fn patch(
        &self,
        client: &reqwest::Client,
        cell: &str,
        csv: String,
    ) -> (StatusCode, Value) {
        exchange(
            self.aixon(client.patch(self.app.url(&format!("/api_upload/v1/csv-upload/{cell}"))))
                .header("content-type", "text/csv")
                .body(csv),
        )
        .await
    }

    /// One import run for a cell, as the deployment runs it: on AWS the S3 notification of
    /// the update's object, locally the worker's call.
    async fn import_once(&self, cell: &str, update: &str) -> Result<ImportReport, String> {
        let app = &self.app.server.app;
        match self.app.adapter {
            Adapter::Aws => {
                let key = keys::aixon_blob(&self.tenant, cell, update);
                let event = aixon_http::s3_event("custdata-test", &key);
                let report = import::handle_event(app.clone(), event).await?;
                serde_json::from_value(report).map_err(|e| e.to_string())
            }
            Adapter::Embedded => {
                let deadline = Instant::now() + app.settings.import_budget;
                import::import_cell(app, &self.tenant, cell, deadline)
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Imports a cell until nothing of it is left queued; the errors of failed runs.
    async fn drain(&self, cell: &str, update: &str) -> Vec<String> {
        let mut errors = Vec::new();
        for _ in 0..50 {
            match self.import_once(cell, update).await {
                Ok(report) if !report.paused && report.cells_busy == 0 => return errors,
                Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(error) => errors.push(format!("import of {cell}: {error}")),
            }
        }
        errors.push(format!("the import of {cell} did not finish in 50 runs"));
        errors
    }

    async fn update_status(&self, cell: &str, update: &str) -> Value {
        let (status, body) = exchange(self.aixon(http_client().get(self.app.url(&format!(
            "/custdata/v1/aixon/csv-upload/{cell}/updates/{update}"
        )))))
        .await;
        assert_eq!(status, StatusCode::OK, "update {cell}/{update}: {body}");
        body
    }

    async fn cell_row(
        &self,
        client: &reqwest::Client,
        cell: &str,
        key: &str,
    ) -> (StatusCode, Value) {
        exchange(
            self.aixon(
                client.get(
                    self.app
                        .url(&format!("/custdata/v1/aixon/csv-upload/{cell}/rows/{key}")),
                ),
            ),
        )
        .await
    }

    /// Which PATCH's row the cell holds for a customer, checked against the cell's last
    /// accepted PATCH carrying it (`None`: no PATCH of the cell carried it).
    async fn held_row(
        &self,
        cell: &str,
        key: &str,
        last: Option<Accepted>,
    ) -> Result<Option<usize>, String> {
        let (status, row) = self.cell_row(&http_client(), cell, key).await;
        let Some((update, r)) = last else {
            return if status == StatusCode::NOT_FOUND {
                Ok(None)
            } else {
                Err(format!(
                    "a row of {key}, which no PATCH carried: {status} {row}"
                ))
            };
        };
        if status != StatusCode::OK {
            return Err(format!("{key}: {status} {row}"));
        }
        let values = &row["values"];
        let held = tagged_pair(&values["txt_tag"], &values["num_req"], "a")
            .map_err(|e| format!("{key}: {e}: {row}"))?;
        if held != r || row["updateId"] != json!(update) {
            return Err(format!(
                "{key}: the row of PATCH {held} ({}); the last PATCH carrying it: {r} ({update})",
                row["updateId"]
            ));
        }
        Ok(Some(r))
    }

    async fn post_rows(
        &self,
        client: &reqwest::Client,
        schema: &str,
        rows: Value,
    ) -> (StatusCode, Value) {
        let body = json!({"schema_rows": rows, "_sent_time": "2026-11-23T08:00:00Z"});
        exchange(
            self.monetate(client.post(self.monetate_data(&format!("data/{schema}/"))))
                .json(&body),
        )
        .await
    }

    async fn monetate_get(&self, rest: &str) -> Value {
        let (status, body) =
            exchange(self.monetate(http_client().get(self.monetate_data(rest)))).await;
        assert_eq!(status, StatusCode::OK, "GET {rest}: {body}");
        body
    }
}

/// An accepted AIXON PATCH: its update id and its request number.
type Accepted = (String, usize);
/// A cell, a pool customer, and the PATCH whose row the cell holds for it.
type Held = (usize, usize, Option<usize>);

/// What one racing request was and how it was answered.
enum Raced {
    Aixon {
        r: usize,
        cell: usize,
        status: StatusCode,
        body: Value,
        import_error: Option<String>,
    },
    Monetate {
        schema: &'static str,
        r: usize,
        rows: usize,
        status: StatusCode,
        body: Value,
    },
}

/// The pair (tag, request number) a customer's attributes or a row hold, if both are there
/// and agree with each other (the number is read as a float: Optimove gives text).
fn tagged_pair(tag: &Value, number: &Value, prefix: &str) -> Result<usize, String> {
    let number = match number {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse::<f64>().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("no request number: {number}"))?;
    let r = number as usize;
    if number < 0.0 || r as f64 != number {
        return Err(format!("not a request number: {number}"));
    }
    if tag.as_str() != Some(format!("{prefix}{r}").as_str()) {
        return Err(format!(
            "torn: tag {tag} and number {number} come from different requests"
        ));
    }
    Ok(r)
}

/// 32 AIXON PATCHes (over 4 cells, each run through its import as soon as it is accepted)
/// race 32 Monetate attribute-row posts and 32 Monetate event-row posts, all for customers
/// drawn from one pool of 50 keys (20 on the emulator), with values that name their
/// request. Asserted: every answer is 2xx (PATCH 200 RECEIVED; posts 201 without warnings,
/// echoing their rows) and no import run fails; every AIXON update ends DONE with all its
/// rows applied; each cell's row of a customer is the one of the cell's last accepted PATCH
/// that carried it; each Monetate row is whole and from a post that carried its customer,
/// and the row counts (attribute rows: one per customer; event rows: all appended) and
/// upload logs are exact; the Optimove listing names each customer exactly once (the store
/// finds each under a tid of its own), and each customer's AIXON attributes equal one
/// cell's row of it (the last import applied), its Monetate attributes are whole and from
/// a post that carried it.
async fn overlapping_aixon_and_monetate_writes_leave_one_customer_each(app: TestApp) {
    bounded(
        "overlapping AIXON and Monetate writes",
        overlapping_writes(&app),
    )
    .await;
}

async fn overlapping_writes(app: &TestApp) {
    let mix = &mix_size(app.adapter);
    let pool = mix.pool;
    let surfaces = Surfaces::dev(app).await;
    let s = &surfaces;
    for schema in [
        json!({"name": CRM, "type": "attribute", "fields": {
            "customer_id": {"data_type": "STRING", "identifier": true, "unique_key": true},
            "mon_tag": {"data_type": "STRING"},
            "mon_req": {"data_type": "NUMBER"}}}),
        json!({"name": EVENTS, "type": "event", "fields": {
            "visitor": {"data_type": "STRING", "identifier": true},
            "at": {"data_type": "DATETIME", "event_time": true, "required": true},
            "page": {"data_type": "STRING"}}}),
    ] {
        let (status, body) = exchange(
            s.monetate(http_client().post(s.monetate_data("schema/")))
                .json(&schema),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "schema: {body}");
    }
    let mut cells = Vec::with_capacity(CELLS);
    for c in 0..CELLS {
        let (cell, created) = s.create_cell(c).await;
        let errors = s.drain(&cell, &created).await;
        assert!(errors.is_empty(), "{errors:?}");
        cells.push((cell, created));
    }
    let cells = &cells;

    let aixon_rows =
        |r: usize| -> Vec<usize> { (0..pool).filter(|&k| aixon_carries(r, k)).collect() };
    let monetate_rows =
        |r: usize| -> Vec<usize> { (0..pool).filter(|&k| monetate_carries(r, k, mix)).collect() };
    let started = Instant::now();
    let patches = (0..CLIENTS).map(|r| async move {
        let client = http_client();
        let cell = r % CELLS;
        let mut csv = format!("{CELL_HEADER}\n");
        for k in aixon_rows(r) {
            csv.push_str(&format!("{},a{r},{r}\n", pool_key(k)));
        }
        let (status, body) = s.patch(&client, &cells[cell].0, csv).await;
        let import_error = match body["message"]["UPDATE_ID"].as_str() {
            Some(update) if status.is_success() => {
                s.import_once(&cells[cell].0, update).await.err()
            }
            _ => None,
        };
        Raced::Aixon {
            r,
            cell,
            status,
            body,
            import_error,
        }
    });
    let attribute_posts = (0..CLIENTS).map(|r| async move {
        let rows: Vec<Value> = monetate_rows(r)
            .into_iter()
            .map(|k| json!({"customer_id": pool_key(k), "mon_tag": format!("m{r}"), "mon_req": r}))
            .collect();
        let count = rows.len();
        let (status, body) = s.post_rows(&http_client(), CRM, json!(rows)).await;
        Raced::Monetate {
            schema: CRM,
            r,
            rows: count,
            status,
            body,
        }
    });
    let event_posts = (0..CLIENTS).map(|r| async move {
        let rows: Vec<Value> = event_keys(r, mix)
            .into_iter()
            .enumerate()
            .map(|(j, k)| {
                let page = format!("/r{r}/{j}");
                json!({"visitor": pool_key(k), "at": "2026-11-23T07:00:00Z", "page": page})
            })
            .collect();
        let count = rows.len();
        let (status, body) = s.post_rows(&http_client(), EVENTS, json!(rows)).await;
        Raced::Monetate {
            schema: EVENTS,
            r,
            rows: count,
            status,
            body,
        }
    });
    let mut racing: Vec<std::pin::Pin<Box<dyn Future<Output = Raced> + '_>>> = Vec::new();
    for ((patch, attributes), events) in patches.zip(attribute_posts).zip(event_posts) {
        racing.push(Box::pin(patch));
        racing.push(Box::pin(attributes));
        racing.push(Box::pin(events));
    }
    let raced = join_all(racing).await;
    eprintln!(
        "[{:?}] {CLIENTS} AIXON PATCHes (+ imports) racing {} Monetate posts: {:.1?}",
        app.adapter,
        2 * CLIENTS,
        started.elapsed()
    );

    // Every answer a success.
    let mut refusals = Vec::new();
    let mut import_errors = Vec::new();
    // cell → (update id, request) of its accepted PATCHes.
    let mut updates: BTreeMap<usize, Vec<Accepted>> = BTreeMap::new();
    let mut upload_counts: BTreeMap<&str, usize> = BTreeMap::new();
    for raced in &raced {
        match raced {
            Raced::Aixon {
                r,
                cell,
                status,
                body,
                import_error,
            } => {
                let received = body["message"]["STATUS"] == "RECEIVED";
                match body["message"]["UPDATE_ID"].as_str() {
                    Some(update) if status.is_success() && received => {
                        updates
                            .entry(*cell)
                            .or_default()
                            .push((update.to_string(), *r));
                    }
                    _ => refusals.push(format!("AIXON PATCH {r}: {status} {body}")),
                }
                import_errors.extend(import_error.iter().map(|e| format!("after PATCH {r}: {e}")));
            }
            Raced::Monetate {
                schema,
                r,
                rows,
                status,
                body,
            } => {
                let echoed = body["data"]["schema_rows"].as_array().map(Vec::len);
                let warnings = &body["meta"]["warnings"];
                let clean = warnings.as_array().is_some_and(Vec::is_empty);
                if *status != StatusCode::CREATED || echoed != Some(*rows) || !clean {
                    refusals.push(format!("Monetate {schema} post {r}: {status} {body}"));
                } else {
                    *upload_counts.entry(*schema).or_default() += 1;
                }
            }
        }
    }
    assert_none_refused("AIXON PATCHes and Monetate posts", raced.len(), &refusals);

    // Whatever is still queued (a run that found a cell's lease held) is imported now.
    for (cell, created) in cells {
        import_errors.extend(s.drain(cell, created).await);
    }
    assert!(
        import_errors.is_empty(),
        "import runs failed: {import_errors:#?}"
    );
    for (c, accepted) in &mut updates {
        accepted.sort();
        let cell = &cells[*c].0;
        for (update, r) in accepted.iter() {
            let status = s.update_status(cell, update).await;
            let rows = aixon_rows(*r).len();
            assert_eq!(
                (
                    &status["status"],
                    &status["rows"],
                    &status["applied"],
                    &status["errorCount"]
                ),
                (&json!("DONE"), &json!(rows), &json!(rows), &json!(0)),
                "PATCH {r} ({cell}/{update}): {status}"
            );
        }
    }

    // Each cell's row of a customer: the cell's last accepted PATCH carrying it.
    let checked = Instant::now();
    let mut expected_rows: Vec<(usize, usize, Option<Accepted>)> = Vec::new();
    for c in 0..CELLS {
        let accepted = updates.get(&c).cloned().unwrap_or_default();
        for k in 0..pool {
            let last = accepted
                .iter()
                .rev()
                .find(|(_, r)| aixon_carries(*r, k))
                .cloned();
            expected_rows.push((c, k, last));
        }
    }
    // (cell, key) → the request whose row the cell holds.
    let cell_rows: Vec<Result<Held, String>> = futures::stream::iter(expected_rows)
        .map(|(c, k, last)| async move {
            let held = s.held_row(&cells[c].0, &pool_key(k), last).await;
            held.map(|r| (c, k, r))
                .map_err(|e| format!("cell {c}: {e}"))
        })
        .buffer_unordered(READERS)
        .collect()
        .await;
    let mut problems: Vec<String> = cell_rows.iter().filter_map(|r| r.clone().err()).collect();
    // key → the requests whose rows some cell holds (one of them is the customer's).
    let mut final_cell_rows: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for (_, k, r) in cell_rows.iter().flatten() {
        if let Some(r) = r {
            final_cell_rows.entry(*k).or_default().insert(*r);
        }
    }

    // Monetate rows: whole, from a post that carried the customer; exact counts.
    let pool_keys: Vec<String> = (0..pool).map(pool_key).collect();
    let (status, looked_up) = exchange(
        s.monetate(http_client().post(app.url(&format!(
            "/custdata/v1/monetate/{}/data/{CRM}/lookup",
            app.server.credentials.monetate.retailer
        ))))
        .json(&json!({"ids": pool_keys})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "lookup: {looked_up}");
    let crm_carried: BTreeSet<usize> = (0..pool)
        .filter(|&k| (0..CLIENTS).any(|r| monetate_carries(r, k, mix)))
        .collect();
    let missing: Vec<String> = looked_up["data"]["missing"]
        .as_array()
        .expect("missing")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    let expected_missing: Vec<String> = (0..pool)
        .filter(|k| !crm_carried.contains(k))
        .map(pool_key)
        .collect();
    assert_eq!(missing, expected_missing, "customers without a {CRM} row");
    let mut crm_rows: BTreeMap<usize, usize> = BTreeMap::new();
    for row in looked_up["data"]["schema_rows"].as_array().expect("rows") {
        let key = row["customer_id"].as_str().unwrap_or_default();
        let Some(k) = (0..pool).find(|&k| pool_key(k) == key) else {
            problems.push(format!("a {CRM} row of an unknown customer: {row}"));
            continue;
        };
        match tagged_pair(&row["mon_tag"], &row["mon_req"], "m") {
            Ok(r) if monetate_carries(r, k, mix) => {
                if crm_rows.insert(k, r).is_some() {
                    problems.push(format!("{key} has more than one {CRM} row"));
                }
            }
            Ok(r) => problems.push(format!(
                "{key}: the {CRM} row of post {r}, which did not carry it"
            )),
            Err(e) => problems.push(format!("{key}: {CRM} row {e}: {row}")),
        }
    }
    let event_rows_posted = CLIENTS * mix.event_rows;
    for (schema, rows) in [(CRM, crm_carried.len()), (EVENTS, event_rows_posted)] {
        let counted = s
            .monetate_get(&format!("schema/{schema}/?row_count=true"))
            .await;
        assert_eq!(
            counted["data"]["row_count"],
            json!(rows),
            "{schema}: row_count: {counted}"
        );
        let uploads = s.monetate_get(&format!("upload/{schema}/")).await;
        let complete = uploads["data"]
            .as_array()
            .expect("uploads")
            .iter()
            .filter(|u| u["status"] == "COMPLETE")
            .count();
        assert_eq!(
            (complete, upload_counts.get(schema).copied()),
            (CLIENTS, Some(CLIENTS)),
            "{schema}: COMPLETE entries in the upload log"
        );
    }

    // The customers: each once, with one request's values per surface.
    let mut expected_keys: BTreeSet<String> = pool_keys.iter().cloned().collect();
    expected_keys.extend((0..CELLS).map(anchor_key));
    let listing = optimove_listing(app, Some("txt_tag;num_req;mon_tag;mon_req")).await;
    assert_listed_once(&listing, &expected_keys);
    let tids: BTreeSet<String> = futures::stream::iter(expected_keys.iter())
        .map(|key| async move {
            customer_by_key(app, key)
                .await
                .map(|c| String::from(c.tid))
                .unwrap_or_else(|| panic!("{key}: not in the store"))
        })
        .buffer_unordered(READERS)
        .collect()
        .await;
    assert_eq!(tids.len(), expected_keys.len(), "one tid per customer key");
    let mut row_and_attributes_disagree = 0;
    for entry in &listing {
        let key = entry["CustomerID"].as_str().unwrap_or_default();
        let values = entry["CustomerAttributes"].as_array().expect("attributes");
        if let Some(cell) = key.strip_prefix("anchor-") {
            if values[0] != json!("anchor") {
                problems.push(format!("{key} (cell {cell}): txt_tag {}", values[0]));
            }
            continue;
        }
        let k = (0..pool).find(|&k| pool_key(k) == key).expect("a pool key");
        match tagged_pair(&values[0], &values[1], "a") {
            Ok(r) if final_cell_rows.get(&k).is_some_and(|rs| rs.contains(&r)) => {}
            Ok(r) => problems.push(format!(
                "{key}: AIXON attributes of PATCH {r}, but the cells hold rows of {:?}",
                final_cell_rows.get(&k)
            )),
            Err(e) => problems.push(format!("{key}: AIXON attributes {e}: {values:?}")),
        }
        match tagged_pair(&values[2], &values[3], "m") {
            Ok(r) if monetate_carries(r, k, mix) => {
                if crm_rows.get(&k) != Some(&r) {
                    row_and_attributes_disagree += 1;
                }
            }
            Ok(r) => problems.push(format!(
                "{key}: Monetate attributes of post {r}, which did not carry it"
            )),
            Err(e) => problems.push(format!("{key}: Monetate attributes {e}: {values:?}")),
        }
    }
    // Not asserted: a Monetate post writes its customers' attributes and then its rows,
    // not in one transaction, so two posts may leave one's row and the other's
    // attributes. Printed for the record.
    eprintln!(
        "[{:?}] checking the final state: {:.1?}; customers whose {CRM} row and Monetate \
         attributes come from different posts: {row_and_attributes_disagree}",
        app.adapter,
        checked.elapsed()
    );
    assert!(
        problems.is_empty(),
        "{} problems with the final state; the first: {:#?}",
        problems.len(),
        &problems[..problems.len().min(10)]
    );
}

on_both_adapters!(
    distinct_new_customers_each_get_exactly_their_activity,
    few_shared_customers_count_every_activity_once,
    overlapping_aixon_and_monetate_writes_leave_one_customer_each,
);
