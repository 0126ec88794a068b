//! Lambda readiness per function binary: the time from starting the stripped release binary
//! (under `cargo lambda watch`'s runtime API emulator, with DynamoDB and S3 on moto) to its
//! first answered invocation, beside the same function's warm invocation (the median of the
//! next ones) as the baseline; and each binary's size on disk.
//!
//! `cargo build --release --workspace --bins && cargo run --release -p custdata-bench --bin bench-readiness`

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use custdata::template::Template;
use custdata_tests::{LambdaHarness, api_gateway_event};
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    /// Where the release binaries are.
    #[arg(long, default_value = "target/release")]
    binaries: PathBuf,
    /// Warm invocations per function.
    #[arg(long, default_value_t = 20)]
    warm: usize,
}

/// An event the function answers without any credential: a request on its first route
/// (401), or the schedule's event.
fn first_event(template: &Template, binary: &str) -> Value {
    let Some(route) = template.routes.iter().find(|route| route.binary == binary) else {
        return json!({"version": "0", "id": "bench", "detail-type": "Scheduled Event", "source": "aws.events",
                      "account": "123456789012", "time": "2026-11-23T08:00:00Z", "region": "us-east-1", "resources": [], "detail": {}});
    };
    let mut parameters = serde_json::Map::new();
    let path: String = route
        .path
        .split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => {
                    parameters.insert(name.to_string(), json!("x"));
                    "x".to_string()
                }
                None => segment.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("/");
    let method = if route.method == "ANY" {
        "GET"
    } else {
        route.method.as_str()
    };
    api_gateway_event(
        method,
        &route.path,
        &path,
        Value::Object(parameters),
        json!({}),
        None,
    )
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let template = Template::bundled().expect("template.yaml parses");
    let stores = custdata_tests::aws_stores(Arc::new(custdata::clock::SystemClock)).await;
    let (table, bucket) = (
        stores.table.table_name().to_string(),
        stores.blobs.bucket().to_string(),
    );
    println!(
        "{:<22} {:>9} {:>14} {:>12} {:>8}  first answer",
        "function", "size MB", "ready (ms)", "warm (ms)", "ratio"
    );
    let mut total_size = 0;
    for function in &template.functions {
        let binary = args.binaries.join(&function.binary);
        let size = std::fs::metadata(&binary)
            .unwrap_or_else(|_| {
                panic!(
                    "{} is built (cargo build --release --workspace --bins)",
                    binary.display()
                )
            })
            .len();
        total_size += size;
        let event = first_event(&template, &function.binary);
        let harness = LambdaHarness::start(binary.to_str().expect("a path"), &table, &bucket).await;
        let answer = harness.invoke(&event).await;
        let ready = harness.spawned.elapsed();
        let mut warm: Vec<Duration> = Vec::new();
        for _ in 0..args.warm {
            let sent = Instant::now();
            harness.invoke(&event).await;
            warm.push(sent.elapsed());
        }
        warm.sort();
        let warm = warm[warm.len() / 2];
        let shown = answer
            .get("statusCode")
            .map(|status| format!("status {status}"))
            .unwrap_or_else(|| answer.to_string().chars().take(60).collect());
        println!(
            "{:<22} {:>9.1} {:>14.1} {:>12.2} {:>8.0}  {shown}",
            function.binary,
            size as f64 / 1e6,
            ready.as_secs_f64() * 1000.0,
            warm.as_secs_f64() * 1000.0,
            ready.as_secs_f64() / warm.as_secs_f64()
        );
    }
    println!(
        "all {} binaries: {:.1} MB",
        template.functions.len(),
        total_size as f64 / 1e6
    );
}
