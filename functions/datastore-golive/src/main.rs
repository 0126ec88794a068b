//! Lambda `datastore-golive`: MXO datastore references, go-live and clear. The app is built once, outside the handler.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    custdata::lambda::run(&custdata::mxo::datastores::GOLIVE_FAMILY).await
}
