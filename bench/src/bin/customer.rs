//! MXO Customer API on the local server: activity requests/s (32 clients back to back),
//! structure-evaluation latency (p50/p99) and the store reads one structure request makes.
//! Baselines, side by side: for activity, redb alone writing the same items per request at
//! one durable commit per request (the target is at least 3× that), and the same work
//! through the shared functions in-process (no HTTP, no auth); for structures, the lookup and
//! evaluation in-process.
//!
//! `cargo run --release -p custdata-bench --bin bench-customer`

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use custdata::app::App;
use custdata::clock::SystemClock;
use custdata::customers::{self, Activity, CustomerRef, Identifier};
use custdata::domain::TenantId;
use custdata::http::dispatch;
use custdata::mxo::customer::STRUCTURE_FAMILY;
use custdata::mxo::customer::structures::{self, Evaluator, Subject};
use custdata::storage::metered::Metered;
use custdata_bench::{ItemsPerRow, VALUE_BYTES, ratio, redb_alone};
use custdata_local::{Backend, Config};
use futures::StreamExt;
use lambda_http::RequestExt;
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    /// Activity requests (one activity each).
    #[arg(long, default_value_t = 5_000)]
    activities: usize,
    /// Clients posting activity back to back.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Structure requests, one at a time.
    #[arg(long, default_value_t = 2_000)]
    structures: usize,
}

const STRUCTURE: &str = r#"{"attributes": [
  {"name": "creditLimit", "value": {"datastore": {"apiName": "terms", "column": "creditLimit", "pk": {"identifier": "customerKey"}, "sk": {"context": "productID"}}}},
  {"name": "atmPerk", "value": {"literal": "fee-free"}, "when": {"all": [{"ge": [{"activityCount": {"proposition": "atm"}}, {"literal": 1}]}, {"eq": [{"context": "channel"}, {"literal": "app"}]}]}},
  {"name": "profile", "attributes": [{"name": "tier", "value": {"attribute": "tier"}}]}
]}"#;

/// What one activity request writes: the activity item and the profile's counters.
fn items_per_activity() -> ItemsPerRow {
    ItemsPerRow::one("activity item").and(1, "profile (counters)")
}

/// The activity target: this many times redb alone at one durable commit per request.
const ACTIVITY_TARGET: f64 = 3.0;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

fn activity_body(n: usize) -> Value {
    json!({"customerContext": {"baseTouchpointUri": "https://bank.example", "identifiers": [{"apiName": "customerKey", "value": format!("C-{}", n % 500)}]},
           "activities": [{"propositionCode": "atm", "dynamicPropositionCode": format!("atm-{n}"), "activityTypeCode": "withdrawal"}]})
}

