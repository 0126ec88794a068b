//! HTTP plumbing in one place: the request/response types both the Lambda runtime and the
//! local server use, body limits, content-type checks, the vendor-shaped error response, a
//! request id on every response.
//!
//! This module holds the request and response helpers: the types, JSON and empty
//! responses, the body, its media type and JSON, headers and parameters. [`errors`] holds
//! [`ApiError`] and the vendor error shapes, [`codes`] the codes errors carry (one enum per
//! vendor vocabulary), and [`dispatch`](mod@dispatch) the endpoint
//! families, scheduled tasks and the dispatch of one request by its route key.

mod codes;
mod dispatch;
mod errors;

pub use codes::{CustdataCode, ErrorCode, MxoCode, OAuthCode};
pub use dispatch::{
    Family, HandlerFn, HandlerFuture, MAX_PATH_PARAMETER_BYTES, ScheduledTask, TaskFuture,
    body_too_large, dispatch, route_key, route_not_served, with_route_key,
};
pub use errors::{ApiError, Vendor, error_body, error_response};

use std::collections::HashMap;

use http::{HeaderValue, StatusCode};
use lambda_http::{Body, RequestExt};
use serde::Serialize;
use serde_json::Value;

/// The request every handler takes: lambda_http's, in Lambda and in the local server alike.
pub type Request = lambda_http::Request;
/// The response every handler returns.
pub type Response = http::Response<Body>;

/// Header carrying the request id on every response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

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
            CustdataCode::UnsupportedMediaType,
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
                MxoCode::General,
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
            MxoCode::General,
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
