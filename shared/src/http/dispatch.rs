//! Endpoint families and scheduled tasks, and dispatch: one request through a family's
//! handler by its route key, with the body and path limits, the vendor's error shape, the
//! request id and panics contained.

use std::sync::Arc;

use futures::FutureExt;
use http::{HeaderValue, StatusCode};
use lambda_http::RequestExt;
use serde_json::Value;

use super::codes::{CustdataCode, MxoCode};
use super::errors::{ApiError, Vendor, error_response};
use super::{REQUEST_ID_HEADER, Request, Response, body_bytes, header};
use crate::app::App;
use crate::lambda_limits;
use crate::names::{BadName, first_bad_name};

/// A handler: takes the app and the request; expected failures are `Err(ApiError)`.
pub type HandlerFuture = std::pin::Pin<Box<dyn Future<Output = Result<Response, ApiError>> + Send>>;
pub type HandlerFn = fn(Arc<App>, Request) -> HandlerFuture;

/// One endpoint family: one Lambda function, one handler, one error shape, one body limit.
#[derive(Debug)]
pub struct Family {
    /// The family's name, as its function's `CUSTDATA_FAMILY` in template.yaml.
    pub name: &'static str,
    pub vendor: Vendor,
    /// The route keys (`POST /datastores/1.0.0/{workspaceId}`) its handler dispatches on:
    /// exactly the HttpApi events of its function in template.yaml, which a test checks.
    pub routes: &'static [&'static str],
    /// Requests with a larger body get 413 before the handler runs.
    pub max_body_bytes: usize,
    pub handler: HandlerFn,
}

/// What a scheduled task returns: a report to log, or why it failed.
pub type TaskFuture = std::pin::Pin<Box<dyn Future<Output = Result<Value, String>> + Send>>;

/// A task run on a schedule (EventBridge in AWS, a timer in the local server).
pub struct ScheduledTask {
    /// The task's name, as its function's `CUSTDATA_FAMILY` in template.yaml.
    pub name: &'static str,
    /// How often the local server runs it (template.yaml sets the AWS schedule).
    pub local_interval: std::time::Duration,
    /// Runs once for an event: the EventBridge or S3 event in AWS, `null` for a local tick.
    pub run: fn(Arc<App>, Value) -> TaskFuture,
}

impl std::fmt::Debug for ScheduledTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScheduledTask")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The request id: API Gateway's when there is one, else the client's, else a new one.
fn request_id(request: &Request) -> String {
    let from_gateway = match request.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(context)) => {
            context.request_id.clone()
        }
        _ => None,
    };
    from_gateway
        .or_else(|| {
            header(request, REQUEST_ID_HEADER)
                .filter(|id| id.len() <= 128)
                .map(str::to_string)
        })
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The route template the request matched (`GET /…/rows/{customuid}`), as API Gateway's
/// route key gives it (the local server sets the same); never the raw path. Families
/// dispatch on it, and the logs name it.
pub fn route_key(request: &Request) -> Option<&str> {
    match request.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(context)) => {
            context.route_key.as_deref()
        }
        _ => None,
    }
}

/// The request with `route_key` in its context, as API Gateway (HTTP API, payload 2.0) hands
/// it to a function: for the local server, and for whatever calls [`dispatch`] in process.
pub fn with_route_key(request: Request, route_key: impl Into<String>) -> Request {
    let mut context =
        lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext::default();
    context.route_key = Some(route_key.into());
    request.with_request_context(lambda_http::request::RequestContext::ApiGatewayV2(context))
}

/// The answer of a family to a route key it does not serve, for the families whose vendor
/// has no answer of its own for it. API Gateway invokes a function only for its own routes,
/// and the local server does the same, so this marks a defect: the family's `routes` and the
/// match of its dispatch disagree (the route tests catch that).
pub fn route_not_served(request: &Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        CustdataCode::MethodNotAllowed,
        format!(
            "{} is not served by this function",
            route_key(request).unwrap_or("a request without a route key")
        ),
    )
}

