//! The one Lambda binary. template.yaml gives every function the same artefact and sets its
//! `CUSTDATA_FAMILY` (`mxo-token`, `aixon-import`, …); the family's handler is then the only
//! code that function runs. The app is built once, outside the handler.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    custdata::lambda::run_family_from_env().await
}
