//! Lambda `monetate-auth`: verifies an API user's signed assertion and issues a token. The
//! app is built once, outside the handler.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    custdata::lambda::run(&custdata::monetate::AUTH_FAMILY).await
}
