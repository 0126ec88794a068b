//! The real Lambda binary serving `health`, run as a Lambda under `cargo lambda watch` with the AWS adapters
//! pointed at the emulator: 200 when its table answers, 503 when the table it is configured
//! with does not exist — with no credential either way.

use std::sync::Arc;

use custdata::clock::SystemClock;
use custdata_tests::{LambdaHarness, aws_stores};
use serde_json::{Value, json};

async fn health(lambda: &LambdaHarness) -> (u16, Option<String>, Value) {
    let answer = lambda
        .request(
            &format!("GET {}", custdata::health::PATH),
            custdata::health::PATH,
            json!({}),
            json!({}),
            None,
        )
        .await;
    let retry = answer.headers["retry-after"].as_str().map(str::to_string);
    (answer.status, retry, answer.json())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_lambda_answers_whether_its_table_is_reachable() {
    let stores = aws_stores(Arc::new(SystemClock)).await;
    let reachable = LambdaHarness::start(
        env!("CARGO_BIN_EXE_custdata-lambda"),
        "health",
        stores.table.table_name(),
        stores.blobs.bucket(),
    )
    .await;
    let (status, _, body) = health(&reachable).await;
    assert_eq!(
        (status, &body["status"]),
        (200, &Value::from("ok")),
        "{body}"
    );
    drop(reachable);

    let missing = format!("{}-missing", stores.table.table_name());
    let unreachable = LambdaHarness::start(
        env!("CARGO_BIN_EXE_custdata-lambda"),
        "health",
        &missing,
        stores.blobs.bucket(),
    )
    .await;
    let (status, retry, body) = health(&unreachable).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["store"], "unreachable");
    assert_eq!(retry.as_deref(), Some("5"));
}
