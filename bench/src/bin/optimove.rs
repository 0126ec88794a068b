//! Optimove paging on the local server: the customer listing's first page and the page at
//! `$skip=990000` (`$top=10000`), JSON and XML, with and without CustomerAttributes, over
//! 1,000,000 customers. The baseline, side by side: finding position 990,000 by reading the
//! listing from its start (what a plain offset would cost).
//!
//! The customers are written straight into the embedded store in the layout the customer
//! store gives them (profile, identifier entry, listing entry, counter): creating a million
//! customers through the write path is what bench-aixon and bench-monetate measure.
//!
//! `cargo run --release -p custdata-bench --bin bench-optimove`

use std::time::{Duration, Instant};

use clap::Parser;
use custdata::clock::{Clock, SystemClock};
use custdata::domain::TenantId;
use custdata::storage::{Item, Query, WriteRequest, batch, keys};
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// Customers in the listing.
    #[arg(long, default_value_t = 1_000_000)]
    customers: i64,
    /// Page size.
    #[arg(long, default_value_t = 10_000)]
    top: i64,
    /// Timed runs of each request (the median is printed).
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

fn median(mut times: Vec<Duration>) -> f64 {
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let (server, _dir) = custdata_tests::bench_server().await;
    let app = server.app.clone();
    let tenant = TenantId::parse(&server.credentials.tenant).expect("tenant");
    let key = server.credentials.optimove.api_key.clone();
    let client = reqwest::Client::new();
    let added = client
        .post(format!(
            "{}/current/customers/AddCustomerAttribute",
            server.base_url
        ))
        .header("X-API-KEY", &key)
        .json(&json!({"Name": "Tier", "Type": "VARCHAR(10)"}))
        .send()
        .await
        .expect("attribute");
    assert_eq!(added.status(), 200);

    let started = Instant::now();
    let now = SystemClock.now_millis();
    let chunk = 10_000;
    for first in (0..args.customers).step_by(chunk as usize) {
        let mut writes = Vec::with_capacity(3 * chunk as usize);
        for n in first..(first + chunk).min(args.customers) {
            let tid = format!("00000000-0000-4000-8000-{n:012}");
            let customer_key = format!("C{n:07}");
            let tier = ["gold", "silver", "bronze"][n as usize % 3];
            let profile = keys::customer_profile(&tenant, &tid);
            writes.push(WriteRequest::Put(
                Item::new(profile.pk, profile.sk)
                    .with("tid", tid.as_str())
                    .with(
                        "identifiers",
                        json!([{"apiName": "customerKey", "value": customer_key}]),
                    )
                    .with(
                        "attributes",
                        json!({"Tier": {"value": tier, "surface": "bench", "at": now}}),
                    )
                    .with("created", now)
                    .with("updated", now)
                    .with("rev", 1)
                    .with("ordinal", n),
            ));
            let entry = keys::customer_list_entry(&tenant, n);
            writes.push(WriteRequest::Put(
                Item::new(entry.pk, entry.sk)
                    .with("tid", tid.as_str())
                    .with("key", customer_key.as_str()),
            ));
        }
        batch::write_all(app.table.as_ref(), writes)
            .await
            .expect("load");
    }
    let counter = keys::customer_list_counter(&tenant);
    app.table
        .put(
            Item::new(counter.pk, counter.sk).with("next", args.customers),
            custdata::storage::Condition::Always,
        )
        .await
        .expect("counter");
    let load_seconds = started.elapsed().as_secs_f64();

    let deep = args.customers - args.top;
    let mut rows = Vec::new();
    for (label, query, accept) in [
        ("JSON", "", "application/json"),
        (
            "JSON, CustomerAttributes=Tier",
            "&CustomerAttributes=Tier",
            "application/json",
        ),
        ("XML", "", "application/xml"),
        (
            "XML, CustomerAttributes=Tier",
            "&CustomerAttributes=Tier",
            "application/xml",
        ),
    ] {
        let mut figures = Vec::new();
        for skip in [0, deep] {
            let url = format!(
                "{}/custdata/v1/optimove/customers?$top={}&$skip={skip}{query}",
                server.base_url, args.top
            );
            let mut times = Vec::with_capacity(args.runs);
            let mut body = String::new();
            for _ in 0..args.runs {
                let started = Instant::now();
                let response = client
                    .get(&url)
                    .header("X-API-KEY", &key)
                    .header("Accept", accept)
                    .send()
                    .await
                    .expect("page");
                assert_eq!(response.status(), 200);
                body = response.text().await.expect("body");
                times.push(started.elapsed());
            }
            let first_id = format!("C{skip:07}");
            assert!(
                body.contains(&first_id),
                "the page at {skip} starts with {first_id}"
            );
            figures.push((median(times), body.len()));
        }
        rows.push((label, figures[0], figures[1]));
    }

    // Baseline: reaching position `deep` by reading the listing from its start.
    let started = Instant::now();
    let mut passed = 0i64;
    let mut block = 0;
    while passed < deep {
        for stripe in 0..keys::LIST_STRIPES {
            let mut cursor = None;
            loop {
                let page = app
                    .table
                    .query(
                        Query::partition(keys::customer_list_stripe_pk(&tenant, block, stripe))
                            .limit(1000)
                            .after(cursor),
                    )
                    .await
                    .expect("query");
                passed += page.items.len() as i64;
                cursor = page.next;
                if cursor.is_none() {
                    break;
                }
            }
        }
        block += 1;
    }
    let walk_ms = started.elapsed().as_secs_f64() * 1000.0;

    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| customers loaded into the embedded store (profile + listing entry each) | {} in {load_seconds:.1} s |",
        args.customers
    );
    for (label, (first_ms, first_bytes), (deep_ms, deep_bytes)) in &rows {
        println!(
            "| {label}: page 1 ($top={}) | {first_ms:.1} ms ({:.1} MB) |",
            args.top,
            *first_bytes as f64 / 1e6
        );
        println!(
            "| {label}: page at $skip={deep} | {deep_ms:.1} ms ({:.1} MB); ratio deep / first {:.2} |",
            *deep_bytes as f64 / 1e6,
            deep_ms / first_ms
        );
    }
    println!(
        "| baseline: reaching position {deep} by reading the listing from the start, in-process | {walk_ms:.1} ms |"
    );
    server.shutdown().await;
}