fn structure_body() -> Value {
    json!({"structureApiName": "offers", "customerContext": {"baseTouchpointUri": "https://bank.example",
           "identifiers": [{"apiName": "customerKey", "value": "C-1"}],
           "properties": [{"name": "productID", "value": "YP-25"}, {"name": "channel", "value": "app"}]}})
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let dir = tempfile::tempdir().expect("dir");
    let config = Config {
        port: 0,
        data_dir: dir.path().to_path_buf(),
        clock: Arc::new(SystemClock),
        backend: Backend::Embedded,
        run_scheduled_tasks: false,
        lambda_limits: false,
    };
    let server = custdata_local::start(config).await.expect("server");
    let client = reqwest::Client::new();
    let mxo = server.credentials.mxo.clone();
    let token: Value = client
        .post(format!("{}/one/oauth2token", server.base_url))
        .basic_auth(&mxo.client_id, Some(&mxo.client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let token = token["access_token"].as_str().expect("token").to_string();
    let datastores = format!("{}/datastores/1.0.0/{}", server.base_url, mxo.workspace_id);
    let definition = json!({"name": "T", "apiName": "terms", "primaryKey": "customerID", "secondaryKey": "productID",
        "definitions": [{"name": "customerID", "type": "TEXT"}, {"name": "productID", "type": "TEXT"}, {"name": "creditLimit", "type": "NUMERIC"}]});
    client
        .post(&datastores)
        .bearer_auth(&token)
        .json(&definition)
        .send()
        .await
        .expect("datastore");
    client
        .post(format!("{datastores}/terms/live"))
        .bearer_auth(&token)
        .json(&json!([{"customerID": "C-1", "productID": "YP-25", "creditLimit": 11000}]))
        .send()
        .await
        .expect("row");

    // Activity through HTTP.
    let activity_url = format!(
        "{}/one/oauth2/rt/api/3.1.0/customer/{}/activity",
        server.base_url, mxo.site_key
    );
    let started = Instant::now();
    let failed: usize = futures::stream::iter(0..args.activities)
        .map(|n| {
            let (client, url, token) = (client.clone(), activity_url.clone(), token.clone());
            async move {
                let ok = client
                    .post(url)
                    .bearer_auth(token)
                    .json(&activity_body(n))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                usize::from(!ok)
            }
        })
        .buffer_unordered(args.concurrency)
        .fold(0, |total, n| async move { total + n })
        .await;
    let http_rate = args.activities as f64 / started.elapsed().as_secs_f64();

    // Baseline: redb alone, the same items per request, one durable commit per request.
    let items = items_per_activity();
    let redb = redb_alone(dir.path(), args.activities, items.total(), VALUE_BYTES, 1);

    // Baseline: the same activities through the shared functions.
    let app = server.app.clone();
    let tenant = TenantId::parse("dev").expect("tenant");
    let started = Instant::now();
    for n in 0..args.activities {
        let named = CustomerRef {
            tid: None,
            identifiers: vec![Identifier::customer_key(format!("B-{}", n % 500))],
        };
        let activity = Activity {
            proposition_code: "atm".into(),
            activity_type_code: "withdrawal".into(),
            dynamic_proposition_code: Some(format!("atm-{n}")),
            timestamp: app.clock.now_millis(),
        };
        customers::record_activities(
            app.customers(),
            &tenant,
            &named,
            &[activity],
            app.clock.now_millis(),
        )
        .await
        .expect("record");
    }
    let direct_rate = args.activities as f64 / started.elapsed().as_secs_f64();

    // The structure.
    let c1 = customers::find(
        app.customers(),
        &tenant,
        &CustomerRef {
            tid: None,
            identifiers: vec![Identifier::customer_key("C-1")],
        },
    )
    .await
    .expect("find")
    .expect("C-1");
    let tier: BTreeMap<String, Value> = [("tier".to_string(), json!("gold"))].into_iter().collect();
    customers::set_attributes(
        app.customers(),
        &tenant,
        &c1.tid,
        &tier,
        "bench",
        app.clock.now_millis(),
    )
    .await
    .expect("attributes");
    let definition: Value = serde_json::from_str(STRUCTURE).expect("json");
    structures::save(
        app.customers(),
        &tenant,
        "offers",
        &definition,
        app.clock.now_millis(),
    )
    .await
    .expect("structure");

    let structure_url = format!(
        "{}/one/oauth2/rt/api/3.1.0/customer/{}/structure",
        server.base_url, mxo.site_key
    );
    let mut latencies = Vec::with_capacity(args.structures);
    let mut last = Value::Null;
    for _ in 0..args.structures {
        let started = Instant::now();
        let response = client
            .post(&structure_url)
            .bearer_auth(&token)
            .json(&structure_body())
            .send()
            .await
            .expect("structure");
        last = response.json().await.expect("json");
        latencies.push(started.elapsed());
    }
    latencies.sort();
    assert_eq!(last["structure"]["profile"]["tier"], "gold", "{last}");

    // Baseline: evaluation in-process.
    let stored = structures::load(app.table.as_ref(), &tenant, "offers")
        .await
        .expect("load")
        .expect("offers");
    let properties: HashMap<String, String> = [
        ("productID".to_string(), "YP-25".to_string()),
        ("channel".to_string(), "app".to_string()),
    ]
    .into_iter()
    .collect();
    let identifiers = vec![Identifier::customer_key("C-1")];
    let mut direct = Vec::with_capacity(args.structures);
    for _ in 0..args.structures {
        let started = Instant::now();
        let customer = customers::find(
            app.customers(),
            &tenant,
            &CustomerRef {
                tid: None,
                identifiers: identifiers.clone(),
            },
        )
        .await
        .expect("find");
        let subject = Subject {
            tenant: &tenant,
            customer: customer.as_ref(),
            identifiers: &identifiers,
            properties: &properties,
            now_millis: app.clock.now_millis(),
        };
        Evaluator::new(app.table.as_ref(), subject)
            .evaluate(&stored)
            .await
            .expect("evaluate");
        direct.push(started.elapsed());
    }
    direct.sort();

    // Store reads of one structure request: the same handler, on a metered table.
    let metered = Arc::new(Metered::new(app.table.clone()));
    let counted = Arc::new(App {
        table: metered.clone(),
        blobs: app.blobs.clone(),
        clock: app.clock.clone(),
        settings: app.settings.clone(),
        hash_key: app.hash_key.clone(),
        signing: app.signing.clone(),
    });
    let mut request =
        lambda_http::Request::new(lambda_http::Body::Text(structure_body().to_string()));
    *request.method_mut() = http::Method::POST;
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    request
        .headers_mut()
        .insert("content-type", "application/json".parse().expect("header"));
    let request =
        request.with_path_parameters(HashMap::from([("sk".to_string(), mxo.site_key.clone())]));
    let request = custdata::http::with_route_key(
        request,
        "POST /one/oauth2/rt/api/3.1.0/customer/{sk}/structure",
    );
    let response = dispatch(counted, &STRUCTURE_FAMILY, request).await;
    assert_eq!(response.status(), 200);
    let reads = metered.counts();

    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| activity requests through the local server ({} requests, {} clients back to back, 1 activity each) | {http_rate:.0} req/s |",
        args.activities, args.concurrency
    );
    println!("| non-2xx answers (or failed requests) to activity posts | {failed} |");
    println!("| items written per activity request | {items} |");
    println!("| baseline: redb alone, one durable commit per request | {redb} |");
    println!(
        "| ratio server / redb alone (target ≥ {ACTIVITY_TARGET}) | {:.2} |",
        ratio(http_rate, redb.rows_per_sec)
    );
    println!(
        "| for reference: record_activities in-process, one at a time | {direct_rate:.0} /s (ratio server / in-process {:.2}) |",
        ratio(http_rate, direct_rate)
    );
    println!(
        "| structure request latency over HTTP ({} requests) | p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms |",
        args.structures,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
    println!(
        "| baseline: customer lookup + evaluation in-process | p50 {:.3} ms, p99 {:.3} ms |",
        percentile(&direct, 0.5),
        percentile(&direct, 0.99)
    );
    println!(
        "| store reads per structure request (token, profile, structure, customer, datastore) | {} ({} get, {} query) |",
        reads.read_requests(),
        reads.get,
        reads.query
    );
    println!(
        "| store writes per structure request | {} |",
        reads.write_requests()
    );
    server.shutdown().await;
}
