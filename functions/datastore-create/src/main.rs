//! Lambda `datastore-create`: list, create, get and delete MXO datastores. The app is built once, outside the handler.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    custdata::lambda::run(&custdata::mxo::datastores::CREATE_FAMILY).await
}
