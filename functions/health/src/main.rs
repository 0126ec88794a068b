//! Lambda `health`: `GET /custdata/v1/health`. The app is built once, outside the handler.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    custdata::lambda::run(&custdata::health::FAMILY).await
}
