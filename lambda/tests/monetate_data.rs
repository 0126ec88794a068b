//! The real Lambda binary serving `monetate-data` as a Lambda under `cargo lambda watch`, invoked with the
//! API Gateway events of its routes (path parameters included) on DynamoDB in the
//! emulator: a schema, rows, and the spot check reading them back.

use custdata::clock::{Clock, SystemClock};
use custdata_tests::monetate::assertion;
use custdata_tests::{LambdaHarness, api_gateway_event, lambda_tenant};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_lambda_stores_rows_and_spot_checks_them_in_dynamodb() {
    let clock = SystemClock;
    let (app, tenant, table, bucket) = lambda_tenant("Lambda Data").await;
    // The token, from the auth handler in-process on the same table.
    let signed = assertion(
        &tenant.monetate.private_key_pem,
        &tenant.monetate.api_username,
        clock.now_millis() as f64 / 1000.0,
        Algorithm::RS256,
    );
    let mut refresh = lambda_http::Request::default();
    refresh.headers_mut().insert(
        "authorization",
        format!("JWT {signed}").parse().expect("header"),
    );
    let refresh = custdata::http::with_route_key(refresh, "GET /api/auth/v0/refresh/");
    let issued =
        custdata::http::dispatch(app.clone(), &custdata::monetate::AUTH_FAMILY, refresh).await;
    assert_eq!(issued.status(), 200);
    let issued: Value = match issued.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).expect("JSON"),
        other => panic!("unexpected body {other:?}"),
    };
    let token = issued["data"]["token"].as_str().expect("token").to_string();

    let lambda = LambdaHarness::start(
        env!("CARGO_BIN_EXE_custdata-lambda"),
        "monetate-data",
        &table,
        &bucket,
    )
    .await;
    let retailer = tenant.monetate.retailer.clone();
    let base = "/api/data/v1/{retailer}/production";
    let headers =
        json!({"authorization": format!("Token {token}"), "content-type": "application/json"});
    let call = |method: &str, route: String, path: String, params: Value, body: Option<Value>| {
        let event = api_gateway_event(
            method,
            &route,
            &path,
            params,
            headers.clone(),
            body.as_ref(),
        );
        let lambda = &lambda;
        async move {
            let answer = lambda.invoke(&event).await;
            let body: Value =
                serde_json::from_str(answer["body"].as_str().unwrap_or("{}")).expect("JSON body");
            (answer["statusCode"].as_u64().unwrap_or(0), body)
        }
    };
    let schema = json!({"name": "crm", "fields": {
        "customer_id": {"data_type": "STRING", "identifier": true, "unique_key": true},
        "tier": {"data_type": "STRING"}}});
    let (status, body) = call(
        "POST",
        format!("{base}/schema/"),
        format!("/api/data/v1/{retailer}/production/schema/"),
        json!({"retailer": retailer}),
        Some(schema),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(
        "POST",
        format!("{base}/data/{{schemaName}}/"),
        format!("/api/data/v1/{retailer}/production/data/crm/"),
        json!({"retailer": retailer, "schemaName": "crm"}),
        Some(json!({"schema_rows": [{"customer_id": "c-1", "tier": "gold"}]})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(
        "GET",
        format!("{base}/data/{{schemaName}}/"),
        format!("/api/data/v1/{retailer}/production/data/crm/?id=c-1"),
        json!({"retailer": retailer, "schemaName": "crm"}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["schema_rows"],
        json!([{"customer_id": "c-1", "tier": "gold"}])
    );
}
