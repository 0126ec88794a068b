//! The bearer check every MXO API call goes through.

use http::StatusCode;

use crate::app::App;
use crate::http::{ApiError, Request, header};
use crate::tenancy::{AuthError, CredentialKind, Presented, Principal, authenticate};

/// The 401 of an MXO call with a missing, forged, expired or revoked token.
pub fn invalid_token() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "GENERAL",
        "Invalid OAuth 2.0 token",
    )
    .with_header("www-authenticate", "Bearer error=\"invalid_token\"")
}

/// Resolves `Authorization: Bearer <token>` to the tenant that was issued the token.
pub async fn bearer_principal(app: &App, request: &Request) -> Result<Principal, ApiError> {
    let token = header(request, "authorization")
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or_else(invalid_token)?;
    match authenticate(
        app.table.as_ref(),
        Presented::Bearer {
            kind: CredentialKind::MxoToken,
            secret: token,
        },
    )
    .await
    {
        Ok(principal) => Ok(principal),
        Err(AuthError::Invalid) => Err(invalid_token()),
        Err(AuthError::Storage(error)) => Err(error.into()),
    }
}
