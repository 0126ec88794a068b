//! Lambda readiness per function: the time from starting the stripped release Lambda binary
//! with the function's `CUSTDATA_FAMILY` (under `cargo lambda watch`'s runtime API emulator,
//! with DynamoDB and S3 on moto) to its first answered invocation, beside the same function's
//! warm invocation (the median of the next ones) as the baseline; and the binary's size.
//!
//! `cargo build --release && cargo run --release -p custdata-bench --bin bench-readiness`;
//! `--sam-build-dir target/sam/x86_64` runs each function's own artefact of a `sam build`
//! instead (scripts/sam-build.sh).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use custdata::template::Template;
use custdata_tests::{LambdaHarness, api_gateway_event};
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    /// The Lambda binary every function runs.
    #[arg(long, default_value = "target/release/custdata-lambda")]
    binary: PathBuf,
    /// A `sam build --build-dir`: each function runs the `bootstrap` of the artefact its
    /// entry in the template sam build wrote there names (`CodeUri`).
    #[arg(long)]
    sam_build_dir: Option<PathBuf>,
    /// Warm invocations per function.
    #[arg(long, default_value_t = 20)]
    warm: usize,
}

/// An event the function answers without any credential: a request on its first route
/// (401), or the schedule's event.
fn first_event(template: &Template, family: &str) -> Value {
    let Some(route) = template.routes.iter().find(|route| route.family == family) else {
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
    let built = args.sam_build_dir.as_ref().map(|dir| {
        let yaml = std::fs::read_to_string(dir.join("template.yaml"))
            .unwrap_or_else(|_| panic!("{} holds sam build's template.yaml", dir.display()));
        Template::parse(&yaml).expect("the built template parses")
    });
    let mut sizes = Vec::new();
    for function in &template.functions {
        let binary = match (&args.sam_build_dir, &built) {
            (Some(dir), Some(built)) => {
                let artefact = built
                    .functions
                    .iter()
                    .find(|f| f.logical_id == function.logical_id)
                    .and_then(|f| f.code_uri.clone())
                    .unwrap_or_else(|| panic!("{} has no artefact", function.logical_id));
                dir.join(artefact).join("bootstrap")
            }
            _ => args.binary.clone(),
        };
        let size = std::fs::metadata(&binary)
            .unwrap_or_else(|_| panic!("{} is built", binary.display()))
            .len();
        sizes.push(size);
        let event = first_event(&template, &function.family);
        let binary = binary.to_str().expect("a path");
        let harness = LambdaHarness::start(binary, &function.family, &table, &bucket).await;
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
            function.family,
            size as f64 / 1e6,
            ready.as_secs_f64() * 1000.0,
            warm.as_secs_f64() * 1000.0,
            ready.as_secs_f64() / warm.as_secs_f64()
        );
    }
    sizes.sort();
    sizes.dedup();
    println!(
        "{} functions, {} distinct executable size(s): {}",
        template.functions.len(),
        sizes.len(),
        sizes
            .iter()
            .map(|size| format!("{:.2} MB", *size as f64 / 1e6))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
