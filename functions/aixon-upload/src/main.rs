//! Lambda `aixon-upload`: AIXON csv-upload. Checks a body whole, stores it in S3 and answers;
//! `aixon-import` applies it. The app is built once, outside the handler.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    custdata::lambda::run(&custdata::aixon::UPLOAD_FAMILY).await
}
