//! Lambda `customer-structure`: MXO Customer API structure requests and pull-structure definitions. The app is built once, outside the handler.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    custdata::lambda::run(&custdata::mxo::customer::STRUCTURE_FAMILY).await
}
