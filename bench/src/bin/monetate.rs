//! Monetate on the local server: token exchanges/s (assertion verified against the user's
//! registered RSA key, token stored) and rows/s of bulk `POST /data/{schema}/`. Baselines,
//! side by side: RS256 verification alone in-process; for the rows, redb alone writing as
//! many items per row as the schema path does (1,000 rows per durable commit, same disk),
//! and the same row batches checked and posted through the shared functions in-process.
//!
//! `cargo run --release -p custdata-bench --bin bench-monetate`

use std::time::Instant;

use clap::Parser;
use custdata::clock::{Clock, SystemClock};
use custdata::domain::TenantId;
use custdata::monetate::{records, schemas};
use custdata_bench::{ItemsPerRow, ROWS_PER_COMMIT, VALUE_BYTES, ratio, redb_alone};
use futures::StreamExt;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    /// Token exchanges.
    #[arg(long, default_value_t = 2_000)]
    exchanges: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Rows posted in all.
    #[arg(long, default_value_t = 100_000)]
    rows: usize,
    /// Rows per POST.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
}

fn schema() -> Value {
    json!({"name": "crm", "type": "attribute", "fields": {
        "customer_id": {"data_type": "STRING", "identifier": true, "unique_key": true},
        "tier": {"data_type": "STRING"}, "ltv": {"data_type": "NUMBER"},
        "opted_in": {"data_type": "BOOLEAN"}, "signup": {"data_type": "DATETIME"}}})
}

/// The items a row of [`schema`] writes: its Monetate row item, and — each row's unique key
/// (also the identifier) naming a new customer, with attributes — that customer's items
/// (no identifiers besides the customer key).
fn items_per_row() -> ItemsPerRow {
    ItemsPerRow::new_customer(0).and(1, "Monetate row item")
}

