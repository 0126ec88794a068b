//! The Lambda entry point: JSON logs, the app built once outside the handler, then every
//! invocation dispatched to the handler of the family the function's `CUSTDATA_FAMILY` names.

use std::convert::Infallible;
use std::sync::Arc;

use crate::app::App;
use crate::http::{Family, ScheduledTask, dispatch};

/// Logs as JSON lines (CloudWatch), filtered by `RUST_LOG` (default `info`; see `logs`).
pub fn init_json_logs() {
    crate::logs::init_json();
}

/// Readable logs for a terminal (local server, admin CLI).
pub fn init_readable_logs() {
    crate::logs::init_readable();
}

/// Names, per function, the family or scheduled task the one Lambda binary serves there;
/// template.yaml sets it on every function.
pub const FAMILY_ENV: &str = "CUSTDATA_FAMILY";

/// Runs the family or scheduled task `CUSTDATA_FAMILY` names until the runtime stops it.
pub async fn run_family_from_env() -> Result<(), lambda_runtime::Error> {
    let name = std::env::var(FAMILY_ENV).map_err(|_| {
        format!("environment variable {FAMILY_ENV} is not set (template.yaml sets it)")
    })?;
    if let Some(family) = crate::routes::family(&name) {
        return run(family).await;
    }
    match crate::routes::scheduled(&name) {
        Some(task) => run_scheduled(task).await,
        None => Err(format!("{FAMILY_ENV}={name} names no family in shared/src/routes.rs").into()),
    }
}

/// Runs one family as a Lambda function until the runtime stops it.
pub async fn run(family: &'static Family) -> Result<(), lambda_http::Error> {
    init_json_logs();
    let mut app = App::from_env().await?;
    app.settings.lambda_limits = Some(crate::app::LAMBDA_LIMITS);
    let app = Arc::new(app);
    lambda_http::run(lambda_http::service_fn(move |request| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(dispatch(app, family, request).await) }
    }))
    .await
}

/// Runs a scheduled task as a Lambda function: each EventBridge event runs it once.
pub async fn run_scheduled(task: &'static ScheduledTask) -> Result<(), lambda_runtime::Error> {
    init_json_logs();
    let app = Arc::new(App::from_env().await?);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<serde_json::Value>| {
            let app = app.clone();
            async move {
                let run = (task.run)(app, event.payload);
                let report = crate::metrics::in_family(task.name, run).await?;
                tracing::info!(task = task.name, %report, "scheduled task done");
                Ok::<_, lambda_runtime::Error>(report)
            }
        },
    ))
    .await
}
