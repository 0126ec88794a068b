//! Lambda `datastore-stage`: MXO datastore records in staging or live: insert, read, delete; batch lookup. The app is built once, outside the handler.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    custdata::lambda::run(&custdata::mxo::datastores::STAGE_FAMILY).await
}
