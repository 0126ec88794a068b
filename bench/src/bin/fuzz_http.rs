//! The HTTP fuzzer of the test suite (`tests/src/http_fuzz.rs`), run longer: `--per-call`
//! mutated inputs per call of every route of template.yaml on the local server (embedded
//! store, in-process), with a seed; prints the inputs per route, the statuses and every
//! broken rule. A robustness run, not a speed measure: it prints no ratios.
//!
//! `cargo run --release -p custdata-bench --bin bench-fuzz-http -- --per-call 1000`

use std::time::Instant;

use clap::Parser;
use custdata_tests::routes::{Tenant, furnish};
use custdata_tests::{http_fuzz, spawn_app};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 500)]
    per_call: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let app = spawn_app().await;
    let bundle = app.server.credentials.clone();
    let a = Tenant::sign_in(&app, bundle.clone()).await;
    let objects = furnish(&app, &a).await;
    let started = Instant::now();
    let report = http_fuzz::run(&app, &bundle, &objects, args.per_call, args.seed).await;
    let seconds = started.elapsed().as_secs_f64();
    for (route, inputs) in &report.per_route {
        println!("{inputs:>7}  {route}");
    }
    println!(
        "{} inputs over {} routes in {seconds:.1} s ({:.0} inputs/s); statuses {:?}",
        report.inputs(),
        report.per_route.len(),
        report.inputs() as f64 / seconds,
        report.statuses
    );
    println!("{} broken rules", report.failures.len());
    for failure in &report.failures {
        println!("  {failure}");
    }
}
