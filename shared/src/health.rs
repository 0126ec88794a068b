//! `GET /custdata/v1/health`: whether this function (or the local server) reaches its store,
//! for an uptime check, a load balancer or a deploy's smoke test. No credential: the answer
//! names no tenant and holds nothing but the verdict.

use std::time::Instant;

use http::StatusCode;
use serde_json::json;

use crate::app::App;
use crate::http::{ApiError, Family, Response, Vendor, json_response, route_key, route_not_served};
use crate::storage::keys;

pub const PATH: &str = "/custdata/v1/health";
/// The health check's one route.
const ROUTE: &str = "GET /custdata/v1/health";

/// Binary `health`.
pub static FAMILY: Family = Family {
    name: "health",
    vendor: Vendor::Custdata,
    routes: &[ROUTE],
    max_body_bytes: 0,
    handler: |app, request| {
        Box::pin(async move {
            match route_key(&request) {
                Some(ROUTE) => check(&app).await,
                _ => Err(route_not_served(&request)),
            }
        })
    },
};

/// 200 when a read of the table succeeds (the probe item need not exist), 503 with
/// `Retry-After` when it fails; the store's error goes to the log, not the answer.
pub async fn check(app: &App) -> Result<Response, ApiError> {
    let started = Instant::now();
    let read = app.table.get(&keys::health_probe()).await;
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    Ok(match read {
        Ok(_) => json_response(
            StatusCode::OK,
            &json!({"status": "ok", "store": "reachable", "storeMillis": millis}),
        ),
        Err(error) => {
            tracing::warn!(%error, "health: the store is unreachable");
            let mut answer = json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"status": "unavailable", "store": "unreachable", "storeMillis": millis}),
            );
            answer
                .headers_mut()
                .insert("retry-after", http::HeaderValue::from_static("5"));
            answer
        }
    })
}
