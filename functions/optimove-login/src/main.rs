//! Lambda `optimove-login`: issues Optimove Authorization-Tokens. The app is built once,
//! outside the handler.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    custdata::lambda::run(&custdata::optimove::LOGIN_FAMILY).await
}
