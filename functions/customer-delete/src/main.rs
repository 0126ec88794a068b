//! Lambda `customer-delete`: MXO Customer API erasure. The app is built once, outside the handler.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    custdata::lambda::run(&custdata::mxo::customer::DELETE_FAMILY).await
}