fn batch_body(prefix: &str, first: usize, count: usize) -> Value {
    let rows: Vec<Value> = (first..first + count)
        .map(|n| {
            let tier = ["gold", "silver", "bronze"][n % 3];
            json!({"customer_id": format!("{prefix}-{n}"), "tier": tier,
                   "ltv": n as f64 * 1.5, "opted_in": n % 2 == 0, "signup": "2024-05-01T10:00:00Z"})
        })
        .collect();
    json!({"schema_rows": rows, "_sent_time": "2026-11-23T08:00:00Z"})
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let (server, dir) = custdata_tests::bench_server().await;
    let client = reqwest::Client::new();
    let monetate = server.credentials.monetate.clone();
    let iat = SystemClock.now_millis() as f64 / 1000.0;
    let assertion = custdata_tests::monetate::assertion(
        &monetate.private_key_pem,
        &monetate.api_username,
        iat,
        Algorithm::RS256,
    );

    // Token exchanges through HTTP.
    let refresh_url = format!("{}/api/auth/v0/refresh/", server.base_url);
    let started = Instant::now();
    let tokens: Vec<String> = futures::stream::iter(0..args.exchanges)
        .map(|_| {
            let (client, url, assertion) = (client.clone(), refresh_url.clone(), assertion.clone());
            async move {
                let body: Value = client
                    .get(url)
                    .header("authorization", format!("JWT {assertion}"))
                    .send()
                    .await
                    .expect("refresh")
                    .json()
                    .await
                    .expect("json");
                body["data"]["token"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let exchange_rate = args.exchanges as f64 / started.elapsed().as_secs_f64();
    assert!(
        tokens.iter().all(|t| !t.is_empty()),
        "every exchange succeeded"
    );

    // Baseline: the signature check alone.
    let app = server.app.clone();
    let tenant = TenantId::parse(&server.credentials.tenant).expect("tenant");
    let key =
        custdata::monetate::users::keys_of(app.table.as_ref(), &tenant, &monetate.api_username)
            .await
            .expect("keys")
            .remove(0);
    let decoding = DecodingKey::from_rsa_pem(key.public_key_pem.as_bytes()).expect("key");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let started = Instant::now();
    for _ in 0..args.exchanges {
        jsonwebtoken::decode::<Value>(&assertion, &decoding, &validation).expect("verifies");
    }
    let verify_rate = args.exchanges as f64 / started.elapsed().as_secs_f64();

    // Rows through HTTP.
    let token = tokens[0].clone();
    let base = format!(
        "{}/api/data/v1/{}/production",
        server.base_url, monetate.retailer
    );
    let created = client
        .post(format!("{base}/schema/"))
        .header("authorization", format!("Token {token}"))
        .json(&schema())
        .send()
        .await
        .expect("schema");
    assert_eq!(created.status(), 201);
    let batches = args.rows.div_ceil(args.batch);
    let bodies: Vec<String> = (0..batches)
        .map(|b| batch_body("H", b * args.batch, args.batch).to_string())
        .collect();
    let bytes: usize = bodies.iter().map(String::len).sum();
    let started = Instant::now();
    for body in &bodies {
        let response = client
            .post(format!("{base}/data/crm/"))
            .header("authorization", format!("Token {token}"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("post");
        assert_eq!(
            response.status(),
            201,
            "{}",
            response.text().await.unwrap_or_default()
        );
    }
    let http_seconds = started.elapsed().as_secs_f64();
    let http_rows = (batches * args.batch) as f64 / http_seconds;

    // Baseline: redb alone, as many items per row.
    let items = items_per_row();
    let redb = redb_alone(
        dir.path(),
        batches * args.batch,
        items.total(),
        VALUE_BYTES,
        ROWS_PER_COMMIT,
    );

    // Baselines: checking alone, and checking + posting in-process.
    let (crm, _) = schemas::get(app.table.as_ref(), &tenant, "crm")
        .await
        .expect("read")
        .expect("crm");
    let direct_bodies: Vec<String> = (0..batches)
        .map(|b| batch_body("D", b * args.batch, args.batch).to_string())
        .collect();
    let started = Instant::now();
    for body in &direct_bodies {
        let value: Value = serde_json::from_str(body).expect("json");
        records::check_body(&crm, &value).expect("valid");
    }
    let check_rows = (batches * args.batch) as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for body in &direct_bodies {
        let value: Value = serde_json::from_str(body).expect("json");
        let rows = records::check_body(&crm, &value).expect("valid");
        records::post(
            app.customers(),
            app.clock.as_ref(),
            &tenant,
            &crm,
            body.as_bytes(),
            rows,
        )
        .await
        .expect("posted");
    }
    let direct_rows = (batches * args.batch) as f64 / started.elapsed().as_secs_f64();

    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| token exchanges through the local server ({} exchanges, {} in flight, RS256, 2048-bit key) | {exchange_rate:.0} /s |",
        args.exchanges, args.concurrency
    );
    println!(
        "| baseline: RS256 verification alone, in-process, one thread | {verify_rate:.0} /s |"
    );
    println!(
        "| ratio server / baseline | {:.2} |",
        exchange_rate / verify_rate
    );
    println!(
        "| rows posted through the local server ({} rows in {} POSTs of {}, {:.1} MB) | {http_rows:.0} rows/s ({:.2} MB/s) |",
        batches * args.batch,
        batches,
        args.batch,
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / http_seconds
    );
    println!("| items written per row | {items} |");
    println!("| baseline: redb alone | {redb} |");
    println!(
        "| ratio server / redb alone | {:.3} |",
        ratio(http_rows, redb.rows_per_sec)
    );
    println!("| baseline: JSON parse + row checks alone, in-process | {check_rows:.0} rows/s |");
    println!(
        "| baseline: check + post (customers and rows) in-process | {direct_rows:.0} rows/s |"
    );
    println!(
        "| ratio server / in-process post | {:.2} |",
        http_rows / direct_rows
    );
    server.shutdown().await;
}
