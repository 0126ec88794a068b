//! The codes an [`ApiError`](super::ApiError) carries: one enum per vocabulary, each giving
//! the exact string on the wire, and [`ErrorCode`], any one of them.
//!
//! Only the OAuth, MXO and custdata shapes put the code in the body (`error`, `errorCode`,
//! `error.code`). Monetate's, AIXON's and Optimove's shapes carry none (Monetate's
//! `meta.code` and Optimove's `status` are the HTTP status, Optimove's `error` its reason
//! phrase), so their routes use custdata's status-named codes, which a client sees only if
//! such an error is answered in custdata's shape (the privacy route takes every vendor's
//! credential).

use std::fmt;

/// MXO's `errorCode`s, as the MXO APIs answer them: `GENERAL` for most faults, the specific
/// ones where the vendor names the field (docs/customers.md, docs/datastores.md,
/// docs/decisions.md § Errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MxoCode {
    General,
    /// A structure (datastore or pull structure) `apiName` that is missing, invalid or unknown.
    InvalidApiName,
    /// A site key that is not the token's site's.
    InvalidSitekey,
    CustomerNotFound,
    /// An activity's `propositionCode` or `dynamicPropositionCode`.
    InvalidPropositionCode,
    /// An activity's `activityTypeCode`.
    InvalidActivityTypeCode,
    /// An activity's `timestamp`: not RFC 3339, before 1970 or in the future.
    InvalidDateTime,
}

impl MxoCode {
    pub fn as_str(self) -> &'static str {
        match self {
            MxoCode::General => "GENERAL",
            MxoCode::InvalidApiName => "INVALID_API_NAME",
            MxoCode::InvalidSitekey => "INVALID_SITEKEY",
            MxoCode::CustomerNotFound => "CUSTOMER_NOT_FOUND",
            MxoCode::InvalidPropositionCode => "INVALID_PROPOSITION_CODE",
            MxoCode::InvalidActivityTypeCode => "INVALID_ACTIVITY_TYPE_CODE",
            MxoCode::InvalidDateTime => "INVALID_DATE_TIME",
        }
    }
}

/// The token endpoint's `error`s: RFC 6749 §5.2, the ones `POST /one/oauth2token` gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthCode {
    InvalidRequest,
    InvalidClient,
    UnsupportedGrantType,
}

impl OAuthCode {
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthCode::InvalidRequest => "invalid_request",
            OAuthCode::InvalidClient => "invalid_client",
            OAuthCode::UnsupportedGrantType => "unsupported_grant_type",
        }
    }
}

/// custdata's own codes: its extension routes', the ones every surface shares (body limits,
/// idempotency, Lambda limits, storage), and the status-named ones of the surfaces whose
/// vendor shape has no code (Monetate, AIXON, Optimove).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustdataCode {
    BadRequest,
    /// A request the admin route refuses.
    Invalid,
    InvalidCommand,
    InvalidCursor,
    InvalidIdempotencyKey,
    /// An upload body that could not be read.
    BadBody,
    Unauthorized,
    Forbidden,
    /// A presigned URL past its expiry.
    Expired,
    NotFound,
    CustomerNotFound,
    MethodNotAllowed,
    NotSupported,
    Conflict,
    IdempotencyKeyInUse,
    /// A presigned upload URL already used.
    UploadUrlUsed,
    PayloadTooLarge,
    UnsupportedMediaType,
    IdempotencyKeyReused,
    /// A customer's erasure or suppression refuses the write.
    Suppressed,
    TooManyRequests,
    /// An answer larger than a Lambda function can return.
    ResponseTooLarge,
    InternalError,
    /// The customer store is busy; retry.
    Busy,
    /// An answer not ready within the time a Lambda function has.
    Timeout,
}

impl CustdataCode {
    pub fn as_str(self) -> &'static str {
        match self {
            CustdataCode::BadRequest => "BAD_REQUEST",
            CustdataCode::Invalid => "INVALID",
            CustdataCode::InvalidCommand => "INVALID_COMMAND",
            CustdataCode::InvalidCursor => "INVALID_CURSOR",
            CustdataCode::InvalidIdempotencyKey => "INVALID_IDEMPOTENCY_KEY",
            CustdataCode::BadBody => "BAD_BODY",
            CustdataCode::Unauthorized => "UNAUTHORIZED",
            CustdataCode::Forbidden => "FORBIDDEN",
            CustdataCode::Expired => "EXPIRED",
            CustdataCode::NotFound => "NOT_FOUND",
            CustdataCode::CustomerNotFound => "CUSTOMER_NOT_FOUND",
            CustdataCode::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            CustdataCode::NotSupported => "NOT_SUPPORTED",
            CustdataCode::Conflict => "CONFLICT",
            CustdataCode::IdempotencyKeyInUse => "IDEMPOTENCY_KEY_IN_USE",
            CustdataCode::UploadUrlUsed => "UPLOAD_URL_USED",
            CustdataCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            CustdataCode::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            CustdataCode::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            CustdataCode::Suppressed => "SUPPRESSED",
            CustdataCode::TooManyRequests => "TOO_MANY_REQUESTS",
            CustdataCode::ResponseTooLarge => "RESPONSE_TOO_LARGE",
            CustdataCode::InternalError => "INTERNAL_ERROR",
            CustdataCode::Busy => "BUSY",
            CustdataCode::Timeout => "TIMEOUT",
        }
    }
}

/// The code of an error, from whichever vocabulary its route speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Mxo(MxoCode),
    OAuth(OAuthCode),
    Custdata(CustdataCode),
}

impl ErrorCode {
    /// The code as the body carries it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Mxo(code) => code.as_str(),
            ErrorCode::OAuth(code) => code.as_str(),
            ErrorCode::Custdata(code) => code.as_str(),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<MxoCode> for ErrorCode {
    fn from(code: MxoCode) -> Self {
        ErrorCode::Mxo(code)
    }
}

impl From<OAuthCode> for ErrorCode {
    fn from(code: OAuthCode) -> Self {
        ErrorCode::OAuth(code)
    }
}

impl From<CustdataCode> for ErrorCode {
    fn from(code: CustdataCode) -> Self {
        ErrorCode::Custdata(code)
    }
}
