//! HTTP plumbing in one place: the request/response types both the Lambda runtime and the
//! local server use, body limits, content-type checks, the vendor-shaped error response, a
//! request id on every response.

use std::collections::HashMap;
use std::sync::Arc;

use futures::FutureExt;
use http::{HeaderValue, StatusCode};
use lambda_http::{Body, RequestExt};
use serde::Serialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::customers::CustomerError;
use crate::domain::Problem;
use crate::lambda_limits;
use crate::names::{BadName, first_bad_name};
use crate::storage::{BlobError, StorageError};
use crate::tenancy::AuthError;

/// The request every handler takes: lambda_http's, in Lambda and in the local server alike.
pub type Request = lambda_http::Request;
/// The response every handler returns.
pub type Response = http::Response<Body>;

/// Header carrying the request id on every response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Whose error shape a route answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    /// MXO's OAuth2 token endpoint: RFC 6749 `{"error": …}`.
    MxoOAuth,
    /// MXO APIs: `{"errorCode", "errorMessage"}`.
    Mxo,
    /// Monetate: `{"meta": {"code", "errors"}, "data": {}}`.
    Monetate,
    /// AIXON: `{"status": "error", "message", "errors"}`.
    Aixon,
    /// Optimove: `{"status", "error", "message"}`.
    Optimove,
    /// custdata's own extensions: `{"error": {…}}`.
    Custdata,
}

/// An error a client sees: status, the vendor's error code, a message and the problems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// The vendor's code for it (`invalid_client`, `GENERAL`, …).
    pub code: &'static str,
    pub message: String,
    pub problems: Vec<Problem>,
    /// Extra headers, e.g. `WWW-Authenticate` or `Retry-After`.
    pub headers: Vec<(&'static str, String)>,
    /// Extra fields of the vendor's error object (MXO's `activity`, `structureApiName`).
    pub details: Vec<(&'static str, Value)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            problems: Vec::new(),
            headers: Vec::new(),
            details: Vec::new(),
        }
    }

    pub fn with_detail(mut self, name: &'static str, value: impl Into<Value>) -> Self {
        self.details.push((name, value.into()));
        self
    }

    pub fn with_problem(
        mut self,
        row: Option<usize>,
        field: Option<&str>,
        rule: impl Into<String>,
    ) -> Self {
        self.problems.push(Problem {
            row,
            field: field.map(str::to_string),
            rule: rule.into(),
        });
        self
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// An infrastructure fault: logged in full, answered without internals.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(detail = %detail, "internal fault");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "GENERAL",
            "the service is temporarily unavailable; retry later",
        )
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::InvalidCursor => {
                ApiError::new(StatusCode::BAD_REQUEST, "INVALID_CURSOR", error.to_string())
            }
            StorageError::Contention(detail) => {
                tracing::warn!(%detail, "storage contention");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "GENERAL",
                    "the service is busy; retry shortly",
                )
                .with_header("retry-after", "1")
            }
            other => ApiError::internal(other),
        }
    }
}

/// The one mapping of the customer store's errors, for every surface but MXO (whose vendor
/// codes `mxo::customer` gives). Every variant named: a new one must be placed here, not
/// fall into a busy answer that tells clients to retry.
impl From<CustomerError> for ApiError {
    fn from(error: CustomerError) -> Self {
        match error {
            CustomerError::Suppressed(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "SUPPRESSED", error.to_string())
            }
            CustomerError::Conflict(_) => {
                ApiError::new(StatusCode::CONFLICT, "CONFLICT", error.to_string())
            }
            CustomerError::Busy => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "BUSY", error.to_string())
                    .with_header("retry-after", "1")
            }
            CustomerError::Storage(storage) => storage.into(),
        }
    }
}

impl From<BlobError> for ApiError {
    fn from(error: BlobError) -> Self {
        match error {
            BlobError::InvalidKey(_) | BlobError::PresignRejected(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", error.to_string())
            }
            BlobError::PresignExpired => {
                ApiError::new(StatusCode::FORBIDDEN, "EXPIRED", error.to_string())
            }
            // The status S3 answers a refused `If-None-Match: *`.
            BlobError::PresignUsed => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "UPLOAD_URL_USED",
                error.to_string(),
            ),
            BlobError::Body(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "BAD_BODY", error.to_string())
            }
            BlobError::Unavailable(_) => ApiError::internal(error),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Invalid => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "the credential is not valid",
            ),
            AuthError::Storage(storage) => storage.into(),
        }
    }
}

