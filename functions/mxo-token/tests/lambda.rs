//! The real `mxo-token` binary, run as a Lambda under `cargo lambda watch` (its runtime API
//! emulator) with the AWS adapters pointed at the emulator: proves the Lambda wiring, not
//! only the shared handler.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Arc;

use custdata::clock::{Clock, SystemClock};
use custdata::storage::{ItemTable, keys};
use custdata::tenancy::{CredentialKind, create_tenant, secret_hash};
use custdata_tests::{
    ChildGuard, aws_stores, basic, emulator, free_port, wait_for_port, workspace_root,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_lambda_issues_a_token_and_stores_it_in_dynamodb() {
    let clock = Arc::new(SystemClock);
    let stores = aws_stores(clock.clone()).await;
    let tenant = create_tenant(&stores.table, "Lambda Tenant", "", clock.now_millis())
        .await
        .expect("tenant");

    let port = free_port();
    let venv_bin = workspace_root().join("target/venv/bin");
    let path = format!(
        "{}:{}",
        venv_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let _watch = ChildGuard(
        Command::new(venv_bin.join("cargo-lambda"))
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "-A",
                "127.0.0.1",
                "-P",
                &port.to_string(),
            ])
            .env("PATH", &path)
            .current_dir(workspace_root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("cargo lambda watch starts"),
    );
    wait_for_port(port, 60).await;
    let _function = ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_mxo-token"))
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_ENDPOINT_URL", &emulator().url)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("CUSTDATA_TABLE", stores.table.table_name())
            .env("CUSTDATA_BUCKET", stores.blobs.bucket())
            .env(
                "CUSTDATA_SIGNING_SECRET",
                "a-signing-secret-of-at-least-32-bytes",
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("the function binary starts"),
    );

    let url = format!("http://127.0.0.1:{port}/lambda-url/_/one/oauth2token");
    let client = reqwest::Client::new();
    let response = client
        .post(&url)
        .header(
            "authorization",
            basic(&tenant.mxo.client_id, &tenant.mxo.client_secret),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("the Lambda answers");
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let body: serde_json::Value = response.json().await.expect("JSON");
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

    let refused = client
        .post(&url)
        .header(
            "authorization",
            basic(&tenant.mxo.client_id, "wrong-secret"),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("the Lambda answers");
    assert_eq!(refused.status(), 401);
    let body: serde_json::Value = refused.json().await.expect("JSON");
    assert_eq!(body["error"], "invalid_client");
}
