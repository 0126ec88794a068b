//! The HTTP fuzzer, bounded: every route of template.yaml gets mutated bodies, headers,
//! query strings, path segments and methods on the local server (embedded store); no
//! answer is a 5xx, none hangs or drops the connection, and no refused write changes the
//! tenant's customer data. `cargo run --release -p custdata-bench --bin bench-fuzz-http`
//! runs the same fuzzer for longer.

use custdata_tests::routes::{Tenant, furnish};
use custdata_tests::{http_fuzz, mxo_token_for, spawn_app};

/// Inputs per call of a route: enough to reach every mutation kind on every route.
const PER_CALL: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_requests_on_every_route_get_clear_answers_and_lose_nothing() {
    let app = spawn_app().await;
    let bundle = app.server.credentials.clone();
    let a = Tenant::sign_in(&app, bundle.clone()).await;
    let objects = furnish(&app, &a).await;
    let report = http_fuzz::run(&app, &bundle, &objects, PER_CALL, 0x0c0ffee).await;
    println!(
        "{} inputs over {} routes; statuses {:?}",
        report.inputs(),
        report.per_route.len(),
        report.statuses
    );
    assert!(
        report.failures.is_empty(),
        "{} failures, the first ones:\n{}",
        report.failures.len(),
        report
            .failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    let template = custdata::template::Template::bundled().expect("template.yaml parses");
    assert_eq!(
        report.per_route.len(),
        template.routes.len(),
        "every route was fuzzed"
    );
    assert!(report.per_route.values().all(|inputs| *inputs >= PER_CALL));
    // Still serving, for the same tenant.
    let token = mxo_token_for(&app, &bundle.mxo.client_id, &bundle.mxo.client_secret).await;
    assert!(!token.is_empty());
}