/// The body of an error in the vendor's shape. The one place error bodies are built.
pub fn error_body(vendor: Vendor, error: &ApiError) -> Value {
    match vendor {
        Vendor::MxoOAuth => json!({"error": error.code, "error_description": error.message}),
        Vendor::Mxo => {
            let mut body = json!({"errorCode": error.code, "errorMessage": error.message});
            if !error.problems.is_empty() {
                body["errors"] = json!(error.problems);
            }
            for (name, value) in &error.details {
                body[*name] = value.clone();
            }
            body
        }
        Vendor::Monetate => {
            let mut errors: Vec<Value> = error
                .problems
                .iter()
                .map(|p| json!({"row": p.row, "field": p.field, "message": p.rule}))
                .collect();
            if errors.is_empty() {
                errors.push(json!({"message": error.message}));
            }
            json!({"meta": {"code": error.status.as_u16(), "errors": errors, "warnings": []}, "data": {}})
        }
        Vendor::Aixon => {
            let errors: Vec<Value> = error
                .problems
                .iter()
                .map(|p| json!({"row": p.row, "column": p.field, "rule": p.rule}))
                .collect();
            json!({"status": "error", "message": error.message, "errors": errors})
        }
        Vendor::Optimove => json!({
            "status": error.status.as_u16(),
            "error": error.status.canonical_reason().unwrap_or("Error"),
            "message": error.message,
            "errors": error.problems,
        }),
        Vendor::Custdata => {
            json!({"error": {"code": error.code, "message": error.message, "problems": error.problems}})
        }
    }
}

/// The full error response in the vendor's shape.
pub fn error_response(vendor: Vendor, error: &ApiError) -> Response {
    let mut response = json_response(error.status, &error_body(vendor, error));
    for (name, value) in &error.headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            response.headers_mut().insert(*name, value);
        }
    }
    response
}

/// A JSON response.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_string());
    let mut response = http::Response::new(Body::Text(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An empty response with a status.
pub fn empty_response(status: StatusCode) -> Response {
    let mut response = http::Response::new(Body::Empty);
    *response.status_mut() = status;
    response
}

/// The request's body as bytes (API Gateway hands text or binary).
pub fn body_bytes(request: &Request) -> &[u8] {
    match request.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    }
}

/// The media type of the request, lower-cased, without parameters.
pub fn media_type(request: &Request) -> Option<String> {
    let value = request
        .headers()
        .get(http::header::CONTENT_TYPE)?
        .to_str()
        .ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
    )
}

/// Refuses a request whose media type is not one of `allowed` with 415 naming them.
pub fn require_media_type(request: &Request, allowed: &[&str]) -> Result<(), ApiError> {
    match media_type(request) {
        Some(found) if allowed.contains(&found.as_str()) => Ok(()),
        found => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            format!(
                "Content-Type must be one of {}; got {}",
                allowed.join(", "),
                found.as_deref().unwrap_or("none")
            ),
        )
        .with_problem(
            None,
            Some("Content-Type"),
            format!("one of {}", allowed.join(", ")),
        )),
    }
}

/// Content types that tools send by default (curl `-d`, a browser's `fetch` of a string):
/// a body sent with one of them is read as JSON when it parses as JSON (docs/decisions.md,
/// "Vendor fidelity").
pub const DEFAULT_CLIENT_MEDIA_TYPES: [&str; 2] =
    ["application/x-www-form-urlencoded", "text/plain"];

/// The body as JSON. A missing or JSON content type is accepted (vendor clients are not
/// all careful about it), and so is a tool's default type when the body parses as JSON;
/// another type is 415 naming the fix; a body that is not JSON is 400 with serde's line and
/// column.
pub fn json_body(request: &Request) -> Result<Value, ApiError> {
    if let Some(found) =
        media_type(request).filter(|found| found != "application/json" && !found.ends_with("+json"))
    {
        let parsed = DEFAULT_CLIENT_MEDIA_TYPES
            .contains(&found.as_str())
            .then(|| serde_json::from_slice(body_bytes(request)).ok())
            .flatten();
        return parsed.ok_or_else(|| {
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "GENERAL",
                format!(
                    "Content-Type must be application/json, got {found}; send the JSON body with the header Content-Type: application/json (curl: -H 'Content-Type: application/json')"
                ),
            )
            .with_problem(None, Some("Content-Type"), "application/json")
        });
    }
    serde_json::from_slice(body_bytes(request)).map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "GENERAL",
            format!("the body is not valid JSON: {error}"),
        )
        .with_problem(None, Some("body"), "valid JSON")
    })
}

