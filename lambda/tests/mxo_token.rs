//! The real Lambda binary serving `mxo-token`, run as a Lambda under `cargo lambda watch` (its runtime API
//! emulator) with the AWS adapters pointed at the emulator: proves the Lambda wiring, not
//! only the shared handler.

use std::sync::Arc;

use custdata::clock::{Clock, SystemClock};
use custdata::storage::{ItemTable, keys};
use custdata::tenancy::{CredentialKind, create_tenant, secret_hash};
use custdata_tests::{LambdaHarness, aws_stores, basic};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_lambda_issues_a_token_and_stores_it_in_dynamodb() {
    let clock = Arc::new(SystemClock);
    let stores = aws_stores(clock.clone()).await;
    let tenant = create_tenant(&stores.table, "Lambda Tenant", "", clock.now_millis())
        .await
        .expect("tenant");

    let lambda = LambdaHarness::start(
        env!("CARGO_BIN_EXE_custdata-lambda"),
        "mxo-token",
        stores.table.table_name(),
        stores.blobs.bucket(),
    )
    .await;

    let token_request = |authorization: String| {
        lambda.request(
            "POST /one/oauth2token",
            "/one/oauth2token",
            json!({}),
            json!({"authorization": authorization,
                   "content-type": "application/x-www-form-urlencoded"}),
            Some("grant_type=client_credentials"),
        )
    };
    let response = token_request(basic(&tenant.mxo.client_id, &tenant.mxo.client_secret)).await;
    assert_eq!(response.status, 200);
    assert!(response.headers["x-request-id"].is_string());
    let body = response.json();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().expect("a token");

    let stored = stores
        .table
        .get(&keys::credential_index(
            CredentialKind::MxoToken.as_str(),
            &secret_hash(token),
        ))
        .await
        .expect("read DynamoDB")
        .expect("the token is stored in DynamoDB");
    assert_eq!(stored.str("tenant"), Some("lambda-tenant"));
    let expires_at = stored.expires_at.expect("the token expires");
    assert!(
        (expires_at - clock.now_seconds() - 3600).abs() <= 5,
        "expires_at {expires_at}"
    );

    let refused = token_request(basic(&tenant.mxo.client_id, "wrong-secret")).await;
    assert_eq!(refused.status, 401);
    let body = refused.json();
    assert_eq!(body["error"], "invalid_client");
}