/// Runs one request through a family's handler: the same path in Lambda and locally.
/// Enforces the body limit, turns errors into the vendor's shape and stamps the request id.
/// Logs the route template, the tenant, the status and the request id, nothing of the
/// request's path, query or body (`logs`).
pub async fn dispatch(app: Arc<App>, family: &'static Family, request: Request) -> Response {
    let id = request_id(&request);
    let span = crate::logs::request_span(
        &id,
        route_key(&request).unwrap_or(crate::logs::UNKNOWN_ROUTE),
        family.name,
        request.method().as_str(),
    );
    let work = crate::logs::in_request(span, async move {
        let size = body_bytes(&request).len();
        let limits = app.settings.lambda_limits;
        let limit = limits.map_or(family.max_body_bytes, |limits| {
            limits.inline_body.min(family.max_body_bytes)
        });
        let outcome = if size > limit {
            Err(body_too_large(family.vendor, limit))
        } else if let Some(name) = overlong_path_parameter(&request) {
            Err(no_object_this_long(&name))
        } else if let Some(bad) = bad_path_name(&request) {
            Err(bad_name(&bad))
        } else if let Some(limits) = limits {
            let budget = lambda_limits::time_budget(&request, &limits, app.clock.now_millis());
            let reads = matches!(*request.method(), http::Method::GET | http::Method::HEAD);
            let page = lambda_limits::Page::of(&request);
            let work = unless_it_panics((family.handler)(app, request));
            lambda_limits::within(&limits, budget, reads, page, work).await
        } else {
            unless_it_panics((family.handler)(app, request)).await
        };
        let mut response = match outcome {
            Ok(response) => response,
            Err(error) => error_response(family.vendor, &error),
        };
        tracing::info!(status = response.status().as_u16(), "answered");
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        response
    });
    crate::metrics::in_family(family.name, work).await
}

/// The handler's outcome, or a 500 when it panicked: the panic ends that request only, and
/// the process (a Lambda execution environment, the local server) goes on serving. Release
/// builds unwind for this (Cargo.toml).
async fn unless_it_panics(
    work: impl Future<Output = Result<Response, ApiError>>,
) -> Result<Response, ApiError> {
    match std::panic::AssertUnwindSafe(work).catch_unwind().await {
        Ok(outcome) => outcome,
        Err(_) => {
            tracing::error!("the handler panicked; answered 500");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                CustdataCode::InternalError,
                "custdata failed on this request (a defect, logged); other requests are served",
            ))
        }
    }
}

/// The longest path parameter any object is named by. Every id, name and key of every
/// surface is far shorter; a longer one cannot name anything, and storage keys built from
/// it could exceed the table's key limits.
pub const MAX_PATH_PARAMETER_BYTES: usize = 512;

fn overlong_path_parameter(request: &Request) -> Option<String> {
    request
        .path_parameters_ref()?
        .iter()
        .find(|(_, value)| value.len() > MAX_PATH_PARAMETER_BYTES)
        .map(|(name, _)| name.to_string())
}

fn no_object_this_long(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        CustdataCode::NotFound,
        format!("nothing is named by a {name} longer than {MAX_PATH_PARAMETER_BYTES} bytes"),
    )
    .with_problem(
        None,
        Some(name),
        format!("at most {MAX_PATH_PARAMETER_BYTES} bytes"),
    )
}

/// The first path parameter that breaks its grammar (`crate::names`).
fn bad_path_name(request: &Request) -> Option<BadName> {
    let parameters = request.path_parameters_ref()?;
    first_bad_name(parameters.iter())
}

/// The 400 for a path name that breaks its grammar, in the route's vendor shape: the
/// parameter as the field, the rule as the rule (MXO's structure errors carry their name).
fn bad_name(bad: &BadName) -> ApiError {
    let structure = bad.parameter == "structureApiName";
    let error = ApiError::new(
        StatusCode::BAD_REQUEST,
        if structure {
            MxoCode::InvalidApiName
        } else {
            MxoCode::General
        },
        format!(
            "{} {:?} is not a valid name: {}",
            bad.parameter, bad.value, bad.rule
        ),
    )
    .with_problem(None, Some(&bad.parameter), bad.rule);
    if structure {
        error.with_detail("structureApiName", bad.value.clone())
    } else {
        error
    }
}

/// The 413 every route gives above its limit.
pub fn body_too_large(vendor: Vendor, limit: usize) -> ApiError {
    let instead = match vendor {
        Vendor::Aixon => {
            "POST /custdata/v1/aixon/csv-upload/{resourceId}/uploads for a presigned upload URL, which takes bodies of any size"
        }
        _ => "split the request",
    };
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        CustdataCode::PayloadTooLarge,
        format!("the request body exceeds this route's inline limit of {limit} bytes; {instead}"),
    )
    .with_problem(None, Some("body"), format!("at most {limit} bytes"))
}
