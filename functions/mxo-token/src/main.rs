//! Lambda `mxo-token`: `POST /one/oauth2token`. The app is built once, outside the handler.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    custdata::lambda::run(&custdata::mxo::token::FAMILY).await
}
