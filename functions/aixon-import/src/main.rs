//! Lambda `aixon-import`: run by S3 "Object Created" events (through EventBridge) for each
//! queued AIXON body, and by a schedule that picks up anything an event missed.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    custdata::lambda::run_scheduled(&custdata::aixon::IMPORT_TASK).await
}
