//! Lambda `monetate-data`: the Monetate Data API and its extensions, authenticated by the
//! tokens `monetate-auth` issues. The app is built once, outside the handler.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    custdata::lambda::run(&custdata::monetate::DATA_FAMILY).await
}
