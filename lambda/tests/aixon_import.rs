//! The real Lambda binary serving `aixon-import`, run as a Lambda under `cargo lambda watch` on DynamoDB and
//! S3 in the emulator, invoked with the S3 object-created notification Lambda receives for
//! a queued body: it applies the body once, and the same event delivered again does nothing.

use std::sync::Arc;

use custdata::aixon::store;
use custdata::clock::{Clock, SystemClock};
use custdata::customers::{self, CustomerRef, Identifier};
use custdata::domain::TenantId;
use custdata::storage::keys;
use custdata::tenancy::create_tenant;
use custdata_tests::{LambdaHarness, aixon, aws_stores, lambda_app};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_event_imports_the_queued_body_once() {
    let clock = Arc::new(SystemClock);
    let stores = aws_stores(clock.clone()).await;
    let (table_name, bucket) = (
        stores.table.table_name().to_string(),
        stores.blobs.bucket().to_string(),
    );
    let app = lambda_app(stores, clock.clone());
    let bundle = create_tenant(app.table.as_ref(), "Import Tenant", "", clock.now_millis())
        .await
        .expect("tenant");
    let request = aixon::create_request(
        &bundle.aixon.api_key,
        "from a lambda",
        "customuid,num_score,attr_tags\nc1,1,\"a, b\"\nc2,2,\nc3,3,c\n".into(),
    );
    let (status, created) = aixon::dispatch(app.clone(), request).await;
    assert_eq!(status, 200, "{created}");
    let cell = created["message"]["RESOURCE_ID"].as_str().expect("cell");
    let update = created["message"]["UPDATE_ID"].as_str().expect("update");
    let tenant = TenantId::parse(&bundle.tenant).expect("tenant");
    let key = keys::aixon_blob(&tenant, cell, update);

    let lambda = LambdaHarness::start(
        env!("CARGO_BIN_EXE_custdata-lambda"),
        "aixon-import",
        &table_name,
        &bucket,
    )
    .await;
    let event = aixon::s3_event(&bucket, &key);
    let first = lambda.invoke(&event).await;
    assert_eq!(
        (&first["updates_finished"], &first["rows_processed"]),
        (&json!(1), &json!(3)),
        "{first}"
    );
    let again = lambda.invoke(&event).await;
    assert_eq!(again["rows_processed"], 0, "{again}");

    let status = store::get_update(app.table.as_ref(), &tenant, cell, update)
        .await
        .expect("read")
        .expect("the update");
    assert_eq!((status.status, status.applied), (store::Status::Done, 3));
    let customer = customers::find(
        app.customers(),
        &tenant,
        &CustomerRef {
            tid: None,
            identifiers: vec![Identifier::customer_key("c1")],
        },
    )
    .await
    .expect("read")
    .expect("c1 is a customer");
    assert_eq!(customer.attributes["attr_tags"], json!(["a", "b"]));
}
