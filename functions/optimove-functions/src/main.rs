//! Lambda `optimove-functions`: the Optimove functions custdata answers, authenticated by
//! Authorization-Token or X-API-KEY and rate-limited per client. The app is built once,
//! outside the handler.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    custdata::lambda::run(&custdata::optimove::FUNCTIONS_FAMILY).await
}
