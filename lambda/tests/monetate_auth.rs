//! The real Lambda binary serving `monetate-auth` as a Lambda under `cargo lambda watch`, on DynamoDB in
//! the emulator: an assertion signed with the tenant's private key comes back as a token
//! stored (hashed, expiring) in DynamoDB; an unsigned one is refused in the envelope.

use custdata::clock::{Clock, SystemClock};
use custdata::storage::keys;
use custdata::tenancy::{CredentialKind, secret_hash};
use custdata_tests::monetate::assertion;
use custdata_tests::{LambdaHarness, lambda_tenant};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auth_lambda_exchanges_a_signed_assertion_for_a_token_in_dynamodb() {
    let clock = SystemClock;
    let (app, tenant, table, bucket) = lambda_tenant("Lambda Retail").await;
    let lambda = LambdaHarness::start(
        env!("CARGO_BIN_EXE_custdata-lambda"),
        "monetate-auth",
        &table,
        &bucket,
    )
    .await;

    let monetate = &tenant.monetate;
    let now = clock.now_millis() as f64 / 1000.0;
    let signed = assertion(
        &monetate.private_key_pem,
        &monetate.api_username,
        now,
        Algorithm::RS256,
    );
    let refresh = |path: &'static str, authorization: String| {
        lambda.request(
            "GET /api/auth/v0/refresh/",
            path,
            json!({}),
            json!({"authorization": authorization}),
            None,
        )
    };
    let response = refresh("/api/auth/v0/refresh/?ttl=600", format!("JWT {signed}")).await;
    assert_eq!(response.status, 200);
    let body: Value = response.json();
    assert_eq!(body["meta"]["code"], 200);
    assert_eq!(body["data"]["expires_in"], 600);
    let token = body["data"]["token"].as_str().expect("a token");
    let stored = app
        .table
        .get(&keys::credential_index(
            CredentialKind::MonetateToken.as_str(),
            &secret_hash(token),
        ))
        .await
        .expect("read DynamoDB")
        .expect("the token is stored");
    assert_eq!(stored.str("tenant"), Some("lambda-retail"));
    let expires_at = stored.expires_at.expect("the token expires");
    assert!(
        (expires_at - clock.now_seconds() - 600).abs() <= 5,
        "{expires_at}"
    );

    // The same claims under {"alg":"none"} and without a signature.
    let payload = signed.split('.').nth(1).expect("a payload");
    let unsigned = format!("eyJhbGciOiJub25lIn0.{payload}.");
    let refused = refresh("/api/auth/v0/refresh/", format!("JWT {unsigned}")).await;
    assert_eq!(refused.status, 401);
    let body: Value = refused.json();
    assert_eq!(body["meta"]["code"], 401);
    assert_eq!(body["data"], json!({}));
}
