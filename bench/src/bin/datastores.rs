//! Stages rows into an MXO datastore through the local server and prints rows/s, the time of
//! reference and go-live, and — on the AWS emulator — DynamoDB requests per 1,000 rows and
//! the hottest partition's share. Baseline, side by side: redb alone, one item per row,
//! 1,000 rows per durable commit, on the same disk; and, for reference, the same rows written
//! straight into the embedded adapter with `batch::write_all` (no HTTP, no validation).
//!
//! `cargo run --release -p custdata-bench --bin bench-datastores -- --rows 1000000`

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use custdata::clock::{Clock, SystemClock};
use custdata::domain::TenantId;
use custdata::mxo::datastores::model::{ApiName, Definition};
use custdata::mxo::datastores::store::{self, InsertResult, Target};
use custdata::storage::metered::Metered;
use custdata::storage::{CursorSigner, Item, WriteRequest, batch, embedded::EmbeddedTable, keys};
use custdata_bench::{
    ItemsPerRow, Meter, Metering, ROWS_PER_COMMIT, VALUE_BYTES, ratio, redb_alone,
};
use custdata_local::{Backend, Config};
use futures::StreamExt;
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    /// Rows staged through the local server.
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    /// Rows per request.
    #[arg(long, default_value_t = 5_000)]
    batch: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Rows staged on the AWS emulator to count DynamoDB requests (0 skips it).
    #[arg(long, default_value_t = 20_000)]
    emulator_rows: usize,
}

const DEFINITION: &str = r#"{"name":"Bench","apiName":"bench","primaryKey":"customerID","secondaryKey":"productID","definitions":[{"name":"customerID","type":"TEXT"},{"name":"productID","type":"TEXT"},{"name":"creditLimit","type":"NUMERIC"},{"name":"expires","type":"DATETIME"}]}"#;

fn row(n: usize) -> Value {
    json!({"customerID": format!("C-{:08}", n / 4), "productID": format!("P-{}", n % 4), "creditLimit": n, "expires": 1_507_676_400_000_i64})
}

fn rate(rows: usize, elapsed: Duration) -> f64 {
    rows as f64 / elapsed.as_secs_f64()
}

