//! Lambda `datastore-sweep`, run by an EventBridge schedule: deletes the rows of datastore
//! table versions superseded by go-live or clear, once their grace period has passed.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    custdata::lambda::run_scheduled(&custdata::mxo::datastores::SWEEP_TASK).await
}
