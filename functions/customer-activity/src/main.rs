//! Lambda `customer-activity`: MXO Customer API activity (and the activity log extension). The app is built once, outside the handler.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    custdata::lambda::run(&custdata::mxo::customer::ACTIVITY_FAMILY).await
}