/// A header's value as text, if present and readable.
pub fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
}

/// A path parameter, as API Gateway (or the local server) extracted it.
pub fn path_parameter(request: &Request, name: &str) -> Option<String> {
    request
        .path_parameters_ref()
        .and_then(|params| params.first(name))
        .map(str::to_string)
}

/// Every query parameter's first value.
pub fn query_parameters(request: &Request) -> HashMap<String, String> {
    let mut found = HashMap::new();
    if let Some(params) = request.query_string_parameters_ref() {
        for (name, value) in params.iter() {
            found
                .entry(name.to_string())
                .or_insert_with(|| value.to_string());
        }
    }
    found
}

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
        "METHOD_NOT_ALLOWED",
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
                "INTERNAL_ERROR",
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
        "NOT_FOUND",
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
            "INVALID_API_NAME"
        } else {
            "GENERAL"
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
        "PAYLOAD_TOO_LARGE",
        format!("the request body exceeds this route's inline limit of {limit} bytes; {instead}"),
    )
    .with_problem(None, Some("body"), format!("at most {limit} bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(error: CustomerError) -> (u16, &'static str, Option<String>) {
        let error = ApiError::from(error);
        let retry = error
            .headers
            .iter()
            .find(|(name, _)| *name == "retry-after")
            .map(|(_, value)| value.clone());
        (error.status.as_u16(), error.code, retry)
    }

    /// A refused row: status 400, code `GENERAL`, one problem naming row 3's `email`.
    fn refused_row() -> ApiError {
        let mut error = ApiError::new(StatusCode::BAD_REQUEST, "GENERAL", "rows are not valid");
        error.problems.push(Problem {
            row: Some(3),
            field: Some("email".into()),
            rule: "an e-mail address".into(),
        });
        error
    }

    #[test]
    fn each_vendor_gets_its_own_error_shape_naming_row_field_and_rule() {
        let error = refused_row();
        assert_eq!(
            error_body(Vendor::MxoOAuth, &error),
            json!({"error": "GENERAL", "error_description": "rows are not valid"})
        );
        assert_eq!(
            error_body(
                Vendor::Mxo,
                &error.clone().with_detail("activity", json!("a1"))
            ),
            json!({"errorCode": "GENERAL", "errorMessage": "rows are not valid",
                   "errors": [{"row": 3, "field": "email", "rule": "an e-mail address"}],
                   "activity": "a1"})
        );
        assert_eq!(
            error_body(Vendor::Monetate, &error),
            json!({"meta": {"code": 400, "warnings": [],
                            "errors": [{"row": 3, "field": "email", "message": "an e-mail address"}]},
                   "data": {}})
        );
        assert_eq!(
            error_body(Vendor::Aixon, &error),
            json!({"status": "error", "message": "rows are not valid",
                   "errors": [{"row": 3, "column": "email", "rule": "an e-mail address"}]})
        );
        assert_eq!(
            error_body(Vendor::Optimove, &error),
            json!({"status": 400, "error": "Bad Request", "message": "rows are not valid",
                   "errors": [{"row": 3, "field": "email", "rule": "an e-mail address"}]})
        );
        assert_eq!(
            error_body(Vendor::Custdata, &error),
            json!({"error": {"code": "GENERAL", "message": "rows are not valid",
                             "problems": [{"row": 3, "field": "email", "rule": "an e-mail address"}]}})
        );
    }

    #[test]
    fn an_error_without_problems_still_says_what_went_wrong() {
        let error = ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such schema");
        assert_eq!(
            error_body(Vendor::Mxo, &error),
            json!({"errorCode": "NOT_FOUND", "errorMessage": "no such schema"})
        );
        assert_eq!(
            error_body(Vendor::Monetate, &error)["meta"]["errors"],
            json!([{"message": "no such schema"}])
        );
        assert_eq!(error_body(Vendor::Aixon, &error)["errors"], json!([]));
    }

    #[test]
    fn only_a_busy_customer_store_tells_the_client_to_retry() {
        assert_eq!(
            mapped(CustomerError::Suppressed("customer key".into())),
            (400, "SUPPRESSED", None)
        );
        assert_eq!(
            mapped(CustomerError::Conflict(
                "the identifier belongs to another".into()
            )),
            (409, "CONFLICT", None)
        );
        assert_eq!(
            mapped(CustomerError::Busy),
            (503, "BUSY", Some("1".to_string()))
        );
        assert_eq!(
            mapped(CustomerError::Storage(StorageError::InvalidCursor)),
            (400, "INVALID_CURSOR", None)
        );
    }
}
