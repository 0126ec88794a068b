//! The MXO surfaces: OAuth2 token, Datastores API 1.0.0, Customer API 3.1.0.

pub mod auth;
pub mod customer;
pub mod datastores;
pub mod token;

use http::StatusCode;

use crate::http::{ApiError, MxoCode, Request};

/// MXO's answer to a method or route a function does not serve.
pub(crate) fn not_served(request: &Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        MxoCode::General,
        format!("{} is not served here", request.method()),
    )
}