async fn through_the_local_server(args: &Args, data_dir: &Path) -> (f64, Duration, Duration) {
    let server = custdata_local::start(Config {
        port: 0,
        data_dir: data_dir.to_path_buf(),
        clock: Arc::new(SystemClock),
        backend: Backend::Embedded,
        run_scheduled_tasks: false,
        lambda_limits: false,
    })
    .await
    .expect("local server");
    let client = reqwest::Client::new();
    let mxo = &server.credentials.mxo;
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
    let base = format!("{}/datastores/1.0.0/{}", server.base_url, mxo.workspace_id);
    let created = client
        .post(&base)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(DEFINITION)
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);

    let batches = args.rows.div_ceil(args.batch);
    let started = Instant::now();
    let written: usize = futures::stream::iter(0..batches)
        .map(|index| {
            let (client, url, token) = (
                client.clone(),
                format!("{base}/bench/staging"),
                token.clone(),
            );
            let rows: Vec<Value> = (index * args.batch..((index + 1) * args.batch).min(args.rows))
                .map(row)
                .collect();
            async move {
                let response = client
                    .post(url)
                    .bearer_auth(token)
                    .json(&rows)
                    .send()
                    .await
                    .expect("stage");
                assert_eq!(response.status(), 200);
                let results: Vec<Value> = response.json().await.expect("results");
                results.iter().filter(|r| r["result"] == "204").count()
            }
        })
        .buffer_unordered(args.concurrency)
        .fold(0, |total, n| async move { total + n })
        .await;
    let staging = started.elapsed();
    assert_eq!(written, args.rows, "every row written");

    let started = Instant::now();
    let reference: Value = client
        .get(format!("{base}/bench/staging/reference"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("ref")
        .json()
        .await
        .expect("json");
    let reference_time = started.elapsed();
    let reference = reference["referenceId"].as_str().expect("referenceId");
    let started = Instant::now();
    let live = client
        .post(format!("{base}/bench/golive/{reference}"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("golive");
    let golive_time = started.elapsed();
    assert_eq!(live.status(), 200);
    let sample = args.rows / 2;
    let found: Value = client
        .get(format!(
            "{base}/bench/live?pk=C-{:08}&sk=P-{}",
            sample / 4,
            sample % 4
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("read")
        .json()
        .await
        .expect("json");
    assert_eq!(
        found[0]["creditLimit"],
        json!(sample),
        "a staged row reads back live"
    );
    server.shutdown().await;
    (rate(args.rows, staging), reference_time, golive_time)
}

/// The same rows written straight into a fresh embedded table: no HTTP, no validation.
async fn adapter_direct_writes(args: &Args, dir: &Path) -> f64 {
    let dir = tempfile::tempdir_in(dir).expect("dir");
    let table = EmbeddedTable::open(
        &dir.path().join("adapter.redb"),
        Arc::new(SystemClock),
        CursorSigner::new(
            custdata::keys::Keyring::single("1", "baseline-secret-baseline-secret!").expect("key"),
        ),
    )
    .expect("table");
    let tenant = TenantId::parse("bench").expect("tenant");
    let started = Instant::now();
    for index in 0..args.rows.div_ceil(args.batch) {
        let writes = (index * args.batch..((index + 1) * args.batch).min(args.rows))
            .map(|n| {
                let value = row(n);
                let key = keys::datastore_row(
                    &tenant,
                    "bench",
                    "v0",
                    value["customerID"].as_str().unwrap_or_default(),
                    value["productID"].as_str().unwrap_or_default(),
                );
                WriteRequest::Put(Item::new(key.pk, key.sk).with("record", value))
            })
            .collect();
        batch::write_all(&table, writes).await.expect("write");
    }
    rate(args.rows, started.elapsed())
}

/// Staging on the emulator: the requests and heat of the staging, and the go-live's cost.
struct EmulatorRun {
    staging: Metering,
    golive: Metering,
}

async fn on_the_emulator(rows: usize) -> EmulatorRun {
    let clock = Arc::new(SystemClock);
    let stores = custdata_tests::aws_stores(clock.clone()).await;
    let metered = Metered::new(Arc::new(stores.table));
    let tenant = TenantId::parse("bench").expect("tenant");
    let definition =
        Definition::parse(&serde_json::from_str(DEFINITION).expect("json")).expect("definition");
    store::create(&metered, &tenant, definition, clock.now_millis())
        .await
        .expect("create");
    let api_name = ApiName::parse("bench").expect("a valid apiName");
    let meter = Meter::start(&metered);
    for start in (0..rows).step_by(1000) {
        let records: Vec<Value> = (start..(start + 1000).min(rows)).map(row).collect();
        let outcomes = store::insert(&metered, &tenant, &api_name, Target::Staging, &records)
            .await
            .expect("insert");
        assert!(outcomes.iter().all(|o| o.result == InsertResult::Written));
    }
    let staging = meter.stop(rows);
    let reference = store::reference(
        &metered,
        &tenant,
        &api_name,
        Target::Staging,
        clock.now_millis(),
    )
    .await
    .expect("reference");
    let meter = Meter::start(&metered);
    store::go_live(&metered, &tenant, &api_name, &reference, clock.now_millis())
        .await
        .expect("golive");
    EmulatorRun {
        staging,
        golive: meter.stop(rows),
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    println!(
        "bench-datastores: {} rows, {} per request, {} in flight",
        args.rows, args.batch, args.concurrency
    );
    let dir = tempfile::tempdir().expect("dir");
    let (server_rate, reference_time, golive_time) =
        through_the_local_server(&args, &dir.path().join("server")).await;
    let items = ItemsPerRow::one("datastore row");
    let redb = redb_alone(
        dir.path(),
        args.rows,
        items.total(),
        VALUE_BYTES,
        ROWS_PER_COMMIT,
    );
    let adapter = adapter_direct_writes(&args, dir.path()).await;
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| staging through the local server (HTTP, validation, embedded store) | {server_rate:.0} rows/s |"
    );
    println!("| items written per row | {items} |");
    println!("| baseline: redb alone | {redb} |");
    println!(
        "| ratio server / redb alone | {:.3} |",
        ratio(server_rate, redb.rows_per_sec)
    );
    println!(
        "| for reference: batch::write_all straight into the embedded adapter | {adapter:.0} rows/s (ratio server / adapter {:.2}) |",
        ratio(server_rate, adapter)
    );
    println!(
        "| staging reference (seal) | {:.1} ms |",
        reference_time.as_secs_f64() * 1000.0
    );
    println!(
        "| go-live of {} rows (pointer switch) | {:.1} ms |",
        args.rows,
        golive_time.as_secs_f64() * 1000.0
    );
    if args.emulator_rows > 0 {
        let EmulatorRun { staging, golive } = on_the_emulator(args.emulator_rows).await;
        println!(
            "| DynamoDB (moto) staging, {} rows | {:.0} rows/s |",
            staging.rows,
            staging.rows_per_sec()
        );
        println!(
            "| DynamoDB write requests per 1,000 rows | {:.1} ({:.0} items in BatchWriteItem) |",
            staging.per_1000_rows(staging.requests.write_requests()),
            staging.per_1000_rows(staging.requests.batch_items),
        );
        println!(
            "| DynamoDB read requests per 1,000 rows | {:.1} |",
            staging.per_1000_rows(staging.requests.read_requests()),
        );
        println!(
            "| DynamoDB requests, by operation | {} |",
            staging.requests_line()
        );
        for line in staging.heat_lines() {
            println!("| partition heat | {line} |");
        }
        println!(
            "| go-live on DynamoDB (moto) | {:.1} ms, {} write and {} read requests |",
            golive.elapsed.as_secs_f64() * 1000.0,
            golive.requests.write_requests(),
            golive.requests.read_requests()
        );
    }
}
