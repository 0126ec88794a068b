//! Errors as clients see them: [`ApiError`], its mapping from the storage, customer,
//! blob and auth errors, and its body and response in each vendor's shape.

use http::{HeaderValue, StatusCode};
use serde_json::{Value, json};

use super::codes::{CustdataCode, ErrorCode, MxoCode};
use super::{Response, json_response};
use crate::customers::CustomerError;
use crate::domain::Problem;
use crate::storage::{BlobError, StorageError};
use crate::tenancy::AuthError;

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
    pub code: ErrorCode,
    pub message: String,
    pub problems: Vec<Problem>,
    /// Extra headers, e.g. `WWW-Authenticate` or `Retry-After`.
    pub headers: Vec<(&'static str, String)>,
    /// Extra fields of the vendor's error object (MXO's `activity`, `structureApiName`).
    pub details: Vec<(&'static str, Value)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<ErrorCode>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.into(),
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
            MxoCode::General,
            "the service is temporarily unavailable; retry later",
        )
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::InvalidCursor => ApiError::new(
                StatusCode::BAD_REQUEST,
                CustdataCode::InvalidCursor,
                error.to_string(),
            ),
            StorageError::Contention(detail) => {
                tracing::warn!(%detail, "storage contention");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    MxoCode::General,
                    "the service is busy; retry shortly",
                )
                .with_header("retry-after", "1")
            }
            StorageError::ConditionFailed { .. }
            | StorageError::TransactionCanceled { .. }
            | StorageError::InvalidRequest(_)
            | StorageError::BatchIncomplete { .. }
            | StorageError::Unavailable(_) => ApiError::internal(error),
        }
    }
}

/// The one mapping of the customer store's errors, for every surface but MXO (whose vendor
/// codes `mxo::customer` gives). Every variant named: a new one must be placed here, not
/// fall into a busy answer that tells clients to retry.
impl From<CustomerError> for ApiError {
    fn from(error: CustomerError) -> Self {
        match error {
            CustomerError::Suppressed(_) => ApiError::new(
                StatusCode::BAD_REQUEST,
                CustdataCode::Suppressed,
                error.to_string(),
            ),
            CustomerError::Conflict(_) => ApiError::new(
                StatusCode::CONFLICT,
                CustdataCode::Conflict,
                error.to_string(),
            ),
            CustomerError::Busy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                CustdataCode::Busy,
                error.to_string(),
            )
            .with_header("retry-after", "1"),
            CustomerError::Storage(storage) => storage.into(),
        }
    }
}

impl From<BlobError> for ApiError {
    fn from(error: BlobError) -> Self {
        match error {
            BlobError::InvalidKey(_) | BlobError::PresignRejected(_) => ApiError::new(
                StatusCode::FORBIDDEN,
                CustdataCode::Forbidden,
                error.to_string(),
            ),
            BlobError::PresignExpired => ApiError::new(
                StatusCode::FORBIDDEN,
                CustdataCode::Expired,
                error.to_string(),
            ),
            // The status S3 answers a refused `If-None-Match: *`.
            BlobError::PresignUsed => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                CustdataCode::UploadUrlUsed,
                error.to_string(),
            ),
            BlobError::Body(_) => ApiError::new(
                StatusCode::BAD_REQUEST,
                CustdataCode::BadBody,
                error.to_string(),
            ),
            BlobError::Unavailable(_) => ApiError::internal(error),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Invalid => ApiError::new(
                StatusCode::UNAUTHORIZED,
                CustdataCode::Unauthorized,
                "the credential is not valid",
            ),
            AuthError::Storage(storage) => storage.into(),
        }
    }
}

/// The body of an error in the vendor's shape. The one place error bodies are built.
pub fn error_body(vendor: Vendor, error: &ApiError) -> Value {
    match vendor {
        Vendor::MxoOAuth => {
            json!({"error": error.code.as_str(), "error_description": error.message})
        }
        Vendor::Mxo => {
            let mut body = json!({"errorCode": error.code.as_str(), "errorMessage": error.message});
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
            json!({"error": {"code": error.code.as_str(), "message": error.message, "problems": error.problems}})
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::codes::OAuthCode;

    fn mapped(error: CustomerError) -> (u16, &'static str, Option<String>) {
        let error = ApiError::from(error);
        let retry = error
            .headers
            .iter()
            .find(|(name, _)| *name == "retry-after")
            .map(|(_, value)| value.clone());
        (error.status.as_u16(), error.code.as_str(), retry)
    }

    /// A refused row: status 400, code `GENERAL`, one problem naming row 3's `email`.
    fn refused_row() -> ApiError {
        let mut error = ApiError::new(
            StatusCode::BAD_REQUEST,
            MxoCode::General,
            "rows are not valid",
        );
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
        let error = ApiError::new(
            StatusCode::NOT_FOUND,
            CustdataCode::NotFound,
            "no such schema",
        );
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
    fn each_vocabulary_puts_its_own_spelling_on_the_wire() {
        let oauth = ApiError::new(
            StatusCode::UNAUTHORIZED,
            OAuthCode::InvalidClient,
            "bad credentials",
        );
        assert_eq!(
            error_body(Vendor::MxoOAuth, &oauth),
            json!({"error": "invalid_client", "error_description": "bad credentials"})
        );
        let mxo = ApiError::new(
            StatusCode::BAD_REQUEST,
            MxoCode::InvalidDateTime,
            "timestamp is before 1970",
        );
        assert_eq!(
            error_body(Vendor::Mxo, &mxo)["errorCode"],
            json!("INVALID_DATE_TIME")
        );
        let own = ApiError::new(
            StatusCode::CONFLICT,
            CustdataCode::IdempotencyKeyInUse,
            "still being worked on",
        );
        assert_eq!(
            error_body(Vendor::Custdata, &own)["error"]["code"],
            json!("IDEMPOTENCY_KEY_IN_USE")
        );
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
